package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"vigia/internal/event"
)

// Progress returns, per source table (events, alerts, actions,
// raw_payloads) and Kafka partition, the highest offset stored.
func (s *Store) Progress(ctx context.Context) (map[string]map[int]int64, error) {
	out := map[string]map[int]int64{}
	err := s.Select(ctx, "SELECT source, kafka_partition, max(max_offset) FROM "+s.Table("sink_progress")+
		" GROUP BY source, kafka_partition", func(f [][]byte) error {
		p, err1 := strconv.Atoi(string(f[1]))
		off, err2 := strconv.ParseInt(string(f[2]), 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("sink_progress row %q", f)
		}
		src := string(f[0])
		if out[src] == nil {
			out[src] = map[int]int64{}
		}
		out[src][p] = off
		return nil
	})
	return out, err
}

// EventsSlice is how much event time Events reads per query: chDB hands
// a query's whole result over at once, so long ranges are read in slices.
var EventsSlice = time.Hour

// Events calls fn with the stored events whose event_time is in [from,
// to), in event-time order, one batch per slice of EventsSlice. Duplicates
// are removed (FINAL). fn's slice is reused between calls.
func (s *Store) Events(ctx context.Context, from, to time.Time, fn func([]event.Event) error) error {
	var batch []event.Event
	cols := strings.Join(EventColumns, ", ")
	for lo := from; lo.Before(to); lo = lo.Add(EventsSlice) {
		hi := lo.Add(EventsSlice)
		if hi.After(to) {
			hi = to
		}
		q := "SELECT " + cols + " FROM " + s.Table("events") + " FINAL WHERE event_time >= " + timeLit(lo) +
			" AND event_time < " + timeLit(hi) + " ORDER BY event_time, id"
		batch = batch[:0]
		err := s.Select(ctx, q, func(f [][]byte) error {
			batch = append(batch, event.Event{})
			return decodeEvent(f, &batch[len(batch)-1])
		})
		if err != nil {
			return fmt.Errorf("read events %s..%s: %w", lo.Format(time.RFC3339), hi.Format(time.RFC3339), err)
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}

// CountEvents returns how many events are stored in [from, to).
func (s *Store) CountEvents(ctx context.Context, from, to time.Time) (int64, error) {
	return s.Count(ctx, "SELECT count() FROM "+s.Table("events")+" WHERE event_time >= "+timeLit(from)+
		" AND event_time < "+timeLit(to))
}

func timeLit(t time.Time) string {
	return "toDateTime64(" + string(appendTime(nil, t)) + ", 3, 'UTC')"
}

// decodeEvent fills ev from a row of EventColumns; optional parts stay
// nil when all their fields are empty, as the normalizer leaves them.
func decodeEvent(f [][]byte, ev *event.Event) error {
	if len(f) != len(EventColumns) {
		return fmt.Errorf("event row has %d fields, want %d", len(f), len(EventColumns))
	}
	var err error
	str := func(i int) string { return string(f[i]) }
	tm := func(i int) time.Time {
		t, e := time.Parse("2006-01-02 15:04:05.000", string(f[i]))
		if e != nil && err == nil {
			err = fmt.Errorf("column %s: %w", EventColumns[i], e)
		}
		return t.UTC()
	}
	num := func(i int) int {
		n, e := strconv.Atoi(string(f[i]))
		if e != nil && err == nil {
			err = fmt.Errorf("column %s: %w", EventColumns[i], e)
		}
		return n
	}
	flag := func(i int) bool { return len(f[i]) == 1 && f[i][0] == '1' }
	set := func(from, to int) bool {
		for i := from; i < to; i++ {
			if len(f[i]) > 0 && !(len(f[i]) == 1 && f[i][0] == '0') {
				return true
			}
		}
		return false
	}
	*ev = event.Event{SchemaVersion: event.SchemaVersion, ID: str(0), Kind: event.Kind(str(1)),
		Channel: event.Channel(str(2)), Source: str(3), Field: str(4), EventTime: tm(5), ReceiveTime: tm(6),
		WABAID: str(7), PhoneNumberID: str(8), DisplayPhoneNumber: str(9), MessageID: str(10), Status: str(11)}
	if set(12, 16) {
		ev.Recipient = &event.Recipient{Pseudonym: str(12), CountryCode: str(13), IDKind: str(14), Type: str(15)}
	}
	if set(16, 19) {
		ev.Error = &event.Error{Code: num(16), Class: str(17), Title: str(18)}
	}
	if set(19, 23) {
		ev.Pricing = &event.Pricing{Billable: flag(19), Model: str(20), Type: str(21), Category: str(22)}
	}
	if set(23, 25) || string(f[25]) != Null {
		ev.Conversation = &event.Conversation{ID: str(23), OriginType: str(24)}
		if string(f[25]) != Null {
			t := tm(25)
			ev.Conversation.ExpirationTime = &t
		}
	}
	if set(26, 29) {
		ev.Attribution = &event.Attribution{Template: str(26), UseCase: str(27), Campaign: str(28)}
	}
	if set(29, 31) {
		ev.Inbound = &event.Inbound{MessageType: str(29), ContextMessageID: str(30)}
	}
	if set(31, 34) {
		ev.OptOut = &event.OptOut{Source: str(31), Category: str(32), Resumed: flag(33)}
	}
	if set(34, 37) {
		ev.Quality = &event.Quality{Event: str(34), CurrentLimit: str(35), OldLimit: str(36)}
	}
	if set(37, 45) {
		ev.Template = &event.Template{ID: str(37), Name: str(38), Language: str(39), Event: str(40), Reason: str(41),
			OtherInfoTitle: str(42), PreviousQuality: str(43), NewQuality: str(44)}
	}
	if set(45, 54) {
		ev.Account = &event.Account{Event: str(45), ViolationType: str(46), BanState: str(47), BanDate: str(48),
			EntityType: str(49), EntityID: str(50), AlertSeverity: str(51), AlertStatus: str(52), AlertType: str(53)}
	}
	if set(54, 57) {
		ev.Capability = &event.Capability{MessagingLimit: str(54), MaxPhoneNumbers: num(55), MaxDailyConvLegacy: str(56)}
	}
	return err
}

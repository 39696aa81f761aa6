package backtest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"vigia/internal/event"
)

// genOptions shape a generated history.
type genOptions struct {
	Seed      uint64
	Start     time.Time
	Duration  time.Duration
	Rate      float64 // messages per second of event time
	Numbers   int     // phone numbers, spread over WABAs
	WABAs     int
	Templates int
	Users     int
}

// generate builds a history of WhatsApp status events (not in order; NewMemory
// sorts them): per message a sent status, then delivered (1-30 s later) and
// often read, or failed with a realistic error code; half a percent of
// statuses come twice (webhook retries) and one in a thousand carries a
// receive time before its event time (a wrong clock). Numbers are picked
// with a Zipf law (a few busy numbers, a long tail). From a third of the
// range on, for ten minutes, numbers 0-2 hit their throughput limit
// (130429) and numbers 3-5 stop delivering (131026): the shipped pack has
// something to fire on. Strings shared between events are shared in
// memory too, so that millions of events fit.
func generate(o genOptions) []event.Event {
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	zipf := rand.NewZipf(r, 1.1, 8, uint64(o.Numbers-1))
	phones := make([]string, o.Numbers)
	for i := range phones {
		phones[i] = fmt.Sprintf("1%014d", 5500000000+i)
	}
	wabas := make([]string, o.WABAs)
	for i := range wabas {
		wabas[i] = fmt.Sprintf("10%013d", 7700000+i)
	}
	useCases := []string{"otp", "order_updates", "marketing", "support", "billing"}
	attrs := make([]*event.Attribution, o.Templates)
	for i := range attrs {
		attrs[i] = &event.Attribution{Template: fmt.Sprintf("tpl_%02d", i), UseCase: useCases[i%len(useCases)]}
	}
	users := make([]*event.Recipient, o.Users)
	for i := range users {
		users[i] = &event.Recipient{Pseudonym: fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15), CountryCode: []string{"55", "52", "57", "91"}[i%4], IDKind: "phone", Type: "individual"}
	}
	type failure struct {
		code  int
		share float64
	}
	failures := []failure{{131026, 0.45}, {131047, 0.2}, {130429, 0.1}, {131049, 0.1}, {131048, 0.05}, {131050, 0.05}, {131000, 0.05}}
	errs := map[int]*event.Error{}
	for _, f := range failures {
		errs[f.code] = &event.Error{Code: f.code, Class: event.ErrorClass(f.code), Title: "generated"}
	}
	pickFailure := func() *event.Error {
		x := r.Float64()
		for _, f := range failures {
			if x -= f.share; x < 0 {
				return errs[f.code]
			}
		}
		return errs[131026]
	}
	incident, incidentEnd := o.Start.Add(o.Duration/3), o.Start.Add(o.Duration/3+10*time.Minute)

	n := int(o.Rate * o.Duration.Seconds())
	out := make([]event.Event, 0, n*5/2)
	step := time.Duration(float64(time.Second) / o.Rate)
	for i := range n {
		sentAt := o.Start.Add(time.Duration(i)*step + time.Duration(r.Int64N(int64(step)+1)))
		phone := int(zipf.Uint64())
		base := event.Event{
			SchemaVersion: event.SchemaVersion, Kind: event.KindStatus, Channel: event.ChannelWhatsApp, Source: "meta",
			WABAID: wabas[phone%o.WABAs], PhoneNumberID: phones[phone],
			MessageID: fmt.Sprintf("wamid.%012d", i), Recipient: users[r.IntN(o.Users)],
			Attribution: attrs[int(r.ExpFloat64()*float64(o.Templates)/4)%o.Templates],
		}
		emit := func(status string, at time.Time, e *event.Error) {
			if !at.Before(o.Start.Add(o.Duration)) {
				return
			}
			ev := base
			ev.Status, ev.EventTime, ev.Error = status, at, e
			ev.ReceiveTime = at.Add(time.Duration(500+r.IntN(2500)) * time.Millisecond)
			ev.ID = base.MessageID + "/" + status
			out = append(out, ev)
			switch x := r.IntN(1000); {
			case x < 5: // Meta retries a webhook: the same status again
				ev.EventTime = at.Add(time.Duration(1+r.IntN(60)) * time.Second)
				ev.ReceiveTime = ev.EventTime
				if ev.EventTime.Before(o.Start.Add(o.Duration)) {
					out = append(out, ev)
				}
			case x == 5: // a sender with a wrong clock, minutes ahead
				out[len(out)-1].ReceiveTime = at.Add(-10 * time.Minute)
			}
		}
		inIncident := !sentAt.Before(incident) && sentAt.Before(incidentEnd)
		switch {
		case inIncident && phone < 3 && r.IntN(3) > 0:
			// Throughput exceeded: the send fails at once.
			emit(event.StatusFailed, sentAt.Add(200*time.Millisecond), errs[130429])
			continue
		case inIncident && phone < 6 && r.IntN(2) > 0:
			emit(event.StatusSent, sentAt, nil)
			emit(event.StatusFailed, sentAt.Add(time.Duration(5+r.IntN(60))*time.Second), errs[131026])
			continue
		}
		emit(event.StatusSent, sentAt, nil)
		if r.IntN(100) < 4 {
			emit(event.StatusFailed, sentAt.Add(time.Duration(1+r.IntN(30))*time.Second), pickFailure())
			continue
		}
		delivered := sentAt.Add(time.Duration(800+r.IntN(29000)) * time.Millisecond)
		emit(event.StatusDelivered, delivered, nil)
		if r.IntN(100) < 55 {
			emit(event.StatusRead, delivered.Add(time.Duration(5+r.IntN(1800))*time.Second), nil)
		}
	}
	return out // NewMemory sorts them
}

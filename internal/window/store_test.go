package window

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/quality"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func dims(ds ...quality.Dim) []quality.Dim { return ds }

var (
	byPhone    = Spec{By: dims(quality.DimPhoneNumber), Resolution: time.Minute, Span: 15 * time.Minute}
	byTemplate = Spec{By: dims(quality.DimTemplate), Resolution: time.Minute, Span: 15 * time.Minute}
	byWABA     = Spec{By: dims(quality.DimWABA), Resolution: time.Minute, Span: 15 * time.Minute}
)

// status builds a WhatsApp status of message id for user, attributed to
// template tpl ("" for none).
func status(id, st string, t time.Time, user, tpl string) *event.Event {
	e := &event.Event{
		ID: event.NewID("wa", "status", id, st), Kind: event.KindStatus, Channel: event.ChannelWhatsApp,
		EventTime: t, WABAID: "waba1", PhoneNumberID: "phone1", MessageID: id, Status: st,
		Recipient: &event.Recipient{Pseudonym: user, CountryCode: "55"},
	}
	if tpl != "" {
		e.Attribution = &event.Attribution{Template: tpl, UseCase: "uc", Campaign: "camp"}
	}
	return e
}

func failed(id string, t time.Time, code int, class string) *event.Event {
	e := status(id, event.StatusFailed, t, "user1", "tpl")
	e.Error = &event.Error{Code: code, Class: class}
	return e
}

func values(t *testing.T, s *Store, spec int, key string, from, to time.Time) quality.Values {
	t.Helper()
	v, ok := s.Values(spec, key, from, to)
	if !ok {
		t.Fatalf("key %q of spec %d unknown", key, spec)
	}
	return v
}

func expect(t *testing.T, got, want Outcome) {
	t.Helper()
	if got != want {
		t.Fatalf("outcome %v, want %v", got, want)
	}
}

func TestDedupe(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour, DedupeHorizon: 10 * time.Minute}, []Spec{byPhone, byTemplate})
	sent := status("m1", event.StatusSent, at(0), "u", "tpl")
	expect(t, s.Apply(0, sent), Applied)
	expect(t, s.Apply(0, sent), Duplicate)
	// Same (message, status) under another event id and on another
	// partition: still the same fact.
	again := *sent
	again.ID = "other"
	expect(t, s.Apply(1, &again), Duplicate)
	expect(t, s.Apply(0, status("m1", event.StatusDelivered, at(time.Second), "u", "tpl")), Applied)

	// Non-status events dedupe on their id.
	in := &event.Event{ID: "in1", Kind: event.KindInbound, EventTime: at(0), PhoneNumberID: "phone1"}
	expect(t, s.Apply(0, in), Applied)
	expect(t, s.Apply(0, in), Duplicate)

	// Counted once in every keyspace.
	for spec, key := range map[int]string{0: "phone1", 1: "tpl"} {
		if v := values(t, s, spec, key, at(0), at(time.Minute)); v.Sent != 1 || v.Delivered != 1 {
			t.Errorf("spec %d: sent %d delivered %d, want 1 and 1", spec, v.Sent, v.Delivered)
		}
	}
	if st := s.Stats(); st.Outcomes[Duplicate] != 3 || st.DedupeEntries != 3 {
		t.Errorf("stats %+v", st)
	}

	// Past the horizon the pair is forgotten: a replay counts again.
	s.Expire(at(10*time.Minute + time.Nanosecond))
	expect(t, s.Apply(0, sent), Applied)
	if v := values(t, s, 0, "phone1", at(0), at(time.Minute)); v.Sent != 2 {
		t.Errorf("sent %d after horizon, want 2", v.Sent)
	}
}

func TestDedupeBound(t *testing.T) {
	// A bound of 4 is one set of 4 slots: the fifth pair replaces the
	// oldest by event time.
	s := New(Options{AllowedLateness: time.Hour, MaxDedupe: 4}, []Spec{byPhone})
	var evs []*event.Event
	for i := range 5 {
		evs = append(evs, status(string(rune('a'+i)), "sent", at(time.Duration(i)*time.Second), "u", ""))
		expect(t, s.Apply(0, evs[i]), Applied)
	}
	expect(t, s.Apply(0, evs[4]), Duplicate)
	expect(t, s.Apply(0, evs[1]), Duplicate)
	expect(t, s.Apply(0, evs[0]), Applied) // forgotten; now b is the oldest and goes
	expect(t, s.Apply(0, evs[1]), Applied)
	if st := s.Stats(); st.DedupeEntries != 4 || st.DedupeEvicted != 3 {
		t.Errorf("entries %d evicted %d, want 4 and 3", st.DedupeEntries, st.DedupeEvicted)
	}
}

func TestAttemptsReachedOrder(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour}, []Spec{byPhone})
	// m1: sent, delivered, read in order: 1 attempt, 1 reached.
	s.Apply(0, status("m1", "sent", at(0), "u", ""))
	s.Apply(0, status("m1", "delivered", at(2*time.Second), "u", ""))
	s.Apply(0, status("m1", "read", at(3*time.Second), "u", ""))
	// m2: read without delivered (WhatsApp skipped it): reached.
	s.Apply(0, status("m2", "sent", at(0), "u", ""))
	s.Apply(0, status("m2", "read", at(time.Second), "u", ""))
	// m3: failed without sent: an attempt.
	s.Apply(0, failed("m3", at(0), 131026, event.ClassUndeliverable))
	// m4: sent then failed: one attempt.
	s.Apply(0, status("m4", "sent", at(0), "u", ""))
	s.Apply(0, failed("m4", at(time.Second), 131026, event.ClassUndeliverable))
	// m5: delivered before sent: reached, then the late sent is an
	// attempt; no latency (sent was not seen first).
	s.Apply(0, status("m5", "delivered", at(5*time.Second), "u", ""))
	s.Apply(0, status("m5", "sent", at(time.Second), "u", ""))
	v := values(t, s, 0, "phone1", at(0), at(time.Minute))
	want := quality.Values{Sent: 4, Delivered: 2, Read: 2, Failed: 2, Attempts: 5, Reached: 3,
		FailuresByCode: map[int64]int64{131026: 2}, FailuresByClass: map[string]int64{"undeliverable": 2},
		DeliveryRate: 3.0 / 5, ReadRate: 2.0 / 3, FailureRate: 2.0 / 5,
		LatencySamples: 1, LatencyP50: 1.5, LatencyP90: 1.9}
	if !valuesEqual(v, want) {
		t.Errorf("got  %+v\nwant %+v", v, want)
	}
}

func valuesEqual(a, b quality.Values) bool {
	fa, fb := a.FailuresByCode, b.FailuresByCode
	ca, cb := a.FailuresByClass, b.FailuresByClass
	a.FailuresByCode, b.FailuresByCode, a.FailuresByClass, b.FailuresByClass = nil, nil, nil, nil
	close := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	rates := close(a.DeliveryRate, b.DeliveryRate) && close(a.ReadRate, b.ReadRate) && close(a.FailureRate, b.FailureRate) &&
		close(a.OptOutRate, b.OptOutRate) && close(a.LatencyP50, b.LatencyP50) && close(a.LatencyP90, b.LatencyP90)
	a.DeliveryRate, a.ReadRate, a.FailureRate, a.OptOutRate, a.LatencyP50, a.LatencyP90 = 0, 0, 0, 0, 0, 0
	b.DeliveryRate, b.ReadRate, b.FailureRate, b.OptOutRate, b.LatencyP50, b.LatencyP90 = 0, 0, 0, 0, 0, 0
	return rates && reflect.DeepEqual(a, b) && maps.Equal(fa, fb) && maps.Equal(ca, cb)
}

func TestFailures(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour}, []Spec{byPhone})
	s.Apply(0, failed("a", at(0), 131048, event.ClassSpam))
	s.Apply(0, failed("b", at(0), 131048, event.ClassSpam))
	s.Apply(0, failed("c", at(0), 130429, event.ClassThrottle))
	s.Apply(0, failed("d", at(0), 0, event.ClassUndeliverable)) // e-mail bounce: class only
	s.Apply(0, failed("e", at(0), 7, "a class from the future"))
	nilErr := status("f", event.StatusFailed, at(0), "u", "")
	s.Apply(0, nilErr)
	v := values(t, s, 0, "phone1", at(0), at(time.Minute))
	if want := map[int64]int64{131048: 2, 130429: 1, 7: 1}; !maps.Equal(v.FailuresByCode, want) {
		t.Errorf("by code %v, want %v", v.FailuresByCode, want)
	}
	if want := map[string]int64{"spam": 2, "throttle": 1, "undeliverable": 1, "other": 2}; !maps.Equal(v.FailuresByClass, want) {
		t.Errorf("by class %v, want %v", v.FailuresByClass, want)
	}
}

func TestLateness(t *testing.T) {
	s := New(Options{AllowedLateness: 2 * time.Minute, MaxFutureSkew: time.Minute}, []Spec{byPhone})
	expect(t, s.Apply(0, status("a", "sent", at(10*time.Minute), "u", "")), Applied)
	if w := s.Watermark(0); !w.Equal(at(10 * time.Minute)) {
		t.Errorf("watermark %v", w)
	}
	if w := s.Watermark(1); !w.IsZero() {
		t.Errorf("unseen partition watermark %v", w)
	}
	// Within lateness: counted in its own, older bucket.
	expect(t, s.Apply(0, status("b", "sent", at(8*time.Minute), "u", "")), Applied)
	// Exactly at the limit is still in; a nanosecond older is late.
	expect(t, s.Apply(0, status("c", "sent", at(8*time.Minute), "u", "")), Applied)
	expect(t, s.Apply(0, status("d", "sent", at(8*time.Minute-time.Nanosecond), "u", "")), Late)
	// Partitions have their own watermarks.
	expect(t, s.Apply(1, status("e", "sent", at(time.Minute), "u", "")), Applied)
	// A late event does not move the watermark; a duplicate's time does.
	if w := s.Watermark(0); !w.Equal(at(10 * time.Minute)) {
		t.Errorf("watermark %v", w)
	}
	v := values(t, s, 0, "phone1", at(8*time.Minute), at(9*time.Minute))
	if v.Sent != 2 {
		t.Errorf("sent in [8m, 9m) %d, want 2", v.Sent)
	}
	// A clock an hour ahead of the receive time is refused and does not
	// move the watermark.
	f := status("f", "sent", at(time.Hour), "u", "")
	f.ReceiveTime = at(10 * time.Minute)
	expect(t, s.Apply(0, f), Future)
	if w := s.Watermark(0); !w.Equal(at(10 * time.Minute)) {
		t.Errorf("watermark after future event %v", w)
	}
	st := s.Stats()
	if st.Outcomes[Late] != 1 || st.Outcomes[Future] != 1 || st.Outcomes[Applied] != 4 {
		t.Errorf("outcomes %v", st.Outcomes)
	}
}

func TestSpanAndBuckets(t *testing.T) {
	// Span 3m at 1m: a key keeps 4 buckets (a 3m window ending inside a
	// bucket overlaps 4).
	sp := Spec{By: dims(quality.DimPhoneNumber), Resolution: time.Minute, Span: 3 * time.Minute}
	s := New(Options{AllowedLateness: time.Hour}, []Spec{sp})
	for m := range 10 {
		s.Apply(0, status(string(rune('a'+m)), "sent", at(time.Duration(m)*time.Minute+30*time.Second), "u", ""))
	}
	// Newest bucket is 9; buckets 6..9 are kept.
	if v := values(t, s, 0, "phone1", at(0), at(time.Hour)); v.Sent != 4 {
		t.Errorf("sent over everything kept %d, want 4", v.Sent)
	}
	// A period inside a bucket covers the whole bucket.
	if v := values(t, s, 0, "phone1", at(7*time.Minute+50*time.Second), at(7*time.Minute+51*time.Second)); v.Sent != 1 {
		t.Errorf("sent in a sliver of bucket 7: %d, want 1", v.Sent)
	}
	// [8m, 9m) is exactly bucket 8; to is exclusive.
	if v := values(t, s, 0, "phone1", at(8*time.Minute), at(9*time.Minute)); v.Sent != 1 {
		t.Errorf("sent in [8m, 9m): %d, want 1", v.Sent)
	}
	if v := values(t, s, 0, "phone1", at(9*time.Minute), at(9*time.Minute)); v.Sent != 0 {
		t.Errorf("empty period counted %d", v.Sent)
	}
	// Bucket 5 is older than the span behind bucket 9: stale.
	expect(t, s.Apply(0, status("z", "sent", at(5*time.Minute), "u", "")), Stale)
	expect(t, s.Apply(0, status("y", "sent", at(6*time.Minute), "u", "")), Applied)
	if st := s.Stats(); st.Specs[0].Stale != 1 {
		t.Errorf("stale %d", st.Specs[0].Stale)
	}
}

func TestOptOutAttribution(t *testing.T) {
	specs := []Spec{byTemplate, {By: dims(quality.DimUseCase, quality.DimCampaign), Resolution: time.Minute, Span: 15 * time.Minute}, byPhone}
	s := New(Options{AllowedLateness: time.Hour, AttributionTTL: time.Hour}, specs)
	s.Apply(0, status("m1", "sent", at(0), "alice", "promo"))
	s.Apply(0, status("m2", "sent", at(time.Second), "bob", "billing"))
	// A later status of an older message does not replace the newer
	// attribution of bob.
	s.Apply(0, status("m0", "sent", at(-time.Minute), "bob", "old"))
	// Later statuses do not record: alice's read of an older message
	// leaves her last sent template in place.
	s.Apply(0, status("m9", "read", at(30*time.Second), "alice", "other"))

	kw := &event.Event{ID: "in1", Kind: event.KindInbound, EventTime: at(time.Minute), WABAID: "waba1", PhoneNumberID: "phone1",
		Recipient: &event.Recipient{Pseudonym: "alice"}, OptOut: &event.OptOut{Source: "keyword"}}
	pref := &event.Event{ID: "p1", Kind: event.KindUserPreference, EventTime: at(time.Minute), WABAID: "waba1", PhoneNumberID: "phone1",
		Recipient: &event.Recipient{Pseudonym: "bob"}, OptOut: &event.OptOut{Source: "user_preferences"}}
	resume := &event.Event{ID: "p2", Kind: event.KindUserPreference, EventTime: at(time.Minute), WABAID: "waba1", PhoneNumberID: "phone1",
		Recipient: &event.Recipient{Pseudonym: "bob"}, OptOut: &event.OptOut{Source: "user_preferences", Resumed: true}}
	e131050 := failed("m3", at(time.Minute), 131050, event.ClassOptedOut)
	e131050.Recipient.Pseudonym, e131050.Attribution = "alice", nil
	e131050.OptOut = &event.OptOut{Source: "error_131050"}
	stranger := &event.Event{ID: "in2", Kind: event.KindInbound, EventTime: at(time.Minute), WABAID: "waba1", PhoneNumberID: "phone1",
		Recipient: &event.Recipient{Pseudonym: "carol"}, OptOut: &event.OptOut{Source: "keyword"}}
	otherNumber := &event.Event{ID: "in3", Kind: event.KindInbound, EventTime: at(time.Minute), WABAID: "waba1", PhoneNumberID: "phone2",
		Recipient: &event.Recipient{Pseudonym: "alice"}, OptOut: &event.OptOut{Source: "button"}}
	for _, e := range []*event.Event{kw, pref, e131050, stranger, otherNumber} {
		expect(t, s.Apply(0, e), Applied)
	}
	expect(t, s.Apply(0, resume), Ignored)

	win := func(spec int, key string) quality.Values { return values(t, s, spec, key, at(0), at(2*time.Minute)) }
	if v := win(0, "promo"); v.OptOuts != 2 || v.Inbound != 1 || v.Failed != 1 {
		t.Errorf("promo: opt-outs %d inbound %d failed %d, want 2, 1, 1", v.OptOuts, v.Inbound, v.Failed)
	}
	if v := win(0, "billing"); v.OptOuts != 1 {
		t.Errorf("billing: opt-outs %d, want 1", v.OptOuts)
	}
	if v := win(1, "uc|camp"); v.OptOuts != 3 {
		t.Errorf("use case and campaign: opt-outs %d, want 3", v.OptOuts)
	}
	if _, ok := s.Values(0, "old", at(-time.Hour), at(time.Hour)); !ok {
		t.Errorf("the sent status of m0 should count under its own template")
	}
	// Per number, every opt-out counts, attributed or not.
	if v := win(2, "phone1"); v.OptOuts != 4 {
		t.Errorf("phone1: opt-outs %d, want 4", v.OptOuts)
	}
	if st := s.Stats(); st.AttributionEntries != 2 {
		t.Errorf("attribution entries %d, want 2", st.AttributionEntries)
	}
	// After the TTL the memory is gone: a new opt-out has no template.
	s.Expire(at(time.Hour + 2*time.Second))
	late := *kw
	late.ID, late.EventTime = "in4", at(time.Hour+time.Minute)
	expect(t, s.Apply(0, &late), Applied)
	if v := values(t, s, 0, "promo", at(time.Hour), at(2*time.Hour)); v.OptOuts != 0 {
		t.Errorf("opt-out attributed after the TTL")
	}
	if n := s.attr.live(); n != 0 {
		t.Errorf("live attribution entries after TTL %d", n)
	}
}

func TestAttributionBound(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour, MaxAttribution: 4}, []Spec{byTemplate})
	s.Apply(0, status("m1", "sent", at(0), "alice", "a"))
	s.Apply(0, status("m2", "sent", at(0), "bob", "b"))
	// alice is recorded again: bob becomes the least recently recorded.
	s.Apply(0, status("m6", "sent", at(time.Second), "alice", "a"))
	s.Apply(0, status("m3", "sent", at(time.Second), "carol", "c"))
	s.Apply(0, status("m4", "sent", at(time.Second), "dave", "d"))
	s.Apply(0, status("m5", "sent", at(2*time.Second), "erin", "e"))
	optout := func(id, user string) *event.Event {
		return &event.Event{ID: id, Kind: event.KindUserPreference, EventTime: at(time.Minute), PhoneNumberID: "phone1",
			Recipient: &event.Recipient{Pseudonym: user}, OptOut: &event.OptOut{Source: "user_preferences"}}
	}
	expect(t, s.Apply(0, optout("o1", "alice")), Applied)
	expect(t, s.Apply(0, optout("o2", "erin")), Applied)
	expect(t, s.Apply(0, optout("o3", "bob")), NoKey)
	if st := s.Stats(); st.AttributionEntries != 4 || st.AttributionEvicted != 1 {
		t.Errorf("entries %d evicted %d", st.AttributionEntries, st.AttributionEvicted)
	}
}

func TestLatency(t *testing.T) {
	s := New(Options{AllowedLateness: 3 * time.Hour}, []Spec{byPhone})
	// Ten messages delivered after 0.5s, 1.5s, 3s, 3s, 4s, 8s, 15s, 45s,
	// 2h, 2h: bins [0,1]:1 (1,2]:1 (2,5]:3 (5,10]:1 (10,20]:1 (30,60]:1
	// (1h,inf):2.
	delays := []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 3 * time.Second,
		4 * time.Second, 8 * time.Second, 15 * time.Second, 45 * time.Second, 2 * time.Hour, 2 * time.Hour}
	for i, d := range delays {
		id := string(rune('a' + i))
		sentAt := at(2*time.Hour + time.Duration(i)*time.Second)
		if d == 2*time.Hour {
			sentAt = at(time.Duration(i) * time.Second)
		}
		s.Apply(0, status(id, "sent", sentAt, "u", ""))
		s.Apply(0, status(id, "delivered", sentAt.Add(d), "u", ""))
	}
	v := values(t, s, 0, "phone1", at(2*time.Hour), at(2*time.Hour+5*time.Minute))
	// p50: rank 5 falls in (2,5] (cumulative 2 before, 3 in it):
	// 2 + 3*(5-2)/3 = 5. p90: rank 9 falls in the +inf bin: its lower
	// bound, 3600.
	if v.LatencySamples != 10 || v.LatencyP50 != 5 || v.LatencyP90 != 3600 {
		t.Errorf("samples %d p50 %v p90 %v, want 10, 5, 3600", v.LatencySamples, v.LatencyP50, v.LatencyP90)
	}
	// One sample of 3s: p50 interpolates to the middle of (2,5].
	s2 := New(Options{}, []Spec{byPhone})
	s2.Apply(0, status("a", "sent", at(0), "u", ""))
	s2.Apply(0, status("a", "delivered", at(3*time.Second), "u", ""))
	if v := values(t, s2, 0, "phone1", at(0), at(time.Minute)); v.LatencyP50 != 3.5 || v.LatencyP90 != 4.7 {
		t.Errorf("single sample p50 %v p90 %v, want 3.5 and 4.7", v.LatencyP50, v.LatencyP90)
	}
	// The sample belongs to the delivered status's bucket.
	s3 := New(Options{AllowedLateness: time.Hour}, []Spec{byPhone})
	s3.Apply(0, status("a", "sent", at(0), "u", ""))
	s3.Apply(0, status("a", "delivered", at(5*time.Minute), "u", ""))
	if v := values(t, s3, 0, "phone1", at(0), at(time.Minute)); v.LatencySamples != 0 {
		t.Errorf("latency counted in the sent bucket")
	}
	if v := values(t, s3, 0, "phone1", at(5*time.Minute), at(6*time.Minute)); v.LatencySamples != 1 || v.LatencyP50 != 210 {
		t.Errorf("latency in the delivered bucket: %d samples p50 %v, want 1, 210", v.LatencySamples, v.LatencyP50)
	}
	// No latency when the sent pair expired before the delivered came.
	s4 := New(Options{AllowedLateness: time.Hour, DedupeHorizon: time.Second}, []Spec{byPhone})
	s4.Apply(0, status("b", "sent", at(0), "u", ""))
	s4.Expire(at(2 * time.Second))
	s4.Apply(0, status("b", "delivered", at(3*time.Second), "u", ""))
	if v := values(t, s4, 0, "phone1", at(0), at(time.Minute)); v.LatencySamples != 0 || v.Delivered != 1 || v.Attempts != 1 {
		t.Errorf("after the horizon: %+v", v)
	}
}

func TestLatestState(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour}, []Spec{byPhone, byTemplate, byWABA})
	pq := func(id string, tm time.Time, phone, ev, limit string) *event.Event {
		return &event.Event{ID: id, Kind: event.KindPhoneQuality, EventTime: tm, WABAID: "waba1", PhoneNumberID: phone,
			Quality: &event.Quality{Event: ev, CurrentLimit: limit}}
	}
	expect(t, s.Apply(0, pq("q1", at(time.Minute), "phone1", "FLAGGED", "TIER_10K")), Applied)
	expect(t, s.Apply(0, pq("q2", at(3*time.Minute), "phone1", "DOWNGRADE", "TIER_1K")), Applied)
	// Out of order: older than the latest, so it only shows for periods
	// ending before 3m.
	expect(t, s.Apply(0, pq("q3", at(2*time.Minute), "phone1", "UNFLAGGED", "")), Applied)
	// Without a phone number id (unknown display number): the WABA only.
	expect(t, s.Apply(0, pq("q4", at(4*time.Minute), "", "FLAGGED", "")), Applied)

	check := func(to time.Duration, wantEvent, wantTier string) {
		t.Helper()
		v := values(t, s, 0, "phone1", at(0), at(to))
		if v.QualityEvent != wantEvent || v.MessagingTier != wantTier {
			t.Errorf("at %v: %q %q, want %q %q", to, v.QualityEvent, v.MessagingTier, wantEvent, wantTier)
		}
	}
	check(0, "", "")
	check(time.Minute, "FLAGGED", "TIER_10K") // at or before to
	check(2*time.Minute+time.Second, "UNFLAGGED", "TIER_10K")
	check(time.Hour, "DOWNGRADE", "TIER_1K")
	if v := values(t, s, 2, "waba1", at(0), at(time.Hour)); v.QualityEvent != "FLAGGED" {
		t.Errorf("waba quality event %q", v.QualityEvent)
	}

	// Template events key by the template name, with or without an
	// attribution block; equal times: the later applied wins.
	ts := &event.Event{ID: "t1", Kind: event.KindTemplateStatus, EventTime: at(time.Minute), WABAID: "waba1",
		Template: &event.Template{Name: "promo", Event: "PAUSED"}}
	tq := &event.Event{ID: "t2", Kind: event.KindTemplateQuality, EventTime: at(time.Minute), WABAID: "waba1",
		Template: &event.Template{Name: "promo", NewQuality: "RED"}, Attribution: &event.Attribution{Template: "promo"}}
	ts2 := &event.Event{ID: "t3", Kind: event.KindTemplateStatus, EventTime: at(time.Minute), WABAID: "waba1",
		Template: &event.Template{Name: "promo", Event: "DISABLED"}}
	for _, e := range []*event.Event{ts, tq, ts2} {
		expect(t, s.Apply(0, e), Applied)
	}
	if v := values(t, s, 1, "promo", at(0), at(time.Hour)); v.TemplateStatus != "DISABLED" || v.TemplateQuality != "RED" {
		t.Errorf("template state %q %q", v.TemplateStatus, v.TemplateQuality)
	}
	acc := &event.Event{ID: "a1", Kind: event.KindAccountUpdate, EventTime: at(time.Minute), WABAID: "waba1",
		Account: &event.Account{Event: "ACCOUNT_VIOLATION", BanState: "SCHEDULE_FOR_DISABLE"}}
	capa := &event.Event{ID: "c1", Kind: event.KindCapability, EventTime: at(5 * time.Minute), WABAID: "waba1",
		Capability: &event.Capability{MessagingLimit: "TIER_2K"}}
	expect(t, s.Apply(0, acc), Applied)
	expect(t, s.Apply(0, capa), Applied)
	if v := values(t, s, 2, "waba1", at(0), at(time.Hour)); v.AccountEvent != "ACCOUNT_VIOLATION" ||
		v.AccountBanState != "SCHEDULE_FOR_DISABLE" || v.MessagingTier != "TIER_2K" {
		t.Errorf("waba state %+v", v)
	}
	// Account events have no template: not in the template keyspace.
	acc2 := *acc
	acc2.ID = "a2"
	s2 := New(Options{}, []Spec{byTemplate})
	expect(t, s2.Apply(0, &acc2), NoKey)
	// Alerts and unknown fields count nothing.
	expect(t, s.Apply(0, &event.Event{ID: "x", Kind: event.KindAccountAlert, EventTime: at(0), WABAID: "waba1"}), Ignored)
	expect(t, s.Apply(0, &event.Event{ID: "y", Kind: event.KindUnknown, EventTime: at(0), WABAID: "waba1"}), Ignored)

	// State survives Expire beyond the span (it is not windowed) as long
	// as the key is not idle.
	s.Expire(at(2 * time.Hour))
	check(3*time.Hour, "DOWNGRADE", "TIER_1K")
}

func TestIdleExpiry(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour, IdleTTL: 30 * time.Minute}, []Spec{byPhone, byTemplate})
	s.Apply(0, status("a", "sent", at(0), "u", "t1"))
	s.Apply(0, status("b", "sent", at(10*time.Minute), "u", "t2"))
	s.Expire(at(30 * time.Minute))
	if ids := s.KeyIDs(1, nil); len(ids) != 2 {
		t.Fatalf("keys %v, want both (t1 idle exactly the TTL)", ids)
	}
	s.Expire(at(30*time.Minute + time.Nanosecond))
	if ids := s.KeyIDs(1, nil); len(ids) != 1 || ids[0] != "t2" {
		t.Fatalf("keys %v, want [t2]", ids)
	}
	if _, ok := s.Values(1, "t1", at(0), at(time.Hour)); ok {
		t.Errorf("expired key still answers")
	}
	if st := s.Stats(); st.Specs[1].Expired != 1 || st.Specs[1].Keys != 1 || st.Specs[0].Keys != 1 {
		t.Errorf("stats %+v", st.Specs)
	}
	s.Expire(at(time.Hour))
	if st := s.Stats(); st.Specs[0].Keys != 0 || st.Specs[1].Keys != 0 {
		t.Errorf("keys left %+v", st.Specs)
	}
	// A key comes back fresh.
	s.Apply(0, status("c", "sent", at(time.Hour), "u", "t1"))
	if v := values(t, s, 1, "t1", at(0), at(2*time.Hour)); v.Sent != 1 {
		t.Errorf("sent %d", v.Sent)
	}
}

func TestMaxKeys(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour, MaxKeys: 2}, []Spec{byTemplate, byPhone})
	expect(t, s.Apply(0, status("a", "sent", at(0), "u", "t1")), Applied)
	expect(t, s.Apply(0, status("b", "sent", at(0), "u", "t2")), Applied)
	// t3 is refused in the template keyspace but phone1 still counts it.
	expect(t, s.Apply(0, status("c", "sent", at(0), "u", "t3")), Applied)
	s2 := New(Options{MaxKeys: 1}, []Spec{byTemplate})
	expect(t, s2.Apply(0, status("a", "sent", at(0), "u", "t1")), Applied)
	expect(t, s2.Apply(0, status("b", "sent", at(0), "u", "t2")), Refused)
	expect(t, s2.Apply(0, status("c", "sent", at(0), "u", "t1")), Applied)
	if st := s.Stats(); st.Specs[0].Refused != 1 || st.Specs[0].Keys != 2 || st.Specs[1].Keys != 1 {
		t.Errorf("stats %+v", st.Specs)
	}
	if _, ok := s.Values(0, "t3", at(0), at(time.Hour)); ok {
		t.Errorf("refused key exists")
	}
}

func TestRates(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour}, []Spec{byPhone})
	// Only reads and an inbound: nothing attempted, nothing delivered.
	s.Apply(0, &event.Event{ID: "i", Kind: event.KindInbound, EventTime: at(0), PhoneNumberID: "phone1"})
	v := values(t, s, 0, "phone1", at(0), at(time.Minute))
	if v.DeliveryRate != 0 || v.ReadRate != 0 || v.FailureRate != 0 || v.OptOutRate != 0 || v.LatencySamples != 0 {
		t.Errorf("rates with zero denominators %+v", v)
	}
	// Reached without attempts (the sent statuses are older than the
	// window): the rate is clamped to 1, not 2.
	s.Apply(0, status("a", "delivered", at(0), "u", ""))
	s.Apply(0, status("b", "delivered", at(0), "u", ""))
	s.Apply(0, status("c", "sent", at(0), "u", ""))
	for i := range 3 {
		o := &event.Event{ID: string(rune('x' + i)), Kind: event.KindInbound, EventTime: at(0), PhoneNumberID: "phone1",
			OptOut: &event.OptOut{Source: "keyword"}}
		s.Apply(0, o)
	}
	v = values(t, s, 0, "phone1", at(0), at(time.Minute))
	if v.DeliveryRate != 1 || v.OptOutRate != 1 || v.ReadRate != 0 {
		t.Errorf("clamped rates %+v", v)
	}
}

func TestValuesUnknownAndEmpty(t *testing.T) {
	s := New(Options{}, []Spec{byPhone})
	if _, ok := s.Values(0, "nope", at(0), at(time.Hour)); ok {
		t.Errorf("unknown key found")
	}
	s.Apply(0, status("a", "sent", at(0), "u", ""))
	if v := values(t, s, 0, "phone1", at(time.Hour), at(0)); v.Sent != 0 {
		t.Errorf("reversed period counted")
	}
}

func TestKeysAndLabels(t *testing.T) {
	sp := Spec{By: dims(quality.DimWABA, quality.DimTemplate, quality.DimCountry), Resolution: time.Minute, Span: time.Hour}
	s := New(Options{}, []Spec{sp, byTemplate})
	e := status("a", "sent", at(0), "u", `we|ird\name`)
	expect(t, s.Apply(0, e), Applied)
	keys := s.Keys(0)
	if len(keys) != 1 || keys[0].ID != `waba1|we\|ird\\name|55` {
		t.Fatalf("keys %+v", keys)
	}
	want := map[string]string{"waba": "waba1", "template": `we|ird\name`, "country": "55"}
	if !maps.Equal(keys[0].Labels, want) || !maps.Equal(s.Labels(0, keys[0].ID), want) {
		t.Errorf("labels %v, want %v", keys[0].Labels, want)
	}
	if k := s.Keys(1); len(k) != 1 || k[0].ID != `we|ird\name` || k[0].Labels["template"] != `we|ird\name` {
		t.Errorf("single-dimension key %+v", k)
	}
	// Missing dimension: no key.
	expect(t, s.Apply(0, status("b", "sent", at(0), "u", "")), NoKey)
}

func TestValidate(t *testing.T) {
	good := Spec{By: dims(quality.DimWABA), Resolution: time.Minute, Span: time.Hour}
	for name, c := range map[string]struct {
		o Options
		s Spec
	}{
		"no dims":        {s: Spec{Resolution: time.Minute, Span: time.Hour}},
		"unknown dim":    {s: Spec{By: dims("color"), Resolution: time.Minute, Span: time.Hour}},
		"dim twice":      {s: Spec{By: dims(quality.DimWABA, quality.DimWABA), Resolution: time.Minute, Span: time.Hour}},
		"zero res":       {s: Spec{By: dims(quality.DimWABA), Span: time.Hour}},
		"span < res":     {s: Spec{By: dims(quality.DimWABA), Resolution: time.Hour, Span: time.Minute}},
		"too many":       {s: Spec{By: dims(quality.DimWABA), Resolution: time.Second, Span: 24 * time.Hour}},
		"negative delay": {o: Options{AllowedLateness: -1}, s: good},
		"follow own dim": {s: Spec{By: dims(quality.DimWABA), Resolution: time.Minute, Span: time.Hour, Follow: quality.DimWABA}},
		"follow unknown": {s: Spec{By: dims(quality.DimWABA), Resolution: time.Minute, Span: time.Hour, Follow: "color"}},
	} {
		if err := Validate(c.o, []Spec{c.s}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := Validate(Options{}, []Spec{good}); err != nil {
		t.Errorf("good spec: %v", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "resolution") {
			t.Errorf("New did not panic on a bad spec: %v", r)
		}
	}()
	New(Options{}, []Spec{{By: dims(quality.DimWABA)}})
}

// TestFollowed: a key of a keyspace with Spec.Follow keeps the latest
// value of that dimension by event time (an older event does not change
// it, an event without it neither), by Apply and by a decider alike; a key
// of another keyspace has none, and a slot that changed keys answers "".
func TestFollowed(t *testing.T) {
	phones := Spec{By: dims(quality.DimPhoneNumber), Resolution: time.Minute, Span: 15 * time.Minute, Follow: quality.DimWABA}
	o := Options{IdleTTL: 10 * time.Minute, AllowedLateness: 5 * time.Minute}
	direct := New(o, []Spec{phones, byWABA})
	decider := New(o, nil)
	shared := NewSharing(decider, o, []Spec{phones})
	ev := func(id string, t time.Time, waba string) *event.Event {
		e := status(id, "sent", t, "u-"+id, "")
		e.WABAID = waba
		return e
	}
	steps := []struct {
		e    *event.Event
		want string
	}{
		{ev("m1", at(time.Minute), "wabaA"), "wabaA"},
		{ev("m2", at(3*time.Minute), "wabaB"), "wabaB"},
		{ev("m3", at(2*time.Minute), "wabaA"), "wabaB"}, // older: not the latest
		{ev("m4", at(4*time.Minute), ""), "wabaB"},      // no WABA: nothing to follow
		{ev("m5", at(4*time.Minute), "wabaC"), "wabaC"}, // a tie: the last applied
	}
	for i, st := range steps {
		expect(t, direct.Apply(0, st.e), Applied)
		var d Decision
		decider.Decide(0, st.e, &d)
		expect(t, shared.ApplyDecision(&d), Applied)
		for name, s := range map[string]*Store{"apply": direct, "decision": shared} {
			refs := s.AppendKeyRefs(0, nil)
			if len(refs) != 1 {
				t.Fatalf("%s: %d keys", name, len(refs))
			}
			if got := s.Followed(0, refs[0]); got != st.want {
				t.Errorf("%s, step %d: followed %q, want %q", name, i, got, st.want)
			}
		}
	}
	if refs := direct.AppendKeyRefs(1, nil); len(refs) == 0 || direct.Followed(1, refs[0]) != "" {
		t.Errorf("a keyspace without Follow follows: %v", refs)
	}
	ref := direct.AppendKeyRefs(0, nil)[0]
	direct.Expire(at(time.Hour))
	if got := direct.Followed(0, ref); got != "" {
		t.Errorf("expired key: followed %q", got)
	}
	e := ev("m6", at(61*time.Minute), "wabaD")
	e.PhoneNumberID = "phone2"
	expect(t, direct.Apply(0, e), Applied)
	if got := direct.Followed(0, ref); got != "" {
		t.Errorf("slot of another key: followed %q", got)
	}
}

// TestSealedBuckets drives one key through the slow path: events later
// than its dense buckets rewrite sealed records, which must keep every
// counter, failure and latency bin.
func TestSealedBuckets(t *testing.T) {
	sp := Spec{By: dims(quality.DimPhoneNumber), Resolution: time.Minute, Span: 30 * time.Minute}
	s := New(Options{AllowedLateness: time.Hour}, []Spec{sp})
	ks := s.spaces[0]
	if ks.hotN != maxHot {
		t.Fatalf("hotN %d", ks.hotN)
	}
	// Fill minutes 0..19 once, then add a second round in reverse order so
	// that most land in sealed buckets.
	for round := range 2 {
		for i := range 20 {
			m := i
			if round == 1 {
				m = 19 - i
			}
			id := string(rune('A'+round)) + string(rune('a'+m))
			base := at(time.Duration(m)*time.Minute + 10*time.Second)
			s.Apply(0, status(id, "sent", base, "u", ""))
			s.Apply(0, status(id, "delivered", base.Add(time.Duration(m+1)*time.Second), "u", ""))
			s.Apply(0, failed(id+"f", base, 131000+m, event.ClassOther))
		}
	}
	if st := s.Stats(); st.Specs[0].ColdBytes == 0 || st.Specs[0].HotBuckets > maxHot {
		t.Fatalf("stats %+v", st.Specs[0])
	}
	for m := range 20 {
		v := values(t, s, 0, "phone1", at(time.Duration(m)*time.Minute), at(time.Duration(m+1)*time.Minute))
		if v.Sent != 2 || v.Delivered != 2 || v.Failed != 2 || v.Attempts != 4 || v.FailuresByCode[int64(131000+m)] != 2 || v.LatencySamples != 2 {
			t.Errorf("minute %d: %+v", m, v)
		}
	}
	checkStats(t, s)
}

func TestNoAllocSteadyState(t *testing.T) {
	specs := []Spec{byPhone, byTemplate, {By: dims(quality.DimWABA, quality.DimTemplate), Resolution: time.Minute, Span: 15 * time.Minute}}
	s := New(Options{AllowedLateness: time.Hour, DedupeHorizon: time.Minute}, specs)
	const n = 2000
	mk := func(round int) []*event.Event {
		var out []*event.Event
		for i := range n / 2 {
			id := fmt.Sprintf("r%d-%d", round, i)
			sentAt := at(time.Duration(round)*2*time.Minute + time.Duration(i)*time.Millisecond)
			tpl := fmt.Sprintf("tpl%d", i%10)
			out = append(out, status(id, "sent", sentAt, "u", tpl), status(id, "delivered", sentAt.Add(time.Second), "u", tpl))
		}
		return out
	}
	for _, e := range mk(0) {
		s.Apply(0, e)
	}
	// Forget them: the maps and queues keep their room.
	s.Expire(at(2 * time.Minute))
	evs := mk(1)
	i := 0
	allocs := testing.AllocsPerRun(n-1, func() {
		if s.Apply(0, evs[i]) != Applied {
			t.Fatalf("event %d not applied", i)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Apply: %v allocations per event", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		_, _ = s.Values(0, "phone1", at(0), at(15*time.Minute))
	})
	if allocs != 0 {
		t.Errorf("Values: %v allocations per call", allocs)
	}
}

// TestManyKeyspaces covers the keyspaces beyond maxPipelined, applied one
// by one.
func TestManyKeyspaces(t *testing.T) {
	var specs []Spec
	for i := range maxPipelined + 3 {
		specs = append(specs, Spec{By: dims(quality.DimPhoneNumber), Resolution: time.Duration(i+1) * time.Second, Span: time.Hour})
	}
	s := New(Options{}, specs)
	expect(t, s.Apply(0, status("a", "sent", at(0), "u", "")), Applied)
	for i := range specs {
		if v := values(t, s, i, "phone1", at(0), at(time.Minute)); v.Sent != 1 {
			t.Errorf("spec %d: sent %d", i, v.Sent)
		}
	}
	// Without a phone number no keyspace has the event's dimensions.
	e := status("b", "sent", at(0), "u", "")
	e.PhoneNumberID = ""
	expect(t, s.Apply(0, e), NoKey)
}

// TestMemoryGrowth fills the dedupe and attribution tables far past their
// initial size, without bounds, and checks that every entry survives the
// growths.
func TestMemoryGrowth(t *testing.T) {
	s := New(Options{AllowedLateness: time.Hour}, []Spec{byTemplate})
	const n = 5000
	for i := range n {
		user := fmt.Sprintf("user%d", i)
		expect(t, s.Apply(0, status(fmt.Sprint("m", i), "sent", at(time.Duration(i)*time.Millisecond), user, fmt.Sprint("tpl", i%7))), Applied)
	}
	if len(s.attr.sets) <= minSets || len(s.dd.sets) <= minSets {
		t.Fatalf("tables did not grow: %d and %d sets", len(s.attr.sets), len(s.dd.sets))
	}
	for i := range n {
		expect(t, s.Apply(0, status(fmt.Sprint("m", i), "sent", at(time.Duration(i)*time.Millisecond), "x", "tpl0")), Duplicate)
		o := &event.Event{ID: fmt.Sprint("o", i), Kind: event.KindUserPreference, EventTime: at(time.Second), PhoneNumberID: "phone1",
			Recipient: &event.Recipient{Pseudonym: fmt.Sprintf("user%d", i)}, OptOut: &event.OptOut{Source: "user_preferences"}}
		expect(t, s.Apply(0, o), Applied)
	}
	for i := range 7 {
		if v := values(t, s, 0, fmt.Sprint("tpl", i), at(0), at(time.Minute)); v.OptOuts != int64(n/7)+btoi(i < n%7) {
			t.Errorf("tpl%d: %d opt-outs", i, v.OptOuts)
		}
	}
	st := s.Stats()
	if st.TotalKeys() != 7 || st.AttributionEntries != n || st.DedupeEntries != 2*n {
		t.Errorf("stats: %d keys, %d attributions, %d dedupe entries", st.TotalKeys(), st.AttributionEntries, st.DedupeEntries)
	}
	if got := fmt.Sprint(Applied, Late, Future, Ignored, Duplicate, Refused, Stale, NoKey, Outcome(99)); got != "applied late future ignored duplicate refused stale no_key Outcome(99)" {
		t.Errorf("outcome names: %s", got)
	}
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestDedupeDoesNotEvictAtLowLoad: the statuses of one message share a
// set of the dedupe table, so at low load several messages meeting in one
// set must spill into the next sets rather than evict current entries or
// grow the table to its bound. 60,000 messages of three statuses against a
// bound of 4 million entries: nothing evicted, the table under its bound,
// every status seen again is a duplicate.
func TestDedupeDoesNotEvictAtLowLoad(t *testing.T) {
	for seed := range 5 {
		s := New(Options{MaxDedupe: 4_000_000}, []Spec{byPhone})
		const n = 60_000
		for i := range n {
			id := fmt.Sprintf("wamid.%d.%d", seed, i)
			for j, st := range []string{event.StatusSent, event.StatusDelivered, event.StatusRead} {
				expect(t, s.Apply(0, status(id, st, at(time.Duration(i)*time.Millisecond+time.Duration(j)), "u", "")), Applied)
			}
		}
		st := s.Stats()
		if st.DedupeEvicted != 0 || len(s.dd.sets) >= s.dd.maxSets {
			t.Errorf("seed %d: %d entries evicted, %d sets of at most %d for %d entries", seed, st.DedupeEvicted,
				len(s.dd.sets), s.dd.maxSets, st.DedupeEntries)
		}
		for i := 0; i < n; i += 997 {
			id := fmt.Sprintf("wamid.%d.%d", seed, i)
			expect(t, s.Apply(0, status(id, event.StatusDelivered, at(time.Minute), "u", "")), Duplicate)
		}
	}
}

// TestAttributionDoesNotEvictAtLowLoad: as for the dedupe table, the
// attribution table grows before it evicts, and reaches its bound only
// when nearly full (two probed sets let a few full windows at 10 % load
// grow it to its bound and then evict: 56 to 74 attributions in the
// backtest benchmark's history against a bound of 10 million).
func TestAttributionDoesNotEvictAtLowLoad(t *testing.T) {
	for seed := range 3 {
		s := New(Options{MaxAttribution: 8_000_000}, []Spec{byPhone})
		const n = 400_000
		for i := range n {
			user := fmt.Sprintf("user-%d-%d", seed, i)
			expect(t, s.Apply(0, status(fmt.Sprintf("wamid.%d.%d", seed, i), event.StatusSent, at(time.Duration(i)*time.Millisecond), user, "tpl")), Applied)
		}
		st := s.Stats()
		if st.AttributionEvicted != 0 || len(s.attr.sets) >= s.attr.maxSets {
			t.Errorf("seed %d: %d attributions evicted, %d sets of at most %d for %d entries", seed, st.AttributionEvicted,
				len(s.attr.sets), s.attr.maxSets, st.AttributionEntries)
		}
	}
}

// TestReserve: a store whose memories were sized for the events to come
// decides as one that grows them, and does not grow them; the bounds cap
// a reservation, and a store with entries ignores one.
func TestReserve(t *testing.T) {
	const n = 20000
	o := Options{MaxDedupe: 1 << 20, MaxAttribution: 1 << 20}
	grown, reserved := New(o, []Spec{byPhone, byTemplate}), New(o, []Spec{byPhone, byTemplate})
	reserved.Reserve(n, n/2)
	sets, attrSets := len(reserved.dd.sets), len(reserved.attr.sets)
	if sets*ways < n || attrSets*ways < n/2 {
		t.Fatalf("reserved %d dedupe and %d attribution sets for %d and %d entries", sets, attrSets, n, n/2)
	}
	for i := range n / 2 {
		ts := at(time.Duration(i) * time.Millisecond)
		for _, e := range []*event.Event{
			status(fmt.Sprint("m", i), "sent", ts, fmt.Sprint("u", i%3000), fmt.Sprint("tpl", i%7)),
			status(fmt.Sprint("m", i), "delivered", ts.Add(time.Second), fmt.Sprint("u", i%3000), ""),
		} {
			if g, r := grown.Apply(0, e), reserved.Apply(0, e); g != r {
				t.Fatalf("event %d: %v grown, %v reserved", i, g, r)
			}
		}
	}
	if len(reserved.dd.sets) != sets || len(reserved.attr.sets) != attrSets {
		t.Errorf("reserved tables grew: %d -> %d and %d -> %d sets", sets, len(reserved.dd.sets), attrSets, len(reserved.attr.sets))
	}
	if len(grown.dd.sets) > sets {
		t.Errorf("the grown dedupe table (%d sets) is larger than the reserved one (%d)", len(grown.dd.sets), sets)
	}
	for _, spec := range []int{0, 1} {
		for _, k := range grown.Keys(spec) {
			if g, r := values(t, grown, spec, k.ID, at(-time.Hour), at(time.Hour)), values(t, reserved, spec, k.ID, at(-time.Hour), at(time.Hour)); !valuesEqual(g, r) {
				t.Errorf("key %s: %+v grown, %+v reserved", k.ID, g, r)
			}
		}
	}
	// A store with entries keeps its tables.
	reserved.Reserve(100*n, 100*n)
	if len(reserved.dd.sets) != sets || len(reserved.attr.sets) != attrSets {
		t.Error("Reserve resized tables holding entries")
	}
	// The bounds cap a reservation.
	small := New(Options{MaxDedupe: 1000, MaxAttribution: 100}, nil)
	small.Reserve(n, n)
	if len(small.dd.sets) > tableSize(1000) || len(small.attr.sets) > tableSize(100) {
		t.Errorf("reserved %d and %d sets beyond bounds of %d and %d", len(small.dd.sets), len(small.attr.sets), tableSize(1000), tableSize(100))
	}
}

package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"vigia/internal/alert"
	"vigia/internal/event"
	"vigia/internal/rules"
	"vigia/internal/window"
)

func loadPack(tb testing.TB) *rules.Set {
	tb.Helper()
	set, err := rules.Load("../../rules")
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

var benchOptions = Options{Window: window.Options{
	AllowedLateness: 2 * time.Minute, DedupeHorizon: 2 * time.Hour, IdleTTL: 3 * time.Hour,
	MaxKeys: 1 << 20, MaxDedupe: 1 << 24, MaxAttribution: 1 << 22,
}}

// streamEvents builds n status events over keys phone numbers (50 WABAs, 40
// templates), rate events per second of event time, in time order:
// per message sent, then delivered (or failed for one in twenty), then read.
func streamEvents(n, keys, rate int, start time.Time) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		msg := i / 3
		phone := msg % keys
		status := []string{"sent", "delivered", "read"}[i%3]
		ev := event.Event{SchemaVersion: 1, ID: event.NewID("b", fmt.Sprint(i)), Kind: event.KindStatus, Channel: event.ChannelWhatsApp,
			EventTime: start.Add(time.Duration(i) * time.Second / time.Duration(rate)), WABAID: fmt.Sprintf("W%02d", phone%50),
			PhoneNumberID: fmt.Sprintf("PN%05d", phone), MessageID: fmt.Sprintf("wamid.%d", msg), Status: status,
			Recipient:   &event.Recipient{Pseudonym: fmt.Sprintf("%032x", msg), CountryCode: "55", IDKind: "phone"},
			Attribution: &event.Attribution{Template: fmt.Sprintf("tpl%d", phone%40), UseCase: "sales"}}
		if status == "delivered" && msg%20 == 0 {
			ev.Status = "failed"
			ev.Error = &event.Error{Code: 131026, Class: event.ClassUndeliverable}
		}
		out[i] = ev
	}
	return out
}

// BenchmarkApplyShippedPack: events applied to the windows of the shipped
// rule pack's keyspaces, 10,000 active phone numbers, one core. Every timed
// event is a new one (no duplicates), so run it with a fixed count:
//
//	go test ./internal/engine -run XXX -bench ApplyShippedPack -benchtime 1000000x -count 5
func BenchmarkApplyShippedPack(b *testing.B) {
	const warm = 300000
	if b.N > 1200000 {
		b.Fatalf("-benchtime %dx: at most 1200000x (fresh events only)", b.N)
	}
	start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	evs := streamEvents(warm+b.N, 10000, 20000, start)
	e := New(loadPack(b), benchOptions)
	for i := range evs[:warm] { // every key exists before timing
		e.Apply(0, &evs[i])
	}
	b.ResetTimer()
	for i := warm; i < warm+b.N; i++ {
		if e.Apply(0, &evs[i]) != window.Applied {
			b.Fatal("event not applied")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEvalRoundShippedPack: one evaluation of every rule of the pack
// over 10,000 active phone numbers.
func BenchmarkEvalRoundShippedPack(b *testing.B) {
	start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	evs := streamEvents(600000, 10000, 2000, start)
	e := New(loadPack(b), benchOptions)
	for i := range evs {
		e.Apply(0, &evs[i])
	}
	now := evs[len(evs)-1].EventTime
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, g := range e.groups {
			e.EvalGroup(ctx, g.group.Name, now)
		}
	}
	b.ReportMetric(float64(e.Evaluations)/float64(b.N), "evaluations/round")
}

// TestEngineFiresAndResolves drives the engine directly with time as a
// parameter: errors 130429 over the ThroughputErrors threshold fire it at
// the next evaluation, and it resolves once they leave the window.
func TestEngineFiresAndResolves(t *testing.T) {
	e := New(loadPack(t), benchOptions)
	start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := 0; i < 60; i++ {
		evs = append(evs, event.Event{SchemaVersion: 1, ID: event.NewID("t", fmt.Sprint(i)), Kind: event.KindStatus, Channel: event.ChannelWhatsApp,
			EventTime: start.Add(time.Duration(i) * time.Second), WABAID: "W1", PhoneNumberID: "PN1", MessageID: fmt.Sprint("m", i),
			Status: "failed", Error: &event.Error{Code: 130429, Class: event.ClassThrottle}})
	}
	var states []string
	next := 0
	for s := 0; s <= 12*60; s += 10 {
		now := start.Add(time.Duration(s) * time.Second)
		for ; next < len(evs) && !evs[next].EventTime.After(now); next++ {
			if got := e.Apply(0, &evs[next]); got != window.Applied {
				t.Fatalf("apply: %v", got)
			}
		}
		for _, a := range e.Eval(context.Background(), now) {
			if a.Name == "ThroughputErrors" {
				states = append(states, fmt.Sprintf("%ds:%s", s, a.State))
				if a.State == alert.StateFiring && (a.Labels["phone_number"] != "PN1" || len(a.Actions) != 1 || a.Annotations["summary"] == "") {
					t.Errorf("firing alert: %+v", a)
				}
			}
		}
	}
	// 51 errors by the 50 s evaluation: fires (for 0). With 30 s buckets
	// the errors leave the 5 min window once it starts at or after 60 s
	// (evaluation at 360 s); keep_firing_for 2m resolves it at 480 s.
	if len(states) != 2 || states[0] != "50s:firing" || states[1] != "480s:resolved" {
		t.Fatalf("ThroughputErrors went through %v", states)
	}
}

// TestNumbersOnRecordOnly: a rule over WABAs that does not read
// numbers_active (AccountRestricted) still carries the numbers of its
// WABA on its alert records, counted when the record is made.
func TestNumbersOnRecordOnly(t *testing.T) {
	e := New(loadPack(t), benchOptions)
	if rs := findRule(t, e, "AccountRestricted"); rs.numbers < 0 || rs.reads.numbers {
		t.Fatalf("AccountRestricted: numbers keyspace %d, reads numbers %v", rs.numbers, rs.reads.numbers)
	}
	start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	i := 0
	apply := func(ev event.Event) {
		i++
		ev.SchemaVersion, ev.ID, ev.WABAID = 1, event.NewID("n", fmt.Sprint(i)), "W1"
		if got := e.Apply(0, &ev); got != window.Applied {
			t.Fatalf("apply %+v: %v", ev, got)
		}
	}
	// Three numbers with 60 attempts each in the hour, one with 10.
	for s := range 60 {
		for _, pn := range []string{"PN1", "PN2", "PN3"} {
			apply(event.Event{Kind: event.KindStatus, Channel: event.ChannelWhatsApp, EventTime: start.Add(time.Duration(s) * time.Minute),
				PhoneNumberID: pn, MessageID: fmt.Sprint(pn, s), Status: "sent"})
		}
		if s%6 == 0 {
			apply(event.Event{Kind: event.KindStatus, Channel: event.ChannelWhatsApp, EventTime: start.Add(time.Duration(s) * time.Minute),
				PhoneNumberID: "PN4", MessageID: fmt.Sprint("PN4", s), Status: "sent"})
		}
	}
	apply(event.Event{Kind: event.KindAccountUpdate, EventTime: start.Add(61 * time.Minute), Account: &event.Account{Event: "ACCOUNT_RESTRICTION"}})
	var fired []alert.Alert
	for s := 0; s <= 70*60; s += 10 {
		for _, a := range e.Eval(context.Background(), start.Add(time.Duration(s)*time.Second)) {
			if a.Name == "AccountRestricted" {
				fired = append(fired, a)
			}
		}
	}
	if len(fired) != 1 || fired[0].State != alert.StateFiring {
		t.Fatalf("AccountRestricted went through %+v", fired)
	}
	if v := fired[0].Values; v.NumbersActive != 3 || v.NumbersDegraded != 0 {
		t.Errorf("firing record: numbers_active %d, numbers_degraded %d; want 3, 0", v.NumbersActive, v.NumbersDegraded)
	}
}

func findRule(t *testing.T, e *Engine, name string) *ruleState {
	t.Helper()
	for _, g := range e.groups {
		for _, rs := range g.rules {
			if rs.rule.Alert == name {
				return rs
			}
		}
	}
	t.Fatalf("no rule %s", name)
	return nil
}

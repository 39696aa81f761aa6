package alert

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzTimeline drives a tracker with arbitrary evaluations of a few keys
// and checks the lifecycle's invariants: only the transitions of the state
// machine occur, an occurrence keeps its ActiveAt and FiredAt, and the
// tracker never holds more than MaxActive alerts.
func FuzzTimeline(f *testing.F) {
	f.Add([]byte{0x01, 0x13, 0x07, 0x40, 0x01, 0x0f, 0x21, 0x10, 0x00, 0x55})
	f.Add([]byte{0xff, 0x7f, 0x3f, 0x1f, 0x0f, 0x07, 0x03, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		// The first byte picks the parameters.
		p := Params{
			For:           time.Duration(data[0]&3) * 10 * time.Second,
			KeepFiringFor: time.Duration(data[0]>>2&3) * 10 * time.Second,
			HasResolve:    data[0]&16 != 0,
		}
		tr, err := NewTracker(RuleInfo{Name: "R"}, p, Options{MaxActive: 2})
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]*Alert{} // by fingerprint, the last record
		now := t0
		for _, b := range data[1:] {
			// Each byte: time advance, key, condition, resolve, missing.
			now = now.Add(time.Duration(b>>6) * 10 * time.Second)
			labels := map[string]string{"k": string('a' + rune(b>>4&3))}
			fp := tr.Fingerprint(labels)
			var a *Alert
			if b&8 != 0 {
				a = tr.Missing(now, fp)
			} else {
				a = tr.Eval(now, Input{Labels: labels, Condition: b&1 != 0, Resolve: b&2 != 0})
			}
			if pending, firing := tr.Counts(); pending+firing > 2 {
				t.Fatalf("holds %d alerts, max 2", pending+firing)
			}
			if a == nil {
				continue
			}
			if a.Fingerprint != fp || !a.EvalTime.Equal(now) {
				t.Fatalf("record of %s at %v for key %s at %v", a.Fingerprint, a.EvalTime, fp, now)
			}
			prev := last[fp]
			prevState := StateInactive
			if prev != nil {
				prevState = prev.State
			}
			ok := map[State][]State{
				StateInactive: {StatePending, StateFiring},
				StateResolved: {StatePending, StateFiring},
				StatePending:  {StateFiring, StateInactive},
				StateFiring:   {StateResolved},
			}[prevState]
			valid := false
			for _, s := range ok {
				valid = valid || s == a.State
			}
			if !valid {
				t.Fatalf("transition %s -> %s", prevState, a.State)
			}
			continuing := prevState == StatePending || prevState == StateFiring
			if continuing && a.Occurrence() != prev.Occurrence() {
				t.Fatalf("occurrence changed within %s -> %s", prevState, a.State)
			}
			if !continuing && !a.ActiveAt.Equal(now) {
				t.Fatalf("new occurrence active at %v, evaluated at %v", a.ActiveAt, now)
			}
			if prevState == StateFiring && !a.FiredAt.Equal(*prev.FiredAt) {
				t.Fatalf("fired_at changed: %v -> %v", prev.FiredAt, a.FiredAt)
			}
			if a.State == StateFiring && now.Sub(a.ActiveAt) < p.For {
				t.Fatalf("fired %v after active, for %v", now.Sub(a.ActiveAt), p.For)
			}
			last[fp] = a
		}
	})
}

// FuzzRestore feeds arbitrary records, as read from the alerts topic, to
// Restore: it must not panic, and what it accepts must be a consistent
// pending or firing alert that evaluates normally.
func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"alertname":"R","state":"firing","labels":{"k":"a"},"active_at":"2026-03-02T12:00:00Z","fired_at":"2026-03-02T12:00:10Z"}`))
	f.Add([]byte(`{"schema_version":1,"alertname":"R","state":"pending","labels":null,"active_at":"2026-03-02T12:00:00Z"}`))
	f.Add([]byte(`{"schema_version":1,"alertname":"R","state":"resolved"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Alert
		if json.Unmarshal(data, &a) != nil {
			return
		}
		tr, err := NewTracker(RuleInfo{Name: "R"}, Params{For: time.Minute}, Options{MaxActive: 1})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Restore(a) != nil {
			return
		}
		for _, r := range tr.Active() {
			if r.Fingerprint != Fingerprint(r.Labels) || r.Labels[LabelAlertName] != "R" {
				t.Fatalf("restored %+v", r)
			}
			if (r.State == StateFiring) != (r.FiredAt != nil) || r.ResolvedAt != nil {
				t.Fatalf("restored %s with fired_at %v resolved_at %v", r.State, r.FiredAt, r.ResolvedAt)
			}
			out := tr.Missing(r.ActiveAt.Add(time.Hour), r.Fingerprint)
			if out == nil || (out.State != StateInactive && out.State != StateResolved) {
				t.Fatalf("missing data did not end the restored alert: %+v", out)
			}
		}
	})
}

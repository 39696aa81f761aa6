package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/event"
	"vigia/internal/rules"
	"vigia/internal/ruletest"
)

var t0 = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

func loadRules(tb testing.TB, paths ...string) *rules.Set {
	tb.Helper()
	set, err := rules.Load(paths...)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// history expands ruletest input lines from t0.
func history(tb testing.TB, lines ...string) []event.Event {
	tb.Helper()
	evs, err := ruletest.Generate(t0, lines)
	if err != nil {
		tb.Fatal(err)
	}
	return evs
}

// burst is an hour of traffic on three numbers with a burst of
// throughput errors (130429) on P3 from 20m to 25m: 10 every 10 s.
var burst = []string{
	"0m-60m every 10s: 5 sent phone_number=P1 waba=W1 template=promo",
	"0m-60m every 10s: 5 delivered phone_number=P1 waba=W1",
	"0m-60m every 10s: 3 sent phone_number=P2 waba=W1 template=promo",
	"0m-60m every 10s: 5 sent phone_number=P3 waba=W1 template=welcome",
	"20m-25m every 10s: 10 failed code=130429 phone_number=P3 waba=W1",
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestThroughputErrorsFireAndResolve(t *testing.T) {
	set := loadRules(t, "../../rules")
	src := NewMemory(history(t, burst...))
	run := func() (*Report, []byte) {
		rep, err := Run(context.Background(), src, set, Options{From: t0, To: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return rep, js
	}
	rep, js := run()
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", text.String())
	// 50 errors by the 20m40s evaluation (five times ten, the events at
	// 20m40s included): fires. The last errors sit in the bucket
	// [24m30s, 25m), which leaves the 5 min window at 30m; keep_firing_for
	// 2m resolves it at 32m.
	want := []struct {
		at    time.Duration
		state alert.State
	}{{20*time.Minute + 40*time.Second, alert.StateFiring}, {32 * time.Minute, alert.StateResolved}}
	if len(rep.Changes) != len(want) {
		t.Fatalf("got %d changes, want %d:\n%s", len(rep.Changes), len(want), text.String())
	}
	for i, w := range want {
		c := rep.Changes[i]
		if c.Alertname != "ThroughputErrors" || c.Key["phone_number"] != "P3" || c.State != w.state || !c.EvalTime.Equal(at(w.at)) {
			t.Errorf("change %d: %s %s %v at %s, want ThroughputErrors firing for P3 at %s", i, c.Alertname, c.State, c.Key, c.EvalTime.Sub(t0), w.at)
		}
	}
	fire := rep.Changes[0]
	if len(fire.Actions) != 1 || fire.Actions[0].Type != "throttle" || fire.Actions[0].Params["phone_number"] != "P3" || fire.Actions[0].Params["rate"] != "40/s" {
		t.Errorf("firing actions: %+v", fire.Actions)
	}
	if got := fire.Evidence["code(130429)"]; got != int64(50) {
		t.Errorf("evidence code(130429) = %v (%T), want 50", got, got)
	}
	if fire.Annotations["summary"] == "" || fire.Labels["severity"] != "warning" {
		t.Errorf("firing record: annotations %v labels %v", fire.Annotations, fire.Labels)
	}
	if rs := rep.Changes[1]; len(rs.Actions) != 0 || rs.Occurrence != fire.Occurrence {
		t.Errorf("resolved record: actions %v, occurrence %s (firing %s)", rs.Actions, rs.Occurrence, fire.Occurrence)
	}
	var te *RuleTotals
	for i := range rep.Rules {
		if rep.Rules[i].Alertname == "ThroughputErrors" {
			te = &rep.Rules[i]
		}
	}
	if te == nil || te.Firing != 1 || te.Resolved != 1 || te.FiringAtEnd != 0 {
		t.Errorf("ThroughputErrors totals: %+v", te)
	}
	if rep.Events != int64(len(src.events)) || rep.Outcomes["applied"] != uint64(len(src.events)) {
		t.Errorf("events %d, outcomes %v; want %d applied", rep.Events, rep.Outcomes, len(src.events))
	}
	if !strings.Contains(text.String(), "throttle phone_number=P3 rate=40/s") || !strings.Contains(text.String(), "code(130429)=50") {
		t.Errorf("text report lacks the action or the evidence:\n%s", text.String())
	}
	// Nothing depends on the clock: a second run gives the same report.
	if _, js2 := run(); !bytes.Equal(js, js2) {
		t.Errorf("two runs differ:\n%s\n%s", js, js2)
	}
}

func TestMemory(t *testing.T) {
	var evs []event.Event
	for _, s := range []int{50, 10, 30, 10, 40, 20, 0} {
		evs = append(evs, event.Event{ID: fmt.Sprint(s), EventTime: t0.Add(time.Duration(s) * time.Second)})
	}
	evs[3].ID = "10b" // the second of two at 10 s: stays second
	m := NewMemory(evs)
	m.BatchSize = 2
	for _, tc := range []struct {
		from, to time.Duration
		want     string
	}{
		{0, time.Minute, "[0 10] [10b 20] [30 40] [50]"},
		{10 * time.Second, 40 * time.Second, "[10 10b] [20 30]"},
		{11 * time.Second, 12 * time.Second, ""},
		{time.Hour, 2 * time.Hour, ""},
	} {
		var got []string
		err := m.Events(context.Background(), t0.Add(tc.from), t0.Add(tc.to), func(b []event.Event) error {
			var ids []string
			for _, e := range b {
				ids = append(ids, e.ID)
			}
			got = append(got, fmt.Sprint(ids))
			return nil
		})
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("[%s, %s): %v, %v; want %s", tc.from, tc.to, got, err, tc.want)
		}
	}
	stop := errors.New("stop")
	if err := m.Events(context.Background(), t0, t0.Add(time.Hour), func([]event.Event) error { return stop }); err != stop {
		t.Errorf("fn's error: got %v", err)
	}
}

// TestBoundWarnings: a replay that overflows the dedupe memory says so in
// its report (text and JSON); one within the bounds has no warning.
func TestBoundWarnings(t *testing.T) {
	set := loadRules(t, "../../rules")
	src := NewMemory(generate(genOptions{Seed: 3, Start: t0, Duration: 10 * time.Minute, Rate: 20, Numbers: 20, WABAs: 2,
		Templates: 4, Users: 1000}))
	for _, c := range []struct {
		maxDedupe int
		warn      bool
	}{{0, false}, {64, true}} {
		o := Options{From: t0, To: t0.Add(10 * time.Minute), Window: WindowOptions(config.Default().Evaluator)}
		if c.maxDedupe > 0 {
			o.Window.MaxDedupe = c.maxDedupe
		}
		rep, err := Run(context.Background(), src, set, o)
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		if err := rep.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(rep)
		warned := len(rep.Warnings) == 1 && strings.Contains(rep.Warnings[0], "evaluator.max_dedupe = 64") &&
			strings.Contains(text.String(), "warning: the dedupe memory") && strings.Contains(string(js), `"warnings"`)
		if warned != c.warn || (!c.warn && len(rep.Warnings) > 0) {
			t.Errorf("max_dedupe %d: warnings %q, want a warning: %v\n%s", c.maxDedupe, rep.Warnings, c.warn, text.String())
		}
	}
}

// TestMemoryCountEvents: Memory counts the events of [from, to), which a
// replay reserves its dedupe and attribution memories for.
func TestMemoryCountEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, event.Event{ID: fmt.Sprint(i), EventTime: t0.Add(time.Duration(i) * time.Minute)})
	}
	m := NewMemory(evs)
	for _, c := range []struct {
		from, to time.Duration
		want     int64
	}{{0, 10 * time.Minute, 10}, {time.Minute, 3 * time.Minute, 2}, {90 * time.Second, 150 * time.Second, 1}, {-time.Hour, 0, 0}, {5 * time.Minute, time.Minute, 0}} {
		if got, err := m.CountEvents(context.Background(), t0.Add(c.from), t0.Add(c.to)); err != nil || got != c.want {
			t.Errorf("[%v, %v): %d, %v; want %d", c.from, c.to, got, err, c.want)
		}
	}
}

// TestDedupeHorizon: the decider forgets (message id, status) pairs past
// evaluator.dedupe_horizon at the evaluation instants, as the live
// evaluator's store does: a copy within the horizon is a duplicate, one
// after it counts again. So do two rule sets sharing the decider.
func TestDedupeHorizon(t *testing.T) {
	w := WindowOptions(config.Default().Evaluator)
	w.DedupeHorizon = 10 * time.Minute
	ev := func(id string, at time.Duration) event.Event {
		return event.Event{SchemaVersion: event.SchemaVersion, ID: event.NewID("h", id, fmt.Sprint(at)), Kind: event.KindStatus,
			Channel: event.ChannelWhatsApp, EventTime: t0.Add(at), WABAID: "W1", PhoneNumberID: "P1", MessageID: id, Status: "sent"}
	}
	evs := []event.Event{ev("m1", 0), ev("m2", time.Second), ev("m1", 5*time.Minute), ev("m2", 20*time.Minute)}
	set := loadRules(t, "../../rules")
	reps, err := RunSets(context.Background(), NewMemory(evs), []*rules.Set{set, set}, Options{From: t0, To: t0.Add(time.Hour), Window: w})
	if err != nil {
		t.Fatal(err)
	}
	for i, rep := range reps {
		if rep.Outcomes["applied"] != 3 || rep.Outcomes["duplicate"] != 1 {
			t.Errorf("set %d: outcomes %v, want 3 applied (m2 again after the horizon) and 1 duplicate (m1 within it)", i, rep.Outcomes)
		}
	}
}

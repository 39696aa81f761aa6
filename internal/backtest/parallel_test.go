package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"vigia/internal/rules"
)

// TestParallelSameReport: however the work is split, the report is the
// same, byte for byte; RunSets gives each set the report Run gives it.
func TestParallelSameReport(t *testing.T) {
	o := genOptions{Seed: 7, Start: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC), Duration: 40 * time.Minute,
		Rate: 10, Numbers: 60, WABAs: 3, Templates: 20, Users: 5000}
	src := NewMemory(generate(o))
	pack := loadRules(t, "../../rules")
	strict := loadRules(t, throughputRule(t, 80, "2m", "warning"))
	opts := Options{From: o.Start, To: o.Start.Add(o.Duration)}
	marshal := func(r *Report) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var want []byte
	for _, par := range []int{1, 2, 3} {
		opts.Parallelism = par
		rep, err := Run(context.Background(), src, pack, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := marshal(rep)
		if want == nil {
			want = got
			if rep.Totals.Firing < 3 || len(rep.Outcomes) < 2 {
				t.Fatalf("the history should fire alerts and give several outcomes: %d fired, outcomes %v", rep.Totals.Firing, rep.Outcomes)
			}
			t.Logf("%d events, %d fired, outcomes %v", rep.Events, rep.Totals.Firing, rep.Outcomes)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("parallelism %d: report differs from parallelism 1", par)
		}
	}
	opts.Parallelism = 2
	reps, err := RunSets(context.Background(), src, []*rules.Set{pack, strict}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(reps[0]), want) {
		t.Errorf("RunSets: the first set's report differs from Run's")
	}
	alone, err := Run(context.Background(), src, strict, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(reps[1]), marshal(alone)) {
		t.Errorf("RunSets: the second set's report differs from Run's: %q vs %q", reps[1].Warnings, alone.Warnings)
	}
}

// TestSplit: rules reading one keyspace stay together; every rule is in
// exactly one part; groups keep their intervals.
func TestSplit(t *testing.T) {
	pack := loadRules(t, "../../rules")
	parts := split(pack, 2)
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	where := map[string]int{}
	for i, p := range parts {
		for _, g := range p.Groups {
			orig := pack.Groups[0]
			for _, og := range pack.Groups {
				if og.Name == g.Name {
					orig = og
				}
			}
			if g.Interval != orig.Interval {
				t.Errorf("group %s: interval %s, want %s", g.Name, g.Interval, orig.Interval)
			}
			for _, r := range g.Rules {
				if _, dup := where[r.Alert]; dup {
					t.Errorf("%s in two parts", r.Alert)
				}
				where[r.Alert] = i
			}
		}
	}
	if len(where) != len(RuleNames(pack)) {
		t.Errorf("%d rules in the parts, want %d", len(where), len(RuleNames(pack)))
	}
	// PlatformDegradation reads the numbers of each WABA from the phone
	// number keyspace of DeliveryRateDrop (at 1m).
	for _, pair := range [][2]string{{"DeliveryRateDrop", "DeliveryLatencyRising"}, {"SpamRateLimitSpike", "ThroughputErrors"}, {"DeliveryRateDrop", "PlatformDegradation"}} {
		if where[pair[0]] != where[pair[1]] {
			t.Errorf("%s and %s read one keyspace but are in different parts", pair[0], pair[1])
		}
	}
	if got := split(pack, 1); len(got) != 1 || got[0] != pack {
		t.Errorf("split in 1: %d parts", len(got))
	}
}

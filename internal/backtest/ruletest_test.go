package backtest

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"vigia/internal/alert"
	"vigia/internal/ruletest"
	"vigia/internal/window"
)

// ruletestWindow are the window options ruletest's runner uses, so that
// both paths see the same windows.
var ruletestWindow = window.Options{
	AllowedLateness: time.Hour, DedupeHorizon: 24 * time.Hour, IdleTTL: 24 * time.Hour,
	MaxKeys: 1 << 20, MaxDedupe: 1 << 24, MaxAttribution: 1 << 20,
}

// firingAt lists the alerts of a report firing just after the evaluation
// at t: fired at or before t, not resolved by t.
func firingAt(r *Report, t time.Time) []Change {
	var out []Change
	resolved := map[string]time.Time{}
	for _, c := range r.Changes {
		if c.State == alert.StateResolved {
			resolved[c.Occurrence] = c.EvalTime
		}
	}
	for _, c := range r.Changes {
		if c.State != alert.StateFiring || c.EvalTime.After(t) {
			continue
		}
		if end, ok := resolved[c.Occurrence]; ok && !end.After(t) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// TestSameAsRuleTests replays the inputs of the shipped rule pack's unit
// tests, and of the throughput burst, and checks the backtest against the
// engine as ruletest drives it (a simulated clock stepping by the smallest
// interval):
//
//   - the firing alerts at every expectation of the shipped tests are
//     those the test expects;
//   - ruletest, given expectations written from the backtest's report
//     (what fires at each change time, and one step before it), passes
//     them: both paths fire and resolve the same alerts at the same
//     instants.
func TestSameAsRuleTests(t *testing.T) {
	files, err := filepath.Glob("../../rules/tests/*_test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests: %v", err)
	}
	type scenario struct {
		name      string
		ruleFiles []string
		test      ruletest.Test
	}
	var scenarios []scenario
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf ruletest.File
		if err := yaml.Unmarshal(data, &tf); err != nil {
			t.Fatal(err)
		}
		var rfs []string
		for _, rf := range tf.RuleFiles {
			abs, _ := filepath.Abs(filepath.Join(filepath.Dir(f), rf))
			rfs = append(rfs, abs)
		}
		for _, tc := range tf.Tests {
			scenarios = append(scenarios, scenario{filepath.Base(f) + ": " + tc.Name, rfs, tc})
		}
	}
	pack, _ := filepath.Abs("../../rules")
	scenarios = append(scenarios, scenario{"throughput burst, whole pack", []string{pack},
		ruletest.Test{Input: burst, Alerts: []ruletest.Expectation{{At: ruletest.Duration(time.Hour)}}}})
	if len(scenarios) < 10 {
		t.Fatalf("only %d scenarios", len(scenarios))
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			start := sc.test.Start
			if start.IsZero() {
				start = ruletest.DefaultStart
			}
			evs, err := ruletest.Generate(start, sc.test.Input)
			if err != nil {
				t.Fatal(err)
			}
			set := loadRules(t, sc.ruleFiles...)
			step := time.Duration(1<<63 - 1)
			for _, g := range set.Groups {
				step = min(step, g.Interval)
			}
			var end time.Duration
			for _, e := range sc.test.Alerts {
				end = max(end, time.Duration(e.At))
			}
			end += 10 * time.Minute
			rep, err := Run(context.Background(), NewMemory(evs), set, Options{From: start, To: start.Add(end), Window: ruletestWindow})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = rep.WriteText(&text)

			// The shipped expectations hold in the report.
			for _, exp := range sc.test.Alerts {
				if len(exp.Firing) == 0 && time.Duration(exp.At) == time.Hour && sc.name == "throughput burst, whole pack" {
					continue // not an expectation of its own
				}
				got := firingAt(rep, start.Add(time.Duration(exp.At)))
				if len(got) != len(exp.Firing) {
					t.Errorf("at %s: %d firing, want %d:\n%s", time.Duration(exp.At), len(got), len(exp.Firing), text.String())
					continue
				}
				for _, w := range exp.Firing {
					if !slices.ContainsFunc(got, func(c Change) bool {
						if c.Alertname != w.Alertname {
							return false
						}
						for k, v := range w.Labels {
							if c.Labels[k] != v {
								return false
							}
						}
						return true
					}) {
						t.Errorf("at %s: %s %v not firing:\n%s", time.Duration(exp.At), w.Alertname, w.Labels, text.String())
					}
				}
			}

			// ruletest agrees with every change time of the report.
			times := map[time.Duration]bool{end - step: true}
			for _, c := range rep.Changes {
				d := c.EvalTime.Sub(start)
				times[d] = true
				if d >= step {
					times[d-step] = true
				}
			}
			var alerts []map[string]any
			for _, d := range slices.Sorted(maps.Keys(times)) {
				firing := []map[string]any{}
				for _, c := range firingAt(rep, start.Add(d)) {
					labels := maps.Clone(c.Labels)
					delete(labels, "alertname")
					firing = append(firing, map[string]any{"alertname": c.Alertname, "labels": labels})
				}
				alerts = append(alerts, map[string]any{"at": d.String(), "firing": firing})
			}
			file := map[string]any{"rule_files": sc.ruleFiles, "tests": []map[string]any{{
				"name": "from the backtest", "start": start, "input": sc.test.Input, "alerts": alerts,
			}}}
			data, err := yaml.Marshal(file)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "backtest_test.yaml")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			results, err := ruletest.RunFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if len(r.Problems) > 0 {
					t.Errorf("ruletest disagrees with the backtest:\n%s\nbacktest:\n%s", strings.Join(r.Problems, "\n"), text.String())
				}
			}
			t.Logf("%d changes, %d instants checked by ruletest", len(rep.Changes), len(times))
		})
	}
}

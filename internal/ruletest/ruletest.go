// Package ruletest runs rule unit tests, in the spirit of promtool test
// rules: an input timeline of events in a compact notation, evaluation on a
// simulated clock through the same engine the evaluator runs, and the
// alerts expected at given times, with their labels and values.
//
// A test file:
//
//	rule_files: [../delivery.yaml]         # relative to the test file
//	tests:
//	  - name: delivery collapse on one number
//	    start: 2026-01-05T12:00:00Z          # optional
//	    input:
//	      - "0m-75m every 10s: 10 sent phone_number=P1 waba=W1 template=promo"
//	      - "0m-60m every 10s: 10 delivered phone_number=P1 waba=W1"
//	      - "31m: template_status PAUSED template=promo waba=W1"
//	    alerts:
//	      - at: 70m
//	        firing:
//	          - alertname: DeliveryRateDrop
//	            labels: {phone_number: P1}
//	            values: {delivery_rate: 0.5}
//	        pending: []
//
// Input lines are `<time>: <what>` or `<from>-<to> every <step>: <what>`
// (to exclusive), where <what> is `[n] <kind> [ARG] [key=value...]`; docs/rules.md
// lists the kinds and keys. Expectations list every firing (and, when given,
// pending) alert at that time: an alert matches when its name is equal,
// every label given is equal, and every value given is within 0.1 %.
package ruletest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"vigia/internal/alert"
	"vigia/internal/engine"
	"vigia/internal/rules"
	"vigia/internal/window"
)

// File is a rule test file.
type File struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []Test   `yaml:"tests"`
}

// Test is one scenario.
type Test struct {
	Name   string        `yaml:"name"`
	Start  time.Time     `yaml:"start"`
	Input  []string      `yaml:"input"`
	Alerts []Expectation `yaml:"alerts"`
}

// Expectation is what must be active at one time.
type Expectation struct {
	At      Duration         `yaml:"at"`
	Firing  []ExpectedAlert  `yaml:"firing"`
	Pending *[]ExpectedAlert `yaml:"pending"`
}

// ExpectedAlert describes one alert.
type ExpectedAlert struct {
	Alertname string             `yaml:"alertname"`
	Labels    map[string]string  `yaml:"labels"`
	Values    map[string]float64 `yaml:"values"`
}

// Duration reads Go durations in YAML ("70m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// DefaultStart is the simulated start when a test gives none.
var DefaultStart = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// Run runs test files, printing a line per failure and a summary
// "N passed, M failed"; it returns the exit code (0 all passed, 1 otherwise).
func Run(w io.Writer, paths ...string) int {
	passed, failed := 0, 0
	for _, p := range paths {
		results, err := RunFile(p)
		if err != nil {
			fmt.Fprintf(w, "FAIL %s: %v\n", p, err)
			failed++
			continue
		}
		for _, r := range results {
			if len(r.Problems) == 0 {
				fmt.Fprintf(w, "ok   %s: %s\n", p, r.Name)
				passed++
				continue
			}
			failed++
			fmt.Fprintf(w, "FAIL %s: %s\n", p, r.Name)
			for _, pr := range r.Problems {
				fmt.Fprintf(w, "       %s\n", pr)
			}
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// Result is the outcome of one test.
type Result struct {
	Name     string
	Problems []string
}

// RunFile loads a test file and runs each of its tests.
func RunFile(path string) ([]Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.RuleFiles) == 0 || len(f.Tests) == 0 {
		return nil, fmt.Errorf("%s: needs rule_files and tests", path)
	}
	var ruleFiles []string
	for _, rf := range f.RuleFiles {
		if !filepath.IsAbs(rf) {
			rf = filepath.Join(filepath.Dir(path), rf)
		}
		ruleFiles = append(ruleFiles, rf)
	}
	set, err := rules.Load(ruleFiles...)
	if err != nil {
		return nil, err
	}
	var out []Result
	for i, t := range f.Tests {
		if t.Name == "" {
			t.Name = fmt.Sprintf("test %d", i+1)
		}
		// Each test gets a fresh rule set: trackers and windows start empty.
		if i > 0 {
			if set, err = rules.Load(ruleFiles...); err != nil {
				return nil, err
			}
		}
		out = append(out, Result{Name: t.Name, Problems: runTest(set, t)})
	}
	return out, nil
}

func runTest(set *rules.Set, t Test) []string {
	start := t.Start
	if start.IsZero() {
		start = DefaultStart
	}
	events, err := Generate(start, t.Input)
	if err != nil {
		return []string{err.Error()}
	}
	eng := engine.New(set, engine.Options{Window: window.Options{
		AllowedLateness: time.Hour, DedupeHorizon: 24 * time.Hour, IdleTTL: 24 * time.Hour,
		MaxKeys: 1 << 20, MaxDedupe: 1 << 24, MaxAttribution: 1 << 20,
	}})
	step := smallestInterval(set)
	expects := append([]Expectation(nil), t.Alerts...)
	sort.Slice(expects, func(i, j int) bool { return expects[i].At < expects[j].At })
	if len(expects) == 0 {
		return []string{"no alerts expectations"}
	}
	end := start.Add(time.Duration(expects[len(expects)-1].At))
	var problems []string
	next := 0
	ei := 0
	for now := start; !now.After(end); now = now.Add(step) {
		for next < len(events) && !events[next].EventTime.After(now) {
			eng.Apply(0, &events[next])
			next++
		}
		eng.Eval(context.Background(), now)
		if eng.LastEvalError != nil {
			problems = append(problems, fmt.Sprintf("at %s: evaluation error: %v", now.Sub(start), eng.LastEvalError))
			eng.LastEvalError = nil
		}
		for ei < len(expects) && !start.Add(time.Duration(expects[ei].At)).After(now) {
			problems = append(problems, compare(expects[ei], eng.Active(), now.Sub(start))...)
			ei++
		}
	}
	return problems
}

func smallestInterval(set *rules.Set) time.Duration {
	step := time.Duration(math.MaxInt64)
	for _, g := range set.Groups {
		step = min(step, g.Interval)
	}
	if step == time.Duration(math.MaxInt64) {
		step = 10 * time.Second
	}
	return step
}

func compare(exp Expectation, active []*alert.Alert, at time.Duration) []string {
	var problems []string
	check := func(state alert.State, want []ExpectedAlert) {
		var got []*alert.Alert
		for _, a := range active {
			if a.State == state {
				got = append(got, a)
			}
		}
		used := make([]bool, len(got))
		for _, w := range want {
			found := false
			for i, g := range got {
				if !used[i] && matches(w, g) {
					used[i], found = true, true
					break
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("at %s: expected %s %s%s%s; got %s", at, state, w.Alertname, labelString(w.Labels), valueString(w.Values), describe(got)))
			}
		}
		for i, g := range got {
			if !used[i] {
				problems = append(problems, fmt.Sprintf("at %s: unexpected %s %s%s", at, state, g.Name, labelString(g.Labels)))
			}
		}
	}
	check(alert.StateFiring, exp.Firing)
	if exp.Pending != nil {
		check(alert.StatePending, *exp.Pending)
	}
	return problems
}

func matches(w ExpectedAlert, g *alert.Alert) bool {
	if w.Alertname != g.Name {
		return false
	}
	for k, v := range w.Labels {
		if g.Labels[k] != v {
			return false
		}
	}
	if len(w.Values) == 0 {
		return true
	}
	vals := valuesMap(g)
	for k, want := range w.Values {
		got, ok := vals[k]
		if !ok || !close(got, want) {
			return false
		}
	}
	return true
}

func close(a, b float64) bool {
	d := math.Abs(a - b)
	return d <= 1e-9 || d <= 1e-3*math.Max(math.Abs(a), math.Abs(b))
}

// valuesMap flattens an alert's values by their JSON names; baseline
// values are named baseline.<name>.
func valuesMap(a *alert.Alert) map[string]float64 {
	out := map[string]float64{}
	flatten := func(prefix string, v any) {
		b, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for k, x := range m {
			if f, ok := x.(float64); ok {
				out[prefix+k] = f
			}
		}
	}
	flatten("", a.Values)
	if a.Baseline != nil {
		flatten("baseline.", *a.Baseline)
	}
	return out
}

func describe(as []*alert.Alert) string {
	if len(as) == 0 {
		return "none"
	}
	var parts []string
	for _, a := range as {
		v := valuesMap(a)
		parts = append(parts, fmt.Sprintf("%s%s (attempts=%v delivery_rate=%.4g opt_outs=%v)", a.Name, labelString(a.Labels),
			v["attempts"], v["delivery_rate"], v["opt_outs"]))
	}
	return strings.Join(parts, "; ")
}

// labelString prints labels as {a="x", b="y"}, sorted, without alertname.
func labelString(l map[string]string) string {
	var parts []string
	for k, v := range l {
		if k != "alertname" {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

func valueString(v map[string]float64) string {
	if len(v) == 0 {
		return ""
	}
	var parts []string
	for k, x := range v {
		parts = append(parts, fmt.Sprintf("%s=%g", k, x))
	}
	sort.Strings(parts)
	return " with " + strings.Join(parts, ", ")
}

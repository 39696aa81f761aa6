package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vigia/internal/alert"
	"vigia/internal/event"
	"vigia/internal/rules"
	"vigia/internal/window"
)

// TestResolveOnlyWhenNeeded: the resolve condition is evaluated only for
// an alert held whose condition is false, and its memo follows the input.
// A rule with hysteresis (fire at 5 errors, resolve below 2) goes through
// 6 errors (fires), 3 (condition false, resolve false: stays firing, for
// several rounds with the same input, answered by the memo), then 1
// (resolves). A resolve condition that fails at run time costs nothing
// while nothing fires, and fails the evaluations that need it.
func TestResolveOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir()
	pack := `groups:
  - name: g
    interval: 10s
    rules:
      - alert: Hysteresis
        by: [phone_number]
        window: 5m
        resolution: 10s
        when: code(130429) >= 5
        resolve_when: code(130429) < 2
      - alert: BrokenResolve
        by: [phone_number]
        window: 5m
        resolution: 10s
        when: code(130429) >= 5
        resolve_when: failures_by_code[1] > 0
`
	if err := os.WriteFile(filepath.Join(dir, "pack.yaml"), []byte(pack), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := New(set, benchOptions)
	start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	// Errors at these seconds: a 5 m window holds them until 300 s after
	// their bucket.
	errorsAt := []int{0, 1, 2, 60, 61, 62}
	for i, s := range errorsAt {
		ev := event.Event{SchemaVersion: 1, ID: event.NewID("r", fmt.Sprint(i)), Kind: event.KindStatus, Channel: event.ChannelWhatsApp,
			EventTime: start.Add(time.Duration(s) * time.Second), WABAID: "W1", PhoneNumberID: "PN1", MessageID: fmt.Sprint("m", i),
			Status: "failed", Error: &event.Error{Code: 130429, Class: event.ClassThrottle}}
		if got := e.Apply(0, &ev); got != window.Applied {
			t.Fatalf("apply: %v", got)
		}
	}
	// Before the errors fire anything (the first round, at 0 s, sees 3
	// errors at most): no evaluation fails, the broken resolve condition
	// is never run.
	var states []string
	var failuresAt []int64
	for s := 0; s <= 420; s += 10 {
		for _, a := range e.Eval(ctx, start.Add(time.Duration(s)*time.Second)) {
			states = append(states, fmt.Sprintf("%s@%d:%s", a.Name, s, a.State))
		}
		failuresAt = append(failuresAt, e.EvalFailures)
	}
	// 6 errors from 70 s (the round at 70 s sees the bucket of 60-70 s):
	// both fire. From 310 s the first three left the window: 3 errors,
	// condition false, Hysteresis's resolve false, BrokenResolve's fails.
	// From 370 s none is left: Hysteresis resolves.
	want := []string{"Hysteresis@70:firing", "BrokenResolve@70:firing", "Hysteresis@370:resolved"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", states, want)
	}
	if failuresAt[30] != 0 { // round at 300 s: still firing on its condition
		t.Errorf("%d evaluations failed before a resolve condition was needed", failuresAt[30])
	}
	if failuresAt[31] != 1 || e.EvalFailures <= 1 {
		t.Errorf("evaluation failures: %d after 310 s, %d in all; want 1, then more", failuresAt[31], e.EvalFailures)
	}
	if e.LastEvalError == nil {
		t.Error("no evaluation error recorded")
	}
	for _, a := range e.Active() {
		if a.Name == "BrokenResolve" && a.State != alert.StateFiring {
			t.Errorf("BrokenResolve is %s, want firing (its evaluations fail)", a.State)
		}
	}
}

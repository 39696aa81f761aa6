package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigia/internal/alert"
)

// throughputRule writes a rules file holding ThroughputErrors as shipped,
// with the threshold, keep_firing_for and severity given.
func throughputRule(t *testing.T, threshold int, keep, severity string) string {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`groups:
  - name: errors
    interval: 10s
    rules:
      - alert: ThroughputErrors
        by: [phone_number]
        window: 5m
        resolution: 30s
        when: code(130429) >= %d
        resolve_when: code(130429) < 10
        keep_firing_for: %s
        labels: {severity: %s, category: errors}
        actions:
          - throttle: {phone_number: "{{ .phone_number }}", rate: "40/s"}
`, threshold, keep, severity)
	path := filepath.Join(dir, "errors.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDiff replays one history through the shipped ThroughputErrors (A:
// 50 errors, keep_firing_for 2m) and variants of it (B). P3 gets 10
// errors every 10 s from 20m to 25m; P2 gets 2 every 10 s from 40m to 43m
// (36 in all), below A's threshold.
func TestDiff(t *testing.T) {
	evs := history(t, append(append([]string(nil), burst...), "40m-43m every 10s: 2 failed code=130429 phone_number=P2 waba=W1")...)
	src := NewMemory(evs)
	opts := Options{From: t0, To: t0.Add(time.Hour)}
	run := func(path string) *Report {
		rep, err := Run(context.Background(), src, loadRules(t, path), opts)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	a := run(throughputRule(t, 50, "2m", "warning"))
	if a.Totals.Firing != 1 {
		t.Fatalf("A fired %d alerts, want 1 (P3)", a.Totals.Firing)
	}
	type want struct {
		kind          DiffKind
		phone         string
		fired, solved string // deltas; "" when unset
	}
	for _, tc := range []struct {
		name      string
		threshold int
		keep      string
		severity  string
		want      []want
		same      int
	}{
		{name: "same rules", threshold: 50, keep: "2m", severity: "warning", same: 1},
		// 80 errors by 21m10s instead of 50 by 20m40s; resolves as before.
		{name: "stricter threshold fires later", threshold: 80, keep: "2m", severity: "warning",
			want: []want{{FiredLater, "P3", "+30s", "+0s"}}},
		{name: "much stricter never fires", threshold: 1000, keep: "2m", severity: "warning",
			want: []want{{OnlyInA, "P3", "", ""}}},
		// 20 errors by 20m10s; P2's 36 errors now fire too.
		{name: "looser threshold fires earlier and more", threshold: 20, keep: "2m", severity: "warning",
			want: []want{{FiredEarlier, "P3", "-30s", "+0s"}, {OnlyInB, "P2", "", ""}}},
		{name: "longer keep_firing_for resolves later", threshold: 50, keep: "5m", severity: "warning",
			want: []want{{ResolvedDifferently, "P3", "+0s", "+3m0s"}}},
		// Labels are the identity: another severity is another alert.
		{name: "another severity is another alert", threshold: 50, keep: "2m", severity: "critical",
			want: []want{{OnlyInA, "P3", "", ""}, {OnlyInB, "P3", "", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := run(throughputRule(t, tc.threshold, tc.keep, tc.severity))
			d := Diff(a, b)
			var text bytes.Buffer
			if err := d.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if len(d.Entries) != len(tc.want) || d.Summary.Same != tc.same {
				t.Fatalf("got %d entries, %d same; want %d, %d:\n%s", len(d.Entries), d.Summary.Same, len(tc.want), tc.same, text.String())
			}
			for i, w := range tc.want {
				e := d.Entries[i]
				if e.Kind != w.kind || e.Key["phone_number"] != w.phone || e.Alertname != "ThroughputErrors" ||
					deltaText(e.FiredDelta) != orDash(w.fired) || deltaText(e.ResolvedDelta) != orDash(w.solved) {
					t.Errorf("entry %d: %s %s %v fired %s resolved %s; want %s %s fired %s resolved %s\n%s", i, e.Kind, e.Alertname, e.Key,
						deltaText(e.FiredDelta), deltaText(e.ResolvedDelta), w.kind, w.phone, orDash(w.fired), orDash(w.solved), text.String())
				}
				if (e.A == nil) != (w.kind == OnlyInB) || (e.B == nil) != (w.kind == OnlyInA) {
					t.Errorf("entry %d: sides A %v B %v", i, e.A != nil, e.B != nil)
				}
			}
			js, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back DiffReport
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if len(back.Entries) != len(d.Entries) || back.Summary != d.Summary {
				t.Errorf("JSON round trip: %s", js)
			}
			if len(tc.want) > 0 && !strings.Contains(text.String(), kindText(tc.want[0].kind)) {
				t.Errorf("text lacks %q:\n%s", kindText(tc.want[0].kind), text.String())
			}
		})
	}
}

// TestDiffPairsOccurrences: occurrences of one alert pair up when they
// overlap, in time order; the rest are only on their side.
func TestDiffPairsOccurrences(t *testing.T) {
	labels := map[string]string{"alertname": "X", "phone_number": "P1"}
	fp := alert.Fingerprint(labels)
	ep := func(fired, resolved time.Duration) []Change {
		occ := fmt.Sprintf("%s-%d", fp, at(fired).UnixNano())
		f, r := at(fired), at(resolved)
		out := []Change{{EvalTime: f, State: alert.StateFiring, Alertname: "X", Group: "g", Fingerprint: fp, Occurrence: occ,
			Labels: labels, Key: map[string]string{"phone_number": "P1"}, ActiveAt: f, FiredAt: &f}}
		if resolved > 0 {
			out = append(out, Change{EvalTime: r, State: alert.StateResolved, Alertname: "X", Group: "g", Fingerprint: fp, Occurrence: occ,
				Labels: labels, Key: map[string]string{"phone_number": "P1"}, ActiveAt: f, FiredAt: &f, ResolvedAt: &r})
		}
		return out
	}
	report := func(eps ...[]Change) *Report {
		r := &Report{From: t0, To: t0.Add(10 * time.Hour)}
		for _, e := range eps {
			r.Changes = append(r.Changes, e...)
		}
		slicesSortChanges(r.Changes)
		return r
	}
	m := time.Minute
	a := report(ep(10*m, 20*m), ep(30*m, 40*m), ep(100*m, 0))
	b := report(ep(12*m, 15*m), ep(16*m, 18*m), ep(50*m, 60*m), ep(100*m, 110*m))
	d := Diff(a, b)
	got := []string{}
	for _, e := range d.Entries {
		got = append(got, fmt.Sprintf("%s %s %s", e.Kind, deltaText(e.FiredDelta), deltaText(e.ResolvedDelta)))
	}
	want := []string{
		"fired_later +2m0s -5m0s",    // 10m-20m against 12m-15m
		"only_in_b - -",              // 16m-18m: A's occurrence is taken
		"only_in_a - -",              // 30m-40m
		"only_in_b - -",              // 50m-60m
		"resolved_differently +0s -", // still firing in A at the end, resolved in B
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var text bytes.Buffer
	_ = d.WriteText(&text)
	if !strings.Contains(text.String(), "still firing") {
		t.Errorf("text lacks 'still firing':\n%s", text.String())
	}
}

func slicesSortChanges(cs []Change) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && compareChanges(cs[j], cs[j-1]) < 0; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"vigia/internal/quality"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bad.yaml.err from the current output")

// TestBadFiles loads each testdata/<case>.bad.yaml and compares every
// problem reported with testdata/<case>.bad.yaml.err.
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.bad.yaml")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".bad.yaml"), func(t *testing.T) {
			set, err := Load(file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if set != nil {
				t.Error("Load returned a Set along with problems")
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error is %T, not Problems: %v", err, err)
			}
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(file+".err", []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file + ".err")
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.good.yaml")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".good.yaml"), func(t *testing.T) {
			set, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Groups) == 0 {
				t.Fatal("no groups")
			}
			for _, g := range set.Groups {
				for _, r := range g.Rules {
					if r.When == nil {
						t.Errorf("%s: no When", r.Alert)
					}
					if r.Resolution <= 0 || r.Window%r.Resolution != 0 {
						t.Errorf("%s: resolution %s does not divide window %s", r.Alert, r.Resolution, r.Window)
					}
				}
			}
		})
	}
}

func TestLoadFields(t *testing.T) {
	set, err := Load("testdata/delivery.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(set.Groups); got != 2 {
		t.Fatalf("%d groups, want 2", got)
	}
	g := set.Groups[0]
	if g.Name != "delivery" || g.Interval != 10*time.Second || g.File != "testdata/delivery.good.yaml" || g.Line != 3 {
		t.Errorf("group = %+v", g)
	}
	r := g.Rules[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"alert", r.Alert, "DeliveryRateDrop"},
		{"group", r.Group, "delivery"},
		{"by", r.By, []quality.Dim{quality.DimPhoneNumber}},
		{"window", r.Window, 15 * time.Minute},
		{"resolution", r.Resolution, time.Minute},
		{"baseline", r.Baseline, time.Hour},
		{"baseline kind", r.BaselineKind, BaselinePrevious},
		{"when", r.When.String(), "attempts >= 200 && delivery_rate < baseline.delivery_rate * 0.8"},
		{"when position", [3]any{r.When.File, r.When.Line, r.When.Col}, [3]any{"testdata/delivery.good.yaml", 11, 15}},
		{"resolve_when", r.ResolveWhen != nil, true},
		{"uses baseline", r.UsesBaseline(), true},
		{"min_volume", r.MinVolume["attempts"], int64(200)},
		{"for", r.For, 2 * time.Minute},
		{"keep_firing_for", r.KeepFiringFor, 5 * time.Minute},
		{"labels", r.Labels["severity"], "critical"},
		{"annotations", len(r.Annotations), 3},
		{"actions", len(r.Actions), 2},
		{"action type", r.Actions[0].Type, "throttle"},
		{"action params as written", r.Actions[0].Params, map[string]string{"phone_number": "{{ .phone_number }}", "rate": "40/s"}},
		{"line", r.Line, 6},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	tp := g.Rules[1]
	if tp.Resolution != 10*time.Second { // 1m window at a 10s interval
		t.Errorf("TemplatePaused resolution = %s, want 10s", tp.Resolution)
	}
	if tp.UsesBaseline() || tp.BaselineKind != BaselineNone {
		t.Error("TemplatePaused has a baseline")
	}
	ts := set.Groups[1].Rules[0]
	if ts.BaselineKind != BaselineSameTimeLastWeek || ts.Baseline != 7*24*time.Hour {
		t.Errorf("ThrottledSpike baseline = %s %s", ts.BaselineKind, ts.Baseline)
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []quality.Dim:
		return slices.Equal(a, b.([]quality.Dim))
	case map[string]string:
		b := b.(map[string]string)
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestDefaultResolution(t *testing.T) {
	cases := []struct {
		window, interval, period, want time.Duration
	}{
		{15 * time.Minute, 10 * time.Second, 0, time.Minute},
		{time.Hour, 10 * time.Second, 0, 4 * time.Minute},
		{5 * time.Minute, 10 * time.Second, 0, 20 * time.Second},
		{time.Minute, 10 * time.Second, 0, 10 * time.Second},                     // the interval wins over window/15
		{25 * time.Second, 10 * time.Second, 0, 5 * time.Second},                 // largest divisor at most 10s
		{15 * time.Minute, 10 * time.Second, 90 * time.Second, 45 * time.Second}, // divides the baseline too
		{1009 * time.Second, time.Second, 0, time.Second},                        // prime
		{7 * 24 * time.Hour, time.Minute, 0, 672 * time.Minute},
		{13 * time.Minute, 10 * time.Second, 7 * 24 * time.Hour, 30 * time.Second}, // divides the week too
	}
	for _, c := range cases {
		if got := defaultResolution(c.window, c.interval, c.period); got != c.want {
			t.Errorf("defaultResolution(%s, %s, %s) = %s, want %s", c.window, c.interval, c.period, got, c.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"0": 0, "10s": 10 * time.Second, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour,
		"1w": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1.5h": 90 * time.Minute, "500ms": 500 * time.Millisecond,
	}
	for in, want := range good {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "-1m", "+1m", "1x", "m", "1d-2h", "15 minutes", "1..5s", "99999999w"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded", in)
		}
	}
}

// TestLoadDirectory: a directory loads its *.yaml and *.yml files in name
// order, skipping rule unit tests, hidden files and subdirectories.
func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, group string) {
		t.Helper()
		text := "groups:\n  - name: " + group + "\n    interval: 10s\n    rules:\n      - alert: A\n        by: [waba]\n        window: 1m\n        when: sent > 0\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yml", "b")
	write("a.yaml", "a")
	write("a_test.yaml", "skipped1")
	write("a.test.yaml", "skipped2")
	write(".#a.yaml", "skipped3")
	write("notes.txt", "skipped4")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("sub.yaml/c.yaml", "skipped5")
	// An explicitly named file is loaded whatever its name, and only once.
	set, err := Load(dir, filepath.Join(dir, "a.test.yaml"), filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range set.Groups {
		names = append(names, g.Name)
	}
	if want := []string{"a", "b", "skipped2"}; !slices.Equal(names, want) {
		t.Errorf("groups %v, want %v", names, want)
	}
	if want := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml"), filepath.Join(dir, "a.test.yaml")}; !slices.Equal(set.Files, want) {
		t.Errorf("files %v, want %v", set.Files, want)
	}
}

// TestLoadAllOrNothing is what reload relies on: one bad file among good
// ones yields no Set, and problems from every file, in order.
func TestLoadAllOrNothing(t *testing.T) {
	set, err := Load("testdata/delivery.good.yaml", "testdata/unknown_key.bad.yaml", "testdata/missing_alert.bad.yaml", "testdata/nonexistent.yaml")
	if set != nil {
		t.Fatal("got a Set despite problems")
	}
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %T", err)
	}
	// Problems come file by file in load order, every bad file included.
	order := map[string]int{"testdata/nonexistent.yaml": 0, "testdata/delivery.good.yaml": 1, "testdata/unknown_key.bad.yaml": 2, "testdata/missing_alert.bad.yaml": 3}
	seen := map[string]bool{}
	last := 0
	for _, p := range probs {
		if order[p.File] < last {
			t.Errorf("%s out of order", p.Error())
		}
		last = order[p.File]
		seen[p.File] = true
	}
	for _, f := range []string{"testdata/nonexistent.yaml", "testdata/unknown_key.bad.yaml", "testdata/missing_alert.bad.yaml"} {
		if !seen[f] {
			t.Errorf("no problem reported for %s", f)
		}
	}
	if got := probs[0].Error(); got != "testdata/nonexistent.yaml: no such file or directory" {
		t.Errorf("missing file: %q", got)
	}
}

func TestDuplicateGroupAcrossFiles(t *testing.T) {
	_, err := Load("testdata/delivery.good.yaml", "testdata/delivery.good.yaml")
	if err != nil {
		t.Fatalf("the same file twice should load once: %v", err)
	}
	dir := t.TempDir()
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("groups:\n  - name: delivery\n    interval: 1m\n    rules:\n      - alert: A\n        by: [waba]\n        window: 1m\n        when: sent > 0\n"), 0o644)
	_, err = Load("testdata/delivery.good.yaml", other)
	want := other + `:2:11: group "delivery" already defined at testdata/delivery.good.yaml:3`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want prefix %q", err, want)
	}
}

func TestEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"empty.yaml": "", "comment.yaml": "# nothing yet\n", "null.yaml": "groups:\n"} {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Groups) != 0 || len(set.Files) != 3 {
		t.Errorf("got %d groups from %d files", len(set.Groups), len(set.Files))
	}
}

func TestTwoDocuments(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "two.yaml")
	os.WriteFile(f, []byte("groups: []\n---\ngroups: []\n"), 0o644)
	_, err := Load(f)
	if err == nil || !strings.Contains(err.Error(), "2:1: only one YAML document per file") {
		t.Errorf("got %v", err)
	}
}

func TestScalarPositionsEscapes(t *testing.T) {
	// After an escape the value and the raw text differ in length; the
	// position must not run away to the end of the file.
	text := "when: \"a\\tb == \\\"x\\\" && zz\"\nnext: 1\n"
	src := newSource("f.yaml", []byte(text))
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0].Content[1]
	pos := src.scalarPositions(n)
	value := []rune(n.Value)
	i := slices.Index(value, 'z')
	if p := pos[i]; p.line != 1 || p.col != 25 {
		t.Errorf("z at %d:%d, want 1:25", p.line, p.col)
	}
}

// TestParseBoundsOverflow: durations and rates that would overflow are
// refused, not wrapped around.
func TestParseBoundsOverflow(t *testing.T) {
	for _, in := range []string{"100000d100000d100000d", "99999999999w", "1000000000000000h"} {
		if d, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %s, want an error", in, d)
		}
	}
	if _, err := ParseRate(strings.Repeat("9", 400) + "/s"); err == nil {
		t.Error("ParseRate of a 400-digit rate succeeded")
	}
	if r, err := ParseRate("30/m"); err != nil || r != 0.5 {
		t.Errorf("ParseRate(30/m) = %v, %v; want 0.5", r, err)
	}
}

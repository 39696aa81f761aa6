package route

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bad.yaml.err from the current output")

// t0 is the fixed "now" of the tests: no test reads the clock.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// mustParse parses a routes file given inline, failing the test on any
// problem.
func mustParse(t testing.TB, src string) *File {
	t.Helper()
	f, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestLoadFileFull(t *testing.T) {
	f, err := LoadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != "testdata/full.yaml" {
		t.Errorf("Path = %q", f.Path)
	}
	if len(f.Hash) != 16 {
		t.Errorf("Hash = %q, want 16 hex digits", f.Hash)
	}
	data, _ := os.ReadFile("testdata/full.yaml")
	if g := mustParse(t, string(data)); g.Hash != f.Hash {
		t.Errorf("same content, other hash: %s != %s", g.Hash, f.Hash)
	}
	if g := mustParse(t, string(data)+"\n# another comment\n"); g.Hash == f.Hash {
		t.Error("other content, same hash")
	}

	// Automation defaults.
	want := Automation{Cooldown: Duration(10 * time.Minute), HourlyBudget: 20, RestoreAfter: Duration(15 * time.Minute),
		PlatformFraction: 0.5, AuditSize: 1000}
	if f.Automation != want {
		t.Errorf("Automation = %+v, want %+v", f.Automation, want)
	}
	wantQ := map[string]float64{"GREEN": 1, "YELLOW": 0.5, "RED": 0.2, "UNKNOWN": 0.5}
	if !mapsEqual(f.QualityFactors, wantQ) {
		t.Errorf("QualityFactors = %v, want %v", f.QualityFactors, wantQ)
	}
	if len(f.Ramp) != 3 || f.Ramp[2] != (RampStep{After: Duration(24 * time.Hour), Fraction: 1}) {
		t.Errorf("Ramp = %+v", f.Ramp)
	}

	// Portfolios: defaults and limits.
	open := f.portfolio["open"]
	if open == nil || open.MessagingLimit != "unlimited" || open.Quality != "GREEN" || open.limit != 0 {
		t.Errorf("portfolio open = %+v", open)
	}
	if p := f.portfolio["main"]; p.limit != 10000 {
		t.Errorf("portfolio main limit = %d, want 10000 (10k)", p.limit)
	}
	if p := f.portfolio["small"]; p.MessagingLimit != "250" || p.limit != 250 {
		t.Errorf("portfolio small = %+v (an unquoted 250 is a string too)", p)
	}

	// Use cases: strategy and channel defaults.
	ucs := map[string]struct {
		strategy string
		channels []string
		numbers  int
	}{
		"sales":   {StrategyWeighted, []string{"whatsapp", "sms", "email"}, 3},
		"support": {StrategyWeighted, []string{"whatsapp"}, 2},
		"billing": {StrategyOrdered, []string{"whatsapp", "push"}, 2},
	}
	for name, w := range ucs {
		uc, ok := f.UseCase(name)
		if !ok {
			t.Errorf("no use case %s", name)
			continue
		}
		if uc.Strategy != w.strategy || !slices.Equal(uc.Channels, w.channels) || len(uc.Numbers) != w.numbers {
			t.Errorf("use case %s = strategy %s channels %v %d numbers, want %s %v %d", name, uc.Strategy, uc.Channels,
				len(uc.Numbers), w.strategy, w.channels, w.numbers)
		}
	}
	if _, ok := f.UseCase("nope"); ok {
		t.Error("UseCase(nope) found")
	}

	// Numbers: role, weight and rate defaults; the line of each entry.
	type num struct {
		useCase, id, waba, portfolio, role string
		weight                             int
		rate                               Rate
		line                               int
	}
	var got []num
	for _, uc := range f.UseCases {
		for _, n := range uc.Numbers {
			got = append(got, num{uc.Name, n.ID, n.WABA, n.Portfolio, n.Role, n.Weight, n.Rate, n.line})
		}
	}
	wantNums := []num{
		{"sales", "1001", "w1", "main", RolePrimary, 3, 80, 15},
		{"sales", "1002", "w1", "main", RoleHighVolume, 1, 200, 16},
		{"sales", "1003", "w2", "main", RoleReserve, 1, 10, 17},
		{"support", "2001", "w2", "small", RolePrimary, 1, 80, 20},
		{"support", "1002", "w1", "main", RolePrimary, 5, 200, 23},
		{"billing", "3001", "", "open", RolePrimary, 1, 80, 28},
		{"billing", "3002", "", "", RolePrimary, 1, DefaultRate, 29},
	}
	if !slices.Equal(got, wantNums) {
		t.Errorf("numbers:\n got %+v\nwant %+v", got, wantNums)
	}

	if ids := f.NumberIDs(); !slices.Equal(ids, []string{"1001", "1002", "1003", "2001", "3001", "3002"}) {
		t.Errorf("NumberIDs = %v", ids)
	}
	if n, ok := f.Number("1002"); !ok || n.Weight != 1 || n.Role != RoleHighVolume {
		t.Errorf("Number(1002) = %+v, want its first entry (sales, high_volume, weight 1)", n)
	}
	if _, ok := f.Number("9999"); ok {
		t.Error("Number(9999) found")
	}
	if got := f.UseCasesOf("1002"); !slices.Equal(got, []string{"sales", "support"}) {
		t.Errorf("UseCasesOf(1002) = %v", got)
	}
	if got := f.UseCasesOf("9999"); got != nil {
		t.Errorf("UseCasesOf(9999) = %v", got)
	}

	// Daily limits: portfolio tier times quality factor.
	for id, want := range map[string]int{"1001": 10000, "1003": 10000, "2001": 125, "3001": 0, "3002": 0} {
		n, _ := f.Number(id)
		if got := f.DailyLimit(n); got != want {
			t.Errorf("DailyLimit(%s) = %d, want %d", id, got, want)
		}
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestDailyLimitQualityFactors(t *testing.T) {
	f := mustParse(t, `
quality_factors: {GREEN: 1, YELLOW: 0.4, RED: 0.1, UNKNOWN: 0.3}
portfolios:
  - {id: a, messaging_limit: 2K, quality: YELLOW}
  - {id: b, messaging_limit: 100k, quality: RED}
  - {id: c, messaging_limit: unlimited, quality: RED}
  - {id: d, messaging_limit: "10000", quality: UNKNOWN}
  - {id: e, messaging_limit: "250"}
use_cases:
  - name: u
    numbers:
      - {id: "1", portfolio: a}
      - {id: "2", portfolio: b}
      - {id: "3", portfolio: c}
      - {id: "4", portfolio: d}
      - {id: "5", portfolio: e}
      - {id: "6"}
`)
	for id, want := range map[string]int{"1": 800, "2": 10000, "3": 0, "4": 3000, "5": 250, "6": 0} {
		n, _ := f.Number(id)
		if got := f.DailyLimit(n); got != want {
			t.Errorf("DailyLimit(%s) = %d, want %d", id, got, want)
		}
	}

	// A file may give only the factors it changes; the others keep their
	// defaults (a portfolio of default quality GREEN must still load).
	f = mustParse(t, `
quality_factors: {RED: 0.1}
portfolios:
  - {id: a, messaging_limit: 2k}
  - {id: b, messaging_limit: 2k, quality: RED}
use_cases:
  - name: u
    numbers: [{id: "1", portfolio: a}, {id: "2", portfolio: b}]
`)
	for id, want := range map[string]int{"1": 2000, "2": 200} {
		n, _ := f.Number(id)
		if got := f.DailyLimit(n); got != want {
			t.Errorf("partial factors: DailyLimit(%s) = %d, want %d", id, got, want)
		}
	}
}

func TestRampFraction(t *testing.T) {
	f := mustParse(t, `
ramp:
  - {after: 0s, fraction: 0.1}
  - {after: 1h, fraction: 0.5}
  - {after: 1d, fraction: 1}
use_cases: [{name: u, numbers: [{id: "1"}]}]
`)
	start := t0
	tests := []struct {
		name     string
		start    time.Time
		now      time.Time
		fraction float64
		step     int
		next     time.Time
		done     bool
	}{
		{"at start", start, start, 0.1, 0, start.Add(time.Hour), false},
		{"before start", start, start.Add(-time.Minute), 0.1, 0, start.Add(time.Hour), false},
		{"just before step 1", start, start.Add(time.Hour - time.Nanosecond), 0.1, 0, start.Add(time.Hour), false},
		{"at step 1", start, start.Add(time.Hour), 0.5, 1, start.Add(24 * time.Hour), false},
		{"just before the last step", start, start.Add(24*time.Hour - time.Nanosecond), 0.5, 1, start.Add(24 * time.Hour), false},
		{"at the last step", start, start.Add(24 * time.Hour), 1, 2, time.Time{}, true},
		{"long after", start, start.Add(30 * 24 * time.Hour), 1, 2, time.Time{}, true},
		{"no ramp started", time.Time{}, start, 1, -1, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, step, next := f.RampFraction(tt.start, tt.now)
			if fr != tt.fraction || step != tt.step || !next.Equal(tt.next) {
				t.Errorf("RampFraction = %g, %d, %v; want %g, %d, %v", fr, step, next, tt.fraction, tt.step, tt.next)
			}
			if done := f.RampDone(tt.start, tt.now); done != tt.done {
				t.Errorf("RampDone = %v, want %v", done, tt.done)
			}
		})
	}

	noRamp := mustParse(t, `use_cases: [{name: u, numbers: [{id: "1"}]}]`)
	if fr, step, next := noRamp.RampFraction(start, start); fr != 1 || step != -1 || !next.IsZero() {
		t.Errorf("no ramp: RampFraction = %g, %d, %v", fr, step, next)
	}
	if !noRamp.RampDone(start, start) {
		t.Error("no ramp: RampDone = false")
	}
}

// TestValidate checks each problem's message, one small file per problem.
func TestValidate(t *testing.T) {
	const one = "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\"}\n"
	tests := []struct {
		name string
		src  string
		want []string // every line of the error, without the "test.yaml: " prefix
	}{
		{"unknown quality", "quality_factors: {GREEN: 1, PURPLE: 0.5}\n" + one,
			[]string{`quality_factors: unknown quality "PURPLE" (GREEN, YELLOW, RED, UNKNOWN)`}},
		{"quality factor range", "quality_factors: {RED: 1.5, YELLOW: -0.1}\n" + one,
			[]string{ // in a stable (sorted) order
				`quality_factors.RED: want a fraction in [0, 1], got 1.5`,
				`quality_factors.YELLOW: want a fraction in [0, 1], got -0.1`}},
		{"ramp fraction zero", "ramp: [{after: 0s, fraction: 0}]\n" + one,
			[]string{`ramp[0].fraction: want a fraction in (0, 1], got 0`}},
		{"ramp fraction above one", "ramp: [{after: 0s, fraction: 0.5}, {after: 1h, fraction: 1.2}]\n" + one,
			[]string{`ramp[1].fraction: want a fraction in (0, 1], got 1.2`}},
		{"ramp order", "ramp: [{after: 0s, fraction: 0.2}, {after: 1h, fraction: 0.5}, {after: 30m, fraction: 1}]\n" + one,
			[]string{`ramp[2].after: steps must be in increasing order of after`}},
		{"ramp same after", "ramp: [{after: 0s, fraction: 0.2}, {after: 0s, fraction: 1}]\n" + one,
			[]string{`ramp[1].after: steps must be in increasing order of after`}},
		{"ramp first step", "ramp: [{after: 5m, fraction: 1}]\n" + one,
			[]string{`ramp[0].after: the first step starts at 0`}},
		{"hourly budget", "automation: {hourly_budget: -1}\n" + one,
			[]string{`automation.hourly_budget: want a positive count, got -1`}},
		{"platform fraction above one", "automation: {platform_fraction: 1.5}\n" + one,
			[]string{`automation.platform_fraction: want a fraction in (0, 1], got 1.5`}},
		{"platform fraction negative", "automation: {platform_fraction: -0.1}\n" + one,
			[]string{`automation.platform_fraction: want a fraction in (0, 1], got -0.1`}},
		{"audit size", "automation: {audit_size: 200000}\n" + one,
			[]string{`automation.audit_size: want 1 to 100000, got 200000`}},
		{"audit size negative", "automation: {audit_size: -1}\n" + one,
			[]string{`automation.audit_size: want 1 to 100000, got -1`}},
		{"portfolio id", "portfolios: [{messaging_limit: 250}]\n" + one,
			[]string{`portfolios[0]: id is required`}},
		{"portfolio duplicate", "portfolios: [{id: p}, {id: p}]\n" + one,
			[]string{`portfolios[1]: duplicate id "p"`}},
		{"messaging limit", "portfolios: [{id: p, messaging_limit: 5000}]\n" + one,
			[]string{`portfolios[0].messaging_limit: want 250, 2000, 10000, 100000 or unlimited, got "5000"`}},
		{"portfolio quality", "portfolios: [{id: p, quality: BLUE}]\n" + one,
			[]string{`portfolios[0].quality: want GREEN, YELLOW, RED or UNKNOWN, got "BLUE"`}},
		{"no use cases", "use_cases: []\n",
			[]string{`use_cases: at least one use case is required`}},
		{"empty file", "",
			[]string{`use_cases: at least one use case is required`}},
		{"use case name", "use_cases:\n  - name: a b\n    numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[0].name: want letters, digits, '-' or '_', got "a b"`}},
		{"use case name missing", "use_cases:\n  - numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[0].name: want letters, digits, '-' or '_', got ""`}},
		{"use case duplicate", one + "  - name: u\n    numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[1]: duplicate use case "u"`}},
		{"strategy", "use_cases:\n  - name: u\n    strategy: random\n    numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[0].strategy: want round_robin, weighted or ordered, got "random"`}},
		{"chain start", "use_cases:\n  - name: u\n    channels: [sms, whatsapp]\n    numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[0].channels: the chain starts with whatsapp, got "sms"`}},
		{"unknown channel", "use_cases:\n  - name: u\n    channels: [whatsapp, fax]\n    numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[0].channels[1]: want whatsapp, sms, email or push, got "fax"`}},
		{"channel twice", "use_cases:\n  - name: u\n    channels: [whatsapp, sms, sms]\n    numbers: [{id: \"1\"}]\n",
			[]string{`use_cases[0].channels[2]: sms appears twice`}},
		{"no numbers", "use_cases:\n  - name: u\n    numbers: []\n",
			[]string{`use_cases[0].numbers: at least one number is required`}},
		{"number id", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"+55 11\"}\n",
			// Only the id problem: the entry is a primary, so "every number is a reserve" would be wrong.
			[]string{`line 4: use_cases[0].numbers[0].id: want a phone number id (digits), got "+55 11"`}},
		{"number twice", one + "      - {id: \"1\", weight: 2}\n",
			[]string{`line 5: use_cases[0].numbers[1]: number 1 appears twice in the use case`}},
		{"role", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", role: backup}\n",
			[]string{`line 4: use_cases[0].numbers[0].role: want primary, high_volume or reserve, got "backup"`}},
		{"weight too large", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", weight: 1001}\n",
			[]string{`line 4: use_cases[0].numbers[0].weight: want 1 to 1000, got 1001`}},
		{"weight negative", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", weight: -1}\n",
			[]string{`line 4: use_cases[0].numbers[0].weight: want 1 to 1000, got -1`}},
		{"unknown portfolio", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", portfolio: nope}\n",
			[]string{`line 4: use_cases[0].numbers[0].portfolio: no portfolio "nope" in portfolios`}},
		{"only reserves", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", role: reserve}\n      - {id: \"2\", role: reserve}\n",
			[]string{`use_cases[0].numbers: every number is a reserve; at least one must be primary or high_volume`}},
		{"shared number rate", one + "  - name: v\n    numbers:\n      - {id: \"2\"}\n      - {id: \"1\", rate: 40/s}\n",
			[]string{`line 8: use_cases[1].numbers[1]: number 1 has another waba, portfolio or rate at line 4`}},
		{"shared number waba", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", waba: a}\n  - name: v\n    numbers:\n      - {id: \"1\", waba: b}\n",
			[]string{`line 7: use_cases[1].numbers[0]: number 1 has another waba, portfolio or rate at line 4`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("test.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("parsed without error")
			}
			if f != nil {
				t.Error("Parse returned a File along with problems")
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, "test.yaml: "+w)
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// TestValidateAccepts checks values at the edges of what is allowed.
func TestValidateAccepts(t *testing.T) {
	for name, src := range map[string]string{
		"shared number, other role and weight": "use_cases:\n  - name: u\n    numbers: [{id: \"1\", weight: 3}]\n" +
			"  - name: v\n    numbers: [{id: \"1\", role: high_volume, weight: 7}]\n",
		"shared number, rate written another way": "use_cases:\n  - name: u\n    numbers: [{id: \"1\", rate: 1/s}]\n" +
			"  - name: v\n    numbers: [{id: \"1\", rate: 60/m}]\n",
		"weight 1000":             "use_cases:\n  - name: u\n    numbers: [{id: \"1\", weight: 1000}]\n",
		"factor 0 and 1":          "quality_factors: {GREEN: 1, RED: 0}\nuse_cases: [{name: u, numbers: [{id: \"1\"}]}]\n",
		"platform fraction 1":     "automation: {platform_fraction: 1}\nuse_cases: [{name: u, numbers: [{id: \"1\"}]}]\n",
		"single ramp step":        "ramp: [{after: 0s, fraction: 1}]\nuse_cases: [{name: u, numbers: [{id: \"1\"}]}]\n",
		"every channel":           "use_cases: [{name: u, channels: [whatsapp, sms, email, push], numbers: [{id: \"1\"}]}]\n",
		"names with - and _":      "use_cases: [{name: Sales-BR_2, numbers: [{id: \"1\"}]}]\n",
		"reserve and high_volume": "use_cases: [{name: u, numbers: [{id: \"1\", role: reserve}, {id: \"2\", role: high_volume}]}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("test.yaml", []byte(src)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDecodeErrors checks what the YAML decoder refuses: unknown keys,
// rates and durations it cannot read, bad syntax. Each message names the
// file and the line.
func TestDecodeErrors(t *testing.T) {
	const one = "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\"}\n"
	tests := []struct {
		name string
		src  string
		want []string // substrings
	}{
		{"unknown top key", "routes: []\n" + one, []string{"test.yaml: ", "line 1: field routes not found in type route.File"}},
		{"unknown number key", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", rtae: 10/s}\n",
			[]string{"test.yaml: ", "line 4: field rtae not found in type route.Number"}},
		{"unknown automation key", "automation: {cooldown: 5m, dryrun: true}\n" + one,
			[]string{"line 1: field dryrun not found in type route.Automation"}},
		{"rate without unit", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", rate: 80}\n",
			[]string{"test.yaml: ", "line 4: rate: want <n>/s, <n>/m or <n>/h (like 40/s)", `"80"`}},
		{"duration", "automation: {cooldown: soon}\n" + one,
			[]string{"test.yaml: ", "line 1: ", `not a duration (like 10s, 15m, 1h, 1d): "soon"`}},
		{"negative duration", "automation:\n  restore_after: -5m\n" + one,
			[]string{"line 2: ", `"-5m"`}},
		{"several decode problems at once", "use_cases:\n  - name: u\n    numbers:\n      - {id: \"1\", rate: fast}\n      - {id: \"2\", color: red}\n",
			[]string{"line 4: rate: ", "line 5: field color not found"}},
		{"syntax", "use_cases: [\n", []string{"test.yaml: yaml: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("parsed without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestBadFiles loads each testdata/<case>.bad.yaml and compares every
// problem reported with testdata/<case>.bad.yaml.err.
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.bad.yaml")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".bad.yaml"), func(t *testing.T) {
			f, err := LoadFile(file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if f != nil {
				t.Error("LoadFile returned a File along with problems")
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

func TestLoadFileMissing(t *testing.T) {
	if _, err := LoadFile("testdata/no-such-file.yaml"); !os.IsNotExist(err) {
		t.Errorf("err = %v, want not exist", err)
	}
}

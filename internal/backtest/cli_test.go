package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vigia/internal/config"
)

// cli runs Main over the burst history with the given args.
func cli(t *testing.T, open OpenFunc, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if open == nil {
		src := NewMemory(history(t, burst...))
		open = func(config.Config) (Source, func() error, error) { return src, func() error { return nil }, nil }
	}
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, open, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMainUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no range", []string{"--rules", "../../rules"}, "--from and --to are required"},
		{"no to", []string{"--from", "2026-01-05"}, "--from and --to are required"},
		{"bad from", []string{"--from", "yesterday", "--to", "2026-01-06"}, `--from: "yesterday" is neither RFC 3339`},
		{"bad to", []string{"--from", "2026-01-05", "--to", "2026-01-05 13:00"}, "--to:"},
		{"from after to", []string{"--from", "2026-01-06", "--to", "2026-01-05"}, "--from (2026-01-06T00:00:00Z) must be before --to (2026-01-05T00:00:00Z)"},
		{"same from and to", []string{"--from", "2026-01-05T12:00:00Z", "--to", "2026-01-05T12:00:00Z"}, "must be before"},
		{"unknown flag", []string{"--form", "2026-01-05"}, "flag provided but not defined: -form"},
		{"extra argument", []string{"--from", "2026-01-05", "--to", "2026-01-06", "rules"}, `unexpected arguments: ["rules"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cli(t, nil, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "usage: evaluator backtest") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2, %q and the usage", code, stderr, tc.want)
			}
		})
	}
	if code, stdout, _ := cli(t, nil, "-h"); code != 0 || !strings.Contains(stdout, "usage: evaluator backtest") {
		t.Errorf("-h: exit %d, stdout %q", code, stdout)
	}
}

func TestMainReport(t *testing.T) {
	rng := []string{"--rules", "../../rules", "--from", "2026-01-05T12:00:00Z", "--to", "2026-01-05T13:00:00Z"}
	code, stdout, stderr := cli(t, nil, rng...)
	if code != 0 || !strings.Contains(stdout, "2026-01-05T12:20:40Z  firing    ThroughputErrors") || stderr != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	code, stdout, _ = cli(t, nil, append(rng, "--json", "--rule", "ThroughputErrors")...)
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, stdout)
	}
	if len(rep.Changes) != 2 || len(rep.Rules) != 1 || rep.Changes[0].Evidence["code(130429)"] != 50.0 {
		t.Errorf("--json report: %d changes, %d rules, evidence %v", len(rep.Changes), len(rep.Rules), rep.Changes[0].Evidence)
	}

	code, stdout, stderr = cli(t, nil, append(rng, "--progress")...)
	if code != 0 || !strings.Contains(stderr, "\r[") || !strings.Contains(stderr, "replayed 6,780 events") || !strings.HasSuffix(stderr, "resolved\n") {
		t.Errorf("--progress: exit %d, stderr %q", code, stderr)
	}
}

func TestMainAgainst(t *testing.T) {
	strict := throughputRule(t, 80, "2m", "warning")
	args := []string{"--rules", "../../rules/errors.yaml", "--against", strict, "--from", "2026-01-05", "--to", "2026-01-06", "--rule", "ThroughputErrors"}
	code, stdout, stderr := cli(t, nil, args...)
	if code != 0 || !strings.Contains(stdout, "later in B") || !strings.Contains(stdout, "+30s") || !strings.Contains(stdout, "only in A 0, only in B 0, fired earlier in B 0, fired later in B 1") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, _ = cli(t, nil, append(args, "--json")...)
	var d DiffReport
	if err := json.Unmarshal([]byte(stdout), &d); code != 0 || err != nil || d.Summary.FiredLater != 1 || d.Entries[0].FiredDelta.String() != "+30s" {
		t.Errorf("--json diff: exit %d, %v: %s", code, err, stdout)
	}
	// A name only B knows is not unknown: A evaluates nothing.
	renamed := filepath.Join(t.TempDir(), "renamed.yaml")
	data, _ := os.ReadFile(strict)
	if err := os.WriteFile(renamed, bytes.ReplaceAll(data, []byte("ThroughputErrors"), []byte("ThroughputErrorsV2")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, nil, "--rules", "../../rules/errors.yaml", "--against", renamed, "--from", "2026-01-05", "--to", "2026-01-06",
		"--rule", "ThroughputErrors", "--rule", "ThroughputErrorsV2")
	if code != 0 || !strings.Contains(stdout, "only in A 1, only in B 1") {
		t.Errorf("renamed rule: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestMainErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: X\n        by: [phone_number]\n        window: 5m\n        when: delivry_rate < 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := []string{"--from", "2026-01-05T12:00:00Z", "--to", "2026-01-05T13:00:00Z"}
	storeDown := func(config.Config) (Source, func() error, error) {
		return nil, nil, errors.New("the ClickHouse store is not wired yet")
	}
	for _, tc := range []struct {
		name string
		open OpenFunc
		args []string
		code int
		want []string
	}{
		{"rules that do not load", nil, append([]string{"--rules", bad}, rng...), 1, []string{bad + ":8:15: ", "delivry_rate", "^"}},
		{"against rules that do not load", nil, append([]string{"--rules", "../../rules", "--against", bad}, rng...), 1, []string{bad + ":8:15: "}},
		{"unknown rule", nil, append([]string{"--rules", "../../rules", "--rule", "Nope"}, rng...), 2,
			[]string{`unknown rule "Nope"; known rules: AccountRestricted, DeliveryLatencyRising, DeliveryRateDrop`}},
		{"store not wired", storeDown, append([]string{"--rules", "../../rules"}, rng...), 1, []string{"evaluator backtest: the ClickHouse store is not wired yet"}},
		{"empty range", nil, []string{"--rules", "../../rules", "--from", "2026-02-01", "--to", "2026-02-02"}, 1,
			[]string{"no stored events between 2026-02-01T00:00:00Z and 2026-02-02T00:00:00Z"}},
		{"bad config file", nil, append([]string{"--rules", "../../rules", "--config.file", bad}, rng...), 2, []string{"invalid configuration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tc.open, tc.args...)
			if code != tc.code || stdout != "" {
				t.Errorf("exit %d (want %d), stdout %q", code, tc.code, stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestMainConfig: the configuration file gives the rules when --rules is
// not set, the window options, and is what the source is opened with.
func TestMainConfig(t *testing.T) {
	abs, _ := filepath.Abs("../../rules/errors.yaml")
	cfgFile := filepath.Join(t.TempDir(), "vigia.yaml")
	if err := os.WriteFile(cfgFile, []byte("evaluator:\n  rules: ["+abs+"]\n  max_keys: 1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := NewMemory(history(t, burst...))
	var got config.Config
	open := func(cfg config.Config) (Source, func() error, error) { got = cfg; return src, nil, nil }
	code, stdout, stderr := cli(t, open, "--config.file", cfgFile, "--from", "2026-01-05T12:00:00Z", "--to", "2026-01-05T13:00:00Z")
	if code != 0 || got.Evaluator.MaxKeys != 1234 || !strings.Contains(stdout, "rules:   "+abs+"\n") {
		t.Errorf("exit %d, max_keys %d\nstdout:\n%s\nstderr:\n%s", code, got.Evaluator.MaxKeys, stdout, stderr)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"vigia/internal/app"
	"vigia/internal/control"
	"vigia/internal/simulate"
)

func TestMain(m *testing.M) {
	app.ReadyInterval = 100 * time.Millisecond
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// TestQuickstartAllInOne is the quickstart end to end, as `vigia simulate
// -start` runs it: the all-in-one Vigia (embedded broker, embedded
// ClickHouse, the shipped rules and the drill rules, the quickstart routes)
// in this process, the scenario driving its real HTTP endpoints. The
// report must show the detection and the switch, in order and in time,
// and the traffic must have moved to the reserve.
func TestQuickstartAllInOne(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Skip("CHDB_LIB_PATH not set (scripts/chdb.sh fetch): the all-in-one needs embedded ClickHouse")
	}
	// Free ports everywhere, and the repository's rules from this folder.
	for k, v := range map[string]string{
		"VIGIA_HTTP_LISTEN": "127.0.0.1:0", "VIGIA_EVALUATOR_LISTEN": "127.0.0.1:0", "VIGIA_NOTIFIER_LISTEN": "127.0.0.1:0",
		"VIGIA_CLICKHOUSE_SINK_LISTEN": "127.0.0.1:0", "VIGIA_CONTROL_LISTEN": "127.0.0.1:0", "VIGIA_KAFKA_EMBEDDED_PORT": "0",
		"VIGIA_EVALUATOR_RULES": "../../rules,../../deploy/drills/rules", "VIGIA_LOG_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"simulate", "-start", "-fresh", "--config.file", "../../deploy/drills/vigia.yaml",
		"-routes", "../../deploy/drills/quickstart.routes.yaml", "-speed", "8", "-json", out,
		"../../deploy/drills/quickstart.yaml"}, nil, &stdout, &stderr)
	t.Logf("took %s\n%s", time.Since(start).Round(time.Second), stdout.String())
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep simulate.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || len(rep.Incidents) != 1 {
		t.Fatalf("report: %s", data)
	}
	ir := rep.Incidents[0]
	if ir.Detected == nil || ir.Switched == nil {
		t.Fatalf("no detection or no switch: %+v", ir)
	}
	// The rule group runs every 10 s: detection within two rounds, the
	// failover right after it (the alerts topic, control's consumer
	// group, the route log).
	if d := ir.Detected.AfterSeconds; d < 0 || d > 25 {
		t.Errorf("detected %.1fs after the incident started, want within 25s", d)
	}
	if s := ir.Switched.AfterSeconds; s < ir.Detected.AfterSeconds || s > ir.Detected.AfterSeconds+10 {
		t.Errorf("switched at +%.1fs, detected at +%.1fs: want the switch within 10s of the detection", s, ir.Detected.AfterSeconds)
	}
	if ir.Detected.Alert != "NumberBlocked" || ir.Switched.Action != "failover" || ir.Switched.UseCase != "orders" {
		t.Errorf("detected %+v, switched %+v", ir.Detected, ir.Switched)
	}
	// The audit's time is when the change was proposed; pick follows once
	// the route log applied it, a moment later (longer under -race).
	if perSecond := 3 * 8; ir.BadRouteAfterSwitch > 2*perSecond {
		t.Errorf("%d messages went to the blocked number after the switch, want at most 2 s of traffic (%d)", ir.BadRouteAfterSwitch, 2*perSecond)
	}
	var reserve int
	for _, rc := range rep.Routes {
		if rc.Number == "106540352242924" {
			reserve = rc.Messages
		}
	}
	if reserve == 0 || rep.Stats.IngestErrors > 0 || rep.Stats.PickErrors > 0 {
		t.Errorf("routes %+v, stats %+v", rep.Routes, rep.Stats)
	}
	for _, want := range []string{"NumberBlocked", "failover orders", "Every expectation met."} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
}

func TestCommands(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{"help", []string{"-h"}, "", 0, "simulate [flags] <scenario>", ""},
		{"help word", []string{"help"}, "", 0, "control-check <routes.yaml>", ""},
		{"unknown", []string{"frobnicate"}, "", 2, "", `unknown command "frobnicate"`},
		{"check", []string{"check", "../../rules", "../../deploy/drills/rules"}, "", 0, "OK", ""},
		{"check usage", []string{"check"}, "", 2, "", "usage: vigia check"},
		{"test", []string{"test", "../../rules/tests/errors_test.yaml"}, "", 0, "", ""},
		{"control-check", []string{"control-check", "../../deploy/drills/quickstart.routes.yaml"}, "", 0, "1 use cases, 2 numbers", ""},
		{"control-check bad", []string{"control-check", "main.go"}, "", 1, "", ""},
		{"hash-token", []string{"hash-token"}, "demo-sender-token-0123456789\n", 0, control.HashToken("demo-sender-token-0123456789"), ""},
		{"hash-token short", []string{"hash-token"}, "short\n", 1, "", "at least 16 characters"},
		{"simulate usage", []string{"simulate"}, "", 2, "", "want one scenario file"},
		{"simulate help", []string{"simulate", "-h"}, "", 0, "-start", ""},
		{"simulate bad scenario", []string{"simulate", "main.go"}, "", 2, "", "main.go"},
		{"backtest usage", []string{"backtest"}, "", 2, "", "--from and --to are required"},
		{"run help", []string{"run", "-h"}, "", 0, "", "kafka.brokers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, strings.NewReader(c.stdin), &stdout, &stderr)
			if code != c.code || !strings.Contains(stdout.String(), c.stdout) || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
		})
	}
}

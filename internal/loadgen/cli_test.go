package loadgen

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlagsDefaults(t *testing.T) {
	var stderr bytes.Buffer
	o, err := ParseFlags(nil, env(map[string]string{SecretsEnv: " first , second"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{URL: "http://127.0.0.1:8080/webhooks/whatsapp", Secret: []byte("first"), Batch: 100,
		Duration: 10 * time.Second, Warmup: time.Second, Concurrency: 16, WABAs: 4, Numbers: 16, Mix: 0.05, Timeout: 10 * time.Second}
	got := o.Config
	if got.Seed == 0 {
		t.Error("seed 0 not replaced")
	}
	got.Seed = 0
	if string(got.Secret) != string(want.Secret) || got.URL != want.URL || got.Rate != 0 || got.Batch != want.Batch ||
		got.Duration != want.Duration || got.Warmup != want.Warmup || got.Concurrency != want.Concurrency ||
		got.WABAs != want.WABAs || got.Numbers != want.Numbers || got.Mix != want.Mix || got.Timeout != want.Timeout ||
		o.JSON || o.Once {
		t.Errorf("defaults %+v", o)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	o, err = ParseFlags([]string{"-secret", "flag", "-seed", "9"}, env(map[string]string{SecretsEnv: "env"}), &stderr)
	if err != nil || string(o.Secret) != "flag" || o.Seed != 9 {
		t.Errorf("-secret over env: %v %q %d", err, o.Secret, o.Seed)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"-batch", "0"}, {"-batch", "1001"}, {"-rate", "-1"}, {"-rate", "NaN"}, {"-concurrency", "0"},
		{"-wabas", "0"}, {"-wabas", "5", "-numbers", "4"}, {"-mix", "1.5"}, {"-timeout", "0s"},
		{"-duration", "0s"}, {"-warmup", "10s"}, {"-warmup", "-1s"}, {"-url", "ftp://x/y"}, {"-url", "::"},
		{"-nope"}, {"extra"}, {"-batch", "x"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), append(args, "-secret", "s"), env(nil), &stdout, &stderr)
		if code != 2 || stdout.Len() != 0 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := Main(t.Context(), nil, env(nil), &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), SecretsEnv) {
		t.Errorf("no secret: exit %d, %s", code, stderr.String())
	}
}

func TestHelpHidesSecret(t *testing.T) {
	var stderr bytes.Buffer
	_, err := ParseFlags([]string{"-h"}, env(map[string]string{SecretsEnv: "topsecret"}), &stderr)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(stderr.String(), "topsecret") || !strings.Contains(stderr.String(), "-rate") {
		t.Errorf("err %v, help:\n%s", err, stderr.String())
	}
	if code := Main(t.Context(), []string{"-h"}, env(nil), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}

func TestNonLoopbackNote(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := ParseFlags([]string{"-secret", "s", "-url", "http://[::1]:1/x"}, env(nil), &stderr); err != nil || stderr.Len() != 0 {
		t.Errorf("loopback: %v %s", err, stderr.String())
	}
	if _, err := ParseFlags([]string{"-secret", "s", "-url", "http://example.com/x"}, env(nil), &stderr); err != nil ||
		!strings.Contains(stderr.String(), "not a loopback") {
		t.Errorf("remote: %v %s", err, stderr.String())
	}
}

func TestTextReport(t *testing.T) {
	r := &Report{
		URL: "http://127.0.0.1:8080/webhooks/whatsapp", Mode: "open", Seed: 7, Batch: 100, Concurrency: 16,
		DurationSeconds: 9, Requests: 900, OK: 898, ByStatus: map[string]int64{"200": 898, "503": 2},
		StatusesPosted: 89800, EventsAccepted: 89800, EventsPerSecond: 9977.8, RequestsPerSecond: 100,
		Latency: LatencyReport{From: "due time", P50Ms: 1.5, P90Ms: 2, P99Ms: 5, MaxMs: 12},
		Errors:  map[string]int64{"http_503": 2},
		Schedule: &ScheduleReport{TargetEventsPerSecond: 10000, TargetRequestsPerSecond: 100, Planned: 1000,
			Late: 40, FellBehind: true},
		Warmup: WarmupReport{Seconds: 1, Requests: 100},
		Pool:   PoolReport{Bodies: 1000, Statuses: 100000, BytesPerBody: 45000},
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"open loop: 10000 events/s = 100.00 requests/s of 100 statuses",
		"requests    900 (200: 898, 503: 2)",
		"89800 events accepted",
		"throughput  9977.8 events/s, 100.00 requests/s",
		"p50 1.500ms  p90 2.000ms  p99 5.000ms  max 12.000ms",
		"errors      http_503: 2",
		"WARNING: could not keep up with -rate: 40 requests started more than 10ms late",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if r.Success() {
		t.Error("Success with 503s")
	}
}

package rules

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigia/internal/quality"
)

func loadGood(t *testing.T) *Set {
	t.Helper()
	set, err := Load("testdata/delivery.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestRender(t *testing.T) {
	set := loadGood(t)
	r := set.Groups[0].Rules[0]
	ann, actions, err := r.Render(sampleInput())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"summary":     "Delivery on p1 fell to 75.0%",
		"description": "900 of 1200 messages reached (75.0%, baseline 95.0%).",
		"runbook_url": "https://runbooks.example.com/delivery",
	}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], v)
		}
	}
	if len(actions) != 2 {
		t.Fatalf("%d actions", len(actions))
	}
	if a := actions[0]; a.Type != "throttle" || a.Params["phone_number"] != "p1" || a.Params["rate"] != "40/s" || a.Line != 24 {
		t.Errorf("action 0 = %+v", a)
	}
	// The rule keeps its templates as written.
	if r.Actions[0].Params["phone_number"] != "{{ .phone_number }}" {
		t.Errorf("rule action params changed: %v", r.Actions[0].Params)
	}

	tp := set.Groups[0].Rules[1]
	ann, actions, err = tp.Render(&Input{
		Values: quality.Values{TemplateStatus: "PAUSED", TemplateQuality: "RED"},
		Labels: map[string]string{"template": "welcome_v2", "use_case": "otp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ann["summary"]; got != "Template welcome_v2 is PAUSED (RED)" {
		t.Errorf("summary %q", got)
	}
	if len(actions) != 3 || actions[1].Params["channel"] != "sms" || actions[1].Params["use_case"] != "otp" || actions[2].Params["for"] != "1h" {
		t.Errorf("actions %+v", actions)
	}

	ts := set.Groups[1].Rules[0]
	ann, _, err = ts.Render(&Input{Values: quality.Values{Attempts: 123456, LatencyP90: 95.2}, Labels: map[string]string{"waba": "w"}})
	if err != nil || ann["summary"] != "123.5k attempts, p90 latency 1m35s" {
		t.Errorf("summary %q, %v", ann["summary"], err)
	}
}

func TestRenderPlatform(t *testing.T) {
	set, err := Load("testdata/platform.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := set.Groups[0].Rules[1] // AccountBanScheduled: labels by alias, a with block
	if r.Labels["severity"] != "page" {
		t.Errorf("aliased labels %v", r.Labels)
	}
	ann, actions, err := r.Render(&Input{
		Values: quality.Values{AccountBanState: "SCHEDULE_FOR_DISABLE", AccountEvent: "ACCOUNT_VIOLATION"},
		Labels: map[string]string{"waba": "w1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "AccountBanScheduled on w1:\nSCHEDULE_FOR_DISABLE / ACCOUNT_VIOLATION\n"; ann["summary"] != want {
		t.Errorf("summary %q, want %q", ann["summary"], want)
	}
	if len(actions) != 1 || actions[0].Params["message"] != "AccountBanScheduled" || actions[0].Params["waba"] != "w1" {
		t.Errorf("actions %+v", actions)
	}
	slow := set.Groups[1].Rules[0]
	if slow.Resolution != 2*time.Minute || slow.Baseline != 2*time.Hour || len(slow.MinVolume) != 2 {
		t.Errorf("SlowDelivery %+v", slow)
	}
	if slow.Guard(&quality.Values{LatencySamples: 100, Attempts: 499}) {
		t.Error("guard passes with 499 attempts")
	}
	ann, _, err = slow.Render(&Input{
		Values:   quality.Values{LatencyP90: 42.123, FailuresByCode: map[int64]int64{131026: 4}},
		Baseline: quality.Values{LatencyP90: 12},
		Labels:   map[string]string{"channel": "whatsapp", "country": "55"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"failures": "4 undeliverable, 0 throttled",
		"summary":  "p90 42.1s in 55 (whatsapp), was 12s",
		"ratio":    "42.12",
	} {
		if ann[k] != want {
			t.Errorf("%s = %q, want %q", k, ann[k], want)
		}
	}
}

// TestRenderBadAction: an action whose target renders empty is left out,
// with an error; the rest of the notification still renders.
func TestRenderBadAction(t *testing.T) {
	tp := loadGood(t).Groups[0].Rules[1]
	ann, actions, err := tp.Render(&Input{Labels: map[string]string{"template": "t1", "use_case": ""}})
	if err == nil || !strings.Contains(err.Error(), "actions[0] failover: use_case: empty") {
		t.Errorf("err = %v", err)
	}
	if len(actions) != 1 || actions[0].Type != "pause" {
		t.Errorf("actions %+v, want only pause", actions)
	}
	if ann["summary"] == "" {
		t.Error("annotations lost")
	}
}

func TestRenderTemplatedParamCheckedAtRender(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "r.yaml")
	os.WriteFile(f, []byte(`groups:
  - name: g
    interval: 10s
    rules:
      - alert: A
        by: [phone_number]
        window: 1m
        when: sent > 0
        labels: {rate: "{{ .phone_number }}"}
        actions:
          - throttle: {phone_number: "{{ .phone_number }}", rate: "{{ .labels.rate }}"}
`), 0o644)
	set, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	_, actions, err := set.Groups[0].Rules[0].Render(&Input{Labels: map[string]string{"phone_number": "p1"}})
	if len(actions) != 0 || err == nil || !strings.Contains(err.Error(), `rate: want <n>/s`) {
		t.Errorf("actions %v, err %v", actions, err)
	}
}

func TestTemplateFuncs(t *testing.T) {
	cases := []struct {
		fn   func(any) (string, error)
		in   any
		want string
	}{
		{pct, 0.834, "83.4%"},
		{pct, 1, "100.0%"},
		{pct, int64(0), "0.0%"},
		{humanize, int64(999), "999"},
		{humanize, int64(12345), "12.35k"},
		{humanize, 2.5e6, "2.5M"},
		{humanize, 0.5, "0.5"},
		{humanize, 90 * time.Minute, "1h30m"},
		{humanize, 1500 * time.Millisecond, "2s"},
		{humanizeDuration, 0.34, "340ms"},
		{humanizeDuration, 2.24, "2.2s"},
		{humanizeDuration, 95.2, "1m35s"},
		{humanizeDuration, int64(3600), "1h"},
	}
	for _, c := range cases {
		if got, err := c.fn(c.in); err != nil || got != c.want {
			t.Errorf("%T %v: %q, %v; want %q", c.fn, c.in, got, err, c.want)
		}
	}
	if _, err := pct("x"); err == nil {
		t.Error("pct of a string")
	}
}

func TestAlertLabels(t *testing.T) {
	r := loadGood(t).Groups[0].Rules[0]
	got := r.AlertLabels(map[string]string{"phone_number": "p1"})
	if len(got) != 3 || got["alertname"] != "DeliveryRateDrop" || got["severity"] != "critical" || got["phone_number"] != "p1" {
		t.Errorf("AlertLabels = %v", got)
	}
}

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	if rc := Check(&out, "testdata/delivery.good.yaml"); rc != 0 || out.String() != "1 file, 2 groups, 4 rules: OK\n" {
		t.Errorf("good: %d %q", rc, out.String())
	}
	out.Reset()
	if rc := Check(&out, "testdata/unknown_key.bad.yaml"); rc != 1 {
		t.Errorf("bad: rc %d", rc)
	}
	want, _ := os.ReadFile("testdata/unknown_key.bad.yaml.err")
	if !strings.HasPrefix(out.String(), string(want)) || !strings.HasSuffix(out.String(), "\n2 problems\n") {
		t.Errorf("bad: %q", out.String())
	}
}

// FuzzParse: no rules file, however mangled, panics the loader, and every
// problem has a position inside the file.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Loading is linear in the file; an input that takes seconds is a
		// hang the fuzzer would otherwise only show as a stall.
		watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("slow input %q", data)) })
		defer watchdog.Stop()
		src := newSource("f.yaml", data)
		src.parse(data)
		for _, p := range src.probs {
			if p.Line < 0 || p.Line > len(src.lines)+1 || p.Col < 0 {
				t.Errorf("problem outside the file: %s", p.Error())
			}
			_ = p.Error()
		}
	})
}

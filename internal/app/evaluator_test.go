package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigia/internal/alert"
	"vigia/internal/config"
)

// throttledBatch is a messages webhook with n failed statuses carrying
// error 130429 for phone number id phone, timestamped at.
func throttledBatch(phone string, n, offset int, at time.Time) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"object":"whatsapp_business_account","entry":[{"id":"waba-e","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550001111","phone_number_id":%q},"statuses":[`, phone)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"wamid.E%s%06d","status":"failed","timestamp":"%d","recipient_id":"55119%08d","errors":[{"code":130429,"title":"Rate limit hit"}]}`,
			phone, offset+i, at.Unix(), offset+i)
	}
	sb.WriteString(`]}}]}]}`)
	return []byte(sb.String())
}

func evaluatorConfig(t *testing.T, brokers []string) config.Config {
	cfg := testConfig(t)
	cfg.Kafka.Brokers = brokers
	cfg.Evaluator.Listen = "127.0.0.1:0"
	cfg.Evaluator.Rules = []string{"testdata/rules"}
	cfg.Evaluator.GroupID = "test-evaluator"
	cfg.Evaluator.CommitInterval = 200 * time.Millisecond
	if err := cfg.ValidateFor("evaluator"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startEvaluator(t *testing.T, cfg config.Config) (*Evaluator, string) {
	t.Helper()
	ev, err := NewEvaluator(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := ev.Stop(ctx); err != nil {
			t.Errorf("stop evaluator: %v", err)
		}
	})
	base := "http://" + ev.Addr()
	waitReady(t, base, 30*time.Second)
	return ev, base
}

// alertsOf reads the alerts topic.
func alertsOf(t *testing.T, brokers []string) []alert.Alert {
	t.Helper()
	var out []alert.Alert
	for _, m := range readTopic(t, brokers, "vigia.alerts") {
		var a alert.Alert
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func waitForAlert(t *testing.T, brokers []string, within time.Duration, ok func([]alert.Alert) bool) []alert.Alert {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		as := alertsOf(t, brokers)
		if ok(as) {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition on the alerts topic not met within %s; topic holds %+v", within, as)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func countState(as []alert.Alert, name string, st alert.State) int {
	n := 0
	for _, a := range as {
		if a.Name == name && a.State == st {
			n++
		}
	}
	return n
}

// TestEvaluatorEndToEnd: webhooks into ingest on the embedded broker, the
// evaluator consuming them; a rule fires within its interval (plus a
// second), the alert carries its values, annotations and actions, and the
// alerts API lists it; a rules reload with a bad file keeps the old rules.
func TestEvaluatorEndToEnd(t *testing.T) {
	ing, ingBase := startIngest(t, testConfig(t))
	cfg := evaluatorConfig(t, ing.Brokers())
	_, evBase := startEvaluator(t, cfg)

	now := time.Now()
	if resp := postSigned(t, ingBase, throttledBatch("PN1", 6, 0, now), testSecret); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	posted := time.Now()
	as := waitForAlert(t, ing.Brokers(), 15*time.Second, func(as []alert.Alert) bool {
		return countState(as, "FastThroughputErrors", alert.StateFiring) == 1
	})
	var firing alert.Alert
	for _, a := range as {
		if a.State == alert.StateFiring {
			firing = a
		}
	}
	// Detection latency: the condition became true when the 6 events
	// arrived (posted, ingest answered); the rule's interval is 1 s, so
	// the firing evaluation must come within 1 s + 1 s of that.
	latency := firing.EvalTime.Sub(posted)
	t.Logf("detection latency: %s after the events were acknowledged", latency)
	if latency > 2*time.Second {
		t.Errorf("alert evaluated %s after its condition became true, want within the 1s interval + 1s", latency)
	}
	if firing.Labels["phone_number"] != "PN1" || firing.Labels["severity"] != "warning" ||
		firing.Values.FailuresByCode[130429] != 6 || firing.Annotations["summary"] != "PN1: 6 throughput errors" ||
		len(firing.Actions) != 1 || firing.Actions[0].Type != "throttle" || firing.Actions[0].Params["phone_number"] != "PN1" {
		t.Errorf("firing alert: %+v", firing)
	}
	resp, err := http.Get(evBase + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Alerts []alert.Alert }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(body.Alerts) != 1 || body.Alerts[0].Fingerprint != firing.Fingerprint {
		t.Errorf("alerts API: %+v", body.Alerts)
	}
	// Notifications link to one alert by its fingerprint.
	for fp, want := range map[string]int{firing.Fingerprint: 1, "0123456789abcdef": 0} {
		resp, err := http.Get(evBase + "/api/v1/alerts?fingerprint=" + fp)
		if err != nil {
			t.Fatal(err)
		}
		var one struct{ Alerts []alert.Alert }
		err = json.NewDecoder(resp.Body).Decode(&one)
		resp.Body.Close()
		if err != nil || len(one.Alerts) != want {
			t.Errorf("alerts API ?fingerprint=%s: %d alerts (%v), want %d", fp, len(one.Alerts), err, want)
		}
	}
}

// TestEvaluatorReload: a good reload swaps the rules; a bad file keeps the
// old ones, answers 422 with the position of the problem, and shows in the
// reload metric.
func TestEvaluatorReload(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/rules/fast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := evaluatorConfig(t, ing.Brokers())
	cfg.Evaluator.Rules = []string{dir}
	ev, base := startEvaluator(t, cfg)

	reload := func() (int, string) {
		resp, err := http.Post(base+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// a bad file: the old rules stay
	bad := strings.Replace(string(good), "code(130429) >= 5", "code(130429) >= \"five\"", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := reload()
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "rules.yaml:10:") {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	if v := testutil.ToFloat64(ev.m.reloadOK); v != 0 {
		t.Errorf("reload metric %v after a bad reload, want 0", v)
	}
	if got := ev.eng.Rules().Groups[0].Rules[0].Alert; got != "FastThroughputErrors" {
		t.Errorf("rules after a bad reload: %s", got)
	}
	// a good file with another rule name: swapped
	renamed := strings.Replace(string(good), "FastThroughputErrors", "RenamedRule", 1)
	if err := os.WriteFile(path, []byte(renamed), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := reload(); code != 200 {
		t.Fatalf("good reload: %d %s", code, body)
	}
	if v := testutil.ToFloat64(ev.m.reloadOK); v != 1 {
		t.Errorf("reload metric %v after a good reload, want 1", v)
	}
	if got := ev.eng.Rules().Groups[0].Rules[0].Alert; got != "RenamedRule" {
		t.Errorf("rules after a good reload: %s", got)
	}
}

package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/control"
	"vigia/internal/route"
	"vigia/internal/webhook"
)

// Tokens of the control tests, one per scope.
const (
	testTokenOperate = "operate-token-0123456789"
	testTokenPick    = "pick-token-0123456789abc"
	testTokenAdmin   = "admin-token-0123456789ab"
	testWebhookKey   = "sender-webhook-secret"
)

// testRoutes is the routes file of the control tests: use case sales has
// a primary (PN1), a second primary (PN2) and a reserve (PN3), and falls
// back to SMS; support has one number and e-mail.
const testRoutes = `
automation:
  cooldown: 1s
  hourly_budget: 50
  restore_after: 1500ms
  platform_fraction: 0.9
use_cases:
  - name: sales
    strategy: ordered
    channels: [whatsapp, sms]
    numbers:
      - {id: PN1, waba: W1, role: primary}
      - {id: PN2, waba: W1, role: primary}
      - {id: PN3, waba: W1, role: reserve}
  - name: support
    channels: [whatsapp, email]
    numbers:
      - {id: PN4, waba: W2}
`

func controlConfig(t *testing.T, brokers []string, routes string, subscriberURL string) config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Kafka.Brokers = brokers
	c := &cfg.Control
	c.Listen = "127.0.0.1:0"
	c.GroupID = "test-control"
	c.RoutesFile = filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(c.RoutesFile, []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Tokens = []config.ControlToken{
		{Name: "ops-alice", SHA256: control.HashToken(testTokenOperate), Scopes: []string{"operate"}},
		{Name: "crm-sender", SHA256: control.HashToken(testTokenPick), Scopes: []string{"pick"}},
		{Name: "admin", SHA256: control.HashToken(testTokenAdmin), Scopes: []string{"admin"}},
	}
	if subscriberURL != "" {
		c.Subscribers = []config.ControlSubscriber{{Name: "crm", URL: subscriberURL, Secrets: []string{testWebhookKey}}}
	}
	if err := cfg.ValidateFor("control"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startControl(t *testing.T, cfg config.Config) (*Control, string) {
	t.Helper()
	c, err := NewControl(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop control: %v", err)
		}
	})
	base := "http://" + c.Addr()
	waitReady(t, base, 30*time.Second)
	return c, base
}

// callAPI sends a request with a bearer token and decodes the JSON answer
// into out (if not nil); it returns the status.
func callAPI(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func pick(t *testing.T, base, useCase string) route.Answer {
	t.Helper()
	var ans route.Answer
	if code := callAPI(t, "POST", base+"/api/v1/routes/"+useCase+"/pick", testTokenPick, nil, &ans); code != 200 {
		t.Fatalf("pick %s: %d", useCase, code)
	}
	return ans
}

// sender is a test sending application: it receives route change
// webhooks and checks their signatures as docs/webhooks.md says.
type sender struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	got []control.Change
	bad int
}

func newSender(t *testing.T) *sender {
	s := &sender{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := webhook.Verify([]string{testWebhookKey}, r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			s.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var c control.Change
		if err := json.Unmarshal(body, &c); err != nil || c.ID != r.Header.Get(webhook.HeaderEventID) || c.Type != r.Header.Get(webhook.HeaderEventType) {
			s.bad++
			http.Error(w, "bad body or headers", http.StatusBadRequest)
			return
		}
		s.got = append(s.got, c)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sender) changes() []control.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]control.Change(nil), s.got...)
}

// failoverAlert is a record of the evaluator's: alert NumberDown on PN1
// whose rule fails the number over.
func failoverAlert(state alert.State, activeAt, at time.Time) *alert.Alert {
	labels := map[string]string{"alertname": "NumberDown", "phone_number": "PN1", "use_case": "sales"}
	a := &alert.Alert{SchemaVersion: alert.SchemaVersion, Fingerprint: alert.Fingerprint(labels), Name: "NumberDown",
		Group: "delivery", Rule: "rules/delivery.yaml:9", State: state, Labels: labels, ActiveAt: activeAt, EvalTime: at,
		Annotations: map[string]string{"summary": "delivery on PN1 fell to 40%"},
		Actions:     []alert.Action{{Type: "failover", Params: map[string]string{"phone_number": "PN1", "use_case": "sales"}}}}
	if state == alert.StateFiring || state == alert.StateResolved {
		a.FiredAt = &activeAt
	}
	if state == alert.StateResolved {
		a.ResolvedAt = &at
	}
	return a
}

// TestControlFailoverEndToEnd: an alert fires → the number fails over to
// the reserve → the sender gets a correctly signed webhook and pick
// answers the reserve → the alert resolves → after the hold time the
// route is restored, and the sender hears of that too. Every change is in
// the audit log and on the actions topic.
func TestControlFailoverEndToEnd(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	testFailoverEndToEnd(t, ing.Brokers())
}

func TestControlFailoverEndToEndRealKafka(t *testing.T) {
	broker := startRealBroker(t, 19892)
	testFailoverEndToEnd(t, broker.addr())
}

func testFailoverEndToEnd(t *testing.T, brokers []string) {
	snd := newSender(t)
	cfg := controlConfig(t, brokers, testRoutes, snd.srv.URL)
	_, base := startControl(t, cfg)

	if ans := pick(t, base, "sales"); ans.Channel != "whatsapp" || ans.PhoneNumberID != "PN1" {
		t.Fatalf("pick before the alert: %+v, want whatsapp PN1", ans)
	}
	active := time.Now().Add(-time.Minute)
	publishAlerts(t, brokers, failoverAlert(alert.StatePending, active, active), failoverAlert(alert.StateFiring, active, time.Now()))

	eventually(t, 20*time.Second, "pick answers the reserve PN3", func() bool { return pick(t, base, "sales").PhoneNumberID == "PN3" })
	if ans := pick(t, base, "sales"); ans.Reason == "" {
		t.Errorf("pick after failover has no reason: %+v", ans)
	}
	eventually(t, 10*time.Second, "the sender got the failover", func() bool { return len(snd.changes()) >= 2 })
	var sawFailover bool
	for _, c := range snd.changes() {
		if c.Action == "failover" && c.UseCase == "sales" && c.Route != nil && c.Route.Preferred == "PN3" && c.Alert != nil {
			sawFailover = true
		}
	}
	if !sawFailover {
		t.Errorf("no failover change with route.preferred PN3 among %+v", snd.changes())
	}

	var num control.NumberView
	if code := callAPI(t, "GET", base+"/api/v1/numbers/PN1", testTokenOperate, nil, &num); code != 200 || num.State != route.StateDegraded {
		t.Errorf("PN1 after failover: %d %+v, want degraded", code, num)
	}

	publishAlerts(t, brokers, failoverAlert(alert.StateResolved, active, time.Now()))
	eventually(t, 20*time.Second, "restore after the hold time: pick answers PN1 again", func() bool {
		return pick(t, base, "sales").PhoneNumberID == "PN1"
	})
	eventually(t, 10*time.Second, "the sender got the restore", func() bool {
		for _, c := range snd.changes() {
			if c.Action == route.OpRestore && c.UseCase == "sales" && c.Route != nil && c.Route.Preferred == "" {
				return true
			}
		}
		return false
	})
	snd.mu.Lock()
	if snd.bad != 0 {
		t.Errorf("%d webhook requests failed the sender's checks", snd.bad)
	}
	snd.mu.Unlock()

	var audit struct{ Entries []route.Entry }
	callAPI(t, "GET", base+"/api/v1/audit?use_case=sales", testTokenOperate, nil, &audit)
	var actions []string
	for _, e := range audit.Entries {
		actions = append(actions, e.Action+":"+e.Outcome)
	}
	if len(audit.Entries) < 2 {
		t.Errorf("audit of sales: %v, want the failover and the restore", actions)
	}

	eventually(t, 10*time.Second, "failover and restore on the actions topic", func() bool {
		var kinds = map[string]bool{}
		for _, m := range readTopic(t, brokers, cfg.Kafka.ActionsTopic) {
			var r action.Record
			if json.Unmarshal(m.Value, &r) == nil && r.ActorKind == action.ActorRule {
				kinds[r.Action] = true
			}
		}
		return kinds["failover"] && kinds["degrade"] && kinds[route.OpRestore]
	})
}

package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/problem"
	"vigia/internal/route"
	"vigia/internal/routelog"
	"vigia/internal/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the clock of the tests' API.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testRoutes: sales has two primaries and a reserve shared with support,
// and falls back to SMS; support falls back to e-mail; solo has one
// number and no other channel (pick can find no route). Numbers have a
// ramp schedule and a portfolio with a daily limit.
const testRoutes = `
ramp:
  - {after: 0s, fraction: 0.5}
  - {after: 1h, fraction: 1}
portfolios:
  - {id: acme, messaging_limit: 2000}
use_cases:
  - name: sales
    strategy: ordered
    channels: [whatsapp, sms]
    numbers:
      - {id: PN1, waba: W1, portfolio: acme, role: primary}
      - {id: PN2, waba: W1, portfolio: acme, role: primary}
      - {id: PN3, waba: W1, portfolio: acme, role: reserve}
  - name: support
    channels: [whatsapp, email]
    numbers:
      - {id: PN4, waba: W2, weight: 2, rate: 40/s}
      - {id: PN3, waba: W1, portfolio: acme, role: reserve}
  - name: solo
    numbers:
      - {id: PN5, waba: W3}
`

// Tokens of the tests, one per scope, and one with two.
var tokenOf = map[string]string{
	ScopeRead:    "read-token-0123456789",
	ScopePick:    "pick-token-0123456789",
	ScopeOperate: "operate-token-0123456789",
	ScopeAdmin:   "admin-token-0123456789",
	"read+pick":  "read-pick-token-0123456789",
}

var testTokens = []Token{
	{Name: "reader", SHA256: HashToken(tokenOf[ScopeRead]), Scopes: []string{ScopeRead}},
	{Name: "crm-sender", SHA256: HashToken(tokenOf[ScopePick]), Scopes: []string{ScopePick}},
	{Name: "ops-alice", SHA256: HashToken(tokenOf[ScopeOperate]), Scopes: []string{ScopeOperate}},
	{Name: "admin", SHA256: strings.ToUpper(HashToken(tokenOf[ScopeAdmin])), Scopes: []string{ScopeAdmin}},
	{Name: "dashboard", SHA256: HashToken(tokenOf["read+pick"]), Scopes: []string{ScopeRead, ScopePick}},
}

// fakeLog is the route log without Kafka: Propose applies the command to
// the state at once, as every replica would, and swaps in the new table.
type fakeLog struct {
	mu     sync.Mutex
	file   *route.File
	state  *route.State
	table  *route.Table
	picker *route.Picker
	err    error // Propose fails with it: the route log is unavailable
}

func (l *fakeLog) Propose(_ context.Context, c route.Command) (route.Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return route.Result{}, l.err
	}
	if c.ID == "" {
		c.ID = routelog.NewID()
	}
	c.FileHash = l.file.Hash
	res := l.state.Apply(l.file, c)
	l.table = route.NewTable(l.file, l.state)
	l.picker.SetTable(l.table)
	return res, nil
}

func (l *fakeLog) Table() *route.Table {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.table
}

// fakeSubscribers is the webhook dispatcher as the API shows it.
type fakeSubscribers struct{}

func (fakeSubscribers) Subscribers() []webhook.Status {
	at := t0.Add(-time.Minute)
	return []webhook.Status{
		{Name: "crm", URL: "https://crm.example.com/hooks/vigia", UseCases: []string{}, Delivered: 3, LastSuccessAt: &at},
		{Name: "billing", URL: "https://user:xxxxx@billing.example.com/", UseCases: []string{"billing"}, Queued: 2, Failed: 1,
			LastError: "503 Service Unavailable", LastErrorAt: &at},
	}
}

func (fakeSubscribers) Deliveries(name string) ([]webhook.Delivery, bool) {
	switch name {
	case "crm":
		at := t0.Add(-time.Minute)
		return []webhook.Delivery{
			{EventID: "e2@sales", EventType: TypeRouteChanged, UseCase: "sales", Attempts: 2, Status: webhook.StatusDelivered,
				LastStatusCode: 204, LastError: "timeout", FirstAttemptAt: at, LastAttemptAt: at, DeliveredAt: &at},
			{EventID: "e1@sales", EventType: TypeRouteChanged, UseCase: "sales", Status: webhook.StatusDropped},
		}, true
	case "billing":
		return nil, true // no delivery yet
	}
	return nil, false
}

// env is an API over a fakeLog, with a fixed clock.
type env struct {
	api  *API
	h    http.Handler
	log  *fakeLog
	hub  *Hub
	spec *spec
}

func newEnv(t *testing.T, mods ...func(*Options)) *env { return newEnvRoutes(t, testRoutes, mods...) }

func newEnvRoutes(t *testing.T, routes string, mods ...func(*Options)) *env {
	t.Helper()
	f, err := route.Parse("routes.yaml", []byte(routes))
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLog{file: f, state: route.NewState()}
	l.table = route.NewTable(f, l.state)
	l.picker = route.NewPicker(l.table, 1)
	o := Options{Log: l, Picker: l.picker, Subscribers: fakeSubscribers{}, Hub: NewHub(), Tokens: testTokens,
		MaxBodyBytes: 4096, Now: func() time.Time { return t0 }}
	for _, m := range mods {
		m(&o)
	}
	api, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{api: api, h: api.Handler(), log: l, hub: o.Hub, spec: loadSpec(t)}
}

// do serves one request and checks its answer against openapi.json. A
// request to the change stream is made with a cancelled context, so that
// the stream ends after its first event.
func (e *env) do(t *testing.T, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.doHeader(t, method, path, authHeader(token), body)
}

func authHeader(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

func (e *env) doHeader(t *testing.T, method, path, authorization, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	}
	if strings.HasPrefix(path, "/api/v1/events") {
		ctx, cancel := context.WithCancel(req.Context())
		cancel()
		req = req.WithContext(ctx)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if err := e.spec.checkAnswer(method, req.URL.Path, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		t.Errorf("openapi.json: %v", err)
	}
	return rec
}

// call does a request that must answer 200, decoding the answer into out.
func (e *env) call(t *testing.T, method, path, token, body string, out any) {
	t.Helper()
	rec := e.do(t, method, path, token, body)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s %s %s: %d %s", method, path, body, rec.Code, rec.Body)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) route(t *testing.T, name string) route.View {
	t.Helper()
	var v route.View
	e.call(t, "GET", "/api/v1/routes/"+name, tokenOf[ScopeRead], "", &v)
	return v
}

func (e *env) number(t *testing.T, id string) NumberView {
	t.Helper()
	var v NumberView
	e.call(t, "GET", "/api/v1/numbers/"+id, tokenOf[ScopeRead], "", &v)
	return v
}

// snapshot is every route with its numbers, without the state version:
// what a refused request must leave as it was.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	tab := e.log.Table()
	var views []route.View
	for _, name := range tab.UseCaseNames() {
		v, _ := tab.View(name, t0)
		v.Seq = 0
		views = append(views, v)
	}
	data, _ := json.Marshal(views)
	return string(data)
}

// checkProblem checks that rec is an RFC 9457 problem with status and a
// detail containing detail.
func checkProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, detail string) problem.Details {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem.Details
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, rec.Body)
	}
	if p.Status != status || p.Type != "about:blank" || p.Title == "" {
		t.Errorf("problem %+v, want status %d, type about:blank and a title", p, status)
	}
	if !strings.Contains(p.Detail, detail) {
		t.Errorf("problem detail %q, want it to contain %q", p.Detail, detail)
	}
	return p
}

func TestReads(t *testing.T) {
	cases := []struct {
		name, path, token string
		mods              []func(*Options)
		status            int
		check             func(t *testing.T, body []byte)
		detail            string
	}{
		{name: "routes", path: "/api/v1/routes", status: 200, check: func(t *testing.T, body []byte) {
			var out struct {
				Seq    int64
				Routes []route.View
			}
			_ = json.Unmarshal(body, &out)
			var names []string
			for _, r := range out.Routes {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, []string{"sales", "support", "solo"}) || out.Seq != 0 {
				t.Errorf("routes %v seq %d, want sales, support, solo in file order at seq 0", names, out.Seq)
			}
		}},
		{name: "one route", path: "/api/v1/routes/sales", status: 200, check: func(t *testing.T, body []byte) {
			var v route.View
			_ = json.Unmarshal(body, &v)
			if v.Name != "sales" || v.Strategy != "ordered" || v.Channel != "whatsapp" || len(v.Numbers) != 3 ||
				v.Numbers[0].State != route.StateActive || v.Numbers[0].DailyLimit != 2000 || v.Numbers[2].Role != route.RoleReserve {
				t.Errorf("sales: %+v", v)
			}
		}},
		{name: "unknown route", path: "/api/v1/routes/nope", status: 404, detail: `no use case "nope"`},
		{name: "number of two use cases", path: "/api/v1/numbers/PN3", status: 200, check: func(t *testing.T, body []byte) {
			var v NumberView
			_ = json.Unmarshal(body, &v)
			if v.ID != "PN3" || v.Role != route.RoleReserve || !slices.Equal(v.UseCases, []string{"sales", "support"}) || v.State != route.StateActive {
				t.Errorf("PN3: %+v", v)
			}
		}},
		{name: "unknown number", path: "/api/v1/numbers/PN9", status: 404, detail: `no number "PN9"`},
		{name: "automation", path: "/api/v1/automation", status: 200, check: func(t *testing.T, body []byte) {
			var a Automation
			_ = json.Unmarshal(body, &a)
			if a.Cooldown != "10m0s" || a.HourlyBudget != 20 || a.RestoreAfter != "15m0s" || a.UsedLastHour != 0 || len(a.Cooldowns) != 0 {
				t.Errorf("automation: %+v", a)
			}
		}},
		{name: "empty audit", path: "/api/v1/audit", status: 200, check: func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `"entries":[]`) {
				t.Errorf("audit: %s, want entries []", body)
			}
		}},
		{name: "subscribers", path: "/api/v1/subscribers", token: tokenOf[ScopeAdmin], status: 200, check: func(t *testing.T, body []byte) {
			var out struct{ Subscribers []webhook.Status }
			_ = json.Unmarshal(body, &out)
			if len(out.Subscribers) != 2 || out.Subscribers[0].Name != "crm" {
				t.Errorf("subscribers: %s", body)
			}
		}},
		{name: "no subscribers", path: "/api/v1/subscribers", token: tokenOf[ScopeAdmin], mods: []func(*Options){func(o *Options) { o.Subscribers = nil }},
			status: 200, check: func(t *testing.T, body []byte) {
				if !strings.Contains(string(body), `"subscribers":[]`) {
					t.Errorf("subscribers: %s, want []", body)
				}
			}},
		{name: "deliveries", path: "/api/v1/subscribers/crm/deliveries", token: tokenOf[ScopeAdmin], status: 200, check: func(t *testing.T, body []byte) {
			var out struct{ Deliveries []webhook.Delivery }
			_ = json.Unmarshal(body, &out)
			if len(out.Deliveries) != 2 || out.Deliveries[0].EventID != "e2@sales" {
				t.Errorf("deliveries: %s", body)
			}
		}},
		{name: "no deliveries yet", path: "/api/v1/subscribers/billing/deliveries", token: tokenOf[ScopeAdmin], status: 200, check: func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `"deliveries":[]`) {
				t.Errorf("deliveries: %s, want []", body)
			}
		}},
		{name: "unknown subscriber", path: "/api/v1/subscribers/nope/deliveries", token: tokenOf[ScopeAdmin], status: 404, detail: `no subscriber "nope"`},
		{name: "deliveries without subscribers", path: "/api/v1/subscribers/crm/deliveries", token: tokenOf[ScopeAdmin],
			mods: []func(*Options){func(o *Options) { o.Subscribers = nil }}, status: 404, detail: `no subscriber "crm"`},
		{name: "no change stream", path: "/api/v1/events", mods: []func(*Options){func(o *Options) { o.Hub = nil }}, status: 404, detail: "no change stream"},
		{name: "openapi without token", path: "/openapi.json", status: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.mods...)
			token := c.token
			if token == "" && c.path != "/openapi.json" {
				token = tokenOf[ScopeRead]
			}
			rec := e.do(t, "GET", c.path, token, "")
			if c.status != 200 {
				checkProblem(t, rec, c.status, c.detail)
				return
			}
			if rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if c.check != nil {
				c.check(t, rec.Body.Bytes())
			}
		})
	}
}

// TestAutomationAndAuditOfRules: the automation state and the audit log
// after a rule's failover, an advisory and a resolution.
func TestAutomationAndAuditOfRules(t *testing.T) {
	e := newEnv(t)
	applyAlerts(t, e)
	var a Automation
	e.call(t, "GET", "/api/v1/automation", tokenOf[ScopeRead], "", &a)
	end := t0.Add(-time.Minute).Add(10 * time.Minute)
	if a.UsedLastHour != 2 || !a.Cooldowns["number:PN1"].Equal(end) || !a.Cooldowns["use_case:sales"].Equal(end) {
		t.Errorf("automation: used %d, cooldowns %v", a.UsedLastHour, a.Cooldowns)
	}
	occ := a.Occurrences["fp1-1"]
	if occ == nil || len(occ.Changes) != 2 || occ.RestoreDue == nil || !occ.RestoreDue.Equal(t0.Add(-30*time.Second).Add(15*time.Minute)) {
		t.Errorf("occurrence fp1-1: %+v", occ)
	}
	if occ := a.Occurrences["fp2-1"]; occ == nil || occ.Changes != nil {
		t.Errorf("advisory occurrence fp2-1: %+v, want one with no changes", occ)
	}
	if v := e.route(t, "sales"); v.Preferred != "PN3" {
		t.Errorf("sales after the failover: preferred %q, want the reserve PN3", v.Preferred)
	}
	var audit struct{ Entries []route.Entry }
	e.call(t, "GET", "/api/v1/audit", tokenOf[ScopeRead], "", &audit)
	var got []string
	for _, en := range audit.Entries {
		got = append(got, en.Action+":"+en.Target+":"+en.Outcome)
	}
	want := []string{"advise_notify_senders:template:welcome:applied", "failover:sales:applied", "degrade:PN1:applied"}
	if !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v (newest first)", got, want)
	}
	if en := audit.Entries[1]; en.ActorKind != action.ActorRule || en.AlertFingerprint != "fp1" || len(en.Before) == 0 || len(en.After) == 0 {
		t.Errorf("failover entry: %+v", en)
	}
}

// applyAlerts puts a rule's failover of PN1 (resolved since) and an
// advisory through the log, as the automation would.
func applyAlerts(t *testing.T, e *env) {
	t.Helper()
	cmds := []route.Command{
		{Time: t0.Add(-time.Minute), Op: route.OpAlert, Actor: "vigia-control", ActorKind: action.ActorRule,
			Alert: &route.AlertRef{Name: "NumberDown", Fingerprint: "fp1", Occurrence: "fp1-1", Labels: map[string]string{"phone_number": "PN1"},
				Action: alert.Action{Type: "failover", Params: map[string]string{"phone_number": "PN1", "use_case": "sales"}}}},
		{Time: t0.Add(-time.Minute), Op: route.OpAlert, Actor: "vigia-control", ActorKind: action.ActorRule,
			Alert: &route.AlertRef{Name: "TemplatePaused", Fingerprint: "fp2", Occurrence: "fp2-1",
				Action: alert.Action{Type: "notify_senders", Params: map[string]string{"template": "welcome", "message": "use another template"}}}},
		{Time: t0.Add(-30 * time.Second), Op: route.OpResolved, Actor: "vigia-control", ActorKind: action.ActorRule,
			Alert: &route.AlertRef{Name: "NumberDown", Fingerprint: "fp1", Occurrence: "fp1-1"}},
	}
	for _, c := range cmds {
		if res, err := e.log.Propose(context.Background(), c); err != nil || res.Err != nil {
			t.Fatalf("%s: %v %v", c.Op, err, res.Err)
		}
	}
}

func TestPick(t *testing.T) {
	big := `{"recipient":"` + strings.Repeat("x", 5000) + `"}`
	cases := []struct {
		name, useCase, body string
		setup               []string // operator actions first: "path body"
		status              int
		detail              string
		check               func(t *testing.T, rec *httptest.ResponseRecorder, a route.Answer)
	}{
		{name: "no body", useCase: "sales", status: 200, check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
			if a.Channel != "whatsapp" || a.PhoneNumberID != "PN1" || a.WABA != "W1" || a.Budget == nil || a.Budget.Rate != 80 ||
				a.Budget.DailyLimit != 2000 || a.Budget.DailyUsed != 0 || a.Reason != "" {
				t.Errorf("pick: %+v budget %+v", a, a.Budget)
			}
		}},
		{name: "recipient", useCase: "sales", body: `{"recipient":"user-1"}`, status: 200, check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
			if a.PhoneNumberID != "PN1" || a.Budget == nil || a.Budget.DailyUsed != 1 {
				t.Errorf("pick: %+v budget %+v", a, a.Budget)
			}
		}},
		{name: "null body", useCase: "support", body: `null`, status: 200, check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
			if a.PhoneNumberID != "PN4" || a.Budget.Rate != 40 {
				t.Errorf("pick: %+v", a)
			}
		}},
		{name: "switched", useCase: "sales", setup: []string{"/api/v1/routes/sales/switch {\"to\":\"PN2\",\"reason\":\"INC-1\"}"}, status: 200,
			check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
				if a.PhoneNumberID != "PN2" || !strings.Contains(a.Reason, "INC-1") || a.Seq != 1 {
					t.Errorf("pick: %+v", a)
				}
			}},
		{name: "ramping number", useCase: "support", setup: []string{"/api/v1/numbers/PN4/ramp {}"}, status: 200,
			check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
				if a.Ramp == nil || a.Ramp.Fraction != 0.5 || a.Ramp.NextStepAt == nil || a.Budget.Rate != 20 {
					t.Errorf("pick: %+v ramp %+v budget %+v", a, a.Ramp, a.Budget)
				}
			}},
		{name: "paused use case", useCase: "sales", setup: []string{"/api/v1/routes/sales/pause {\"for\":\"1h\",\"reason\":\"maintenance\"}"}, status: 200,
			check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
				if a.Channel != "none" || a.PhoneNumberID != "" || a.Until == nil || !a.Until.Equal(t0.Add(time.Hour)) {
					t.Errorf("pick: %+v", a)
				}
			}},
		{name: "fallback channel", useCase: "sales", setup: []string{"/api/v1/routes/sales/fallback {\"channel\":\"sms\"}"}, status: 200,
			check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
				if a.Channel != "sms" || a.PhoneNumberID != "" {
					t.Errorf("pick: %+v", a)
				}
			}},
		{name: "no number: next channel", useCase: "support", setup: []string{"/api/v1/numbers/PN4/pause {}", "/api/v1/numbers/PN3/mark {\"state\":\"blocked\"}"},
			status: 200, check: func(t *testing.T, _ *httptest.ResponseRecorder, a route.Answer) {
				if a.Channel != "email" || a.Reason == "" {
					t.Errorf("pick: %+v", a)
				}
			}},
		{name: "no route", useCase: "solo", setup: []string{"/api/v1/numbers/PN5/pause {}"}, status: 503, detail: "no number has budget",
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ route.Answer) {
				if rec.Header().Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q, want 1", rec.Header().Get("Retry-After"))
				}
			}},
		{name: "unknown use case", useCase: "nope", status: 404, detail: `no use case "nope"`},
		{name: "unknown field", useCase: "sales", body: `{"recipient":"u","channel":"sms"}`, status: 400, detail: `unknown field "channel"`},
		{name: "not JSON", useCase: "sales", body: `recipient=u`, status: 400, detail: "body:"},
		{name: "not an object", useCase: "sales", body: `["u"]`, status: 400, detail: "body:"},
		{name: "wrong type", useCase: "sales", body: `{"recipient":7}`, status: 400, detail: "body:"},
		{name: "two objects", useCase: "sales", body: `{} {}`, status: 400, detail: "one JSON object"},
		{name: "trailing bracket", useCase: "sales", body: `{}]`, status: 400, detail: "one JSON object"},
		{name: "oversize", useCase: "sales", body: big, status: 413, detail: "larger than 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			for _, s := range c.setup {
				path, body, _ := strings.Cut(s, " ")
				e.call(t, "POST", path, tokenOf[ScopeOperate], body, nil)
			}
			rec := e.do(t, "POST", "/api/v1/routes/"+c.useCase+"/pick", tokenOf[ScopePick], c.body)
			var a route.Answer
			if c.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				_ = json.Unmarshal(rec.Body.Bytes(), &a)
				if a.UseCase != c.useCase {
					t.Errorf("use_case %q, want %q", a.UseCase, c.useCase)
				}
			} else {
				checkProblem(t, rec, c.status, c.detail)
			}
			if c.check != nil {
				c.check(t, rec, a)
			}
		})
	}
}

// TestOperatorActions: each action on use cases and numbers. A done
// action changes the state as asked; a refused one answers a problem and
// changes nothing: the routes are as they were, and the state version
// too unless the route state itself refused the command (which records
// the refusal in the audit log, and so counts).
func TestOperatorActions(t *testing.T) {
	future := t0.Add(90 * time.Minute).Format(time.RFC3339)
	cases := []struct {
		name   string
		setup  []string // "path body", each answering 200
		path   string
		body   string
		token  string // default: operate
		status int
		detail string // of a problem
		// refused: the route state refused the command (Seq counts it, the
		// audit log has it); otherwise the API did and nothing was proposed.
		refused bool
		check   func(t *testing.T, e *env, res OpResult)
	}{
		// Use cases.
		{name: "switch", path: "/api/v1/routes/sales/switch", body: `{"to":"PN2","reason":"INC-1: PN1 blocked"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				v := e.route(t, "sales")
				if v.Preferred != "PN2" || v.Reason != "INC-1: PN1 blocked" || v.Since == nil || !v.Since.Equal(t0) {
					t.Errorf("sales: %+v", v)
				}
				if res.Outcome != route.OutcomeApplied || len(res.Changes) != 1 || res.Seq != 1 {
					t.Fatalf("result %+v", res)
				}
				r := res.Changes[0]
				if r.Action != "switch" || r.Actor != "ops-alice" || r.ActorKind != action.ActorOperator || r.UseCase != "sales" ||
					!strings.Contains(string(r.After), `"preferred":"PN2"`) || strings.Contains(string(r.Before), "PN2") {
					t.Errorf("change %+v before %s after %s", r, r.Before, r.After)
				}
			}},
		{name: "switch again is a noop", setup: []string{`/api/v1/routes/sales/switch {"to":"PN2"}`}, path: "/api/v1/routes/sales/switch", body: `{"to":"PN2"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if res.Outcome != route.OutcomeNoop || res.Changes == nil || len(res.Changes) != 0 {
					t.Errorf("result %+v, want noop with no changes", res)
				}
			}},
		{name: "switch by admin", path: "/api/v1/routes/sales/switch", body: `{"to":"PN3"}`, token: tokenOf[ScopeAdmin], status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if res.Changes[0].Actor != "admin" {
					t.Errorf("actor %q, want the token's name admin", res.Changes[0].Actor)
				}
			}},
		{name: "switch without to", path: "/api/v1/routes/sales/switch", body: `{"reason":"x"}`, status: 422, detail: "to: the number to switch to is required"},
		{name: "switch without body", path: "/api/v1/routes/sales/switch", status: 422, detail: "to:"},
		{name: "switch takes no channel", path: "/api/v1/routes/sales/switch", body: `{"to":"PN2","channel":"sms"}`, status: 400, detail: `switch takes no "channel" (it takes: reason, to)`},
		{name: "switch of an unknown use case", path: "/api/v1/routes/nope/switch", body: `{"to":"PN2"}`, status: 404, detail: `no use case "nope"`},
		{name: "switch to a number outside the pool", path: "/api/v1/routes/sales/switch", body: `{"to":"PN4"}`, status: 404, refused: true, detail: `number "PN4" is not in use case sales`},
		{name: "switch to a paused number", setup: []string{`/api/v1/numbers/PN2/pause {}`}, path: "/api/v1/routes/sales/switch", body: `{"to":"PN2"}`,
			status: 409, refused: true, detail: "number PN2 is paused"},
		{name: "unknown field", path: "/api/v1/routes/sales/switch", body: `{"to":"PN2","colour":"red"}`, status: 400, detail: `unknown field "colour"`},
		{name: "not JSON", path: "/api/v1/routes/sales/switch", body: `to=PN2`, status: 400, detail: "body:"},
		{name: "array body", path: "/api/v1/routes/sales/pause", body: `[]`, status: 400, detail: "body:"},
		{name: "trailing garbage", path: "/api/v1/routes/sales/switch", body: `{"to":"PN2"}]`, status: 400, detail: "one JSON object"},
		{name: "reason too long", path: "/api/v1/routes/sales/pause", body: `{"reason":"` + strings.Repeat("x", 1001) + `"}`, status: 400, detail: "at most 1000 characters"},
		{name: "long reason in characters", path: "/api/v1/routes/sales/pause", body: `{"reason":"` + strings.Repeat("é", 1000) + `"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if v := e.route(t, "sales"); !v.Paused || len([]rune(v.Reason)) != 1000 {
					t.Errorf("sales: paused %v, reason of %d characters", v.Paused, len([]rune(v.Reason)))
				}
			}},
		{name: "oversize body", path: "/api/v1/routes/sales/pause", body: `{"reason":"` + strings.Repeat("x", 5000) + `"}`, status: 413, detail: "larger than 4096 bytes"},
		{name: "pause for", path: "/api/v1/routes/sales/pause", body: `{"for":"30m","reason":"campaign review"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				v := e.route(t, "sales")
				if !v.Paused || v.Until == nil || !v.Until.Equal(t0.Add(30*time.Minute)) || v.Reason != "campaign review" {
					t.Errorf("sales: %+v", v)
				}
			}},
		{name: "pause until", path: "/api/v1/routes/support/pause", body: `{"until":"` + future + `"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if v := e.route(t, "support"); !v.Paused || v.Until == nil || !v.Until.Equal(t0.Add(90*time.Minute)) {
					t.Errorf("support: %+v", v)
				}
			}},
		{name: "pause until in the past", path: "/api/v1/routes/sales/pause", body: `{"until":"2020-01-01T00:00:00Z"}`, status: 422, detail: "is not in the future"},
		{name: "pause until and for", path: "/api/v1/routes/sales/pause", body: `{"until":"` + future + `","for":"1h"}`, status: 422, detail: "not both"},
		{name: "pause for nonsense", path: "/api/v1/routes/sales/pause", body: `{"for":"soon"}`, status: 422, detail: `got "soon"`},
		{name: "pause for a negative time", path: "/api/v1/routes/sales/pause", body: `{"for":"-5m"}`, status: 422, detail: "positive duration"},
		{name: "pause for no time", path: "/api/v1/routes/sales/pause", body: `{"for":"0s"}`, status: 422, detail: "positive duration"},
		{name: "pause until after 9999", path: "/api/v1/routes/sales/pause", body: `{"until":"9999-12-31T23:30:00-01:00"}`, status: 422, detail: "after the year 9999"},
		{name: "pause until not a time", path: "/api/v1/routes/sales/pause", body: `{"until":"tomorrow"}`, status: 400, detail: "body:"},
		{name: "pause takes no to", path: "/api/v1/routes/sales/pause", body: `{"to":"PN2"}`, status: 400, detail: `pause takes no "to" (it takes: reason, until, for)`},
		{name: "resume", setup: []string{`/api/v1/routes/sales/pause {}`}, path: "/api/v1/routes/sales/resume", body: `{"reason":"done"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if v := e.route(t, "sales"); v.Paused || v.Until != nil || v.Reason != "done" {
					t.Errorf("sales: %+v", v)
				}
			}},
		// An action that changes nothing is a noop. (Not resume of a running
		// use case: the route state counts its new "since" as a change.)
		{name: "unlock of an unlocked use case is a noop", path: "/api/v1/routes/sales/unlock", status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if res.Outcome != route.OutcomeNoop {
					t.Errorf("result %+v", res)
				}
			}},
		{name: "resume takes no until", path: "/api/v1/routes/sales/resume", body: `{"until":"` + future + `"}`, status: 400, detail: `resume takes no "until" (it takes: reason)`},
		{name: "fallback", path: "/api/v1/routes/sales/fallback", body: `{"channel":"sms","reason":"Meta outage"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if v := e.route(t, "sales"); v.Channel != "sms" || v.Reason != "Meta outage" {
					t.Errorf("sales: %+v", v)
				}
			}},
		{name: "fallback back to whatsapp", setup: []string{`/api/v1/routes/sales/fallback {"channel":"sms"}`}, path: "/api/v1/routes/sales/fallback",
			body: `{"channel":"whatsapp"}`, status: 200, check: func(t *testing.T, e *env, res OpResult) {
				if v := e.route(t, "sales"); v.Channel != "whatsapp" {
					t.Errorf("sales: %+v", v)
				}
			}},
		{name: "fallback without channel", path: "/api/v1/routes/sales/fallback", body: `{}`, status: 422, detail: "channel: required"},
		{name: "fallback outside the chain", path: "/api/v1/routes/sales/fallback", body: `{"channel":"push"}`, status: 422, refused: true, detail: `channel "push" is not in the chain`},
		{name: "fallback takes no rate", path: "/api/v1/routes/sales/fallback", body: `{"channel":"sms","rate":"1/s"}`, status: 400, detail: `takes no "rate"`},
		{name: "lock", path: "/api/v1/routes/sales/lock", body: `{"reason":"INC-2 hands off","for":"1h"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				v := e.route(t, "sales")
				if v.Lock == nil || v.Lock.By != "ops-alice" || v.Lock.Reason != "INC-2 hands off" || !v.Lock.Until.Equal(t0.Add(time.Hour)) {
					t.Errorf("sales lock: %+v", v.Lock)
				}
			}},
		{name: "lock without reason", path: "/api/v1/routes/sales/lock", body: `{"for":"1h"}`, status: 422, detail: "a lock needs a reason"},
		{name: "lock with a blank reason", path: "/api/v1/routes/sales/lock", body: `{"for":"1h","reason":"  "}`, status: 422, detail: "a lock needs a reason"},
		{name: "lock without expiry", path: "/api/v1/routes/sales/lock", body: `{"reason":"x"}`, status: 422, detail: "a lock needs an expiry"},
		{name: "unlock", setup: []string{`/api/v1/routes/sales/lock {"reason":"x","for":"1h"}`}, path: "/api/v1/routes/sales/unlock", status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if v := e.route(t, "sales"); v.Lock != nil || res.Outcome != route.OutcomeApplied {
					t.Errorf("sales lock %+v, result %+v", v.Lock, res)
				}
			}},

		// Numbers.
		{name: "pause a number", path: "/api/v1/numbers/PN1/pause", body: `{"until":"` + future + `","reason":"quality RED"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				n := e.number(t, "PN1")
				if n.State != route.StatePaused || n.Until == nil || !n.Until.Equal(t0.Add(90*time.Minute)) || n.Reason != "quality RED" || !n.Since.Equal(t0) {
					t.Errorf("PN1: %+v", n)
				}
				if res.Changes[0].Target != "PN1" || res.Changes[0].UseCase != "" {
					t.Errorf("change %+v", res.Changes[0])
				}
			}},
		{name: "pause an unknown number", path: "/api/v1/numbers/PN9/pause", status: 404, detail: `no number "PN9"`},
		{name: "resume a number", setup: []string{`/api/v1/numbers/PN1/pause {}`, `/api/v1/numbers/PN1/throttle {"rate":"5/s"}`},
			path: "/api/v1/numbers/PN1/resume", status: 200, check: func(t *testing.T, e *env, res OpResult) {
				n := e.number(t, "PN1")
				if n.State != route.StateActive || n.RateCap != 0 || n.RampStart == nil || !n.RampStart.Equal(t0) || n.Ramp == nil {
					t.Errorf("PN1: %+v (want active, no throttle, ramping)", n)
				}
			}},
		{name: "throttle", path: "/api/v1/numbers/PN1/throttle", body: `{"rate":"600/m","for":"2h"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				n := e.number(t, "PN1")
				if n.RateCap != 10 || n.CapUntil == nil || !n.CapUntil.Equal(t0.Add(2*time.Hour)) {
					t.Errorf("PN1: %+v", n)
				}
				var a route.Answer
				e.call(t, "POST", "/api/v1/routes/sales/pick", tokenOf[ScopePick], "", &a)
				if a.Budget == nil || !a.Budget.RateCapped || a.Budget.Rate != 10 {
					t.Errorf("pick after the throttle: %+v", a.Budget)
				}
			}},
		{name: "throttle without rate", path: "/api/v1/numbers/PN1/throttle", body: `{"for":"1h"}`, status: 422, detail: "rate:"},
		{name: "throttle with a bad rate", path: "/api/v1/numbers/PN1/throttle", body: `{"rate":"fast"}`, status: 422, detail: "rate:"},
		{name: "throttle to no rate", path: "/api/v1/numbers/PN1/throttle", body: `{"rate":"0/s"}`, status: 422, detail: "must be positive"},
		{name: "throttle with a rate beyond float64", path: "/api/v1/numbers/PN1/throttle", body: `{"rate":"1` + strings.Repeat("0", 400) + `/s"}`, status: 422, detail: "out of range"},
		{name: "throttle takes no to", path: "/api/v1/numbers/PN1/throttle", body: `{"rate":"1/s","to":"PN2"}`, status: 400, detail: `takes no "to"`},
		{name: "lock a number", path: "/api/v1/numbers/PN3/lock", body: `{"reason":"keep the reserve","until":"` + future + `"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if n := e.number(t, "PN3"); n.Lock == nil || n.Lock.Reason != "keep the reserve" {
					t.Errorf("PN3: %+v", n)
				}
				// The lock shows in every use case of the number.
				if v := e.route(t, "support"); v.Numbers[1].Lock == nil {
					t.Errorf("support's PN3: %+v", v.Numbers[1])
				}
			}},
		{name: "lock a number without expiry", path: "/api/v1/numbers/PN3/lock", body: `{"reason":"x"}`, status: 422, detail: "expiry"},
		{name: "unlock a number", setup: []string{`/api/v1/numbers/PN3/lock {"reason":"x","for":"1h"}`}, path: "/api/v1/numbers/PN3/unlock", status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if n := e.number(t, "PN3"); n.Lock != nil {
					t.Errorf("PN3: %+v", n)
				}
			}},
		{name: "mark blocked", path: "/api/v1/numbers/PN1/mark", body: `{"state":"blocked","reason":"Meta blocked it"}`, status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				if n := e.number(t, "PN1"); n.State != route.StateBlocked {
					t.Errorf("PN1: %+v", n)
				}
				var a route.Answer
				e.call(t, "POST", "/api/v1/routes/sales/pick", tokenOf[ScopePick], "", &a)
				if a.PhoneNumberID != "PN2" {
					t.Errorf("pick with PN1 blocked: %+v, want PN2", a)
				}
			}},
		{name: "mark without state", path: "/api/v1/numbers/PN1/mark", body: `{}`, status: 422, detail: "state: required"},
		{name: "mark paused", path: "/api/v1/numbers/PN1/mark", body: `{"state":"paused"}`, status: 422, refused: true, detail: "pause has its own action"},
		{name: "mark nonsense", path: "/api/v1/numbers/PN1/mark", body: `{"state":"gone"}`, status: 422, refused: true, detail: `got "gone"`},
		{name: "ramp", path: "/api/v1/numbers/PN4/ramp", status: 200,
			check: func(t *testing.T, e *env, res OpResult) {
				n := e.number(t, "PN4")
				if n.RampStart == nil || !n.RampStart.Equal(t0) || n.Ramp == nil || n.Ramp.Step != 0 || n.Ramp.Fraction != 0.5 {
					t.Errorf("PN4: %+v ramp %+v", n, n.Ramp)
				}
			}},
		{name: "ramp takes no for", path: "/api/v1/numbers/PN4/ramp", body: `{"for":"1h"}`, status: 400, detail: `ramp takes no "for"`},
		{name: "ramp of an unknown number", path: "/api/v1/numbers/nope/ramp", status: 404, detail: `no number "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			for _, s := range c.setup {
				path, body, _ := strings.Cut(s, " ")
				e.call(t, "POST", path, tokenOf[ScopeOperate], body, nil)
			}
			before, seq, audit := e.snapshot(t), e.log.Table().Seq, len(e.log.Table().State().Audit)
			token := c.token
			if token == "" {
				token = tokenOf[ScopeOperate]
			}
			rec := e.do(t, "POST", c.path, token, c.body)
			if c.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				var res OpResult
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
					t.Fatal(err)
				}
				if res.Seq != e.log.Table().Seq {
					t.Errorf("result seq %d, state seq %d", res.Seq, e.log.Table().Seq)
				}
				if c.check != nil {
					c.check(t, e, res)
				}
				return
			}
			p := checkProblem(t, rec, c.status, c.detail)
			if after := e.snapshot(t); after != before {
				t.Errorf("a refused action changed the routes:\nbefore %s\nafter  %s", before, after)
			}
			st := e.log.Table().State()
			if !c.refused {
				if st.Seq != seq || len(st.Audit) != audit {
					t.Errorf("refused by the API, yet seq %d -> %d, audit %d -> %d", seq, st.Seq, audit, len(st.Audit))
				}
				return
			}
			if p.Title != "Refused" {
				t.Errorf("title %q, want Refused", p.Title)
			}
			if st.Seq != seq+1 || len(st.Audit) != audit+1 {
				t.Fatalf("refused by the route state: seq %d -> %d, audit %d -> %d; want both +1", seq, st.Seq, audit, len(st.Audit))
			}
			if last := st.Audit[len(st.Audit)-1]; last.Outcome != route.OutcomeRefused || last.Actor != "ops-alice" || !strings.Contains(p.Detail, last.Detail) {
				t.Errorf("audit entry %+v", last)
			}
		})
	}
}

// TestOperatorActionRampWithoutSchedule: ramp is refused when the routes
// file has no ramp schedule.
func TestOperatorActionRampWithoutSchedule(t *testing.T) {
	e := newEnvRoutes(t, "use_cases: [{name: sales, numbers: [{id: PN1}]}]\n")
	before := e.snapshot(t)
	rec := e.do(t, "POST", "/api/v1/numbers/PN1/ramp", tokenOf[ScopeOperate], "")
	checkProblem(t, rec, 409, "no ramp schedule")
	if e.snapshot(t) != before {
		t.Error("a refused ramp changed the routes")
	}
}

// TestRouteLogUnavailable: a change the route log cannot take is a 503;
// Retry-After unless the command may have been written (then the client
// must read before retrying).
func TestRouteLogUnavailable(t *testing.T) {
	for _, c := range []struct {
		err        error
		retryAfter string
	}{
		{errors.New("route log vigia-routes: kafka: broker not available"), "5"},
		{routelog.ErrUnconfirmed, ""},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			e := newEnv(t)
			e.log.err = c.err
			rec := e.do(t, "POST", "/api/v1/routes/sales/switch", tokenOf[ScopeOperate], `{"to":"PN2"}`)
			p := checkProblem(t, rec, 503, c.err.Error())
			if p.Title != "Route log unavailable" || rec.Header().Get("Retry-After") != c.retryAfter {
				t.Errorf("title %q, Retry-After %q; want Route log unavailable, %q", p.Title, rec.Header().Get("Retry-After"), c.retryAfter)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const (
		routes = "/api/v1/routes"
		pick   = "/api/v1/routes/sales/pick"
		sw     = "/api/v1/routes/sales/switch"
		audit  = "/api/v1/audit"
		subs   = "/api/v1/subscribers"
		events = "/api/v1/events"
	)
	bearer := func(scope string) string { return "Bearer " + tokenOf[scope] }
	cases := []struct {
		name, method, path, auth string
		status                   int
		challenge                string // in WWW-Authenticate
	}{
		{"no token", "GET", routes, "", 401, `Bearer realm="vigia-control"`},
		{"basic auth", "GET", routes, "Basic dXNlcjpwYXNz", 401, `Bearer realm="vigia-control"`},
		{"empty bearer", "GET", routes, "Bearer ", 401, `Bearer realm="vigia-control"`},
		{"unknown token", "GET", routes, "Bearer not-a-token", 401, `error="invalid_token"`},
		{"unknown token on pick", "POST", pick, "Bearer not-a-token", 401, `error="invalid_token"`},
		{"scheme in lower case", "GET", routes, "bearer " + tokenOf[ScopeRead], 200, ""},
		{"read reads", "GET", routes, bearer(ScopeRead), 200, ""},
		{"read streams", "GET", events, bearer(ScopeRead), 200, ""},
		{"read cannot pick", "POST", pick, bearer(ScopeRead), 403, `error="insufficient_scope", scope="pick"`},
		{"read cannot operate", "POST", sw, bearer(ScopeRead), 403, `scope="operate"`},
		{"read cannot see subscribers", "GET", subs, bearer(ScopeRead), 403, `scope="admin"`},
		{"pick picks", "POST", pick, bearer(ScopePick), 200, ""},
		{"pick cannot read", "GET", routes, bearer(ScopePick), 403, `scope="read"`},
		{"pick cannot operate", "POST", sw, bearer(ScopePick), 403, `scope="operate"`},
		{"operate operates", "POST", sw, bearer(ScopeOperate), 422, ""}, // past auth: the body lacks to
		{"operate implies read", "GET", routes, bearer(ScopeOperate), 200, ""},
		{"operate implies read: audit", "GET", audit, bearer(ScopeOperate), 200, ""},
		{"operate cannot pick", "POST", pick, bearer(ScopeOperate), 403, `scope="pick"`},
		{"operate cannot see subscribers", "GET", subs, bearer(ScopeOperate), 403, `scope="admin"`},
		{"admin reads", "GET", routes, bearer(ScopeAdmin), 200, ""},
		{"admin picks", "POST", pick, bearer(ScopeAdmin), 200, ""},
		{"admin operates", "POST", sw, bearer(ScopeAdmin), 422, ""},
		{"admin sees subscribers", "GET", subs, bearer(ScopeAdmin), 200, ""},
		{"two scopes: read", "GET", routes, bearer("read+pick"), 200, ""},
		{"two scopes: pick", "POST", pick, bearer("read+pick"), 200, ""},
		{"two scopes: not operate", "POST", sw, bearer("read+pick"), 403, `scope="operate"`},
		{"openapi needs no token", "GET", "/openapi.json", "", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.doHeader(t, c.method, c.path, c.auth, "")
			if c.status == 401 || c.status == 403 {
				checkProblem(t, rec, c.status, "")
				if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, c.challenge) {
					t.Errorf("WWW-Authenticate %q, want %q in it", got, c.challenge)
				}
				return
			}
			if rec.Code != c.status {
				t.Errorf("%d %s, want %d", rec.Code, rec.Body, c.status)
			}
		})
	}
}

func TestNewRefusesBadTokens(t *testing.T) {
	for _, tokens := range [][]Token{
		{{Name: "short", SHA256: "abc", Scopes: []string{ScopeRead}}},
		{{Name: "not hex", SHA256: strings.Repeat("z", 64), Scopes: []string{ScopeRead}}},
		{{Name: "a", SHA256: HashToken("x"), Scopes: []string{ScopeRead}}, {Name: "b", SHA256: HashToken("x"), Scopes: []string{ScopePick}}},
	} {
		if _, err := New(Options{Tokens: tokens}); err == nil {
			t.Errorf("New with tokens %+v: no error", tokens)
		}
	}
}

// TestMethodNotAllowed: a method a path does not take is a 405 problem
// with Allow, before any token check.
func TestMethodNotAllowed(t *testing.T) {
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/api/v1/routes", "GET"},
		{"POST", "/api/v1/routes/sales", "GET"},
		{"GET", "/api/v1/routes/sales/pick", "POST"},
		{"PUT", "/api/v1/numbers/PN1/pause", "POST"},
		{"PATCH", "/api/v1/audit", "GET"},
		{"POST", "/api/v1/events", "GET"},
		{"DELETE", "/api/v1/subscribers/crm/deliveries", "GET"},
		{"POST", "/openapi.json", "GET"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(t, c.method, c.path, "", "")
			checkProblem(t, rec, 405, "allowed: "+c.allow)
			if got := rec.Header().Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}

func TestUnknownAPIPath(t *testing.T) {
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/nope"},
		{"GET", "/api/v2/routes"},
		{"POST", "/api/v1/routes/sales/explode"},
		{"GET", "/api/v1/routes/sales/numbers/PN1"},
		{"GET", "/api/v1/numbers"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(t, c.method, c.path, tokenOf[ScopeAdmin], "")
			checkProblem(t, rec, 404, "no such endpoint: "+c.path)
		})
	}
}

func TestAudit(t *testing.T) {
	e := newEnv(t)
	applyAlerts(t, e)
	for _, s := range []struct {
		path, body string
		status     int
	}{
		{"/api/v1/routes/sales/switch", `{"to":"PN2","reason":"back to a primary"}`, 200},
		{"/api/v1/routes/sales/fallback", `{"channel":"push"}`, 422},
		{"/api/v1/numbers/PN2/pause", `{"for":"1h"}`, 200},
	} {
		if rec := e.do(t, "POST", s.path, tokenOf[ScopeOperate], s.body); rec.Code != s.status {
			t.Fatalf("%s: %d %s", s.path, rec.Code, rec.Body)
		}
	}
	// Newest first: pause PN2, refused fallback, switch, then the rules'.
	all := []string{"pause:PN2:applied", "fallback:sales:refused", "switch:sales:applied",
		"advise_notify_senders:template:welcome:applied", "failover:sales:applied", "degrade:PN1:applied"}
	cases := []struct {
		query  string
		want   []string
		detail string // of a 400
	}{
		{"", all, ""},
		{"?use_case=sales", []string{"fallback:sales:refused", "switch:sales:applied", "failover:sales:applied"}, ""},
		{"?target=PN2", []string{"pause:PN2:applied"}, ""},
		{"?outcome=refused", []string{"fallback:sales:refused"}, ""},
		{"?use_case=sales&outcome=applied", []string{"switch:sales:applied", "failover:sales:applied"}, ""},
		{"?use_case=support", []string{}, ""},
		{"?limit=2", all[:2], ""},
		{"?limit=1&use_case=sales", all[1:2], ""},
		{"?limit=10000", all, ""},
		{"?limit=0", nil, `got "0"`},
		{"?limit=-1", nil, `got "-1"`},
		{"?limit=10001", nil, `got "10001"`},
		{"?limit=ten", nil, `got "ten"`},
		{"?limit=1.5", nil, `got "1.5"`},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			rec := e.do(t, "GET", "/api/v1/audit"+c.query, tokenOf[ScopeRead], "")
			if c.detail != "" {
				checkProblem(t, rec, 400, "limit: want 1 to 10000, "+c.detail)
				return
			}
			var out struct{ Entries []route.Entry }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			got := []string{}
			for _, en := range out.Entries {
				got = append(got, en.Action+":"+en.Target+":"+en.Outcome)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("entries %v, want %v", got, c.want)
			}
		})
	}
}

// TestEvents: the change stream over a real connection: the full view
// first, then each published change, with its id.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokenOf[ScopeRead])
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := e.spec.checkAnswer("GET", "/api/v1/events", resp.StatusCode, resp.Header, nil); err != nil {
		t.Error(err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	rd := bufio.NewReader(resp.Body)

	ev := readEvent(t, rd)
	if ev.event != "routes" || ev.id != "" {
		t.Fatalf("first event %+v, want routes without id", ev)
	}
	e.checkData(t, ev.data, map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/Route"}})
	var views []route.View
	_ = json.Unmarshal([]byte(ev.data), &views)
	if len(views) != 3 || views[0].Name != "sales" {
		t.Errorf("routes event: %s", ev.data)
	}

	// An operator's switch, then a rule's advisory, published as the
	// control service does.
	var res OpResult
	e.call(t, "POST", "/api/v1/routes/sales/switch", tokenOf[ScopeOperate], `{"to":"PN2","reason":"INC-3"}`, &res)
	for _, c := range Changes(res.Changes, e.log.Table(), t0) {
		e.hub.Publish(c)
	}
	ev = readEvent(t, rd)
	if ev.event != TypeRouteChanged || !strings.HasSuffix(ev.id, "@sales") {
		t.Fatalf("event %+v, want route.changed with an id ending @sales", ev)
	}
	e.checkData(t, ev.data, map[string]any{"$ref": "#/components/schemas/Change"})
	var c Change
	_ = json.Unmarshal([]byte(ev.data), &c)
	if c.ID != ev.id || c.Action != "switch" || c.Actor != "ops-alice" || c.Reason != "INC-3" || c.Route == nil || c.Route.Preferred != "PN2" {
		t.Errorf("change %+v", c)
	}

	adv := action.Record{ID: "cmd9/0", Time: t0, Actor: "vigia-control", ActorKind: action.ActorRule, Action: "advise_notify_senders",
		Target: "template:welcome", AlertFingerprint: "fp2", Occurrence: "fp2-1", After: json.RawMessage(`{"template":"welcome","message":"use another"}`)}
	for _, c := range Changes([]action.Record{adv}, e.log.Table(), t0) {
		e.hub.Publish(c)
	}
	ev = readEvent(t, rd)
	if ev.event != TypeAdvisory || ev.id != "cmd9/0" {
		t.Fatalf("event %+v, want route.advisory cmd9/0", ev)
	}
	e.checkData(t, ev.data, map[string]any{"$ref": "#/components/schemas/Change"})
	_ = json.Unmarshal([]byte(ev.data), &c)
	if c.Advice["template"] != "welcome" || c.Alert == nil || c.Alert.Occurrence != "fp2-1" {
		t.Errorf("advisory %+v", c)
	}
}

type sseEvent struct{ event, id, data string }

// readEvent reads one Server-Sent Event, skipping comments.
func readEvent(t *testing.T, rd *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	done := make(chan error, 1)
	go func() {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && ev.event != "":
				done <- nil
				return
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return ev
}

func (e *env) checkData(t *testing.T, data string, schema any) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("event data: %v: %s", err, data)
	}
	if errs := e.spec.validate(schema, v, "$"); len(errs) > 0 {
		t.Errorf("event data does not match openapi.json:\n  %s\ndata: %s", strings.Join(errs, "\n  "), data)
	}
}

// TestHubDropsSlowClient: a client that falls clientBuffer changes behind
// is dropped (its channel closed) instead of blocking the others.
func TestHubDropsSlowClient(t *testing.T) {
	h := NewHub()
	slow, fast := h.subscribe(), h.subscribe()
	got := 0
	for i := range clientBuffer + 1 {
		h.Publish(Change{ID: strings.Repeat("x", i%3)})
		for len(fast) > 0 {
			<-fast
			got++
		}
	}
	if got != clientBuffer+1 {
		t.Errorf("the fast client got %d changes, want %d", got, clientBuffer+1)
	}
	n := 0
	for range slow {
		n++
	}
	if n != clientBuffer {
		t.Errorf("the slow client got %d changes before it was dropped, want %d", n, clientBuffer)
	}
	h.unsubscribe(slow) // already dropped: no double close
	h.unsubscribe(fast)
}

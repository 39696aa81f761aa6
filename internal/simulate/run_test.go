package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/event"
	"vigia/internal/meta"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
	"vigia/internal/route"
)

const (
	testSecret = "sim-app-secret"
	testPick   = "sim-pick-token-0123456789"
	testRead   = "sim-read-token-0123456789"
)

// everyIncident exercises every incident type, fast.
const everyIncident = `name: every incident
speed: 40
duration: 3m
seed: 3
wabas:
  - id: "100"
    numbers:
      - {id: "201", display: "+1 555 000 0001"}
      - {id: "202", display: "+1 555 000 0002"}
templates:
  - {name: promo, category: marketing}
  - {name: order, category: utility, id: "777"}
use_cases:
  - {name: sales, templates: [promo, order], rate: 8/s, campaign: bf}
traffic:
  reply: 0.2
  opt_out: 0.05
  delivered_after: [1s, 3s]
  read_after: [2s, 5s]
  reply_after: [2s, 5s]
incidents:
  - {name: blocked, type: number_blocked, number: "201", at: 20s, for: 40s, expect: {detect_within: 5s, switch_within: 5s}}
  - {name: spam, type: number_spam_limited, number: "202", at: 70s, for: 10s}
  - {name: collapse, type: delivery_collapse, number: "202", at: 80s, for: 10s}
  - {name: paused, type: template_paused, template: order, at: 90s, for: 10s}
  - {name: quality, type: quality_downgrade, number: "202", at: 100s, for: 10s}
  - {name: outage, type: platform_outage, at: 110s, for: 10s}
  - {name: optouts, type: optout_spike, template: promo, at: 120s, for: 20s, fraction: 0.6}
  - {name: peak, type: throughput_errors, number: "202", use_case: sales, at: 150s, for: 20s, factor: 2}
`

// fakeVigia stands in for ingest, the evaluator and control: ingest checks
// signatures and normalizes the payloads with Vigia's own code; the
// "evaluator" fires an alert once number 201 has 5 blocked failures and the
// "control" answers that by moving pick to 202, with an audit entry.
type fakeVigia struct {
	t    *testing.T
	norm *meta.Normalizer
	srv  *httptest.Server

	mu       sync.Mutex
	events   []event.Event
	rejects  []meta.Reject
	badSigs  int
	blocked  int
	alerts   []alert.Alert
	audit    []route.Entry
	switched bool
	picks    int
}

func newFakeVigia(t *testing.T) *fakeVigia {
	p, err := pseudo.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	dir := meta.NewDirectory([]meta.PhoneNumber{{ID: "201", Display: "+1 555 000 0001", WABAID: "100"},
		{ID: "202", Display: "+1 555 000 0002", WABAID: "100"}}, 100)
	f := &fakeVigia{t: t, norm: meta.NewNormalizer(p, dir, optout.NewWithExact(nil, nil, nil))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /webhooks/whatsapp", f.ingest)
	mux.HandleFunc("POST /api/v1/routes/{uc}/pick", f.pick)
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"alerts": f.alerts})
	})
	mux.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testRead {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"entries": f.audit})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVigia) ingest(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := meta.VerifySignature(body, r.Header.Get(meta.SignatureHeader), [][]byte{[]byte(testSecret)}); err != nil {
		f.badSigs++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	res, err := f.norm.Normalize(body, time.Now())
	if err != nil {
		f.t.Errorf("normalize: %v\n%s", err, body)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.events = append(f.events, res.Events...)
	f.rejects = append(f.rejects, res.Rejects...)
	for _, ev := range res.Events {
		if ev.Error != nil && ev.Error.Code == 368 && ev.PhoneNumberID == "201" {
			f.blocked++
		}
	}
	if f.blocked >= 5 && len(f.alerts) == 0 {
		now := time.Now()
		labels := map[string]string{"alertname": "NumberBlocked", "phone_number": "201"}
		a := alert.Alert{SchemaVersion: alert.SchemaVersion, Fingerprint: alert.Fingerprint(labels), Name: "NumberBlocked",
			State: alert.StateFiring, Labels: labels, ActiveAt: now, FiredAt: &now, EvalTime: now}
		f.alerts = append(f.alerts, a)
		f.audit = append(f.audit, route.Entry{Record: action.Record{Time: now.Add(50 * time.Millisecond), Action: "failover",
			UseCase: "sales", Target: "sales", ActorKind: action.ActorRule, AlertFingerprint: a.Fingerprint}, Outcome: route.OutcomeApplied})
		f.switched = true
	}
	w.Write([]byte(`{"events":1}`))
}

func (f *fakeVigia) pick(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testPick {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.picks++
	ans := route.Answer{UseCase: r.PathValue("uc"), Channel: "whatsapp", PhoneNumberID: "201", WABA: "100"}
	if f.switched {
		ans.PhoneNumberID = "202"
	}
	_ = json.NewEncoder(w).Encode(ans)
}

// TestRunAgainstFake plays every incident type: every webhook is signed
// and normalizes through Vigia's own parser without a reject, carries what
// the incidents say, and the report finds the fake's detection and switch.
func TestRunAgainstFake(t *testing.T) {
	sc, err := Parse("every.yaml", []byte(everyIncident))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeVigia(t)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), sc, Options{Ingest: f.srv.URL, Control: f.srv.URL, Evaluator: f.srv.URL,
		AppSecret: testSecret, PickToken: testPick, ReadToken: testRead, Progress: &progress, Tick: 20 * time.Millisecond,
		PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.badSigs > 0 || len(f.rejects) > 0 {
		t.Fatalf("%d bad signatures, rejects %+v", f.badSigs, f.rejects)
	}
	if rep.Stats.IngestErrors > 0 || rep.Stats.PickErrors > 0 || rep.Stats.Messages < 1000 || rep.Stats.Webhooks == 0 {
		t.Errorf("stats: %+v", rep.Stats)
	}

	statuses, codes, kinds := map[string]int{}, map[int]int{}, map[event.Kind]int{}
	var optOuts, attributed, replies int
	var paused, downgraded bool
	for _, ev := range f.events {
		kinds[ev.Kind]++
		switch ev.Kind {
		case event.KindStatus:
			statuses[ev.Status]++
			if ev.Error != nil {
				codes[ev.Error.Code]++
			}
			if a := ev.Attribution; a != nil && a.UseCase == "sales" && a.Campaign == "bf" && (a.Template == "promo" || a.Template == "order") {
				attributed++
			}
		case event.KindInbound:
			replies++
			if ev.OptOut != nil {
				optOuts++
			}
		case event.KindTemplateStatus:
			paused = paused || ev.Template != nil && ev.Template.Name == "order" && ev.Template.Event == "PAUSED"
		case event.KindPhoneQuality:
			downgraded = downgraded || ev.PhoneNumberID == "202" && ev.Quality != nil && ev.Quality.Event == "DOWNGRADE"
		}
		if ev.Error != nil && ev.Error.Code == 131050 && ev.OptOut != nil {
			optOuts++
		}
	}
	for _, s := range []string{"sent", "delivered", "read", "failed"} {
		if statuses[s] == 0 {
			t.Errorf("no %s status; statuses %v", s, statuses)
		}
	}
	for _, c := range []int{368, 131048, 131026, 132015, 131016, 131050, 130429} {
		if codes[c] == 0 {
			t.Errorf("no failure with code %d; codes %v", c, codes)
		}
	}
	if attributed < statuses["sent"] {
		t.Errorf("%d attributed statuses, want every one of %d sent", attributed, statuses["sent"])
	}
	if optOuts < 10 || replies < 30 {
		t.Errorf("%d opt-outs in %d inbound messages", optOuts, replies)
	}
	if !paused || !downgraded {
		t.Errorf("template paused %v, quality downgrade %v; kinds %v", paused, downgraded, kinds)
	}
	if kinds[event.KindTemplateStatus] != 2 || kinds[event.KindPhoneQuality] != 2 {
		t.Errorf("want PAUSED and REINSTATED, DOWNGRADE and UPGRADE: kinds %v", kinds)
	}

	blocked := rep.Incidents[0]
	if blocked.Detected == nil || blocked.Switched == nil {
		t.Fatalf("blocked incident: %+v", blocked)
	}
	if blocked.Detected.Alert != "NumberBlocked" || blocked.Switched.Action != "failover" || blocked.Detected.AfterSeconds < 0 ||
		blocked.Switched.At.Before(blocked.Detected.At) {
		t.Errorf("blocked incident: detected %+v switched %+v", blocked.Detected, blocked.Switched)
	}
	if blocked.BadRouteBeforeDetection == 0 || blocked.BadRouteAfterSwitch != 0 {
		t.Errorf("bad-route sends: before detection %d, after switch %d", blocked.BadRouteBeforeDetection, blocked.BadRouteAfterSwitch)
	}
	if !rep.Passed || len(blocked.Checks) != 2 {
		t.Errorf("checks: %+v", blocked.Checks)
	}
	for _, ir := range rep.Incidents[1:] {
		if ir.Detected != nil {
			t.Errorf("%s: detected by an alert that does not match its key: %+v", ir.Name, ir.Detected)
		}
	}
	if rep.Incidents[5].Key != "all numbers" || rep.Incidents[3].Key != "template=order" {
		t.Errorf("keys: %q %q", rep.Incidents[5].Key, rep.Incidents[3].Key)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NumberBlocked", "failover", "phone_number=201", "Every expectation met", "sales     whatsapp  202"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var back Report
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil || json.Unmarshal(js.Bytes(), &back) != nil || back.Incidents[0].Switched == nil {
		t.Errorf("JSON report does not round-trip: %v\n%s", err, js.String())
	}
	if !strings.Contains(progress.String(), `incident "blocked" (number_blocked) starts`) {
		t.Errorf("progress:\n%s", progress.String())
	}
}

// TestRunExpectationsFail: an expectation Vigia misses fails the report.
func TestRunExpectationsFail(t *testing.T) {
	text := strings.Replace(everyIncident, `number: "201", at: 20s, for: 40s, expect: {detect_within: 5s, switch_within: 5s}`,
		`number: "201", at: 20s, for: 40s, expect: {alert: SomethingElse, detect_within: 5s}`, 1)
	text = strings.Replace(text, "duration: 3m", "duration: 1m", 1)
	text = text[:strings.Index(text, "  - {name: spam")]
	sc, err := Parse("every.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeVigia(t)
	rep, err := Run(context.Background(), sc, Options{Ingest: f.srv.URL, Control: f.srv.URL, Evaluator: f.srv.URL,
		AppSecret: testSecret, PickToken: testPick, Tick: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ir := rep.Incidents[0]
	if rep.Passed || ir.Detected != nil || ir.Switched != nil {
		t.Errorf("report: passed %v, %+v", rep.Passed, ir)
	}
	if !slices.ContainsFunc(ir.Notes, func(n string) bool { return strings.Contains(n, "fired on the key instead: NumberBlocked") }) ||
		!slices.ContainsFunc(ir.Notes, func(n string) bool { return strings.Contains(n, "no read token") }) {
		t.Errorf("notes: %q", ir.Notes)
	}
}

// TestRunPreflight: a wrong token or use case fails before any traffic,
// with a message that says which.
func TestRunPreflight(t *testing.T) {
	sc, err := Parse("every.yaml", []byte(everyIncident))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeVigia(t)
	_, err = Run(context.Background(), sc, Options{Ingest: f.srv.URL, Control: f.srv.URL, AppSecret: testSecret, PickToken: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "use case sales: pick: 401") {
		t.Errorf("err = %v", err)
	}
	_, err = Run(context.Background(), sc, Options{Control: "ftp://x"})
	for _, want := range []string{"target.ingest: required", "target.control: not an http(s) URL", "target.app_secret: required", "target.pick_token: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) > 0 {
		t.Errorf("traffic sent despite the failed preflight: %d events", len(f.events))
	}
}

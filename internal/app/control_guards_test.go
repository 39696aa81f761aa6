package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/control"
	"vigia/internal/route"
)

// The guard tests run a control service on the embedded broker, feed it
// alert records through the alerts topic as the evaluator would, and
// check each guard of the automation by what the API, the audit log, the
// actions topic and the senders show.

// routesWith is testRoutes with its automation settings changed by
// overrides (cooldown, hourly_budget, restore_after, platform_fraction,
// dry_run...).
func routesWith(overrides map[string]string) string {
	settings := map[string]string{"cooldown": "1s", "hourly_budget": "50", "restore_after": "1500ms", "platform_fraction": "0.9"}
	maps.Copy(settings, overrides)
	var b strings.Builder
	b.WriteString("automation:\n")
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "  %s: %s\n", k, settings[k])
	}
	_, useCases, _ := strings.Cut(testRoutes, "use_cases:")
	return b.String() + "use_cases:" + useCases
}

// numberAlert is an alert record on number (of useCase) whose rule fails
// the number over; failoverAlert is numberAlert("NumberDown", "PN1",
// "sales", ...).
func numberAlert(name, number, useCase string, state alert.State, activeAt, at time.Time) *alert.Alert {
	labels := map[string]string{"alertname": name, "phone_number": number, "use_case": useCase}
	a := &alert.Alert{SchemaVersion: alert.SchemaVersion, Fingerprint: alert.Fingerprint(labels), Name: name,
		Group: "delivery", Rule: "rules/delivery.yaml:9", State: state, Labels: labels, ActiveAt: activeAt, EvalTime: at,
		Annotations: map[string]string{"summary": "delivery on " + number + " fell to 40%"},
		Actions:     []alert.Action{{Type: "failover", Params: map[string]string{"phone_number": number, "use_case": useCase}}}}
	if state == alert.StateFiring || state == alert.StateResolved {
		a.FiredAt = &activeAt
	}
	if state == alert.StateResolved {
		a.ResolvedAt = &at
	}
	return a
}

// controlEnv is one control service on its own embedded broker.
type controlEnv struct {
	t       *testing.T
	brokers []string
	cfg     config.Config
	c       *Control
	base    string
}

func startControlEnv(t *testing.T, routes, subscriberURL string) *controlEnv {
	t.Helper()
	ing, _ := startIngest(t, testConfig(t))
	e := &controlEnv{t: t, brokers: ing.Brokers()}
	e.cfg = controlConfig(t, e.brokers, routes, subscriberURL)
	e.c, e.base = startControl(t, e.cfg)
	return e
}

// op sends an operator action, path relative to /api/v1/.
func (e *controlEnv) op(path string, body any) (int, control.OpResult) {
	e.t.Helper()
	return operate(e.t, e.base, path, body)
}

func operate(t *testing.T, base, path string, body any) (int, control.OpResult) {
	t.Helper()
	var res control.OpResult
	code := callAPI(t, "POST", base+"/api/v1/"+path, testTokenOperate, body, &res)
	return code, res
}

// mustOp sends an operator action that must be answered 200.
func (e *controlEnv) mustOp(path string, body any) control.OpResult {
	e.t.Helper()
	code, res := e.op(path, body)
	if code != 200 {
		e.t.Fatalf("POST /api/v1/%s: %d %+v, want 200", path, code, res)
	}
	return res
}

func auditOf(t *testing.T, base string, query url.Values) []route.Entry {
	t.Helper()
	if query == nil {
		query = url.Values{}
	}
	query.Set("limit", "10000")
	var out struct{ Entries []route.Entry }
	if code := callAPI(t, "GET", base+"/api/v1/audit?"+query.Encode(), testTokenOperate, nil, &out); code != 200 {
		t.Fatalf("GET audit: %d", code)
	}
	slices.Reverse(out.Entries) // oldest first
	return out.Entries
}

func (e *controlEnv) audit() []route.Entry { return auditOf(e.t, e.base, nil) }

func (e *controlEnv) automation() control.Automation {
	e.t.Helper()
	var out control.Automation
	if code := callAPI(e.t, "GET", e.base+"/api/v1/automation", testTokenOperate, nil, &out); code != 200 {
		e.t.Fatalf("GET automation: %d", code)
	}
	return out
}

func (e *controlEnv) number(id string) control.NumberView {
	e.t.Helper()
	var out control.NumberView
	if code := callAPI(e.t, "GET", e.base+"/api/v1/numbers/"+id, testTokenOperate, nil, &out); code != 200 {
		e.t.Fatalf("GET number %s: %d", id, code)
	}
	return out
}

func (e *controlEnv) view(useCase string) route.View {
	e.t.Helper()
	var out route.View
	if code := callAPI(e.t, "GET", e.base+"/api/v1/routes/"+useCase, testTokenOperate, nil, &out); code != 200 {
		e.t.Fatalf("GET route %s: %d", useCase, code)
	}
	return out
}

// entries returns the audit entries that match: action and outcome ("" any),
// and actor kind rule when rule is set.
func entries(es []route.Entry, act, outcome string, rule bool) []route.Entry {
	var out []route.Entry
	for _, e := range es {
		if (act == "" || e.Action == act) && (outcome == "" || e.Outcome == outcome) && (!rule || e.ActorKind == action.ActorRule) {
			out = append(out, e)
		}
	}
	return out
}

func describeAudit(es []route.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s %s %s %s/%s occ=%s dry_run=%v %s", e.Time.Format("15:04:05.000"), e.ActorKind, e.Action,
			e.UseCase, e.Target, e.Occurrence, e.DryRun, e.Outcome)
		if e.Detail != "" {
			b.WriteString(": " + e.Detail)
		}
	}
	return b.String()
}

// waitRefused waits for a refused automatic command of occurrence occ
// whose detail contains why, and returns it.
func (e *controlEnv) waitRefused(occ, why string) route.Entry {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		es := e.audit()
		for _, en := range entries(es, "", route.OutcomeRefused, true) {
			if en.Occurrence == occ && strings.Contains(en.Detail, why) {
				return en
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no refused entry of occurrence %s with %q in the audit log:%s", occ, why, describeAudit(es))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestControlGuardCooldown: a second occurrence of an alert on the same
// number within automation.cooldown is refused (audit: refused, cooldown)
// and changes nothing, while operators are not held by the cooldown; once
// the cooldown is over, a new occurrence acts again.
func TestControlGuardCooldown(t *testing.T) {
	e := startControlEnv(t, routesWith(map[string]string{"cooldown": "2s"}), "")
	now := time.Now()
	occ1 := failoverAlert(alert.StateFiring, now.Add(-time.Minute), now)
	occ2 := failoverAlert(alert.StateFiring, now.Add(-30*time.Second), now)
	// One write: the two records are read and proposed back to back, well
	// within the cooldown.
	publishAlerts(e.t, e.brokers, occ1, occ2)

	refused := e.waitRefused(occ2.Occurrence(), "cooldown")
	es := e.audit()
	failovers := entries(es, "failover", route.OutcomeApplied, true)
	if len(failovers) != 1 || failovers[0].Occurrence != occ1.Occurrence() || len(entries(es, "degrade", "", true)) != 1 {
		t.Fatalf("want one failover and one degrade, by the first occurrence; audit:%s", describeAudit(es))
	}
	if !strings.Contains(refused.Detail, "PN1") && !strings.Contains(refused.Detail, "sales") {
		t.Errorf("refusal does not name the target: %q", refused.Detail)
	}
	if ans := pick(t, e.base, "sales"); ans.PhoneNumberID != "PN3" {
		t.Fatalf("pick after the first failover: %+v, want PN3", ans)
	}
	if a := e.automation(); a.UsedLastHour != 1 {
		t.Errorf("automation used_last_hour %d, want 1 (the refused occurrence uses no budget)", a.UsedLastHour)
	}

	// Operators are not held by the automation's cooldown.
	e.mustOp("numbers/PN1/resume", map[string]string{"reason": "carrier says fixed"})
	e.mustOp("routes/sales/switch", map[string]string{"to": "PN1", "reason": "back to the primary"})
	if ans := pick(t, e.base, "sales"); ans.PhoneNumberID != "PN1" {
		t.Fatalf("pick after the operator's switch back: %+v, want PN1", ans)
	}

	eventually(t, 10*time.Second, "the cooldowns end", func() bool { return len(e.automation().Cooldowns) == 0 })
	now = time.Now()
	occ3 := failoverAlert(alert.StateFiring, now, now)
	publishAlerts(t, e.brokers, occ3)
	eventually(t, 20*time.Second, "the third occurrence fails PN1 over again", func() bool {
		return pick(t, e.base, "sales").PhoneNumberID == "PN3"
	})
	es = e.audit()
	failovers = entries(es, "failover", route.OutcomeApplied, true)
	if len(failovers) != 2 || failovers[1].Occurrence != occ3.Occurrence() {
		t.Fatalf("want a second failover by the third occurrence; audit:%s", describeAudit(es))
	}
	if n := len(entries(es, "", route.OutcomeRefused, true)); n != 1 {
		t.Errorf("%d refused automatic commands, want 1; audit:%s", n, describeAudit(es))
	}
}

// TestControlGuardHourlyBudget: with hourly_budget 1, the second automatic
// change of the hour is refused (budget) even on another target, and
// changes nothing.
func TestControlGuardHourlyBudget(t *testing.T) {
	e := startControlEnv(t, routesWith(map[string]string{"hourly_budget": "1"}), "")
	now := time.Now()
	publishAlerts(t, e.brokers, failoverAlert(alert.StateFiring, now.Add(-time.Minute), now))
	eventually(t, 20*time.Second, "the first alert fails PN1 over", func() bool { return pick(t, e.base, "sales").PhoneNumberID == "PN3" })

	second := numberAlert("SupportDown", "PN4", "support", alert.StateFiring, now.Add(-time.Minute), time.Now())
	publishAlerts(t, e.brokers, second)
	e.waitRefused(second.Occurrence(), "budget")

	if ans := pick(t, e.base, "support"); ans.Channel != route.ChannelWhatsApp || ans.PhoneNumberID != "PN4" {
		t.Errorf("pick support after the refused failover: %+v, want whatsapp PN4", ans)
	}
	if n := e.number("PN4"); n.State != route.StateActive {
		t.Errorf("PN4 after the refused failover: %s, want active", n.State)
	}
	es := e.audit()
	if n := len(entries(es, "", route.OutcomeApplied, true)); n != 2 { // degrade PN1, failover sales
		t.Errorf("%d applied automatic changes, want the 2 of the first alert; audit:%s", n, describeAudit(es))
	}
	for _, en := range entries(es, "", "", true) {
		if en.Target == "PN4" || en.UseCase == "support" && en.Outcome != route.OutcomeRefused {
			t.Errorf("support touched by the automation: %+v", en)
		}
	}
	if a := e.automation(); a.UsedLastHour != 1 || a.HourlyBudget != 1 {
		t.Errorf("automation: used %d of %d, want 1 of 1", a.UsedLastHour, a.HourlyBudget)
	}
}

// TestControlGuardOperatorLock: a lock on the use case, then one on the
// number, keeps the automation off (refused, locked) while operators still
// act on what is locked; after the unlock a new occurrence acts.
func TestControlGuardOperatorLock(t *testing.T) {
	e := startControlEnv(t, testRoutes, "")

	res := e.mustOp("routes/sales/lock", map[string]string{"reason": "migrating sales to the new WABA", "for": "1h"})
	if len(res.Changes) != 1 || res.Changes[0].Action != route.OpLock {
		t.Fatalf("lock answer: %+v", res)
	}
	if v := e.view("sales"); v.Lock == nil || v.Lock.By != "ops-alice" {
		t.Fatalf("sales view after the lock: %+v", v.Lock)
	}
	now := time.Now()
	occ1 := failoverAlert(alert.StateFiring, now.Add(-3*time.Minute), now)
	publishAlerts(t, e.brokers, occ1)
	if en := e.waitRefused(occ1.Occurrence(), "locked"); !strings.Contains(en.Detail, "migrating sales") {
		t.Errorf("refusal does not carry the lock's reason: %q", en.Detail)
	}
	if n := e.number("PN1"); n.State != route.StateActive {
		t.Errorf("PN1 under the use case lock: %s, want active", n.State)
	}
	// The operator still acts on the locked use case.
	e.mustOp("routes/sales/switch", map[string]string{"to": "PN2"})
	if ans := pick(t, e.base, "sales"); ans.PhoneNumberID != "PN2" {
		t.Fatalf("pick after the operator's switch under the lock: %+v, want PN2", ans)
	}
	e.mustOp("routes/sales/switch", map[string]string{"to": "PN1"})
	e.mustOp("routes/sales/unlock", nil)

	e.mustOp("numbers/PN1/lock", map[string]string{"reason": "carrier ticket 4711", "for": "1h"})
	occ2 := failoverAlert(alert.StateFiring, now.Add(-2*time.Minute), time.Now())
	publishAlerts(t, e.brokers, occ2)
	if en := e.waitRefused(occ2.Occurrence(), "locked"); !strings.Contains(en.Detail, "number:PN1") {
		t.Errorf("refusal does not name the locked number: %q", en.Detail)
	}
	// The operator still acts on the locked number.
	if res := e.mustOp("numbers/PN1/throttle", map[string]string{"rate": "5/s"}); res.Outcome != route.OutcomeApplied {
		t.Errorf("throttle of the locked number: %+v", res)
	}
	if n := e.number("PN1"); n.RateCap != 5 || n.State != route.StateActive || n.Lock == nil {
		t.Errorf("PN1 after the throttle: %+v", n)
	}
	e.mustOp("numbers/PN1/resume", nil)
	e.mustOp("numbers/PN1/unlock", nil)

	occ3 := failoverAlert(alert.StateFiring, now.Add(-time.Minute), time.Now())
	publishAlerts(t, e.brokers, occ3)
	eventually(t, 20*time.Second, "after the unlock, a new occurrence fails PN1 over", func() bool {
		return pick(t, e.base, "sales").PhoneNumberID == "PN3"
	})
	es := e.audit()
	failovers := entries(es, "failover", route.OutcomeApplied, true)
	if len(failovers) != 1 || failovers[0].Occurrence != occ3.Occurrence() {
		t.Fatalf("want one failover, by the third occurrence; audit:%s", describeAudit(es))
	}
	if n := len(entries(es, "", route.OutcomeRefused, true)); n != 2 {
		t.Errorf("%d refused automatic commands, want 2; audit:%s", n, describeAudit(es))
	}
}

// TestControlGuardDryRun: in shadow mode the automation records what it
// would do (audit: dry_run, records with dry_run set, also on the actions
// topic) and does nothing: pick unchanged, no webhook, no budget used.
func TestControlGuardDryRun(t *testing.T) {
	snd := newSender(t)
	e := startControlEnv(t, routesWith(map[string]string{"dry_run": "true"}), snd.srv.URL)
	now := time.Now()
	occ := failoverAlert(alert.StateFiring, now.Add(-time.Minute), now)
	publishAlerts(t, e.brokers, occ)

	var shadow []action.Record
	eventually(t, 20*time.Second, "the dry-run records on the actions topic", func() bool {
		shadow = shadow[:0]
		for _, m := range readTopic(t, e.brokers, e.cfg.Kafka.ActionsTopic) {
			var r action.Record
			if json.Unmarshal(m.Value, &r) == nil && r.ActorKind == action.ActorRule {
				shadow = append(shadow, r)
			}
		}
		return len(shadow) >= 2
	})
	kinds := map[string]bool{}
	for _, r := range shadow {
		if !r.DryRun || r.Occurrence != occ.Occurrence() {
			t.Errorf("actions topic record not marked dry_run: %+v", r)
		}
		kinds[r.Action] = true
	}
	if !kinds["degrade"] || !kinds["failover"] || len(shadow) != 2 {
		t.Errorf("actions topic: %+v, want the degrade and the failover, dry-run", shadow)
	}
	es := e.audit()
	dry := entries(es, "", route.OutcomeDryRun, true)
	if len(dry) != 2 || len(entries(es, "", route.OutcomeApplied, true)) != 0 {
		t.Fatalf("audit: want 2 dry_run entries and nothing applied:%s", describeAudit(es))
	}
	for _, en := range dry {
		if !en.DryRun {
			t.Errorf("dry_run entry whose record has dry_run false: %+v", en)
		}
		if en.Action == "failover" && !strings.Contains(string(en.After), `"preferred":"PN3"`) {
			t.Errorf("the shadow failover does not say where it would have gone: after=%s", en.After)
		}
	}
	if ans := pick(t, e.base, "sales"); ans.PhoneNumberID != "PN1" || ans.Channel != route.ChannelWhatsApp {
		t.Errorf("pick in shadow mode: %+v, want whatsapp PN1", ans)
	}
	if n := e.number("PN1"); n.State != route.StateActive {
		t.Errorf("PN1 in shadow mode: %s, want active", n.State)
	}
	if a := e.automation(); !a.DryRun || a.UsedLastHour != 0 || len(a.Occurrences) != 0 || len(a.Cooldowns) != 0 {
		t.Errorf("automation in shadow mode: %+v, want dry_run, nothing used, no occurrences or cooldowns", a)
	}

	// An operator's change goes out by webhook; the shadow change never did.
	e.mustOp("routes/sales/fallback", map[string]string{"channel": "sms", "reason": "check the webhook path"})
	eventually(t, 10*time.Second, "the sender got the operator's change", func() bool { return len(snd.changes()) > 0 })
	eventually(t, 10*time.Second, "nothing queued for the sender", func() bool {
		var subs struct{ Subscribers []struct{ Queued int } }
		callAPI(t, "GET", e.base+"/api/v1/subscribers", testTokenAdmin, nil, &subs)
		return len(subs.Subscribers) == 1 && subs.Subscribers[0].Queued == 0
	})
	for _, c := range snd.changes() {
		if c.ActorKind == action.ActorRule || c.Alert != nil {
			t.Errorf("the sender got an automatic change in shadow mode: %+v", c)
		}
	}
	if got := snd.changes(); len(got) != 1 || got[0].Action != route.OpFallback {
		t.Errorf("sender got %+v, want only the operator's fallback", got)
	}
}

// TestControlGuardIdempotency: the same firing record read twice (written
// twice, then re-read whole by a restarted control under a new consumer
// group) fails the number over once; the copies are duplicates.
func TestControlGuardIdempotency(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	brokers := ing.Brokers()
	cfg := controlConfig(t, brokers, testRoutes, "")
	c1, base, stop1 := startControlOnce(t, cfg)
	now := time.Now()
	occ := failoverAlert(alert.StateFiring, now.Add(-time.Minute), now)
	publishAlerts(t, brokers, occ)
	publishAlerts(t, brokers, occ)

	eventually(t, 20*time.Second, "both copies read", func() bool {
		return metricValue(t, c1.Registry(), "vigia_control_alert_records_total", "outcome", "proposed") == 2 &&
			metricValue(t, c1.Registry(), "vigia_control_commands_total", "outcome", "duplicate") == 1
	})
	checkOnce := func(base string) {
		t.Helper()
		es := auditOf(t, base, nil)
		if len(entries(es, "failover", route.OutcomeApplied, true)) != 1 || len(entries(es, "degrade", route.OutcomeApplied, true)) != 1 ||
			len(entries(es, "", "", true)) != 2 {
			t.Fatalf("want exactly one degrade and one failover, nothing else automatic:%s", describeAudit(es))
		}
		if ans := pick(t, base, "sales"); ans.PhoneNumberID != "PN3" {
			t.Fatalf("pick: %+v, want PN3", ans)
		}
	}
	checkOnce(base)
	seq := pick(t, base, "sales").Seq
	stop1()

	// A restart that reads the alerts topic again from the start.
	cfg.Control.GroupID = "test-control-restarted"
	c2, base2, _ := startControlOnce(t, cfg)
	eventually(t, 20*time.Second, "the restarted control re-read both copies", func() bool {
		return metricValue(t, c2.Registry(), "vigia_control_alert_records_total", "outcome", "proposed") == 2
	})
	// The rebuild counts the commands it applies too: the second copy's
	// duplicate is one of them.
	eventually(t, 10*time.Second, "both applied as duplicates", func() bool {
		return metricValue(t, c2.Registry(), "vigia_control_commands_total", "outcome", "duplicate") == 1+2
	})
	checkOnce(base2)
	if s := pick(t, base2, "sales").Seq; s != seq+2 {
		t.Errorf("seq after the restart %d, want %d (two duplicate commands)", s, seq+2)
	}
	n := 0
	for _, m := range readTopic(t, brokers, cfg.Kafka.ActionsTopic) {
		var r action.Record
		if json.Unmarshal(m.Value, &r) == nil && r.Action == "failover" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d failover records on the actions topic, want 1", n)
	}
}

// startControlOnce is startControl with a stop function that may also be
// called before the test ends.
func startControlOnce(t *testing.T, cfg config.Config) (*Control, string, func()) {
	t.Helper()
	c, err := NewControl(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Errorf("stop control: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	base := "http://" + c.Addr()
	waitReady(t, base, 30*time.Second)
	return c, base, stop
}

// unhealthyRoutes: use cases whose reserve is paused, degraded or blocked
// (and one with a second primary besides its paused reserve), and enough
// healthy numbers that the platform-wide guard stays out of the way.
const unhealthyRoutes = `
automation:
  cooldown: 1s
  platform_fraction: 0.9
use_cases:
  - name: paused
    strategy: ordered
    channels: [whatsapp, sms]
    numbers:
      - {id: A1, waba: W1, role: primary}
      - {id: A2, waba: W1, role: reserve}
  - name: degraded
    strategy: ordered
    channels: [whatsapp, sms]
    numbers:
      - {id: B1, waba: W1, role: primary}
      - {id: B2, waba: W1, role: reserve}
  - name: blocked
    strategy: ordered
    channels: [whatsapp, sms]
    numbers:
      - {id: C1, waba: W1, role: primary}
      - {id: C2, waba: W1, role: reserve}
  - name: rotation
    strategy: ordered
    channels: [whatsapp, sms]
    numbers:
      - {id: E1, waba: W2, role: primary}
      - {id: E2, waba: W2, role: primary}
      - {id: E3, waba: W2, role: reserve}
  - name: healthy
    channels: [whatsapp, email]
    numbers:
      - {id: D1, waba: W3}
      - {id: D2, waba: W3}
      - {id: D3, waba: W3}
      - {id: D4, waba: W3}
`

// TestControlFailoverNeverOntoUnhealthyNumber: a failover never moves
// traffic onto a paused, degraded or blocked number: with the reserve so
// and no other number, the use case falls back to its next channel (pick
// answers sms); with another active primary, it goes there.
func TestControlFailoverNeverOntoUnhealthyNumber(t *testing.T) {
	e := startControlEnv(t, unhealthyRoutes, "")
	e.mustOp("numbers/A2/pause", map[string]string{"reason": "operator: template review"})
	e.mustOp("numbers/B2/mark", map[string]string{"state": route.StateDegraded})
	e.mustOp("numbers/C2/mark", map[string]string{"state": route.StateBlocked})
	e.mustOp("numbers/E3/pause", nil)

	now := time.Now()
	publishAlerts(t, e.brokers,
		numberAlert("NumberDown", "A1", "paused", alert.StateFiring, now.Add(-time.Minute), now),
		numberAlert("NumberDown", "B1", "degraded", alert.StateFiring, now.Add(-time.Minute), now),
		numberAlert("NumberDown", "C1", "blocked", alert.StateFiring, now.Add(-time.Minute), now),
		numberAlert("NumberDown", "E1", "rotation", alert.StateFiring, now.Add(-time.Minute), now))
	eventually(t, 20*time.Second, "the four failovers", func() bool {
		return len(entries(e.audit(), "degrade", route.OutcomeApplied, true)) == 4
	})
	for _, uc := range []string{"paused", "degraded", "blocked"} {
		if ans := pick(t, e.base, uc); ans.Channel != route.ChannelSMS || ans.PhoneNumberID != "" {
			t.Errorf("pick %s: %+v, want sms", uc, ans)
		}
		if v := e.view(uc); v.Preferred != "" {
			t.Errorf("use case %s preferred %q after the failover, want none", uc, v.Preferred)
		}
	}
	if ans := pick(t, e.base, "rotation"); ans.Channel != route.ChannelWhatsApp || ans.PhoneNumberID != "E2" {
		t.Errorf("pick rotation: %+v, want whatsapp E2 (not the paused reserve E3)", ans)
	}
	for id, want := range map[string]string{"A2": route.StatePaused, "B2": route.StateDegraded, "C2": route.StateBlocked, "E3": route.StatePaused} {
		if n := e.number(id); n.State != want {
			t.Errorf("%s after the failovers: %s, want %s (untouched)", id, n.State, want)
		}
	}
	es := e.audit()
	if n := len(entries(es, "fallback_channel", route.OutcomeApplied, true)); n != 3 {
		t.Errorf("%d channel fallbacks, want 3:%s", n, describeAudit(es))
	}
	if fs := entries(es, "failover", route.OutcomeApplied, true); len(fs) != 1 || fs[0].UseCase != "rotation" {
		t.Errorf("want one failover onto a number, in rotation:%s", describeAudit(es))
	}
}

// TestControlPlatformDegradation: when the failover would leave at least
// automation.platform_fraction of the numbers unhealthy, the use case
// falls back to its next channel instead of moving to its (active) reserve.
func TestControlPlatformDegradation(t *testing.T) {
	e := startControlEnv(t, routesWith(map[string]string{"platform_fraction": "0.5"}), "")
	// 1 of 4 numbers unhealthy: below the fraction. The failover of PN1
	// makes it 2 of 4: at the fraction.
	e.mustOp("numbers/PN2/mark", map[string]string{"state": route.StateDegraded, "reason": "carrier incident"})
	if n := e.number("PN3"); n.State != route.StateActive {
		t.Fatalf("reserve PN3: %s, want active", n.State)
	}
	now := time.Now()
	publishAlerts(t, e.brokers, failoverAlert(alert.StateFiring, now.Add(-time.Minute), now))
	eventually(t, 20*time.Second, "pick answers sms", func() bool { return pick(t, e.base, "sales").Channel == route.ChannelSMS })
	if v := e.view("sales"); v.Preferred != "" {
		t.Errorf("sales preferred %q, want no move onto a number", v.Preferred)
	}
	if n := e.number("PN1"); n.State != route.StateDegraded {
		t.Errorf("PN1: %s, want degraded", n.State)
	}
	es := e.audit()
	if len(entries(es, "fallback_channel", route.OutcomeApplied, true)) != 1 || len(entries(es, "failover", "", true)) != 0 {
		t.Errorf("want a channel fallback and no failover onto a number:%s", describeAudit(es))
	}
	if ans := pick(t, e.base, "support"); ans.Channel != route.ChannelWhatsApp {
		t.Errorf("support: %+v, want untouched (whatsapp)", ans)
	}
}

// TestControlRestoreAfterHold: after the alert resolves, the route stays
// failed over for automation.restore_after, then is restored.
func TestControlRestoreAfterHold(t *testing.T) {
	e := startControlEnv(t, testRoutes, "")
	active := time.Now().Add(-time.Minute)
	occ := failoverAlert(alert.StateFiring, active, time.Now())
	publishAlerts(t, e.brokers, occ)
	eventually(t, 20*time.Second, "failover to PN3", func() bool { return pick(t, e.base, "sales").PhoneNumberID == "PN3" })

	publishAlerts(t, e.brokers, failoverAlert(alert.StateResolved, active, time.Now()))
	var due time.Time
	eventually(t, 20*time.Second, "the restore is scheduled", func() bool {
		o := e.automation().Occurrences[occ.Occurrence()]
		if o != nil && o.RestoreDue != nil {
			due = *o.RestoreDue
			return true
		}
		return false
	})
	if hold := due.Sub(*e.automation().Occurrences[occ.Occurrence()].ResolvedAt); hold != 1500*time.Millisecond {
		t.Errorf("restore due %s after the resolution, want 1.5s", hold)
	}
	eventually(t, 20*time.Second, "pick answers PN1 again", func() bool {
		ans := pick(t, e.base, "sales")
		if ans.PhoneNumberID == "PN1" && time.Now().Before(due) {
			t.Fatalf("restored at %s, before the end of the hold at %s", time.Now().Format(time.StampMilli), due.Format(time.StampMilli))
		}
		return ans.PhoneNumberID == "PN1"
	})
	es := e.audit()
	restores := entries(es, route.OpRestore, route.OutcomeApplied, true)
	if len(restores) != 2 { // PN1 active again, sales' preference cleared
		t.Fatalf("want 2 restore changes:%s", describeAudit(es))
	}
	for _, r := range restores {
		if r.Time.Before(due) || r.Occurrence != occ.Occurrence() {
			t.Errorf("restore %+v: at %s, due %s, occurrence %s", r.Record, r.Time, due, occ.Occurrence())
		}
	}
	if n := e.number("PN1"); n.State != route.StateActive {
		t.Errorf("PN1 after the restore: %s", n.State)
	}
	if a := e.automation(); len(a.Occurrences) != 0 {
		t.Errorf("occurrences left after the restore: %+v", a.Occurrences)
	}
}

// TestControlRestoreInheritedOnRefire: the alert fires again while the
// restore of its previous occurrence is on hold: that restore is
// cancelled, and the new occurrence inherits it (restored only after the
// new one resolves and its own hold passes).
func TestControlRestoreInheritedOnRefire(t *testing.T) {
	e := startControlEnv(t, routesWith(map[string]string{"restore_after": "2s"}), "")
	active1 := time.Now().Add(-time.Minute)
	occ1 := failoverAlert(alert.StateFiring, active1, time.Now())
	publishAlerts(t, e.brokers, occ1)
	eventually(t, 20*time.Second, "failover to PN3", func() bool { return pick(t, e.base, "sales").PhoneNumberID == "PN3" })

	publishAlerts(t, e.brokers, failoverAlert(alert.StateResolved, active1, time.Now()))
	var due1 time.Time
	eventually(t, 20*time.Second, "the restore of the first occurrence is scheduled", func() bool {
		o := e.automation().Occurrences[occ1.Occurrence()]
		if o != nil && o.RestoreDue != nil {
			due1 = *o.RestoreDue
			return true
		}
		return false
	})
	active2 := time.Now()
	occ2 := failoverAlert(alert.StateFiring, active2, active2)
	publishAlerts(t, e.brokers, occ2)
	eventually(t, 10*time.Second, "the second occurrence inherits the restore", func() bool {
		occs := e.automation().Occurrences
		o2 := occs[occ2.Occurrence()]
		return occs[occ1.Occurrence()] == nil && o2 != nil && len(o2.Changes) == 2 && o2.RestoreDue == nil
	})
	if time.Now().After(due1) {
		t.Fatalf("the second occurrence was handled after the first one's hold ended (%s); the test needs a longer restore_after", due1)
	}

	// Past the first hold, and a restore tick (1 s) more: nothing restored.
	time.Sleep(time.Until(due1) + 1500*time.Millisecond)
	if ans := pick(t, e.base, "sales"); ans.PhoneNumberID != "PN3" {
		t.Fatalf("pick after the cancelled restore's due time: %+v, want PN3 still", ans)
	}
	if es := e.audit(); len(entries(es, route.OpRestore, "", true)) != 0 {
		t.Fatalf("restored although the alert fired again:%s", describeAudit(es))
	}

	publishAlerts(t, e.brokers, failoverAlert(alert.StateResolved, active2, time.Now()))
	var due2 time.Time
	eventually(t, 20*time.Second, "the restore of the second occurrence is scheduled", func() bool {
		o := e.automation().Occurrences[occ2.Occurrence()]
		if o != nil && o.RestoreDue != nil {
			due2 = *o.RestoreDue
			return true
		}
		return false
	})
	eventually(t, 20*time.Second, "pick answers PN1 again", func() bool { return pick(t, e.base, "sales").PhoneNumberID == "PN1" })
	es := e.audit()
	restores := entries(es, route.OpRestore, route.OutcomeApplied, true)
	if len(restores) != 2 {
		t.Fatalf("want 2 restore changes:%s", describeAudit(es))
	}
	for _, r := range restores {
		if r.Time.Before(due2) || r.Occurrence != occ2.Occurrence() {
			t.Errorf("restore %s/%s at %s by %s; want after %s by the second occurrence %s", r.Action, r.Target, r.Time, r.Occurrence, due2, occ2.Occurrence())
		}
	}
	if n := e.number("PN1"); n.State != route.StateActive {
		t.Errorf("PN1 after the restore: %s", n.State)
	}
}

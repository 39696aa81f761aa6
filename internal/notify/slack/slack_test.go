package slack_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"vigia/internal/alert"
	"vigia/internal/notify"
	"vigia/internal/notify/slack"
	"vigia/internal/notify/slack/slacktest"
	"vigia/internal/quality"
)

var t0 = time.Date(2025, 3, 10, 14, 0, 0, 0, time.UTC)

// firingAlert is a delivery-rate alert on one phone number, firing 5
// minutes after it became active, with a baseline and a failover action.
func firingAlert(labels map[string]string) *alert.Alert {
	ls := map[string]string{alert.LabelAlertName: "DeliveryRateDrop", "phone_number": "5511999990000",
		"waba": "1029384756", "severity": "warning"}
	maps.Copy(ls, labels)
	fired := t0.Add(5 * time.Minute)
	return &alert.Alert{
		SchemaVersion: alert.SchemaVersion,
		Fingerprint:   alert.Fingerprint(ls),
		Name:          "DeliveryRateDrop",
		Group:         "delivery",
		Rule:          "rules/delivery.yaml:12",
		State:         alert.StateFiring,
		Labels:        ls,
		Annotations: map[string]string{"summary": "Delivery rate of 5511999990000 fell to 62 %",
			"description": "Most failures are 131049 (ecosystem engagement)."},
		Values: quality.Values{Attempts: 1200, DeliveryRate: 0.62, FailureRate: 0.3,
			FailuresByCode: map[int64]int64{131049: 300, 131026: 40, 130472: 10, 1: 1}, QualityEvent: "FLAGGED"},
		Baseline: &quality.Values{Attempts: 1100, DeliveryRate: 0.951, FailureRate: 0.02,
			FailuresByCode: map[int64]int64{131049: 5}},
		ActiveAt: t0,
		FiredAt:  &fired,
		EvalTime: fired,
		Actions:  []alert.Action{{Type: "failover", Params: map[string]string{"phone_number": "5511999990000"}}},
	}
}

// resolvedOf returns the resolve record of a's occurrence, 42 minutes
// after it fired, with the values that made it clear.
func resolvedOf(a *alert.Alert) *alert.Alert {
	r := *a
	at := a.FiredAt.Add(42 * time.Minute)
	r.State, r.ResolvedAt, r.EvalTime = alert.StateResolved, &at, at
	r.Values = quality.Values{Attempts: 900, DeliveryRate: 0.96, FailureRate: 0.01}
	return &r
}

func prevOf(firing *notify.Notification) *notify.Entry {
	return &notify.Entry{Receiver: "slack", Fingerprint: firing.Alert.Fingerprint, Occurrence: firing.Alert.Occurrence(),
		State: alert.StateFiring, SentAt: t0, Receipt: firing.Receipt}
}

func alertURL(a *alert.Alert) string {
	return "https://vigia.example.com/api/v1/alerts/" + a.Fingerprint
}

// botOptions are the options of a bot receiver on srv: critical alerts
// and OTP alerts have their own channels.
func botOptions(srv *slacktest.Server) slack.Options {
	return slack.Options{
		Name: "slack-test", Token: slacktest.Token, APIURL: srv.APIURL(), Channel: "#vigia-alerts",
		Routes: []slack.Route{
			{Match: map[string]string{"severity": "critical"}, Channel: "#vigia-critical"},
			{Match: map[string]string{"use_case": "otp"}, Channel: "otp-alerts"},
		},
		RunbookBaseURL: "https://runbooks.example.com/vigia/",
		AlertURL:       alertURL,
	}
}

func newNotifier(t *testing.T, o slack.Options) *slack.Notifier {
	t.Helper()
	n, err := slack.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustNotify(t *testing.T, n *slack.Notifier, nt *notify.Notification) {
	t.Helper()
	if retry, err := n.Notify(context.Background(), nt); err != nil {
		t.Fatalf("Notify: %v (retry %v)", err, retry)
	}
}

// blocks returns m's blocks as generic JSON objects.
func blocks(t *testing.T, m slacktest.Message) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range m.Decoded {
		o, ok := b.(map[string]any)
		if !ok {
			t.Fatalf("block is %T, not an object", b)
		}
		out = append(out, o)
	}
	return out
}

func header(t *testing.T, m slacktest.Message) string {
	t.Helper()
	bs := blocks(t, m)
	if len(bs) == 0 || bs[0]["type"] != "header" {
		t.Fatalf("first block is not a header: %s", m.Blocks)
	}
	return bs[0]["text"].(map[string]any)["text"].(string)
}

// section returns the text of the first section whose text starts with
// prefix, "" if none.
func section(t *testing.T, m slacktest.Message, prefix string) string {
	t.Helper()
	for _, b := range blocks(t, m) {
		if b["type"] != "section" {
			continue
		}
		if txt, ok := b["text"].(map[string]any); ok && strings.HasPrefix(txt["text"].(string), prefix) {
			return txt["text"].(string)
		}
	}
	return ""
}

func TestFiringPostsToRoutedChannel(t *testing.T) {
	cases := []struct {
		name    string
		labels  map[string]string
		channel string
	}{
		{"by severity", map[string]string{"severity": "critical"}, "vigia-critical"},
		{"by use case", map[string]string{"use_case": "otp"}, "otp-alerts"},
		{"first route wins", map[string]string{"severity": "critical", "use_case": "otp"}, "vigia-critical"},
		{"default channel", map[string]string{"use_case": "marketing"}, "vigia-alerts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			ids := map[string]string{}
			for _, ch := range []string{"vigia-alerts", "vigia-critical", "otp-alerts"} {
				ids[ch] = srv.AddChannel(ch)
			}
			n := newNotifier(t, botOptions(srv))
			a := firingAlert(c.labels)
			nt := &notify.Notification{Receiver: "slack-test", Alert: a}
			mustNotify(t, n, nt)

			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1: %+v", len(msgs), msgs)
			}
			m := msgs[0]
			if m.Channel != ids[c.channel] {
				t.Errorf("posted to %s, want %s (%s)", m.Channel, ids[c.channel], c.channel)
			}
			if want := (notify.Receipt{Channel: m.Channel, MessageTS: m.TS}); nt.Receipt != want || m.TS == "" {
				t.Errorf("receipt %+v, want %+v", nt.Receipt, want)
			}
			if h := header(t, m); h != "🔥 FIRING: DeliveryRateDrop" {
				t.Errorf("header %q", h)
			}
			if !strings.Contains(m.Text, "FIRING: DeliveryRateDrop — Delivery rate of 5511999990000 fell to 62 %") {
				t.Errorf("fallback text %q", m.Text)
			}
			text := m.BlockText()
			for _, want := range []string{
				"Delivery rate of 5511999990000 fell to 62 %\nMost failures are 131049",
				"*phone_number*\n5511999990000",
				"*waba*\n1029384756",
				"*severity*\n" + a.Labels["severity"],
				"<https://runbooks.example.com/vigia/DeliveryRateDrop|Runbook>",
				"<https://vigia.example.com/api/v1/alerts/" + a.Fingerprint + "|Alert>",
				"Active since 2025-03-10T14:00:00Z · fired 2025-03-10T14:05:00Z",
				"Rule `rules/delivery.yaml:12` · group `delivery`",
				"Fingerprint `" + a.Fingerprint + "`",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("message lacks %q:\n%s", want, text)
				}
			}
			values := section(t, m, "*Values*")
			for _, want := range []string{
				"• attempts 1200 (baseline 1100)",
				"• delivery_rate 62.0 % (baseline 95.1 %)",
				"• failure_rate 30.0 % (baseline 2.0 %)",
				"• failures 131049: 300 (baseline 5)",
				"• failures 131026: 40 (baseline 0)",
				"• failures 130472: 10 (baseline 0)",
				"• quality_event FLAGGED (baseline –)",
			} {
				if !strings.Contains(values, want) {
					t.Errorf("values lack %q:\n%s", want, values)
				}
			}
			for _, unwanted := range []string{"failures 1:", "read_rate", "opt_outs", "latency_p90", "numbers_degraded"} {
				if strings.Contains(values, unwanted) {
					t.Errorf("values show %q, zero or beyond the top 3:\n%s", unwanted, values)
				}
			}
			if got := section(t, m, "*Actions*"); got != "*Actions*\n• failover phone_number=5511999990000" {
				t.Errorf("actions section %q", got)
			}
		})
	}
}

func TestValuesSection(t *testing.T) {
	cases := []struct {
		name     string
		values   quality.Values
		baseline *quality.Values
		want     []string
		unwanted []string
	}{
		{"no baseline", quality.Values{Attempts: 50, DeliveryRate: 0.5}, nil,
			[]string{"• attempts 50\n", "• delivery_rate 50.0 %"}, []string{"baseline"}},
		{"small rates and latency", quality.Values{OptOuts: 7, OptOutRate: 0.0035, LatencyP90: 12.34, ReadRate: 0.4},
			&quality.Values{OptOutRate: 0.0004, LatencyP90: 95},
			[]string{"• opt_outs 7 (baseline 0)", "• opt_out_rate 0.35 % (baseline 0.040 %)",
				"• latency_p90 12.3s (baseline 1m35s)", "• read_rate 40.0 % (baseline 0 %)"}, nil},
		{"numbers and states", quality.Values{NumbersActive: 12, NumbersDegraded: 5, MessagingTier: "TIER_1K",
			TemplateStatus: "PAUSED", AccountBanState: "SCHEDULE_FOR_DISABLE"},
			&quality.Values{NumbersActive: 11, MessagingTier: "TIER_1K", TemplateStatus: "APPROVED"},
			[]string{"• numbers_degraded 5/12 active (baseline 0/11)", "• messaging_tier TIER_1K\n",
				"• template_status PAUSED (baseline APPROVED)", "• account_ban_state SCHEDULE_FOR_DISABLE (baseline –)"},
			[]string{"quality_event", "account_event", "attempts"}},
		{"missing data", quality.Values{}, nil, []string{"_no data in the window_"}, []string{"attempts"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			srv.AddChannel("vigia-alerts")
			n := newNotifier(t, botOptions(srv))
			a := firingAlert(nil)
			a.Values, a.Baseline, a.Actions = c.values, c.baseline, nil
			mustNotify(t, n, &notify.Notification{Alert: a})
			m := srv.Messages()[0]
			values := section(t, m, "*Values*") + "\n"
			for _, w := range c.want {
				if !strings.Contains(values, w) {
					t.Errorf("values lack %q:\n%s", w, values)
				}
			}
			for _, u := range c.unwanted {
				if strings.Contains(values, u) {
					t.Errorf("values show %q:\n%s", u, values)
				}
			}
			if section(t, m, "*Actions*") != "" {
				t.Error("an Actions section without actions")
			}
		})
	}
}

func TestRunbookLink(t *testing.T) {
	cases := []struct {
		name       string
		annotation string
		base       string
		want       string // "" for no runbook link
	}{
		{"annotation wins", "https://wiki.example.com/rb/delivery", "https://runbooks.example.com", "<https://wiki.example.com/rb/delivery|Runbook>"},
		{"base URL and alertname", "", "https://runbooks.example.com/", "<https://runbooks.example.com/DeliveryRateDrop|Runbook>"},
		{"none", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			srv.AddChannel("vigia-alerts")
			o := botOptions(srv)
			o.RunbookBaseURL, o.AlertURL = c.base, nil
			n := newNotifier(t, o)
			a := firingAlert(nil)
			if c.annotation != "" {
				a.Annotations["runbook_url"] = c.annotation
			}
			mustNotify(t, n, &notify.Notification{Alert: a})
			text := srv.Messages()[0].BlockText()
			if c.want == "" {
				if strings.Contains(text, "Runbook") {
					t.Errorf("runbook link without a runbook:\n%s", text)
				}
			} else if !strings.Contains(text, c.want) {
				t.Errorf("message lacks %q:\n%s", c.want, text)
			}
			if strings.Contains(text, "|Alert>") {
				t.Error("alert link without AlertURL")
			}
		})
	}
}

func TestResolveUpdatesFiringMessage(t *testing.T) {
	cases := []struct {
		name string
		prev func(p *notify.Entry) // shapes the log entry
	}{
		{"firing entry", func(p *notify.Entry) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			id := srv.AddChannel("vigia-critical")
			srv.AddChannel("vigia-alerts")
			n := newNotifier(t, botOptions(srv))
			a := firingAlert(map[string]string{"severity": "critical"})
			fire := &notify.Notification{Alert: a}
			mustNotify(t, n, fire)
			firingTS := fire.Receipt.MessageTS

			prev := prevOf(fire)
			c.prev(prev)
			res := &notify.Notification{Alert: resolvedOf(a), Prev: prev}
			mustNotify(t, n, res)

			if res.Receipt != fire.Receipt {
				t.Errorf("resolve receipt %+v, want the firing message's %+v", res.Receipt, fire.Receipt)
			}
			msgs := srv.Messages()
			if len(msgs) != 2 {
				t.Fatalf("%d messages, want the updated one and a thread reply: %+v", len(msgs), msgs)
			}
			orig, reply := msgs[0], msgs[1]
			if orig.TS != firingTS || orig.Channel != id || orig.Updates != 1 {
				t.Errorf("firing message %s/%s updated %d times, want %s/%s once", orig.Channel, orig.TS, orig.Updates, id, firingTS)
			}
			if h := header(t, orig); h != "✅ RESOLVED: DeliveryRateDrop" {
				t.Errorf("updated header %q", h)
			}
			values := section(t, orig, "*Values at resolve*")
			if !strings.Contains(values, "• delivery_rate 96.0 % (baseline 95.1 %)") || strings.Contains(values, "131049") {
				t.Errorf("updated message shows firing values, not resolve values:\n%s", values)
			}
			if !strings.Contains(orig.BlockText(), "resolved 2025-03-10T14:47:00Z after 42m00s") {
				t.Errorf("updated message lacks the resolve time and duration:\n%s", orig.BlockText())
			}
			if reply.ThreadTS != firingTS || reply.Channel != id {
				t.Errorf("reply in %s thread %q, want %s thread %s", reply.Channel, reply.ThreadTS, id, firingTS)
			}
			for _, want := range []string{"Resolved at 2025-03-10T14:47:00Z after 42m00s firing", "• delivery_rate 96.0 % (baseline 95.1 %)"} {
				if !strings.Contains(reply.Text, want) {
					t.Errorf("reply lacks %q: %q", want, reply.Text)
				}
			}
			if calls := srv.Calls(); len(calls) != 3 || calls[1].Method != "chat.update" || calls[2].Method != "chat.postMessage" {
				t.Errorf("calls %+v, want postMessage, update, postMessage", calls)
			}
		})
	}
}

func TestResolveWithoutFiringMessagePostsNew(t *testing.T) {
	cases := []struct {
		name string
		prev func(fire *notify.Notification) *notify.Entry
	}{
		{"no entry", func(*notify.Notification) *notify.Entry { return nil }},
		{"entry of an earlier occurrence", func(fire *notify.Notification) *notify.Entry {
			p := prevOf(fire)
			p.Occurrence = fire.Alert.Fingerprint + "-1"
			return p
		}},
		{"entry without receipt", func(fire *notify.Notification) *notify.Entry {
			p := prevOf(fire)
			p.Receipt = notify.Receipt{}
			return p
		}},
		{"firing message deleted", func(fire *notify.Notification) *notify.Entry {
			p := prevOf(fire)
			p.Receipt.MessageTS = "1600000000.000100"
			return p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			id := srv.AddChannel("vigia-alerts")
			n := newNotifier(t, botOptions(srv))
			a := firingAlert(nil)
			// The firing message exists in Slack but, for the cases
			// here, the notifier must not (or cannot) touch it.
			fire := &notify.Notification{Alert: a}
			mustNotify(t, n, fire)

			res := &notify.Notification{Alert: resolvedOf(a), Prev: c.prev(fire)}
			mustNotify(t, n, res)
			msgs := srv.Messages()
			if len(msgs) != 2 {
				t.Fatalf("%d messages, want 2", len(msgs))
			}
			if msgs[0].Updates != 0 || header(t, msgs[0]) != "🔥 FIRING: DeliveryRateDrop" {
				t.Errorf("firing message changed: %d updates, header %q", msgs[0].Updates, header(t, msgs[0]))
			}
			m := msgs[1]
			if h := header(t, m); h != "✅ RESOLVED: DeliveryRateDrop" || m.ThreadTS != "" || m.Channel != id {
				t.Errorf("new message: header %q thread %q channel %s", h, m.ThreadTS, m.Channel)
			}
			if want := (notify.Receipt{Channel: id, MessageTS: m.TS}); res.Receipt != want {
				t.Errorf("receipt %+v, want the new message's %+v", res.Receipt, want)
			}
		})
	}
}

func TestNotPosted(t *testing.T) {
	pending := firingAlert(nil)
	pending.State, pending.FiredAt = alert.StatePending, nil
	inactive := firingAlert(nil)
	inactive.State, inactive.FiredAt = alert.StateInactive, nil
	cases := []struct {
		name string
		nt   *notify.Notification
	}{
		{"pending", &notify.Notification{Alert: pending}},
		{"inactive", &notify.Notification{Alert: inactive}},
		{"resend", &notify.Notification{Alert: firingAlert(nil), Resend: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			srv.AddChannel("vigia-alerts")
			for _, o := range []slack.Options{botOptions(srv), {Name: "hook", WebhookURL: srv.WebhookURL()}} {
				n := newNotifier(t, o)
				retry, err := n.Notify(context.Background(), c.nt)
				if err != nil || retry {
					t.Errorf("%s: Notify = %v, %v; want false, nil", o.Name, retry, err)
				}
			}
			if calls := srv.Calls(); len(calls) != 0 {
				t.Errorf("calls %+v, want none", calls)
			}
			if c.nt.Receipt != (notify.Receipt{}) {
				t.Errorf("receipt %+v", c.nt.Receipt)
			}
		})
	}
}

func TestRateLimited(t *testing.T) {
	srv := slacktest.New(t)
	srv.AddChannel("vigia-alerts")
	n := newNotifier(t, botOptions(srv))
	srv.FailNext(1, http.StatusTooManyRequests, 2*time.Second)

	nt := &notify.Notification{Alert: firingAlert(nil)}
	retry, err := n.Notify(context.Background(), nt)
	if !retry || notify.ReasonOf(err) != notify.ReasonRateLimited {
		t.Fatalf("Notify = %v, %v; want retry, rate_limited", retry, err)
	}
	var ne *notify.Error
	if !errors.As(err, &ne) || ne.RetryAfter != 2*time.Second {
		t.Errorf("error %#v, want a *notify.Error with RetryAfter 2s", err)
	}
	if len(srv.Messages()) != 0 || nt.Receipt != (notify.Receipt{}) {
		t.Fatal("a rate-limited call posted something")
	}

	mustNotify(t, n, nt)
	if msgs := srv.Messages(); len(msgs) != 1 || nt.Receipt.MessageTS != msgs[0].TS {
		t.Errorf("after the rate limit: %d messages, receipt %+v", len(msgs), nt.Receipt)
	}
}

func TestFailures(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(srv *slacktest.Server, o *slack.Options)
		retry  bool
		reason string
		code   string // the Slack error code reachable through the error, if any
	}{
		{"unknown channel", func(srv *slacktest.Server, o *slack.Options) { o.Channel = "#gone" },
			false, notify.ReasonAPIError, "channel_not_found"},
		{"bad token", func(srv *slacktest.Server, o *slack.Options) { o.Token = "xoxb-revoked" },
			false, notify.ReasonAPIError, "invalid_auth"},
		{"server error", func(srv *slacktest.Server, o *slack.Options) { srv.FailNext(1, http.StatusInternalServerError, 0) },
			true, notify.ReasonServerError, ""},
		{"bad request", func(srv *slacktest.Server, o *slack.Options) { srv.FailNext(1, http.StatusBadRequest, 0) },
			false, notify.ReasonClientError, ""},
		{"429 without Retry-After", func(srv *slacktest.Server, o *slack.Options) { srv.FailNext(1, http.StatusTooManyRequests, 0) },
			true, notify.ReasonRateLimited, ""},
		{"transient Slack error", func(srv *slacktest.Server, o *slack.Options) { srv.FailNextError(1, "internal_error") },
			true, notify.ReasonAPIError, "internal_error"},
		{"ok:false ratelimited", func(srv *slacktest.Server, o *slack.Options) { srv.FailNextError(1, "ratelimited") },
			true, notify.ReasonRateLimited, "ratelimited"},
		{"connection dropped", func(srv *slacktest.Server, o *slack.Options) { srv.SetDown(true) },
			true, notify.ReasonUnreachable, ""},
		{"server closed", func(srv *slacktest.Server, o *slack.Options) { srv.Close() },
			true, notify.ReasonUnreachable, ""},
		{"timeout", func(srv *slacktest.Server, o *slack.Options) { o.HTTPClient = &http.Client{Timeout: time.Nanosecond} },
			true, notify.ReasonTimeout, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			srv.AddChannel("vigia-alerts")
			o := botOptions(srv)
			c.setup(srv, &o)
			n := newNotifier(t, o)
			retry, err := n.Notify(context.Background(), &notify.Notification{Alert: firingAlert(nil)})
			if err == nil {
				t.Fatal("Notify succeeded")
			}
			if retry != c.retry || notify.ReasonOf(err) != c.reason {
				t.Errorf("Notify = %v, %v (reason %s); want retry %v, reason %s", retry, err, notify.ReasonOf(err), c.retry, c.reason)
			}
			if !strings.Contains(err.Error(), `"slack-test"`) {
				t.Errorf("error %q does not name the receiver", err)
			}
			var se slackgo.SlackErrorResponse
			if c.code != "" && (!errors.As(err, &se) || se.Err != c.code) {
				t.Errorf("error %v does not carry Slack's code %s", err, c.code)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a failed call posted a message")
			}
		})
	}
}

// afterUpdate is a transport that calls armed once a chat.update went
// through, to fail what comes after it.
type afterUpdate struct {
	armed func()
}

func (f afterUpdate) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/chat.update") {
		f.armed()
	}
	return resp, err
}

func TestResolveRetriedAfterReplyFails(t *testing.T) {
	srv := slacktest.New(t)
	srv.AddChannel("vigia-alerts")
	o := botOptions(srv)
	o.HTTPClient = &http.Client{Transport: afterUpdate{armed: func() { srv.FailNext(1, http.StatusServiceUnavailable, 0) }}}
	n := newNotifier(t, o)
	a := firingAlert(nil)
	fire := &notify.Notification{Alert: a}
	mustNotify(t, n, fire)

	res := &notify.Notification{Alert: resolvedOf(a), Prev: prevOf(fire)}
	retry, err := n.Notify(context.Background(), res)
	if !retry || notify.ReasonOf(err) != notify.ReasonServerError {
		t.Fatalf("Notify with the thread reply failing = %v, %v; want retry, server_error", retry, err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Updates != 1 {
		t.Fatalf("after the failed reply: %d messages, want the updated one only", len(msgs))
	}

	// The retry: the update again (same content), then the reply, which
	// the transport lets through this time since only one call fails.
	o.HTTPClient = nil
	mustNotify(t, newNotifier(t, o), res)
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].Updates != 2 || msgs[1].ThreadTS != msgs[0].TS {
		t.Errorf("after the retry: %d messages, %d updates; want the message updated again and one reply", len(msgs), msgs[0].Updates)
	}
	if res.Receipt != fire.Receipt {
		t.Errorf("receipt %+v, want %+v", res.Receipt, fire.Receipt)
	}
}

func TestWebhook(t *testing.T) {
	srv := slacktest.New(t)
	n := newNotifier(t, slack.Options{Name: "hook", WebhookURL: srv.WebhookURL(), RunbookBaseURL: "https://runbooks.example.com"})
	a := firingAlert(nil)
	a.Annotations["summary"] = "<!here> delivery rate fell to 62 %"
	fire := &notify.Notification{Alert: a}
	mustNotify(t, n, fire)
	res := &notify.Notification{Alert: resolvedOf(a), Prev: prevOf(fire)}
	mustNotify(t, n, res)

	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want firing and resolved", len(msgs))
	}
	for i, want := range []string{"🔥 FIRING: DeliveryRateDrop", "✅ RESOLVED: DeliveryRateDrop"} {
		m := msgs[i]
		if !m.Webhook || m.Updates != 0 || m.ThreadTS != "" || header(t, m) != want {
			t.Errorf("message %d: webhook %v, %d updates, thread %q, header %q; want a new webhook message %q",
				i, m.Webhook, m.Updates, m.ThreadTS, header(t, m), want)
		}
	}
	if !strings.Contains(msgs[0].BlockText(), "• delivery_rate 62.0 % (baseline 95.1 %)") ||
		!strings.Contains(msgs[0].BlockText(), "<https://runbooks.example.com/DeliveryRateDrop|Runbook>") {
		t.Errorf("webhook message lacks values or runbook:\n%s", msgs[0].BlockText())
	}
	for _, m := range msgs {
		if strings.Contains(m.Text, "<!here>") || strings.Contains(m.BlockText(), "<!here>") ||
			!strings.Contains(m.Text, "&lt;!here&gt; delivery rate") {
			t.Errorf("webhook message does not escape the summary: text %q", m.Text)
		}
	}
	if fire.Receipt != (notify.Receipt{}) || res.Receipt != (notify.Receipt{}) {
		t.Errorf("webhook receipts %+v %+v, want none", fire.Receipt, res.Receipt)
	}
}

func TestWebhookFailures(t *testing.T) {
	cases := []struct {
		name       string
		setup      func(srv *slacktest.Server)
		retry      bool
		reason     string
		retryAfter time.Duration
	}{
		{"rate limited", func(srv *slacktest.Server) { srv.FailNext(1, http.StatusTooManyRequests, time.Second) },
			true, notify.ReasonRateLimited, time.Second},
		{"revoked", func(srv *slacktest.Server) { srv.FailNext(1, http.StatusNotFound, 0) }, false, notify.ReasonClientError, 0},
		{"server error", func(srv *slacktest.Server) { srv.FailNext(1, http.StatusServiceUnavailable, 0) }, true, notify.ReasonServerError, 0},
		{"down", func(srv *slacktest.Server) { srv.SetDown(true) }, true, notify.ReasonUnreachable, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := slacktest.New(t)
			n := newNotifier(t, slack.Options{Name: "hook", WebhookURL: srv.WebhookURL()})
			c.setup(srv)
			retry, err := n.Notify(context.Background(), &notify.Notification{Alert: firingAlert(nil)})
			var ne *notify.Error
			if !errors.As(err, &ne) || retry != c.retry || ne.Reason != c.reason || ne.RetryAfter != c.retryAfter {
				t.Errorf("Notify = %v, %#v; want retry %v, %s, RetryAfter %v", retry, err, c.retry, c.reason, c.retryAfter)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	srv := slacktest.New(t)
	srv.AddChannel("vigia-alerts")
	o := botOptions(srv)
	o.AlertURL = func(a *alert.Alert) string { return "https://vigia.example.com/" + strings.Repeat("x", 5000) }
	n := newNotifier(t, o)

	long := strings.Repeat("<!channel> & déjà vu ", 1000) // 21000 characters, escaping makes it longer
	labels := map[string]string{alert.LabelAlertName: strings.Repeat("VeryLongAlertName", 20)}
	for _, d := range quality.Dims {
		labels[string(d)] = strings.Repeat(string(d)+"<>&", 1000)
	}
	for i := range 60 {
		labels["extra_"+strconv.Itoa(i)] = long
	}
	a := firingAlert(labels)
	a.Annotations = map[string]string{"summary": long, "description": long, "runbook_url": "https://wiki.example.com/" + strings.Repeat("y", 4000)}
	a.Rule = long
	for i := range 200 {
		a.Actions = append(a.Actions, alert.Action{Type: "failover", Params: map[string]string{"phone_number": strconv.Itoa(i), "note": long}})
	}
	a.Values.FailuresByCode = map[int64]int64{}
	for i := range 500 {
		a.Values.FailuresByCode[int64(130000+i)] = int64(i)
	}

	fire := &notify.Notification{Alert: a}
	mustNotify(t, n, fire)
	mustNotify(t, n, &notify.Notification{Alert: resolvedOf(a), Prev: prevOf(fire)})

	for _, m := range srv.Messages() {
		if utf8.RuneCountInString(m.Text) > 40000 {
			t.Errorf("text of %d characters", utf8.RuneCountInString(m.Text))
		}
		if strings.Contains(m.Text, "<!channel>") || strings.Contains(m.BlockText(), "<!channel>") {
			t.Error("an annotation's <!channel> reached Slack unescaped")
		}
		if m.ThreadTS != "" {
			continue // the reply has no blocks
		}
		bs := blocks(t, m)
		if len(bs) > 50 {
			t.Errorf("%d blocks", len(bs))
		}
		if h := header(t, m); utf8.RuneCountInString(h) > 150 || !strings.HasSuffix(h, "…") {
			t.Errorf("header of %d characters: %q", utf8.RuneCountInString(h), h)
		}
		for _, b := range bs {
			if txt, ok := b["text"].(map[string]any); ok && b["type"] == "section" {
				if l := utf8.RuneCountInString(txt["text"].(string)); l > 3000 {
					t.Errorf("section text of %d characters", l)
				}
			}
			if fs, ok := b["fields"].([]any); ok {
				if len(fs) > 10 {
					t.Errorf("%d fields", len(fs))
				}
				for _, f := range fs {
					if l := utf8.RuneCountInString(f.(map[string]any)["text"].(string)); l > 2000 {
						t.Errorf("field of %d characters", l)
					}
				}
			}
			if es, ok := b["elements"].([]any); ok && len(es) > 10 {
				t.Errorf("%d context elements", len(es))
			}
		}
		if !strings.Contains(m.BlockText(), "&lt;!channel&gt; &amp; déjà vu") {
			t.Error("the escaped summary is missing")
		}
	}
}

func TestNewValidates(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T0/B0/x"
	cases := []struct {
		name string
		o    slack.Options
		err  string // substring; "" for valid
	}{
		{"bot", slack.Options{Token: "xoxb-1", Channel: "#a"}, ""},
		{"bot with routes only", slack.Options{Token: "xoxb-1", Routes: []slack.Route{{Match: map[string]string{"severity": "critical"}, Channel: "#c"}}}, ""},
		{"webhook", slack.Options{WebhookURL: hook}, ""},
		{"both", slack.Options{Token: "xoxb-1", WebhookURL: hook, Channel: "#a"}, "either a bot token or a webhook URL, not both"},
		{"neither", slack.Options{Channel: "#a"}, "needs a bot token"},
		{"not a token", slack.Options{Token: "hunter2", Channel: "#a"}, "not a Slack token"},
		{"no channel", slack.Options{Token: "xoxb-1"}, "default channel or routes"},
		{"route without match", slack.Options{Token: "xoxb-1", Channel: "#a", Routes: []slack.Route{{Channel: "#c"}}}, "route 0: needs match"},
		{"route without channel", slack.Options{Token: "xoxb-1", Channel: "#a", Routes: []slack.Route{{Match: map[string]string{"a": "b"}}}}, "route 0: needs match"},
		{"webhook with channel", slack.Options{WebhookURL: hook, Channel: "#a"}, "posts to the channel it was created for"},
		{"webhook not a URL", slack.Options{WebhookURL: "hooks.slack.com/x"}, "webhook URL: must be an http or https URL"},
		{"API URL not a URL", slack.Options{Token: "xoxb-1", Channel: "#a", APIURL: "slack"}, "API URL: must be an http or https URL"},
		{"runbook base not a URL", slack.Options{Token: "xoxb-1", Channel: "#a", RunbookBaseURL: "wiki"}, "runbook base URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.Name = "team-slack"
			n, err := slack.New(c.o)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("New: %v", err)
			case c.err == "" && n == nil:
				t.Error("New returned nil")
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), `"team-slack"`)):
				t.Errorf("New error %v, want one naming the receiver and saying %q", err, c.err)
			}
		})
	}
}

func TestAPIURLWithoutSlash(t *testing.T) {
	srv := slacktest.New(t)
	srv.AddChannel("vigia-alerts")
	o := botOptions(srv)
	o.APIURL = strings.TrimSuffix(srv.APIURL(), "/")
	mustNotify(t, newNotifier(t, o), &notify.Notification{Alert: firingAlert(nil)})
	if len(srv.Messages()) != 1 {
		t.Error("no message posted through an API URL without a trailing slash")
	}
}

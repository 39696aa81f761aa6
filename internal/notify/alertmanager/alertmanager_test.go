package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"

	"vigia/internal/alert"
	"vigia/internal/notify"
	"vigia/internal/notify/alertmanager"
	"vigia/internal/notify/alertmanager/amtest"
	"vigia/internal/quality"
)

// record returns an alert record of the rule name in group "delivery",
// with the given key labels and state.
func record(name string, key map[string]string, state alert.State, activeAt time.Time) *alert.Alert {
	labels := map[string]string{alert.LabelAlertName: name, "severity": "critical"}
	for k, v := range key {
		labels[k] = v
	}
	a := &alert.Alert{
		SchemaVersion: alert.SchemaVersion,
		Fingerprint:   alert.Fingerprint(labels),
		Name:          name,
		Group:         "delivery",
		Rule:          "rules/delivery.yaml:12",
		State:         state,
		Labels:        labels,
		Annotations:   map[string]string{"summary": "delivery rate of " + key["phone_number"] + " dropped"},
		Values:        quality.Values{Attempts: 1200, Reached: 744, DeliveryRate: 0.62},
		ActiveAt:      activeAt,
		EvalTime:      activeAt,
	}
	if state == alert.StateFiring || state == alert.StateResolved {
		t := activeAt
		a.FiredAt = &t
	}
	return a
}

// resolvedOf returns the resolved record of a firing one, resolved at at.
func resolvedOf(a *alert.Alert, at time.Time) *alert.Alert {
	r := *a
	r.State = alert.StateResolved
	r.ResolvedAt = &at
	r.EvalTime = at
	r.Values = quality.Values{Attempts: 1300, Reached: 1235, DeliveryRate: 0.95}
	return &r
}

func notification(a *alert.Alert) *notify.Notification {
	return &notify.Notification{Receiver: "alertmanager-0", Alert: a}
}

func newNotifier(t *testing.T, o alertmanager.Options) *alertmanager.Notifier {
	t.Helper()
	if o.Name == "" {
		o.Name = "alertmanager-0"
	}
	if o.ResendInterval == 0 {
		o.ResendInterval = time.Minute
	}
	n, err := alertmanager.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    alertmanager.Options
		want string
	}{
		{"no url", alertmanager.Options{ResendInterval: time.Minute}, "url: missing"},
		{"scheme", alertmanager.Options{URL: "ftp://user:secret@host:9093", ResendInterval: time.Minute}, "scheme must be http or https"},
		{"no scheme", alertmanager.Options{URL: "host:9093", ResendInterval: time.Minute}, "scheme must be http or https"},
		{"no host", alertmanager.Options{URL: "http:///am", ResendInterval: time.Minute}, "missing host"},
		{"query", alertmanager.Options{URL: "http://host:9093/?x=1", ResendInterval: time.Minute}, "query"},
		{"resend", alertmanager.Options{URL: "http://host:9093"}, "resend interval must be positive"},
		{"invalid", alertmanager.Options{URL: "http://user:secret@host:90x3", ResendInterval: time.Minute}, "not a valid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Name = "am-test"
			_, err := alertmanager.New(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "am-test") {
				t.Fatalf("New: got error %v, want one naming am-test and containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	if _, err := alertmanager.New(alertmanager.Options{URL: "https://user:pw@host/am", ResendInterval: time.Minute}); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

func TestPostable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	active := now.Add(-10 * time.Minute)
	n := newNotifier(t, alertmanager.Options{
		URL:            "http://127.0.0.1:9093",
		ResendInterval: time.Minute,
		Now:            func() time.Time { return now },
		GeneratorURL: func(a *alert.Alert) string {
			return "https://vigia.example/alerts/" + a.Fingerprint
		},
	})
	a := record("DeliveryRateLow", map[string]string{"phone_number": "1555"}, alert.StateFiring, active)
	a.Baseline = &quality.Values{Attempts: 1100, Reached: 1045, DeliveryRate: 0.95}

	t.Run("firing", func(t *testing.T) {
		p := n.Postable(a)
		wantLabels := map[string]string{"alertname": "DeliveryRateLow", "phone_number": "1555",
			"severity": "critical", "alertgroup": "delivery"}
		if !equalMaps(p.Labels, wantLabels) {
			t.Errorf("labels = %v, want %v", p.Labels, wantLabels)
		}
		wantAnn := map[string]string{
			"summary":  "delivery rate of 1555 dropped",
			"values":   "delivery_rate=0.62 attempts=1200 reached=744",
			"baseline": "delivery_rate=0.95 attempts=1100 reached=1045",
			"rule":     "rules/delivery.yaml:12",
		}
		if !equalMaps(p.Annotations, wantAnn) {
			t.Errorf("annotations = %v, want %v", p.Annotations, wantAnn)
		}
		if got := time.Time(p.StartsAt); !got.Equal(active) {
			t.Errorf("startsAt = %v, want ActiveAt %v", got, active)
		}
		if got, want := time.Time(p.EndsAt), now.Add(4*time.Minute); !got.Equal(want) {
			t.Errorf("endsAt = %v, want now + 4 × resend = %v", got, want)
		}
		if got, want := p.GeneratorURL.String(), "https://vigia.example/alerts/"+a.Fingerprint; got != want {
			t.Errorf("generatorURL = %q, want %q", got, want)
		}
		if err := p.Validate(strfmt.Default); err != nil {
			t.Errorf("the model refuses the alert: %v", err)
		}
		if a.Labels["alertgroup"] != "" || a.Annotations["values"] != "" {
			t.Error("Postable changed the record's maps")
		}
	})

	t.Run("resend", func(t *testing.T) {
		// A re-send is built like the first send: the same labels, a
		// later endsAt once time has moved on.
		later := now.Add(time.Minute)
		n2 := newNotifier(t, alertmanager.Options{URL: "http://127.0.0.1:9093", ResendInterval: time.Minute,
			Now: func() time.Time { return later }})
		if got, want := time.Time(n2.Postable(a).EndsAt), later.Add(4*time.Minute); !got.Equal(want) {
			t.Errorf("endsAt = %v, want %v", got, want)
		}
	})

	t.Run("resolved", func(t *testing.T) {
		at := now.Add(-time.Minute)
		r := resolvedOf(a, at)
		p := n.Postable(r)
		if got := time.Time(p.EndsAt); !got.Equal(at) {
			t.Errorf("endsAt = %v, want ResolvedAt %v (not the sending time)", got, at)
		}
		if got := time.Time(p.StartsAt); !got.Equal(active) {
			t.Errorf("startsAt = %v, want %v", got, active)
		}
		if got, want := p.Annotations["values"], "delivery_rate=0.95 attempts=1300 reached=1235"; got != want {
			t.Errorf("values = %q, want the resolving evaluation's %q", got, want)
		}

		r.ResolvedAt = nil
		r.EvalTime = now.Add(-2 * time.Minute)
		if got := time.Time(n.Postable(r).EndsAt); !got.Equal(r.EvalTime) {
			t.Errorf("without ResolvedAt: endsAt = %v, want EvalTime %v", got, r.EvalTime)
		}

		early := active.Add(-time.Second)
		r.ResolvedAt = &early
		if got := time.Time(n.Postable(r).EndsAt); !got.Equal(active) {
			t.Errorf("ResolvedAt before ActiveAt: endsAt = %v, want startsAt %v", got, active)
		}
	})

	t.Run("firing ahead of the clock", func(t *testing.T) {
		f := *a
		f.ActiveAt = now.Add(time.Hour)
		p := n.Postable(&f)
		if !time.Time(p.EndsAt).Equal(f.ActiveAt) {
			t.Errorf("endsAt = %v, want startsAt %v", time.Time(p.EndsAt), f.ActiveAt)
		}
	})

	t.Run("rule annotations win", func(t *testing.T) {
		f := *a
		f.Annotations = map[string]string{"values": "the rule's own"}
		if got := n.Postable(&f).Annotations["values"]; got != "the rule's own" {
			t.Errorf("values = %q", got)
		}
	})

	t.Run("generator url", func(t *testing.T) {
		for _, u := range []string{"", "not a uri", "/relative/path"} {
			n := newNotifier(t, alertmanager.Options{URL: "http://127.0.0.1:9093",
				GeneratorURL: func(*alert.Alert) string { return u }})
			if got := n.Postable(a).GeneratorURL; got != "" {
				t.Errorf("generator %q: generatorURL = %q, want it left out", u, got)
			}
		}
		n := newNotifier(t, alertmanager.Options{URL: "http://127.0.0.1:9093"})
		if got := n.Postable(a).GeneratorURL; got != "" {
			t.Errorf("no generator: generatorURL = %q", got)
		}
	})
}

func TestFormatValues(t *testing.T) {
	v := quality.Values{
		Sent: 1000, Delivered: 600, Read: 200, Failed: 300, Attempts: 1200, Reached: 640,
		FailuresByCode: map[int64]int64{131049: 250, 131026: 30, 130472: 30, 131000: 2},
		OptOuts:        3, DeliveryRate: 0.5333333, FailureRate: 0.25, OptOutRate: 0.0046875,
		LatencyP50: 2.5, LatencyP90: 1234.56, MessagingTier: "TIER_1K",
	}
	want := "delivery_rate=0.5333 failure_rate=0.25 opt_out_rate=0.004687 attempts=1200 reached=640 " +
		"sent=1000 delivered=600 read=200 failed=300 opt_outs=3 failures_by_code=131049:250,130472:30,131026:30 " +
		"latency_p50=2.5 latency_p90=1235 messaging_tier=TIER_1K"
	if got := alertmanager.FormatValues(&v); got != want {
		t.Errorf("FormatValues =\n%s\nwant\n%s", got, want)
	}
	if got := alertmanager.FormatValues(&quality.Values{}); got != "" {
		t.Errorf("zero values: %q, want empty", got)
	}
}

// fake is an httptest server standing in for Alertmanager.
type fake struct {
	*httptest.Server
	mu       sync.Mutex
	requests []fakeRequest
}

type fakeRequest struct {
	path   string
	user   string
	alerts []map[string]any
}

func newFake(t *testing.T, h http.HandlerFunc) *fake {
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := fakeRequest{path: r.URL.Path}
		req.user, _, _ = r.BasicAuth()
		_ = json.Unmarshal(body, &req.alerts)
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) received() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func TestNotifyBatch(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {})
	u, _ := url.Parse(f.URL)
	u.User = url.UserPassword("vigia", "secret")
	u.Path = "/am"
	n := newNotifier(t, alertmanager.Options{URL: u.String()})
	ctx := context.Background()
	now := time.Now()

	// Nothing to send: no request.
	if retry, err := n.Notify(ctx); retry || err != nil {
		t.Fatalf("empty batch: retry=%v err=%v", retry, err)
	}
	pending := record("A", map[string]string{"phone_number": "1"}, alert.StatePending, now)
	inactive := record("A", map[string]string{"phone_number": "2"}, alert.StateInactive, now)
	if retry, err := n.Notify(ctx, notification(pending), notification(inactive)); retry || err != nil {
		t.Fatalf("pending and inactive: retry=%v err=%v", retry, err)
	}
	if got := f.received(); len(got) != 0 {
		t.Fatalf("pending and inactive records were posted: %v", got)
	}

	firing := record("A", map[string]string{"phone_number": "3"}, alert.StateFiring, now)
	resend := notification(record("A", map[string]string{"phone_number": "4"}, alert.StateFiring, now))
	resend.Resend = true
	resolved := resolvedOf(record("A", map[string]string{"phone_number": "5"}, alert.StateFiring, now), now)
	retry, err := n.Notify(ctx, notification(firing), notification(pending), resend, notification(resolved))
	if retry || err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	got := f.received()
	if len(got) != 1 {
		t.Fatalf("%d requests, want the batch in one", len(got))
	}
	if got[0].path != "/am/api/v2/alerts" {
		t.Errorf("path = %q, want the prefix kept: /am/api/v2/alerts", got[0].path)
	}
	if got[0].user != "vigia" {
		t.Errorf("basic auth user = %q, want vigia from the URL", got[0].user)
	}
	var phones []string
	for _, a := range got[0].alerts {
		phones = append(phones, a["labels"].(map[string]any)["phone_number"].(string))
	}
	if strings.Join(phones, ",") != "3,4,5" {
		t.Errorf("posted phone numbers %v, want 3,4,5 (firing, resend, resolved; pending skipped)", phones)
	}
}

func TestNotifyStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		ctype      string
		body       string
		header     map[string]string
		retry      bool
		reason     string
		retryAfter time.Duration
	}{
		{name: "500 from Alertmanager", status: 500, ctype: "application/json", body: `"storage full"`, retry: true, reason: notify.ReasonServerError},
		{name: "500 with a body the client cannot read", status: 500, ctype: "application/json", body: `{"error":"x"}`, retry: true, reason: notify.ReasonServerError},
		{name: "502 from a proxy", status: 502, ctype: "text/html", body: "<html>bad gateway</html>", retry: true, reason: notify.ReasonServerError},
		{name: "503", status: 503, ctype: "text/plain", body: "unavailable", retry: true, reason: notify.ReasonServerError},
		{name: "429", status: 429, ctype: "text/plain", body: "slow down", header: map[string]string{"Retry-After": "7"},
			retry: true, reason: notify.ReasonRateLimited, retryAfter: 7 * time.Second},
		{name: "400", status: 400, ctype: "application/json", body: `"at least one label pair required"`, retry: false, reason: notify.ReasonClientError},
		{name: "422", status: 422, ctype: "application/json", body: `{"code":602,"message":"0.labels in body is required"}`, retry: false, reason: notify.ReasonClientError},
		{name: "401 from a proxy", status: 401, ctype: "text/plain", body: "no", retry: false, reason: notify.ReasonClientError},
		{name: "200 with an odd content type", status: 200, ctype: "text/html; charset=", body: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			n := newNotifier(t, alertmanager.Options{URL: f.URL})
			a := record("A", map[string]string{"phone_number": "1"}, alert.StateFiring, time.Now())
			retry, err := n.Notify(context.Background(), notification(a))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Notify: %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Notify succeeded")
			}
			if retry != tc.retry || notify.ReasonOf(err) != tc.reason {
				t.Errorf("retry=%v reason=%s, want retry=%v reason=%s (err: %v)", retry, notify.ReasonOf(err), tc.retry, tc.reason, err)
			}
			var ne *notify.Error
			if errors.As(err, &ne) && ne.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", ne.RetryAfter, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), "alertmanager-0") {
				t.Errorf("error %q does not name the receiver", err)
			}
		})
	}
}

func TestNotifyTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	n := newNotifier(t, alertmanager.Options{URL: f.URL, HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
	a := record("A", map[string]string{"phone_number": "1"}, alert.StateFiring, time.Now())
	retry, err := n.Notify(context.Background(), notification(a))
	if !retry || notify.ReasonOf(err) != notify.ReasonTimeout {
		t.Fatalf("retry=%v reason=%s err=%v, want retry and timeout", retry, notify.ReasonOf(err), err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n = newNotifier(t, alertmanager.Options{URL: f.URL})
	retry, err = n.Notify(ctx, notification(a))
	if !retry || notify.ReasonOf(err) != notify.ReasonTimeout {
		t.Fatalf("context deadline: retry=%v reason=%s err=%v, want retry and timeout", retry, notify.ReasonOf(err), err)
	}
}

// apiClient returns a client of the Alertmanager API at base, to look at
// what it holds.
func apiClient(t *testing.T, base string) *amclient.AlertmanagerAPI {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return amclient.New(httptransport.New(u.Host, amclient.DefaultBasePath, []string{u.Scheme}), strfmt.Default)
}

// activeAlerts returns the label sets of the active alerts Alertmanager
// holds whose alertname is name.
func activeAlerts(t *testing.T, api *amclient.AlertmanagerAPI, name string) []map[string]string {
	t.Helper()
	ok, err := api.Alert.GetAlerts(amalert.NewGetAlertsParams().
		WithContext(context.Background()).
		WithFilter([]string{alert.LabelAlertName + "=" + `"` + name + `"`}))
	if err != nil {
		t.Fatalf("GET /api/v2/alerts: %v", err)
	}
	var out []map[string]string
	for _, a := range ok.Payload {
		out = append(out, a.Labels)
	}
	return out
}

const webhookTimeout = 10 * time.Second

func TestRealAlertmanager(t *testing.T) {
	t.Parallel()
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, hook.URL())
	api := apiClient(t, am.URL())
	n := newNotifier(t, alertmanager.Options{
		URL: am.URL(), ResendInterval: time.Minute,
		GeneratorURL: func(a *alert.Alert) string { return "http://vigia.example/alerts/" + a.Fingerprint },
	})
	ctx := context.Background()

	t.Run("firing then resolved", func(t *testing.T) {
		start := time.Now()
		active := time.Now().Add(-30 * time.Second).Truncate(time.Millisecond)
		a := record("DeliveryRateLow", map[string]string{"phone_number": "15550001"}, alert.StateFiring, active)
		if retry, err := n.Notify(ctx, notification(a)); err != nil {
			t.Fatalf("Notify firing: retry=%v err=%v", retry, err)
		}
		want := map[string]string{"alertname": "DeliveryRateLow", "phone_number": "15550001",
			"severity": "critical", "alertgroup": "delivery"}
		got := hook.WaitForAlert(t, webhookTimeout, "firing", want)
		t.Logf("firing notified after %v", time.Since(start))
		if !got.StartsAt.Equal(active) {
			t.Errorf("startsAt = %v, want ActiveAt %v", got.StartsAt, active)
		}
		if got.Annotations["values"] != "delivery_rate=0.62 attempts=1200 reached=744" ||
			got.Annotations["rule"] != "rules/delivery.yaml:12" || got.Annotations["summary"] == "" {
			t.Errorf("annotations = %v", got.Annotations)
		}
		if got.GeneratorURL != "http://vigia.example/alerts/"+a.Fingerprint {
			t.Errorf("generatorURL = %q", got.GeneratorURL)
		}
		if held := activeAlerts(t, api, "DeliveryRateLow"); len(held) != 1 || !amtest.HasLabels(held[0], want) {
			t.Errorf("Alertmanager holds %v, want the firing alert", held)
		}

		// A re-send of the same alert is merged, not notified again.
		resend := notification(a)
		resend.Resend = true
		if _, err := n.Notify(ctx, resend); err != nil {
			t.Fatalf("Notify resend: %v", err)
		}

		start = time.Now()
		resolvedAt := time.Now().Truncate(time.Millisecond)
		if retry, err := n.Notify(ctx, notification(resolvedOf(a, resolvedAt))); err != nil {
			t.Fatalf("Notify resolved: retry=%v err=%v", retry, err)
		}
		got = hook.WaitForAlert(t, webhookTimeout, "resolved", want)
		t.Logf("resolved notified after %v", time.Since(start))
		if !got.EndsAt.Equal(resolvedAt) {
			t.Errorf("endsAt = %v, want ResolvedAt %v", got.EndsAt, resolvedAt)
		}
		if got.Annotations["values"] != "delivery_rate=0.95 attempts=1300 reached=1235" {
			t.Errorf("resolved annotations = %v, want the resolving evaluation's values", got.Annotations)
		}
		if held := activeAlerts(t, api, "DeliveryRateLow"); len(held) != 0 {
			t.Errorf("Alertmanager still holds %v as active after the resolve", held)
		}
		firings := 0
		for _, x := range hook.Alerts() {
			if x.Status == "firing" && amtest.HasLabels(x.Labels, want) {
				firings++
			}
		}
		if firings != 1 {
			t.Errorf("the firing alert was notified %d times, want once (the re-send is deduplicated)", firings)
		}
	})

	t.Run("bad request", func(t *testing.T) {
		a := record("BadLabels", map[string]string{"": "empty label name"}, alert.StateFiring, time.Now())
		retry, err := n.Notify(ctx, notification(a))
		if err == nil || retry || notify.ReasonOf(err) != notify.ReasonClientError {
			t.Fatalf("retry=%v reason=%s err=%v, want no retry and client_error", retry, notify.ReasonOf(err), err)
		}
		if !strings.Contains(err.Error(), "invalid label set") {
			t.Errorf("error %q does not carry Alertmanager's reason", err)
		}

		none := record("NoLabels", nil, alert.StateFiring, time.Now())
		none.Labels, none.Name, none.Group = map[string]string{}, "", ""
		if retry, err := n.Notify(ctx, notification(none)); retry || notify.ReasonOf(err) != notify.ReasonClientError {
			t.Fatalf("no labels: retry=%v reason=%s err=%v, want no retry and client_error", retry, notify.ReasonOf(err), err)
		}
	})

	t.Run("a bad alert in a batch", func(t *testing.T) {
		// Alertmanager stores the valid alerts of a batch and answers 400
		// for the others: the batch fails, yet the good alert arrived.
		bad := record("BatchBad", map[string]string{"": "x"}, alert.StateFiring, time.Now())
		good := record("BatchGood", map[string]string{"phone_number": "15550002"}, alert.StateFiring, time.Now())
		retry, err := n.Notify(ctx, notification(bad), notification(good))
		if retry || notify.ReasonOf(err) != notify.ReasonClientError {
			t.Fatalf("retry=%v reason=%s err=%v, want no retry and client_error", retry, notify.ReasonOf(err), err)
		}
		if held := activeAlerts(t, api, "BatchGood"); len(held) != 1 {
			t.Errorf("Alertmanager holds %v, want the valid alert of the batch", held)
		}
	})
}

func TestAlertmanagerDown(t *testing.T) {
	t.Parallel()
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, hook.URL(), amtest.GroupInterval(200*time.Millisecond))
	api := apiClient(t, am.URL())
	n := newNotifier(t, alertmanager.Options{URL: am.URL(), ResendInterval: time.Minute})
	ctx := context.Background()
	key := map[string]string{"phone_number": "15550003"}

	am.Stop()
	a := record("DeliveryRateLow", key, alert.StateFiring, time.Now().Add(-time.Minute))
	retry, err := n.Notify(ctx, notification(a))
	if err == nil || !retry || notify.ReasonOf(err) != notify.ReasonUnreachable {
		t.Fatalf("Alertmanager stopped: retry=%v reason=%s err=%v, want retry and unreachable", retry, notify.ReasonOf(err), err)
	}

	start := time.Now()
	am.Restart()
	t.Logf("restart took %v", time.Since(start))
	if retry, err := n.Notify(ctx, notification(a)); err != nil {
		t.Fatalf("after restart: retry=%v err=%v", retry, err)
	}
	hook.WaitForAlert(t, webhookTimeout, "firing", key)

	// Alertmanager forgets its alerts when it restarts; the next re-send
	// brings the alert back, and its notification log (on disk) keeps it
	// from notifying the alert again. It logs a notification only once the
	// webhook's answer is in: stopped before that, it takes the
	// notification for failed and sends it again after the restart. Give
	// it a moment.
	time.Sleep(200 * time.Millisecond)
	am.Restart()
	if held := activeAlerts(t, api, "DeliveryRateLow"); len(held) != 0 {
		t.Errorf("after a restart Alertmanager still holds %v", held)
	}
	resend := notification(a)
	resend.Resend = true
	if _, err := n.Notify(ctx, resend); err != nil {
		t.Fatalf("re-send after restart: %v", err)
	}
	if held := activeAlerts(t, api, "DeliveryRateLow"); len(held) != 1 {
		t.Errorf("after the re-send Alertmanager holds %v, want the alert", held)
	}
	if _, err := n.Notify(ctx, notification(resolvedOf(a, time.Now()))); err != nil {
		t.Fatalf("resolve after restart: %v", err)
	}
	hook.WaitForAlert(t, webhookTimeout, "resolved", key)
	firings := 0
	for _, x := range hook.Alerts() {
		if x.Status == "firing" {
			firings++
		}
	}
	if firings != 1 {
		t.Errorf("the alert was notified firing %d times, want once across the restart", firings)
	}
}

func TestEmptyLabelValue(t *testing.T) {
	t.Parallel()
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, hook.URL())
	n := newNotifier(t, alertmanager.Options{URL: am.URL()})
	// A key dimension without a value (no campaign attribution) is sent as
	// is; Alertmanager drops the label, as Prometheus does.
	a := record("OptOutsHigh", map[string]string{"template": "welcome", "campaign": ""}, alert.StateFiring, time.Now())
	if _, err := n.Notify(context.Background(), notification(a)); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	got := hook.WaitForAlert(t, webhookTimeout, "firing", map[string]string{"template": "welcome"})
	if _, ok := got.Labels["campaign"]; ok {
		t.Errorf("labels = %v, want campaign dropped", got.Labels)
	}
}

func equalMaps(a, b map[string]string) bool { return maps.Equal(a, b) }

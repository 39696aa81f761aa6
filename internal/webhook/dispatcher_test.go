package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// received is one request as the receiver saw it.
type received struct {
	id, typ, sig, ua, ct string
	body                 []byte
	at                   time.Time
}

// receiver records requests and answers them with answer (200 when nil).
type receiver struct {
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter) // n: requests so far, this one included
	seen   chan struct{}
}

func newReceiver(answer func(int, http.ResponseWriter)) *receiver {
	return &receiver{answer: answer, seen: make(chan struct{}, 1000)}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, received{id: r.Header.Get(HeaderEventID), typ: r.Header.Get(HeaderEventType),
		sig: r.Header.Get(HeaderSignature), ua: r.Header.Get("User-Agent"), ct: r.Header.Get("Content-Type"),
		body: b, at: time.Now()})
	n := len(rc.got)
	rc.mu.Unlock()
	rc.seen <- struct{}{} // on receipt: an answer may block
	if rc.answer != nil {
		rc.answer(n, w)
	}
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// wait waits for n more requests.
func (rc *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-rc.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("receiver: %d requests, more awaited", len(rc.requests()))
		}
	}
}

func status(code int) func(int, http.ResponseWriter) {
	return func(_ int, w http.ResponseWriter) { w.WriteHeader(code) }
}

// inMemory hands requests to a handler in the calling goroutine, for the
// synctest tests: a real connection would keep goroutines blocked on the
// network, which synctest does not count as idle, and the fake clock
// would never move.
type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// start runs d until the test ends.
func start(t *testing.T, d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func sub(name, url string, useCases ...string) Subscriber {
	return Subscriber{Name: name, URL: url, Secrets: []string{"k-" + name}, UseCases: useCases}
}

func event(i int, useCase string) Event {
	return Event{ID: fmt.Sprintf("ev-%d", i), Type: "route.changed", UseCase: useCase,
		Body: fmt.Appendf(nil, `{"n":%d}`, i)}
}

// metric is the value of the series name{labels} in g (a histogram's
// sample count); -1 when it does not exist.
func metric(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func TestNewValidates(t *testing.T) {
	good := sub("crm", "https://crm.example/hooks/vigia")
	for _, c := range []struct {
		name string
		o    Options
		want []string
	}{
		{"no name", Options{Subscribers: []Subscriber{{URL: good.URL, Secrets: good.Secrets}}}, []string{"subscriber 1: no name"}},
		{"duplicate", Options{Subscribers: []Subscriber{good, good}}, []string{`"crm": name used twice`}},
		{"relative url", Options{Subscribers: []Subscriber{sub("a", "/hooks")}}, []string{`"a": url "/hooks" is not an absolute http(s) URL`}},
		{"other scheme", Options{Subscribers: []Subscriber{sub("a", "ftp://x/")}}, []string{"not an absolute http(s)"}},
		{"unparsable url", Options{Subscribers: []Subscriber{sub("a", "http://a b/")}}, []string{`"a": url: parse`}},
		{"no secret", Options{Subscribers: []Subscriber{{Name: "a", URL: good.URL, Secrets: []string{""}}}}, []string{`"a": no signing secret`}},
		{"backoff", Options{MinBackoff: time.Hour, MaxBackoff: time.Minute}, []string{"min backoff 1h0m0s above max backoff 1m0s"}},
		{"negative", Options{QueueCapacity: -1}, []string{"negative"}},
		{"every problem at once", Options{Subscribers: []Subscriber{{Name: "a"}, {Name: "a", URL: "x"}}},
			[]string{`"a": no signing secret`, `"a": name used twice`, `"a": url "x"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c.o.Registerer = reg
			d, err := New(c.o)
			if err == nil || d != nil {
				t.Fatalf("New accepted it")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			// Nothing registered, so a corrected New on the same registry works.
			if _, err := New(Options{Subscribers: []Subscriber{good}, Registerer: reg}); err != nil {
				t.Errorf("New after a failed one: %v", err)
			}
		})
	}
}

// TestDelivery checks the request itself, the order per subscriber, and
// that every subscriber gets every event.
func TestDelivery(t *testing.T) {
	a, b := newReceiver(nil), newReceiver(nil)
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	reg := prometheus.NewRegistry()
	d, err := New(Options{Subscribers: []Subscriber{sub("a", sa.URL), sub("b", sb.URL)}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n / 2 {
		d.Publish(event(i, "marketing"))
	}
	start(t, d)
	for i := n / 2; i < n; i++ {
		d.Publish(event(i, "marketing"))
	}
	a.wait(t, n)
	b.wait(t, n)
	for _, rc := range []*receiver{a, b} {
		got := rc.requests()
		for i, r := range got {
			if want := fmt.Sprintf("ev-%d", i); r.id != want {
				t.Fatalf("request %d is %s, want %s: out of order", i, r.id, want)
			}
			if r.typ != "route.changed" || r.ua != "vigia-control" || r.ct != "application/json" {
				t.Errorf("headers: type %q, user agent %q, content type %q", r.typ, r.ua, r.ct)
			}
			if string(r.body) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Errorf("body %s", r.body)
			}
		}
	}
	if err := Verify([]string{"k-a"}, a.requests()[0].sig, a.requests()[0].body, time.Now(), time.Minute); err != nil {
		t.Errorf("a's own secret: %v", err)
	}
	if err := Verify([]string{"k-b"}, a.requests()[0].sig, a.requests()[0].body, time.Now(), time.Minute); err == nil {
		t.Errorf("a's request verifies with b's secret")
	}
	waitFor(t, func() bool { st := d.Subscribers(); return st[0].Delivered == n && st[1].Delivered == n })
	st := d.Subscribers()
	if st[0].Name != "a" || st[0].Delivered != n || st[0].Queued != 0 || st[0].LastSuccessAt == nil || st[0].LastError != "" {
		t.Errorf("status %+v", st[0])
	}
	log, ok := d.Deliveries("a")
	if !ok || len(log) != n || log[0].EventID != "ev-49" || log[n-1].EventID != "ev-0" {
		t.Fatalf("log: %d entries, newest %+v", len(log), log[0])
	}
	if l := log[0]; l.Status != StatusDelivered || l.Attempts != 1 || l.LastStatusCode != 200 || l.DeliveredAt == nil ||
		l.FirstAttemptAt.IsZero() || l.UseCase != "marketing" || l.EventType != "route.changed" {
		t.Errorf("log entry %+v", l)
	}
	if _, ok := d.Deliveries("nobody"); ok {
		t.Error("Deliveries of an unknown subscriber")
	}
	if v := metric(t, reg, "vigia_control_webhook_deliveries_total", "subscriber", "b", "outcome", "delivered"); v != n {
		t.Errorf("delivered metric %v", v)
	}
	if v := metric(t, reg, "vigia_control_webhook_attempts_total", "subscriber", "b", "result", "ok"); v != n {
		t.Errorf("ok attempts metric %v", v)
	}
	if v := metric(t, reg, "vigia_control_webhook_attempt_duration_seconds", "subscriber", "a"); v != n {
		t.Errorf("duration observations %v", v)
	}
	if v := metric(t, reg, "vigia_control_webhook_queue_length", "subscriber", "a"); v != 0 {
		t.Errorf("queue length %v", v)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
	}
}

// TestMetricsUpFront: every series exists at 0 before anything happens.
func TestMetricsUpFront(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Subscribers: []Subscriber{sub("a", "http://127.0.0.1:1/")}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]string{
		{"vigia_control_webhook_deliveries_total", "outcome", "delivered"},
		{"vigia_control_webhook_deliveries_total", "outcome", "failed"},
		{"vigia_control_webhook_deliveries_total", "outcome", "dropped"},
		{"vigia_control_webhook_attempts_total", "result", "ok"},
		{"vigia_control_webhook_attempts_total", "result", "retry"},
		{"vigia_control_webhook_attempts_total", "result", "error"},
		{"vigia_control_webhook_queue_length"},
		{"vigia_control_webhook_attempt_duration_seconds"},
	} {
		if v := metric(t, reg, s[0], append([]string{"subscriber", "a"}, s[1:]...)...); v != 0 {
			t.Errorf("%v = %v, want 0", s, v)
		}
	}
}

// TestRetryThenSuccess: 500, 500, 200, with the backoff doubling from
// MinBackoff, a fresh signature per attempt, and the log showing
// "retrying" in between.
func TestRetryThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := newReceiver(func(n int, w http.ResponseWriter) {
			if n <= 2 {
				http.Error(w, "database down", http.StatusInternalServerError)
			}
		})
		reg := prometheus.NewRegistry()
		var logs bytes.Buffer
		d, err := New(Options{Subscribers: []Subscriber{sub("a", "http://a.example/")},
			Client: &http.Client{Transport: inMemory{rc}}, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		d.Publish(event(1, ""))
		stop := start(t, d)
		synctest.Wait()
		log, _ := d.Deliveries("a")
		if len(log) != 1 || log[0].Status != StatusRetrying || log[0].Attempts != 1 || log[0].LastStatusCode != 500 ||
			log[0].LastError != `http 500 Internal Server Error: "database down"` || log[0].DeliveredAt != nil {
			t.Fatalf("log while retrying: %+v", log)
		}
		if st := d.Subscribers()[0]; st.Queued != 1 || st.LastError == "" || st.LastErrorAt == nil {
			t.Errorf("status while retrying: %+v", st)
		}
		time.Sleep(time.Hour)
		got := rc.requests()
		if len(got) != 3 {
			t.Fatalf("%d requests", len(got))
		}
		// MinBackoff 1s, then 2s.
		for i, want := range []time.Duration{0, time.Second, 3 * time.Second} {
			if at := got[i].at.Sub(t0); at != want {
				t.Errorf("attempt %d at %s, want %s", i+1, at, want)
			}
			if got[i].id != "ev-1" {
				t.Errorf("attempt %d carries %s", i+1, got[i].id)
			}
			// Signed at its own time: a receiver's replay window accepts it.
			if err := Verify([]string{"k-a"}, got[i].sig, got[i].body, got[i].at, time.Second); err != nil {
				t.Errorf("attempt %d: %v", i+1, err)
			}
		}
		log, _ = d.Deliveries("a")
		if l := log[0]; l.Status != StatusDelivered || l.Attempts != 3 || l.LastStatusCode != 200 ||
			!strings.Contains(l.LastError, "500") || !l.FirstAttemptAt.Equal(t0) || !l.LastAttemptAt.Equal(t0.Add(3*time.Second)) ||
			l.DeliveredAt == nil || !l.DeliveredAt.Equal(l.LastAttemptAt) {
			t.Errorf("log after delivery: %+v", l)
		}
		for result, want := range map[string]float64{"retry": 2, "ok": 1, "error": 0} {
			if v := metric(t, reg, "vigia_control_webhook_attempts_total", "subscriber", "a", "result", result); v != want {
				t.Errorf("attempts %s = %v, want %v", result, v, want)
			}
		}
		stop()
		// Two failures alike: one line, then one for the recovery.
		if n := strings.Count(logs.String(), "webhook failed; retrying"); n != 1 {
			t.Errorf("%d retry lines:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "subscriber=a") || !strings.Contains(logs.String(), "accepts events again") {
			t.Errorf("logs:\n%s", logs.String())
		}
	})
}

// TestRefused: a 400 fails the event at once and the next one goes.
func TestRefused(t *testing.T) {
	rc := newReceiver(func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "unknown field", http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	d, err := New(Options{Subscribers: []Subscriber{sub("a", srv.URL)}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	d.Publish(event(1, ""))
	d.Publish(event(2, ""))
	start(t, d)
	rc.wait(t, 2)
	waitFor(t, func() bool { return d.Subscribers()[0].Delivered == 1 })
	if got := rc.requests(); got[0].id != "ev-1" || got[1].id != "ev-2" {
		t.Errorf("requests %s, %s", got[0].id, got[1].id)
	}
	log, _ := d.Deliveries("a")
	if l := log[1]; l.EventID != "ev-1" || l.Status != StatusFailed || l.Attempts != 1 || l.LastStatusCode != 400 ||
		!strings.Contains(l.LastError, "unknown field") {
		t.Errorf("refused entry %+v", l)
	}
	if st := d.Subscribers()[0]; st.Failed != 1 || st.Delivered != 1 {
		t.Errorf("status %+v", st)
	}
	for _, c := range []struct {
		name, key, value string
		want             float64
	}{
		{"vigia_control_webhook_deliveries_total", "outcome", "failed", 1},
		{"vigia_control_webhook_deliveries_total", "outcome", "delivered", 1},
		{"vigia_control_webhook_attempts_total", "result", "error", 1},
		{"vigia_control_webhook_attempts_total", "result", "retry", 0},
	} {
		if v := metric(t, reg, c.name, "subscriber", "a", c.key, c.value); v != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.key, c.value, v, c.want)
		}
	}
}

// TestRedirectNotFollowed: following a 3xx would turn the POST into a GET
// elsewhere; it is a failure to fix in the subscriber's URL.
func TestRedirectNotFollowed(t *testing.T) {
	rc := newReceiver(func(_ int, w http.ResponseWriter) {
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	})
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d, err := New(Options{Subscribers: []Subscriber{sub("a", srv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	d.Publish(event(1, ""))
	start(t, d)
	waitFor(t, func() bool { return d.Subscribers()[0].Failed == 1 })
	if log, _ := d.Deliveries("a"); log[0].LastStatusCode != 302 || !strings.Contains(log[0].LastError, "redirects are not followed") {
		t.Errorf("log %+v", log[0])
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

// TestRetryAfter: a 429's Retry-After beats a shorter backoff, and a 503's
// is capped at MaxBackoff.
func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := newReceiver(func(n int, w http.ResponseWriter) {
			switch n {
			case 1:
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
			case 2:
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusServiceUnavailable)
			case 3:
				w.Header().Set("Retry-After", "3600") // ignored on a 500
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		d, err := New(Options{Subscribers: []Subscriber{sub("a", "http://a.example/")},
			Client: &http.Client{Transport: inMemory{rc}}, MinBackoff: time.Second, MaxBackoff: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		d.Publish(event(1, ""))
		stop := start(t, d)
		time.Sleep(time.Hour)
		stop()
		got := rc.requests()
		if len(got) != 4 {
			t.Fatalf("%d requests", len(got))
		}
		// 7s asked; 3600s asked, capped at 1m; backoff's 4s.
		for i, want := range []time.Duration{0, 7 * time.Second, 67 * time.Second, 71 * time.Second} {
			if at := got[i].at.Sub(t0); at != want {
				t.Errorf("attempt %d at %s, want %s", i+1, at, want)
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"12":                            12 * time.Second,
		" 3 ":                           3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"99999999999999999":             365 * 24 * time.Hour,
		"Fri, 02 Jan 2026 03:05:05 GMT": time.Minute,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestMaxAge: an event still failing MaxAge after its first attempt is
// given up, with a last attempt at MaxAge, and the queue moves on.
func TestMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := newReceiver(func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
		reg := prometheus.NewRegistry()
		d, err := New(Options{Subscribers: []Subscriber{sub("a", "http://a.example/")},
			Client:     &http.Client{Transport: inMemory{rc}},
			MinBackoff: time.Second, MaxBackoff: 4 * time.Second, MaxAge: 10 * time.Second, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		d.Publish(event(1, ""))
		d.Publish(event(2, ""))
		stop := start(t, d)
		time.Sleep(10*time.Second + time.Second/2)
		synctest.Wait()
		got := rc.requests()
		var at []time.Duration
		for _, r := range got {
			if r.id == "ev-1" {
				at = append(at, r.at.Sub(t0))
			}
		}
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 10 * time.Second}
		if fmt.Sprint(at) != fmt.Sprint(want) {
			t.Errorf("ev-1 attempts at %v, want %v", at, want)
		}
		if last := got[len(got)-1]; last.id != "ev-2" || last.at.Sub(t0) != 10*time.Second {
			t.Errorf("ev-2 first tried at %s (%s)", last.at.Sub(t0), last.id)
		}
		log, _ := d.Deliveries("a")
		if l := log[1]; l.EventID != "ev-1" || l.Status != StatusFailed || l.Attempts != 5 || l.LastStatusCode != 502 {
			t.Errorf("given-up entry %+v", l)
		}
		if l := log[0]; l.EventID != "ev-2" || l.Status != StatusRetrying {
			t.Errorf("next entry %+v", l)
		}
		if v := metric(t, reg, "vigia_control_webhook_deliveries_total", "subscriber", "a", "outcome", "failed"); v != 1 {
			t.Errorf("failed metric %v", v)
		}
		if v := metric(t, reg, "vigia_control_webhook_attempts_total", "subscriber", "a", "result", "retry"); v != 6 {
			t.Errorf("retry attempts metric %v", v)
		}
		stop()
	})
}

// TestOverflow: beyond QueueCapacity the oldest waiting event is dropped,
// counted, and shown as dropped in the log; the rest go in order.
func TestOverflow(t *testing.T) {
	rc := newReceiver(nil)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	d, err := New(Options{Subscribers: []Subscriber{sub("a", srv.URL)}, QueueCapacity: 3, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		d.Publish(event(i, ""))
	}
	if st := d.Subscribers()[0]; st.Queued != 3 || st.Dropped != 2 {
		t.Errorf("status %+v", st)
	}
	if v := metric(t, reg, "vigia_control_webhook_queue_length", "subscriber", "a"); v != 3 {
		t.Errorf("queue length %v", v)
	}
	if v := metric(t, reg, "vigia_control_webhook_deliveries_total", "subscriber", "a", "outcome", "dropped"); v != 2 {
		t.Errorf("dropped metric %v", v)
	}
	log, _ := d.Deliveries("a")
	if len(log) != 2 || log[0].EventID != "ev-2" || log[1].EventID != "ev-1" ||
		log[0].Status != StatusDropped || log[0].Attempts != 0 {
		t.Errorf("log %+v", log)
	}
	// A dropped entry was never tried: no attempt times in its JSON.
	j, _ := json.Marshal(log[0])
	if want := `{"event_id":"ev-2","event_type":"route.changed","use_case":"","attempts":0,"status":"dropped","last_status_code":0,"last_error":""}`; string(j) != want {
		t.Errorf("JSON %s\nwant %s", j, want)
	}
	start(t, d)
	rc.wait(t, 3)
	var ids []string
	for _, r := range rc.requests() {
		ids = append(ids, r.id)
	}
	if fmt.Sprint(ids) != "[ev-3 ev-4 ev-5]" {
		t.Errorf("delivered %v", ids)
	}
}

// TestLogSize: the log keeps the newest LogSize deliveries.
func TestLogSize(t *testing.T) {
	d, err := New(Options{Subscribers: []Subscriber{sub("a", "http://127.0.0.1:1/")}, QueueCapacity: 1, LogSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		d.Publish(event(i, "")) // drops 1..7, one log entry each
	}
	log, _ := d.Deliveries("a")
	var ids []string
	for _, l := range log {
		ids = append(ids, l.EventID)
	}
	if fmt.Sprint(ids) != "[ev-7 ev-6 ev-5]" {
		t.Errorf("log %v", ids)
	}
}

func TestUseCases(t *testing.T) {
	d, err := New(Options{Subscribers: []Subscriber{
		sub("marketing", "http://127.0.0.1:1/", "marketing"),
		sub("all", "http://127.0.0.1:1/"),
		sub("transactional", "http://127.0.0.1:1/", "utility", "authentication"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	d.Publish(event(1, "marketing"))
	d.Publish(event(2, "utility"))
	d.Publish(event(3, "authentication"))
	d.Publish(event(4, "service"))
	d.Publish(event(5, "")) // concerns every use case
	got := map[string]int{}
	for _, st := range d.Subscribers() {
		got[st.Name] = st.Queued
	}
	if want := map[string]int{"marketing": 2, "all": 5, "transactional": 3}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("queued %v, want %v", got, want)
	}
	st := d.Subscribers()[1]
	if j, _ := json.Marshal(st); !strings.Contains(string(j), `"use_cases":[]`) {
		t.Errorf("no use cases as JSON: %s", j)
	}
}

// TestPublishDefaults: an event without an id gets one (receivers could
// not dedupe otherwise), and the body is copied.
func TestPublishDefaults(t *testing.T) {
	rc := newReceiver(nil)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d, err := New(Options{Subscribers: []Subscriber{sub("a", srv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(`{"a":1}`)
	d.Publish(Event{Type: "route.changed", Body: b})
	b[5] = '2'
	start(t, d)
	rc.wait(t, 1)
	r := rc.requests()[0]
	if len(r.id) < 16 || string(r.body) != `{"a":1}` {
		t.Errorf("id %q, body %s", r.id, r.body)
	}
}

// TestStop: Run returns soon after its context ends, even in the middle
// of a request; the event cut short stays at the head of the queue and a
// later Run delivers it.
func TestStop(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(func(n int, w http.ResponseWriter) {
		if n == 1 {
			<-release
		}
	})
	srv := httptest.NewServer(rc)
	defer srv.Close()
	defer close(release)
	d, err := New(Options{Subscribers: []Subscriber{sub("a", srv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	d.Publish(event(1, ""))
	d.Publish(event(2, ""))
	stop := start(t, d)
	rc.wait(t, 1)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running 5s after its context ended")
	}
	if st := d.Subscribers()[0]; st.Queued != 2 || st.Failed != 0 || st.Delivered != 0 {
		t.Errorf("status after stop: %+v", st)
	}
	start(t, d)
	rc.wait(t, 2)
	got := rc.requests()
	if got[1].id != "ev-1" || got[2].id != "ev-2" {
		t.Errorf("after restart: %s, %s", got[1].id, got[2].id)
	}
}

// TestTransportError: nobody listening is retried like a 5xx.
func TestTransportError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failing := roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("dial tcp: connection refused")
		})
		reg := prometheus.NewRegistry()
		d, err := New(Options{Subscribers: []Subscriber{sub("a", "http://a.example/")},
			Client: &http.Client{Transport: failing}, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		d.Publish(event(1, ""))
		stop := start(t, d)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		stop()
		log, _ := d.Deliveries("a")
		if l := log[0]; l.Status != StatusRetrying || l.Attempts != 2 || l.LastStatusCode != 0 || !strings.Contains(l.LastError, "connection refused") {
			t.Errorf("log %+v", l)
		}
		if v := metric(t, reg, "vigia_control_webhook_attempts_total", "subscriber", "a", "result", "retry"); v != 2 {
			t.Errorf("retry attempts %v", v)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

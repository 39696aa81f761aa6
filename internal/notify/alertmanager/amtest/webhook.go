package amtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is the JSON Alertmanager's webhook receiver posts (version 4,
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing when any alert is, else resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a webhook Message.
type Alert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero-time (0001-01-01) while firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"` // Alertmanager's, not Vigia's
}

// Webhook is an HTTP server on 127.0.0.1 that records the messages
// Alertmanager posts to it. It is closed when the test ends.
type Webhook struct {
	srv *httptest.Server

	mu       sync.Mutex
	messages []Message
	changed  chan struct{} // closed and replaced on every message
}

// NewWebhook starts a Webhook.
func NewWebhook(t testing.TB) *Webhook {
	t.Helper()
	w := &Webhook{changed: make(chan struct{})}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		// Alertmanager retries a failed webhook: a payload we cannot read
		// shows up in its log as well as in the test's failure.
		http.Error(rw, fmt.Sprintf("amtest: bad webhook payload: %v: %s", err, body), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.messages = append(w.messages, m)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// URL returns the URL to configure as Alertmanager's webhook.
func (w *Webhook) URL() string { return w.srv.URL + "/hook" }

// Received returns a copy of the messages received so far, in order.
func (w *Webhook) Received() []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.messages)
}

// Alerts returns the alerts of every message received so far, in order.
func (w *Webhook) Alerts() []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	var as []Alert
	for _, m := range w.messages {
		as = append(as, m.Alerts...)
	}
	return as
}

// WaitFor waits until cond holds for the alerts received so far (all of
// them, in order) and returns them; it fails the test after timeout.
func (w *Webhook) WaitFor(t testing.TB, timeout time.Duration, cond func(alerts []Alert) bool) []Alert {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		changed := w.changed
		w.mu.Unlock()
		as := w.Alerts()
		if cond(as) {
			return as
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("amtest: webhook: condition not met after %v; received:\n%s", timeout, describe(as))
			return nil
		}
	}
}

// WaitForAlert waits for an alert with the given status (firing or
// resolved) whose labels include labels, and returns the first one.
func (w *Webhook) WaitForAlert(t testing.TB, timeout time.Duration, status string, labels map[string]string) Alert {
	t.Helper()
	var found Alert
	w.WaitFor(t, timeout, func(as []Alert) bool {
		for _, a := range as {
			if a.Status == status && HasLabels(a.Labels, labels) {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

// HasLabels reports whether set holds every label of want.
func HasLabels(set, want map[string]string) bool {
	for k, v := range want {
		if got, ok := set[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func describe(as []Alert) string {
	if len(as) == 0 {
		return "  (nothing)"
	}
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "  %s %v startsAt=%s endsAt=%s\n", a.Status, a.Labels,
			a.StartsAt.Format(time.RFC3339Nano), a.EndsAt.Format(time.RFC3339Nano))
	}
	return b.String()
}

package control

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"vigia/internal/action"
	"vigia/internal/route"
	"vigia/internal/webhook"
)

// Event types of changes pushed to senders.
const (
	TypeRouteChanged = "route.changed"  // a use case's route changed: read Route
	TypeAdvisory     = "route.advisory" // a rule asks senders to act on what control does not route (a campaign, a template)
)

// Change is one route change as senders receive it, by webhook and on
// the change stream. docs/control.md describes it.
type Change struct {
	ID        string            `json:"id"` // unique; the webhook's Vigia-Event-Id
	Type      string            `json:"type"`
	Time      time.Time         `json:"time"`
	UseCase   string            `json:"use_case,omitempty"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Reason    string            `json:"reason,omitempty"`
	Actor     string            `json:"actor"`
	ActorKind string            `json:"actor_kind"`
	Alert     *ChangeAlert      `json:"alert,omitempty"`
	Route     *route.View       `json:"route,omitempty"`  // the use case after the change
	Advice    map[string]string `json:"advice,omitempty"` // an advisory's params (template, campaign, rate, channel...)
}

// ChangeAlert names the alert occurrence behind an automatic change.
type ChangeAlert struct {
	Fingerprint string `json:"fingerprint"`
	Occurrence  string `json:"occurrence"`
}

// Changes turns the records of an applied command into what senders
// receive: one change per use case affected (a number's change is sent for
// each use case it serves). Dry-run records are not sent: shadow mode
// must not move anyone's traffic.
func Changes(records []action.Record, t *route.Table, now time.Time) []Change {
	var out []Change
	for _, r := range records {
		if r.DryRun {
			continue
		}
		base := Change{Time: r.Time, Action: r.Action, Target: r.Target, Reason: r.Reason, Actor: r.Actor, ActorKind: r.ActorKind}
		if r.AlertFingerprint != "" {
			base.Alert = &ChangeAlert{Fingerprint: r.AlertFingerprint, Occurrence: r.Occurrence}
		}
		if strings.HasPrefix(r.Action, "advise_") {
			c := base
			c.ID, c.Type, c.UseCase = r.ID, TypeAdvisory, r.UseCase
			_ = json.Unmarshal(r.After, &c.Advice)
			out = append(out, c)
			continue
		}
		useCases := []string{r.UseCase}
		if r.UseCase == "" {
			useCases = t.File().UseCasesOf(r.Target)
		}
		for _, uc := range useCases {
			c := base
			c.ID, c.Type, c.UseCase = r.ID+"@"+uc, TypeRouteChanged, uc
			if v, ok := t.View(uc, now); ok {
				c.Route = &v
			}
			out = append(out, c)
		}
	}
	return out
}

// Event returns the webhook event of a change.
func (c Change) Event() webhook.Event {
	body, _ := json.Marshal(c)
	return webhook.Event{ID: c.ID, Type: c.Type, UseCase: c.UseCase, Time: c.Time, Body: body}
}

// Hub fans changes out to the clients of the change stream. A client too
// slow to keep up is disconnected (it reconnects and starts from a fresh
// view) rather than slowing the others or growing without bound.
type Hub struct {
	mu      sync.Mutex
	clients map[chan Change]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{clients: map[chan Change]struct{}{}} }

// clientBuffer is how many changes a stream client may fall behind.
const clientBuffer = 256

// Publish sends c to every client.
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.clients {
		select {
		case ch <- c:
		default:
			delete(h.clients, ch)
			close(ch)
		}
	}
}

func (h *Hub) subscribe() chan Change {
	ch := make(chan Change, clientBuffer)
	h.mu.Lock()
	h.clients[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *Hub) unsubscribe(ch chan Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[ch]; ok {
		delete(h.clients, ch)
		close(ch)
	}
}

// keepAlive is how often an idle stream gets a comment, so that proxies
// do not close it.
const keepAlive = 15 * time.Second

// events serves the change stream: first an event "routes" with every
// use case's view, then one "route.changed" or "route.advisory" event per
// change, with the change id as the SSE id.
func (a *API) events(w http.ResponseWriter, r *http.Request, _ Token) {
	if a.o.Hub == nil {
		writeProblem(w, http.StatusNotFound, "", "this process has no change stream")
		return
	}
	rc := http.NewResponseController(w)
	ch := a.o.Hub.subscribe()
	defer a.o.Hub.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	t, now := a.o.Log.Table(), a.o.Now()
	views := []route.View{}
	for _, name := range t.UseCaseNames() {
		v, _ := t.View(name, now)
		views = append(views, v)
	}
	if writeEvent(w, "routes", "", views) != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case c, ok := <-ch:
			if !ok {
				return // too slow: the hub dropped us
			}
			if writeEvent(w, c.Type, c.ID, c) != nil || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, event, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, err = w.Write([]byte(b.String()))
	return err
}

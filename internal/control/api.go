// Package control is the control API's HTTP side: routes and their state,
// pick for senders, operator actions, the audit log, the automation's
// state, the change stream (Server-Sent Events) and the subscribers'
// delivery logs, behind bearer tokens with scopes. Every error is an RFC
// 9457 problem. The OpenAPI 3 description is openapi.json, served at
// /openapi.json; a test keeps it and the handlers in step.
//
// The package holds no state of its own: route state comes from the
// route log (vigia/internal/routelog) through [Options.Log] and
// [Options.Picker], and changes go to it as [route.Command]s.
package control

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"vigia/internal/action"
	"vigia/internal/problem"
	"vigia/internal/route"
	"vigia/internal/routelog"
	"vigia/internal/rules"
	"vigia/internal/webhook"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 description of the API.
func OpenAPI() []byte { return openAPI }

// Log is the route log as the API uses it.
type Log interface {
	Propose(ctx context.Context, c route.Command) (route.Result, error)
	Table() *route.Table
}

// Subscribers is the webhook dispatcher as the API shows it.
type Subscribers interface {
	Subscribers() []webhook.Status
	Deliveries(name string) ([]webhook.Delivery, bool)
}

// Options configures New.
type Options struct {
	Log         Log
	Picker      *route.Picker
	Subscribers Subscribers // nil: no subscribers
	Hub         *Hub        // change stream; nil: none
	Tokens      []Token
	// MaxBodyBytes bounds request bodies; default 64 KiB.
	MaxBodyBytes int64
	// ProposeTimeout bounds the wait for a change to be applied; default 10 s.
	ProposeTimeout time.Duration
	Now            func() time.Time // nil: time.Now
}

// API serves the control API.
type API struct {
	o     Options
	auth  *auth
	mux   *http.ServeMux
	paths map[string][]string
}

// New returns the API; its Handler serves /openapi.json and /api/v1/.
func New(o Options) (*API, error) {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.ProposeTimeout <= 0 {
		o.ProposeTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a, err := newAuth(o.Tokens)
	if err != nil {
		return nil, err
	}
	api := &API{o: o, auth: a, mux: http.NewServeMux()}
	api.routes()
	return api, nil
}

// Handler returns the API's handler.
func (a *API) Handler() http.Handler { return a.mux }

// endpoint is one path with its handlers by method.
type endpoint map[string]struct {
	scope string
	fn    func(w http.ResponseWriter, r *http.Request, t Token)
}

// Paths returns every path and method the API serves, for the test that
// keeps openapi.json in step.
func (a *API) Paths() map[string][]string { return a.paths }

func (a *API) routes() {
	a.paths = map[string][]string{}
	uc := map[string]func(*API) opHandler{
		"switch": (*API).switchOp, "pause": (*API).pauseOp, "resume": (*API).resumeOp,
		"fallback": (*API).fallbackOp, "lock": (*API).lockOp, "unlock": (*API).unlockOp,
	}
	num := map[string]func(*API) opHandler{
		"pause": (*API).pauseOp, "resume": (*API).resumeOp, "throttle": (*API).throttleOp,
		"lock": (*API).lockOp, "unlock": (*API).unlockOp, "mark": (*API).markOp, "ramp": (*API).rampOp,
	}
	a.handle("/api/v1/routes", endpoint{http.MethodGet: {ScopeRead, a.listRoutes}})
	a.handle("/api/v1/routes/{use_case}", endpoint{http.MethodGet: {ScopeRead, a.getRoute}})
	a.handle("/api/v1/routes/{use_case}/pick", endpoint{http.MethodPost: {ScopePick, a.pick}})
	for _, op := range slices.Sorted(maps.Keys(uc)) {
		h := uc[op](a)
		a.handle("/api/v1/routes/{use_case}/"+op, endpoint{http.MethodPost: {ScopeOperate, a.operate(op, false, h)}})
	}
	a.handle("/api/v1/numbers/{number}", endpoint{http.MethodGet: {ScopeRead, a.getNumber}})
	for _, op := range slices.Sorted(maps.Keys(num)) {
		h := num[op](a)
		a.handle("/api/v1/numbers/{number}/"+op, endpoint{http.MethodPost: {ScopeOperate, a.operate(op, true, h)}})
	}
	a.handle("/api/v1/audit", endpoint{http.MethodGet: {ScopeRead, a.audit}})
	a.handle("/api/v1/automation", endpoint{http.MethodGet: {ScopeRead, a.automation}})
	a.handle("/api/v1/events", endpoint{http.MethodGet: {ScopeRead, a.events}})
	a.handle("/api/v1/subscribers", endpoint{http.MethodGet: {ScopeAdmin, a.subscribers}})
	a.handle("/api/v1/subscribers/{name}/deliveries", endpoint{http.MethodGet: {ScopeAdmin, a.deliveries}})
	a.mux.HandleFunc("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	a.paths["/openapi.json"] = []string{http.MethodGet}
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "", "no such endpoint: "+r.URL.Path+" (see /openapi.json)")
	})
}

// handle registers path for its methods; other methods get a 405 problem
// (the mux's own 405 is plain text).
func (a *API) handle(path string, e endpoint) {
	methods := slices.Sorted(maps.Keys(e))
	a.paths[path] = methods
	a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		h, ok := e[r.Method]
		if !ok {
			methodNotAllowed(w, methods...)
			return
		}
		t, ok := a.auth.check(w, r, h.scope)
		if !ok {
			return
		}
		h.fn(w, r, t)
	})
}

func methodNotAllowed(w http.ResponseWriter, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeProblem(w, http.StatusMethodNotAllowed, "", "allowed: "+strings.Join(allowed, ", "))
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	problem.Write(w, status, title, detail)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "", "encode answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// --- reads ---

func (a *API) listRoutes(w http.ResponseWriter, _ *http.Request, _ Token) {
	t, now := a.o.Log.Table(), a.o.Now()
	out := struct {
		Seq    int64        `json:"seq"`
		Routes []route.View `json:"routes"`
	}{Seq: t.Seq, Routes: []route.View{}}
	for _, name := range t.UseCaseNames() {
		v, _ := t.View(name, now)
		out.Routes = append(out.Routes, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getRoute(w http.ResponseWriter, r *http.Request, _ Token) {
	v, ok := a.o.Log.Table().View(r.PathValue("use_case"), a.o.Now())
	if !ok {
		writeProblem(w, http.StatusNotFound, "", fmt.Sprintf("no use case %q", r.PathValue("use_case")))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// NumberView is a number as GET /api/v1/numbers/{number} shows it.
type NumberView struct {
	route.NumberView
	UseCases []string `json:"use_cases"`
	Seq      int64    `json:"seq"`
}

func (a *API) numberView(t *route.Table, id string) (NumberView, bool) {
	ucs := t.File().UseCasesOf(id)
	if len(ucs) == 0 {
		return NumberView{}, false
	}
	v, _ := t.View(ucs[0], a.o.Now())
	for _, n := range v.Numbers {
		if n.ID == id {
			return NumberView{NumberView: n, UseCases: ucs, Seq: t.Seq}, true
		}
	}
	return NumberView{}, false
}

func (a *API) getNumber(w http.ResponseWriter, r *http.Request, _ Token) {
	v, ok := a.numberView(a.o.Log.Table(), r.PathValue("number"))
	if !ok {
		writeProblem(w, http.StatusNotFound, "", fmt.Sprintf("no number %q", r.PathValue("number")))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) audit(w http.ResponseWriter, r *http.Request, _ Token) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			writeProblem(w, http.StatusBadRequest, "", "limit: want 1 to 10000, got "+strconv.Quote(s))
			return
		}
		limit = n
	}
	useCase, target, outcome := q.Get("use_case"), q.Get("target"), q.Get("outcome")
	entries := a.o.Log.Table().State().Audit
	out := []route.Entry{}
	for _, e := range slices.Backward(entries) {
		if len(out) == limit {
			break
		}
		if useCase != "" && e.UseCase != useCase || target != "" && e.Target != target || outcome != "" && e.Outcome != outcome {
			continue
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, struct {
		Entries []route.Entry `json:"entries"`
	}{out})
}

// Automation is what GET /api/v1/automation shows.
type Automation struct {
	DryRun           bool                         `json:"dry_run"`
	Cooldown         string                       `json:"cooldown"`
	HourlyBudget     int                          `json:"hourly_budget"`
	UsedLastHour     int                          `json:"used_last_hour"`
	RestoreAfter     string                       `json:"restore_after"`
	PlatformFraction float64                      `json:"platform_fraction"`
	Cooldowns        map[string]time.Time         `json:"cooldowns"` // target -> end of its cooldown, for those still cooling down
	Occurrences      map[string]*route.Occurrence `json:"occurrences"`
	Seq              int64                        `json:"seq"`
}

func (a *API) automation(w http.ResponseWriter, _ *http.Request, _ Token) {
	t, now := a.o.Log.Table(), a.o.Now()
	au, s := t.File().Automation, t.State()
	out := Automation{DryRun: au.DryRun, Cooldown: time.Duration(au.Cooldown).String(), HourlyBudget: au.HourlyBudget,
		RestoreAfter: time.Duration(au.RestoreAfter).String(), PlatformFraction: au.PlatformFraction,
		Cooldowns: map[string]time.Time{}, Occurrences: s.Occurrences, Seq: t.Seq}
	for _, at := range s.AutoTimes {
		if now.Sub(at) < time.Hour {
			out.UsedLastHour++
		}
	}
	for target, at := range s.LastAuto {
		if end := at.Add(time.Duration(au.Cooldown)); end.After(now) {
			out.Cooldowns[target] = end
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) subscribers(w http.ResponseWriter, _ *http.Request, _ Token) {
	out := []webhook.Status{}
	if a.o.Subscribers != nil {
		out = append(out, a.o.Subscribers.Subscribers()...)
	}
	writeJSON(w, http.StatusOK, struct {
		Subscribers []webhook.Status `json:"subscribers"`
	}{out})
}

func (a *API) deliveries(w http.ResponseWriter, r *http.Request, _ Token) {
	var ds []webhook.Delivery
	ok := false
	if a.o.Subscribers != nil {
		ds, ok = a.o.Subscribers.Deliveries(r.PathValue("name"))
	}
	if !ok {
		writeProblem(w, http.StatusNotFound, "", fmt.Sprintf("no subscriber %q", r.PathValue("name")))
		return
	}
	if ds == nil {
		ds = []webhook.Delivery{}
	}
	writeJSON(w, http.StatusOK, struct {
		Deliveries []webhook.Delivery `json:"deliveries"`
	}{ds})
}

// --- pick ---

type pickRequest struct {
	Recipient string `json:"recipient"`
}

func (a *API) pick(w http.ResponseWriter, r *http.Request, _ Token) {
	var req pickRequest
	if !a.decode(w, r, &req, true) {
		return
	}
	ans, err := a.o.Picker.Pick(r.PathValue("use_case"), req.Recipient, a.o.Now())
	switch {
	case errors.Is(err, route.ErrNoUseCase):
		writeProblem(w, http.StatusNotFound, "", fmt.Sprintf("no use case %q", r.PathValue("use_case")))
	case errors.Is(err, route.ErrNoRoute):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, "No route", err.Error())
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, "", err.Error())
	default:
		writeJSON(w, http.StatusOK, ans)
	}
}

// bodyBuffers recycles request body buffers: pick is the hot path.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decode reads a JSON body strictly into v; an empty body is accepted when
// optional. On failure it has answered 400 or 413.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bodyBuffers.Put(buf) }()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.o.MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("body larger than %d bytes", a.o.MaxBodyBytes))
			return false
		}
		writeProblem(w, http.StatusBadRequest, "", "read body: "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return true
		}
		writeProblem(w, http.StatusBadRequest, "", "a JSON body is required")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, http.StatusBadRequest, "", "body: "+err.Error())
		return false
	}
	// More is not enough: it says false before a stray ']' or '}', which
	// let `{}]` through as a valid body.
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		writeProblem(w, http.StatusBadRequest, "", "body: one JSON object expected")
		return false
	}
	return true
}

// --- operator actions ---

// opRequest is the body of operator actions; each action takes some of
// the fields (openapi.json says which) and refuses the others.
type opRequest struct {
	Reason  string     `json:"reason,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
	For     string     `json:"for,omitempty"` // a duration from now, instead of until
	To      string     `json:"to,omitempty"`
	Channel string     `json:"channel,omitempty"`
	Rate    string     `json:"rate,omitempty"`
	State   string     `json:"state,omitempty"`
}

// opHandler fills the command of one operator action from its request,
// or says what is wrong with the request.
type opHandler struct {
	fields []string // the request fields the action takes
	fill   func(req *opRequest, c *route.Command) error
}

// OpResult is the answer to an operator action.
type OpResult struct {
	Outcome string          `json:"outcome"`
	Changes []action.Record `json:"changes"`
	Seq     int64           `json:"seq"`
}

func (a *API) operate(op string, number bool, h opHandler) func(w http.ResponseWriter, r *http.Request, t Token) {
	return func(w http.ResponseWriter, r *http.Request, tok Token) {
		var req opRequest
		if !a.decode(w, r, &req, true) {
			return
		}
		table := a.o.Log.Table()
		c := route.Command{Time: a.o.Now().UTC(), Op: op, Actor: tok.Name, ActorKind: action.ActorOperator, Reason: req.Reason}
		if number {
			c.Number = r.PathValue("number")
			if _, ok := table.File().Number(c.Number); !ok {
				writeProblem(w, http.StatusNotFound, "", fmt.Sprintf("no number %q", c.Number))
				return
			}
		} else {
			c.UseCase = r.PathValue("use_case")
			if _, ok := table.File().UseCase(c.UseCase); !ok {
				writeProblem(w, http.StatusNotFound, "", fmt.Sprintf("no use case %q", c.UseCase))
				return
			}
		}
		if err := checkFields(op, &req, h.fields); err != nil {
			writeProblem(w, http.StatusBadRequest, "", err.Error())
			return
		}
		if utf8.RuneCountInString(req.Reason) > 1000 { // characters, as the message and openapi.json say; not bytes
			writeProblem(w, http.StatusBadRequest, "", "reason: at most 1000 characters")
			return
		}
		if err := until(&req, &c); err != nil {
			writeProblem(w, http.StatusUnprocessableEntity, "", err.Error())
			return
		}
		if err := h.fill(&req, &c); err != nil {
			writeProblem(w, http.StatusUnprocessableEntity, "", err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.o.ProposeTimeout)
		defer cancel()
		res, err := a.o.Log.Propose(ctx, c)
		if err != nil {
			if !errors.Is(err, routelog.ErrUnconfirmed) {
				w.Header().Set("Retry-After", "5")
			}
			writeProblem(w, http.StatusServiceUnavailable, "Route log unavailable", err.Error())
			return
		}
		if res.Err != nil {
			status := http.StatusUnprocessableEntity
			switch {
			case errors.Is(res.Err, route.ErrNotFound):
				status = http.StatusNotFound
			case errors.Is(res.Err, route.ErrConflict):
				status = http.StatusConflict
			}
			writeProblem(w, status, "Refused", res.Err.Error())
			return
		}
		changes := res.Records
		if changes == nil {
			changes = []action.Record{}
		}
		writeJSON(w, http.StatusOK, OpResult{Outcome: res.Outcome, Changes: changes, Seq: a.o.Log.Table().Seq})
	}
}

// checkFields refuses request fields the action does not take.
func checkFields(op string, req *opRequest, allowed []string) error {
	// In the order of the body's fields, not a map's: the message names
	// the same field every time.
	given := []struct {
		name string
		on   bool
	}{{"until", req.Until != nil}, {"for", req.For != ""}, {"to", req.To != ""},
		{"channel", req.Channel != ""}, {"rate", req.Rate != ""}, {"state", req.State != ""}}
	for _, f := range given {
		if f.on && !slices.Contains(allowed, f.name) {
			return fmt.Errorf("%s takes no %q (it takes: %s)", op, f.name, strings.Join(append([]string{"reason"}, allowed...), ", "))
		}
	}
	return nil
}

// until sets c.Until from until or for.
func until(req *opRequest, c *route.Command) error {
	switch {
	case req.Until != nil && req.For != "":
		return errors.New("give until or for, not both")
	case req.Until != nil:
		u := req.Until.UTC()
		if !u.After(c.Time) {
			return fmt.Errorf("until %s is not in the future", u.Format(time.RFC3339))
		}
		// 9999-12-31T23:00:00-01:00 is year 10000 in UTC, which JSON
		// cannot encode: the command could not be written to the route
		// log (a 503 for a bad value).
		if u.Year() > 9999 {
			return fmt.Errorf("until %s is after the year 9999", req.Until.Format(time.RFC3339))
		}
		c.Until = &u
	case req.For != "":
		d, err := rules.ParseDuration(req.For)
		if err != nil || d <= 0 {
			return fmt.Errorf("for: want a positive duration like 30m or 2h, got %q", req.For)
		}
		u := c.Time.Add(d)
		c.Until = &u
	}
	return nil
}

func (a *API) switchOp() opHandler {
	return opHandler{fields: []string{"to"}, fill: func(req *opRequest, c *route.Command) error {
		if req.To == "" {
			return errors.New("to: the number to switch to is required")
		}
		c.To = req.To
		return nil
	}}
}

func (a *API) pauseOp() opHandler {
	return opHandler{fields: []string{"until", "for"}, fill: func(*opRequest, *route.Command) error { return nil }}
}

func (a *API) resumeOp() opHandler {
	return opHandler{fill: func(*opRequest, *route.Command) error { return nil }}
}

func (a *API) unlockOp() opHandler { return a.resumeOp() }

func (a *API) rampOp() opHandler { return a.resumeOp() }

func (a *API) fallbackOp() opHandler {
	return opHandler{fields: []string{"channel"}, fill: func(req *opRequest, c *route.Command) error {
		if req.Channel == "" {
			return errors.New("channel: required (whatsapp, sms, email or push)")
		}
		c.Channel = req.Channel
		return nil
	}}
}

func (a *API) lockOp() opHandler {
	return opHandler{fields: []string{"until", "for"}, fill: func(req *opRequest, c *route.Command) error {
		if strings.TrimSpace(req.Reason) == "" {
			return errors.New("reason: a lock needs a reason")
		}
		if c.Until == nil {
			return errors.New("until or for: a lock needs an expiry")
		}
		return nil
	}}
}

func (a *API) throttleOp() opHandler {
	return opHandler{fields: []string{"rate", "until", "for"}, fill: func(req *opRequest, c *route.Command) error {
		rate, err := rules.ParseRate(req.Rate) // refuses rates beyond float64, which JSON could not log
		if err != nil {
			return fmt.Errorf("rate: %w", err)
		}
		c.Rate = rate
		return nil
	}}
}

func (a *API) markOp() opHandler {
	return opHandler{fields: []string{"state"}, fill: func(req *opRequest, c *route.Command) error {
		if req.State == "" {
			return errors.New("state: required (active, degraded or blocked)")
		}
		c.State = req.State
		return nil
	}}
}

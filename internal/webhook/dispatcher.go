package webhook

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigia/internal/backoff"
)

// Subscriber is one sender that receives webhooks.
type Subscriber struct {
	Name     string   // unique; in metrics and the delivery log
	URL      string   // absolute http(s)
	Secrets  []string // signing secrets (first is current); every non-empty one signs
	UseCases []string // empty: every use case
}

// Event is one thing to tell subscribers.
type Event struct {
	ID      string // unique; sent as Vigia-Event-Id (Publish makes one up when empty)
	Type    string // sent as Vigia-Event-Type
	UseCase string // for subscriber filtering; empty: goes to every subscriber
	// Time is when it happened; not sent (the body says what receivers
	// need), kept for the publisher's own records.
	Time time.Time
	Body []byte // JSON, sent as is
}

// Options configure a Dispatcher. Zero values take the defaults.
type Options struct {
	Subscribers []Subscriber
	// Client sends the requests; nil: one with a 10 s timeout that does
	// not follow redirects (following one would turn the POST into a GET).
	Client *http.Client
	// MinBackoff and MaxBackoff bound the wait between attempts (defaults
	// 1s, 5m); MaxBackoff also caps a Retry-After.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge: an event still failing this long after its first attempt is
	// given up (status failed); default 24h.
	MaxAge time.Duration
	// QueueCapacity is the events waiting per subscriber; beyond it the
	// oldest is dropped and counted. Default 10000.
	QueueCapacity int
	// LogSize is the deliveries remembered per subscriber; default 1000.
	LogSize    int
	Registerer prometheus.Registerer // may be nil
	Logger     *slog.Logger          // may be nil
	// Now is the wall clock of signatures and the delivery log; nil:
	// time.Now. Waits and MaxAge run on the runtime's clock (which
	// testing/synctest fakes), so that a fixed Now cannot stall them.
	Now func() time.Time
}

// Delivery statuses.
const (
	StatusDelivered = "delivered"
	StatusRetrying  = "retrying" // still being tried (or waiting for the next Run)
	StatusFailed    = "failed"   // refused for good, or older than MaxAge
	StatusDropped   = "dropped"  // pushed out of a full queue before it was delivered
)

// Delivery is what became of one event for one subscriber. The log entry
// is created at the first attempt (or at the drop of an event never
// tried) and updated in place as attempts happen.
type Delivery struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	UseCase   string `json:"use_case"`
	Attempts  int    `json:"attempts"`
	Status    string `json:"status"`
	// LastStatusCode is the HTTP status of the last attempt; 0 when it got
	// no answer (or there was no attempt).
	LastStatusCode int `json:"last_status_code"`
	// LastError is the error of the last failed attempt; kept after a
	// later attempt succeeds, to show why it needed several.
	LastError string `json:"last_error"`
	// First/LastAttemptAt are zero (and left out of JSON) for an event
	// dropped before any attempt.
	FirstAttemptAt time.Time  `json:"first_attempt_at,omitzero"`
	LastAttemptAt  time.Time  `json:"last_attempt_at,omitzero"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
}

// Status is a subscriber's state. Secrets are not in it.
type Status struct {
	Name          string     `json:"name"`
	URL           string     `json:"url"` // a password in it is masked
	UseCases      []string   `json:"use_cases"`
	Queued        int        `json:"queued"` // waiting, the one being tried included
	Delivered     int        `json:"delivered"`
	Failed        int        `json:"failed"`
	Dropped       int        `json:"dropped"`
	LastError     string     `json:"last_error"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
}

// Dispatcher delivers events to subscribers. Publish, Subscribers and
// Deliveries are safe for concurrent use, including before and after Run.
type Dispatcher struct {
	subs       []*subscriber
	byName     map[string]*subscriber
	running    atomic.Bool
	ownsClient bool
	client     *http.Client
}

// Defaults.
const (
	defaultTimeout       = 10 * time.Second
	defaultMinBackoff    = time.Second
	defaultMaxBackoff    = 5 * time.Minute
	defaultMaxAge        = 24 * time.Hour
	defaultQueueCapacity = 10000
	defaultLogSize       = 1000

	userAgent = "vigia-control"
	// What of an answer's body is kept in last_error and read at all: the
	// body only explains a failure; reading some lets the connection be
	// reused, reading it all would let a receiver make us read forever.
	errorBodyLen   = 256
	drainBodyLimit = 64 << 10
)

// New checks o and returns a Dispatcher; nothing is sent before Run. Every
// problem is reported at once.
func New(o Options) (*Dispatcher, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.MinBackoff < 0 || o.MaxBackoff < 0 || o.MaxAge < 0 || o.QueueCapacity < 0 || o.LogSize < 0 {
		bad("webhook options: negative backoff, max age, queue capacity or log size")
	}
	o.MinBackoff = cmpOr(o.MinBackoff, defaultMinBackoff)
	o.MaxBackoff = cmpOr(o.MaxBackoff, defaultMaxBackoff)
	if o.MinBackoff > o.MaxBackoff {
		bad("webhook options: min backoff %s above max backoff %s", o.MinBackoff, o.MaxBackoff)
	}
	o.MaxAge = cmpOr(o.MaxAge, defaultMaxAge)
	o.QueueCapacity = cmpOr(o.QueueCapacity, defaultQueueCapacity)
	o.LogSize = cmpOr(o.LogSize, defaultLogSize)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{byName: map[string]*subscriber{}, client: o.Client}
	if d.client == nil {
		d.ownsClient = true
		d.client = &http.Client{
			Timeout: defaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	names := map[string]bool{}
	shown := make([]string, len(o.Subscribers))
	for i, s := range o.Subscribers {
		if s.Name == "" {
			bad("webhook subscriber %d: no name", i+1)
		} else if names[s.Name] {
			bad("webhook subscriber %q: name used twice", s.Name)
		}
		names[s.Name] = true
		u, err := url.Parse(s.URL)
		switch {
		case err != nil:
			bad("webhook subscriber %q: url: %w", s.Name, err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad("webhook subscriber %q: url %q is not an absolute http(s) URL", s.Name, s.URL)
		default:
			shown[i] = u.Redacted()
		}
		if !slices.ContainsFunc(s.Secrets, func(k string) bool { return k != "" }) {
			bad("webhook subscriber %q: no signing secret", s.Name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Registered only now: a failed New leaves the registry as it was, so
	// that the caller can fix the options and try again.
	m := newMetrics(o.Registerer)
	for i, s := range o.Subscribers {
		useCases := slices.Clone(s.UseCases)
		if useCases == nil {
			useCases = []string{} // [] rather than null in JSON
		}
		sub := &subscriber{
			name: s.Name, url: s.URL, shownURL: shown[i],
			secrets: slices.Clone(s.Secrets), useCases: useCases,
			client: d.client, now: o.Now,
			backoff:  backoff.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff},
			maxAge:   o.MaxAge,
			capacity: o.QueueCapacity,
			queue:    list.New(), ready: make(chan struct{}, 1),
			deliveries: make([]*Delivery, 0, min(o.LogSize, 64)), logSize: o.LogSize,
			m:   m.subscriber(s.Name),
			log: log.With("subscriber", s.Name),
		}
		d.subs = append(d.subs, sub)
		d.byName[s.Name] = sub
	}
	return d, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Run delivers every subscriber's queue, each in its own goroutine and in
// order, until ctx ends; it returns once they have stopped. An event cut
// short by ctx goes back to the head of its queue, so a later Run resumes
// it (it may then reach the receiver twice: receivers dedupe). Run must not
// be called again before it has returned.
func (d *Dispatcher) Run(ctx context.Context) {
	if !d.running.CompareAndSwap(false, true) {
		panic("webhook: Dispatcher.Run called while running")
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	for _, s := range d.subs {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	if d.ownsClient {
		// Kept-alive connections would otherwise hold two goroutines each
		// after the dispatcher is done.
		d.client.CloseIdleConnections()
	}
}

// Publish queues ev for every subscriber whose use cases include
// ev.UseCase (every subscriber when either is empty). It never blocks: a
// full queue drops its oldest event. Body is copied.
func (d *Dispatcher) Publish(ev Event) {
	if ev.ID == "" {
		ev.ID = rand.Text() // without an id receivers could not dedupe
	}
	ev.Body = bytes.Clone(ev.Body)
	for _, s := range d.subs {
		if ev.UseCase == "" || len(s.useCases) == 0 || slices.Contains(s.useCases, ev.UseCase) {
			s.push(&pending{ev: ev})
		}
	}
}

// Subscribers returns the state of every subscriber, in configuration
// order.
func (d *Dispatcher) Subscribers() []Status {
	out := make([]Status, 0, len(d.subs))
	for _, s := range d.subs {
		out = append(out, s.status())
	}
	return out
}

// Deliveries returns the delivery log of the named subscriber, newest
// first; false if there is no such subscriber.
func (d *Dispatcher) Deliveries(name string) ([]Delivery, bool) {
	s, ok := d.byName[name]
	if !ok {
		return nil, false
	}
	return s.logCopy(), true
}

// pending is a queued event and, once tried, its log entry and the time of
// its first attempt (for MaxAge, on the runtime's monotonic clock).
type pending struct {
	ev    Event
	rec   *Delivery
	first time.Time
}

type subscriber struct {
	name, url, shownURL string
	secrets, useCases   []string
	client              *http.Client
	now                 func() time.Time
	backoff             backoff.Backoff
	maxAge              time.Duration
	capacity            int
	m                   *subMetrics
	log                 *slog.Logger

	mu         sync.Mutex
	queue      *list.List    // of *pending, oldest first
	ready      chan struct{} // has a value when queue may not be empty
	inFlight   bool
	deliveries []*Delivery // ring of at most logSize entries
	next       int         // where the next entry goes once the ring is full
	logSize    int
	delivered  int
	failed     int
	dropped    int
	lastErr    string
	lastErrAt  time.Time
	lastOK     time.Time

	lastLogged string // the failure last logged; only the run goroutine uses it
}

// push queues p at the tail, dropping the oldest beyond capacity.
func (s *subscriber) push(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue.PushBack(p)
	s.trimLocked()
}

// requeue puts p back at the head: it was first and stays first.
func (s *subscriber) requeue(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight = false
	s.queue.PushFront(p)
	s.trimLocked()
}

func (s *subscriber) trimLocked() {
	for s.queue.Len() > s.capacity {
		p := s.queue.Remove(s.queue.Front()).(*pending)
		s.dropped++
		s.m.dropped.Inc()
		if p.rec == nil {
			p.rec = &Delivery{EventID: p.ev.ID, EventType: p.ev.Type, UseCase: p.ev.UseCase}
			s.appendLocked(p.rec)
		}
		p.rec.Status = StatusDropped
	}
	s.m.queueLength.Set(float64(s.queue.Len()))
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// pop waits for the oldest event; nil once ctx ends.
func (s *subscriber) pop(ctx context.Context) *pending {
	for ctx.Err() == nil { // not another attempt once stopping, queue or not
		s.mu.Lock()
		if s.queue.Len() > 0 {
			p := s.queue.Remove(s.queue.Front()).(*pending)
			s.inFlight = true
			s.m.queueLength.Set(float64(s.queue.Len()))
			s.mu.Unlock()
			return p
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-s.ready:
		}
	}
	return nil
}

func (s *subscriber) run(ctx context.Context) {
	for {
		p := s.pop(ctx)
		if p == nil {
			return
		}
		if !s.deliver(ctx, p) {
			s.requeue(p)
			return
		}
		s.mu.Lock()
		s.inFlight = false
		s.mu.Unlock()
	}
}

// deliver tries p until it is delivered, refused for good or older than
// MaxAge (true), or ctx ends (false: not done with).
func (s *subscriber) deliver(ctx context.Context, p *pending) bool {
	var wait time.Duration
	for {
		if p.first.IsZero() {
			p.first = time.Now()
		}
		at := s.now()
		start := time.Now()
		code, retryAfter, err := s.attempt(ctx, p.ev, at)
		if err != nil && ctx.Err() != nil {
			return false // shutting down, not the subscriber's failure
		}
		s.m.duration.Observe(time.Since(start).Seconds())
		retry := err != nil && retryable(code)
		expired := retry && time.Since(p.first) >= s.maxAge
		switch {
		case err == nil:
			s.m.ok.Inc()
			s.m.delivered.Inc()
		case retry:
			s.m.retry.Inc()
			if expired {
				s.m.failed.Inc()
			}
		default:
			s.m.error.Inc()
			s.m.failed.Inc()
		}
		s.record(p, at, code, err, retry && !expired)
		switch {
		case err == nil:
			if s.lastLogged != "" {
				s.log.Info("webhook subscriber accepts events again")
				s.lastLogged = ""
			}
			return true
		case !retry:
			s.logFailure("webhook refused; not retried", fmt.Sprintf("status %d", code), err, p)
			return true
		case expired:
			s.log.Error("webhook event given up: still failing after max age", "err", err,
				"event_id", p.ev.ID, "max_age", s.maxAge, "attempts", p.rec.Attempts)
			return true
		}
		s.logFailure("webhook failed; retrying", failureKind(code, err), err, p)
		wait = s.backoff.Next(wait)
		sleep := min(max(wait, retryAfter), s.backoff.Max)
		// The last attempt is made at MaxAge rather than a backoff past it.
		sleep = min(sleep, s.maxAge-time.Since(p.first))
		if backoff.Sleep(ctx, max(sleep, 0)) != nil {
			return false
		}
	}
}

// logFailure logs a failure only when it differs from the last one logged,
// so that a subscriber down for hours leaves one line, not thousands.
func (s *subscriber) logFailure(msg, kind string, err error, p *pending) {
	if kind == s.lastLogged {
		return
	}
	s.lastLogged = kind
	s.log.Warn(msg, "err", err, "event_id", p.ev.ID, "attempt", p.rec.Attempts)
}

// failureKind is what makes two failures "the same" for logging: the
// status code, or the transport error's text (stable across attempts).
func failureKind(code int, err error) string {
	if code != 0 {
		return "status " + strconv.Itoa(code)
	}
	return err.Error()
}

// retryable says whether an attempt that ended with code (0: no answer)
// is worth repeating.
func retryable(code int) bool {
	return code == 0 || code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// record writes an attempt's result into p's log entry (made at the first
// attempt) and the subscriber's counts.
func (s *subscriber) record(p *pending, at time.Time, code int, err error, retrying bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.rec == nil {
		p.rec = &Delivery{EventID: p.ev.ID, EventType: p.ev.Type, UseCase: p.ev.UseCase, FirstAttemptAt: at}
		s.appendLocked(p.rec)
	}
	r := p.rec
	r.Attempts++
	r.LastAttemptAt = at
	r.LastStatusCode = code
	switch {
	case err == nil:
		r.Status = StatusDelivered
		r.DeliveredAt = &at
		s.delivered++
		s.lastOK = at
		return
	case retrying:
		r.Status = StatusRetrying
	default:
		r.Status = StatusFailed
		s.failed++
	}
	r.LastError = err.Error()
	s.lastErr = r.LastError
	s.lastErrAt = at
}

func (s *subscriber) appendLocked(r *Delivery) {
	if s.logSize <= 0 {
		return
	}
	if len(s.deliveries) < s.logSize {
		s.deliveries = append(s.deliveries, r)
		return
	}
	s.deliveries[s.next] = r
	s.next = (s.next + 1) % s.logSize
}

func (s *subscriber) logCopy() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.deliveries)
	out := make([]Delivery, 0, n)
	// The newest is just before next (next is 0 until the ring is full).
	for i := range n {
		r := *s.deliveries[(s.next-1-i+2*n)%n]
		if r.DeliveredAt != nil {
			t := *r.DeliveredAt
			r.DeliveredAt = &t
		}
		out = append(out, r)
	}
	return out
}

func (s *subscriber) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Name: s.name, URL: s.shownURL, UseCases: slices.Clone(s.useCases),
		Queued: s.queue.Len(), Delivered: s.delivered, Failed: s.failed, Dropped: s.dropped,
		LastError: s.lastErr,
	}
	if s.inFlight {
		st.Queued++
	}
	if !s.lastErrAt.IsZero() {
		t := s.lastErrAt
		st.LastErrorAt = &t
	}
	if !s.lastOK.IsZero() {
		t := s.lastOK
		st.LastSuccessAt = &t
	}
	return st
}

// attempt POSTs ev once, signed at time at. It returns the answer's status
// (0 when there was none), the wait the subscriber asked for, and an error
// unless the answer was 2xx.
func (s *subscriber) attempt(ctx context.Context, ev Event, at time.Time) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(ev.Body))
	if err != nil {
		return 0, 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderEventID, ev.ID)
	req.Header.Set(HeaderEventType, ev.Type)
	req.Header.Set(HeaderSignature, Sign(s.secrets, at, ev.Body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLen))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBodyLimit))
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return code, 0, nil
	}
	var wait time.Duration
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		wait = retryAfter(resp.Header.Get("Retry-After"), at)
	}
	msg := "http " + resp.Status
	if code >= 300 && code <= 399 {
		msg += " (redirects are not followed)"
	}
	if body := strings.TrimSpace(string(head)); body != "" {
		msg += ": " + strconv.Quote(body)
	}
	return code, wait, errors.New(msg)
}

// retryAfter reads a Retry-After value: seconds, or an HTTP date (counted
// from now); 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		// Capped here too so that a huge value cannot overflow.
		return time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

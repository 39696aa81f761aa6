package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"vigia/internal/meta"
)

// Config is one run.
type Config struct {
	URL    string
	Secret []byte
	// Rate is the target in status events per second; 0 posts as fast as
	// the service answers (closed loop).
	Rate        float64
	Batch       int
	Duration    time.Duration // whole run, warmup included
	Warmup      time.Duration // first part of the run, left out of the report
	Concurrency int
	WABAs       int
	Numbers     int
	Seed        uint64
	Mix         float64
	Timeout     time.Duration
	// PoolBytes bounds the pre-generated bodies; 0 means DefaultPoolBytes.
	PoolBytes int
}

// DefaultPoolBytes bounds the memory of the body pool. A run that needs
// more bodies posts the pool again from the start, which repeats wamids
// (ingest does not mind; downstream deduplication drops the repeats).
const DefaultPoolBytes = 64 << 20

// lateAfter is how far behind its due time a request may start before it
// counts as late: well above timer jitter, well below anything that would
// hide a slow service.
const lateAfter = 10 * time.Millisecond

// maxAnswerBytes bounds what is read of an answer; ingest answers with a
// few dozen bytes.
const maxAnswerBytes = 1 << 20

// NewClient returns the HTTP client of a run: keep-alive connections, as
// many idle ones kept as there can be requests in flight so that no request
// pays a new connection, and no more connections than that.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	t := &http.Transport{
		// Never through a proxy: the tool measures the service it is
		// pointed at, nothing in between.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		MaxConnsPerHost:       concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: 0,
		// Answers are tiny; decompressing them would only cost CPU.
		DisableCompression: true,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		// A redirect would send the load somewhere else than the given URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// answer is the body of ingest's 200.
type answer struct {
	Events      *int `json:"events"`
	DeadLetters int  `json:"dead_letters"`
}

// outcome is what one request produced.
type outcome struct {
	code        int    // 0: no answer
	kind        string // error kind; "" when the answer was a well-formed 200
	events      int
	deadLetters int
	raw         []byte // the answer body, kept only by Once
}

// post sends one body and classifies the answer.
func post(ctx context.Context, c *http.Client, url string, b Body, keep bool) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b.Data))
	if err != nil {
		return outcome{kind: "request"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigia-load/1")
	req.Header.Set(meta.SignatureHeader, b.Signature)
	resp, err := c.Do(req)
	if err != nil {
		return outcome{kind: errorKind(err)}
	}
	// Read the whole answer so that the connection goes back to the pool.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	_ = resp.Body.Close()
	o := outcome{code: resp.StatusCode}
	if keep {
		o.raw = body
	}
	switch {
	case err != nil:
		o.kind = errorKind(err)
	case resp.StatusCode != http.StatusOK:
		o.kind = "http_" + strconv.Itoa(resp.StatusCode)
	default:
		var a answer
		if json.Unmarshal(body, &a) != nil || a.Events == nil {
			o.kind = "bad_answer"
		} else {
			o.events, o.deadLetters = *a.Events, a.DeadLetters
		}
	}
	return o
}

// errorKind names a transport error by what an operator would do about it.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection_closed"
	}
	return "transport"
}

// tally accumulates the outcomes of one part of the run (warmup or
// measured). Requests take a lock to record; at the request rates a single
// ingest can take this costs nothing measurable.
type tally struct {
	mu       sync.Mutex
	latency  Histogram // from due time (open loop) or send time
	lag      Histogram // send time minus due time, open loop only
	late     int64
	requests int64
	ok       int64 // well-formed 200 answers
	byStatus map[int]int64
	noAnswer int64
	errors   map[string]int64
	posted   int64 // statuses in requests answered 200
	accepted int64
	dead     int64
	lastDone time.Time
}

func newTally() *tally {
	return &tally{byStatus: map[int]int64{}, errors: map[string]int64{}}
}

func (t *tally) add(o outcome, statuses int, due, sent, done time.Time, open bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.latency.Record(done.Sub(due))
	if open {
		lag := sent.Sub(due)
		t.lag.Record(lag)
		if lag > lateAfter {
			t.late++
		}
	}
	if o.code == 0 {
		t.noAnswer++
	} else {
		t.byStatus[o.code]++
	}
	if o.kind != "" {
		t.errors[o.kind]++
	} else {
		t.ok++
	}
	if o.code == http.StatusOK {
		t.posted += int64(statuses)
		t.accepted += int64(o.events)
		t.dead += int64(o.deadLetters)
	}
	if done.After(t.lastDone) {
		t.lastDone = done
	}
}

// job is one request handed to a worker: which body, and when it was due
// (zero in closed loop, where a request is due when a worker is free).
type job struct {
	i   int64
	due time.Time
}

// Run generates the body pool, then posts for cfg.Duration and reports.
// Cancelling ctx ends the run early (the report says so); requests in
// flight still finish, bounded by cfg.Timeout. The error is for a run that
// could not start.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.PoolBytes <= 0 {
		cfg.PoolBytes = DefaultPoolBytes
	}
	genStart := time.Now()
	g := NewGenerator(cfg.Seed, cfg.WABAs, cfg.Numbers, cfg.Mix, time.Now)
	first, err := g.Batch(cfg.Batch, cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("generate payload: %w", err)
	}
	size := poolSize(cfg, len(first.Data))
	rest, err := BuildPool(ctx, g, cfg.Secret, cfg.Batch, size-1)
	if err != nil {
		return nil, fmt.Errorf("generate payload: %w", err)
	}
	pool := append([]Body{first}, rest...)
	genTime := time.Since(genStart)

	client := NewClient(cfg.Concurrency, cfg.Timeout)
	defer client.CloseIdleConnections()

	open := cfg.Rate > 0
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := start.Add(cfg.Duration)
	warm, measured := newTally(), newTally()

	jobs := make(chan job)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				sent := time.Now()
				due := j.due
				if !open {
					due = sent
				}
				b := pool[j.i%int64(len(pool))]
				// Requests are not tied to ctx: an interrupted run lets
				// those in flight finish so that their answers count.
				o := post(context.Background(), client, cfg.URL, b, false)
				done := time.Now()
				t := measured
				if due.Before(measureFrom) {
					t = warm
				}
				t.add(o, b.Statuses, due, sent, done, open)
			}
		})
	}

	runCtx, cancel := context.WithDeadline(ctx, end)
	var p pace
	var dispatched, planned int64
	if open {
		p = newPace(start, cfg.Rate, cfg.Batch)
		planned = p.due(cfg.Duration)
		dispatched = schedule(runCtx, p, planned, jobs)
	} else {
	feed:
		for runCtx.Err() == nil {
			select {
			case jobs <- job{i: dispatched}:
				dispatched++
			case <-runCtx.Done():
				break feed
			}
		}
	}
	cancel()
	close(jobs)
	wg.Wait()
	stopped := time.Now()

	r := &Report{
		URL:         cfg.URL,
		Seed:        cfg.Seed,
		Batch:       cfg.Batch,
		Concurrency: cfg.Concurrency,
		Warmup: WarmupReport{
			Seconds:  cfg.Warmup.Seconds(),
			Requests: warm.requests,
			Failed:   warm.requests - warm.ok,
		},
		Pool: PoolReport{
			Bodies:          len(pool),
			Statuses:        len(pool) * cfg.Batch,
			BytesPerBody:    len(first.Data),
			GenerateSeconds: genTime.Seconds(),
			Reused:          dispatched > int64(len(pool)),
		},
		Interrupted: ctx.Err() != nil,
	}
	r.fill(measured)
	// The measured window is the planned one, or longer when the last
	// answers came after it; a run cut short by ctx ends when it stopped.
	windowEnd := end
	if r.Interrupted {
		windowEnd = stopped
	}
	if measured.lastDone.After(windowEnd) {
		windowEnd = measured.lastDone
	}
	window := windowEnd.Sub(measureFrom)
	if window > 0 {
		r.DurationSeconds = window.Seconds()
		r.EventsPerSecond = float64(r.EventsAccepted) / window.Seconds()
		r.RequestsPerSecond = float64(r.Requests) / window.Seconds()
	}
	if open {
		var lag Histogram
		lag.Merge(&warm.lag)
		lag.Merge(&measured.lag)
		s := &ScheduleReport{
			TargetEventsPerSecond:   cfg.Rate,
			TargetRequestsPerSecond: p.requestsPerSecond(),
			Planned:                 planned,
			Late:                    warm.late + measured.late,
			MaxLagMs:                ms(lag.Max()),
			P99LagMs:                ms(lag.Quantile(0.99)),
		}
		if !r.Interrupted {
			// Due before the end but never handed to a worker: every
			// slot was busy until the run was over.
			s.Missed = planned - dispatched
		}
		s.FellBehind = s.Missed > 0 || s.Late*100 > int64(lag.Count())
		r.Mode = "open"
		r.Schedule = s
		r.Latency.From = "due time"
	} else {
		r.Mode = "closed"
		r.Latency.From = "send time"
	}
	return r, nil
}

// schedule hands job i to a worker at its due time, or as soon after as a
// worker is free, until planned jobs are out or ctx ends; it returns how
// many it handed out. A job that waited keeps its due time, so that the
// wait shows in its latency instead of disappearing (coordinated omission).
func schedule(ctx context.Context, p pace, planned int64, jobs chan<- job) int64 {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var i int64
	for ; i < planned; i++ {
		due := p.at(i)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return i
			}
		}
		select {
		case jobs <- job{i: i, due: due}:
		case <-ctx.Done():
			return i
		}
	}
	return i
}

// poolSize is how many bodies to generate: enough for every request of an
// open-loop run when that fits in cfg.PoolBytes, else as many as fit.
func poolSize(cfg Config, bodyBytes int) int {
	n := max(cfg.PoolBytes/max(bodyBytes, 1), 1)
	if cfg.Rate > 0 {
		need := newPace(time.Time{}, cfg.Rate, cfg.Batch).due(cfg.Duration)
		n = int(min(int64(n), max(need, 1)))
	}
	return n
}

// Once posts a single freshly generated batch and returns what came back,
// for demos: the answer body is kept.
func Once(ctx context.Context, cfg Config) (*OnceReport, error) {
	g := NewGenerator(cfg.Seed, cfg.WABAs, cfg.Numbers, cfg.Mix, time.Now)
	b, err := g.Batch(cfg.Batch, cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("generate payload: %w", err)
	}
	client := NewClient(1, cfg.Timeout)
	defer client.CloseIdleConnections()
	sent := time.Now()
	o := post(ctx, client, cfg.URL, b, true)
	r := &OnceReport{
		URL:       cfg.URL,
		Statuses:  b.Statuses,
		Bytes:     len(b.Data),
		Status:    o.code,
		LatencyMs: ms(time.Since(sent)),
		Error:     o.kind,
		Events:    o.events,
	}
	if json.Valid(o.raw) {
		r.Answer = json.RawMessage(bytes.TrimSpace(o.raw))
	} else if len(o.raw) > 0 {
		r.Answer, _ = json.Marshal(string(o.raw))
	}
	return r, nil
}

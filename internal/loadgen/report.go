package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of a run. Everything except Warmup covers only the
// requests due after the warmup.
type Report struct {
	URL         string `json:"url"`
	Mode        string `json:"mode"` // "open": paced at -rate; "closed": as fast as answered
	Seed        uint64 `json:"seed"`
	Batch       int    `json:"batch"`
	Concurrency int    `json:"concurrency"`
	// DurationSeconds is the measured window: from the end of the warmup to
	// the end of the run or the last answer, whichever is later.
	DurationSeconds float64          `json:"duration_s"`
	Requests        int64            `json:"requests"`
	OK              int64            `json:"ok"` // well-formed 200 answers
	ByStatus        map[string]int64 `json:"by_status"`
	NoAnswer        int64            `json:"no_answer"` // transport errors, timeouts
	// StatusesPosted counts the statuses in requests answered 200;
	// EventsAccepted sums their "events" and DeadLetters their
	// "dead_letters", so the three agree when ingest took every status.
	StatusesPosted    int64            `json:"statuses_posted"`
	EventsAccepted    int64            `json:"events_accepted"`
	DeadLetters       int64            `json:"dead_letters"`
	EventsPerSecond   float64          `json:"events_per_s"`
	RequestsPerSecond float64          `json:"requests_per_s"`
	Latency           LatencyReport    `json:"latency"`
	Errors            map[string]int64 `json:"errors"`
	Schedule          *ScheduleReport  `json:"schedule,omitempty"` // open loop only
	Warmup            WarmupReport     `json:"warmup"`
	Pool              PoolReport       `json:"pool"`
	Interrupted       bool             `json:"interrupted,omitempty"`
}

// LatencyReport is the answer latency in milliseconds. In open loop it runs
// from the time a request was due, so time spent waiting for a free slot
// counts; in closed loop from the time it was sent.
type LatencyReport struct {
	From   string  `json:"from"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// ScheduleReport says whether the tool kept to -rate. It covers the whole
// run, warmup included: falling behind there delays the measured part too.
// FellBehind is set when due requests were never sent, or more than 1 % of
// them started late.
type ScheduleReport struct {
	TargetEventsPerSecond   float64 `json:"target_events_per_s"`
	TargetRequestsPerSecond float64 `json:"target_requests_per_s"`
	Planned                 int64   `json:"planned"` // requests due in the run
	Missed                  int64   `json:"missed"`  // due but never sent: no slot freed before the end
	Late                    int64   `json:"late"`    // sent more than 10 ms after their due time
	MaxLagMs                float64 `json:"max_lag_ms"`
	P99LagMs                float64 `json:"p99_lag_ms"`
	FellBehind              bool    `json:"fell_behind"`
}

// WarmupReport counts the requests left out of the report.
type WarmupReport struct {
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	Failed   int64   `json:"failed"` // not a well-formed 200
}

// PoolReport describes the pre-generated bodies.
type PoolReport struct {
	Bodies          int     `json:"bodies"`
	Statuses        int     `json:"statuses"` // distinct wamids
	BytesPerBody    int     `json:"bytes_per_body"`
	GenerateSeconds float64 `json:"generate_s"`
	Reused          bool    `json:"reused"` // more requests than bodies: wamids repeat
}

// OnceReport is the outcome of -once.
type OnceReport struct {
	URL       string          `json:"url"`
	Statuses  int             `json:"statuses"`
	Bytes     int             `json:"bytes"`
	Status    int             `json:"status"` // 0: no answer
	LatencyMs float64         `json:"latency_ms"`
	Events    int             `json:"events"`
	Answer    json.RawMessage `json:"answer,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// OK reports whether every request of the run, warmup included, got a
// well-formed 200, and there was at least one.
func (r *Report) Success() bool {
	return r.Requests > 0 && r.OK == r.Requests && r.Warmup.Failed == 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *Report) fill(t *tally) {
	r.Requests, r.OK, r.NoAnswer = t.requests, t.ok, t.noAnswer
	r.ByStatus = map[string]int64{}
	for code, n := range t.byStatus {
		r.ByStatus[strconv.Itoa(code)] = n
	}
	r.Errors = maps.Clone(t.errors)
	r.StatusesPosted, r.EventsAccepted, r.DeadLetters = t.posted, t.accepted, t.dead
	h := &t.latency
	r.Latency = LatencyReport{
		P50Ms: ms(h.Quantile(0.50)), P90Ms: ms(h.Quantile(0.90)), P99Ms: ms(h.Quantile(0.99)),
		MaxMs: ms(h.Max()), MinMs: ms(h.Min()), MeanMs: ms(h.Mean()),
	}
}

// counts formats a map as "k: v, k: v" in key order.
func counts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteText writes the report for a human.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "vigia-load: POST %s\n", r.URL)
	if s := r.Schedule; s != nil {
		fmt.Fprintf(&b, "  mode        open loop: %g events/s = %.2f requests/s of %d statuses, concurrency %d\n",
			s.TargetEventsPerSecond, s.TargetRequestsPerSecond, r.Batch, r.Concurrency)
	} else {
		fmt.Fprintf(&b, "  mode        closed loop: as fast as answered, batches of %d, concurrency %d\n", r.Batch, r.Concurrency)
	}
	fmt.Fprintf(&b, "  measured    %.2fs after %gs warmup (%d warmup requests not counted, %d of them failed)\n",
		r.DurationSeconds, r.Warmup.Seconds, r.Warmup.Requests, r.Warmup.Failed)
	fmt.Fprintf(&b, "  requests    %d (%s", r.Requests, counts(r.ByStatus))
	if r.NoAnswer > 0 {
		if len(r.ByStatus) > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "no answer: %d", r.NoAnswer)
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "  statuses    %d posted in 200 answers, %d events accepted, %d dead letters\n",
		r.StatusesPosted, r.EventsAccepted, r.DeadLetters)
	fmt.Fprintf(&b, "  throughput  %.1f events/s, %.2f requests/s\n", r.EventsPerSecond, r.RequestsPerSecond)
	l := r.Latency
	fmt.Fprintf(&b, "  latency     p50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms  (mean %.3fms, from %s)\n",
		l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.MeanMs, l.From)
	if len(r.Errors) == 0 {
		b.WriteString("  errors      none\n")
	} else {
		fmt.Fprintf(&b, "  errors      %s\n", counts(r.Errors))
	}
	reuse := "each wamid posted once"
	if r.Pool.Reused {
		reuse = "reused: wamids repeat"
	}
	fmt.Fprintf(&b, "  pool        %d bodies of %d bytes, %d distinct statuses, generated in %.2fs (%s)\n",
		r.Pool.Bodies, r.Pool.BytesPerBody, r.Pool.Statuses, r.Pool.GenerateSeconds, reuse)
	fmt.Fprintf(&b, "  seed        %d\n", r.Seed)
	if s := r.Schedule; s != nil {
		fmt.Fprintf(&b, "  schedule    %d due, %d missed, %d late (>10ms), lag p99 %.3fms max %.3fms\n",
			s.Planned, s.Missed, s.Late, s.P99LagMs, s.MaxLagMs)
		if s.FellBehind {
			fmt.Fprintf(&b, "WARNING: could not keep up with -rate: %d requests started more than 10ms late (max %.3fms)\n"+
				"  and %d due requests were never sent, because every -concurrency slot was busy or the tool\n"+
				"  was short of CPU. The service got a burstier or smaller load than asked; latencies include\n"+
				"  the wait. Raise -concurrency or lower -rate.\n", s.Late, s.MaxLagMs, s.Missed)
		}
	}
	if r.Interrupted {
		b.WriteString("NOTE: interrupted before -duration; the figures cover the part that ran.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes the -once outcome for a human.
func (r *OnceReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s: %d statuses, %d bytes\n", r.URL, r.Statuses, r.Bytes)
	if r.Status == 0 {
		fmt.Fprintf(&b, "no answer after %.3fms: %s\n", r.LatencyMs, r.Error)
	} else {
		fmt.Fprintf(&b, "answer %d %s in %.3fms: %s\n", r.Status, http.StatusText(r.Status), r.LatencyMs, r.Answer)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

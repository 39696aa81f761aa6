// Package sink turns records of the Kafka topics into batched ClickHouse
// inserts: events, alerts, actions and (optionally) raw payloads, each
// into its table, with where each record came from (partition, offset).
//
// A batch is written when it holds BatchRows rows or its oldest row has
// waited BatchWait (ClickHouse advises 10,000 to 100,000 rows, or about a
// second, per insert). An insert that fails is retried with the same rows
// and the same deduplication token until ClickHouse takes it, so that a
// retry whose first attempt did land is dropped by ClickHouse rather than
// stored twice. The caller commits Kafka offsets only after Flush (or
// Write) returned them, so nothing is acknowledged that ClickHouse does
// not hold.
//
// Decoding a batch and inserting the previous one can overlap: Seal takes
// the waiting batches out, Write inserts them on another goroutine while
// Add fills new batches, and Written hands them back. On chDB, which
// inserts in this process, that puts the decoding on the second core.
package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/backoff"
	"vigia/internal/event"
	"vigia/internal/store"
)

// Inserter is what the sink needs of the store.
type Inserter interface {
	Insert(ctx context.Context, table, token string, v *store.Values) error
}

// Table names the sink writes, which are also the sources of
// store.Progress.
const (
	TableEvents  = "events"
	TableAlerts  = "alerts"
	TableActions = "actions"
	TableRaw     = "raw_payloads"
)

// Options configure a Sink.
type Options struct {
	// Topics maps each Kafka topic to the table its records go to.
	Topics     map[string]string
	BatchRows  int
	BatchWait  time.Duration
	MinBackoff time.Duration // first wait before retrying an insert (then doubling)
	MaxBackoff time.Duration
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

type batch struct {
	table   string
	values  *store.Values
	ranges  map[string]map[int][2]int64 // topic → partition → first, last offset
	firstAt time.Time                   // when its oldest row was added
	oldest  time.Time                   // Kafka time of its oldest record, for the lag
}

// Sink accumulates records into per-table batches. It is not safe for
// concurrent use: one goroutine adds, seals and flushes; only Write may
// run on another goroutine, on batches already sealed.
type Sink struct {
	o       Options
	ins     Inserter
	batches map[string]*batch // by table
	free    map[string]*batch // by table: written batches kept for their buffers
	sealed  map[*Sealed]bool  // being written, for the lag
	retry   backoff.Backoff
	now     func() time.Time
	m       metrics
}

type metrics struct {
	rows, inserts, failures, undecodable *prometheus.CounterVec
	duration                             *prometheus.HistogramVec
	batchRows                            prometheus.Histogram
	lag                                  prometheus.Gauge
}

// New returns a sink writing through ins.
func New(ins Inserter, o Options) *Sink {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	f := promauto.With(o.Registerer)
	byTable := []string{"table"}
	s := &Sink{o: o, ins: ins, batches: map[string]*batch{}, free: map[string]*batch{}, sealed: map[*Sealed]bool{}, now: time.Now,
		retry: backoff.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff}, m: metrics{
			rows: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_sink_rows_total",
				Help: "Rows ClickHouse acknowledged, by table."}, byTable),
			inserts: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_sink_inserts_total",
				Help: "Inserts ClickHouse acknowledged, by table."}, byTable),
			failures: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_sink_insert_failures_total",
				Help: "Inserts that failed (each is retried until it succeeds), by table."}, byTable),
			undecodable: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_sink_undecodable_total",
				Help: "Records that could not be decoded and were skipped (they stay in Kafka), by table."}, byTable),
			duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "vigia_sink_insert_duration_seconds",
				Help: "Time one insert took.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, byTable),
			batchRows: f.NewHistogram(prometheus.HistogramOpts{Name: "vigia_sink_batch_rows",
				Help: "Rows per insert.", Buckets: prometheus.ExponentialBuckets(10, 4, 8)}),
			lag: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_sink_lag_seconds",
				Help: "Age of the oldest record not yet in ClickHouse (0 when none waits)."}),
		}}
	for _, t := range []string{TableEvents, TableAlerts, TableActions, TableRaw} {
		for _, c := range []*prometheus.CounterVec{s.m.rows, s.m.inserts, s.m.failures, s.m.undecodable} {
			c.WithLabelValues(t)
		}
	}
	return s
}

// Reset drops every batch without writing it: a new consumer generation
// reads those records again.
func (s *Sink) Reset() {
	clear(s.batches)
	clear(s.sealed)
	s.m.lag.Set(0)
}

func (s *Sink) batchFor(table string) *batch {
	b := s.batches[table]
	if b == nil && s.free[table] != nil {
		b = s.free[table]
		delete(s.free, table)
		s.batches[table] = b
	}
	if b == nil {
		var cols []string
		switch table {
		case TableEvents:
			cols = store.EventColumns
		case TableAlerts:
			cols = store.AlertColumns
		case TableActions:
			cols = store.ActionColumns
		case TableRaw:
			cols = store.RawColumns
		}
		b = &batch{table: table, values: store.NewValues(cols...), ranges: map[string]map[int][2]int64{}}
		s.batches[table] = b
	}
	return b
}

// Add decodes m and adds it to its table's batch. A record that cannot be
// decoded is counted and skipped; it still counts as handled for the
// offsets Flush returns.
func (s *Sink) Add(m *kafka.Message) {
	table := s.o.Topics[m.Topic]
	b := s.batchFor(table)
	if len(b.ranges) == 0 {
		b.firstAt, b.oldest = s.now(), m.Time
	}
	o := store.Origin{Partition: m.Partition, Offset: m.Offset}
	if !s.decode(table, m, b.values, o) {
		s.m.undecodable.WithLabelValues(table).Inc()
		s.o.Log.Warn("undecodable record skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
	}
	r := b.ranges[m.Topic]
	if r == nil {
		r = map[int][2]int64{}
		b.ranges[m.Topic] = r
	}
	if cur, ok := r[m.Partition]; ok {
		r[m.Partition] = [2]int64{cur[0], m.Offset}
	} else {
		r[m.Partition] = [2]int64{m.Offset, m.Offset}
	}
}

func (s *Sink) decode(table string, m *kafka.Message, v *store.Values, o store.Origin) bool {
	switch table {
	case TableEvents:
		var ev event.Event
		if event.Decode(m.Value, &ev) != nil || ev.SchemaVersion > event.SchemaVersion || ev.ID == "" {
			return false
		}
		store.AppendDecodedEvent(v, &ev, o)
	case TableAlerts:
		var a alert.Alert
		if json.Unmarshal(m.Value, &a) != nil || a.SchemaVersion != alert.SchemaVersion || a.Fingerprint == "" {
			return false
		}
		store.AppendAlert(v, &a, o)
	case TableActions:
		var r action.Record
		if json.Unmarshal(m.Value, &r) != nil || r.SchemaVersion != action.SchemaVersion || r.ID == "" {
			return false
		}
		store.AppendAction(v, &r, o)
	case TableRaw:
		h := make(map[string]string, len(m.Headers))
		for _, kv := range m.Headers {
			h[kv.Key] = string(kv.Value)
		}
		store.AppendRaw(v, m.Time, string(m.Key), h, m.Value, o)
	default:
		return false
	}
	return true
}

// Full reports whether some batch reached BatchRows.
func (s *Sink) Full() bool {
	for _, b := range s.batches {
		if b.values.Rows() >= s.o.BatchRows {
			return true
		}
	}
	return false
}

// Due reports whether some batch is full or has waited BatchWait.
func (s *Sink) Due() bool {
	now := s.now()
	for _, b := range s.batches {
		if len(b.ranges) > 0 && (b.values.Rows() >= s.o.BatchRows || now.Sub(b.firstAt) >= s.o.BatchWait) {
			return true
		}
	}
	return false
}

// Lag updates the lag gauge: the Kafka age of the oldest waiting record.
func (s *Sink) Lag() {
	var oldest time.Time
	older := func(t time.Time) {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	for _, b := range s.batches {
		if len(b.ranges) > 0 {
			older(b.oldest)
		}
	}
	for p := range s.sealed {
		older(p.oldest)
	}
	if oldest.IsZero() {
		s.m.lag.Set(0)
		return
	}
	s.m.lag.Set(s.now().Sub(oldest).Seconds())
}

// Flush inserts every waiting batch, each retried until ClickHouse takes
// it or ctx ends, and returns the offsets to commit: per topic and
// partition, the offset after the last record now in ClickHouse. The
// batches not written when ctx ends stay in the sink.
func (s *Sink) Flush(ctx context.Context) (map[string]map[int]int64, error) {
	p := s.Seal()
	commit, err := s.Write(ctx, p)
	for _, b := range p.batches {
		if len(b.ranges) > 0 { // not written
			s.batches[b.table] = b
		}
	}
	s.Written(p)
	s.Lag()
	return commit, err
}

// Sealed holds batches taken out of the sink to be written.
type Sealed struct {
	batches []*batch  // by table name
	oldest  time.Time // Kafka time of the oldest record
}

// Rows is the number of rows sealed.
func (p *Sealed) Rows() int {
	n := 0
	for _, b := range p.batches {
		n += b.values.Rows()
	}
	return n
}

// Empty reports whether nothing was sealed.
func (p *Sealed) Empty() bool { return len(p.batches) == 0 }

// Seal takes the waiting batches out of the sink, which starts new ones,
// and returns them for Write. They count in the lag until Written.
func (s *Sink) Seal() *Sealed {
	p := &Sealed{}
	for t, b := range s.batches {
		if len(b.ranges) == 0 {
			continue
		}
		p.batches = append(p.batches, b)
		if p.oldest.IsZero() || b.oldest.Before(p.oldest) {
			p.oldest = b.oldest
		}
		delete(s.batches, t)
	}
	slices.SortFunc(p.batches, func(a, b *batch) int { return strings.Compare(a.table, b.table) })
	s.sealed[p] = true
	return p
}

// Write inserts the sealed batches, each retried until ClickHouse takes
// it or ctx ends, and returns the offsets to commit (as Flush). It may
// run on another goroutine than the one adding records: it touches only
// the sealed batches.
func (s *Sink) Write(ctx context.Context, p *Sealed) (map[string]map[int]int64, error) {
	commit := map[string]map[int]int64{}
	for _, b := range p.batches {
		if len(b.ranges) == 0 {
			continue
		}
		if err := s.insert(ctx, b); err != nil {
			return commit, err
		}
		for topic, parts := range b.ranges {
			if commit[topic] == nil {
				commit[topic] = map[int]int64{}
			}
			for p, r := range parts {
				commit[topic][p] = r[1] + 1
			}
		}
		b.values.Reset()
		clear(b.ranges)
		b.firstAt, b.oldest = time.Time{}, time.Time{}
	}
	return commit, nil
}

// Written hands back sealed batches once Write returned: they no longer
// count in the lag, and the sink reuses their buffers.
func (s *Sink) Written(p *Sealed) {
	delete(s.sealed, p)
	for _, b := range p.batches {
		if len(b.ranges) == 0 && s.batches[b.table] != b {
			s.free[b.table] = b
		}
	}
}

func (s *Sink) insert(ctx context.Context, b *batch) error {
	if b.values.Rows() == 0 { // only undecodable records: nothing to write
		return nil
	}
	token := batchToken(b)
	var wait time.Duration
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.ins.Insert(ctx, b.table, token, b.values)
		if err == nil {
			s.m.duration.WithLabelValues(b.table).Observe(time.Since(start).Seconds())
			s.m.inserts.WithLabelValues(b.table).Inc()
			s.m.rows.WithLabelValues(b.table).Add(float64(b.values.Rows()))
			s.m.batchRows.Observe(float64(b.values.Rows()))
			if attempt > 1 {
				s.o.Log.Info("insert succeeded after retries", "table", b.table, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.m.failures.WithLabelValues(b.table).Inc()
		if attempt == 1 || attempt%10 == 0 { // a repeated failure, logged now and then
			s.o.Log.Warn("insert failed; retrying", "table", b.table, "rows", b.values.Rows(), "attempt", attempt, "err", err)
		}
		wait = s.retry.Next(wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// batchToken names a batch by the offsets it covers: the same records give
// the same token, so ClickHouse drops an insert retried after it landed.
func batchToken(b *batch) string {
	var parts []string
	for topic, ps := range b.ranges {
		for p, r := range ps {
			parts = append(parts, topic+":"+strconv.Itoa(p)+":"+strconv.FormatInt(r[0], 10)+"-"+strconv.FormatInt(r[1], 10))
		}
	}
	slices.Sort(parts)
	return fmt.Sprintf("vigia-sink/%s/%s", b.table, strings.Join(parts, ","))
}

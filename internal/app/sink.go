package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"vigia/internal/config"
	"vigia/internal/kafkaio"
	"vigia/internal/problem"
	"vigia/internal/sink"
	"vigia/internal/store"
)

// SinkFlushCheck is how often the sink looks for a batch that waited
// long enough.
var SinkFlushCheck = 100 * time.Millisecond

// Sink is the ClickHouse sink service: its own consumer group on the
// events, alerts and actions topics (and the raw topic when archived),
// batched inserts, offsets committed after ClickHouse acknowledged.
// Alerting never waits on it: when ClickHouse is down the sink retries,
// its consumer group lags, and it catches up when ClickHouse is back.
type Sink struct {
	cfg     config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	brokers []string
	store   *store.Store
	ins     sink.Inserter
	topics  map[string]string // topic → table
	sk      *sink.Sink

	server   *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ready    atomic.Bool
}

// NewSink builds the service on an open, migrated store. ins is where
// rows go: the store itself, or (tests) a wrapper around it.
func NewSink(cfg config.Config, log *slog.Logger, st *store.Store, ins sink.Inserter) *Sink {
	s := &Sink{cfg: cfg, log: log, reg: newRegistry(), brokers: cfg.Kafka.Brokers, store: st, ins: ins,
		topics: map[string]string{
			cfg.Kafka.EventsTopic:     sink.TableEvents,
			cfg.Evaluator.AlertsTopic: sink.TableAlerts,
			cfg.Kafka.ActionsTopic:    sink.TableActions,
		}}
	if cfg.ClickHouse.Sink.ArchiveRaw {
		s.topics[cfg.Kafka.RawTopic] = sink.TableRaw
	}
	if len(s.brokers) == 0 {
		s.brokers = []string{fmt.Sprintf("127.0.0.1:%d", cfg.Kafka.Embedded.Port)}
	}
	bs := cfg.ClickHouse.Sink
	s.sk = sink.New(ins, sink.Options{Topics: s.topics, BatchRows: bs.BatchRows, BatchWait: bs.BatchWait,
		MaxBackoff: bs.MaxBackoff, Log: log, Registerer: s.reg})
	return s
}

// OpenStore opens the configured store and applies the migrations and
// retention.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.Store, error) {
	ch := cfg.ClickHouse
	st, err := store.Open(ctx, store.Options{Addr: ch.Addr, Database: ch.Database, Username: ch.Username,
		Password: ch.Password, Path: ch.Path})
	if err != nil {
		return nil, err
	}
	applied, err := st.Migrate(ctx, store.Retention{Events: ch.EventsTTL, Recipient: ch.RecipientTTL,
		Rollups: ch.RollupsTTL, Alerts: ch.AlertsTTL, Raw: ch.RawTTL})
	if err != nil {
		st.Close()
		return nil, err
	}
	log.Info("clickhouse store open", "engine", st.Engine(), "database", st.Database(), "migrations_applied", applied)
	return st, nil
}

// Registry exposes the metrics registry (tests).
func (s *Sink) Registry() *prometheus.Registry { return s.reg }

// Addr is the HTTP address after Start.
func (s *Sink) Addr() string { return s.listener.Addr().String() }

// Start creates the topics if needed, serves HTTP and joins the group.
func (s *Sink) Start(ctx context.Context) error {
	k := s.cfg.Kafka
	ctx, s.cancel = context.WithCancel(ctx)
	if k.CreateTopics {
		specs := []kafkaio.TopicSpec{
			{Name: k.EventsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: k.EventsRetention},
			{Name: s.cfg.Evaluator.AlertsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: s.cfg.Evaluator.AlertsRetention},
			{Name: k.ActionsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: s.cfg.Evaluator.AlertsRetention},
		}
		if s.cfg.ClickHouse.Sink.ArchiveRaw {
			specs = append(specs, kafkaio.TopicSpec{Name: k.RawTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: k.RawRetention})
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := kafkaio.EnsureTopics(sctx, s.brokers, specs)
		cancel()
		if err != nil {
			return fmt.Errorf("sink topics: %w", err)
		}
	}
	srv, ln, err := serveHTTP("clickhouse.sink.listen", s.cfg.ClickHouse.Sink.Listen, s.routes(), s.log, &s.wg)
	if err != nil {
		return err
	}
	s.server, s.listener = srv, ln
	topics := make([]string, 0, len(s.topics))
	for t := range s.topics {
		topics = append(topics, t)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		consumeGroup(ctx, s.log, s.brokers, s.cfg.ClickHouse.Sink.GroupID, topics, s.runGeneration)
	}()
	s.log.Info("sink started", "addr", ln.Addr().String(), "brokers", s.brokers, "topics", topics, "engine", s.store.Engine())
	return nil
}

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	opsRoutes(mux, s.reg, &s.ready, "joining the consumer group")
	// Embedded chDB locks its data path, so while the sink runs it is the
	// only way to the history: a read-only SQL endpoint for analysts and
	// scripts (a ClickHouse server has its own interfaces).
	mux.HandleFunc("GET /api/v1/query", s.query)
	mux.HandleFunc("POST /api/v1/query", s.query)
	return mux
}

// maxQueryBytes bounds the SQL text of /api/v1/query.
const maxQueryBytes = 64 << 10

// query runs one read-only statement (SELECT, WITH, SHOW, DESCRIBE,
// EXPLAIN, EXISTS) from ?query= or the request body and answers its rows
// as TabSeparated text.
func (s *Sink) query(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("query")
	if q == "" && r.Method == http.MethodPost {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxQueryBytes))
		if err != nil {
			problem.Write(w, http.StatusRequestEntityTooLarge, "query too large", fmt.Sprintf("at most %d bytes", maxQueryBytes))
			return
		}
		q = string(b)
	}
	q = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(q), ";"))
	first, _, _ := strings.Cut(strings.ToUpper(q), " ")
	first, _, _ = strings.Cut(first, "\n")
	switch first {
	case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS":
	case "":
		problem.Write(w, http.StatusBadRequest, "no query", "send SQL in ?query= or as the request body")
		return
	default:
		problem.Write(w, http.StatusForbidden, "read-only endpoint", "only SELECT, WITH, SHOW, DESCRIBE, EXPLAIN and EXISTS statements run here")
		return
	}
	var out []byte
	err := s.store.Select(r.Context(), q, func(f [][]byte) error {
		for i, x := range f {
			if i > 0 {
				out = append(out, '\t')
			}
			out = store.AppendTSVField(out, x)
		}
		out = append(out, '\n')
		return nil
	})
	if err != nil {
		problem.Write(w, http.StatusBadRequest, "query failed", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/tab-separated-values; charset=utf-8")
	_, _ = w.Write(out)
}

// runGeneration reads the assigned partitions from where ClickHouse's
// progress and the committed offsets say, batches, inserts, commits.
func (s *Sink) runGeneration(ctx context.Context, gen *kafka.Generation) {
	var progress map[string]map[int]int64
	for {
		var err error
		if progress, err = s.store.Progress(ctx); err == nil || ctx.Err() != nil {
			break
		}
		s.log.Warn("reading sink progress from ClickHouse; retrying", "err", err)
		time.Sleep(time.Second)
	}
	sk := s.sk
	sk.Reset() // what the last generation read but did not write is read again
	genCtx, stop := context.WithCancel(ctx)
	box := newInbox(s.cfg.ClickHouse.Sink.BatchRows * 2)
	var waits []func()
	for topic, as := range gen.Assignments {
		from := map[int]int64{}
		for _, pa := range as {
			from[pa.ID] = pa.Offset
			if off, ok := progress[s.topics[topic]][pa.ID]; ok {
				if pa.Offset < off+1 {
					from[pa.ID] = off + 1 // stored, though the commit did not happen: do not insert again
				}
			}
			if from[pa.ID] < 0 {
				from[pa.ID] = kafka.FirstOffset
			}
		}
		waits = append(waits, readPartitions(genCtx, s.log, s.brokers, topic, from, 16<<20, box))
	}
	s.ready.Store(true)
	s.log.Info("generation joined", "generation", gen.ID, "assignments", len(gen.Assignments))
	committed := map[string]map[int]int64{}
	tick := time.NewTicker(SinkFlushCheck)
	genDone := generationDone(gen)

	// One write in flight at a time, on its own goroutine, while this one
	// decodes the next batch. Offsets are committed when a write returns,
	// in order.
	type result struct {
		offsets map[string]map[int]int64
		err     error
	}
	var (
		writing *sink.Sealed
		written chan result
	)
	writeCtx, cancelWrites := context.WithCancel(ctx)
	finish := func(r result) bool {
		sk.Written(writing)
		writing = nil
		for topic, ps := range r.offsets {
			if err := commitChanged(gen, topic, ps, ensure(committed, topic)); err != nil {
				s.log.Warn("commit offsets", "err", err)
			}
		}
		sk.Lag()
		return r.err == nil
	}
	// wait waits for the write in flight, keeping the lag gauge current
	// (ClickHouse may be down for minutes); false when the generation or
	// the service ends first.
	wait := func() bool {
		for writing != nil {
			select {
			case r := <-written:
				if !finish(r) {
					return false
				}
			case <-tick.C:
				sk.Lag()
			case <-ctx.Done():
				return false
			case <-genDone:
				return false
			}
		}
		return true
	}
	flush := func() bool {
		if !wait() {
			return false
		}
		p := sk.Seal()
		if p.Empty() {
			sk.Written(p)
			return true
		}
		writing, written = p, make(chan result, 1)
		go func(p *sink.Sealed, out chan<- result) {
			offs, err := sk.Write(writeCtx, p)
			out <- result{offs, err}
		}(p, written)
		return true
	}
	defer func() {
		tick.Stop()
		// A write in flight stops retrying; if it landed, its offsets
		// are committed (the generation may be over: then the next owner
		// skips what is stored, by the progress table). What is read but
		// not written stays uncommitted: the next owner reads it again.
		cancelWrites()
		if writing != nil {
			finish(<-written)
		}
		stop()
		box.close()
		for _, w := range waits {
			w()
		}
		s.ready.Store(false)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-genDone:
			return
		case r := <-written: // each write answers once
			if !finish(r) {
				return
			}
		case <-box.ready:
			batch, err := box.take()
			for i := range batch {
				m := &batch[i]
				sk.Add(m)
				if sk.Full() && !flush() {
					return
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("read", "err", err)
				}
				return
			}
		case <-tick.C:
			sk.Lag()
			if sk.Due() && !flush() {
				return
			}
		}
	}
}

func ensure(m map[string]map[int]int64, k string) map[int]int64 {
	if m[k] == nil {
		m[k] = map[int]int64{}
	}
	return m[k]
}

// Stop stops consuming and the HTTP server; rows read but not inserted
// are read again by the next owner of their partitions.
func (s *Sink) Stop(ctx context.Context) error {
	return shutdown(ctx, s.server, s.cancel, &s.wg)
}

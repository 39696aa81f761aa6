package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/engine"
	"vigia/internal/event"
	"vigia/internal/kafkaio"
	"vigia/internal/problem"
	"vigia/internal/rules"
	"vigia/internal/window"
)

// EvalTick is how often the evaluator checks which rule groups are due.
var EvalTick = time.Second

// Evaluator is the evaluator service: it consumes the events topic as a
// consumer group, keeps the windows, evaluates the rules on the wall clock
// and publishes alert state changes to the alerts topic.
type Evaluator struct {
	cfg     config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	brokers []string
	eng     *engine.Engine
	now     func() time.Time

	producer *kafkaio.Producer
	server   *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	reloads    chan chan error
	joinedAt   atomic.Int64 // unix nanos of the last generation join (benchmarks)
	partitions []int        // assigned in the current generation; used by the consuming goroutine only
	caughtUp   atomic.Bool
	mu         sync.Mutex // guards active
	active     []alert.Alert

	m evaluatorMetrics
}

type evaluatorMetrics struct {
	events        *prometheus.CounterVec // outcome
	byOutcome     []prometheus.Counter   // events' children indexed by window.Outcome: no label lookup per event
	undecodable   prometheus.Counter
	evaluations   prometheus.Counter
	evalFailures  prometheus.Counter
	alertChanges  *prometheus.CounterVec // state
	publishFails  prometheus.Counter
	activeAlerts  *prometheus.GaugeVec // state
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	keys          prometheus.Gauge
	watermarkLag  prometheus.Gauge
	evalDuration  prometheus.Histogram
	commitFailure prometheus.Counter
}

func newEvaluatorMetrics(reg prometheus.Registerer) evaluatorMetrics {
	f := promauto.With(reg)
	m := evaluatorMetrics{
		events: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_evaluator_events_total",
			Help: "Events read from the events topic, by what the windows did with them."}, []string{"outcome"}),
		evaluations: f.NewCounter(prometheus.CounterOpts{Name: "vigia_evaluator_rule_evaluations_total",
			Help: "Rule evaluations over one key."}),
		evalFailures: f.NewCounter(prometheus.CounterOpts{Name: "vigia_evaluator_rule_evaluation_failures_total",
			Help: "Rule evaluations that failed (cost limit, timeout...)."}),
		alertChanges: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_evaluator_alert_changes_total",
			Help: "Alert state changes published, by new state."}, []string{"state"}),
		publishFails: f.NewCounter(prometheus.CounterOpts{Name: "vigia_evaluator_alert_publish_failures_total",
			Help: "Attempts to publish alert state changes that Kafka did not acknowledge (retried)."}),
		activeAlerts: f.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_evaluator_alerts",
			Help: "Alerts held, by state (pending, firing)."}, []string{"state"}),
		reloadOK: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_evaluator_rules_last_reload_successful",
			Help: "1 when the last rules reload succeeded; 0 when it failed and the old rules stayed."}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_evaluator_rules_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful rules load."}),
		keys: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_evaluator_window_keys",
			Help: "Keys held in the windows, over all keyspaces."}),
		watermarkLag: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_evaluator_watermark_lag_seconds",
			Help: "Wall clock minus the lowest partition watermark: how far behind the event stream the windows are."}),
		evalDuration: f.NewHistogram(prometheus.HistogramOpts{Name: "vigia_evaluator_eval_duration_seconds",
			Help: "Time one evaluation round took.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		commitFailure: f.NewCounter(prometheus.CounterOpts{Name: "vigia_evaluator_commit_failures_total",
			Help: "Offset commits that failed (retried at the next interval)."}),
	}
	for o := window.Applied; o.String() != fmt.Sprintf("Outcome(%d)", o); o++ {
		m.byOutcome = append(m.byOutcome, m.events.WithLabelValues(o.String()))
	}
	m.undecodable = m.events.WithLabelValues("undecodable")
	for _, s := range []string{"pending", "firing", "resolved", "inactive"} {
		m.alertChanges.WithLabelValues(s)
	}
	return m
}

// NewEvaluator loads the rules and builds the service; nothing connects
// until Start. A rules problem is returned with every position.
func NewEvaluator(cfg config.Config, log *slog.Logger) (*Evaluator, error) {
	set, err := rules.Load(cfg.Evaluator.Rules...)
	if err != nil {
		return nil, err
	}
	reg := newRegistry()
	e := &Evaluator{cfg: cfg, log: log, reg: reg, brokers: cfg.Kafka.Brokers, now: time.Now,
		reloads: make(chan chan error), m: newEvaluatorMetrics(reg)}
	if len(e.brokers) == 0 {
		// The embedded broker lives in the ingest (or all-in-one) process.
		e.brokers = []string{fmt.Sprintf("127.0.0.1:%d", cfg.Kafka.Embedded.Port)}
	}
	ev := cfg.Evaluator
	e.eng = engine.New(set, engine.Options{Window: window.Options{
		AllowedLateness: ev.AllowedLateness, DedupeHorizon: ev.DedupeHorizon, IdleTTL: ev.IdleTTL,
		MaxKeys: ev.MaxKeys, MaxDedupe: ev.MaxDedupe, MaxAttribution: ev.MaxAttribution,
		AttributionTTL: ev.AttributionTTL, MaxFutureSkew: ev.MaxFutureSkew,
	}})
	e.m.reloadOK.Set(1)
	e.m.reloadTime.Set(float64(time.Now().Unix()))
	return e, nil
}

// Registry exposes the metrics registry (tests).
func (e *Evaluator) Registry() *prometheus.Registry { return e.reg }

// Addr is the HTTP address after Start.
func (e *Evaluator) Addr() string { return e.listener.Addr().String() }

// Start creates the alerts topic if needed, restores alert states from it,
// joins the consumer group and serves HTTP.
func (e *Evaluator) Start(ctx context.Context) error {
	k, ev := e.cfg.Kafka, e.cfg.Evaluator
	ctx, e.cancel = context.WithCancel(ctx)
	if k.CreateTopics {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := kafkaio.EnsureTopics(sctx, e.brokers, []kafkaio.TopicSpec{
			{Name: ev.AlertsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: ev.AlertsRetention},
		})
		cancel()
		if err != nil {
			return fmt.Errorf("alerts topic: %w", err)
		}
	}
	// Kafka just (re)started may take a moment: retry for a while before
	// giving up.
	var restoreErr error
	for deadline := time.Now().Add(time.Minute); ; {
		if restoreErr = e.restoreAlerts(ctx); restoreErr == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		e.log.Warn("restoring alert states; retrying", "err", restoreErr)
		time.Sleep(500 * time.Millisecond)
	}
	if restoreErr != nil {
		return restoreErr
	}
	p, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: e.brokers, BatchTimeout: k.BatchTimeout, Compression: k.Compression})
	if err != nil {
		return err
	}
	e.producer = p

	srv, ln, err := serveHTTP("evaluator.listen", ev.Listen, e.routes(), e.log, &e.wg)
	if err != nil {
		return err
	}
	e.server, e.listener = srv, ln
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.consume(ctx) }()
	e.log.Info("evaluator started", "addr", ln.Addr().String(), "brokers", e.brokers,
		"rules", len(e.eng.Rules().Groups), "longest_span", e.eng.LongestSpan())
	return nil
}

// restoreAlerts reads the alerts topic and gives each alert's last state
// back to its rule, so that a restart neither re-fires nor forgets.
func (e *Evaluator) restoreAlerts(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	msgs, err := kafkaio.ReadAll(rctx, e.brokers, e.cfg.Evaluator.AlertsTopic)
	if err != nil {
		return fmt.Errorf("restore alerts: %w", err)
	}
	last := map[string]alert.Alert{}
	for _, m := range msgs {
		var a alert.Alert
		if json.Unmarshal(m.Value, &a) == nil {
			last[a.Fingerprint] = a
		}
	}
	restored := 0
	for _, a := range last {
		if (a.State == alert.StatePending || a.State == alert.StateFiring) && e.eng.Restore(a) {
			restored++
		}
	}
	e.log.Info("alert states restored", "records", len(msgs), "active", restored)
	e.snapshotActive()
	return nil
}

// consume runs consumer-group generations until ctx ends.
func (e *Evaluator) consume(ctx context.Context) {
	topic := e.cfg.Kafka.EventsTopic
	consumeGroup(ctx, e.log, e.brokers, e.cfg.Evaluator.GroupID, []string{topic},
		func(ctx context.Context, gen *kafka.Generation) { e.runGeneration(ctx, gen, topic) })
}

// runGeneration rebuilds the windows of the assigned partitions from the
// start of the longest rule span, then follows them live: events are
// applied in one goroutine, rules evaluated every EvalTick once caught up,
// and offsets committed after the events are applied.
func (e *Evaluator) runGeneration(ctx context.Context, gen *kafka.Generation, topic string) {
	assigned := gen.Assignments[topic]
	e.partitions = partitionIDs(assigned)
	e.joinedAt.Store(time.Now().UnixNano())
	e.caughtUp.Store(false)
	now := e.now()
	since := now.Add(-e.eng.LongestSpan() - e.cfg.Evaluator.AllowedLateness)
	starts, ends, err := e.offsets(ctx, topic, assigned, since)
	if err != nil {
		e.log.Warn("offsets for rebuild", "err", err)
		return
	}
	from := map[int]int64{}
	for _, pa := range assigned {
		from[pa.ID] = starts[pa.ID]
		if pa.Offset >= 0 && pa.Offset < from[pa.ID] {
			from[pa.ID] = pa.Offset // committed but not yet applied anywhere: never skip it
		}
	}
	genCtx, stop := context.WithCancel(ctx)
	box := newInbox(64 << 10)
	waitReaders := readPartitions(genCtx, e.log, e.brokers, topic, from, 16<<20, box)
	e.log.Info("generation joined", "generation", gen.ID, "partitions", len(assigned), "rebuild_since", since)

	applied := map[int]int64{}   // next offset to commit, per partition
	committed := map[int]int64{} // last committed
	caughtUp := map[int]bool{}
	for _, pa := range assigned {
		if ends[pa.ID] <= starts[pa.ID] {
			caughtUp[pa.ID] = true
		}
	}
	tick := time.NewTicker(EvalTick)
	commit := time.NewTicker(e.cfg.Evaluator.CommitInterval)
	defer func() {
		tick.Stop()
		commit.Stop()
		e.commit(gen, topic, applied, committed)
		stop()
		box.close()
		waitReaders()
	}()
	genDone := generationDone(gen)
	for {
		if !e.caughtUp.Load() && len(caughtUp) == len(assigned) {
			e.caughtUp.Store(true)
			e.log.Info("windows rebuilt; evaluating", "keys", totalKeys(e.eng.Store().Stats()))
		}
		select {
		case <-ctx.Done():
			return
		case <-genDone:
			return
		case <-box.ready:
			// Apply everything the readers have queued in one go: one
			// wake-up per batch, not one channel operation per event.
			batch, err := box.take()
			for i := range batch {
				m := &batch[i]
				e.apply(*m)
				applied[m.Partition] = m.Offset + 1
				if m.Offset+1 >= ends[m.Partition] {
					caughtUp[m.Partition] = true
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("read events", "err", err)
				}
				return
			}
		case <-commit.C:
			e.commit(gen, topic, applied, committed)
		case <-tick.C:
			if e.caughtUp.Load() {
				e.evaluate(ctx, e.now())
			}
		case reply := <-e.reloads:
			reply <- e.reload()
		}
	}
}

// offsets returns, per assigned partition, the first offset at or after
// since (where the rebuild starts) and the end offset at join time (when the
// rebuild is done).
func (e *Evaluator) offsets(ctx context.Context, topic string, assigned []kafka.PartitionAssignment, since time.Time) (starts, ends map[int]int64, err error) {
	admin := kafkaio.NewAdmin(e.brokers)
	defer admin.Close()
	return admin.OffsetsForTime(ctx, topic, partitionIDs(assigned), since)
}

func partitionIDs(as []kafka.PartitionAssignment) []int {
	ids := make([]int, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

func (e *Evaluator) apply(m kafka.Message) {
	var ev event.Event
	if err := event.Decode(m.Value, &ev); err != nil || ev.SchemaVersion > event.SchemaVersion {
		e.m.undecodable.Inc()
		return
	}
	e.m.byOutcome[e.eng.Apply(m.Partition, &ev)].Inc()
}

func (e *Evaluator) commit(gen *kafka.Generation, topic string, applied, committed map[int]int64) {
	if err := commitChanged(gen, topic, applied, committed); err != nil {
		e.m.commitFailure.Inc()
		e.log.Warn("commit offsets", "err", err)
	}
}

// evaluate runs the due rule groups at now and publishes the changes; a
// change Kafka does not take is retried until it does (alerts are not
// dropped), bounded by ctx.
func (e *Evaluator) evaluate(ctx context.Context, now time.Time) {
	start := time.Now()
	before, failures := e.eng.Evaluations, e.eng.EvalFailures
	changes := e.eng.Eval(ctx, now)
	e.m.evaluations.Add(float64(e.eng.Evaluations - before))
	e.m.evalFailures.Add(float64(e.eng.EvalFailures - failures))
	if e.eng.EvalFailures > failures && e.eng.LastEvalError != nil {
		e.log.Warn("rule evaluation failed", "err", e.eng.LastEvalError)
	}
	if len(changes) > 0 {
		msgs := make([]kafka.Message, len(changes))
		for i := range changes {
			v, _ := json.Marshal(&changes[i])
			msgs[i] = kafka.Message{Topic: e.cfg.Evaluator.AlertsTopic, Key: []byte(changes[i].Fingerprint), Value: v}
			e.m.alertChanges.WithLabelValues(string(changes[i].State)).Inc()
			e.log.Info("alert", "alertname", changes[i].Name, "state", changes[i].State,
				"fingerprint", changes[i].Fingerprint, "labels", changes[i].Labels)
		}
		for ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, e.cfg.Kafka.PublishTimeout)
			err := e.producer.WriteMessages(pctx, msgs...)
			cancel()
			if err == nil {
				break
			}
			e.m.publishFails.Inc()
			e.log.Warn("publish alerts; retrying", "err", err)
			time.Sleep(time.Second)
		}
	}
	st := e.eng.Store().Stats()
	e.m.keys.Set(float64(totalKeys(st)))
	var lowest time.Time
	for _, p := range e.partitions {
		if w := e.eng.Store().Watermark(p); !w.IsZero() && (lowest.IsZero() || w.Before(lowest)) {
			lowest = w
		}
	}
	if !lowest.IsZero() {
		e.m.watermarkLag.Set(now.Sub(lowest).Seconds())
	}
	e.m.evalDuration.Observe(time.Since(start).Seconds())
	e.snapshotActive()
}

func (e *Evaluator) snapshotActive() {
	act := e.eng.Active()
	snap := make([]alert.Alert, len(act))
	counts := map[alert.State]int{}
	for i, a := range act {
		snap[i] = *a
		counts[a.State]++
	}
	e.m.activeAlerts.WithLabelValues("pending").Set(float64(counts[alert.StatePending]))
	e.m.activeAlerts.WithLabelValues("firing").Set(float64(counts[alert.StateFiring]))
	e.mu.Lock()
	e.active = snap
	e.mu.Unlock()
}

// Reload loads the rules files again: build, validate, swap. A bad file
// keeps the old rules; the error says why.
func (e *Evaluator) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case e.reloads <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Evaluator) reload() error {
	set, err := rules.Load(e.cfg.Evaluator.Rules...)
	if err != nil {
		e.m.reloadOK.Set(0)
		e.log.Error("rules reload failed; keeping the old rules", "err", err)
		return err
	}
	kept := e.eng.Reload(set)
	e.m.reloadOK.Set(1)
	e.m.reloadTime.Set(float64(time.Now().Unix()))
	e.log.Info("rules reloaded", "groups", len(set.Groups), "windows_kept", kept)
	if !kept {
		// New keyspaces start empty; they fill as events arrive. A
		// restart rebuilds them from history.
		e.log.Warn("rule keyspaces changed: new windows start empty until filled or rebuilt at the next restart")
	}
	return nil
}

func (e *Evaluator) routes() http.Handler {
	mux := http.NewServeMux()
	opsRoutes(mux, e.reg, &e.caughtUp, "rebuilding windows")
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := e.Reload(r.Context()); err != nil {
			problem.Write(w, http.StatusUnprocessableEntity, "rules not reloaded; the old rules stay", err.Error())
			return
		}
		_, _ = w.Write([]byte("OK\n"))
	})
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		snap := e.active
		e.mu.Unlock()
		// ?fingerprint= narrows the answer to one alert: notifications
		// link there.
		if fp := r.URL.Query().Get("fingerprint"); fp != "" {
			snap = slices.DeleteFunc(slices.Clone(snap), func(a alert.Alert) bool { return a.Fingerprint != fp })
		}
		writeJSON(w, map[string]any{"alerts": snap})
	})
	return mux
}

// Stop stops consuming (committing what was applied) and the HTTP server.
func (e *Evaluator) Stop(ctx context.Context) error {
	return shutdown(ctx, e.server, e.cancel, &e.wg, e.producer)
}

func totalKeys(st window.Stats) int {
	n := 0
	for _, s := range st.Specs {
		n += s.Keys
	}
	return n
}

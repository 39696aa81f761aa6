package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/automation"
	"vigia/internal/backoff"
	"vigia/internal/config"
	"vigia/internal/control"
	"vigia/internal/kafkaio"
	"vigia/internal/route"
	"vigia/internal/routelog"
	"vigia/internal/webhook"
)

// ControlBackoff is the first wait before proposing an alert's command
// again when the route log is unavailable (it doubles up to 30 s).
var ControlBackoff = 250 * time.Millisecond

// RestoreRetry is how long a restore held back (by a lock) waits before it
// is proposed again.
var RestoreRetry = 30 * time.Second

// Control is the control service: the route log, pick, the operator API,
// the automation on the alerts topic and the webhooks to senders.
//
// Replicas share the route log (every one applies every command, so they
// agree) and the consumer group on the alerts topic (each alert record is
// turned into commands by one of them; a record read twice after a
// rebalance is refused as a duplicate by the occurrence's idempotency
// key). The replica that proposed a change publishes it to the actions
// topic and to the subscribed senders; every replica streams it to its
// change-stream clients.
type Control struct {
	cfg     config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	brokers []string
	now     func() time.Time

	file       *route.File
	producer   *kafkaio.Producer
	routeLog   *routelog.Log
	picker     *route.Picker
	hub        *control.Hub
	dispatcher *webhook.Dispatcher
	actions    chan []action.Record

	server   *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ready    atomic.Bool

	alertRecords *prometheus.CounterVec // outcome
	proposeFails prometheus.Counter
	actionsFails prometheus.Counter
}

// NewControl reads the routes file and builds the service; nothing
// connects until Start.
func NewControl(cfg config.Config, log *slog.Logger) (*Control, error) {
	file, err := route.LoadFile(cfg.Control.RoutesFile)
	if err != nil {
		return nil, fmt.Errorf("control.routes_file: %w", err)
	}
	reg := newRegistry()
	c := &Control{cfg: cfg, log: log, reg: reg, brokers: cfg.Kafka.Brokers, now: time.Now, file: file,
		hub: control.NewHub(), actions: make(chan []action.Record, 1024)}
	if len(c.brokers) == 0 {
		c.brokers = []string{fmt.Sprintf("127.0.0.1:%d", cfg.Kafka.Embedded.Port)}
	}
	f := promauto.With(reg)
	c.alertRecords = f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_control_alert_records_total",
		Help: "Alert records read from the alerts topic, by what the automation did with them."}, []string{"outcome"})
	for _, o := range []string{"proposed", "no_action", "stale", "undecodable"} {
		c.alertRecords.WithLabelValues(o)
	}
	c.proposeFails = f.NewCounter(prometheus.CounterOpts{Name: "vigia_control_propose_failures_total",
		Help: "Automatic commands that could not be written to the route log (retried)."})
	c.actionsFails = f.NewCounter(prometheus.CounterOpts{Name: "vigia_control_actions_publish_failures_total",
		Help: "Failed writes of route changes to the actions topic (retried)."})

	var subs []webhook.Subscriber
	for _, s := range cfg.Control.Subscribers {
		subs = append(subs, webhook.Subscriber{Name: s.Name, URL: s.URL, Secrets: s.Secrets, UseCases: s.UseCases})
	}
	c.dispatcher, err = webhook.New(webhook.Options{Subscribers: subs, MaxAge: cfg.Control.WebhookMaxAge,
		MaxBackoff: cfg.Control.WebhookMaxBackoff, Registerer: reg, Logger: log.With("part", "webhooks")})
	if err != nil {
		return nil, fmt.Errorf("control.subscribers: %w", err)
	}
	c.producer, err = kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: c.brokers, BatchTimeout: cfg.Kafka.BatchTimeout, Compression: cfg.Kafka.Compression})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Registry returns the service's metrics registry.
func (c *Control) Registry() *prometheus.Registry { return c.reg }

// Addr is the HTTP address after Start.
func (c *Control) Addr() string { return c.listener.Addr().String() }

// Table returns the current routing table (after Start).
func (c *Control) Table() *route.Table { return c.routeLog.Table() }

// Start creates the topics if needed, rebuilds the route state, serves
// the API and starts the automation.
func (c *Control) Start(ctx context.Context) error {
	k, cc := c.cfg.Kafka, c.cfg.Control
	ctx, c.cancel = context.WithCancel(ctx)
	if k.CreateTopics {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := kafkaio.EnsureTopics(sctx, c.brokers, []kafkaio.TopicSpec{
			{Name: c.cfg.Evaluator.AlertsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: c.cfg.Evaluator.AlertsRetention},
			{Name: cc.RoutesTopic, Partitions: 1, ReplicationFactor: k.ReplicationFactor, Compacted: true},
			{Name: k.ActionsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: c.cfg.Evaluator.AlertsRetention},
		})
		cancel()
		if err != nil {
			return fmt.Errorf("control topics: %w", err)
		}
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	rl, err := routelog.Open(octx, routelog.Options{Brokers: c.brokers, Topic: cc.RoutesTopic, Producer: c.producer, File: c.file,
		SnapshotEvery: cc.SnapshotEvery, OnApply: c.onApply, Logger: c.log.With("part", "route-log"), Registerer: c.reg})
	cancel()
	if err != nil {
		return err
	}
	c.routeLog = rl
	c.picker = route.NewPicker(rl.Table(), cc.Replicas)
	tokens := make([]control.Token, len(cc.Tokens))
	for i, t := range cc.Tokens {
		tokens[i] = control.Token{Name: t.Name, SHA256: t.SHA256, Scopes: t.Scopes}
	}
	api, err := control.New(control.Options{Log: rl, Picker: c.picker, Subscribers: c.dispatcher, Hub: c.hub, Tokens: tokens,
		MaxBodyBytes: cc.MaxBodyBytes, ProposeTimeout: cc.ProposeTimeout})
	if err != nil {
		return fmt.Errorf("control.tokens: %w", err)
	}
	mux := http.NewServeMux()
	opsRoutes(mux, c.reg, &c.ready, "rebuilding the route state")
	mux.Handle("/", api.Handler())
	srv, ln, err := serveHTTP("control.listen", cc.Listen, mux, c.log, &c.wg)
	if err != nil {
		return err
	}
	c.server, c.listener = srv, ln
	c.goRun(func() {
		if err := rl.Run(ctx); err != nil {
			c.log.Error("route log", "err", err)
		}
	})
	c.goRun(func() { c.dispatcher.Run(ctx) })
	c.goRun(func() { c.publishActions(ctx) })
	c.goRun(func() {
		consumeGroup(ctx, c.log, c.brokers, cc.GroupID, []string{c.cfg.Evaluator.AlertsTopic},
			func(ctx context.Context, gen *kafka.Generation) { c.runGeneration(ctx, gen) })
	})
	c.goRun(func() { c.restores(ctx) })
	c.ready.Store(true)
	c.log.Info("control started", "addr", ln.Addr().String(), "brokers", c.brokers, "routes_file", c.file.Path,
		"routes_file_hash", c.file.Hash, "use_cases", len(c.file.UseCases), "seq", rl.Table().Seq, "dry_run", c.file.Automation.DryRun)
	return nil
}

func (c *Control) goRun(fn func()) {
	c.wg.Add(1)
	go func() { defer c.wg.Done(); fn() }()
}

// Stop stops the API, the automation and the route log.
func (c *Control) Stop(ctx context.Context) error {
	return shutdown(ctx, c.server, c.cancel, &c.wg, c.producer)
}

// onApply runs for every command the route log applies, in log order.
func (c *Control) onApply(cmd route.Command, res route.Result, t *route.Table, own bool) {
	if c.picker != nil {
		c.picker.SetTable(t)
	}
	if len(res.Records) == 0 {
		return
	}
	for _, ch := range control.Changes(res.Records, t, c.now()) {
		c.hub.Publish(ch)
		if own {
			c.dispatcher.Publish(ch.Event())
		}
	}
	if own {
		c.actions <- res.Records
	}
	c.log.Info("route change", "op", cmd.Op, "outcome", res.Outcome, "actor", cmd.Actor, "use_case", cmd.UseCase,
		"number", cmd.Number, "changes", len(res.Records), "seq", t.Seq)
}

// publishActions copies route changes to the actions topic (ClickHouse's
// actions table), retrying until it succeeds or the service stops. On a
// graceful stop it still writes what is queued, each write within
// actionsWriteTimeout, so that a change applied just before the stop keeps
// its audit row.
func (c *Control) publishActions(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			c.drainActions()
			return
		case records := <-c.actions:
			c.writeActions(ctx, records)
		}
	}
}

// actionsWriteTimeout bounds one write of route changes to the actions
// topic, and how long a stopping control keeps writing queued ones.
const actionsWriteTimeout = 5 * time.Second

// drainActions writes the queued route changes once, without retries,
// each write within actionsWriteTimeout.
func (c *Control) drainActions() {
	for {
		select {
		case records := <-c.actions:
			if err := c.writeOnce(context.Background(), records); err != nil {
				c.log.Error("stopping: route changes not written to the actions topic", "err", err, "changes", len(records))
			}
		default:
			return
		}
	}
}

// writeActions writes one batch of route changes, retrying with backoff
// until it succeeds or ctx ends; then what is not written goes back to
// the queue for drainActions.
func (c *Control) writeActions(ctx context.Context, records []action.Record) {
	b := backoff.Backoff{Min: ControlBackoff, Max: 30 * time.Second}
	for wait := time.Duration(0); ; {
		err := c.writeOnce(ctx, records)
		if err == nil {
			return
		}
		wait = b.Next(wait)
		c.log.Warn("publish route changes to the actions topic; retrying", "err", err, "wait", wait)
		if backoff.Sleep(ctx, wait) != nil {
			select {
			case c.actions <- records:
			default:
				c.log.Error("stopping: route changes not written to the actions topic", "err", err, "changes", len(records))
			}
			return
		}
	}
}

// writeOnce makes one write of route changes. It runs to its end (or
// actionsWriteTimeout) even when ctx ends meanwhile: a write cancelled
// half-way may or may not have landed, and the retry would then double
// it.
func (c *Control) writeOnce(ctx context.Context, records []action.Record) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), actionsWriteTimeout)
	defer cancel()
	err := c.producer.WriteMessages(wctx, c.actionMessages(records)...)
	if err != nil {
		c.actionsFails.Inc()
	}
	return err
}

// actionMessages encodes route changes as actions-topic messages, keyed
// by use case and target.
func (c *Control) actionMessages(records []action.Record) []kafka.Message {
	msgs := make([]kafka.Message, 0, len(records))
	for _, r := range records {
		v, _ := json.Marshal(r)
		msgs = append(msgs, kafka.Message{Topic: c.cfg.Kafka.ActionsTopic, Key: []byte(r.UseCase + "/" + r.Target), Value: v})
	}
	return msgs
}

// runGeneration turns the alert records of the assigned partitions into
// commands, from the committed offsets on, and commits each record once
// its commands are applied.
func (c *Control) runGeneration(ctx context.Context, gen *kafka.Generation) {
	topic := c.cfg.Evaluator.AlertsTopic
	assigned := gen.Assignments[topic]
	from := map[int]int64{}
	for _, pa := range assigned {
		from[pa.ID] = pa.Offset
		if pa.Offset < 0 {
			from[pa.ID] = kafka.FirstOffset // a new group: control.max_alert_age keeps old alerts from acting
		}
	}
	genCtx, stop := context.WithCancel(ctx)
	box := newInbox(1024)
	waitReaders := readPartitions(genCtx, c.log, c.brokers, topic, from, 4<<20, box)
	// Stop the readers before waiting for them: a reader blocked on an
	// idle partition only returns when genCtx ends, and until this
	// returns the replica does not rejoin the group after a rebalance.
	defer func() { stop(); box.close(); waitReaders() }()
	genDone := generationDone(gen)
	last := map[int]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-genDone:
			return
		case <-box.ready:
			batch, err := box.take()
			next := map[int]int64{}
			for i := range batch {
				if !c.handleAlert(genCtx, &batch[i]) {
					return // stopping: the record is read again by the next owner
				}
				next[batch[i].Partition] = batch[i].Offset + 1
			}
			if cerr := commitChanged(gen, topic, next, last); cerr != nil {
				c.log.Warn("commit alert offsets", "err", cerr)
			}
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("read alerts", "err", err)
				}
				return
			}
		}
	}
}

// handleAlert proposes the commands of one alert record, retrying while
// the route log is unavailable; false when ctx ended first.
func (c *Control) handleAlert(ctx context.Context, m *kafka.Message) bool {
	var a alert.Alert
	if err := json.Unmarshal(m.Value, &a); err != nil || a.SchemaVersion != alert.SchemaVersion || a.Fingerprint == "" {
		c.alertRecords.WithLabelValues("undecodable").Inc()
		return true
	}
	cmds := automation.Commands(&a, c.now(), c.cfg.Control.MaxAlertAge)
	switch {
	case len(cmds) > 0:
		c.alertRecords.WithLabelValues("proposed").Inc()
	case a.State == alert.StateFiring && len(a.Actions) > 0:
		c.alertRecords.WithLabelValues("stale").Inc()
	default:
		c.alertRecords.WithLabelValues("no_action").Inc()
	}
	for _, cmd := range cmds {
		if !c.propose(ctx, cmd) {
			return false
		}
	}
	return true
}

// propose writes cmd until the route log confirms it; false when ctx
// ended first. A command written whose confirmation timed out is written
// again: the second copy is refused as a duplicate.
func (c *Control) propose(ctx context.Context, cmd route.Command) bool {
	b := backoff.Backoff{Min: ControlBackoff, Max: 30 * time.Second}
	for wait := time.Duration(0); ; {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.Control.ProposeTimeout)
		res, err := c.routeLog.Propose(pctx, cmd)
		cancel()
		if err == nil {
			if res.Err != nil {
				c.log.Info("automatic change refused", "op", cmd.Op, "alertname", cmd.Alert.Name,
					"occurrence", cmd.Alert.Occurrence, "reason", res.Err.Error())
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.proposeFails.Inc()
		wait = b.Next(wait)
		c.log.Warn("propose automatic change; retrying", "err", err, "wait", wait)
		if backoff.Sleep(ctx, wait) != nil {
			return false
		}
	}
}

// restores proposes the restores that fall due. Every replica does; the
// first one applied wins and the others find nothing left to do.
func (c *Control) restores(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	tried := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := c.now()
		hold := time.Duration(c.file.Automation.RestoreAfter)
		skip := func(occ string) bool { return now.Sub(tried[occ]) < RestoreRetry }
		for _, cmd := range automation.Restores(c.routeLog.Table().State(), now, hold, skip) {
			tried[cmd.Alert.Occurrence] = now
			if !c.propose(ctx, cmd) {
				return
			}
		}
		for occ, at := range tried {
			if now.Sub(at) > time.Hour {
				delete(tried, occ)
			}
		}
	}
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"vigia/internal/alert"
	"vigia/internal/backoff"
	"vigia/internal/config"
	"vigia/internal/kafkaio"
	"vigia/internal/notify"
	"vigia/internal/notify/alertmanager"
	"vigia/internal/notify/nflog"
	"vigia/internal/notify/slack"
)

// NotifierBackoff is the first wait before retrying a receiver (it
// doubles up to notifier.max_backoff).
var NotifierBackoff = 250 * time.Millisecond

// Notifier is the notifier service: it reads the alerts topic as a
// consumer group and delivers firing and resolved alerts to Alertmanager
// and Slack, once per receiver and alert state, through the notification
// log.
//
// Each generation reads its partitions from the start: records before the
// group's committed offset only rebuild the set of firing alerts (which
// Alertmanager gets again every resend interval); records from it on are
// notified, unless the log says the receiver already has them. An offset
// is committed once every receiver is done with the records before it.
type Notifier struct {
	cfg       config.Config
	log       *slog.Logger
	reg       *prometheus.Registry
	brokers   []string
	now       func() time.Time
	receivers []*notify.Receiver
	nflog     *nflog.Kafka
	producer  *kafkaio.Producer
	metrics   *notify.Metrics

	server   *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ready    atomic.Bool

	records      *prometheus.CounterVec // outcome
	commitFails  prometheus.Counter
	firingAlerts prometheus.Gauge
}

// Record outcomes, the values of vigia_notifier_alert_records_total's
// outcome label.
const (
	recordNotified  = "notified"  // handed to the receivers
	recordDelivered = "delivered" // before the committed offset: state only
	recordStale     = "stale"     // older than notifier.max_record_age
	recordSkipped   = "skipped"   // pending or inactive: not for people
	recordBad       = "undecodable"
)

// NewNotifier builds the service and its receivers; nothing connects until
// Start.
func NewNotifier(cfg config.Config, log *slog.Logger) (*Notifier, error) {
	reg := newRegistry()
	n := &Notifier{cfg: cfg, log: log, reg: reg, brokers: cfg.Kafka.Brokers, now: time.Now, metrics: notify.NewMetrics(reg)}
	if len(n.brokers) == 0 {
		n.brokers = []string{fmt.Sprintf("127.0.0.1:%d", cfg.Kafka.Embedded.Port)}
	}
	f := promauto.With(reg)
	n.records = f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_alert_records_total",
		Help: "Alert records read from the alerts topic, by what the notifier did with them."}, []string{"outcome"})
	for _, o := range []string{recordNotified, recordDelivered, recordStale, recordSkipped, recordBad} {
		n.records.WithLabelValues(o)
	}
	n.commitFails = f.NewCounter(prometheus.CounterOpts{Name: "vigia_notifier_commit_failures_total",
		Help: "Offset commits that failed (retried at the next interval)."})
	n.firingAlerts = f.NewGauge(prometheus.GaugeOpts{Name: "vigia_notifier_firing_alerts",
		Help: "Firing alerts of the assigned partitions (re-sent to Alertmanager every resend interval)."})
	// The writer connects on first use: building it here lets the
	// receivers' pipelines hold the log from the start.
	p, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: n.brokers, BatchTimeout: cfg.Kafka.BatchTimeout, Compression: cfg.Kafka.Compression})
	if err != nil {
		return nil, err
	}
	n.producer = p
	n.nflog = nflog.Open(n.brokers, cfg.Notifier.LogTopic, p)
	if err := n.buildReceivers(); err != nil {
		return nil, err
	}
	return n, nil
}

// alertLinker returns the function that links an alert to the evaluator's
// alerts API under the external URL (nil when there is none: no links).
func alertLinker(external string) func(*alert.Alert) string {
	if external == "" {
		return nil
	}
	api, err := url.JoinPath(external, "api/v1/alerts")
	if err != nil { // validated with the configuration
		return nil
	}
	return func(a *alert.Alert) string { return api + "?fingerprint=" + url.QueryEscape(a.Fingerprint) }
}

func (n *Notifier) buildReceivers() error {
	nc := n.cfg.Notifier
	link := alertLinker(nc.ExternalURL)
	for _, raw := range nc.Alertmanager.URLs {
		u, _ := url.Parse(raw)
		name := "alertmanager:" + u.Host + u.Path
		am, err := alertmanager.New(alertmanager.Options{Name: name, URL: raw, ResendInterval: nc.Alertmanager.ResendInterval,
			GeneratorURL: link, HTTPClient: &http.Client{Timeout: nc.Alertmanager.Timeout}})
		if err != nil {
			return fmt.Errorf("notifier.alertmanager.urls: %w", err)
		}
		n.receivers = append(n.receivers, n.receiver(name, am, 64, true))
	}
	if s := nc.Slack; s.Token != "" || s.WebhookURL != "" {
		routes := make([]slack.Route, len(s.Routes))
		for i, r := range s.Routes {
			routes[i] = slack.Route{Match: r.Match, Channel: r.Channel}
		}
		sl, err := slack.New(slack.Options{Name: "slack", Token: s.Token, APIURL: s.APIURL, WebhookURL: s.WebhookURL,
			Channel: s.Channel, Routes: routes, RunbookBaseURL: s.RunbookBaseURL, AlertURL: link,
			HTTPClient: &http.Client{Timeout: s.Timeout}})
		if err != nil {
			return fmt.Errorf("notifier.slack: %w", err)
		}
		n.receivers = append(n.receivers, n.receiver("slack", sl, 1, false))
	}
	return nil
}

// receiver builds one receiver's queue and pipeline: dedup against the
// log, deliver with retries, record in the log. The queue is emptied at
// every generation.
func (n *Notifier) receiver(name string, nt notify.Notifier, batch int, resends bool) *notify.Receiver {
	rm := n.metrics.Receiver(name)
	logger := n.log.With("receiver", name)
	retry := backoff.Backoff{Min: NotifierBackoff, Max: n.cfg.Notifier.MaxBackoff}
	return &notify.Receiver{Name: name, MaxBatch: batch, Metrics: rm, Resends: resends,
		Queue: notify.NewQueue(n.cfg.Notifier.QueueCapacity, rm),
		Pipeline: notify.MultiStage{
			notify.Dedup{Log: n.nflog, Metrics: rm},
			notify.Retry{Notifier: nt, Backoff: retry, Metrics: rm, Log: logger},
			notify.SetLog{Log: n.nflog, Metrics: rm, Backoff: retry, Now: n.now, Logger: logger},
		}}
}

// Registry exposes the metrics registry (tests).
func (n *Notifier) Registry() *prometheus.Registry { return n.reg }

// Addr is the HTTP address after Start.
func (n *Notifier) Addr() string { return n.listener.Addr().String() }

// Start creates the topics if needed, serves HTTP and joins the consumer
// group.
func (n *Notifier) Start(ctx context.Context) error {
	k, nc := n.cfg.Kafka, n.cfg.Notifier
	ctx, n.cancel = context.WithCancel(ctx)
	if k.CreateTopics {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := kafkaio.EnsureTopics(sctx, n.brokers, []kafkaio.TopicSpec{
			{Name: n.cfg.Evaluator.AlertsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: n.cfg.Evaluator.AlertsRetention},
			{Name: nc.LogTopic, Partitions: 1, ReplicationFactor: k.ReplicationFactor, Compacted: true},
		})
		cancel()
		if err != nil {
			return fmt.Errorf("notifier topics: %w", err)
		}
	}
	srv, ln, err := serveHTTP("notifier.listen", nc.Listen, n.routes(), n.log, &n.wg)
	if err != nil {
		return err
	}
	n.server, n.listener = srv, ln
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.consume(ctx) }()
	names := make([]string, len(n.receivers))
	for i, r := range n.receivers {
		names[i] = r.Name
	}
	n.log.Info("notifier started", "addr", ln.Addr().String(), "brokers", n.brokers, "receivers", names)
	return nil
}

// consume runs consumer-group generations until ctx ends.
func (n *Notifier) consume(ctx context.Context) {
	topic := n.cfg.Evaluator.AlertsTopic
	consumeGroup(ctx, n.log, n.brokers, n.cfg.Notifier.GroupID, []string{topic},
		func(ctx context.Context, gen *kafka.Generation) { n.runGeneration(ctx, gen, topic) })
}

// offsetTracker knows, per partition, which notified records some receiver
// still has to deliver, so that the committed offset never passes one.
type offsetTracker struct {
	mu      sync.Mutex
	next    map[int]int64              // offset after the last record read
	pending map[int]map[int64]struct{} // records handed to receivers, not done
}

func newOffsetTracker() *offsetTracker {
	return &offsetTracker{next: map[int]int64{}, pending: map[int]map[int64]struct{}{}}
}

func (t *offsetTracker) read(p int, off int64, notified bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next[p] = off + 1
	if notified {
		if t.pending[p] == nil {
			t.pending[p] = map[int64]struct{}{}
		}
		t.pending[p][off] = struct{}{}
	}
}

func (t *offsetTracker) done(p int, off int64) {
	t.mu.Lock()
	delete(t.pending[p], off)
	t.mu.Unlock()
}

// commitable returns, per partition, the offset to commit: the oldest
// record still on its way, or the next to read when none is.
func (t *offsetTracker) commitable() map[int]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]int64{}
	for p, next := range t.next {
		out[p] = next
		for off := range t.pending[p] {
			out[p] = min(out[p], off)
		}
	}
	return out
}

// runGeneration follows the assigned partitions from their start, runs the
// receivers' workers and commits what they delivered, until the
// generation or ctx ends.
func (n *Notifier) runGeneration(ctx context.Context, gen *kafka.Generation, topic string) {
	nc := n.cfg.Notifier
	assigned := gen.Assignments[topic]
	n.ready.Store(false)
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		count, err := n.nflog.Load(lctx)
		cancel()
		if err == nil {
			n.log.Info("notification log loaded", "entries", count)
			break
		}
		n.log.Warn("loading the notification log; retrying", "err", err)
		time.Sleep(time.Second)
	}
	admin := kafkaio.NewAdmin(n.brokers)
	_, ends, err := admin.OffsetsForTime(ctx, topic, partitionIDs(assigned), n.now())
	admin.Close()
	if err != nil {
		n.log.Warn("end offsets", "err", err)
		return
	}
	committed := map[int]int64{}
	caughtUp := map[int]bool{}
	for _, pa := range assigned {
		committed[pa.ID] = max(pa.Offset, 0) // no committed offset yet: notify from the start (max_record_age applies)
		if ends[pa.ID] == 0 {
			caughtUp[pa.ID] = true
		}
	}

	genCtx, stop := context.WithCancel(ctx)
	var workers sync.WaitGroup
	for _, r := range n.receivers {
		// What waited in the last generation may belong to partitions
		// now owned elsewhere; what is ours is read again below.
		r.Queue.Clear()
		workers.Add(1)
		go func() { defer workers.Done(); r.Run(genCtx) }()
	}
	from := map[int]int64{}
	for _, pa := range assigned {
		from[pa.ID] = kafka.FirstOffset
	}
	box := newInbox(4096)
	waitReaders := readPartitions(genCtx, n.log, n.brokers, topic, from, 8<<20, box)
	n.log.Info("generation joined", "generation", gen.ID, "partitions", len(assigned))

	tracker := newOffsetTracker()
	lastCommitted := map[int]int64{}
	firing := map[string]*alert.Alert{}
	resend := time.NewTicker(nc.Alertmanager.ResendInterval)
	commit := time.NewTicker(nc.CommitInterval)
	defer func() {
		resend.Stop()
		commit.Stop()
		stop()
		workers.Wait()
		n.commit(gen, topic, tracker, lastCommitted)
		box.close()
		waitReaders()
		n.ready.Store(false)
	}()
	genDone := generationDone(gen)
	for {
		if !n.ready.Load() && len(caughtUp) == len(assigned) {
			n.ready.Store(true)
			n.log.Info("alerts topic read; notifying", "firing", len(firing))
			n.resendFiring(firing)
		}
		select {
		case <-ctx.Done():
			return
		case <-genDone:
			return
		case <-box.ready:
			batch, err := box.take()
			for i := range batch {
				m := &batch[i]
				n.handle(m, committed[m.Partition], firing, tracker)
				if m.Offset+1 >= ends[m.Partition] {
					caughtUp[m.Partition] = true
				}
			}
			n.firingAlerts.Set(float64(len(firing)))
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("read alerts", "err", err)
				}
				return
			}
		case <-resend.C:
			if n.ready.Load() {
				n.resendFiring(firing)
			}
		case <-commit.C:
			n.commit(gen, topic, tracker, lastCommitted)
		}
	}
}

// handle takes one alert record: it updates the firing set and, from the
// committed offset on, hands firing and resolved records to the receivers.
func (n *Notifier) handle(m *kafka.Message, committed int64, firing map[string]*alert.Alert, tracker *offsetTracker) {
	var a alert.Alert
	if err := json.Unmarshal(m.Value, &a); err != nil || a.SchemaVersion != alert.SchemaVersion || a.Fingerprint == "" {
		n.records.WithLabelValues(recordBad).Inc()
		tracker.read(m.Partition, m.Offset, false)
		return
	}
	if a.State == alert.StateFiring {
		firing[a.Fingerprint] = &a
	} else {
		delete(firing, a.Fingerprint)
	}
	outcome := recordNotified
	switch {
	case m.Offset < committed:
		outcome = recordDelivered
	case a.State != alert.StateFiring && a.State != alert.StateResolved:
		outcome = recordSkipped
	case n.now().Sub(a.EvalTime) > n.cfg.Notifier.MaxRecordAge:
		outcome = recordStale
	}
	n.records.WithLabelValues(outcome).Inc()
	tracker.read(m.Partition, m.Offset, outcome == recordNotified)
	if outcome == recordNotified {
		p, off := m.Partition, m.Offset
		notify.FanOut(n.receivers, &a, func() { tracker.done(p, off) })
	}
}

// resendFiring queues a keep-alive of every firing alert for the receivers
// that want one (Alertmanager resolves an alert by itself once its endsAt
// passes without news).
func (n *Notifier) resendFiring(firing map[string]*alert.Alert) {
	for _, r := range n.receivers {
		if !r.Resends {
			continue
		}
		for _, a := range firing {
			r.Queue.Push(&notify.Notification{Receiver: r.Name, Alert: a, Resend: true})
		}
	}
}

func (n *Notifier) commit(gen *kafka.Generation, topic string, tracker *offsetTracker, last map[int]int64) {
	if err := commitChanged(gen, topic, tracker.commitable(), last); err != nil {
		n.commitFails.Inc()
		n.log.Warn("commit offsets", "err", err)
	}
}

// receiverStatus is one receiver in GET /api/v1/receivers.
type receiverStatus struct {
	Name        string `json:"name"`
	QueueLength int    `json:"queue_length"`
	Resends     bool   `json:"resends"`
}

func (n *Notifier) routes() http.Handler {
	mux := http.NewServeMux()
	opsRoutes(mux, n.reg, &n.ready, "reading the alerts topic")
	mux.HandleFunc("GET /api/v1/receivers", func(w http.ResponseWriter, _ *http.Request) {
		out := make([]receiverStatus, 0, len(n.receivers))
		for _, r := range n.receivers {
			out = append(out, receiverStatus{Name: r.Name, Resends: r.Resends, QueueLength: r.Queue.Len()})
		}
		slices.SortFunc(out, func(a, b receiverStatus) int { return strings.Compare(a.Name, b.Name) })
		writeJSON(w, map[string]any{"receivers": out})
	})
	return mux
}

// Stop stops consuming (committing what was delivered) and the HTTP server.
func (n *Notifier) Stop(ctx context.Context) error {
	return shutdown(ctx, n.server, n.cancel, &n.wg, n.producer)
}

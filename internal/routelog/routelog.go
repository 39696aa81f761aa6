// Package routelog keeps the control API's route state as an event-sourced
// log in a compacted, single-partition Kafka topic, the approach of
// Confluent Schema Registry: the topic is the source of truth, every
// control process reads it whole at start and then follows it, and a
// change is done once it is in the topic.
//
// # Records
//
//   - key "cmd/<id>": a [route.Command]. Every process applies every
//     command in topic order with [route.State.Apply], which is
//     deterministic (the command carries its time), so all processes reach
//     the same state; a command that loses a race (say two operators
//     switching the same use case at once) is applied after the other one,
//     everywhere, and is refused or not the same way everywhere.
//   - key "snapshot": the whole state after the command at offset
//     "through". Written every Options.SnapshotEvery commands, then
//     followed by tombstones of the commands it covers, so that compaction
//     bounds the topic. Processes write identical snapshots at the same
//     offsets, so two of them writing one is harmless.
//
// Rebuild at start: the newest snapshot (by through), then every command
// after it. A process killed in the middle of a change left the command in
// the topic or not: either every process applies it or none does. A
// snapshot is written before the tombstones of what it covers, so a crash
// between the two leaves commands the rebuild skips.
//
// [Log.Propose] writes a command (acks=all) and waits until this process
// has read it back and applied it, so that its caller learns the outcome
// (applied, refused and why) and reads its own write.
package routelog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"vigia/internal/kafkaio"
	"vigia/internal/route"
)

// Keys of the topic's records.
const (
	keySnapshot  = "snapshot"
	commandKeyPf = "cmd/"
)

// ErrUnconfirmed is returned by Propose when the command was written but
// not read back before the context ended: it may or may not be applied.
var ErrUnconfirmed = errors.New("route change written but not confirmed in time; read the route to see whether it was applied")

// Options configures Open.
type Options struct {
	Brokers  []string
	Topic    string // compacted, one partition
	Producer *kafkaio.Producer
	File     *route.File
	// SnapshotEvery is how many commands go between snapshots; default 1000.
	SnapshotEvery int
	// OnApply is called for every command applied after the rebuild, in
	// log order, from the log's goroutine: own says whether this process
	// proposed it. It must not block for long.
	OnApply    func(c route.Command, res route.Result, t *route.Table, own bool)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Log is the route state of one control process, following the topic.
type Log struct {
	o      Options
	log    *slog.Logger
	reader *kafka.Reader

	state   *route.State // owned by the reading goroutine
	table   atomic.Pointer[route.Table]
	applied atomic.Int64 // offset of the last record read

	mu      sync.Mutex
	waiters map[string]chan route.Result // commands this process proposed; nil: its proposer stopped waiting

	covered []string // command ids since the last snapshot
	m       metrics
}

type metrics struct {
	commands  *prometheus.CounterVec
	seq       prometheus.Gauge
	propose   prometheus.Histogram
	snapshots prometheus.Counter
	bad       prometheus.Counter
	mismatch  prometheus.Counter
	rebuild   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	m := metrics{
		commands: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_control_commands_total",
			Help: "Route commands applied from the route log, by outcome."}, []string{"outcome"}),
		seq: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_control_route_seq",
			Help: "Commands applied to the route state (its version); replicas that agree show the same value."}),
		propose: f.NewHistogram(prometheus.HistogramOpts{Name: "vigia_control_propose_seconds",
			Help:    "Time from writing a route command to applying it in this process.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		snapshots: f.NewCounter(prometheus.CounterOpts{Name: "vigia_control_snapshots_total",
			Help: "Route state snapshots written to the route log."}),
		bad: f.NewCounter(prometheus.CounterOpts{Name: "vigia_control_bad_records_total",
			Help: "Route log records that could not be decoded (skipped)."}),
		mismatch: f.NewCounter(prometheus.CounterOpts{Name: "vigia_control_routes_file_mismatch_total",
			Help: "Commands proposed by a process with another routes file: replicas may disagree until they run the same file."}),
		rebuild: f.NewGauge(prometheus.GaugeOpts{Name: "vigia_control_rebuild_seconds",
			Help: "Time the last rebuild of the route state from the route log took."}),
	}
	for _, o := range []string{route.OutcomeApplied, route.OutcomeDryRun, route.OutcomeRefused, route.OutcomeDuplicate, route.OutcomeNoop} {
		m.commands.WithLabelValues(o)
	}
	return m
}

type snapshot struct {
	Through  int64        `json:"through"` // offset of the last command it includes
	FileHash string       `json:"file_hash"`
	State    *route.State `json:"state"`
}

// Open reads the topic whole and rebuilds the state. It returns when the
// state is as of the topic's end at the time of the call; Run follows it
// from there.
func Open(ctx context.Context, o Options) (*Log, error) {
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{o: o, log: o.Logger.With("topic", o.Topic), waiters: map[string]chan route.Result{}, m: newMetrics(o.Registerer)}
	start := time.Now()
	end, err := endOffset(ctx, o.Brokers, o.Topic)
	if err != nil {
		return nil, fmt.Errorf("route log: %w", err)
	}
	l.reader = kafka.NewReader(kafka.ReaderConfig{Brokers: o.Brokers, Topic: o.Topic, Partition: 0,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	if err := l.reader.SetOffset(kafka.FirstOffset); err != nil {
		l.reader.Close()
		return nil, fmt.Errorf("route log: %w", err)
	}

	var latest *snapshot
	type pending struct {
		offset int64
		cmd    route.Command
	}
	var cmds []pending
	l.applied.Store(-1)
	for l.applied.Load()+1 < end {
		m, err := l.reader.ReadMessage(ctx)
		if err != nil {
			l.reader.Close()
			return nil, fmt.Errorf("route log %s: rebuild: %w", o.Topic, err)
		}
		l.applied.Store(m.Offset)
		key := string(m.Key)
		switch {
		case len(m.Value) == 0:
			// a tombstone
		case key == keySnapshot:
			var s snapshot
			if err := json.Unmarshal(m.Value, &s); err != nil || s.State == nil {
				l.m.bad.Inc()
				l.log.Warn("route log: undecodable snapshot", "offset", m.Offset, "err", err)
				continue
			}
			if latest == nil || s.Through > latest.Through {
				latest = &s
			}
		case strings.HasPrefix(key, commandKeyPf):
			var c route.Command
			if err := json.Unmarshal(m.Value, &c); err != nil {
				l.m.bad.Inc()
				l.log.Warn("route log: undecodable command", "offset", m.Offset, "err", err)
				continue
			}
			cmds = append(cmds, pending{m.Offset, c})
		}
	}
	l.state = route.NewState()
	through := int64(-1)
	if latest != nil {
		l.state, through = fill(latest.State), latest.Through
	}
	for _, p := range cmds {
		if p.offset <= through {
			continue // in the snapshot
		}
		res := l.state.Apply(o.File, p.cmd)
		l.m.commands.WithLabelValues(res.Outcome).Inc()
		l.covered = append(l.covered, p.cmd.ID)
	}
	l.table.Store(route.NewTable(o.File, l.state))
	l.m.seq.Set(float64(l.state.Seq))
	l.m.rebuild.Set(time.Since(start).Seconds())
	l.log.Info("route state rebuilt", "records_to", end, "snapshot_through", through,
		"commands_after_snapshot", len(l.covered), "seq", l.state.Seq, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// endOffset asks for the topic's end offset until the broker answers: a
// topic just created may have no leader for a moment.
func endOffset(ctx context.Context, brokers []string, topic string) (int64, error) {
	admin := kafkaio.NewAdmin(brokers)
	defer admin.Close()
	for {
		end, err := admin.EndOffset(ctx, topic, 0)
		if err == nil || ctx.Err() != nil {
			return end, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fill gives a decoded state the maps JSON left nil.
func fill(s *route.State) *route.State {
	n := route.NewState()
	if s.Numbers != nil {
		n.Numbers = s.Numbers
	}
	if s.UseCases != nil {
		n.UseCases = s.UseCases
	}
	if s.Occurrences != nil {
		n.Occurrences = s.Occurrences
	}
	if s.Done != nil {
		n.Done = s.Done
	}
	if s.LastAuto != nil {
		n.LastAuto = s.LastAuto
	}
	if s.LastAutoBy != nil {
		n.LastAutoBy = s.LastAutoBy
	}
	n.Seq, n.AutoTimes, n.Audit = s.Seq, s.AutoTimes, s.Audit
	return n
}

// Table returns the current routing table.
func (l *Log) Table() *route.Table { return l.table.Load() }

// Run follows the topic until ctx ends, applying new commands.
func (l *Log) Run(ctx context.Context) error {
	defer l.reader.Close()
	failing := false
	for {
		m, err := l.reader.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				l.log.Warn("route log: read", "err", err)
				failing = true
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		failing = false
		l.applied.Store(m.Offset)
		l.follow(ctx, m)
	}
}

func (l *Log) follow(ctx context.Context, m kafka.Message) {
	key := string(m.Key)
	if len(m.Value) == 0 || !strings.HasPrefix(key, commandKeyPf) {
		return // tombstones and snapshots: the state already has them
	}
	var c route.Command
	if err := json.Unmarshal(m.Value, &c); err != nil {
		l.m.bad.Inc()
		l.log.Warn("route log: undecodable command", "offset", m.Offset, "err", err)
		return
	}
	if c.FileHash != "" && c.FileHash != l.o.File.Hash {
		l.m.mismatch.Inc()
		l.log.Warn("route command from a process with another routes file", "id", c.ID, "their_file", c.FileHash, "our_file", l.o.File.Hash)
	}
	res := l.state.Apply(l.o.File, c)
	l.m.commands.WithLabelValues(res.Outcome).Inc()
	l.m.seq.Set(float64(l.state.Seq))
	t := route.NewTable(l.o.File, l.state)
	l.table.Store(t)

	l.mu.Lock()
	w, own := l.waiters[c.ID]
	delete(l.waiters, c.ID)
	l.mu.Unlock()
	// OnApply first: what it updates (the picker, in control) must show
	// the change by the time the proposer learns it is done.
	if l.o.OnApply != nil {
		l.o.OnApply(c, res, t, own)
	}
	if w != nil {
		w <- res
	}
	l.covered = append(l.covered, c.ID)
	if len(l.covered) >= l.o.SnapshotEvery {
		l.snapshot(ctx, m.Offset)
	}
}

// snapshot writes the state as of offset, then tombstones for the commands
// it covers. On failure it is tried again after the next command.
func (l *Log) snapshot(ctx context.Context, through int64) {
	data, err := json.Marshal(snapshot{Through: through, FileHash: l.o.File.Hash, State: l.state})
	if err != nil {
		l.log.Error("route log: encode snapshot", "err", err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.o.Producer.WriteMessages(wctx, kafka.Message{Topic: l.o.Topic, Key: []byte(keySnapshot), Value: data}); err != nil {
		l.log.Warn("route log: write snapshot", "err", err)
		return
	}
	tombs := make([]kafka.Message, len(l.covered))
	for i, id := range l.covered {
		tombs[i] = kafka.Message{Topic: l.o.Topic, Key: []byte(commandKeyPf + id)}
	}
	if err := l.o.Producer.WriteMessages(wctx, tombs...); err != nil {
		l.log.Warn("route log: write tombstones", "err", err)
	}
	l.covered = l.covered[:0]
	l.m.snapshots.Inc()
}

// NewID returns a random command id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Propose writes c to the log and waits until this process applied it.
// c gets an id and the routes file's hash if it has none.
func (l *Log) Propose(ctx context.Context, c route.Command) (route.Result, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	c.FileHash = l.o.File.Hash
	data, err := json.Marshal(c)
	if err != nil {
		return route.Result{}, err
	}
	ch := make(chan route.Result, 1)
	l.mu.Lock()
	l.waiters[c.ID] = ch
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		delete(l.waiters, c.ID)
		l.mu.Unlock()
	}
	start := time.Now()
	if err := l.o.Producer.WriteMessages(ctx, kafka.Message{Topic: l.o.Topic, Key: []byte(commandKeyPf + c.ID), Value: data}); err != nil {
		forget()
		return route.Result{}, fmt.Errorf("route log %s: %w", l.o.Topic, err)
	}
	select {
	case res := <-ch:
		l.m.propose.Observe(time.Since(start).Seconds())
		return res, nil
	case <-ctx.Done():
		// The command is in Kafka and will be applied: keep it ours (a
		// nil waiter), so that this process still publishes the change to
		// the senders and the actions topic when it comes.
		l.mu.Lock()
		if _, waiting := l.waiters[c.ID]; waiting {
			l.waiters[c.ID] = nil
		}
		l.mu.Unlock()
		select {
		case res := <-ch: // applied just now
			return res, nil
		default:
		}
		return route.Result{}, ErrUnconfirmed
	}
}

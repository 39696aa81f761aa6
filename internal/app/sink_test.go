package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/kafkaio"
	"vigia/internal/store"
	_ "vigia/internal/store/chdb"
)

func sinkConfig(t *testing.T, brokers []string) config.Config {
	cfg := testConfig(t)
	cfg.Kafka.Brokers = brokers
	cfg.ClickHouse.Path = t.TempDir()
	cfg.ClickHouse.Sink.Listen = "127.0.0.1:0"
	cfg.ClickHouse.Sink.GroupID = "test-sink"
	cfg.ClickHouse.Sink.BatchRows = 500
	cfg.ClickHouse.Sink.BatchWait = 200 * time.Millisecond
	cfg.ClickHouse.Sink.MaxBackoff = 300 * time.Millisecond
	if err := cfg.ValidateFor("sink"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openTestStore(t *testing.T, cfg config.Config) *store.Store {
	t.Helper()
	st, err := OpenStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startSink(t *testing.T, cfg config.Config, st *store.Store, ins interface {
	Insert(context.Context, string, string, *store.Values) error
}) *Sink {
	t.Helper()
	s := NewSink(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), st, ins)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop sink: %v", err)
		}
	})
	waitReady(t, "http://"+s.Addr(), 30*time.Second)
	return s
}

func storeCount(t *testing.T, st *store.Store, q string) int64 {
	t.Helper()
	n, err := st.Count(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func publishAction(t *testing.T, brokers []string, r action.Record) {
	t.Helper()
	w, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: brokers, BatchTimeout: time.Millisecond, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	v, _ := json.Marshal(r)
	if err := w.WriteMessages(context.Background(), kafka.Message{Topic: "vigia.actions", Key: []byte(r.ID), Value: v}); err != nil {
		t.Fatal(err)
	}
}

// flakyInserter stands for a ClickHouse that is down (every insert
// refused) or that loses acknowledgements (the insert lands, the answer
// does not: the sink retries the same batch).
type flakyInserter struct {
	st       *store.Store
	down     atomic.Bool
	loseAcks atomic.Int32
	mu       sync.Mutex
	refused  int
}

func (f *flakyInserter) Insert(ctx context.Context, table, token string, v *store.Values) error {
	if f.down.Load() {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		return errors.New("dial tcp 127.0.0.1:9000: connection refused")
	}
	if err := f.st.Insert(ctx, table, token, v); err != nil {
		return err
	}
	if f.loseAcks.Add(-1) >= 0 {
		return errors.New("read: i/o timeout (the insert landed; its answer was lost)")
	}
	return nil
}

func (f *flakyInserter) refusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// TestSinkEndToEnd: webhooks through ingest, an alert state change and a
// route action on their topics; the sink writes each into its table once,
// the rollups count the events, and offsets are committed.
func TestSinkEndToEnd(t *testing.T) {
	ing, ingBase := startIngest(t, testConfig(t))
	cfg := sinkConfig(t, ing.Brokers())
	st := openTestStore(t, cfg)
	sk := startSink(t, cfg, st, st)

	now := time.Now()
	for i := range 4 {
		if resp := postSigned(t, ingBase, throttledBatch("PN9", 250, i*250, now), testSecret); resp.StatusCode != 200 {
			t.Fatalf("ingest: %d", resp.StatusCode)
		}
	}
	a := alertRecord(alert.StateFiring, now, now)
	publishAlerts(t, ing.Brokers(), a)
	publishAction(t, ing.Brokers(), action.Record{SchemaVersion: 1, ID: "act-1", Time: now, Actor: "DeliveryRateDrop",
		ActorKind: action.ActorRule, Action: "failover", UseCase: "sales", Target: "106540352242922",
		AlertFingerprint: a.Fingerprint, Occurrence: a.Occurrence(), Before: json.RawMessage(`{"active":"A"}`), After: json.RawMessage(`{"active":"B"}`)})

	eventually(t, 20*time.Second, "1000 events, 1 alert, 1 action in ClickHouse", func() bool {
		return storeCount(t, st, "SELECT count() FROM vigia.events") == 1000 &&
			storeCount(t, st, "SELECT count() FROM vigia.alerts") == 1 &&
			storeCount(t, st, "SELECT count() FROM vigia.actions") == 1
	})
	if n := storeCount(t, st, "SELECT sum(failed) FROM vigia.rollup_minute WHERE phone_number_id = 'PN9' AND error_code = 130429"); n != 1000 {
		t.Errorf("rollups count %d failed statuses with 130429, want 1000", n)
	}
	if n := storeCount(t, st, "SELECT count() FROM vigia.alerts WHERE alertname = 'DeliveryRateDrop' AND state = 'firing' AND labels['phone_number'] = '106540352242922'"); n != 1 {
		t.Errorf("alert row not found as written")
	}
	eventually(t, 5*time.Second, "offsets committed", func() bool {
		return committedOffsetsOf(t, ing.Brokers(), "test-sink", "vigia.events") == 1000
	})

	// The read-only SQL endpoint: the way to embedded chDB while the
	// sink holds it.
	base := "http://" + sk.Addr() + "/api/v1/query"
	resp, err := http.Post(base, "text/plain", strings.NewReader("SELECT phone_number_id, count() FROM vigia.events GROUP BY phone_number_id"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "PN9\t1000\n" {
		t.Errorf("query: %d %q", resp.StatusCode, body)
	}
	for q, code := range map[string]int{"INSERT INTO vigia.events (id) VALUES ('x')": 403, "DROP TABLE vigia.events": 403,
		"": 400, "SELECT nope FROM vigia.events": 400} {
		resp, err := http.Get(base + "?query=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%q: %d %s, want %d with a problem body", q, resp.StatusCode, resp.Header.Get("Content-Type"), code)
		}
	}
	if n := storeCount(t, st, "SELECT count() FROM vigia.events"); n != 1000 {
		t.Errorf("events after refused statements: %d", n)
	}
}

// TestSinkClickHouseDownCatchesUp: with ClickHouse refusing inserts, the
// evaluator still fires its alert (alerting never waits on the history);
// the sink retries and commits nothing; once ClickHouse is back it
// catches up, and an insert whose acknowledgement was lost and retried is
// not stored twice: every event is there once, in the table and in the
// rollups.
func TestSinkClickHouseDownCatchesUp(t *testing.T) {
	ing, ingBase := startIngest(t, testConfig(t))
	startEvaluator(t, evaluatorConfig(t, ing.Brokers()))
	cfg := sinkConfig(t, ing.Brokers())
	st := openTestStore(t, cfg)
	flaky := &flakyInserter{st: st}
	flaky.down.Store(true)
	startSink(t, cfg, st, flaky)

	if resp := postSigned(t, ingBase, throttledBatch("PN3", 600, 0, time.Now()), testSecret); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	waitForAlert(t, ing.Brokers(), 15*time.Second, func(as []alert.Alert) bool {
		return countState(as, "FastThroughputErrors", alert.StateFiring) == 1
	})
	eventually(t, 10*time.Second, "inserts refused while ClickHouse is down", func() bool { return flaky.refusals() >= 3 })
	if n := committedOffsetsOf(t, ing.Brokers(), "test-sink", "vigia.events"); n != 0 {
		t.Errorf("offsets committed while ClickHouse was down: %d", n)
	}

	flaky.loseAcks.Store(1)
	flaky.down.Store(false)
	// The events went out in the write that was retrying; the alert
	// records came later and may be in the write after it.
	eventually(t, 20*time.Second, "the sink caught up", func() bool {
		return storeCount(t, st, "SELECT count() FROM vigia.events") >= 600 &&
			committedOffsetsOf(t, ing.Brokers(), "test-sink", "vigia.events") == 600 &&
			storeCount(t, st, "SELECT count() FROM vigia.alerts") >= 1
	})
	for q, want := range map[string]int64{
		"SELECT count() FROM vigia.events":                              600,
		"SELECT count() FROM vigia.events FINAL":                        600,
		"SELECT sum(events) FROM vigia.rollup_minute":                   600,
		"SELECT uniqExact(id) FROM vigia.events":                        600,
		"SELECT count() FROM vigia.alerts WHERE state = 'firing'":       1,
		"SELECT count() FROM vigia.alerts FINAL WHERE state = 'firing'": 1,
	} {
		if n := storeCount(t, st, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
}

// TestSinkResumesFromStoredProgress: a sink whose offsets were never
// committed (a crash after ClickHouse took the rows, or a new group)
// resumes after what ClickHouse holds instead of inserting it again.
func TestSinkResumesFromStoredProgress(t *testing.T) {
	ing, ingBase := startIngest(t, testConfig(t))
	cfg := sinkConfig(t, ing.Brokers())
	st := openTestStore(t, cfg)
	first := NewSink(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), st, st)
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp := postSigned(t, ingBase, throttledBatch("PN4", 300, 0, time.Now()), testSecret); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	eventually(t, 20*time.Second, "300 events stored", func() bool { return storeCount(t, st, "SELECT count() FROM vigia.events") == 300 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()

	cfg.ClickHouse.Sink.GroupID = "test-sink-new" // no committed offsets
	second := startSink(t, cfg, st, st)
	if resp := postSigned(t, ingBase, throttledBatch("PN4", 100, 300, time.Now()), testSecret); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	eventually(t, 20*time.Second, "the new events stored", func() bool { return storeCount(t, st, "SELECT count() FROM vigia.events") >= 400 })
	time.Sleep(500 * time.Millisecond)
	if n := storeCount(t, st, "SELECT count() FROM vigia.events"); n != 400 {
		t.Errorf("%d event rows, want 400: stored events were inserted again", n)
	}
	if n := metricValue(t, second.Registry(), "vigia_sink_rows_total", "table", "events"); n != 100 {
		t.Errorf("the second sink inserted %v event rows, want the 100 new ones", n)
	}
}

// committedOffsetsOf sums the offsets group committed on topic.
func committedOffsetsOf(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: tr}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group,
		Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range resp.Topics[topic] {
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	return sum
}

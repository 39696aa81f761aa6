package sink_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"vigia/internal/sink"
	"vigia/internal/store"
)

// recorder is an Inserter that fails its first calls, then records.
type recorder struct {
	fail   int
	tokens []string
	rows   map[string]int
}

func (r *recorder) Insert(_ context.Context, table, token string, v *store.Values) error {
	r.tokens = append(r.tokens, token)
	if r.fail > 0 {
		r.fail--
		return errors.New("connection refused")
	}
	if r.rows == nil {
		r.rows = map[string]int{}
	}
	r.rows[table] += v.Rows()
	return nil
}

func newSink(ins sink.Inserter, rows int) *sink.Sink {
	return sink.New(ins, sink.Options{Topics: map[string]string{"vigia.events": sink.TableEvents, "vigia.alerts": sink.TableAlerts},
		BatchRows: rows, BatchWait: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
}

// Flush writes each table's batch, retrying a refused insert with the same
// token, and returns the offsets after the last record of each partition,
// undecodable records included (they are skipped, not waited for).
func TestFlushRetriesWithTheSameToken(t *testing.T) {
	msgs := records(10)
	rec := &recorder{fail: 2}
	sk := newSink(rec, 100)
	for i := range msgs {
		sk.Add(&msgs[i])
	}
	bad := kafka.Message{Topic: "vigia.events", Partition: 5, Offset: 99, Value: []byte(`{"schema_version":1,`)}
	sk.Add(&bad)
	if sk.Full() {
		t.Error("Full with 11 of 100 rows")
	}
	offs, err := sk.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.tokens) != 3 || rec.tokens[0] != rec.tokens[2] || !strings.HasPrefix(rec.tokens[0], "vigia-sink/events/") {
		t.Errorf("tokens %q: want three attempts with one token", rec.tokens)
	}
	if rec.rows["events"] != 10 {
		t.Errorf("inserted %d rows, want 10", rec.rows["events"])
	}
	want := map[int]int64{0: 2, 1: 2, 2: 2, 3: 2, 4: 1, 5: 100} // records(10): partition i%6, offset i/6
	for p, o := range want {
		if offs["vigia.events"][p] != o {
			t.Errorf("commit offset of partition %d = %d, want %d (all: %v)", p, offs["vigia.events"][p], o, offs)
		}
	}
	// Nothing waits any more: a second flush writes nothing.
	if offs, _ := sk.Flush(context.Background()); len(offs) != 0 || len(rec.tokens) != 3 {
		t.Errorf("second flush: %v, %d inserts", offs, len(rec.tokens))
	}
}

func TestFullAndDue(t *testing.T) {
	msgs := records(5)
	sk := newSink(&recorder{}, 5)
	if sk.Due() {
		t.Error("an empty sink is due")
	}
	for i := range msgs {
		sk.Add(&msgs[i])
	}
	if !sk.Full() || !sk.Due() {
		t.Errorf("5 of 5 rows: Full %v Due %v", sk.Full(), sk.Due())
	}
	// Reset forgets what was read: a new generation reads it again.
	sk.Reset()
	if sk.Due() {
		t.Error("due after Reset")
	}
	if offs, _ := sk.Flush(context.Background()); len(offs) != 0 {
		t.Errorf("Flush after Reset returned %v", offs)
	}
}

// A flush cut short by the context returns the error and no offsets for
// the batch it could not write.
func TestFlushStopsWithContext(t *testing.T) {
	msgs := records(3)
	sk := newSink(&recorder{fail: 1 << 30}, 100)
	for i := range msgs {
		sk.Add(&msgs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	offs, err := sk.Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || len(offs) != 0 {
		t.Errorf("Flush = %v, %v; want deadline exceeded and no offsets", offs, err)
	}
}

// gate is an Inserter that holds each insert until released.
type gate struct {
	started chan int // rows of each insert, as it starts
	release chan error
}

func (g *gate) Insert(_ context.Context, _, _ string, v *store.Values) error {
	g.started <- v.Rows()
	return <-g.release
}

// A sealed batch is written on another goroutine while the sink fills the
// next one: the two batches stay apart, the sealed one counts in the lag
// until Written, and a batch whose write failed is not reused.
func TestSealWriteWhileAdding(t *testing.T) {
	msgs := records(20)
	for i := range msgs {
		msgs[i].Time = time.Now().Add(-time.Duration(100-i) * time.Second)
	}
	g := &gate{started: make(chan int), release: make(chan error)}
	reg := prometheus.NewRegistry()
	sk := sink.New(g, sink.Options{Topics: map[string]string{"vigia.events": sink.TableEvents}, BatchRows: 10,
		BatchWait: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg})
	for i := range 10 {
		sk.Add(&msgs[i])
	}
	first := sk.Seal()
	if first.Empty() || first.Rows() != 10 || sk.Full() {
		t.Fatalf("sealed %d rows (empty %v), sink full %v; want 10 sealed and an empty sink", first.Rows(), first.Empty(), sk.Full())
	}
	type result struct {
		offs map[string]map[int]int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		offs, err := sk.Write(context.Background(), first)
		done <- result{offs, err}
	}()
	if n := <-g.started; n != 10 {
		t.Fatalf("insert of %d rows, want 10", n)
	}
	for i := 10; i < 15; i++ { // while the first write is in flight
		sk.Add(&msgs[i])
	}
	sk.Lag()
	if lag := gaugeValue(t, reg, "vigia_sink_lag_seconds"); lag < 99 {
		t.Errorf("lag %.0f s while the oldest record (100 s old) is being written, want ≥ 99", lag)
	}
	g.release <- nil
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := map[int]int64{}
	for i := range 10 {
		want[msgs[i].Partition] = max(want[msgs[i].Partition], msgs[i].Offset+1)
	}
	if got := r.offs["vigia.events"]; len(got) != len(want) {
		t.Errorf("offsets of the first write %v, want %v", got, want)
	} else {
		for p, o := range want {
			if got[p] != o {
				t.Errorf("offsets of the first write %v, want %v", got, want)
				break
			}
		}
	}
	sk.Written(first)
	sk.Lag()
	if lag := gaugeValue(t, reg, "vigia_sink_lag_seconds"); lag > 91 {
		t.Errorf("lag %.0f s after the first batch was written, want the 5 waiting records' (≤ 90 s)", lag)
	}

	// The second batch holds the five records added during the write,
	// and only them.
	second := sk.Seal()
	go func() {
		offs, err := sk.Write(context.Background(), second)
		done <- result{offs, err}
	}()
	if n := <-g.started; n != 5 {
		t.Errorf("second insert of %d rows, want 5", n)
	}
	g.release <- nil
	if r := <-done; r.err != nil || len(r.offs["vigia.events"]) == 0 {
		t.Fatalf("second write: %v, %v", r.offs, r.err)
	}
	sk.Written(second)

	// A write that ends with its context (the service stopping) returns
	// no offsets for the batch; the sink does not reuse its buffers.
	for i := 15; i < 20; i++ {
		sk.Add(&msgs[i])
	}
	third := sk.Seal()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		offs, err := sk.Write(ctx, third)
		done <- result{offs, err}
	}()
	<-g.started
	cancel()
	g.release <- errors.New("connection reset")
	if r := <-done; r.err == nil || len(r.offs) != 0 {
		t.Errorf("cancelled write: %v, %v; want an error and no offsets", r.offs, r.err)
	}
	sk.Written(third)
	sk.Add(&msgs[19])
	if p := sk.Seal(); p.Rows() != 1 {
		t.Errorf("a new batch after a failed write holds %d rows, want 1 (the failed batch's rows must not come back)", p.Rows())
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

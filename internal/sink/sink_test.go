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

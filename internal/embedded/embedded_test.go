package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"vigia/internal/kafkaio"
)

// TestRoundTripSurvivesRestart writes through kafka-go with acks=all, stops
// the broker, starts it again on the same data dir and reads the records back.
func TestRoundTripSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	b, err := Start(Options{DataDir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	brokers := b.Addrs()
	if err := kafkaio.EnsureTopics(ctx, brokers, []kafkaio.TopicSpec{{Name: "t", Partitions: 3, ReplicationFactor: 1, Retention: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	// a second call is a no-op, not an error
	if err := kafkaio.EnsureTopics(ctx, brokers, []kafkaio.TopicSpec{{Name: "t", Partitions: 3, ReplicationFactor: 1}}); err != nil {
		t.Fatalf("ensure existing topic: %v", err)
	}
	w, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: brokers, BatchTimeout: time.Millisecond, Compression: "lz4"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []kafka.Message{
		{Topic: "t", Key: []byte("waba-1"), Value: []byte("one")},
		{Topic: "t", Key: []byte("waba-1"), Value: []byte("two")},
		{Topic: "t", Key: []byte("waba-2"), Value: []byte("three")},
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	w.Close()
	b.Close()

	b2, err := Start(Options{DataDir: dir, Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if err := kafkaio.Ping(ctx, b2.Addrs(), "t"); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	got := map[string]string{}
	for p := 0; p < 3; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: b2.Addrs(), Topic: "t", Partition: p, MaxWait: 100 * time.Millisecond})
		for {
			rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			m, err := r.ReadMessage(rctx)
			rcancel()
			if err != nil {
				break
			}
			got[string(m.Value)] = string(m.Key)
		}
		r.Close()
	}
	want := map[string]string{"one": "waba-1", "two": "waba-1", "three": "waba-2"}
	if len(got) != len(want) {
		t.Fatalf("read back %v, want %v", got, want)
	}
	for v, k := range want {
		if got[v] != k {
			t.Errorf("record %q: key %q, want %q", v, got[v], k)
		}
	}
}

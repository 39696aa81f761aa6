package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"vigia/internal/config"
	"vigia/internal/event"
	"vigia/internal/sink"
	"vigia/internal/store"
	_ "vigia/internal/store/chdb"
	"vigia/internal/store/storetest"
)

// records are n events as ingest publishes them: statuses of messages
// across 1000 numbers and 50 templates, a tenth of them failed.
func records(n int) []kafka.Message {
	statuses := []string{"sent", "delivered", "read", "failed"}
	start := time.Now().Add(-time.Hour).UTC()
	out := make([]kafka.Message, n)
	for i := range n {
		ev := event.Event{SchemaVersion: event.SchemaVersion, Kind: event.KindStatus, Channel: event.ChannelWhatsApp,
			Source: "meta", Field: "messages", EventTime: start.Add(time.Duration(i) * time.Millisecond),
			ReceiveTime: start.Add(time.Duration(i)*time.Millisecond + 300*time.Millisecond),
			WABAID:      fmt.Sprintf("1022901293%05d", i%7), PhoneNumberID: fmt.Sprintf("1065403522%05d", i%1000),
			DisplayPhoneNumber: "15550783881", MessageID: fmt.Sprintf("wamid.HBgLNTUxMTk5OTk5OTk5FQIAERgS%016x", i/4),
			Status:      statuses[i%4],
			Recipient:   &event.Recipient{Pseudonym: fmt.Sprintf("55:%040x", i/4), CountryCode: "55", IDKind: "wa_id", Type: "individual"},
			Attribution: &event.Attribution{Template: fmt.Sprintf("template_%02d", i%50), UseCase: "sales", Campaign: "black-friday"},
			Pricing:     &event.Pricing{Billable: true, Model: "PMP", Type: "regular", Category: "marketing"}}
		if ev.Status == "failed" && i%10 == 3 {
			ev.Error = &event.Error{Code: 131049, Class: "quality", Title: "Meta chose not to deliver"}
		}
		ev.ID = event.NewID(ev.MessageID, ev.Status, fmt.Sprint(i))
		v, _ := json.Marshal(&ev)
		out[i] = kafka.Message{Topic: "vigia.events", Partition: i % 6, Offset: int64(i / 6), Value: v, Time: ev.ReceiveTime}
	}
	return out
}

func openBenchStore(b *testing.B) *store.Store {
	s, err := store.Open(context.Background(), store.Options{Path: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background(), storetest.Retention); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchRows are four batches of the default size.
var (
	benchBatch = config.Default().ClickHouse.Sink.BatchRows
	benchRows  = 4 * benchBatch
)

// BenchmarkSink: Kafka records of events decoded, formatted and inserted
// into chDB through the sink, in batches of the default size, the
// rollup and progress views included, with one batch written while the
// next is decoded (Seal, Write on another goroutine, Written), as the
// sink service does. Reports rows/s.
func BenchmarkSink(b *testing.B) {
	msgs := records(benchRows)
	st := openBenchStore(b)
	// One sink for the whole run, as the service has: its batches' buffers
	// are reused from one batch to the next.
	sk := sink.New(st, sink.Options{Topics: map[string]string{"vigia.events": sink.TableEvents}, BatchRows: benchBatch,
		BatchWait: time.Hour, MaxBackoff: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry()})
	for b.Loop() {
		b.StopTimer()
		emptyEvents(b, st)
		b.StartTimer()
		var (
			writing *sink.Sealed
			done    chan error
		)
		wait := func() {
			if writing != nil {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				sk.Written(writing)
				writing = nil
			}
		}
		write := func() {
			wait()
			writing, done = sk.Seal(), make(chan error, 1)
			go func(p *sink.Sealed) {
				_, err := sk.Write(context.Background(), p)
				done <- err
			}(writing)
		}
		for i := range msgs {
			sk.Add(&msgs[i])
			if sk.Full() {
				write()
			}
		}
		write()
		wait()
		b.StopTimer()
		checkEvents(b, st)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkChDBInsert: the same rows, formatted beforehand, inserted by
// chDB alone in the same batches (store.Insert: one Native block each):
// the floor the sink is compared to (its ratio is the cost of decoding
// and formatting).
func BenchmarkChDBInsert(b *testing.B) {
	msgs := records(benchRows)
	st := openBenchStore(b)
	var batches []*store.Values
	for i := 0; i < len(msgs); i += benchBatch {
		v := store.NewValues(store.EventColumns...)
		for j := i; j < min(i+benchBatch, len(msgs)); j++ {
			var ev event.Event
			if err := event.Decode(msgs[j].Value, &ev); err != nil {
				b.Fatal(err)
			}
			store.AppendEvent(v, &ev, store.Origin{Partition: msgs[j].Partition, Offset: msgs[j].Offset})
		}
		batches = append(batches, v)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		emptyEvents(b, st)
		b.StartTimer()
		for i, v := range batches {
			if err := st.Insert(context.Background(), "events", fmt.Sprintf("bench-%d-%d", b.N, i), v); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		checkEvents(b, st)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// emptyEvents empties the events table and the deduplication log its
// inserts' tokens went to, so that the next round's batches (same
// offsets, same tokens) are written rather than dropped as retries. Not
// timed.
func emptyEvents(b *testing.B, st *store.Store) {
	b.Helper()
	for _, q := range []string{"TRUNCATE TABLE vigia.events", "TRUNCATE TABLE vigia.rollup_minute"} {
		if err := st.Exec(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// checkEvents fails the benchmark unless every row landed.
func checkEvents(b *testing.B, st *store.Store) {
	b.Helper()
	n, err := st.Count(context.Background(), "SELECT count() FROM vigia.events")
	if err != nil || n != int64(benchRows) {
		b.Fatalf("%d rows in events after a round (%v), want %d", n, err, benchRows)
	}
}

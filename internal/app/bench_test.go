package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"vigia/internal/event"
	"vigia/internal/kafkaio"
)

// BenchmarkEvaluatorCatchUp measures the evaluator end to end from a real
// broker: a topic pre-filled with benchEvents status events (10,000 phone
// numbers, 3 partitions) is consumed from the start by a fresh consumer
// group with the shipped rule pack, until the evaluator reports it caught
// up. Reported: events/s from start (restoring alerts and joining the group
// included) and events/s from the group join (reading, decoding, windows).
//
//	VIGIA_TEST_REAL_KAFKA=1 go test ./internal/app -run XXX -bench EvaluatorCatchUp -benchtime 3x
func BenchmarkEvaluatorCatchUp(b *testing.B) {
	if os.Getenv("VIGIA_TEST_REAL_KAFKA") != "1" {
		b.Skip("needs VIGIA_TEST_REAL_KAFKA=1 (a real broker)")
	}
	const benchEvents = 500_000
	broker := &realBroker{t: nil, port: 19692, dir: b.TempDir()}
	runScript := func(args ...string) {
		if out, err := scriptCmd(broker, args...).CombinedOutput(); err != nil {
			b.Fatalf("kafka.sh %v: %v\n%s", args, err, out)
		}
	}
	runScript("start")
	defer runScript("stop")
	brokers := broker.addr()
	ctx := context.Background()
	if err := kafkaio.EnsureTopics(ctx, brokers, []kafkaio.TopicSpec{{Name: "vigia.events", Partitions: 3, ReplicationFactor: 1}}); err != nil {
		b.Fatal(err)
	}
	p, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: brokers, BatchTimeout: 5 * time.Millisecond, Compression: "lz4"})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	batch := make([]kafka.Message, 0, 10000)
	for i := 0; i < benchEvents; i++ {
		phone := fmt.Sprintf("PN%05d", i%10000)
		status := []string{"sent", "delivered", "read", "failed"}[i%4]
		ev := event.Event{SchemaVersion: 1, ID: event.NewID("bench", fmt.Sprint(i)), Kind: event.KindStatus,
			Channel: event.ChannelWhatsApp, Source: "meta", EventTime: now.Add(-time.Duration(benchEvents-i) * time.Millisecond),
			ReceiveTime: now, WABAID: fmt.Sprintf("W%02d", i%50), PhoneNumberID: phone, MessageID: fmt.Sprintf("wamid.%d", i/4),
			Status: status, Recipient: &event.Recipient{Pseudonym: fmt.Sprintf("%032x", i/4), CountryCode: "55", IDKind: "phone"},
			Attribution: &event.Attribution{Template: fmt.Sprintf("tpl%d", i%40), UseCase: "sales"}}
		if status == "failed" {
			ev.Error = &event.Error{Code: 131026, Class: event.ClassUndeliverable}
		}
		v, _ := json.Marshal(&ev)
		batch = append(batch, kafka.Message{Topic: "vigia.events", Key: []byte(ev.WABAID), Value: v})
		if len(batch) == cap(batch) {
			if err := p.WriteMessages(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := p.WriteMessages(ctx, batch...); err != nil {
		b.Fatal(err)
	}
	p.Close()

	b.ResetTimer()
	var total, fromJoin time.Duration
	for i := 0; i < b.N; i++ {
		cfg := testConfig(b)
		cfg.Kafka.Brokers = brokers
		cfg.Evaluator.Listen = "127.0.0.1:0"
		cfg.Evaluator.Rules = []string{"../../rules"}
		cfg.Evaluator.GroupID = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		ev, err := NewEvaluator(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := ev.Start(ctx); err != nil {
			b.Fatal(err)
		}
		for !ev.caughtUp.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
		fromJoin += time.Since(time.Unix(0, ev.joinedAt.Load()))
		_ = ev.Stop(ctx)
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/total.Seconds(), "events/s")
	b.ReportMetric(float64(benchEvents)*float64(b.N)/fromJoin.Seconds(), "events/s-after-join")
}

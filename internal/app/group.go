package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// consumeGroup joins consumer group groupID on topics and calls run for
// every generation, one after the other, until ctx ends. run returns when
// its generation ends (a rebalance) or ctx does. A new group starts at the
// first offset.
func consumeGroup(ctx context.Context, log *slog.Logger, brokers []string, groupID string, topics []string, run func(ctx context.Context, gen *kafka.Generation)) {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: groupID, Brokers: brokers, Topics: topics,
		StartOffset: kafka.FirstOffset, Timeout: 10 * time.Second})
	if err != nil {
		log.Error("consumer group", "err", err)
		return
	}
	defer cg.Close()
	for ctx.Err() == nil {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("consumer group generation", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		run(ctx, gen)
	}
}

// readPartitions starts one reader per partition of starts, from its
// offset there, feeding box until ctx ends or box is closed; the returned
// function waits for the readers to finish. A reader's error ends that
// reader and is handed to box.
func readPartitions(ctx context.Context, log *slog.Logger, brokers []string, topic string, starts map[int]int64, maxBytes int, box *inbox) (wait func()) {
	var readers sync.WaitGroup
	for p, start := range starts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: maxBytes, MaxWait: 200 * time.Millisecond})
		if err := r.SetOffset(start); err != nil {
			log.Warn("set offset", "partition", p, "err", err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if !box.put(ctx, m, err) || err != nil {
					return
				}
			}
		}()
	}
	return readers.Wait
}

// commitChanged commits the offsets of offs that differ from last (what
// was committed before) and records them in last.
func commitChanged(gen *kafka.Generation, topic string, offs, last map[int]int64) error {
	changed := map[int]int64{}
	for p, o := range offs {
		if last[p] != o {
			changed[p] = o
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{topic: changed}); err != nil {
		return err
	}
	for p, o := range changed {
		last[p] = o
	}
	return nil
}

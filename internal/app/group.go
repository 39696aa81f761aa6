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

// inbox queues what the partition readers fetched for the applying
// goroutine, in batches, bounded: a reader waits while it is full.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	msgs   []kafka.Message
	spare  []kafka.Message
	err    error
	max    int
	closed bool
	ready  chan struct{} // has a value when msgs or err is waiting
}

func newInbox(max int) *inbox {
	b := &inbox{max: max, ready: make(chan struct{}, 1)}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// put queues one fetched message (or the reader's error); false when the
// inbox is closed.
func (b *inbox) put(ctx context.Context, m kafka.Message, err error) bool {
	b.mu.Lock()
	for len(b.msgs) >= b.max && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return false
	}
	if err != nil {
		if b.err == nil && ctx.Err() == nil {
			b.err = err
		}
	} else {
		b.msgs = append(b.msgs, m)
	}
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns everything queued; the slice is valid until the next take.
func (b *inbox) take() ([]kafka.Message, error) {
	b.mu.Lock()
	out, err := b.msgs, b.err
	b.msgs, b.spare = b.spare[:0], out
	b.err = nil
	b.cond.Broadcast()
	b.mu.Unlock()
	return out, err
}

func (b *inbox) close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
}

// generationDone returns a channel closed when gen ends (a rebalance, or
// the group closing).
func generationDone(gen *kafka.Generation) <-chan struct{} {
	done := make(chan struct{})
	gen.Start(func(ctx context.Context) { <-ctx.Done(); close(done) })
	return done
}

// Package nflog is the notification log: what was sent to which receiver,
// kept in a compacted Kafka topic so that it survives restarts and is
// shared by notifier replicas (whoever owns an alert's partition after a
// rebalance reads what the previous owner sent).
//
// Each entry is one record keyed by receiver/fingerprint, so compaction
// keeps the last entry per receiver and alert; the topic's size is bounded
// by the number of alerts, not by time. The log is read whole into memory
// when a notifier joins its group, and written synchronously (acks=all)
// after each delivery.
package nflog

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"

	"vigia/internal/kafkaio"
	"vigia/internal/notify"
)

// Kafka is the log on a compacted topic.
type Kafka struct {
	brokers []string
	topic   string
	w       *kafkaio.Producer
	mem     *Memory
}

// Open returns the log on topic, which must exist (compacted), written
// with w. Call Load before the first Get.
func Open(brokers []string, topic string, w *kafkaio.Producer) *Kafka {
	return &Kafka{brokers: brokers, topic: topic, w: w, mem: NewMemory()}
}

// Load reads the whole topic and replaces what is in memory with its last
// entry per key. It returns the number of entries.
func (l *Kafka) Load(ctx context.Context) (int, error) {
	msgs, err := kafkaio.ReadAll(ctx, l.brokers, l.topic)
	if err != nil {
		return 0, fmt.Errorf("notification log %s: %w", l.topic, err)
	}
	mem := NewMemory()
	for _, m := range msgs {
		var e notify.Entry
		if len(m.Value) == 0 || json.Unmarshal(m.Value, &e) != nil {
			continue // a tombstone or a record of another version: nothing sent that we can use
		}
		mem.entries[key(e.Receiver, e.Fingerprint)] = e
	}
	l.mem.replace(mem)
	return mem.Len(), nil
}

// Get returns the last entry of receiver for the alert.
func (l *Kafka) Get(receiver, fingerprint string) (notify.Entry, bool) {
	return l.mem.Get(receiver, fingerprint)
}

// Put writes the entries to the topic and, once Kafka acknowledged them,
// to memory.
func (l *Kafka) Put(ctx context.Context, entries ...notify.Entry) error {
	msgs := make([]kafka.Message, len(entries))
	for i := range entries {
		v, err := json.Marshal(&entries[i])
		if err != nil {
			return err
		}
		msgs[i] = kafka.Message{Topic: l.topic, Key: []byte(key(entries[i].Receiver, entries[i].Fingerprint)), Value: v}
	}
	if err := l.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("notification log %s: %w", l.topic, err)
	}
	return l.mem.Put(ctx, entries...)
}

func key(receiver, fingerprint string) string { return receiver + "/" + fingerprint }

// Memory is a log held in memory only: for tests, and as the Kafka log's
// cache.
type Memory struct {
	mu      sync.RWMutex
	entries map[string]notify.Entry
}

// NewMemory returns an empty log.
func NewMemory() *Memory { return &Memory{entries: map[string]notify.Entry{}} }

// Get returns the last entry of receiver for the alert.
func (m *Memory) Get(receiver, fingerprint string) (notify.Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.entries[key(receiver, fingerprint)]
	return e, ok
}

// Put stores the entries.
func (m *Memory) Put(_ context.Context, entries ...notify.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		m.entries[key(e.Receiver, e.Fingerprint)] = e
	}
	return nil
}

// Len is the number of entries.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

func (m *Memory) replace(other *Memory) {
	m.mu.Lock()
	m.entries = other.entries
	m.mu.Unlock()
}

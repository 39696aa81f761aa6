// Package kafkaio holds Vigia's Kafka plumbing on top of segmentio/kafka-go:
// a producer with safe settings (kafka-go's defaults are not safe for us:
// acks from the leader only, a 1 s linger, 10 retries hidden inside one call),
// topic creation with partition counts and configs, and a reachability check
// for readiness.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// WriterOptions configures NewWriter.
type WriterOptions struct {
	Brokers      []string
	BatchTimeout time.Duration // linger; a few ms
	Compression  string        // none, gzip, snappy, lz4, zstd
	// MaxRecordBytes bounds one batch; it must exceed the largest record
	// (a raw webhook payload of several MB).
	MaxRecordBytes int64
}

// NewWriter returns a producer that is only done when every in-sync replica
// has the records (acks=all), lingers BatchTimeout at most, retries a few
// times quickly and leaves longer waits to the caller's context. Records
// carry their topic; keys are hashed with murmur2 like the Java client, so
// other clients agree on which partition a WABA lives in.
func NewWriter(o WriterOptions) (*Producer, error) {
	comp, err := compression(o.Compression)
	if err != nil {
		return nil, err
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = 16 << 20
	}
	t := &kafka.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	w := &kafka.Writer{
		Transport:              t,
		Addr:                   kafka.TCP(o.Brokers...),
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           o.BatchTimeout,
		BatchSize:              5000,
		BatchBytes:             o.MaxRecordBytes,
		MaxAttempts:            3,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		ReadTimeout:            10 * time.Second,
		WriteTimeout:           10 * time.Second,
		Compression:            comp,
		AllowAutoTopicCreation: false,
	}
	return &Producer{Writer: w, transport: t}, nil
}

// Producer is a kafka.Writer that owns its connection pool.
type Producer struct {
	*kafka.Writer
	transport *kafka.Transport
}

// Close flushes pending records and closes the connections.
func (p *Producer) Close() error {
	err := p.Writer.Close()
	p.transport.CloseIdleConnections()
	return err
}

func compression(name string) (kafka.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q", name)
}

// TopicSpec describes a topic Vigia needs.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	Retention         time.Duration
	MaxMessageBytes   int64 // 0: broker default
	Compacted         bool
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left as they are (their partition count is an operator's decision).
// Creating them up front matters: a kafka-go group reader started before its
// topic exists never gets partitions.
func EnsureTopics(ctx context.Context, brokers []string, specs []TopicSpec) error {
	a := NewAdmin(brokers)
	defer a.Close()
	return a.EnsureTopics(ctx, specs)
}

// Admin is a metadata and topic client with its own connection pool, closed
// by Close (kafka-go's default transport would keep connections forever).
type Admin struct {
	brokers   []string
	client    *kafka.Client
	transport *kafka.Transport
	dialer    *kafka.Dialer
}

// NewAdmin returns an Admin for brokers.
func NewAdmin(brokers []string) *Admin {
	t := &kafka.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	return &Admin{
		brokers:   brokers,
		client:    &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: t},
		transport: t,
		dialer:    &kafka.Dialer{Timeout: 5 * time.Second},
	}
}

// Close releases the Admin's connections.
func (a *Admin) Close() { a.transport.CloseIdleConnections() }

// EnsureTopics is the package-level EnsureTopics on a's connections.
func (a *Admin) EnsureTopics(ctx context.Context, specs []TopicSpec) error {
	client := a.client
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		if s.Retention > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.Retention.Milliseconds(), 10)})
		}
		if s.MaxMessageBytes > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: strconv.FormatInt(s.MaxMessageBytes, 10)})
		}
		if s.Compacted {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for name, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", name, terr))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// A topic just created has no leader for a moment; callers that read or
	// write right away would get "not leader". Wait here, once, rather than
	// retrying in each of them.
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.Name
	}
	for {
		err := a.Ping(ctx, names...)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics created but not ready: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Ping asks the cluster for the metadata of topics and fails unless every one
// exists with a leader for each partition: what a producer needs to succeed.
func Ping(ctx context.Context, brokers []string, topics ...string) error {
	a := NewAdmin(brokers)
	defer a.Close()
	return a.Ping(ctx, topics...)
}

// Ping is the package-level Ping. It dials a fresh connection each time:
// kafka-go's transport answers metadata requests from a cache, which would
// keep reporting a dead cluster as healthy.
func (a *Admin) Ping(ctx context.Context, topics ...string) error {
	var lastErr error
	for _, b := range a.brokers {
		conn, err := a.dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = fmt.Errorf("dial %s: %w", b, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		parts, err := conn.ReadPartitions(topics...)
		conn.Close()
		if err != nil {
			lastErr = fmt.Errorf("metadata from %s: %w", b, err)
			continue
		}
		found := map[string]bool{}
		for _, p := range parts {
			if p.Error != nil {
				return fmt.Errorf("topic %s partition %d: %w", p.Topic, p.ID, p.Error)
			}
			if p.Leader.Host == "" {
				return fmt.Errorf("topic %s partition %d has no leader", p.Topic, p.ID)
			}
			found[p.Topic] = true
		}
		for _, t := range topics {
			if !found[t] {
				return fmt.Errorf("topic %s does not exist", t)
			}
		}
		return nil
	}
	return lastErr
}

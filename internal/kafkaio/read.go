package kafkaio

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadAll returns every record of topic up to the end offsets the partitions
// had when it was called, partition by partition. It is meant for tools and
// tests (vigia-tail, assertions), not for consuming a stream.
func ReadAll(ctx context.Context, brokers []string, topic string) ([]kafka.Message, error) {
	a := NewAdmin(brokers)
	defer a.Close()
	client := a.client
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range md.Topics[0].Partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	var out []kafka.Message
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition,
			MaxWait: 100 * time.Millisecond, MaxBytes: 32 << 20})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return out, fmt.Errorf("read %s/%d: %w", topic, po.Partition, err)
			}
			out = append(out, m)
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		r.Close()
	}
	return out, nil
}

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

// OffsetsForTime returns, for each partition of topic, the first offset of a
// record with a timestamp at or after since (the end offset when there is
// none), and the end offset now. The evaluator rebuilds its windows from the
// first and knows it has caught up at the second.
func (a *Admin) OffsetsForTime(ctx context.Context, topic string, partitions []int, since time.Time) (starts, ends map[int]int64, err error) {
	timeReq := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	endReq := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range partitions {
		timeReq.Topics[topic] = append(timeReq.Topics[topic], kafka.TimeOffsetOf(p, since))
		endReq.Topics[topic] = append(endReq.Topics[topic], kafka.LastOffsetOf(p))
	}
	starts, ends = map[int]int64{}, map[int]int64{}
	if len(partitions) == 0 {
		return starts, ends, nil
	}
	endResp, err := a.client.ListOffsets(ctx, endReq)
	if err != nil {
		return nil, nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	for _, po := range endResp.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("end offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	timeResp, err := a.client.ListOffsets(ctx, timeReq)
	if err != nil {
		return nil, nil, fmt.Errorf("offsets for time of %s: %w", topic, err)
	}
	for _, po := range timeResp.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("offset for time of %s/%d: %w", topic, po.Partition, po.Error)
		}
		// No record at or after since: start at the end (nothing to rebuild).
		off := ends[po.Partition]
		for o := range po.Offsets {
			if o >= 0 && o < off {
				off = o
			}
		}
		starts[po.Partition] = off
	}
	return starts, ends, nil
}

// EndOffset returns the offset the next record of topic's partition will
// get: a reader that has read up to it has caught up with the log as it
// was when EndOffset was called.
func (a *Admin) EndOffset(ctx context.Context, topic string, partition int) (int64, error) {
	resp, err := a.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, fmt.Errorf("end offset of %s/%d: %w", topic, partition, err)
	}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return 0, fmt.Errorf("end offset of %s/%d: %w", topic, partition, po.Error)
		}
		return po.LastOffset, nil
	}
	return 0, fmt.Errorf("end offset of %s/%d: no answer", topic, partition)
}

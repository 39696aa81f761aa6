package ingest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/segmentio/kafka-go"

	"vigia/internal/event"
	"vigia/internal/meta"
)

// Record headers on dead-letter and raw records, so that a replay tool can
// tell where a record came from and why it is there.
const (
	HeaderSource     = "vigia-source"
	HeaderReason     = "vigia-reason"
	HeaderDetail     = "vigia-detail"
	HeaderField      = "vigia-field"
	HeaderReceivedAt = "vigia-received-at"
)

// batch collects the records one request produces; they are written in one
// call so that the answer covers all of them.
type batch struct {
	s           *Server
	source      string
	received    time.Time
	msgs        []kafka.Message
	kinds       map[event.Kind]int
	dlqReasons  map[string]int
	events      int
	deadLetters int
	hasRaw      bool
	err         error
}

func (s *Server) newBatch(source string, received time.Time) *batch {
	return &batch{s: s, source: source, received: received, kinds: map[event.Kind]int{}, dlqReasons: map[string]int{}}
}

func (b *batch) add(events []event.Event, rejects []meta.Reject) {
	if cap(b.msgs) == 0 {
		b.msgs = make([]kafka.Message, 0, len(events)+len(rejects)+1)
	}
	for i := range events {
		v, err := json.Marshal(&events[i])
		if err != nil {
			b.err = err
			return
		}
		b.msgs = append(b.msgs, kafka.Message{Topic: b.s.o.Topics.Events, Key: []byte(partitionKey(&events[i])), Value: v})
		b.kinds[events[i].Kind]++
		b.events++
	}
	for _, r := range rejects {
		b.deadLetter(r.WABAID, r.Reason, r.Detail, r.Field, r.Item)
	}
}

// partitionKey keeps one business in one partition; events without a WABA
// (fallback channels with none configured) are keyed by channel.
func partitionKey(e *event.Event) string {
	if e.WABAID != "" {
		return e.WABAID
	}
	return string(e.Channel)
}

func (b *batch) deadLetter(key, reason, detail, field string, value []byte, extra ...kafka.Header) {
	h := append([]kafka.Header{
		{Key: HeaderSource, Value: []byte(b.source)},
		{Key: HeaderReason, Value: []byte(reason)},
		{Key: HeaderDetail, Value: []byte(detail)},
		{Key: HeaderField, Value: []byte(field)},
		{Key: HeaderReceivedAt, Value: []byte(b.received.UTC().Format(time.RFC3339Nano))},
	}, extra...)
	b.msgs = append(b.msgs, kafka.Message{Topic: b.s.o.Topics.DLQ, Key: []byte(key), Value: value, Headers: h})
	b.dlqReasons[reason]++
	b.deadLetters++
}

func (b *batch) raw(key string, body []byte, extra ...kafka.Header) {
	h := append([]kafka.Header{
		{Key: HeaderSource, Value: []byte(b.source)},
		{Key: HeaderReceivedAt, Value: []byte(b.received.UTC().Format(time.RFC3339Nano))},
	}, extra...)
	b.msgs = append(b.msgs, kafka.Message{Topic: b.s.o.Topics.Raw, Key: []byte(key), Value: body, Headers: h})
	b.hasRaw = true
}

func parseForm(body []byte) (url.Values, error) { return url.ParseQuery(string(body)) }

// requestBase reconstructs scheme://host from the request, honouring
// X-Forwarded-Proto from a TLS-terminating proxy.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

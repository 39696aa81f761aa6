package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigia/internal/event"
)

// Sources label the endpoints in metrics and dead-letter records.
const (
	SourceMeta     = "meta"
	SourceTwilio   = "twilio"
	SourceSendGrid = "sendgrid"
)

type metrics struct {
	requests        *prometheus.CounterVec   // source, code
	signatureFails  *prometheus.CounterVec   // source, reason
	events          *prometheus.CounterVec   // source, kind
	deadLetters     *prometheus.CounterVec   // source, reason
	publishFailures *prometheus.CounterVec   // source
	requestDuration *prometheus.HistogramVec // source
	publishDuration prometheus.Histogram
	updatesPerPost  prometheus.Histogram
	rawRecords      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigia_ingest_requests_total", Help: "Webhook requests answered, by source and HTTP status code.",
		}, []string{"source", "code"}),
		signatureFails: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigia_ingest_signature_failures_total", Help: "Requests refused with 401 because their signature was missing, bad or stale.",
		}, []string{"source", "reason"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigia_ingest_events_total", Help: "Normalized events published to the events topic, by source and kind.",
		}, []string{"source", "kind"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigia_ingest_dead_letters_total", Help: "Signed payloads or updates kept in the dead-letter topic because they could not be normalized, by reason.",
		}, []string{"source", "reason"}),
		publishFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigia_ingest_publish_failures_total", Help: "Requests answered 503 because Kafka did not acknowledge their records in time.",
		}, []string{"source"}),
		requestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigia_ingest_request_duration_seconds", Help: "Time from request start to answer, by source.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
		publishDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name: "vigia_ingest_publish_duration_seconds", Help: "Time Kafka took to acknowledge one request's records.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		updatesPerPost: f.NewHistogram(prometheus.HistogramOpts{
			Name: "vigia_ingest_updates_per_request", Help: "Events and rejects carried by one accepted webhook request.",
			Buckets: []float64{1, 2, 5, 10, 50, 100, 250, 500, 1000, 2500},
		}),
		rawRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "vigia_ingest_raw_records_total", Help: "Signed payloads copied to the raw topic.",
		}),
	}
	// Create the label values up front so that dashboards and alerts see
	// zeros instead of missing series.
	for _, src := range []string{SourceMeta, SourceTwilio, SourceSendGrid} {
		m.publishFailures.WithLabelValues(src)
		m.requestDuration.WithLabelValues(src)
		for _, reason := range []string{"missing", "mismatch"} {
			m.signatureFails.WithLabelValues(src, reason)
		}
		m.deadLetters.WithLabelValues(src, "malformed")
	}
	for _, k := range []event.Kind{event.KindStatus, event.KindInbound, event.KindUserPreference, event.KindPhoneQuality,
		event.KindTemplateStatus, event.KindTemplateQuality, event.KindAccountUpdate, event.KindAccountAlert,
		event.KindCapability, event.KindUnknown} {
		m.events.WithLabelValues(SourceMeta, string(k))
	}
	return m
}

// Metrics exposes the counters tests assert on.
type Metrics struct {
	Events, DeadLetters, SignatureFailures, PublishFailures *prometheus.CounterVec
}

// Metrics returns the server's counters.
func (s *Server) Metrics() Metrics {
	return Metrics{Events: s.m.events, DeadLetters: s.m.deadLetters, SignatureFailures: s.m.signatureFails, PublishFailures: s.m.publishFailures}
}

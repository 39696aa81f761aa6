package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values of the outcome and result labels.
const (
	outcomeDelivered = "delivered"
	outcomeFailed    = "failed"
	outcomeDropped   = "dropped"

	resultOK    = "ok"    // 2xx
	resultRetry = "retry" // 5xx, 408, 429, transport error: tried again
	resultError = "error" // any other answer: not tried again
)

// subMetrics are one subscriber's series, created up front so that every
// series exists (at 0) from the start and nothing is looked up per event.
type subMetrics struct {
	delivered, failed, dropped prometheus.Counter
	ok, retry, error           prometheus.Counter
	queueLength                prometheus.Gauge
	duration                   prometheus.Observer
}

type metrics struct {
	deliveries, attempts *prometheus.CounterVec
	queueLength          *prometheus.GaugeVec
	duration             *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	bySub := []string{"subscriber"}
	return &metrics{
		deliveries: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_control_webhook_deliveries_total",
			Help: "Webhook events done with, by outcome: delivered, failed (refused or too old) or dropped (queue full)."},
			[]string{"subscriber", "outcome"}),
		attempts: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_control_webhook_attempts_total",
			Help: "Webhook requests, by result: ok (2xx), retry (5xx, 408, 429, transport error) or error (refused for good)."},
			[]string{"subscriber", "result"}),
		queueLength: f.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_control_webhook_queue_length",
			Help: "Webhook events waiting for the subscriber (the one being retried not included)."}, bySub),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "vigia_control_webhook_attempt_duration_seconds",
			Help: "Time one webhook request took.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, bySub),
	}
}

func (m *metrics) subscriber(name string) *subMetrics {
	return &subMetrics{
		delivered:   m.deliveries.WithLabelValues(name, outcomeDelivered),
		failed:      m.deliveries.WithLabelValues(name, outcomeFailed),
		dropped:     m.deliveries.WithLabelValues(name, outcomeDropped),
		ok:          m.attempts.WithLabelValues(name, resultOK),
		retry:       m.attempts.WithLabelValues(name, resultRetry),
		error:       m.attempts.WithLabelValues(name, resultError),
		queueLength: m.queueLength.WithLabelValues(name),
		duration:    m.duration.WithLabelValues(name),
	}
}

package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the notification metrics of a service, per receiver.
type Metrics struct {
	sent, givenUp, dedup, dropped, logFailures *prometheus.CounterVec
	failed                                     *prometheus.CounterVec
	queueLength                                *prometheus.GaugeVec
	duration                                   *prometheus.HistogramVec
}

// NewMetrics registers the notification metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	byReceiver := []string{"receiver"}
	return &Metrics{
		sent: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_notifications_total",
			Help: "Notifications the receiver accepted (resends included)."}, byReceiver),
		failed: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_notifications_failed_total",
			Help: "Delivery attempts that failed, by reason (each retry counts)."}, []string{"receiver", "reason"}),
		givenUp: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_notifications_given_up_total",
			Help: "Notifications the receiver refused for good (not retried: a 4xx, an unknown channel)."}, byReceiver),
		dedup: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_notifications_deduplicated_total",
			Help: "Alert records not sent because the notification log says the receiver already has them."}, byReceiver),
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_notifications_dropped_total",
			Help: "Notifications dropped because the receiver's queue was full (oldest first)."}, byReceiver),
		logFailures: f.NewCounterVec(prometheus.CounterOpts{Name: "vigia_notifier_log_write_failures_total",
			Help: "Failed writes to the notification log (retried)."}, byReceiver),
		queueLength: f.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_notifier_queue_length",
			Help: "Notifications waiting for the receiver."}, byReceiver),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "vigia_notifier_request_duration_seconds",
			Help: "Time one delivery attempt to the receiver took.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, byReceiver),
	}
}

// ReceiverMetrics are one receiver's metrics, created up front so that
// every series exists from the start (at 0) and nothing is looked up per
// notification.
type ReceiverMetrics struct {
	Sent, GivenUp, Deduplicated, Dropped, LogFailures prometheus.Counter
	QueueLength                                       prometheus.Gauge
	Duration                                          prometheus.Observer
	failed                                            map[string]prometheus.Counter
}

// Receiver returns the metrics of the named receiver.
func (m *Metrics) Receiver(name string) *ReceiverMetrics {
	rm := &ReceiverMetrics{
		Sent: m.sent.WithLabelValues(name), GivenUp: m.givenUp.WithLabelValues(name),
		Deduplicated: m.dedup.WithLabelValues(name), Dropped: m.dropped.WithLabelValues(name),
		LogFailures: m.logFailures.WithLabelValues(name), QueueLength: m.queueLength.WithLabelValues(name),
		Duration: m.duration.WithLabelValues(name), failed: map[string]prometheus.Counter{},
	}
	for _, r := range Reasons {
		rm.failed[r] = m.failed.WithLabelValues(name, r)
	}
	return rm
}

// Failed is the failure counter for reason (other for an unknown one).
func (rm *ReceiverMetrics) Failed(reason string) prometheus.Counter {
	if c, ok := rm.failed[reason]; ok {
		return c
	}
	return rm.failed[ReasonOther]
}

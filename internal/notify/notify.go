// Package notify delivers alert state changes to the receivers people
// watch: Alertmanager and Slack.
//
// The shape is Alertmanager's notify package, cut to what Vigia needs: a
// [Notification] (one alert record on its way to one receiver) goes through
// a pipeline of small [Stage]s. The pipeline of a receiver is
//
//	Dedup(log) → Retry(notifier, backoff) → SetLog(log)
//
// and [FanOut] hands each record read from the alerts topic to every
// receiver's bounded [Queue], which a worker per receiver drains through
// that receiver's pipeline. A receiver that is down holds up only its own
// queue.
//
// # Delivery guarantees
//
// The notification [Log] remembers, per receiver and alert fingerprint, the
// last state sent and where it went (for Slack, the channel and message
// timestamp, so that the resolve updates the same message). Dedup drops a
// notification whose occurrence and state the log already holds: the
// alerts topic is read at least once, and a record read twice (a restart,
// a rebalance, a redelivery) is not posted twice. SetLog writes the entry
// only after the receiver accepted the notification, so a receiver that is
// down loses nothing: the worker retries with backoff until it is back or
// the queue overflows (drop-oldest, counted). The one window left is a
// crash between the receiver's acceptance and the log write: the record
// is then sent again after the restart (at least once, never lost).
package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"vigia/internal/alert"
)

// Notification is one alert record on its way to one receiver.
type Notification struct {
	Receiver string
	Alert    *alert.Alert

	// Prev is what the log holds for this receiver and alert (the last
	// state sent), nil when nothing was sent yet. Dedup fills it in.
	Prev *Entry

	// Resend marks a periodic re-send of a firing alert (Alertmanager
	// needs one before the alert's endsAt), which Dedup lets through.
	Resend bool

	// Receipt is filled in by the notifier: where the notification went,
	// kept in the log so that a later state of the same occurrence can
	// update it (Slack: channel id and message ts).
	Receipt Receipt

	// done, when set, is called once the notification left the pipeline
	// (sent, dropped, deduplicated or failed for good).
	done func()
}

// Receipt says where a notification went, for receivers that can update
// what they sent.
type Receipt struct {
	Channel   string `json:"channel,omitempty"`    // Slack channel id
	MessageTS string `json:"message_ts,omitempty"` // Slack message ts: the message's id in its channel
}

// Entry is what the notification log holds per receiver and alert: the last
// state sent for which occurrence, and where.
type Entry struct {
	Receiver    string      `json:"receiver"`
	Fingerprint string      `json:"fingerprint"`
	Occurrence  string      `json:"occurrence"` // alert.Alert.Occurrence of the record sent
	ActiveAt    time.Time   `json:"active_at"`  // of that occurrence: orders occurrences
	State       alert.State `json:"state"`
	SentAt      time.Time   `json:"sent_at"`
	// Receipt is where the occurrence's notification went (the Slack
	// message a resolve updates); kept from an earlier state of the same
	// occurrence when a later one came back without its own.
	Receipt Receipt `json:"receipt,omitzero"`
}

// Log is the notification log: what was sent to which receiver. Put must
// make the entries durable before it returns.
type Log interface {
	Get(receiver, fingerprint string) (Entry, bool)
	Put(ctx context.Context, entries ...Entry) error
}

// Notifier delivers notifications to one receiver. It returns whether a
// failure is worth retrying (a timeout, a 5xx, a rate limit) or final (a
// 4xx that will not change, a bad channel). Failures should be *Error so
// that the metrics can say why.
type Notifier interface {
	Notify(ctx context.Context, ns ...*Notification) (retry bool, err error)
}

// Failure reasons, the values of the reason label of the failure metric.
const (
	ReasonTimeout     = "timeout"      // the receiver did not answer in time
	ReasonUnreachable = "unreachable"  // connection refused, DNS, reset
	ReasonRateLimited = "rate_limited" // 429 or the receiver's own rate limit
	ReasonServerError = "server_error" // 5xx
	ReasonClientError = "client_error" // 4xx other than 429: the request is wrong
	ReasonAPIError    = "api_error"    // the receiver answered with an error of its own (Slack ok:false)
	ReasonOther       = "other"
)

// Reasons lists every failure reason, for creating metric labels up front.
var Reasons = []string{ReasonTimeout, ReasonUnreachable, ReasonRateLimited, ReasonServerError,
	ReasonClientError, ReasonAPIError, ReasonOther}

// Error is a failed delivery with the reason it failed and, for rate
// limits, how long the receiver asked to wait.
type Error struct {
	Reason     string
	RetryAfter time.Duration // 0: use the backoff
	Err        error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the failure reason of err: the Reason of an *Error in
// its chain, timeout for a context deadline, other otherwise.
func ReasonOf(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	}
	return ReasonOther
}

// retryAfter returns the wait a receiver asked for, 0 if none.
func retryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// TransportError classifies an error of the HTTP round trip itself (no
// answer): a timeout or an unreachable receiver, both worth retrying.
func TransportError(err error) *Error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Reason: ReasonTimeout, Err: err}
	}
	return &Error{Reason: ReasonUnreachable, Err: err}
}

// StatusError classifies an HTTP answer that is not a success and says
// whether it is worth retrying: 429 and 5xx are, other 4xx are not.
// retryAfter is the receiver's Retry-After, 0 if it gave none.
func StatusError(code int, retryAfter time.Duration, err error) (retry bool, e *Error) {
	switch {
	case code == http.StatusTooManyRequests:
		return true, &Error{Reason: ReasonRateLimited, RetryAfter: retryAfter, Err: err}
	case code >= 500:
		return true, &Error{Reason: ReasonServerError, Err: err}
	case code == http.StatusRequestTimeout:
		return true, &Error{Reason: ReasonTimeout, Err: err}
	}
	return false, &Error{Reason: ReasonClientError, Err: err}
}

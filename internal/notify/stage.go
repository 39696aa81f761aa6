package notify

import (
	"context"
	"log/slog"
	"time"

	"vigia/internal/alert"
	"vigia/internal/backoff"
)

// Stage is one step of a receiver's pipeline. It returns the notifications
// that go on to the next stage (a subset of ns, possibly none) or an
// error that ends the pipeline for all of them.
type Stage interface {
	Exec(ctx context.Context, ns []*Notification) ([]*Notification, error)
}

// StageFunc adapts a function to a Stage.
type StageFunc func(ctx context.Context, ns []*Notification) ([]*Notification, error)

// Exec calls f.
func (f StageFunc) Exec(ctx context.Context, ns []*Notification) ([]*Notification, error) {
	return f(ctx, ns)
}

// MultiStage runs its stages in order, each on what the previous one let
// through; it stops early when nothing is left or a stage fails.
type MultiStage []Stage

// Exec runs the stages.
func (ms MultiStage) Exec(ctx context.Context, ns []*Notification) ([]*Notification, error) {
	var err error
	for _, s := range ms {
		if len(ns) == 0 {
			return nil, nil
		}
		if ns, err = s.Exec(ctx, ns); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// stateRank orders the states of one occurrence as they happen.
func stateRank(s alert.State) int {
	switch s {
	case alert.StatePending:
		return 1
	case alert.StateFiring:
		return 2
	case alert.StateResolved, alert.StateInactive:
		return 3
	}
	return 0
}

// Dedup drops what the log says this receiver already has: the same state
// of the same occurrence, an earlier state of it (a firing record read
// again after its resolve was sent), or an earlier occurrence. It fills in
// Prev for the notifications it lets through. Resends pass.
type Dedup struct {
	Log     Log
	Metrics *ReceiverMetrics
}

// Exec filters ns.
func (d Dedup) Exec(_ context.Context, ns []*Notification) ([]*Notification, error) {
	out := ns[:0]
	for _, n := range ns {
		if e, ok := d.Log.Get(n.Receiver, n.Alert.Fingerprint); ok {
			n.Prev = &e
			if !n.Resend && alreadySent(e, n.Alert) {
				d.Metrics.Deduplicated.Inc()
				n.finish()
				continue
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// alreadySent reports whether entry e covers record a: same or later
// occurrence, and for the same occurrence the same or a later state.
func alreadySent(e Entry, a *alert.Alert) bool {
	switch {
	case e.ActiveAt.After(a.ActiveAt):
		return true
	case e.ActiveAt.Equal(a.ActiveAt) && e.Occurrence == a.Occurrence():
		return stateRank(e.State) >= stateRank(a.State)
	}
	return false
}

// Retry calls the receiver's Notifier until it accepts the batch, the
// failure is final (retry false) or ctx ends. Between attempts it waits
// the backoff, or longer when the receiver asked for it (Retry-After). A
// receiver that is down is retried for as long as the service runs: its
// queue, bounded, is what limits how much waits.
type Retry struct {
	Notifier Notifier
	Backoff  backoff.Backoff
	Metrics  *ReceiverMetrics
	Log      *slog.Logger
}

// Exec delivers ns.
func (r Retry) Exec(ctx context.Context, ns []*Notification) ([]*Notification, error) {
	var wait time.Duration
	lastReason := ""
	for attempt := 1; ; attempt++ {
		start := time.Now()
		retry, err := r.Notifier.Notify(ctx, ns...)
		r.Metrics.Duration.Observe(time.Since(start).Seconds())
		if err == nil {
			r.Metrics.Sent.Add(float64(len(ns)))
			if lastReason != "" {
				r.Log.Info("receiver accepts notifications again", "attempts", attempt)
			}
			return ns, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err() // shutting down: not a receiver failure
		}
		reason := ReasonOf(err)
		r.Metrics.Failed(reason).Inc()
		if !retry {
			r.Metrics.GivenUp.Add(float64(len(ns)))
			r.Log.Error("notification refused; not retried", "err", err, "reason", reason,
				"alertname", ns[0].Alert.Name, "fingerprint", ns[0].Alert.Fingerprint, "batch", len(ns))
			for _, n := range ns {
				n.finish()
			}
			return nil, nil
		}
		if reason != lastReason { // log a repeated failure only when it changes
			r.Log.Warn("notification failed; retrying", "err", err, "reason", reason, "attempt", attempt)
			lastReason = reason
		}
		wait = r.Backoff.Next(wait)
		if err := backoff.Sleep(ctx, max(wait, retryAfter(err))); err != nil {
			return nil, err
		}
	}
}

// SetLog records in the log what the receiver accepted, so that Dedup
// drops it if it is read again. Resends are not recorded: the log already
// holds their firing state. A log write that fails is retried while ctx
// lasts; the notification was delivered either way.
type SetLog struct {
	Log     Log
	Metrics *ReceiverMetrics
	Backoff backoff.Backoff
	Now     func() time.Time
	Logger  *slog.Logger
}

// Exec writes the entries of ns.
func (s SetLog) Exec(ctx context.Context, ns []*Notification) ([]*Notification, error) {
	entries := make([]Entry, 0, len(ns))
	for _, n := range ns {
		if n.Resend {
			continue
		}
		entries = append(entries, entryOf(n, s.Now()))
	}
	var wait time.Duration
	for len(entries) > 0 {
		err := s.Log.Put(ctx, entries...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.Metrics.LogFailures.Inc()
		s.Logger.Warn("notification log write failed; retrying", "err", err)
		wait = s.Backoff.Next(wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
	for _, n := range ns {
		n.finish()
	}
	return ns, nil
}

// entryOf is the log entry of a delivered notification. A notification
// without a receipt of its own keeps the one of its occurrence's earlier
// state, so that the message to update stays known.
func entryOf(n *Notification, now time.Time) Entry {
	a := n.Alert
	e := Entry{Receiver: n.Receiver, Fingerprint: a.Fingerprint, Occurrence: a.Occurrence(),
		ActiveAt: a.ActiveAt, State: a.State, SentAt: now, Receipt: n.Receipt}
	if e.Receipt == (Receipt{}) && n.Prev != nil && n.Prev.Occurrence == e.Occurrence {
		e.Receipt = n.Prev.Receipt
	}
	return e
}

// finish tells whoever queued n that it left the pipeline; once only.
func (n *Notification) finish() {
	if n.done != nil {
		n.done()
		n.done = nil
	}
}

// OnDone sets the function called once n has left the pipeline (sent,
// deduplicated, dropped or refused for good); not called when the service
// stops with n still on its way.
func (n *Notification) OnDone(f func()) { n.done = f }

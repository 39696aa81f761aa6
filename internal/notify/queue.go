package notify

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"

	"vigia/internal/alert"
)

// Queue holds the notifications waiting for one receiver, in arrival
// order, bounded. It keeps one notification per alert: a newer record of
// the same alert replaces the one still waiting (a receiver that was down
// gets the alert's latest state, not its history), except that a resend
// never replaces a state change. When full it drops the oldest and counts
// it.
type Queue struct {
	mu      sync.Mutex
	items   *list.List               // of *Notification, oldest first
	byAlert map[string]*list.Element // fingerprint → element
	max     int
	ready   chan struct{} // has a value when items is not empty
	m       *ReceiverMetrics
}

// NewQueue returns a queue of at most capacity notifications.
func NewQueue(capacity int, m *ReceiverMetrics) *Queue {
	return &Queue{items: list.New(), byAlert: map[string]*list.Element{}, max: max(capacity, 1),
		ready: make(chan struct{}, 1), m: m}
}

// Push queues n, replacing a waiting notification of the same alert.
func (q *Queue) Push(n *Notification) {
	q.mu.Lock()
	defer q.mu.Unlock()
	fp := n.Alert.Fingerprint
	if el, ok := q.byAlert[fp]; ok {
		old := el.Value.(*Notification)
		if n.Resend && !old.Resend {
			return // the waiting state change carries more than a keep-alive
		}
		q.items.Remove(el)
		old.finish() // superseded: its offset need not wait for it
	}
	for q.items.Len() >= q.max {
		oldest := q.items.Remove(q.items.Front()).(*Notification)
		delete(q.byAlert, oldest.Alert.Fingerprint)
		q.m.Dropped.Inc()
		oldest.finish()
	}
	q.byAlert[fp] = q.items.PushBack(n)
	q.m.QueueLength.Set(float64(q.items.Len()))
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Pop waits for notifications and returns up to max of them, oldest
// first; nil once ctx ends.
func (q *Queue) Pop(ctx context.Context, max int) []*Notification {
	for {
		q.mu.Lock()
		if q.items.Len() > 0 {
			out := make([]*Notification, 0, min(max, q.items.Len()))
			for q.items.Len() > 0 && len(out) < max {
				n := q.items.Remove(q.items.Front()).(*Notification)
				delete(q.byAlert, n.Alert.Fingerprint)
				out = append(out, n)
			}
			if q.items.Len() > 0 {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			q.m.QueueLength.Set(float64(q.items.Len()))
			q.mu.Unlock()
			return out
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-q.ready:
		}
	}
}

// Clear empties the queue without finishing what it held: a new consumer
// generation reads those records again.
func (q *Queue) Clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items.Init()
	clear(q.byAlert)
	q.m.QueueLength.Set(0)
}

// Len is the number of notifications waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items.Len()
}

// Receiver is one destination with its queue and pipeline, drained by Run.
type Receiver struct {
	Name     string
	Queue    *Queue
	Pipeline Stage
	MaxBatch int // notifications per Notifier call (Slack 1, Alertmanager 64)
	Metrics  *ReceiverMetrics
	// Resends says whether the receiver wants periodic resends of firing
	// alerts (Alertmanager does; Slack does not).
	Resends bool
}

// Run drains the queue through the pipeline until ctx ends.
func (r *Receiver) Run(ctx context.Context) {
	for {
		ns := r.Queue.Pop(ctx, max(r.MaxBatch, 1))
		if ns == nil {
			return
		}
		// Errors end only this batch: a stage that fails for good has
		// finished its notifications, and one cut short by ctx leaves
		// them unfinished for the next run to read again.
		_, _ = r.Pipeline.Exec(ctx, ns)
	}
}

// FanOut hands a notification to every receiver's queue; done (may be
// nil) is called once every receiver is done with it.
func FanOut(receivers []*Receiver, a *alert.Alert, done func()) {
	if len(receivers) == 0 {
		if done != nil {
			done()
		}
		return
	}
	var left atomic.Int32
	left.Store(int32(len(receivers)))
	finish := func() {
		if left.Add(-1) == 0 && done != nil {
			done()
		}
	}
	for _, r := range receivers {
		n := &Notification{Receiver: r.Name, Alert: a}
		n.OnDone(finish)
		r.Queue.Push(n)
	}
}

package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"vigia/internal/alert"
	"vigia/internal/backoff"
	"vigia/internal/notify"
	"vigia/internal/notify/nflog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func record(fp string, state alert.State, activeAt time.Time) *alert.Alert {
	return &alert.Alert{SchemaVersion: alert.SchemaVersion, Fingerprint: fp, Name: "DeliveryRateDrop",
		State: state, Labels: map[string]string{"alertname": "DeliveryRateDrop"}, ActiveAt: activeAt, EvalTime: activeAt}
}

// fakeNotifier answers from a script of errors, then accepts; it records
// what it accepted.
type fakeNotifier struct {
	mu       sync.Mutex
	script   []error // one per call; nil = accept
	retry    bool
	accepted []*notify.Notification
	calls    int
}

func (f *fakeNotifier) Notify(_ context.Context, ns ...*notify.Notification) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.script) > 0 {
		err := f.script[0]
		f.script = f.script[1:]
		if err != nil {
			return f.retry, err
		}
	}
	for _, n := range ns {
		if n.Alert.State == alert.StateFiring { // like Slack's message; a resolve has no receipt of its own here
			n.Receipt = notify.Receipt{Channel: "C1", MessageTS: n.Alert.Fingerprint + "." + n.Alert.ActiveAt.Format("150405")}
		}
	}
	f.accepted = append(f.accepted, ns...)
	return false, nil
}

func (f *fakeNotifier) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.accepted {
		out = append(out, n.Alert.Fingerprint+":"+string(n.Alert.State))
	}
	return out
}

func pipeline(nt notify.Notifier, log notify.Log, rm *notify.ReceiverMetrics) notify.Stage {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	return notify.MultiStage{
		notify.Dedup{Log: log, Metrics: rm},
		notify.Retry{Notifier: nt, Backoff: b, Metrics: rm, Log: quiet},
		notify.SetLog{Log: log, Metrics: rm, Backoff: b, Now: func() time.Time { return t0 }, Logger: quiet},
	}
}

func metrics() *notify.ReceiverMetrics {
	return notify.NewMetrics(prometheus.NewRegistry()).Receiver("test")
}

func notification(a *alert.Alert, done *int) *notify.Notification {
	n := &notify.Notification{Receiver: "test", Alert: a}
	if done != nil {
		n.OnDone(func() { *done++ })
	}
	return n
}

func TestDedup(t *testing.T) {
	occ1, occ2 := t0, t0.Add(time.Hour)
	cases := []struct {
		name   string
		logged *alert.Alert // what the log holds for fp "a"
		next   *alert.Alert
		resend bool
		sent   bool
	}{
		{"nothing logged", nil, record("a", alert.StateFiring, occ1), false, true},
		{"same state again", record("a", alert.StateFiring, occ1), record("a", alert.StateFiring, occ1), false, false},
		{"resolve after firing", record("a", alert.StateFiring, occ1), record("a", alert.StateResolved, occ1), false, true},
		{"firing read again after its resolve", record("a", alert.StateResolved, occ1), record("a", alert.StateFiring, occ1), false, false},
		{"earlier occurrence read again", record("a", alert.StateFiring, occ2), record("a", alert.StateResolved, occ1), false, false},
		{"next occurrence", record("a", alert.StateResolved, occ1), record("a", alert.StateFiring, occ2), false, true},
		{"resend of a logged firing", record("a", alert.StateFiring, occ1), record("a", alert.StateFiring, occ1), true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := nflog.NewMemory()
			if c.logged != nil {
				_ = log.Put(context.Background(), notify.Entry{Receiver: "test", Fingerprint: "a", Occurrence: c.logged.Occurrence(),
					ActiveAt: c.logged.ActiveAt, State: c.logged.State, Receipt: notify.Receipt{Channel: "C1", MessageTS: "1.0"}})
			}
			rm := metrics()
			done := 0
			n := notification(c.next, &done)
			n.Resend = c.resend
			out, err := notify.Dedup{Log: log, Metrics: rm}.Exec(context.Background(), []*notify.Notification{n})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(out) == 1; got != c.sent {
				t.Fatalf("let through %v, want %v", got, c.sent)
			}
			if !c.sent && (done != 1 || testutil.ToFloat64(rm.Deduplicated) != 1) {
				t.Errorf("dropped notification: done %d times, deduplicated %v; want 1 and 1", done, testutil.ToFloat64(rm.Deduplicated))
			}
			if c.sent && c.logged != nil && (n.Prev == nil || n.Prev.Receipt.MessageTS != "1.0") {
				t.Errorf("Prev = %+v, want the logged entry", n.Prev)
			}
		})
	}
}

// A receiver that fails with retryable errors is retried with backoff, or
// after the wait it asked for, until it accepts; nothing is lost and the
// log records the delivery once.
func TestRetryUntilAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nt := &fakeNotifier{retry: true, script: []error{
			&notify.Error{Reason: notify.ReasonUnreachable, Err: errors.New("connection refused")},
			&notify.Error{Reason: notify.ReasonRateLimited, RetryAfter: 30 * time.Second, Err: errors.New("429")},
			&notify.Error{Reason: notify.ReasonServerError, Err: errors.New("503")},
		}}
		log, rm := nflog.NewMemory(), metrics()
		done := 0
		start := time.Now()
		out, err := pipeline(nt, log, rm).Exec(context.Background(), []*notify.Notification{notification(record("a", alert.StateFiring, t0), &done)})
		if err != nil || len(out) != 1 {
			t.Fatalf("Exec = %d, %v", len(out), err)
		}
		// Waits: 100 ms, then 30 s asked by the 429 (more than the 200 ms
		// backoff), then 400 ms.
		if took, want := time.Since(start), 30*time.Second+500*time.Millisecond; took != want {
			t.Errorf("took %s of fake time, want %s", took, want)
		}
		if nt.calls != 4 || done != 1 {
			t.Errorf("calls %d done %d, want 4 and 1", nt.calls, done)
		}
		for reason, want := range map[string]float64{"unreachable": 1, "rate_limited": 1, "server_error": 1, "timeout": 0} {
			if got := testutil.ToFloat64(rm.Failed(reason)); got != want {
				t.Errorf("failed{%s} = %v, want %v", reason, got, want)
			}
		}
		if testutil.ToFloat64(rm.Sent) != 1 {
			t.Errorf("sent = %v", testutil.ToFloat64(rm.Sent))
		}
		e, ok := log.Get("test", "a")
		if !ok || e.State != alert.StateFiring || e.Receipt.MessageTS != "a.120000" {
			t.Errorf("log entry %+v %v", e, ok)
		}
	})
}

func TestRetryGivesUpOnFinalError(t *testing.T) {
	nt := &fakeNotifier{retry: false, script: []error{&notify.Error{Reason: notify.ReasonClientError, Err: errors.New("400")}}}
	log, rm := nflog.NewMemory(), metrics()
	done := 0
	out, err := pipeline(nt, log, rm).Exec(context.Background(), []*notify.Notification{notification(record("a", alert.StateFiring, t0), &done)})
	if err != nil || len(out) != 0 {
		t.Fatalf("Exec = %d, %v; want nothing through, no error", len(out), err)
	}
	if nt.calls != 1 || done != 1 || testutil.ToFloat64(rm.GivenUp) != 1 || testutil.ToFloat64(rm.Failed("client_error")) != 1 {
		t.Errorf("calls %d done %d given up %v", nt.calls, done, testutil.ToFloat64(rm.GivenUp))
	}
	if _, ok := log.Get("test", "a"); ok {
		t.Error("a refused notification was logged as sent")
	}
}

// Stopping the service while a receiver is down leaves the notification
// unfinished (its record is read again), and logs nothing.
func TestRetryStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nt := &fakeNotifier{retry: true}
		for range 100 {
			nt.script = append(nt.script, &notify.Error{Reason: notify.ReasonUnreachable, Err: errors.New("down")})
		}
		log, rm := nflog.NewMemory(), metrics()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := 0
		_, err := pipeline(nt, log, rm).Exec(ctx, []*notify.Notification{notification(record("a", alert.StateFiring, t0), &done)})
		if !errors.Is(err, context.DeadlineExceeded) || done != 0 {
			t.Errorf("err %v done %d; want deadline exceeded and not done", err, done)
		}
		if _, ok := log.Get("test", "a"); ok {
			t.Error("logged while never delivered")
		}
	})
}

// The resolve of an occurrence keeps the receipt of its firing message
// in the log when it comes back without one; the next occurrence has its
// own.
func TestSetLogKeepsTheOccurrenceReceipt(t *testing.T) {
	nt, log, rm := &fakeNotifier{}, nflog.NewMemory(), metrics()
	p := pipeline(nt, log, rm)
	ctx := context.Background()
	for _, st := range []alert.State{alert.StateFiring, alert.StateResolved} {
		if _, err := p.Exec(ctx, []*notify.Notification{notification(record("a", st, t0), nil)}); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := log.Get("test", "a")
	if e.State != alert.StateResolved || e.Receipt.MessageTS != "a.120000" {
		t.Errorf("entry after the resolve %+v, want the firing message's receipt", e)
	}
	// A resend is delivered but not logged.
	n := notification(record("a", alert.StateFiring, t0.Add(time.Hour)), nil)
	n.Resend = true
	if _, err := p.Exec(ctx, []*notify.Notification{n}); err != nil {
		t.Fatal(err)
	}
	if e2, _ := log.Get("test", "a"); e2 != e {
		t.Errorf("resend changed the log: %+v", e2)
	}
	// The next occurrence's resolve does not inherit the earlier message.
	next := t0.Add(2 * time.Hour)
	if _, err := p.Exec(ctx, []*notify.Notification{notification(record("a", alert.StateResolved, next), nil)}); err != nil {
		t.Fatal(err)
	}
	if e3, _ := log.Get("test", "a"); e3.Receipt != (notify.Receipt{}) {
		t.Errorf("a new occurrence kept the old receipt: %+v", e3)
	}
	if got := nt.sent(); len(got) != 4 {
		t.Errorf("sent %v, want 4 deliveries", got)
	}
}

func TestQueue(t *testing.T) {
	rm := metrics()
	q := notify.NewQueue(3, rm)
	finished := map[string]int{}
	push := func(fp string, st alert.State, resend bool) {
		n := &notify.Notification{Receiver: "test", Alert: record(fp, st, t0), Resend: resend}
		key := fp + ":" + string(st)
		if resend {
			key += ":resend"
		}
		n.OnDone(func() { finished[key]++ })
		q.Push(n)
	}
	push("a", alert.StateFiring, false)
	push("b", alert.StateFiring, false)
	push("a", alert.StateResolved, false) // replaces a:firing and goes to the back
	push("b", alert.StateFiring, true)    // a resend never replaces a waiting state change
	if q.Len() != 2 || finished["a:firing"] != 1 || finished["b:firing:resend"] != 0 {
		t.Fatalf("len %d finished %v", q.Len(), finished)
	}
	push("c", alert.StateFiring, false)
	push("d", alert.StateFiring, false) // full: drops the oldest, b
	if q.Len() != 3 || finished["b:firing"] != 1 || testutil.ToFloat64(rm.Dropped) != 1 {
		t.Fatalf("len %d finished %v dropped %v", q.Len(), finished, testutil.ToFloat64(rm.Dropped))
	}
	if testutil.ToFloat64(rm.QueueLength) != 3 {
		t.Errorf("queue length gauge %v", testutil.ToFloat64(rm.QueueLength))
	}
	got := q.Pop(context.Background(), 2)
	if len(got) != 2 || got[0].Alert.Fingerprint != "a" || got[0].Alert.State != alert.StateResolved || got[1].Alert.Fingerprint != "c" {
		t.Fatalf("Pop = %v", got)
	}
	q.Clear()
	if q.Len() != 0 || finished["d:firing"] != 0 {
		t.Errorf("Clear: len %d, finished %v (Clear must not finish)", q.Len(), finished)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := q.Pop(ctx, 1); got != nil {
		t.Errorf("Pop on an empty queue after cancel = %v", got)
	}
}

// FanOut finishes a record once every receiver is done with it: one down
// receiver holds it back; when it comes back, nothing was lost.
func TestFanOutWaitsForEveryReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := nflog.NewMemory()
		up := &fakeNotifier{}
		down := &fakeNotifier{retry: true}
		for range 5 {
			down.script = append(down.script, &notify.Error{Reason: notify.ReasonUnreachable, Err: errors.New("down")})
		}
		var receivers []*notify.Receiver
		for name, nt := range map[string]*fakeNotifier{"up": up, "down": down} {
			rm := metrics()
			receivers = append(receivers, &notify.Receiver{Name: name, Queue: notify.NewQueue(10, rm), Metrics: rm, MaxBatch: 1,
				Pipeline: pipeline(nt, log, rm)})
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for _, r := range receivers {
			go r.Run(ctx)
		}
		var mu sync.Mutex
		var doneAt time.Time
		at := func() time.Time { mu.Lock(); defer mu.Unlock(); return doneAt }
		start := time.Now()
		notify.FanOut(receivers, record("a", alert.StateFiring, t0), func() { mu.Lock(); doneAt = time.Now(); mu.Unlock() })
		synctest.Wait()
		if len(up.sent()) != 1 || !at().IsZero() {
			t.Fatalf("up sent %v, done at %v; want sent and not done", up.sent(), at())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		// Five failures: waits of 100+200+400+800+1000 ms.
		if len(down.sent()) != 1 || at().Sub(start) != 2500*time.Millisecond {
			t.Errorf("down sent %v, done after %s", down.sent(), at().Sub(start))
		}
		cancel()
		synctest.Wait()
	})
}

func TestReasons(t *testing.T) {
	cases := []struct {
		err    error
		reason string
	}{
		{&notify.Error{Reason: notify.ReasonAPIError, Err: errors.New("channel_not_found")}, "api_error"},
		{context.DeadlineExceeded, "timeout"},
		{notify.TransportError(errors.New("dial tcp: connection refused")), "unreachable"},
		{errors.New("anything"), "other"},
	}
	for _, c := range cases {
		if got := notify.ReasonOf(c.err); got != c.reason {
			t.Errorf("ReasonOf(%v) = %s, want %s", c.err, got, c.reason)
		}
	}
	for code, want := range map[int]struct {
		retry  bool
		reason string
	}{429: {true, "rate_limited"}, 500: {true, "server_error"}, 503: {true, "server_error"}, 400: {false, "client_error"},
		404: {false, "client_error"}, 408: {true, "timeout"}} {
		retry, e := notify.StatusError(code, 0, errors.New("x"))
		if retry != want.retry || e.Reason != want.reason {
			t.Errorf("StatusError(%d) = %v %s, want %v %s", code, retry, e.Reason, want.retry, want.reason)
		}
	}
}

package window

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"vigia/internal/event"
)

// memResult is what one memory measurement found.
type memResult struct {
	keys        int
	events      int
	keyBytes    uint64 // keyspaces only
	dedupeBytes uint64 // dedupe and attribution memories
	dedupe      int
	attribution int
	coldBytes   int
	hot         int
}

func (m memResult) String() string {
	return fmt.Sprintf("%d events, %d keys: %.0f bytes/key (%d sealed bytes, %d dense buckets); dedupe+attribution %.1f MiB for %d+%d entries (%.0f bytes/entry)",
		m.events, m.keys, float64(m.keyBytes)/float64(m.keys), m.coldBytes, m.hot,
		float64(m.dedupeBytes)/(1<<20), m.dedupe, m.attribution, float64(m.dedupeBytes)/float64(m.dedupe+m.attribution))
}

// measure applies the traffic of g for d of event time to a fresh store and
// measures the live heap three times: with the store, without its dedupe
// and attribution memories, without the store. The differences are the
// memories' bytes and the keys' (the generator's own state, which grows
// with the messages in flight, cancels out).
func measure(o Options, specs []Spec, g *traffic, d time.Duration) memResult {
	evs := make([]event.Event, benchBatch)
	recs := make([]event.Recipient, benchBatch)
	parts := make([]int, benchBatch)
	s := New(o, specs)
	end := g.now + int64(d)
	var r memResult
	last := g.now
	for g.now < end {
		g.fill(evs, recs, parts)
		for i := range evs {
			s.Apply(parts[i], &evs[i])
		}
		r.events += len(evs)
		if g.now-last >= int64(10*time.Second) {
			s.Expire(time.Unix(0, g.now-int64(o.AllowedLateness)))
			last = g.now
		}
	}
	s.Expire(time.Unix(0, g.now-int64(o.AllowedLateness)))
	st := s.Stats()
	for _, sp := range st.Specs {
		r.keys += sp.Keys
		r.coldBytes += sp.ColdBytes
		r.hot += sp.HotBuckets
	}
	r.dedupe, r.attribution = s.dd.live(), s.attr.live()
	all := measureHeap()
	s.dd, s.attr = newDedupe(0), newAttrMemory(0)
	keys := measureHeap()
	runtime.KeepAlive(s) // alive until measured: the compiler would free it right after the last use
	s = nil
	none := measureHeap()
	r.keyBytes = keys - none
	r.dedupeBytes = all - keys
	runtime.KeepAlive(evs)
	runtime.KeepAlive(g)
	return r
}

// TestBytesPerKey measures the memory of realistic traffic: 10,000 phone
// numbers of Zipf-distributed size, six keyspaces at 1 m over 75 m, 80
// minutes of event time at 500 events/s. The target is 2 KB per key of
// one keyspace.
func TestBytesPerKey(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement: not in -short or -race runs")
	}
	r := measure(benchOptions(), benchSpecs(), newTraffic(2, 500, 2*time.Minute), 80*time.Minute)
	t.Logf("realistic: %v", r)
	if per := r.keyBytes / uint64(r.keys); per > 2048 {
		t.Errorf("%d bytes per key, target 2048", per)
	}
}

// TestBytesPerBusyKey is the worst case: every key of the phone-number
// keyspace has sends, deliveries at several latencies, reads, failures of
// two codes and replies in every one of its 76 buckets.
func TestBytesPerBusyKey(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement: not in -short or -race runs")
	}
	const keys = 2000
	sp := benchSpecs()[:1]
	o := benchOptions()
	s := New(o, sp)
	phones := make([]string, keys)
	for i := range phones {
		phones[i] = fmt.Sprintf("%d", 200000000000000+i)
	}
	rec := &event.Recipient{Pseudonym: "u", CountryCode: "55"}
	errs := []event.Error{{Code: 131026, Class: event.ClassUndeliverable}, {Code: 130429, Class: event.ClassThrottle}}
	var e event.Event
	msg := 0
	for m := range 80 {
		for k, ph := range phones {
			minute := t0.Add(time.Duration(m) * time.Minute)
			for j := range 12 {
				msg++
				id := fmt.Sprintf("wamid.%d", msg)
				sentAt := minute.Add(time.Duration(j) * time.Second)
				e = event.Event{Kind: event.KindStatus, EventTime: sentAt, PhoneNumberID: ph, MessageID: id, Status: "sent", Recipient: rec}
				s.Apply(0, &e)
				switch j % 4 {
				case 0, 1:
					e.Status, e.EventTime = "delivered", sentAt.Add(time.Duration(1+j*j+k%7)*time.Second/2)
					s.Apply(0, &e)
					e.Status, e.EventTime = "read", e.EventTime.Add(10*time.Second)
					s.Apply(0, &e)
				case 2:
					e.Status, e.EventTime, e.Error = "failed", sentAt.Add(time.Second), &errs[j%2]
					s.Apply(0, &e)
				case 3:
					e = event.Event{Kind: event.KindInbound, ID: id, EventTime: sentAt, PhoneNumberID: ph, Recipient: rec}
					s.Apply(0, &e)
				}
			}
		}
		s.Expire(t0.Add(time.Duration(m) * time.Minute))
	}
	s.dd, s.attr = newDedupe(0), newAttrMemory(0)
	st := s.Stats()
	with := measureHeap()
	hotN := s.spaces[0].hotN
	runtime.KeepAlive(s)
	s = nil
	b := with - measureHeap()
	t.Logf("busy: %d keys, %.0f bytes/key (%d sealed bytes: %.1f per bucket; %d dense buckets)", st.Specs[0].Keys,
		float64(b)/keys, st.Specs[0].ColdBytes, float64(st.Specs[0].ColdBytes)/keys/float64(bucketsFor(sp[0])-hotN), st.Specs[0].HotBuckets)
}

// BenchmarkMemory measures bytes per key at the benchmark's rate (2,000
// events/s of event time for 80 minutes, 9.5M events). It measures once,
// whatever b.N: its figures are B/key and B/memo-entry, not time.
func BenchmarkMemory(b *testing.B) {
	r := measure(benchOptions(), benchSpecs(), newTraffic(3, benchRate, 2*time.Minute), 80*time.Minute)
	b.Logf("%v", r)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(r.keyBytes)/float64(r.keys), "B/key")
	b.ReportMetric(float64(r.dedupeBytes)/float64(r.dedupe+r.attribution), "B/memo-entry")
}

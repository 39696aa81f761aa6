package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"vigia/internal/event"
	"vigia/internal/quality"
)

// traffic generates a realistic WhatsApp stream for benchmarks and memory
// measurements: phone numbers of skewed size (Zipf), each message sent,
// then mostly delivered a few seconds later and often read minutes later,
// some failures with real codes, replies and a few opt-outs; event times
// arrive out of order by up to the allowed lateness for a fraction of
// events. It reuses its Event structs, as a decoding engine would.
type traffic struct {
	rng      *rand.Rand
	now      int64 // event-time clock, ns
	step     int64 // mean ns between new messages
	lateness int64
	phones   *rand.Zipf
	country  *rand.Zipf
	users    []string
	wabaIDs  []string
	phoneIDs []string
	tpls     []string
	useCases []string
	camps    []string
	attrs    [][]event.Attribution // per WABA: its templates
	pending  pendingHeap
	nextMsg  int
	recips   []event.Recipient
	errs     []event.Error
	optOut   event.OptOut
	slots    []genSlot
}

const (
	benchWABAs     = 500
	phonesPerWABA  = 20 // 10,000 phone numbers
	benchTemplates = 2000
	tplsPerWABA    = 10
)

type pendingStatus struct {
	t      int64
	msg    int
	phone  int
	user   int
	attr   *event.Attribution
	status string
	sentAt int64
}

// pendingHeap is a min-heap by time (container/heap would box every
// element in an interface and allocate).
type pendingHeap []pendingStatus

func (h *pendingHeap) push(x pendingStatus) {
	*h = append(*h, x)
	q := *h
	for i := len(q) - 1; i > 0; {
		j := (i - 1) / 2
		if q[j].t <= q[i].t {
			break
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
}

func (h *pendingHeap) pop() pendingStatus {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j+1 < n && q[j+1].t < q[j].t {
			j++
		}
		if q[i].t <= q[j].t {
			break
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
	*h = q
	return top
}

// newTraffic makes a generator emitting about rate events per second of
// event time.
func newTraffic(seed uint64, rate float64, lateness time.Duration) *traffic {
	rng := rand.New(rand.NewPCG(seed, 7))
	g := &traffic{
		rng: rng, now: t0.UnixNano(), lateness: int64(lateness),
		// A message makes about 2.6 events (sent, 0.95 delivered, 0.6
		// read, a few failures and replies).
		step:    int64(float64(time.Second) * 2.6 / rate),
		phones:  rand.NewZipf(rng, 1.1, 50, benchWABAs*phonesPerWABA-1),
		country: rand.NewZipf(rng, 1.5, 1, 49),
		optOut:  event.OptOut{Source: "keyword"},
	}
	for i := range 100_000 {
		g.users = append(g.users, fmt.Sprintf("%032x", uint64(i)*0x9E3779B97F4A7C15))
	}
	for i := range benchWABAs {
		g.wabaIDs = append(g.wabaIDs, strconv.Itoa(100000000000000+i*7919))
	}
	for i := range benchWABAs * phonesPerWABA {
		g.phoneIDs = append(g.phoneIDs, strconv.Itoa(200000000000000+i*104729))
	}
	for i := range benchTemplates {
		g.tpls = append(g.tpls, fmt.Sprintf("template_%04d_v2", i))
	}
	for i := range 20 {
		g.useCases = append(g.useCases, fmt.Sprintf("use_case_%02d", i))
	}
	for i := range 100 {
		g.camps = append(g.camps, fmt.Sprintf("campaign_2026_%03d", i))
	}
	for w := range benchWABAs {
		var as []event.Attribution
		for j := range tplsPerWABA {
			tp := (w*37 + j*211) % benchTemplates
			as = append(as, event.Attribution{Template: g.tpls[tp], UseCase: g.useCases[tp%20], Campaign: g.camps[(w+j)%100]})
		}
		g.attrs = append(g.attrs, as)
	}
	for i := range 50 {
		g.recips = append(g.recips, event.Recipient{CountryCode: strconv.Itoa(1 + i*7), IDKind: "phone", Type: "individual"})
	}
	for _, c := range []struct {
		code  int
		class string
	}{{131026, event.ClassUndeliverable}, {131048, event.ClassSpam}, {130429, event.ClassThrottle},
		{131049, event.ClassMarketingCap}, {131047, event.ClassWindowClosed}, {131000, event.ClassOther}} {
		g.errs = append(g.errs, event.Error{Code: c.code, Class: c.class})
	}
	return g
}

// fill overwrites evs (and their recipients) with the next events; it
// returns the partition of each in parts.
func (g *traffic) fill(evs []event.Event, recs []event.Recipient, parts []int) {
	r := g.rng
	if len(g.slots) < len(evs) {
		g.slots = make([]genSlot, len(evs))
		for i := range g.slots {
			g.slots[i].buf = make([]byte, 0, 256)
		}
	}
	for i := range evs {
		e := &evs[i]
		*e = event.Event{SchemaVersion: 1, Channel: event.ChannelWhatsApp, Source: "meta", Field: "messages"}
		var p pendingStatus
		if len(g.pending) > 0 && g.pending[0].t <= g.now {
			p = g.pending.pop()
		} else {
			// A new message: sent now; schedule what follows.
			g.now += g.rng.Int64N(2*g.step + 1)
			ph := g.phones.Uint64()
			w := int(ph) / phonesPerWABA
			m := g.nextMsg
			g.nextMsg++
			p = pendingStatus{t: g.now, msg: m, phone: int(ph), user: r.IntN(len(g.users)), status: "sent", sentAt: g.now}
			if r.IntN(10) != 0 { // 90% carry an attribution
				p.attr = &g.attrs[w][r.IntN(tplsPerWABA)]
			}
			switch x := r.IntN(100); {
			case x < 3: // failed, usually after sent
				q := p
				q.status, q.t = "failed", g.now+int64(r.IntN(5000))*int64(time.Millisecond)
				g.pending.push(q)
			default:
				q := p
				// Delivery latency: mostly seconds, a tail of minutes.
				lat := math.Exp(r.NormFloat64()*1.0+0.7) * float64(time.Second)
				q.status, q.t = "delivered", g.now+int64(lat)
				if x < 98 {
					g.pending.push(q)
				}
				if x < 60 {
					q.status, q.t = "read", q.t+int64(r.IntN(600))*int64(time.Second)
					g.pending.push(q)
				}
				if x < 65 && r.IntN(12) == 0 {
					q.status, q.t = "inbound", q.t+int64(r.IntN(300))*int64(time.Second)
					g.pending.push(q)
				}
			}
		}
		w := p.phone / phonesPerWABA
		t := p.t
		if g.lateness > 0 && r.IntN(5) == 0 { // a fifth arrive late, within the allowed lateness
			t -= r.Int64N(g.lateness)
		}
		// Every string is copied into this slot's buffer, as decoding
		// would make fresh ones: they are in cache when Apply reads them,
		// and the generator allocates nothing.
		sl := &g.slots[i]
		sl.buf = sl.buf[:0]
		recs[i] = g.recips[g.country.Uint64()]
		recs[i].Pseudonym = sl.str(g.users[p.user])
		recs[i].CountryCode = sl.str(recs[i].CountryCode)
		e.EventTime = time.Unix(0, t).UTC()
		e.WABAID, e.PhoneNumberID = sl.str(g.wabaIDs[w]), sl.str(g.phoneIDs[p.phone])
		e.Recipient = &recs[i]
		if p.status == "inbound" {
			e.Kind = event.KindInbound
			e.MessageID = sl.num("wamid.in.", p.msg)
			e.ID = e.MessageID
			if r.IntN(25) == 0 {
				e.OptOut = &g.optOut
			}
		} else {
			e.Kind = event.KindStatus
			e.Status = p.status
			e.MessageID = sl.num("wamid.HBgMNTUxMTk5OTk5OTk5FQIAERgSQ0Y", p.msg)
			e.ID = sl.str(p.status) // not read for statuses
			if p.attr != nil {
				sl.attr = event.Attribution{Template: sl.str(p.attr.Template), UseCase: sl.str(p.attr.UseCase), Campaign: sl.str(p.attr.Campaign)}
				e.Attribution = &sl.attr
			}
			if p.status == "failed" {
				e.Error = &g.errs[r.IntN(len(g.errs))]
			}
		}
		parts[i] = w % 6
	}
}

// genSlot holds the strings of one event of a batch; they are overwritten
// by the next batch, which the store allows: it keeps no string of an
// event without copying it.
type genSlot struct {
	buf  []byte
	attr event.Attribution
}

func (s *genSlot) str(v string) string {
	n := len(s.buf)
	s.buf = append(s.buf, v...)
	return unsafe.String(unsafe.SliceData(s.buf[n:]), len(v))
}

func (s *genSlot) num(prefix string, n int) string {
	start := len(s.buf)
	s.buf = append(s.buf, prefix...)
	s.buf = strconv.AppendInt(s.buf, int64(n), 10)
	return unsafe.String(unsafe.SliceData(s.buf[start:]), len(s.buf)-start)
}

// benchSpecs are the keyspaces of a typical rule set: per number, per
// template, per use case, per WABA, per (WABA, template), per country, at
// 1 m over 75 m (a 15 m window and its previous hour).
func benchSpecs() []Spec {
	var specs []Spec
	for _, by := range [][]quality.Dim{
		{quality.DimPhoneNumber}, {quality.DimTemplate}, {quality.DimUseCase}, {quality.DimWABA},
		{quality.DimWABA, quality.DimTemplate}, {quality.DimCountry},
	} {
		specs = append(specs, Spec{By: by, Resolution: time.Minute, Span: 75 * time.Minute})
	}
	return specs
}

// benchOptions are the configuration defaults.
func benchOptions() Options {
	return Options{AllowedLateness: 2 * time.Minute, DedupeHorizon: 2 * time.Hour, IdleTTL: 3 * time.Hour,
		MaxKeys: 200_000, MaxDedupe: 5_000_000, MaxAttribution: 1_000_000, AttributionTTL: 24 * time.Hour}
}

// benchState is one store kept across benchmark rounds, so that the
// warm-up (filling the dedupe memory to its bound, every key's buckets)
// happens once.
type benchState struct {
	s     *Store
	g     *traffic
	evs   []event.Event
	recs  []event.Recipient
	parts []int
	// applied counts events since the last Expire.
	applied int
}

// benchBatch is small so that events are still in cache when applied, as
// they are when the engine decodes one and applies it at once.
const benchBatch = 1024

// expireEvery is how many events pass between Expire calls: the engine
// expires once per evaluation tick (a second of wall time, hundreds of
// thousands of events when catching up). BenchmarkExpire measures one.
const expireEvery = 1 << 16

// run generates and applies n events and returns the thread CPU time
// spent in Apply and Expire (the generator's excluded), or -1.
func (b *benchState) run(n int) int64 {
	var cpu int64
	for n > 0 {
		b.g.fill(b.evs, b.recs, b.parts)
		k := min(n, len(b.evs))
		c := threadCPU()
		for i := range k {
			b.s.Apply(b.parts[i], &b.evs[i])
		}
		if b.applied += k; b.applied >= expireEvery {
			b.s.Expire(time.Unix(0, b.g.now-int64(2*time.Minute)))
			b.applied = 0
		}
		cpu += threadCPU() - c
		n -= k
	}
	if cpu < 0 {
		return -1
	}
	return cpu
}

var (
	benchOnce sync.Once
	bench     *benchState
)

// benchRate is the event-time rate of the benchmark stream: 2,000 events
// per second reach the 5M dedupe bound in 40 minutes of event time.
const benchRate = 2000

func getBench(b *testing.B) *benchState {
	benchOnce.Do(func() {
		bench = &benchState{
			s:     New(benchOptions(), benchSpecs()),
			g:     newTraffic(1, benchRate, 2*time.Minute),
			evs:   make([]event.Event, benchBatch),
			recs:  make([]event.Recipient, benchBatch),
			parts: make([]int, benchBatch),
		}
		// 90 minutes of event time: every key's buckets cover the span
		// and the dedupe memory sits at its bound. The time spent in
		// Apply and Expire is logged too: a figure over 10.8M events.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		n := benchRate * 90 * 60
		start := time.Now()
		cpu := bench.run(n)
		b.Logf("warm-up: %d events in %v; Apply and Expire: %.0f ns/event thread CPU (%.0f events/s); %s",
			n, time.Since(start).Round(time.Millisecond), float64(cpu)/float64(n), float64(n)/(float64(cpu)/1e9), statsLine(bench.s))
	})
	return bench
}

func statsLine(s *Store) string {
	st := s.Stats()
	keys := 0
	for _, sp := range st.Specs {
		keys += sp.Keys
	}
	var specKeys []int
	for _, sp := range st.Specs {
		specKeys = append(specKeys, sp.Keys)
	}
	return fmt.Sprintf("keys %d %v, dedupe %d, attribution %d, outcomes %v, approx %d MiB",
		keys, specKeys, st.DedupeEntries, st.AttributionEntries, st.Outcomes, st.ApproxBytes>>20)
}

// BenchmarkApply measures Apply on a warm store: 6 keyspaces, 10,000 phone
// numbers (17,555 keys in all), the dedupe memory at its 5M bound. ns/op
// counts the generator too; ns/event and events/s are Apply (and Expire)
// alone, in thread CPU time.
func BenchmarkApply(b *testing.B) {
	st := getBench(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := st.run(b.N)
	b.StopTimer()
	if cpu > 0 {
		ns := float64(cpu) / float64(b.N)
		b.ReportMetric(ns, "ns/event")
		b.ReportMetric(1e9/ns, "events/s")
	}
}

// BenchmarkExpire is one Expire over the warm store (17,555 keys).
func BenchmarkExpire(b *testing.B) {
	st := getBench(b)
	now := time.Unix(0, st.g.now-int64(2*time.Minute))
	for b.Loop() {
		st.s.Expire(now)
	}
}

// BenchmarkStats is one Stats call over the warm store.
func BenchmarkStats(b *testing.B) {
	st := getBench(b)
	for b.Loop() {
		st.s.Stats()
	}
}

// BenchmarkValues reads one 15 m window of a busy phone number.
func BenchmarkValues(b *testing.B) {
	st := getBench(b)
	now := time.Unix(0, st.g.now)
	key := st.g.phoneIDs[50] // among the busiest (Zipf)
	from := now.Add(-15 * time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := st.s.Values(0, key, from, now); !ok {
			b.Fatal("no key")
		}
	}
}

// BenchmarkValuesAllKeys reads a 15 m window and its previous hour for
// every key of every keyspace, as one evaluation of one rule per keyspace.
func BenchmarkValuesAllKeys(b *testing.B) {
	st := getBench(b)
	now := time.Unix(0, st.g.now)
	var ids [][]string
	n := 0
	for i := range st.s.Specs() {
		ids = append(ids, st.s.KeyIDs(i, nil))
		n += len(ids[i])
	}
	b.ResetTimer()
	for b.Loop() {
		for i, keys := range ids {
			for _, id := range keys {
				st.s.Values(i, id, now.Add(-15*time.Minute), now)
				st.s.Values(i, id, now.Add(-75*time.Minute), now.Add(-15*time.Minute))
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*n), "ns/read")
}

// measureHeap returns the live heap after a full collection.
func measureHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

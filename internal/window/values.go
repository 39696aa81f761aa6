package window

import (
	"strings"
	"time"

	"vigia/internal/quality"
)

// Key is one key of a keyspace.
type Key struct {
	ID     string            // the value for one dimension; values joined by '|' ('|' and '\' escaped by '\') for several
	Labels map[string]string // dimension name -> value
}

// Keys lists the keys of keyspace spec (the index of its Spec in New), in
// no particular order. It builds a label map per key; KeyIDs does not.
func (s *Store) Keys(spec int) []Key {
	ks := s.spaces[spec]
	out := make([]Key, 0, ks.m.len())
	for i := range ks.keys {
		if id := ks.keys[i].id; id != "" {
			out = append(out, Key{ID: id, Labels: ks.labels(id)})
		}
	}
	return out
}

// KeyIDs appends the key ids of keyspace spec to dst, for an evaluation
// loop that needs labels only for the keys that fire.
func (s *Store) KeyIDs(spec int, dst []string) []string {
	ks := s.spaces[spec]
	for i := range ks.keys {
		if id := ks.keys[i].id; id != "" {
			dst = append(dst, id)
		}
	}
	return dst
}

// Labels returns the dimension values of a key id of keyspace spec.
func (s *Store) Labels(spec int, keyID string) map[string]string {
	return s.spaces[spec].labels(keyID)
}

// Specs returns the number of keyspaces.
func (s *Store) Specs() int { return len(s.spaces) }

type accum struct {
	n     [nCounters]uint64
	fails []failAcc
}

// Values returns the metrics of key keyID of keyspace spec over [from, to),
// bucket-aligned: the sums of every bucket that overlaps the period (so a
// period that starts or ends inside a bucket includes all of it), limited
// to the buckets the key still keeps (Span behind its newest). Latest-state
// fields are the last values with event time at or before to. It returns
// false when the key is unknown.
func (s *Store) Values(spec int, keyID string, from, to time.Time) (quality.Values, bool) {
	ks := s.spaces[spec]
	k, ok := ks.lookup(s, keyID)
	if !ok {
		return quality.Values{}, false
	}
	var fb [8]failAcc
	a := accum{fails: fb[:0]}
	f, t := nanos(from), nanos(to)
	if k.newest != noBucket && f < t {
		lo := max(floorDiv(f, ks.res), k.newest-ks.n+1)
		hi := floorDiv(t-1, ks.res)
		for _, p := range k.hot {
			if p == 0 {
				continue
			}
			b := ks.pool.at(p)
			if b.idx < lo || b.idx > hi {
				continue
			}
			for i, v := range b.n {
				a.n[i] += uint64(v)
			}
			for _, fc := range b.fails {
				a.fails = addFail(a.fails, fc.code, fc.class, uint64(fc.n))
			}
		}
		for off := 0; off < len(k.cold); {
			idx, body, next := recordAt(k.cold, off, k.newest)
			if idx > hi {
				break
			}
			if idx >= lo {
				a.fails = decodeBody(k.cold, body, &a.n, a.fails)
			}
			off = next
		}
	}
	v := a.values()
	if k.latest != nil {
		k.latest.fill(&v, t)
	}
	return v, true
}

func (a *accum) values() quality.Values {
	var v quality.Values
	a.fill(&v)
	failMaps(a.fails, &v, ByCode|ByClass, nil, nil)
	return v
}

// fill sets the counters, rates and latencies of *v from the sums, and
// clears every other field.
func (a *accum) fill(v *quality.Values) {
	a.fillCounts(v)
	fillLatency(v, a.latency())
}

// fillCounts is fill without the latencies, left zero.
func (a *accum) fillCounts(v *quality.Values) {
	n := &a.n
	*v = quality.Values{
		Sent:      int64(n[cSent]),
		Delivered: int64(n[cDelivered]),
		Read:      int64(n[cRead]),
		Failed:    int64(n[cFailed]),
		Accepted:  int64(n[cAccepted]),
		Deferred:  int64(n[cDeferred]),
		Attempts:  int64(n[cSent] + n[cFailedNoSent]),
		Reached:   int64(n[cDelivered] + n[cReadNoDelivered]),
		OptOuts:   int64(n[cOptOut]),
		Inbound:   int64(n[cInbound]),
	}
	v.DeliveryRate = rate(v.Reached, v.Attempts)
	v.ReadRate = rate(v.Read, v.Reached)
	v.FailureRate = rate(v.Failed, v.Attempts)
	v.OptOutRate = rate(v.OptOuts, v.Reached)
}

// latency returns the latency histogram of the sums.
func (a *accum) latency() *[nLatBins]uint64 {
	return (*[nLatBins]uint64)(a.n[cLat0 : cLat0+nLatBins])
}

// fillLatency sets the latency fields of v from a latency histogram.
func fillLatency(v *quality.Values, hist *[nLatBins]uint64) {
	var total uint64
	for _, c := range hist {
		total += c
	}
	v.LatencySamples, v.LatencyP50, v.LatencyP90 = 0, 0, 0
	if total > 0 {
		v.LatencySamples = int64(total)
		v.LatencyP50 = quantile(hist, total, 0.5)
		v.LatencyP90 = quantile(hist, total, 0.9)
	}
}

// failMaps sets the failure maps of *v that parts asks for from fails. The
// maps are byCode and byClass when not nil (empty maps the caller reuses),
// new maps otherwise; either stays nil without failures to put in it.
// Entries counting zero (left by a Period's subtraction) are skipped.
func failMaps(fails []failAcc, v *quality.Values, parts Parts, byCode map[int64]int64, byClass map[string]int64) {
	for _, f := range fails {
		if f.n == 0 {
			continue
		}
		if parts&ByClass != 0 {
			if v.FailuresByClass == nil {
				v.FailuresByClass = byClass
				if byClass == nil {
					v.FailuresByClass = make(map[string]int64)
				}
			}
			v.FailuresByClass[classNames[f.class]] += int64(f.n)
		}
		if f.code != noCode && parts&ByCode != 0 {
			if v.FailuresByCode == nil {
				v.FailuresByCode = byCode
				if byCode == nil {
					v.FailuresByCode = make(map[int64]int64)
				}
			}
			v.FailuresByCode[int64(f.code)] += int64(f.n)
		}
	}
}

// rate is num/den clamped to [0, 1], and 0 when den is 0: out-of-order
// statuses can make a numerator exceed its denominator in a window (a read
// counted without its delivered), and a rule comparing a rate to a
// threshold should see a rate.
func rate(num, den int64) float64 {
	if den <= 0 || num <= 0 {
		return 0
	}
	return min(1, float64(num)/float64(den))
}

// quantile interpolates the q-quantile, in seconds, of the latency
// histogram: it finds the bin holding the q·total-th sample and assumes its
// samples spread evenly between the bin's bounds (the first bin starts at
// 0). The last bin has no upper bound and answers its lower one (1 h).
func quantile(hist *[nLatBins]uint64, total uint64, q float64) float64 {
	bounds := &latencySeconds
	rank := q * float64(total)
	var cum float64
	for i, c := range hist {
		if c == 0 {
			continue
		}
		lo := 0.0
		if i > 0 {
			lo = bounds[i-1]
		}
		if cum+float64(c) >= rank {
			if i == nLatBins-1 {
				return lo
			}
			return lo + (bounds[i]-lo)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return bounds[len(bounds)-1]
}

// latencySeconds are latencyBounds in seconds, for quantile: converting a
// Duration divides, and Periods ask for two quantiles per key and instant.
var latencySeconds = func() (out [len(latencyBounds)]float64) {
	for i, b := range latencyBounds {
		out[i] = b.Seconds()
	}
	return out
}()

// stateEntry is one latest-state change of a key.
type stateEntry struct {
	t int64
	f uint8
	v string
}

// latestState is the history of a key's state changes, in event-time order
// (ties in apply order), so that a period ending in the past sees the state
// as it was then. Changes are rare: a slice scanned from the end is enough.
type latestState struct {
	hist []stateEntry
}

// setFollowed records v, the followed dimension's value of an event at t,
// whose hash is vh, if it is the latest (ties: the last applied). The
// hashes tell values apart as they tell keys apart (see keyState) without
// reading the strings' bytes, one more cache miss per event.
func (k *keyState) setFollowed(v string, vh keyHash, t int64) {
	if t < k.followedAt {
		return
	}
	k.followedAt = t
	if k.followedHash != vh {
		k.followed, k.followedHash = strings.Clone(v), vh // the event's strings are not ours to keep
	}
}

// Followed returns the latest value of the keyspace's Spec.Follow seen by
// key k: "" when none, or when the key is no longer in k's slot.
func (s *Store) Followed(spec int, k KeyRef) string {
	if key := s.spaces[spec].keyAt(k); key != nil {
		return key.followed
	}
	return ""
}

// setState records a change; it returns how many entries it added (0 or
// 1), for Stats.
func (k *keyState) setState(f uint8, v string, t int64) int {
	if k.latest == nil {
		k.latest = &latestState{}
	}
	h := k.latest.hist
	i := len(h)
	for i > 0 && h[i-1].t > t {
		i--
	}
	// The same value again changes no answer: skip it, so that a repeated
	// webhook does not grow the history.
	for j := i - 1; j >= 0; j-- {
		if h[j].f == f {
			if h[j].v == v {
				return 0
			}
			break
		}
	}
	h = append(h, stateEntry{})
	copy(h[i+1:], h[i:])
	h[i] = stateEntry{t: t, f: f, v: string([]byte(v))} // a copy: the event's strings are not ours to keep
	k.latest.hist = h
	return 1
}

// fill sets the state fields of v to the last change at or before to, ""
// for a field with none.
func (l *latestState) fill(v *quality.Values, to int64) {
	v.QualityEvent, v.MessagingTier, v.TemplateStatus = "", "", ""
	v.TemplateQuality, v.AccountEvent, v.AccountBanState = "", "", ""
	var done [nFields]bool
	for i := len(l.hist) - 1; i >= 0; i-- {
		e := &l.hist[i]
		if e.t > to || done[e.f] {
			continue
		}
		done[e.f] = true
		switch e.f {
		case fQualityEvent:
			v.QualityEvent = e.v
		case fMessagingTier:
			v.MessagingTier = e.v
		case fTemplateStatus:
			v.TemplateStatus = e.v
		case fTemplateQuality:
			v.TemplateQuality = e.v
		case fAccountEvent:
			v.AccountEvent = e.v
		case fAccountBanState:
			v.AccountBanState = e.v
		}
	}
}

// trim forgets changes before cutoff except the last one of each field,
// which is still the state at cutoff: periods ending at or after cutoff see
// the same answers. It returns how many it forgot.
func (l *latestState) trim(cutoff int64) int {
	var kept [nFields]bool
	h := l.hist
	// Compact backwards into the tail: w never passes the entry being read.
	w := len(h)
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		if e.t < cutoff {
			if kept[e.f] {
				continue
			}
			kept[e.f] = true
		}
		w--
		h[w] = e
	}
	if w == 0 {
		return 0
	}
	n := copy(h, h[w:])
	clear(h[n:])
	l.hist = h[:n]
	return w
}

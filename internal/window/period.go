package window

import (
	"time"

	"vigia/internal/quality"
)

// KeyRef is a key of a keyspace as the evaluation loop sees it: its slot in
// the keyspace (stable while the key lives; a slot freed by expiry may get
// another key, with another ID) and its id.
type KeyRef struct {
	Slot int32
	ID   string
}

// AppendKeyRefs appends the keys of keyspace spec to dst, in slot order
// (the order of Keys), without building labels.
func (s *Store) AppendKeyRefs(spec int, dst []KeyRef) []KeyRef {
	ks := s.spaces[spec]
	for i := range ks.keys {
		if id := ks.keys[i].id; id != "" {
			dst = append(dst, KeyRef{Slot: int32(i), ID: id})
		}
	}
	return dst
}

// keyAt returns the state of key k, nil when the key is no longer in k's
// slot.
func (ks *keyspace) keyAt(k KeyRef) *keyState {
	if k.Slot < 0 || int(k.Slot) >= len(ks.keys) {
		return nil
	}
	key := &ks.keys[k.Slot]
	if key.id == "" || key.id != k.ID {
		return nil
	}
	return key
}

// Period computes Values over one period per key of one keyspace, a period
// that moves forward with the evaluation clock (a rule's window, or its
// baseline), the way an evaluation loop asks: every key, at instants that
// only go forward. It keeps, per key, the sum of the sealed buckets it
// covered on the previous call, so that the next call decodes only the
// buckets that entered or left the period (usually none, at most a few)
// instead of every sealed bucket of the period: a 15 m window with its
// previous hour at 1 m resolution is 75 records per key and instant
// otherwise. The answers are Store.Values's, exactly (a test compares
// them); only the work differs.
//
// The sums stay exact because sealed records change in three ways only:
// sealing appends records of buckets newer than every record (added when
// the period reaches them), trimming drops records older than the key's
// span (which the period has left, or the sum is rebuilt), and the slow
// path rewrites a record, which changes the key's generation and makes the
// next call rebuild the sum.
//
// A Period belongs to one Store and one keyspace, and like the Store is not
// safe for concurrent use. It costs about 600 bytes per key evaluated.
type Period struct {
	spec int
	ents []periodEnt // by slot

	// Reused for the failure maps of the Values returned: see Values.
	byCode  map[int64]int64
	byClass map[string]int64
}

// periodEnt is, for one key, the sum of its sealed records with bucket
// index in [lo, hi] for the key generation gen (0: none yet), and the
// last answer: v (without failure maps) and vfails, for [from, to) at the
// store's epoch (0: none).
type periodEnt struct {
	gen    uint64
	lo, hi int64
	n      [nCounters]uint64
	fails  []failAcc
	// at and end are where the first record with index lo or later, and
	// the first after hi, are in the key's cold records, counted from
	// before any trim (see keyState.trimmed): moving forward reads only
	// the records that leave the period (from at) and those that enter
	// it (from end), not the whole period again.
	at, end  int
	epoch    uint64
	from, to int64
	v        quality.Values
	vfails   []failAcc
	// vlat is whether v's latency fields are set, from lat, the latency
	// histogram of v: quantiles are computed for the callers asking.
	vlat bool
	lat  [nLatBins]uint64
	// What v and vfails are the sums of: the key generation (0: none
	// yet), its applied count and the buckets [vlo, vhi]; vsealed when
	// they were all sealed (before the key's hot floor).
	vgen, vapplied uint64
	vlo, vhi       int64
	vsealed        bool
}

// Parts are the parts of Values a caller asks a Period for; the
// latest-state fields always come.
type Parts uint8

// The parts of Values.
const (
	Counts  Parts = 1 << iota // counters and rates
	ByCode                    // FailuresByCode
	ByClass                   // FailuresByClass
	Latency                   // LatencyP50, LatencyP90, LatencySamples

	AllParts = Counts | ByCode | ByClass | Latency
)

// NewPeriod returns a Period over keyspace spec. Rules that read the same
// period of the same keyspace can share one: a second call for a key with
// the same period, with no Apply or Expire in between, returns the first
// answer without computing it again.
func (s *Store) NewPeriod(spec int) *Period {
	_ = s.spaces[spec] // panics now rather than on first use
	return &Period{spec: spec, byCode: map[int64]int64{}, byClass: map[string]int64{}}
}

// Values sets *dst to the metrics of key k over [from, to), as
// Store.Values(spec, k.ID, from, to) would return them, and reports false
// (leaving *dst alone) when the key is no longer in k's slot. Only the
// parts asked for are sure to be set, the others may be zero (nil maps): a
// caller that needs only the latest state (parts 0) or no failure maps
// does not pay for them. The failure maps of *dst are the Period's own, reused by the
// next call: clone them to keep them (alert records do). Calls for one key
// should come with periods that only move forward; others are answered
// correctly, only more slowly.
func (p *Period) Values(s *Store, k KeyRef, from, to time.Time, parts Parts, dst *quality.Values) bool {
	ks := s.spaces[p.spec]
	key := ks.keyAt(k)
	if key == nil {
		return false
	}
	t := nanos(to)
	if parts == 0 {
		*dst = quality.Values{}
		if key.latest != nil {
			key.latest.fill(dst, t)
		}
		return true
	}
	if int(k.Slot) >= len(p.ents) {
		p.ents = append(p.ents, make([]periodEnt, len(ks.keys)-len(p.ents))...)
	}
	e := &p.ents[k.Slot]
	f := nanos(from)
	// Unless the store changed since the last answer for this slot (a
	// slot that changed keys did so in an Apply), that answer holds.
	if e.epoch != s.epoch || e.from != f || e.to != t {
		p.compute(ks, key, e, f, t)
		e.epoch, e.from, e.to = s.epoch, f, t
	}
	if parts&Latency != 0 && !e.vlat {
		fillLatency(&e.v, &e.lat)
		e.vlat = true
	}
	*dst = e.v
	if parts&(ByCode|ByClass) != 0 && len(e.vfails) > 0 {
		clear(p.byCode)
		clear(p.byClass)
		failMaps(e.vfails, dst, parts, p.byCode, p.byClass)
	}
	return true
}

// compute sets e's answer for [f, t).
func (p *Period) compute(ks *keyspace, key *keyState, e *periodEnt, f, t int64) {
	lo, hi := int64(1), int64(0) // no bucket
	if key.newest != noBucket && f < t {
		lo, hi = max(floorDiv(f, ks.res), key.newest-ks.n+1), floorDiv(t-1, ks.res)
	}
	if e.vgen == key.gen && e.vlo == lo && e.vhi == hi && (e.vapplied == key.applied || e.vsealed) {
		// The same buckets of a key that counted nothing since, or that
		// were all sealed (a baseline): the same sums. Events since then
		// went to later buckets, or rewrote a record and changed the
		// generation; sealing appends records after the period, trimming
		// drops records before it. Only the latest state depends on t.
		if key.latest != nil {
			key.latest.fill(&e.v, t)
		}
		return
	}
	e.vgen, e.vapplied, e.vlo, e.vhi, e.vsealed = key.gen, key.applied, lo, hi, hi < key.hotFloor
	var fb [8]failAcc
	a := accum{fails: fb[:0]}
	if lo <= hi {
		p.sealed(ks, key, e, lo, min(hi, key.hotFloor-1))
		a.n = e.n
		for _, fc := range e.fails {
			if fc.n != 0 {
				a.fails = append(a.fails, fc)
			}
		}
		for _, hp := range key.hot {
			if hp == 0 {
				continue
			}
			b := ks.pool.at(hp)
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
	}
	a.fillCounts(&e.v)
	e.lat, e.vlat = *a.latency(), false
	e.vfails = append(e.vfails[:0], a.fails...)
	if key.latest != nil {
		key.latest.fill(&e.v, t)
	}
}

// sealed brings e to the sum of key's sealed records in [lo, hi] (empty
// when hi < lo).
func (p *Period) sealed(ks *keyspace, key *keyState, e *periodEnt, lo, hi int64) {
	if hi < lo {
		e.gen, e.lo, e.hi, e.at, e.end = key.gen, lo, lo-1, key.trimmed, key.trimmed
		e.n = [nCounters]uint64{}
		e.fails = e.fails[:0]
		return
	}
	// Moving forward by subtracting the buckets that left and adding those
	// that entered needs the records that left to be still there: trimming
	// keeps every record from the key's newest bucket minus its span on.
	if e.gen == key.gen && e.gen != 0 && lo >= e.lo && hi >= e.hi && lo <= e.hi+1 && e.lo >= key.newest-ks.n+1 {
		if lo == e.lo && hi == e.hi {
			return
		}
		// Trimming dropped only records before e.lo, so before at. A
		// cursor too early costs a few reads, never a wrong sum: records
		// are checked against the old period before they count.
		off := max(0, e.at-key.trimmed)
		for off < len(key.cold) {
			idx, body, next := recordAt(key.cold, off, key.newest)
			if idx >= lo {
				break
			}
			if idx >= e.lo {
				e.fails = subBody(key.cold, body, &e.n, e.fails)
			}
			off = next
		}
		at := off
		for off = max(at, e.end-key.trimmed); off < len(key.cold); {
			idx, body, next := recordAt(key.cold, off, key.newest)
			if idx > hi {
				break
			}
			if idx > e.hi {
				e.fails = decodeBody(key.cold, body, &e.n, e.fails)
			}
			off = next
		}
		e.lo, e.hi, e.at, e.end = lo, hi, key.trimmed+at, key.trimmed+off
		return
	}
	e.gen, e.lo, e.hi = key.gen, lo, hi
	e.n = [nCounters]uint64{}
	e.fails = e.fails[:0]
	off, at := 0, -1
	for off < len(key.cold) {
		idx, body, next := recordAt(key.cold, off, key.newest)
		if at < 0 && idx >= lo {
			at = off
		}
		if idx > hi {
			break
		}
		if idx >= lo {
			e.fails = decodeBody(key.cold, body, &e.n, e.fails)
		}
		off = next
	}
	if at < 0 { // no record at or after lo yet
		at = off
	}
	e.at, e.end = key.trimmed+at, key.trimmed+off
}

// subBody subtracts the record body at cold[off:] from the counters and
// failure entries, which hold it: the inverse of decodeBody. Entries that
// reach zero stay (Values skips them), so that the slice does not churn.
func subBody(cold []byte, off int, n *[nCounters]uint64, fails []failAcc) []failAcc {
	var d [nCounters]uint64
	var fb [8]failAcc
	df := decodeBody(cold, off, &d, fb[:0])
	for i, v := range d {
		n[i] -= v
	}
	for _, f := range df {
		// addFail with the two's complement subtracts: the entry exists,
		// since the sum holds this record.
		fails = addFail(fails, f.code, f.class, -f.n)
	}
	return fails
}

package window

import (
	"strings"
	"unsafe"

	"vigia/internal/quality"
)

// Dimension indexes of the per-event value array.
const (
	dWABA = iota
	dPhone
	dTemplate
	dUseCase
	dCampaign
	dChannel
	dCountry
	nDims
)

func dimIndex(d quality.Dim) (int, bool) {
	switch d {
	case quality.DimWABA:
		return dWABA, true
	case quality.DimPhoneNumber:
		return dPhone, true
	case quality.DimTemplate:
		return dTemplate, true
	case quality.DimUseCase:
		return dUseCase, true
	case quality.DimCampaign:
		return dCampaign, true
	case quality.DimChannel:
		return dChannel, true
	case quality.DimCountry:
		return dCountry, true
	}
	return 0, false
}

// noBucket is the newest bucket of a key that has counted nothing yet.
const noBucket = -1 << 62

// maxHot bounds the dense buckets per key.
const maxHot = 4

// keyState is one key of a keyspace. Keys live in a slab indexed by the
// keyspace's key table, so that the table holds no pointers and the state
// of a key is one contiguous struct.
//
// The table is keyed by a 128-bit hash of the key's values rather than by
// the id string: computing it costs a few nanoseconds per dimension, while
// comparing strings costs a cache miss on the key's bytes per keyspace per
// event, and building the id of a multi-dimension key a copy. Two keys
// collide with probability 2^-128 per pair, far below any other error.
type keyState struct {
	id       string  // "" marks a free slab slot (real keys have non-empty values)
	hash     keyHash // the key's hash in the key table
	newest   int64   // newest bucket with counts, or noBucket
	hotFloor int64   // buckets at or after it are hot, before it sealed
	last     int64   // latest event time applied (ns), for IdleTTL
	// hot[i] is 1 + the pool index of the dense bucket whose index is i
	// modulo the keyspace's hotN, or 0. Hot buckets always lie in
	// [hotFloor, hotFloor+hotN), so they never share a slot.
	hot    [maxHot]int32
	cold   []byte // sealed buckets older than hotFloor, in ascending order (see bucket.go)
	latest *latestState
	// gen changes when the slot gets a new key and when a sealed record is
	// rewritten (the slow path): a Period's sums of sealed buckets are
	// good while it stays the same (sealing appends records and trimming
	// drops old ones, neither changes a record).
	gen uint64
	// trimmed counts the bytes trim has dropped from the front of cold
	// since the key came: a Period finds a record again at trimmed plus
	// its offset then, minus trimmed now.
	trimmed int
	// followed is the latest value of the keyspace's Spec.Follow, seen at
	// followedAt (event time): kept here rather than with latest, which
	// every Period computation of a key that has one reads.
	followed     string
	followedHash keyHash // its hash, compared instead of its bytes
	followedAt   int64
	// applied counts the events applied to the key. Nothing else changes
	// what the key holds for a period ahead of the span it keeps (sealing
	// moves counts from dense buckets to records, trimming drops records
	// older than that span), so a Period's answer for the same buckets
	// holds while it stays the same.
	applied uint64
}

// keyspace is the state of one Spec.
type keyspace struct {
	spec    Spec
	dims    []int
	follow  int   // the dimension index of Spec.Follow, or -1
	res     int64 // resolution, ns
	n       int64 // buckets kept per key
	hotN    int64 // dense buckets per key
	span    int64 // ns
	maxKeys int
	idle    int64 // ns; 0: never

	m    keyTable
	keys []keyState
	free []int32
	pool bucketPool

	refused, stale, expired uint64
	lastGen                 uint64 // the last keyState.gen given out
	// Kept up to date so that Stats is cheap: the engine reads it after
	// every evaluation.
	coldLen, coldCap, states int
}

func newKeyspace(sp Spec, o Options) *keyspace {
	ks := &keyspace{
		spec:    sp,
		res:     int64(sp.Resolution),
		n:       bucketsFor(sp),
		span:    int64(sp.Span),
		maxKeys: o.MaxKeys,
		idle:    int64(o.IdleTTL),
		follow:  -1,
	}
	for _, d := range sp.By {
		i, _ := dimIndex(d)
		ks.dims = append(ks.dims, i)
	}
	if i, ok := dimIndex(sp.Follow); ok {
		ks.follow = i
	}
	// Enough dense buckets that events within the allowed lateness of a
	// key's newest bucket usually find theirs dense (the slower path
	// rewrites a sealed record), at least two so that the usual disorder
	// around a bucket boundary stays on the fast path, and at most maxHot
	// so that a busy key does not hold many 128-byte buckets.
	ks.hotN = min(max(2, (int64(o.AllowedLateness)+ks.res-1)/ks.res+1), maxHot, ks.n)
	return ks
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// slot is idx modulo hotN, with constant divisors for the usual sizes: a
// division by a variable costs tens of cycles, and Apply takes several
// slots per event.
func (ks *keyspace) slot(idx int64) int {
	var r int64
	switch ks.hotN {
	case 2:
		return int(idx & 1)
	case 4:
		return int(idx & 3)
	case 3:
		r = idx % 3
	default:
		r = idx % ks.hotN
	}
	if r < 0 {
		r += ks.hotN
	}
	return int(r)
}

// keyHash is the 128-bit hash of a key's values: two independent 64-bit
// hashes.
type keyHash [2]uint64

// fmix is MurmurHash3's 64-bit finalizer, a bijection that spreads every
// input bit over the output: chaining it over the values of a
// multi-dimension key makes the hash depend on their order.
func fmix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hashOf combines the hashes of the event's values into the key hash of
// this keyspace, or reports false when a value is missing.
func (ks *keyspace) hashOf(vals *[nDims]string, hs *[nDims]keyHash) (keyHash, bool) {
	if len(ks.dims) == 1 {
		d := ks.dims[0]
		return normHash(hs[d]), vals[d] != ""
	}
	var a, b uint64
	for _, d := range ks.dims {
		if vals[d] == "" {
			return keyHash{}, false
		}
		a = fmix(a ^ hs[d][0])
		b = fmix(b ^ hs[d][1])
	}
	return normHash(keyHash{a, b}), true
}

// idOf returns the id of a key: the value itself for one dimension;
// values joined by '|' for several, '|' and '\' escaped by '\' so that
// the id is unambiguous.
func (ks *keyspace) idOf(vals *[nDims]string) string {
	if len(ks.dims) == 1 {
		return strings.Clone(vals[ks.dims[0]])
	}
	var b strings.Builder
	for i, d := range ks.dims {
		if i > 0 {
			b.WriteByte('|')
		}
		v := vals[d]
		for j := 0; j < len(v); j++ {
			if v[j] == '|' || v[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[j])
		}
	}
	return b.String()
}

// splitID splits a key id into its values (without allocating when no
// value was escaped; buf holds unescaped values otherwise). It reports
// false when the id has the wrong number of values.
func (ks *keyspace) splitID(id string, vals *[nDims]string, buf []byte) bool {
	if len(ks.dims) == 1 {
		vals[ks.dims[0]] = id
		return id != ""
	}
	i, start := 0, 0
	escaped := false
	for j := 0; j <= len(id); j++ {
		if j < len(id) && id[j] == '\\' {
			escaped = true
			j++
			continue
		}
		if j < len(id) && id[j] != '|' {
			continue
		}
		if i == len(ks.dims) {
			return false
		}
		v := id[start:j]
		if escaped {
			n := len(buf)
			for k := 0; k < len(v); k++ {
				if v[k] == '\\' && k+1 < len(v) {
					k++
				}
				buf = append(buf, v[k])
			}
			v = unsafe.String(unsafe.SliceData(buf[n:]), len(buf)-n)
			escaped = false
		}
		vals[ks.dims[i]] = v
		i, start = i+1, j+1
	}
	return i == len(ks.dims)
}

// lookup finds the key with id.
func (ks *keyspace) lookup(s *Store, id string) (*keyState, bool) {
	var vals [nDims]string
	// Escaped values are unescaped into the store's scratch buffer: it
	// may move as it grows, but values already cut keep the old array.
	if !ks.splitID(id, &vals, s.idbuf[:0]) {
		return nil, false
	}
	var hs [nDims]keyHash
	s.hashValues(&vals, &hs)
	h, ok := ks.hashOf(&vals, &hs)
	if !ok {
		return nil, false
	}
	ki := ks.m.find(h, ks.keys)
	if ki < 0 {
		return nil, false
	}
	return &ks.keys[ki], true
}

// labels splits a key id back into its dimension values.
func (ks *keyspace) labels(id string) map[string]string {
	m := make(map[string]string, len(ks.dims))
	if len(ks.dims) == 1 {
		m[string(ks.spec.By[0])] = id
		return m
	}
	var cur []byte
	i := 0
	for j := 0; j < len(id); j++ {
		switch c := id[j]; {
		case c == '\\' && j+1 < len(id):
			j++
			cur = append(cur, id[j])
		case c == '|':
			m[string(ks.spec.By[i])] = string(cur)
			cur, i = cur[:0], i+1
		default:
			cur = append(cur, c)
		}
	}
	m[string(ks.spec.By[i])] = string(cur)
	return m
}

// maxPipelined bounds the keyspaces whose lookups are interleaved; a
// store with more (unusual: one per distinct grouping and resolution of
// the rules) applies the rest one by one.
const maxPipelined = 16

// findKeys looks up the event's key in every keyspace (up to
// maxPipelined), and applyFound then counts it. The work is split in phases
// across keyspaces because each keyspace costs a chain of cache misses
// (table slot, key state, dense bucket) independent of the other
// keyspaces': running the lookups of all keyspaces first, then touching
// all their buckets, then updating, lets the processor overlap the misses
// of different keyspaces instead of waiting for each in turn.
func (s *Store) findKeys(vals *[nDims]string, hs *[nDims]keyHash) {
	spaces := s.spaces[:min(len(s.spaces), maxPipelined)]
	var at [maxPipelined]uint64
	for i, ks := range spaces {
		s.hh[i], s.oks[i] = ks.hashOf(vals, hs)
		if s.oks[i] {
			s.kis[i], at[i] = ks.m.probe(s.hh[i][0])
		}
	}
	for i, ks := range spaces {
		if s.oks[i] {
			s.kis[i] = ks.m.confirm(s.hh[i], s.kis[i], at[i], ks.keys)
		}
	}
}

func (s *Store) applyFound(vals *[nDims]string, hs *[nDims]keyHash, t int64, c *contrib) Outcome {
	n := min(len(s.spaces), maxPipelined)
	// Bucket indexes, one division per distinct resolution (usually one).
	var idxs [maxPipelined]int64
	res, idx := int64(0), int64(0)
	for i, ks := range s.spaces[:n] {
		if ks.res != res {
			res, idx = ks.res, floorDiv(t, ks.res)
		}
		idxs[i] = idx
	}
	if c.nInc > 0 {
		var sink uint32
		for i, ks := range s.spaces[:n] {
			if s.oks[i] && s.kis[i] >= 0 {
				sink += ks.touch(&ks.keys[s.kis[i]], idxs[i])
			}
		}
		s.sink += sink
	}
	best := NoKey
	for i, ks := range s.spaces {
		var r Outcome
		switch {
		case i >= n:
			r = ks.apply(s, vals, hs, t, c)
		case !s.oks[i]:
			r = NoKey
		default:
			r = ks.applyKey(s, vals, hs, s.hh[i], s.kis[i], t, idxs[i], c)
		}
		best = min(best, r)
	}
	return best
}

// touch reads the dense bucket of bucket idx, if there is one, so that its
// cache lines are on their way (see findKeys).
func (ks *keyspace) touch(k *keyState, idx int64) uint32 {
	if idx < k.hotFloor || idx >= k.hotFloor+ks.hotN {
		return 0
	}
	if p := k.hot[ks.slot(idx)]; p != 0 {
		b := ks.pool.at(p)
		return b.n[0] + b.n[nCounters-1]
	}
	return 0
}

// apply counts the event in this keyspace.
func (ks *keyspace) apply(s *Store, vals *[nDims]string, hs *[nDims]keyHash, t int64, c *contrib) Outcome {
	h, ok := ks.hashOf(vals, hs)
	if !ok {
		return NoKey
	}
	return ks.applyKey(s, vals, hs, h, ks.m.find(h, ks.keys), t, floorDiv(t, ks.res), c)
}

// applyKey counts the event at t (in bucket idx) for the key with hash h,
// found at slab index ki (-1: new); hs are the hashes of vals.
func (ks *keyspace) applyKey(s *Store, vals *[nDims]string, hs *[nDims]keyHash, h keyHash, ki int32, t, idx int64, c *contrib) Outcome {
	if ki < 0 {
		if ks.maxKeys > 0 && ks.m.len() >= ks.maxKeys {
			ks.refused++
			return Refused
		}
		ki = ks.newKey(ks.idOf(vals), h)
	}
	k := &ks.keys[ki]
	k.last = max(k.last, t)
	k.applied++
	if ks.follow >= 0 && vals[ks.follow] != "" {
		k.setFollowed(vals[ks.follow], hs[ks.follow], t)
	}
	for _, st := range c.states[:c.nStates] {
		ks.states += k.setState(st.f, st.v, t)
	}
	if c.nInc == 0 {
		return Applied
	}
	switch {
	case k.newest == noBucket:
		k.newest = idx
		k.hotFloor = idx - ks.hotN + 1
	case idx <= k.newest-ks.n:
		ks.stale++
		return Stale
	case idx > k.newest:
		ks.advance(s, k, idx)
	}
	if idx >= k.hotFloor {
		sl := ks.slot(idx)
		p := k.hot[sl]
		if p == 0 {
			p = ks.allocHot(idx)
			k.hot[sl] = p
		}
		ks.pool.at(p).apply(c)
		return Applied
	}
	ks.coldApply(s, k, idx, c)
	return Applied
}

func (ks *keyspace) newKey(id string, h keyHash) int32 {
	var ki int32
	if n := len(ks.free); n > 0 {
		ki = ks.free[n-1]
		ks.free = ks.free[:n-1]
	} else {
		ks.keys = append(ks.keys, keyState{})
		ki = int32(len(ks.keys) - 1)
	}
	ks.lastGen++
	ks.keys[ki] = keyState{id: id, hash: h, newest: noBucket, last: noTime, followedAt: noTime, gen: ks.lastGen}
	ks.m.insert(h[0], ki)
	return ki
}

// setCold replaces a key's sealed records, keeping the totals of Stats.
func (ks *keyspace) setCold(k *keyState, cold []byte) {
	ks.coldLen += len(cold) - len(k.cold)
	ks.coldCap += cap(cold) - cap(k.cold)
	k.cold = cold
}

func (ks *keyspace) allocHot(idx int64) int32 {
	p := ks.pool.alloc()
	ks.pool.at(p).reset(idx)
	return p
}

// advance makes idx the key's newest bucket: buckets that fall out of the
// hot range are sealed, and sealed records older than the span dropped.
func (ks *keyspace) advance(s *Store, k *keyState, idx int64) {
	// Records are resolved against the old newest bucket, which they are
	// all within 2^16 of; the new one may be far ahead. Trimming before
	// sealing lets the new records reuse the room of the old ones, so that
	// a key at a steady rate never grows its records.
	cutoff := idx - ks.n + 1
	ks.trim(k, cutoff)
	if idx >= k.hotFloor+ks.hotN {
		ks.seal(s, k, idx-ks.hotN+1)
		ks.trim(k, cutoff) // after a jump, sealed buckets may be out of span already
	}
	k.newest = idx
}

// reserve makes room for extra more bytes of sealed records. It grows to
// the size needed plus coldSlack rather than by append's doubling: records
// are most of a key's memory, and once its span is full a key's records
// keep a steady size (advance trims before it appends).
const coldSlack = 32 // for the slow path, which lengthens records by a few bytes

func (ks *keyspace) reserve(k *keyState, extra int) {
	if cap(k.cold)-len(k.cold) >= extra {
		return
	}
	cold := make([]byte, len(k.cold), len(k.cold)+extra+coldSlack)
	copy(cold, k.cold)
	ks.setCold(k, cold)
}

// seal moves the hot buckets before floor into the sealed records and
// raises the key's hot floor to it.
func (ks *keyspace) seal(s *Store, k *keyState, floor int64) {
	if floor <= k.hotFloor {
		return
	}
	// Walk the hot range in bucket order so that records stay sorted.
	for b := k.hotFloor; b < min(floor, k.hotFloor+ks.hotN); b++ {
		sl := ks.slot(b)
		p := k.hot[sl]
		if p == 0 {
			continue
		}
		ks.appendRecord(s, k, ks.pool.at(p))
		k.hot[sl] = 0
		ks.pool.release(p)
	}
	k.hotFloor = floor
}

// trim drops the sealed records of buckets before cutoff.
func (ks *keyspace) trim(k *keyState, cutoff int64) {
	off := 0
	for off < len(k.cold) {
		idx, _, next := recordAt(k.cold, off, k.newest)
		if idx >= cutoff {
			break
		}
		off = next
	}
	if off > 0 {
		ks.setCold(k, k.cold[:copy(k.cold, k.cold[off:])])
		k.trimmed += off
	}
}

// coldApply adds an event to a sealed bucket: it decodes the record (or
// starts an empty one), applies the event and writes the record back in
// place. This is the slow path, taken by events later than the hot range.
func (ks *keyspace) coldApply(s *Store, k *keyState, idx int64, c *contrib) {
	ks.lastGen++
	k.gen = ks.lastGen
	b := &s.scratchB
	b.reset(idx)
	start, end := len(k.cold), len(k.cold)
	for off := 0; off < len(k.cold); {
		ridx, body, next := recordAt(k.cold, off, k.newest)
		if ridx == idx {
			decodeInto(k.cold, body, b)
			start, end = off, next
			break
		}
		if ridx > idx {
			start, end = off, off
			break
		}
		off = next
	}
	b.apply(c)
	s.recbuf, s.scratch = encodeRecord(s.recbuf[:0], s.scratch, b)
	ks.reserve(k, len(s.recbuf)-(end-start))
	ks.setCold(k, splice(k.cold, start, end, s.recbuf))
}

// appendRecord seals b at the end of k's records.
func (ks *keyspace) appendRecord(s *Store, k *keyState, b *hotBucket) {
	s.recbuf, s.scratch = encodeRecord(s.recbuf[:0], s.scratch, b)
	ks.reserve(k, len(s.recbuf))
	ks.setCold(k, append(k.cold, s.recbuf...))
}

// splice replaces p[start:end] with r.
func splice(p []byte, start, end int, r []byte) []byte {
	grow := len(r) - (end - start)
	if grow > 0 {
		p = append(p, make([]byte, grow)...)
		copy(p[end+grow:], p[end:len(p)-grow])
	} else if grow < 0 {
		copy(p[end+grow:], p[end:])
		p = p[:len(p)+grow]
	}
	copy(p[start:], r)
	return p
}

// expire drops idle keys, seals the hot buckets that now can only receive
// events through the slow path anyway (so that quiet keys hold no dense
// bucket), and trims state history.
func (ks *keyspace) expire(s *Store, now int64) {
	nowIdx := floorDiv(now, ks.res)
	for ki := range ks.keys {
		k := &ks.keys[ki]
		if k.id == "" {
			continue
		}
		if ks.idle > 0 && k.last < now-ks.idle {
			ks.drop(int32(ki))
			continue
		}
		if k.newest != noBucket {
			ks.seal(s, k, nowIdx-ks.hotN+1)
		}
		// A key that got quieter gives back the room of its busier past.
		if c := cap(k.cold); c > 2*len(k.cold)+64 {
			ks.setCold(k, append([]byte(nil), k.cold...))
		}
		if k.latest != nil {
			ks.states -= k.latest.trim(now - ks.span)
		}
	}
}

func (ks *keyspace) drop(ki int32) {
	k := &ks.keys[ki]
	for _, p := range k.hot {
		if p != 0 {
			ks.pool.release(p)
		}
	}
	ks.m.remove(k.hash[0], ki)
	ks.setCold(k, nil)
	if k.latest != nil {
		ks.states -= len(k.latest.hist)
	}
	*k = keyState{}
	ks.free = append(ks.free, ki)
	ks.expired++
}

// stats reads the keyspace's counters and estimates its bytes without
// visiting its keys.
func (ks *keyspace) stats() (SpecStats, int64) {
	ss := SpecStats{Keys: ks.m.len(), HotBuckets: ks.pool.live(), ColdBytes: ks.coldLen,
		Refused: ks.refused, Stale: ks.stale, Expired: ks.expired}
	// The key table, the slab, the dense bucket pool with a few failure
	// entries each, sealed records, ids of about 20 bytes, state changes.
	b := int64(len(ks.m.slots)) * int64(unsafe.Sizeof(keySlot{}))
	b += int64(cap(ks.keys)) * int64(unsafe.Sizeof(keyState{}))
	b += int64(len(ks.pool.chunks)*poolChunk) * int64(unsafe.Sizeof(hotBucket{})+2*unsafe.Sizeof(failCount{}))
	b += int64(ks.coldCap) + int64(ks.m.len())*24
	b += int64(ks.states) * int64(unsafe.Sizeof(stateEntry{})+16)
	return ss, b
}

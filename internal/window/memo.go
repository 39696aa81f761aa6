package window

import (
	"math"

	"vigia/internal/event"
)

// The dedupe and attribution memories are set-associative hash tables
// rather than Go maps with a queue of insertion order: at millions of
// entries every access is a cache miss, and a map plus a queue costs a
// miss for the lookup, one for the insertion's eviction and one for the
// related status (sent for a delivered), at about 45 bytes an entry. Here
// an entry lives in one of a few adjacent sets of 4 ways (usually the
// first: one cache line), chosen by the upper 32 bits of its hash. The
// attribution table probes four sets (atProbes). The dedupe table probes eight
// (ddProbes): the statuses of one message share their placement bits (see
// entryHash), so that finding the sent of a delivered costs nothing more,
// which packs three or four entries of one message into one set; with two
// sets, three messages meeting there filled all 8 slots at 1 % load, which
// made the table grow to its bound and then evict current entries (seen
// in backtests of 50,000 events against a bound of 5 million). With eight,
// a lookup still reads one set while the table is under about a fifth
// full, which growth keeps it near.
// Nothing is ever deleted: an entry past its horizon is treated as absent
// and its slot reused, and when the table is at its bound a new entry
// replaces the oldest (by event time) of the slots it may go to. A table
// only grows (doubling, up to its bound) when those slots are all current.
//
// Invariant: an entry is in set s+k only if s..s+k-1 were full when it was
// inserted, and slots are never emptied, so a lookup that finds a free slot
// in a set can stop there.

const ways = 4

// ddProbes is how many adjacent sets a dedupe entry may go to.
const ddProbes = 8

// atProbes is how many adjacent sets an attribution may go to. Its
// entries do not cluster as a message's statuses do, but with two sets a
// few full windows at 5 % load still grew the table to its bound and
// then evicted current entries (TestAttributionDoesNotEvictAtLowLoad).
const atProbes = 4

// noCutoff is the cutoff before the first Expire: nothing is forgotten.
const noCutoff = math.MinInt64

// setIndex maps a placement hash onto n sets without a power-of-two size
// (Lemire's multiply-shift), so that a bound sizes the table exactly.
func setIndex(p uint64, n int) int {
	return int((p >> 32) * uint64(n) >> 32)
}

// tableSize is the number of sets for a bound of max entries.
func tableSize(max int) int {
	return (max + ways - 1) / ways
}

const minSets = 64

// ddSet is one set of the dedupe table: 64 bytes, one cache line.
type ddSet struct {
	h [ways]uint64 // entry hash; 0 is a free slot
	t [ways]int64  // event time (ns) of the first copy seen
}

// dedupe remembers (message id, status) pairs and event ids by 64-bit hash
// with the event time of the first copy seen. The time serves both the
// horizon and the sent→delivered latency (the time of (id, sent) is the
// sent time).
type dedupe struct {
	sets    []ddSet
	used    int // slots filled, current or past the horizon
	maxSets int // 0: no bound
	cutoff  int64
	evicted uint64
}

func newDedupe(max int) dedupe {
	d := dedupe{cutoff: noCutoff}
	if max > 0 {
		d.maxSets = tableSize(max)
	}
	d.sets = make([]ddSet, d.initialSets())
	return d
}

func (d *dedupe) initialSets() int {
	if d.maxSets > 0 {
		return min(minSets, d.maxSets)
	}
	return minSets
}

// find returns the slot (set*ways + way) holding h, or -1.
func (d *dedupe) find(h uint64) int {
	s := setIndex(h, len(d.sets))
	for range ddProbes {
		st := &d.sets[s]
		full := true
		for w := range ways {
			switch st.h[w] {
			case h:
				return s*ways + w
			case 0:
				full = false
			}
		}
		if !full {
			return -1
		}
		if s++; s == len(d.sets) {
			s = 0
		}
	}
	return -1
}

// touch reads the first set h may be in, so that its cache line is on its
// way before find needs it (Store.DecideBatch).
func (d *dedupe) touch(h uint64) uint64 { return d.sets[setIndex(h, len(d.sets))].h[0] }

// get returns the time recorded for h, if it is within the horizon.
func (d *dedupe) get(h uint64) (int64, bool) { return d.timeAt(d.find(h)) }

// timeAt returns the time in slot i (a find answer), if it is within the
// horizon.
func (d *dedupe) timeAt(i int) (int64, bool) {
	if i < 0 {
		return 0, false
	}
	t := d.sets[i/ways].t[i%ways]
	return t, t >= d.cutoff
}

// put records h at time t. at is find's answer for h: a slot holding h
// past the horizon is reused in place, which keeps one slot per hash.
func (d *dedupe) put(h uint64, t int64, at int) {
	if at >= 0 {
		d.sets[at/ways].t[at%ways] = t
		return
	}
	for {
		si := setIndex(h, len(d.sets))
		victim, vt := -1, int64(math.MaxInt64)
		for range ddProbes {
			st := &d.sets[si]
			for w := range ways {
				switch {
				case st.h[w] == 0:
					st.h[w], st.t[w] = h, t
					d.used++
					return
				case st.t[w] < d.cutoff:
					// Past the horizon: as good as free.
					st.h[w], st.t[w] = h, t
					return
				case st.t[w] < vt:
					victim, vt = si*ways+w, st.t[w]
				}
			}
			// A free slot in the next set may only be used when this one
			// is full, which it is if the loop got here.
			if si++; si == len(d.sets) {
				si = 0
			}
		}
		if d.maxSets == 0 || len(d.sets) < d.maxSets {
			d.grow()
			continue
		}
		d.sets[victim/ways].h[victim%ways] = h
		d.sets[victim/ways].t[victim%ways] = t
		d.evicted++
		return
	}
}

// grow doubles the table (up to its bound) and reinserts the current
// entries; entries past the horizon are dropped on the way. An entry's
// hash is its own placement hash (see entryHash), so nothing else is
// needed to place it again.
func (d *dedupe) grow() {
	old := d.sets
	n := 2 * len(old)
	if d.maxSets > 0 {
		n = min(n, d.maxSets)
	}
	d.sets, d.used = make([]ddSet, n), 0
	adviseHuge(d.sets)
	for i := range old {
		for w := range ways {
			if h := old[i].h[w]; h != 0 && old[i].t[w] >= d.cutoff {
				d.put(h, old[i].t[w], -1)
			}
		}
	}
}

// reservedSets is how many sets a table of cur sets (bounded by max, 0:
// no bound) should have to take n entries without growing: what doubling
// would reach for them, at most three quarters full.
func reservedSets(cur, max, n int) int {
	sets := cur
	for sets*ways*3 < n*4 && (max == 0 || sets < max) {
		sets *= 2
	}
	if max > 0 {
		sets = min(sets, max)
	}
	return sets
}

// reserve sizes an empty table for n entries at once, so that it does not
// grow (rehashing every entry) while they come.
func (d *dedupe) reserve(n int) {
	if sets := reservedSets(len(d.sets), d.maxSets, n); d.used == 0 && sets > len(d.sets) {
		d.sets = make([]ddSet, sets)
		adviseHuge(d.sets)
	}
}

// entryHash is the dedupe hash of (id, tag): the id's 64-bit hash with its
// low 3 bits replaced by the tag (a status code, or the event-id
// namespace). The statuses of one message thus differ exactly, share the
// upper bits that place them (setIndex reads only those), and never hash
// to 0, the free slot; 61 bits remain to tell messages apart.
func entryHash(base uint64, tag int) uint64 { return base&^7 | uint64(tag) }

// live counts the entries within the horizon.
func (d *dedupe) live() int {
	n := 0
	for i := range d.sets {
		for w := range ways {
			if d.sets[i].h[w] != 0 && d.sets[i].t[w] >= d.cutoff {
				n++
			}
		}
	}
	return n
}

func (d *dedupe) expire(cutoff int64) { d.cutoff = max(d.cutoff, cutoff) }

// atSet is one set of the attribution table.
type atSet struct {
	h [ways]uint64
	t [ways]int64 // event time of the status that recorded the attribution
	a [ways]*event.Attribution
}

// attrMemory maps (phone number id, recipient pseudonym) hashes to the last
// attribution, so that opt-outs and replies, which carry none, can be
// charged to the template, use case and campaign that preceded them.
// Attributions are interned: thousands of users get the same few
// templates, and each decoded event has its own copies of the strings.
type attrMemory struct {
	sets    []atSet
	used    int
	maxSets int
	cutoff  int64
	evicted uint64
	// intern is cleared when it grows past internMax, which only loses
	// sharing: entries keep their pointers.
	intern map[event.Attribution]*event.Attribution
}

const internMax = 1 << 14

func newAttrMemory(max int) attrMemory {
	a := attrMemory{cutoff: noCutoff, intern: make(map[event.Attribution]*event.Attribution)}
	if max > 0 {
		a.maxSets = tableSize(max)
	}
	a.sets = make([]atSet, minSets)
	if a.maxSets > 0 {
		a.sets = make([]atSet, min(minSets, a.maxSets))
	}
	return a
}

func (a *attrMemory) internOf(attr *event.Attribution) *event.Attribution {
	if p, ok := a.intern[*attr]; ok {
		return p
	}
	if len(a.intern) >= internMax {
		clear(a.intern)
	}
	// Copies: the event's strings are not ours to keep.
	p := &event.Attribution{Template: string([]byte(attr.Template)), UseCase: string([]byte(attr.UseCase)), Campaign: string([]byte(attr.Campaign))}
	a.intern[*p] = p
	return p
}

func (a *attrMemory) find(h uint64) int {
	s := setIndex(h, len(a.sets))
	for range atProbes {
		st := &a.sets[s]
		full := true
		for w := range ways {
			switch st.h[w] {
			case h:
				return s*ways + w
			case 0:
				full = false
			}
		}
		if !full {
			return -1
		}
		if s++; s == len(a.sets) {
			s = 0
		}
	}
	return -1
}

// getAt returns the attribution in slot i (a find answer), if current.
func (a *attrMemory) getAt(i int) (*event.Attribution, bool) {
	if i < 0 {
		return nil, false
	}
	st := &a.sets[i/ways]
	return st.a[i%ways], st.t[i%ways] >= a.cutoff
}

// record keeps attr for h (found at slot i, or -1) unless a later one (by
// event time) is already there: statuses arrive out of order, and the last
// template the user got is the one with the latest time.
func (a *attrMemory) record(h uint64, i int, t int64, attr *event.Attribution) {
	if i >= 0 {
		st := &a.sets[i/ways]
		w := i % ways
		if st.t[w] >= a.cutoff && t < st.t[w] {
			return
		}
		if *st.a[w] != *attr {
			st.a[w] = a.internOf(attr)
		}
		st.t[w] = t
		return
	}
	a.insert(h, t, a.internOf(attr))
}

func (a *attrMemory) insert(h uint64, t int64, p *event.Attribution) {
	for {
		si := setIndex(h, len(a.sets))
		victim, vt := -1, int64(math.MaxInt64)
		for range atProbes {
			st := &a.sets[si]
			for w := range ways {
				switch {
				case st.h[w] == 0:
					st.h[w], st.t[w], st.a[w] = h, t, p
					a.used++
					return
				case st.t[w] < a.cutoff:
					st.h[w], st.t[w], st.a[w] = h, t, p
					return
				case st.t[w] < vt:
					victim, vt = si*ways+w, st.t[w]
				}
			}
			if si++; si == len(a.sets) {
				si = 0
			}
		}
		if a.maxSets == 0 || len(a.sets) < a.maxSets {
			a.grow()
			continue
		}
		// The least recently recorded of the slots it may go to makes room.
		st := &a.sets[victim/ways]
		st.h[victim%ways], st.t[victim%ways], st.a[victim%ways] = h, t, p
		a.evicted++
		return
	}
}

func (a *attrMemory) grow() {
	old := a.sets
	n := 2 * len(old)
	if a.maxSets > 0 {
		n = min(n, a.maxSets)
	}
	a.sets, a.used = make([]atSet, n), 0
	adviseHuge(a.sets)
	for i := range old {
		for w := range ways {
			if h := old[i].h[w]; h != 0 && old[i].t[w] >= a.cutoff {
				a.insert(h, old[i].t[w], old[i].a[w])
			}
		}
	}
}

// reserve sizes an empty table for n attributions at once, like
// dedupe.reserve.
func (a *attrMemory) reserve(n int) {
	if sets := reservedSets(len(a.sets), a.maxSets, n); a.used == 0 && sets > len(a.sets) {
		a.sets = make([]atSet, sets)
		adviseHuge(a.sets)
	}
}

func (a *attrMemory) live() int {
	n := 0
	for i := range a.sets {
		for w := range ways {
			if a.sets[i].h[w] != 0 && a.sets[i].t[w] >= a.cutoff {
				n++
			}
		}
	}
	return n
}

func (a *attrMemory) expire(cutoff int64) { a.cutoff = max(a.cutoff, cutoff) }

package window

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"time"
	"unsafe"

	"vigia/internal/event"
	"vigia/internal/quality"
)

// Spec is one keyspace: the rules that group by the same dimensions share
// it.
type Spec struct {
	By         []quality.Dim
	Resolution time.Duration // bucket width
	Span       time.Duration // history kept: the longest window plus baseline of the rules using it
	// Follow, when set, is a dimension not in By whose latest value (by
	// event time) each key keeps, read with Store.Followed: the WABA of a
	// phone number, for rules over WABAs that count their numbers.
	Follow quality.Dim
}

// Options bound the store. A zero bound means no bound; a zero duration
// means what its comment says.
type Options struct {
	// AllowedLateness: an event older than its partition's watermark minus
	// this is dropped (Late). 0 accepts nothing older than the watermark.
	AllowedLateness time.Duration
	// DedupeHorizon: (message id, status) pairs and event ids are
	// remembered this long (event time, up to the Expire clock), for
	// dedupe and latency. 0: until evicted by MaxDedupe.
	DedupeHorizon time.Duration
	// IdleTTL: a key with no event for this long (event time, against the
	// Expire clock) is dropped. 0: keys are never dropped.
	IdleTTL time.Duration
	// AttributionTTL: a (phone number, user) attribution is forgotten this
	// long after the status that recorded it. 0: until evicted by
	// MaxAttribution.
	AttributionTTL time.Duration
	// MaxFutureSkew: an event whose time is more than this after its
	// receive time is refused (Future), so that one wrong clock cannot push
	// a watermark ahead and make every later event late. 0: no check;
	// events without a receive time are never checked.
	MaxFutureSkew time.Duration

	// MaxKeys bounds the keys of each keyspace; beyond it new keys are
	// refused (Refused).
	MaxKeys int
	// MaxDedupe bounds the remembered (message, status) pairs and event
	// ids (rounded up to a multiple of 4). When full, a new entry replaces
	// the oldest (by event time) of the 8 slots it may take: the table
	// costs 16 bytes per entry and one or two cache lines per event.
	MaxDedupe int
	// MaxAttribution bounds the remembered (phone number, user)
	// attributions (rounded up to a multiple of 4); when full, the least
	// recently recorded of the 8 slots a new pair may take makes room.
	MaxAttribution int
}

// maxBuckets bounds Span/Resolution: sealed records store the bucket index
// in 16 bits.
const maxBuckets = 1<<16 - 2

// Validate reports whether New accepts o and specs.
func Validate(o Options, specs []Spec) error {
	if o.AllowedLateness < 0 || o.DedupeHorizon < 0 || o.IdleTTL < 0 || o.AttributionTTL < 0 || o.MaxFutureSkew < 0 {
		return errors.New("window: negative duration in options")
	}
	for i, sp := range specs {
		if len(sp.By) == 0 {
			return fmt.Errorf("window: spec %d groups by no dimension", i)
		}
		seen := map[quality.Dim]bool{}
		for _, d := range sp.By {
			if _, ok := dimIndex(d); !ok {
				return fmt.Errorf("window: spec %d: unknown dimension %q", i, d)
			}
			if seen[d] {
				return fmt.Errorf("window: spec %d: dimension %q twice", i, d)
			}
			seen[d] = true
		}
		if sp.Follow != "" {
			if _, ok := dimIndex(sp.Follow); !ok {
				return fmt.Errorf("window: spec %d: unknown dimension %q to follow", i, sp.Follow)
			}
			if seen[sp.Follow] {
				return fmt.Errorf("window: spec %d follows %q, one of its dimensions", i, sp.Follow)
			}
		}
		if sp.Resolution <= 0 || sp.Span < sp.Resolution {
			return fmt.Errorf("window: spec %d: need 0 < resolution <= span (got %v, %v)", i, sp.Resolution, sp.Span)
		}
		if n := bucketsFor(sp); n > maxBuckets {
			return fmt.Errorf("window: spec %d keeps %d buckets, more than %d", i, n, maxBuckets)
		}
	}
	return nil
}

// bucketsFor is how many buckets a key keeps: a window of Span ending in
// the middle of a bucket overlaps one more than Span/Resolution.
func bucketsFor(sp Spec) int64 {
	return (int64(sp.Span)+int64(sp.Resolution)-1)/int64(sp.Resolution) + 1
}

// Outcome says what Apply did with an event.
type Outcome uint8

// Outcomes of Apply. An event counted in at least one keyspace is Applied;
// otherwise the first reason that applies, in the order listed after
// Applied, is given.
const (
	Applied   Outcome = iota // counted in at least one keyspace
	Late                     // older than the partition watermark minus AllowedLateness
	Future                   // event time too far after receive time (MaxFutureSkew)
	Ignored                  // carries nothing the store counts (unknown kind or status, resume, alert...)
	Duplicate                // (message id, status) or event id already seen within the horizon
	Refused                  // its key would be new in a full keyspace (MaxKeys) in every keyspace that had one
	Stale                    // older than Span behind its key's newest bucket in every keyspace that had a key
	NoKey                    // no keyspace had a value for all its dimensions
	nOutcomes
)

var outcomeNames = [...]string{"applied", "late", "future", "ignored", "duplicate", "refused", "stale", "no_key"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", o)
}

// Store is the window store. It is not safe for concurrent use: the
// engine serializes Apply, Values and Expire.
type Store struct {
	o      Options
	spaces []*keyspace

	wm []int64 // per partition: max event time seen (ns), noTime if none

	// Hash seeds: per store, since no hash leaves the process. Two for
	// the 128-bit key hashes.
	seed, seed2 maphash.Seed
	usedDims    uint8 // dimensions some keyspace groups by or follows (or a sharing store's): the only ones hashed
	// decider is the store whose decisions this one applies with the key
	// hashes they carry (NewSharing); nil for a store that hashes its own.
	decider *Store
	dd      dedupe
	attr    attrMemory

	idbuf    []byte // unescaped values of a key id being looked up (Values)
	scratch  []byte // record body being encoded
	recbuf   []byte // record being rewritten by the slow path
	scratchB hotBucket

	outcomes [nOutcomes]uint64
	// epoch counts the calls that may change an answer of Values (Apply,
	// Expire): a Period's answer is good again while it is the same.
	epoch uint64

	// The keys of the event being applied, per keyspace (see findKeys).
	kis         [maxPipelined]int32
	hh          [maxPipelined]keyHash
	oks         [maxPipelined]bool
	sink        uint32   // keeps the reads of the touch phase
	batchHashes []uint64 // DecideBatch's dedupe hashes, reused
}

// noTime marks an unset time in nanoseconds.
const noTime = math.MinInt64

// New returns an empty store. It panics when Validate fails: specs come
// from validated configuration, and a bad one is a programming error.
func New(o Options, specs []Spec) *Store {
	if err := Validate(o, specs); err != nil {
		panic(err)
	}
	s := &Store{
		o:     o,
		seed:  maphash.MakeSeed(),
		seed2: maphash.MakeSeed(),
		dd:    newDedupe(o.MaxDedupe),
		attr:  newAttrMemory(o.MaxAttribution),
	}
	for _, sp := range specs {
		ks := newKeyspace(sp, o)
		for _, d := range ks.dims {
			s.usedDims |= 1 << d
		}
		if ks.follow >= 0 { // compared by hash (setFollowed)
			s.usedDims |= 1 << ks.follow
		}
		s.spaces = append(s.spaces, ks)
	}
	return s
}

// NewSharing returns an empty store, as New does, that counts the
// decisions of decider (Decide, then ApplyDecision here) without hashing
// their dimension values again: it shares decider's hash seeds, and
// decider hashes from now on the dimensions of specs too, once per event
// for all the stores sharing it.
func NewSharing(decider *Store, o Options, specs []Spec) *Store {
	s := New(o, specs)
	s.seed, s.seed2, s.decider = decider.seed, decider.seed2, decider
	decider.usedDims |= s.usedDims
	return s
}

// nanos converts a time to Unix nanoseconds, clamped to about ±290 years
// around 1970 so that a wild timestamp saturates instead of wrapping.
func nanos(t time.Time) int64 {
	const lim = math.MaxInt64/int64(time.Second) - 1
	sec := t.Unix()
	switch {
	case sec > lim:
		return lim * int64(time.Second)
	case sec < -lim:
		return -lim * int64(time.Second)
	}
	return sec*int64(time.Second) + int64(t.Nanosecond())
}

// Watermark returns the maximum event time seen on partition, or the zero
// time when none was.
func (s *Store) Watermark(partition int) time.Time {
	if partition < 0 || partition >= len(s.wm) || s.wm[partition] == noTime {
		return time.Time{}
	}
	return time.Unix(0, s.wm[partition]).UTC()
}

func (s *Store) watermark(partition int) *int64 {
	if partition < 0 {
		panic("window: negative partition")
	}
	for len(s.wm) <= partition {
		s.wm = append(s.wm, noTime)
	}
	return &s.wm[partition]
}

// Status codes mixed into dedupe hashes; 0 is no known status.
const (
	stAccepted = iota + 1
	stSent
	stDelivered
	stRead
	stFailed
	stDeferred
	tagEventID // not a status: the event-id namespace
)

func statusCode(s string) int {
	switch s {
	case event.StatusSent:
		return stSent
	case event.StatusDelivered:
		return stDelivered
	case event.StatusRead:
		return stRead
	case event.StatusFailed:
		return stFailed
	case event.StatusAccepted:
		return stAccepted
	case event.StatusDeferred:
		return stDeferred
	}
	return 0
}

// State fields: the latest-state strings of quality.Values.
const (
	fQualityEvent = iota
	fMessagingTier
	fTemplateStatus
	fTemplateQuality
	fAccountEvent
	fAccountBanState
	nFields
)

// contrib is what one event adds to each of its keys, worked out once per
// event before the per-keyspace updates.
type contrib struct {
	inc     [4]uint8 // counters to increment
	nInc    int
	fail    bool
	code    int32
	class   uint8
	states  [2]stateSet
	nStates int
}

type stateSet struct {
	f uint8
	v string
}

func (c *contrib) add(i int) {
	c.inc[c.nInc] = uint8(i)
	c.nInc++
}

func (c *contrib) state(f int, v string) {
	if v != "" {
		c.states[c.nStates] = stateSet{uint8(f), v}
		c.nStates++
	}
}

// optedOut reports whether e is an opt-out verdict (resumes are not
// counted).
func optedOut(e *event.Event) bool { return e.OptOut != nil && !e.OptOut.Resumed }

// Apply counts e, read from the given partition (partitions number from
// 0). See the package documentation for what is counted where.
func (s *Store) Apply(partition int, e *event.Event) Outcome {
	s.epoch++
	var d Decision
	var p pending
	if !s.prepare(partition, e, &d, &p) {
		return s.count(d.outcome)
	}
	// The keys are looked up before the dedupe and attribution tables are
	// read, although a duplicate makes that work useless: every one of
	// these lookups is a cache miss, and issued together they overlap
	// (see findKeys).
	var hs [nDims]keyHash
	s.hashValues(&d.vals, &hs)
	s.findKeys(&d.vals, &hs)
	if o := s.settle(e, &d, &p, s.dedupeHash(e, p.st)); o != Applied {
		return s.count(o)
	}
	return s.count(s.applyFound(&d.vals, &hs, d.t, &d.c))
}

// Decision is what a store decided about one event before any keyspace
// counts it: whether it counts at all (not late, not from the future, not
// a duplicate: the watermark, dedupe and attribution memories decide),
// and if so what it adds to which keys. Decide makes one; ApplyDecision
// counts it in another store's keyspaces. Splitting Apply this way lets
// several stores holding different keyspaces share one dedupe and
// attribution decision, as a backtest's parallel engines do.
//
// A Decision refers to strings of its event: apply it while the event's
// memory is valid.
type Decision struct {
	outcome Outcome // Applied when the keyspaces are to count it; otherwise why not
	t       int64
	c       contrib
	vals    [nDims]string
	hs      [nDims]keyHash // hashes of vals with by's seeds, for the stores sharing them
	by      *Store         // the store that decided
}

// Outcome is the event's outcome when it does not count; Applied when it
// is to be counted (ApplyDecision then gives its outcome in a store).
func (d *Decision) Outcome() Outcome { return d.outcome }

// Decide decides e, read from partition, as Apply would, updating the
// watermark and the dedupe and attribution memories, and counts in this
// store only the events that do not count (d.Outcome() not Applied). The store's
// keyspaces are not touched: a store made for deciding has none.
func (s *Store) Decide(partition int, e *event.Event, d *Decision) {
	s.decide(partition, e, d, 0, false)
}

// decide is Decide with the dedupe hash of e (dedupeHash) given, when
// known (DecideBatch has them already).
func (s *Store) decide(partition int, e *event.Event, d *Decision, ddh uint64, known bool) {
	var p pending
	d.by = s
	if s.prepare(partition, e, d, &p) {
		if !known {
			ddh = s.dedupeHash(e, p.st)
		}
		d.outcome = s.settle(e, d, &p, ddh)
	}
	if d.outcome != Applied {
		s.count(d.outcome)
		return
	}
	d.hs = [nDims]keyHash{}
	s.hashValues(&d.vals, &d.hs)
}

// DecideBatch decides evs[i] into ds[i], in order, as Decide does. It
// first reads the dedupe table where each event's entry would be, and
// each event's recipient: every such read is a cache miss, and issued
// together, without the work of deciding between them, they overlap. The
// dedupe hashes it computes for that serve the decisions too.
func (s *Store) DecideBatch(partition int, evs []event.Event, ds []Decision) {
	var sink uint64
	hs := slices.Grow(s.batchHashes[:0], len(evs))[:len(evs)]
	for i := range evs {
		e := &evs[i]
		st := 0
		if e.Kind == event.KindStatus {
			st = statusCode(e.Status)
		}
		hs[i] = s.dedupeHash(e, st)
		if hs[i] != 0 {
			sink += s.dd.touch(hs[i])
		}
		// The recipient too (its pseudonym's length: the struct, not the
		// bytes, which a second dependent read would wait for): a
		// source's events may point to their recipients anywhere.
		if r := e.Recipient; r != nil {
			sink += uint64(len(r.Pseudonym))
		}
	}
	s.sink += uint32(sink)
	for i := range evs {
		s.decide(partition, &evs[i], &ds[i], hs[i], true)
	}
	s.batchHashes = hs
}

// dedupeHash is the dedupe entry of e, whose status code is st (0 for
// other kinds): (message id, status) for statuses, the event id
// otherwise; 0 when it has neither.
func (s *Store) dedupeHash(e *event.Event, st int) uint64 {
	switch {
	case st != 0 && e.MessageID != "":
		return entryHash(maphash.String(s.seed, e.MessageID), st)
	case e.ID != "":
		return entryHash(maphash.String(s.seed, e.ID), tagEventID)
	}
	return 0
}

// ApplyDecision counts an event decided by another store's Decide in this
// store's keyspaces and returns its outcome here; an event that does not
// count changes nothing and returns why. This store's dedupe and
// attribution memories are not used.
func (s *Store) ApplyDecision(d *Decision) Outcome {
	if d.outcome != Applied {
		return d.outcome
	}
	s.epoch++
	hs := &d.hs
	if s.decider == nil || d.by != s.decider {
		hs = &[nDims]keyHash{}
		s.hashValues(&d.vals, hs)
	}
	s.findKeys(&d.vals, hs)
	return s.count(s.applyFound(&d.vals, hs, d.t, &d.c))
}

// pending is what prepare leaves for settle: the parts of the decision
// that read or write the dedupe and attribution memories after the keys
// are looked up.
type pending struct {
	st     int                // status code, 0 for other kinds
	record bool               // a send whose attribution is recorded for its (number, user)
	pair   uint64             // the (number, user) hash, 0 when not needed
	pairAt int                // the attribution slot found for pair
	attr   *event.Attribution // the attribution of the event, or the one remembered
}

// prepare works out d (time, contribution, dimension values) and reports
// whether the event may count; when not, d.outcome says why.
func (s *Store) prepare(partition int, e *event.Event, d *Decision, p *pending) bool {
	d.t = nanos(e.EventTime)
	t := d.t
	if s.o.MaxFutureSkew > 0 && !e.ReceiveTime.IsZero() && t > nanos(e.ReceiveTime)+int64(s.o.MaxFutureSkew) {
		d.outcome = Future
		return false
	}
	wm := s.watermark(partition)
	if *wm != noTime && t < *wm-int64(s.o.AllowedLateness) {
		d.outcome = Late
		return false
	}
	*wm = max(*wm, t)

	c := &d.c
	*c = contrib{}
	st := 0
	switch e.Kind {
	case event.KindStatus:
		st = statusCode(e.Status)
		switch st {
		case stSent:
			c.add(cSent)
		case stDelivered:
			c.add(cDelivered)
		case stRead:
			c.add(cRead)
		case stFailed:
			c.add(cFailed)
			c.fail = true
			c.code, c.class = noCode, classOther
			if e.Error != nil {
				c.code, c.class = codeOf(e.Error.Code), classIndex(e.Error.Class)
			}
		case stAccepted:
			c.add(cAccepted)
		case stDeferred:
			c.add(cDeferred)
		default:
			d.outcome = Ignored
			return false
		}
		if optedOut(e) {
			c.add(cOptOut)
		}
	case event.KindInbound:
		c.add(cInbound)
		if optedOut(e) {
			c.add(cOptOut)
		}
	case event.KindUserPreference:
		if optedOut(e) {
			c.add(cOptOut)
		}
	case event.KindPhoneQuality:
		if q := e.Quality; q != nil {
			c.state(fQualityEvent, q.Event)
			c.state(fMessagingTier, q.CurrentLimit)
		}
	case event.KindTemplateStatus:
		if tp := e.Template; tp != nil {
			c.state(fTemplateStatus, tp.Event)
		}
	case event.KindTemplateQuality:
		if tp := e.Template; tp != nil {
			c.state(fTemplateQuality, tp.NewQuality)
		}
	case event.KindAccountUpdate:
		if a := e.Account; a != nil {
			c.state(fAccountEvent, a.Event)
			c.state(fAccountBanState, a.BanState)
		}
	case event.KindCapability:
		if cp := e.Capability; cp != nil {
			c.state(fMessagingTier, cp.MessagingLimit)
		}
	}
	if c.nInc == 0 && c.nStates == 0 {
		d.outcome = Ignored
		return false
	}

	// Attribution: sent (and accepted) statuses record theirs per (phone
	// number, user): the template a user got is the one last sent to
	// them, and the later statuses of a message would only read the
	// memory again (a cache miss each) to find the same. Opt-outs and
	// replies without an attribution take it from there, before their
	// dimensions are known.
	*p = pending{st: st, attr: e.Attribution, pairAt: -1}
	if r := e.Recipient; r != nil && r.Pseudonym != "" {
		p.record = (st == stSent || st == stAccepted) && p.attr != nil
		if p.record || (p.attr == nil && (e.Kind == event.KindInbound || optedOut(e))) {
			p.pair = s.pair(e.PhoneNumberID, r.Pseudonym)
		}
	}
	if p.pair != 0 && !p.record {
		p.pairAt = s.attr.find(p.pair)
		if a, ok := s.attr.getAt(p.pairAt); ok {
			p.attr = a
		}
	}

	vals := &d.vals
	*vals = [nDims]string{}
	vals[dWABA] = e.WABAID
	vals[dPhone] = e.PhoneNumberID
	vals[dChannel] = string(e.Channel)
	if attr := p.attr; attr != nil {
		vals[dTemplate], vals[dUseCase], vals[dCampaign] = attr.Template, attr.UseCase, attr.Campaign
	}
	if vals[dTemplate] == "" && e.Template != nil &&
		(e.Kind == event.KindTemplateStatus || e.Kind == event.KindTemplateQuality) {
		vals[dTemplate] = e.Template.Name
	}
	if e.Recipient != nil {
		vals[dCountry] = e.Recipient.CountryCode
	}
	d.outcome = Applied
	return true
}

// settle reads and updates the dedupe and attribution memories for a
// prepared event, whose dedupe hash is h (dedupeHash), and returns
// Duplicate, or Applied with the latency and missing-status contributions
// added to d.
func (s *Store) settle(e *event.Event, d *Decision, p *pending, h uint64) Outcome {
	// Dedupe, store-wide and before any keyspace is updated, so that an
	// event counts once everywhere. Statuses dedupe on (message id,
	// status): WhatsApp retries and the fallback channels' repeated
	// callbacks (SMS queued, sending...) share it even when their event
	// ids differ.
	t, c, st := d.t, &d.c, p.st
	at := -1
	if h != 0 {
		at = s.dd.find(h)
	}
	if p.record {
		p.pairAt = s.attr.find(p.pair)
	}
	if h != 0 {
		if _, dup := s.dd.timeAt(at); dup {
			d.outcome = Duplicate
			return Duplicate
		}
		switch st {
		case stDelivered:
			if sent, ok := s.dd.get(entryHash(h, stSent)); ok {
				c.add(cLat0 + latBin(t-sent))
			}
		case stRead:
			if _, ok := s.dd.get(entryHash(h, stDelivered)); !ok {
				c.add(cReadNoDelivered)
			}
		case stFailed:
			if _, ok := s.dd.get(entryHash(h, stSent)); !ok {
				c.add(cFailedNoSent)
			}
		}
		s.dd.put(h, t, at)
	}
	if p.record {
		s.attr.record(p.pair, p.pairAt, t, p.attr)
	}
	return Applied
}

func (s *Store) count(o Outcome) Outcome {
	s.outcomes[o]++
	return o
}

// pair hashes (phone number id, pseudonym) for the attribution memory.
// Two string hashes joined by a bijective mix: maphash.Hash would copy
// both strings into its buffer first.
func (s *Store) pair(phone, pseudonym string) uint64 {
	h := fmix(maphash.String(s.seed, phone)*0x9E3779B97F4A7C15 ^ maphash.String(s.seed2, pseudonym))
	if h == 0 {
		return 1 // 0 marks a free slot
	}
	return h
}

// hashValues hashes the values of the dimensions keyspaces use, once per
// event whatever the number of keyspaces.
func (s *Store) hashValues(vals *[nDims]string, hs *[nDims]keyHash) {
	for d := range nDims {
		if s.usedDims&(1<<d) != 0 && vals[d] != "" {
			hs[d] = keyHash{maphash.String(s.seed, vals[d]), maphash.String(s.seed2, vals[d])}
		}
	}
}

// Reserve sizes the dedupe and attribution memories, before any event, for
// about that many entries each (within their bounds, MaxDedupe and
// MaxAttribution): a caller that knows how many events are coming (a
// backtest) spares the tables their growth, each step of which places
// every entry again. It changes no decision; on a store that has entries
// already it does nothing.
func (s *Store) Reserve(dedupe, attributions int) {
	s.dd.reserve(dedupe)
	s.attr.reserve(attributions)
}

// Expire drops idle keys and the dedupe and attribution entries past their
// horizons, all measured against now (event time: the minimum watermark of
// the engine's partitions is the safe choice; wall time works when the
// stream is live). It also seals dense buckets older than now minus the
// allowed lateness into their compact form, and trims state history. It
// visits every key (about 5 ns each): call it once per evaluation, not per
// event.
func (s *Store) Expire(now time.Time) {
	s.epoch++
	n := nanos(now)
	if s.o.DedupeHorizon > 0 {
		s.dd.expire(n - int64(s.o.DedupeHorizon))
	}
	if s.o.AttributionTTL > 0 {
		s.attr.expire(n - int64(s.o.AttributionTTL))
	}
	for _, ks := range s.spaces {
		ks.expire(s, n)
	}
}

// Stats are the store's sizes and counters.
type Stats struct {
	Specs []SpecStats
	// Entries of the dedupe and attribution memories: slots in use,
	// including entries past their horizon that the next entry placed
	// there reuses (forgetting is lazy).
	DedupeEntries      int
	AttributionEntries int
	// Events by outcome, indexed by Outcome.
	Outcomes           [nOutcomes]uint64
	DedupeEvicted      uint64 // dropped by MaxDedupe before their horizon
	AttributionEvicted uint64 // dropped by MaxAttribution before their TTL
	// ApproxBytes estimates the memory held, from sizes and capacities
	// (maps estimated at their typical load; string sizes as stored).
	ApproxBytes int64
}

// TotalKeys is the number of keys over all keyspaces.
func (s Stats) TotalKeys() int {
	n := 0
	for _, sp := range s.Specs {
		n += sp.Keys
	}
	return n
}

// SpecStats are the sizes and counters of one keyspace.
type SpecStats struct {
	Keys       int
	HotBuckets int    // dense recent buckets in use
	ColdBytes  int    // bytes of sealed bucket records
	Refused    uint64 // events not counted because their new key would exceed MaxKeys
	Stale      uint64 // events not counted because older than Span behind their key's newest bucket
	Expired    uint64 // keys dropped by IdleTTL
}

// Stats returns the current sizes and counters, without visiting keys or
// entries: the engine reads it after every evaluation.
func (s *Store) Stats() Stats {
	st := Stats{
		DedupeEntries:      s.dd.used,
		AttributionEntries: s.attr.used,
		Outcomes:           s.outcomes,
		DedupeEvicted:      s.dd.evicted,
		AttributionEvicted: s.attr.evicted,
	}
	b := float64(len(s.dd.sets))*float64(unsafe.Sizeof(ddSet{})) + float64(len(s.attr.sets))*float64(unsafe.Sizeof(atSet{}))
	// Interned attributions: the struct, its strings, and a map slot.
	b += float64(len(s.attr.intern)) * (48 + 60 + 1.3*56)
	for _, ks := range s.spaces {
		ss, kb := ks.stats()
		st.Specs = append(st.Specs, ss)
		b += float64(kb)
	}
	st.ApproxBytes = int64(b)
	return st
}

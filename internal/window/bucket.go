package window

import (
	"encoding/binary"
	"math"
	"math/bits"
	"time"

	"vigia/internal/event"
)

// Counter indexes of a bucket. Attempts and Reached are not stored: they
// are Sent + FailedNoSent and Delivered + ReadNoDelivered, which keeps every
// stored counter independent (one event adds to each at most once). The
// order puts the counters most buckets use first: a sealed record's bitmap
// of non-zero counters (see encodeBody) then fits in 3 varint bytes.
const (
	cSent = iota
	cDelivered
	cRead
	cFailed
	cFailedNoSent // failed statuses whose message had no sent status seen
	cInbound
	cLat0 // first sent→delivered latency histogram bin; nLatBins follow
)

// Rarer counters, after the latency bins.
const (
	cAccepted = cLat0 + nLatBins + iota
	cDeferred
	cReadNoDelivered // read statuses whose message had no delivered status seen
	cOptOut

	nCounters
)

// latencyBounds are the upper bounds of the sent→delivered latency
// histogram bins; a last bin catches everything slower. They are fixed so
// that buckets of every key add up without rebinning, and chosen around
// WhatsApp's usual delivery times (seconds) with room for the slow tail
// that quality problems produce (minutes).
var latencyBounds = [...]time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	20 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
}

// nLatBins counts the bounded bins plus the +inf bin.
const nLatBins = len(latencyBounds) + 1

// latBin returns the histogram bin of a latency in nanoseconds: the first
// bin whose bound is at or above it.
func latBin(d int64) int {
	for i, b := range latencyBounds {
		if d <= int64(b) {
			return i
		}
	}
	return nLatBins - 1
}

// Error classes get a fixed index so that a failure entry stores a byte,
// not a string.
var classNames = [...]string{
	event.ClassThrottle, event.ClassSpam, event.ClassMarketingCap, event.ClassOptedOut,
	event.ClassUndeliverable, event.ClassWindowClosed, event.ClassAccount,
	event.ClassMaintenance, event.ClassOther,
}

const classOther = uint8(len(classNames) - 1)

func classIndex(c string) uint8 {
	for i, n := range classNames {
		if n == c {
			return uint8(i)
		}
	}
	// A class this package does not know yet still counts as a failure.
	return classOther
}

// noCode marks a failure without a numeric error code: a failed status
// with no error block, an e-mail failure (SendGrid has none, ingest writes
// 0), or a code that does not fit in 32 bits. Such failures count by class
// only.
const noCode = math.MinInt32

func codeOf(code int) int32 {
	if code == 0 || code <= math.MinInt32 || code > math.MaxInt32 {
		return noCode
	}
	return int32(code)
}

// failCount counts the failures of one (code, class) pair in a bucket.
// Class is kept beside the code because it is not a function of the code
// across channels (SendGrid failures all have code 0).
type failCount struct {
	code  int32
	class uint8
	n     uint32
}

// hotBucket is the dense, directly incremented form of a recent bucket.
// Counters are uint32: one key does not see four billion events in one
// bucket, and it halves the size of every bucket.
type hotBucket struct {
	idx   int64 // absolute bucket index: floor(event time / resolution)
	n     [nCounters]uint32
	fails []failCount // few distinct codes per bucket: a scanned slice beats a map
}

func (b *hotBucket) reset(idx int64) {
	b.idx = idx
	b.n = [nCounters]uint32{}
	b.fails = b.fails[:0] // keep the capacity: no allocation for the next bucket
}

func (b *hotBucket) addFail(code int32, class uint8, n uint32) {
	for i := range b.fails {
		if f := &b.fails[i]; f.code == code && f.class == class {
			f.n += n
			return
		}
	}
	b.fails = append(b.fails, failCount{code: code, class: class, n: n})
}

// apply adds one event's contribution.
func (b *hotBucket) apply(c *contrib) {
	for _, i := range c.inc[:c.nInc] {
		b.n[i]++
	}
	if c.fail {
		b.addFail(c.code, c.class, 1)
	}
}

// Cold (sealed) buckets are stored per key as one byte string of records in
// ascending bucket order, because a dense bucket costs 128 bytes and a key
// keeps Span/Resolution of them (75 at 1 m), while most counters of most
// buckets are zero or small. A record is:
//
//	uint16  bucket index modulo 2^16, little endian (the key's newest bucket
//	        disambiguates it, since a key keeps fewer than 2^16 buckets)
//	uvarint length of the body
//	body:   uvarint bitmap of the non-zero counters and of failures (see
//	        bitOf), then a uvarint per non-zero counter, in index order
//	        if failures: uvarint count, then per entry zigzag varint code,
//	        class byte, uvarint n
//
// A typical record takes 8 to 30 bytes instead of 128.
// Bitmap bits: counter i has bit i up to the last latency bin, then comes
// the failures bit, then the rarer counters.
const (
	failBit     = 1 << cAccepted
	rareCounter = cAccepted
)

func bitOf(i int) uint64 {
	if i >= rareCounter {
		return 1 << (i + 1)
	}
	return 1 << i
}

func counterOf(bit int) int {
	if bit > rareCounter {
		return bit - 1
	}
	return bit
}

// encodeBody appends the body of b's record to dst.
func encodeBody(dst []byte, b *hotBucket) []byte {
	var bm uint64
	for i, v := range b.n {
		if v != 0 {
			bm |= bitOf(i)
		}
	}
	if len(b.fails) > 0 {
		bm |= failBit
	}
	dst = binary.AppendUvarint(dst, bm)
	for _, v := range b.n {
		if v != 0 {
			dst = binary.AppendUvarint(dst, uint64(v))
		}
	}
	if len(b.fails) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(b.fails)))
		for _, f := range b.fails {
			dst = binary.AppendVarint(dst, int64(f.code))
			dst = append(dst, f.class)
			dst = binary.AppendUvarint(dst, uint64(f.n))
		}
	}
	return dst
}

// encodeRecord appends a whole record (header and body) for b to dst,
// using scratch to build the body.
func encodeRecord(dst, scratch []byte, b *hotBucket) ([]byte, []byte) {
	scratch = encodeBody(scratch[:0], b)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(b.idx))
	dst = binary.AppendUvarint(dst, uint64(len(scratch)))
	return append(dst, scratch...), scratch
}

// recordAt reads the record header at off: its bucket index (resolved
// against the key's newest bucket), where its body starts and where the
// next record starts.
func recordAt(cold []byte, off int, newest int64) (idx int64, body, next int) {
	stored := binary.LittleEndian.Uint16(cold[off:])
	idx = newest - int64(uint16(uint16(newest)-stored))
	n, w := binary.Uvarint(cold[off+2:])
	body = off + 2 + w
	return idx, body, body + int(n)
}

// uvarint reads one uvarint; the records are written by this package, so
// a malformed one is a bug and panics via the slice bounds.
func uvarint(p []byte, off int) (uint64, int) {
	// Fast path: most counts fit in one byte.
	if c := p[off]; c < 0x80 {
		return uint64(c), off + 1
	}
	v, w := binary.Uvarint(p[off:])
	if w <= 0 {
		panic("window: corrupt bucket record")
	}
	return v, off + w
}

// decodeBody adds the body at cold[off:] into the dense counters and the
// failure entries.
func decodeBody(cold []byte, off int, n *[nCounters]uint64, fails []failAcc) []failAcc {
	bm, off := uvarint(cold, off)
	for m := bm &^ failBit; m != 0; m &= m - 1 {
		var v uint64
		v, off = uvarint(cold, off)
		n[counterOf(bits.TrailingZeros64(m))] += v
	}
	if bm&failBit == 0 {
		return fails
	}
	cnt, off := uvarint(cold, off)
	for range cnt {
		code, w := binary.Varint(cold[off:])
		off += w
		class := cold[off]
		off++
		var v uint64
		v, off = uvarint(cold, off)
		fails = addFail(fails, int32(code), class, v)
	}
	return fails
}

// failAcc accumulates the failures of one (code, class) over buckets.
type failAcc struct {
	code  int32
	class uint8
	n     uint64
}

func addFail(fails []failAcc, code int32, class uint8, n uint64) []failAcc {
	for i := range fails {
		if f := &fails[i]; f.code == code && f.class == class {
			f.n += n
			return fails
		}
	}
	return append(fails, failAcc{code, class, n})
}

// decodeInto replaces b's counters with the record body at cold[off:], for
// the rare update of a sealed bucket.
func decodeInto(cold []byte, off int, b *hotBucket) {
	var n [nCounters]uint64
	var fb [8]failAcc
	b.fails = b.fails[:0]
	for _, f := range decodeBody(cold, off, &n, fb[:0]) {
		b.fails = append(b.fails, failCount{code: f.code, class: f.class, n: uint32(f.n)})
	}
	for i, v := range n {
		b.n[i] = uint32(v)
	}
}

// bucketPool holds the dense buckets of a keyspace in fixed chunks, so
// that growing it neither copies the buckets nor leaves the slack of a
// doubled slice; freed buckets are reused first. Buckets are numbered
// from 1 (0 means none in keyState.hot).
type bucketPool struct {
	chunks []*[poolChunk]hotBucket
	n      int32 // buckets handed out so far
	free   []int32
}

const poolChunk = 256 // 32 KiB of buckets

func (p *bucketPool) at(i int32) *hotBucket {
	i--
	return &p.chunks[i/poolChunk][i%poolChunk]
}

func (p *bucketPool) alloc() int32 {
	if n := len(p.free); n > 0 {
		i := p.free[n-1]
		p.free = p.free[:n-1]
		return i
	}
	if int(p.n) == len(p.chunks)*poolChunk {
		p.chunks = append(p.chunks, new([poolChunk]hotBucket))
	}
	p.n++
	return p.n
}

func (p *bucketPool) release(i int32) { p.free = append(p.free, i) }

func (p *bucketPool) live() int { return int(p.n) - len(p.free) }

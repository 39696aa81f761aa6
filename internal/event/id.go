package event

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// NewID hashes the natural key of an event into a stable 128-bit hex id, so
// that a duplicate, a provider's retry or a replay gets the same id. Parts
// are separated by a zero byte so that ("ab","c") and ("a","bc") differ.
func NewID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var buf [sha256.Size]byte
	return hex.EncodeToString(h.Sum(buf[:0])[:16])
}

// UnixTime reads a provider's unix timestamp: seconds, or milliseconds when
// the value is too large to be seconds. It refuses negative values and times
// past year 9999, which cannot be encoded in an event: such a timestamp is
// wrong, not far away.
func UnixTime(n int64) (time.Time, bool) {
	if n < 0 {
		return time.Time{}, false
	}
	t := time.Unix(n, 0).UTC()
	if n > 1e12 {
		t = time.UnixMilli(n).UTC()
	}
	if t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

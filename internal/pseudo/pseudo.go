// Package pseudo turns personal identifiers (phone numbers, BSUIDs, group
// ids) into keyed pseudonyms, so that the event stream and everything
// downstream can count and join per user without holding who the user is.
//
// A plain SHA-256 of an E.164 number is reversible by enumerating the number
// space; an HMAC keyed with a secret kept outside the data is not, as long as
// the key stays secret. The key is never logged.
package pseudo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"

	"vigia/internal/event"
)

// MinKeyBytes is the shortest key accepted: the HMAC's security rests on it.
const MinKeyBytes = 32

// Pseudonymizer computes pseudonyms with one secret key. It is safe for
// concurrent use.
type Pseudonymizer struct {
	pool sync.Pool // of hash.Hash, keyed; reused to avoid re-keying per call
}

// New returns a Pseudonymizer for key, which must be at least MinKeyBytes long.
func New(key []byte) (*Pseudonymizer, error) {
	if len(key) < MinKeyBytes {
		return nil, errors.New("pseudonym key too short: need at least 32 bytes")
	}
	k := append([]byte(nil), key...)
	p := &Pseudonymizer{}
	p.pool.New = func() any { return hmac.New(sha256.New, k) }
	return p, nil
}

// sum returns the first 16 bytes of HMAC(key, kind ":" id) in hex. The kind
// prefix keeps a BSUID and a phone number with the same text apart.
func (p *Pseudonymizer) sum(kind, id string) string {
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(kind))
	h.Write([]byte{':'})
	h.Write([]byte(id))
	var buf [sha256.Size]byte
	out := h.Sum(buf[:0])
	p.pool.Put(h)
	return hex.EncodeToString(out[:16])
}

// Phone pseudonymizes a phone number given as WhatsApp sends it (digits,
// possibly with a leading + or formatting characters) and keeps its country
// calling code in clear.
func (p *Pseudonymizer) Phone(number string) event.Recipient {
	digits := Digits(number)
	return event.Recipient{
		Pseudonym:   p.sum("phone", digits),
		CountryCode: CountryCode(digits),
		IDKind:      "phone",
	}
}

// BSUID pseudonymizes a business-scoped user id (for users who hide their
// number behind a username).
func (p *Pseudonymizer) BSUID(id string) event.Recipient {
	return event.Recipient{Pseudonym: p.sum("bsuid", strings.TrimSpace(id)), IDKind: "bsuid"}
}

// Group pseudonymizes a WhatsApp group id.
func (p *Pseudonymizer) Group(id string) event.Recipient {
	return event.Recipient{Pseudonym: p.sum("group", strings.TrimSpace(id)), IDKind: "group"}
}

// Email pseudonymizes an e-mail address (lower-cased first).
func (p *Pseudonymizer) Email(addr string) event.Recipient {
	return event.Recipient{Pseudonym: p.sum("email", strings.ToLower(strings.TrimSpace(addr))), IDKind: "email"}
}

// Digits keeps only the ASCII digits of s.
func Digits(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

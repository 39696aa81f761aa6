package sendgrid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of the Signed Event Webhook.
const (
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// DefaultMaxSkew is the freshness window VerifySignature applies when given
// none. SendGrid documents no window of its own; five minutes absorbs clock
// skew and queueing while keeping a captured request's replay value short.
const DefaultMaxSkew = 5 * time.Minute

// Signature errors; the HTTP layer answers all of them with 401.
var (
	ErrNoSignature  = errors.New("missing " + SignatureHeader + " or " + TimestampHeader + " header")
	ErrBadSignature = errors.New("signature does not verify under any configured key")
	// ErrStale means the signature is genuine but its timestamp is outside
	// the allowed window: a replay, or a badly wrong clock on either side.
	ErrStale = errors.New("signed timestamp outside the allowed window")
)

// ParsePublicKey reads the verification key as SendGrid's settings page shows
// it: base64 of a DER SubjectPublicKeyInfo. A PEM block is accepted too, since
// that is how the key ends up when copied through openssl. Only P-256 keys
// are accepted; SendGrid signs with nothing else.
func ParsePublicKey(b64 string) (*ecdsa.PublicKey, error) {
	s := strings.TrimSpace(b64)
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("sendgrid public key: bad pem block")
		}
		der = block.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("sendgrid public key: %w", err)
		}
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sendgrid public key: %T is not an ecdsa p-256 key", pub)
	}
	return key, nil
}

// VerifySignature checks a Signed Event Webhook request: signature is the
// base64 ASN.1 DER ECDSA signature over SHA-256(timestamp + body), timestamp
// the unix seconds header, body the exact bytes received. Several keys are
// accepted so that the webhook's key pair can be regenerated without losing
// events (SendGrid switches at once; both keys are configured meanwhile).
//
// The timestamp is inside the signed bytes, so after the signature checks
// out, a timestamp further than maxSkew (DefaultMaxSkew if not positive) from
// now is refused with ErrStale: that is what stops a captured request from
// being replayed later. The signature is checked first so that ErrStale is
// only ever said of a genuine request.
func VerifySignature(body []byte, timestamp, signature string, keys []*ecdsa.PublicKey, now time.Time, maxSkew time.Duration) error {
	timestamp, signature = strings.TrimSpace(timestamp), strings.TrimSpace(signature)
	if timestamp == "" || signature == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	digest := signedDigest(body, timestamp)
	verified := false
	for _, key := range keys {
		if key != nil && ecdsa.VerifyASN1(key, digest[:], sig) {
			verified = true
			break
		}
	}
	if !verified {
		return ErrBadSignature
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	age := now.Sub(time.Unix(ts, 0))
	if age > maxSkew || age < -maxSkew {
		return fmt.Errorf("%w: signed %s ago, window %s", ErrStale, age.Round(time.Second), maxSkew)
	}
	return nil
}

// Sign returns the signature header value SendGrid would send for body at
// timestamp under key; used by the load tool, the demo and tests.
func Sign(body []byte, timestamp string, key *ecdsa.PrivateKey) (string, error) {
	digest := signedDigest(body, timestamp)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign sendgrid payload: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

func signedDigest(body []byte, timestamp string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

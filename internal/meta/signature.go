package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader is the header Meta signs webhook bodies in.
const SignatureHeader = "X-Hub-Signature-256"

// Signature errors; the HTTP layer answers all of them with 401.
var (
	ErrNoSignature  = errors.New("missing " + SignatureHeader + " header")
	ErrBadSignature = errors.New("signature does not match any configured app secret")
)

// VerifySignature checks header ("sha256=<hex>") against HMAC-SHA256 of the
// raw body under each secret (several are accepted during a rotation). The
// comparison is constant-time; the body must be the exact bytes received.
func VerifySignature(body []byte, header string, secrets [][]byte) error {
	if header == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	var want [sha256.Size]byte
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue // an empty key would make signatures forgeable
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if hmac.Equal(got, mac.Sum(want[:0])) {
			return nil
		}
	}
	return ErrBadSignature
}

// Sign returns the header value Meta would send for body under secret; used
// by the load tool, the demo and tests.
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"hash"
	"net/url"
	"slices"
	"strings"
)

// SignatureHeader is the header Twilio signs webhook requests in.
const SignatureHeader = "X-Twilio-Signature"

// Signature errors; the HTTP layer answers all of them with 401 (Twilio does
// not retry a 4xx, so a forged request costs one round trip).
var (
	ErrNoSignature  = errors.New("missing " + SignatureHeader + " header")
	ErrBadSignature = errors.New("signature does not match any configured auth token")
)

// VerifySignature checks header against Twilio's documented scheme:
// base64(HMAC-SHA1(auth token, fullURL + key1 + value1 + key2 + value2 ...)),
// with the POST parameters sorted by key in byte order. fullURL must be the
// public URL Twilio called, query string included, exactly as configured in
// Twilio (scheme, host, port and path); behind a proxy the caller rebuilds it
// from the configured public base URL, not from the Host header.
//
// Several tokens are accepted so that an auth token can be rotated without
// dropping callbacks (Twilio signs with the primary token; during a rotation
// both the old and the new one are configured). Empty tokens are skipped: an
// HMAC under an empty key is something anyone can compute.
func VerifySignature(fullURL string, form url.Values, header string, authTokens [][]byte) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrNoSignature
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(got) != sha1.Size {
		return ErrBadSignature
	}
	var want [sha1.Size]byte
	for _, token := range authTokens {
		if len(token) == 0 {
			continue
		}
		mac := hmac.New(sha1.New, token)
		writeSigned(mac, fullURL, form)
		if hmac.Equal(got, mac.Sum(want[:0])) {
			return nil
		}
	}
	return ErrBadSignature
}

// Sign returns the X-Twilio-Signature value Twilio would send for a POST of
// form to fullURL under token; used by the load tool, the demo and tests.
func Sign(fullURL string, form url.Values, token []byte) string {
	mac := hmac.New(sha1.New, token)
	writeSigned(mac, fullURL, form)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// writeSigned feeds the signed string to h without building it in memory.
// A key that repeats contributes each of its values, in sorted order, so the
// result does not depend on how the form was parsed (status callbacks never
// repeat a key, but a forged request may, and it must not panic or match).
func writeSigned(h hash.Hash, fullURL string, form url.Values) {
	h.Write([]byte(fullURL))
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		values := form[k]
		if len(values) > 1 {
			values = slices.Clone(values)
			slices.Sort(values)
		}
		for _, v := range values {
			h.Write([]byte(k))
			h.Write([]byte(v))
		}
	}
}

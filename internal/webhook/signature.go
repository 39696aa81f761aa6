// Package webhook pushes control-API events (route changes) to the
// applications that send WhatsApp messages ("senders") as signed HTTP
// webhooks, and gives those senders the function that checks a signature.
//
// Delivery is at least once and in order per subscriber: each subscriber
// has its own bounded queue drained by one goroutine, an event is retried
// with backoff until the subscriber accepts it, refuses it for good or it
// grows too old, and the next event waits meanwhile. Receivers dedupe on
// the Vigia-Event-Id header. Every attempt is signed afresh, so a receiver
// can refuse stale timestamps (replays) without refusing our retries.
//
// The signature scheme is the one Stripe made familiar, because senders
// already have code and habits for it: HMAC-SHA256 over "<unix seconds>."
// followed by the raw body, hex encoded, one v1= per secret so that a
// secret can be rotated without a window where receivers refuse us.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
	// "<t>." + body)>", with one v1= per signing secret.
	HeaderSignature = "Vigia-Signature"
	// HeaderEventID is unique per event and the same on every retry:
	// receivers dedupe on it.
	HeaderEventID = "Vigia-Event-Id"
	// HeaderEventType is the kind of event, e.g. "route.changed".
	HeaderEventType = "Vigia-Event-Type"
)

// DefaultTolerance is the replay window Verify uses when given none.
const DefaultTolerance = 5 * time.Minute

// Limits on what Verify parses: a header is outside input, and nothing we
// sign comes near them (one v1= per secret, two during a rotation).
const (
	maxHeaderLen  = 4096
	maxSignatures = 16
)

// Errors of Verify, wrapped with detail; test them with errors.Is.
var (
	ErrNoSignature = errors.New("no " + HeaderSignature + " header")
	ErrBadHeader   = errors.New("malformed " + HeaderSignature + " header")
	ErrTooOld      = errors.New("signature timestamp too old")
	ErrSkew        = errors.New("signature timestamp in the future")
	ErrMismatch    = errors.New("signature mismatch")
)

// Sign returns the Vigia-Signature header value for body at time t, one
// v1= per non-empty secret, in the order given (the current secret first,
// then the one being retired).
func Sign(secrets []string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		if s == "" {
			continue // an empty key signs nothing anybody should trust
		}
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

// mac is HMAC-SHA256(secret, ts + "." + body).
func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a Vigia-Signature header against body with any of secrets
// (a receiver rotating its secret passes both). It refuses a timestamp
// further than tolerance from now, in the past (ErrTooOld: a replay, or a
// request that waited too long) or the future (ErrSkew: a clock is off);
// tolerance <= 0 means DefaultTolerance. Signatures are compared in
// constant time. The signature is checked before the timestamp, so
// ErrTooOld and ErrSkew mean the request was genuine but out of window.
func Verify(secrets []string, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if header == "" {
		return ErrNoSignature
	}
	ts, sigs, err := parseHeader(header)
	if err != nil {
		return err
	}
	tsText := strconv.FormatInt(ts, 10)
	keys := 0
	matched := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		keys++
		want := mac(s, tsText, body)
		for _, sig := range sigs {
			// hmac.Equal takes the same time whatever the contents.
			if hmac.Equal(want, sig) {
				matched = true
			}
		}
	}
	if keys == 0 {
		return fmt.Errorf("%w: no secret to verify with", ErrMismatch)
	}
	if !matched {
		return fmt.Errorf("%w: none of %d signatures matches any of %d secrets", ErrMismatch, len(sigs), keys)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// In whole seconds: that is the timestamp's precision, and durations
	// of attacker-chosen size would overflow.
	tol := int64(tolerance / time.Second)
	switch age := now.Unix() - ts; {
	case age > tol:
		return fmt.Errorf("%w: signed %ds ago, tolerance %s", ErrTooOld, age, tolerance)
	case -age > tol:
		return fmt.Errorf("%w: signed %ds ahead of this clock, tolerance %s", ErrSkew, -age, tolerance)
	}
	return nil
}

// parseHeader splits "t=...,v1=...,v1=..." into the timestamp and the
// decoded signatures. Unknown keys are skipped so that a later scheme (v2=)
// can be sent next to v1 without breaking receivers of this version.
func parseHeader(header string) (ts int64, sigs [][]byte, err error) {
	if len(header) > maxHeaderLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadHeader, len(header), maxHeaderLen)
	}
	seenT := false
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, nil, fmt.Errorf("%w: %q is not key=value", ErrBadHeader, part)
		}
		switch k {
		case "t":
			if seenT {
				return 0, nil, fmt.Errorf("%w: more than one t=", ErrBadHeader)
			}
			seenT = true
			if v == "" || strings.Trim(v, "0123456789") != "" {
				return 0, nil, fmt.Errorf("%w: timestamp %q is not unix seconds", ErrBadHeader, v)
			}
			if ts, err = strconv.ParseInt(v, 10, 64); err != nil {
				return 0, nil, fmt.Errorf("%w: timestamp %q: %w", ErrBadHeader, v, err)
			}
		case "v1":
			if len(sigs) == maxSignatures {
				return 0, nil, fmt.Errorf("%w: more than %d signatures", ErrBadHeader, maxSignatures)
			}
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return 0, nil, fmt.Errorf("%w: v1 %q is not %d hex digits", ErrBadHeader, v, 2*sha256.Size)
			}
			sigs = append(sigs, sig)
		}
	}
	if !seenT {
		return 0, nil, fmt.Errorf("%w: no t=", ErrBadHeader)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: no v1=", ErrBadHeader)
	}
	return ts, sigs, nil
}

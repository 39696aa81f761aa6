package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	signedAt = time.Unix(1_760_000_000, 0)
	body     = []byte(`{"type":"route.changed","use_case":"marketing"}`)
)

// TestSignedString pins the exact signed string the docs give to receivers
// in other languages: HMAC-SHA256(secret, "<t>." + body), hex.
func TestSignedString(t *testing.T) {
	h := hmac.New(sha256.New, []byte("s3cret"))
	h.Write([]byte("1760000000." + string(body)))
	want := "t=1760000000,v1=" + hex.EncodeToString(h.Sum(nil))
	if got := Sign([]string{"s3cret"}, signedAt, body); got != want {
		t.Errorf("Sign = %s\nwant   %s", got, want)
	}
}

// TestVector pins the test vector docs/webhooks.md gives receivers.
func TestVector(t *testing.T) {
	const want = "t=1760000000,v1=8d0df74a348347224686e9880f7ad2c93fc5f8a3423fdd9790f1265c1b89025d"
	if got := Sign([]string{"s3cret"}, signedAt, []byte(`{"a":1}`)); got != want {
		t.Errorf("Sign = %s\nwant   %s", got, want)
	}
}

func TestSignVerify(t *testing.T) {
	tol := 5 * time.Minute
	two := Sign([]string{"new", "old"}, signedAt, body)
	if n := strings.Count(two, "v1="); n != 2 {
		t.Fatalf("two secrets, %d signatures: %s", n, two)
	}
	if got := Sign([]string{"", "k", ""}, signedAt, body); strings.Count(got, "v1=") != 1 {
		t.Errorf("empty secrets sign: %s", got)
	}
	for _, c := range []struct {
		name    string
		secrets []string // the receiver's
		header  string
		body    []byte
		now     time.Time
		want    error // nil: accepted
	}{
		{"round trip", []string{"k"}, Sign([]string{"k"}, signedAt, body), body, signedAt, nil},
		{"empty body", []string{"k"}, Sign([]string{"k"}, signedAt, nil), nil, signedAt, nil},
		{"rotation: receiver still on the old secret", []string{"old"}, two, body, signedAt, nil},
		{"rotation: receiver already on the new one", []string{"new"}, two, body, signedAt, nil},
		{"rotation on the receiver's side", []string{"other", "old"}, Sign([]string{"old"}, signedAt, body), body, signedAt, nil},
		{"tampered body", []string{"k"}, Sign([]string{"k"}, signedAt, body), append([]byte(" "), body...), signedAt, ErrMismatch},
		{"wrong secret", []string{"x"}, two, body, signedAt, ErrMismatch},
		{"receiver has no secret", []string{""}, two, body, signedAt, ErrMismatch},
		{"timestamp edited", []string{"k"}, strings.Replace(Sign([]string{"k"}, signedAt, body), "t=1760000000", "t=1760000001", 1), body, signedAt, ErrMismatch},
		{"at the edge of the window", []string{"k"}, Sign([]string{"k"}, signedAt, body), body, signedAt.Add(tol), nil},
		{"stale", []string{"k"}, Sign([]string{"k"}, signedAt, body), body, signedAt.Add(tol + time.Second), ErrTooOld},
		{"future", []string{"k"}, Sign([]string{"k"}, signedAt, body), body, signedAt.Add(-tol - time.Second), ErrSkew},
		{"stale and forged: mismatch first", []string{"x"}, Sign([]string{"k"}, signedAt, body), body, signedAt.Add(time.Hour), ErrMismatch},
		{"spaces and unknown keys", []string{"k"}, " v0=zz , " + strings.ReplaceAll(Sign([]string{"k"}, signedAt, body), ",", " , ") + ",v2=abc", body, signedAt, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.secrets, c.header, c.body, c.now, tol)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestVerifyDefaultTolerance(t *testing.T) {
	h := Sign([]string{"k"}, signedAt, body)
	if err := Verify([]string{"k"}, h, body, signedAt.Add(DefaultTolerance), 0); err != nil {
		t.Errorf("inside the default window: %v", err)
	}
	if err := Verify([]string{"k"}, h, body, signedAt.Add(DefaultTolerance+time.Second), 0); !errors.Is(err, ErrTooOld) {
		t.Errorf("outside the default window: %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	sig := strings.TrimPrefix(Sign([]string{"k"}, signedAt, body), "t=1760000000,")
	for _, c := range []struct {
		header string
		want   error
		detail string // in the message
	}{
		{"", ErrNoSignature, ""},
		{"garbage", ErrBadHeader, "not key=value"},
		{sig, ErrBadHeader, "no t="},
		{"t=1760000000", ErrBadHeader, "no v1="},
		{"t=1760000000,v0=" + strings.TrimPrefix(sig, "v1="), ErrBadHeader, "no v1="},
		{"t=,", ErrBadHeader, "not unix seconds"},
		{"t=-5," + sig, ErrBadHeader, "not unix seconds"},
		{"t=+5," + sig, ErrBadHeader, "not unix seconds"},
		{"t=1.5," + sig, ErrBadHeader, "not unix seconds"},
		{"t=99999999999999999999," + sig, ErrBadHeader, "out of range"},
		{"t=1,t=2," + sig, ErrBadHeader, "more than one t="},
		{"t=1,v1=xyz", ErrBadHeader, "hex digits"},
		{"t=1,v1=abcd", ErrBadHeader, "hex digits"},
		{"t=1," + sig + ",", ErrBadHeader, "not key=value"},
		{"t=1" + strings.Repeat(","+sig, maxSignatures+1), ErrBadHeader, "more than 16 signatures"},
		{"t=1," + strings.Repeat("x", maxHeaderLen), ErrBadHeader, "at most"},
	} {
		err := Verify([]string{"k"}, c.header, body, signedAt, time.Minute)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("Verify(%.60q) = %v, want %v with %q", c.header, err, c.want, c.detail)
		}
	}
}

// FuzzVerify feeds Verify's parser outside input: it must not panic, and
// nothing but our own signature may pass.
func FuzzVerify(f *testing.F) {
	f.Add(Sign([]string{"k"}, signedAt, body), body)
	f.Add(Sign([]string{"a", "b"}, signedAt, nil), []byte{})
	f.Add("t=1,v1=00,v1=zz", body)
	f.Add(" t = 1 , v1=", body)
	f.Add("t=1760000000,v2=ab,,", body)
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := Verify([]string{"k"}, header, b, signedAt, time.Hour)
		if err == nil {
			ts, _, perr := parseHeader(header)
			if perr != nil {
				t.Fatalf("accepted a header that does not parse: %v", perr)
			}
			want := "v1=" + hex.EncodeToString(mac("k", strconv.FormatInt(ts, 10), b))
			if !strings.Contains(header, want) {
				t.Fatalf("accepted a header we did not sign: %q", header)
			}
		}
		if err != nil && !errors.Is(err, ErrNoSignature) && !errors.Is(err, ErrBadHeader) &&
			!errors.Is(err, ErrMismatch) && !errors.Is(err, ErrTooOld) && !errors.Is(err, ErrSkew) {
			t.Fatalf("error outside the sentinels: %v", err)
		}
	})
}

package sendgrid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The example of SendGrid's own event webhook helper tests (key shown as the
// settings page shows it), so the scheme is checked against SendGrid and not
// only against Sign.
const (
	knownKey       = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
	knownSignature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
	knownTimestamp = "1588788367"
	knownPayload   = `{"category":"example_payload","event":"test_event","message_id":"message_id"}`
)

func TestVerifyKnownAnswer(t *testing.T) {
	key, err := ParsePublicKey(knownKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1588788367+30, 0)
	if err := VerifySignature([]byte(knownPayload), knownTimestamp, knownSignature, []*ecdsa.PublicKey{key}, now, time.Minute); err != nil {
		t.Fatalf("VerifySignature(known answer) = %v", err)
	}
	if err := VerifySignature([]byte(knownPayload+"\n"), knownTimestamp, knownSignature, []*ecdsa.PublicKey{key}, now, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifySignature(known answer, extra byte) = %v, want ErrBadSignature", err)
	}
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifySignature(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	current, previous := genKey(t), genKey(t)
	now := time.Unix(1771088400, 0)
	ts := strconv.FormatInt(now.Unix()-20, 10)
	sign := func(key *ecdsa.PrivateKey, body []byte, ts string) string {
		s, err := Sign(body, ts, key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(current, body, ts)
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)/2] ^= 1
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)
	edge := strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10)

	keys := []*ecdsa.PublicKey{&current.PublicKey}
	tests := []struct {
		name    string
		body    []byte
		ts, sig string
		keys    []*ecdsa.PublicKey
		skew    time.Duration
		want    error
	}{
		{"good", body, ts, good, keys, 5 * time.Minute, nil},
		{"rotated: old key still configured", body, ts, sign(previous, body, ts), []*ecdsa.PublicKey{&current.PublicKey, &previous.PublicKey}, 5 * time.Minute, nil},
		{"nil key skipped", body, ts, good, []*ecdsa.PublicKey{nil, &current.PublicKey}, 5 * time.Minute, nil},
		{"at the edge of the window", body, edge, sign(current, body, edge), keys, 5 * time.Minute, nil},
		{"default window when none given", body, ts, good, keys, 0, nil},
		{"missing signature", body, ts, "", keys, 5 * time.Minute, ErrNoSignature},
		{"missing timestamp", body, "", good, keys, 5 * time.Minute, ErrNoSignature},
		{"wrong key", body, ts, good, []*ecdsa.PublicKey{&previous.PublicKey}, 5 * time.Minute, ErrBadSignature},
		{"no key configured", body, ts, good, nil, 5 * time.Minute, ErrBadSignature},
		{"tampered body", tampered, ts, good, keys, 5 * time.Minute, ErrBadSignature},
		{"tampered timestamp", body, strconv.FormatInt(now.Unix()-19, 10), good, keys, 5 * time.Minute, ErrBadSignature},
		{"timestamp not a number", body, "yesterday", sign(current, body, "yesterday"), keys, 5 * time.Minute, ErrBadSignature},
		{"signature not base64", body, ts, "%%%", keys, 5 * time.Minute, ErrBadSignature},
		{"signature not der", body, ts, base64.StdEncoding.EncodeToString([]byte("garbage")), keys, 5 * time.Minute, ErrBadSignature},
		{"stale", body, old, sign(current, body, old), keys, 5 * time.Minute, ErrStale},
		{"from the future", body, future, sign(current, body, future), keys, 5 * time.Minute, ErrStale},
		{"stale under the default window", body, old, sign(current, body, old), keys, 0, ErrStale},
		// A forged request is a bad signature even when also stale.
		{"stale and forged", body, old, sign(previous, body, old), keys, 5 * time.Minute, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.body, tc.ts, tc.sig, tc.keys, now, tc.skew)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	k := genKey(t)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	derRSA, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)

	tests := []struct {
		name, in string
		ok       bool
	}{
		{"sendgrid's example", knownKey, true},
		{"base64 der", base64.StdEncoding.EncodeToString(der), true},
		{"with whitespace", "  " + base64.StdEncoding.EncodeToString(der) + "\n", true},
		{"pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true},
		{"empty", "", false},
		{"not base64", "not a key!", false},
		{"not der", base64.StdEncoding.EncodeToString([]byte("garbage")), false},
		{"broken pem", "-----BEGIN PUBLIC KEY-----\nxx", false},
		{"p-384", base64.StdEncoding.EncodeToString(der384), false},
		{"rsa", base64.StdEncoding.EncodeToString(derRSA), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ParsePublicKey(tc.in)
			if (err == nil) != tc.ok || (tc.ok && key == nil) {
				t.Fatalf("ParsePublicKey = %v, %v; want ok=%v", key, err, tc.ok)
			}
		})
	}
	// The parsed key verifies what the private key signs.
	key, _ := ParsePublicKey(base64.StdEncoding.EncodeToString(der))
	sig, _ := Sign([]byte("[]"), "1771088400", k)
	if err := VerifySignature([]byte("[]"), "1771088400", sig, []*ecdsa.PublicKey{key}, time.Unix(1771088400, 0), time.Minute); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

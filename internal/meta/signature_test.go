package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	sigSecret    = []byte("app-secret-current")
	sigOldSecret = []byte("app-secret-previous")
	sigOther     = []byte("app-secret-of-someone-else")
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignFormat(t *testing.T) {
	h := Sign([]byte("{}"), sigSecret)
	if !regexp.MustCompile(`^sha256=[0-9a-f]{64}$`).MatchString(h) {
		t.Errorf("Sign = %q, want sha256=<64 lower-case hex>", h)
	}
	if Sign([]byte("{}"), sigSecret) != h {
		t.Error("Sign is not deterministic")
	}
	if Sign([]byte("{}"), sigOther) == h || Sign([]byte("{ }"), sigSecret) == h {
		t.Error("Sign ignores its secret or its body")
	}
	// Known answer: HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog").
	const want = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got := Sign([]byte("The quick brown fox jumps over the lazy dog"), []byte("key")); got != want {
		t.Errorf("Sign known answer = %s, want %s", got, want)
	}
}

func TestVerifySignature(t *testing.T) {
	body := readFixture(t, "statuses.json")
	good := Sign(body, sigSecret)
	hexPart := strings.TrimPrefix(good, "sha256=")
	cases := []struct {
		name    string
		body    []byte
		header  string
		secrets [][]byte
		want    error
	}{
		{"good", body, good, [][]byte{sigSecret}, nil},
		{"good upper-case hex", body, "sha256=" + strings.ToUpper(hexPart), [][]byte{sigSecret}, nil},
		{"bad: other secret", body, Sign(body, sigOther), [][]byte{sigSecret}, ErrBadSignature},
		{"bad: flipped hex digit", body, "sha256=" + flipHex(hexPart, 10), [][]byte{sigSecret}, ErrBadSignature},
		{"rotated: second secret matches", body, good, [][]byte{sigOldSecret, sigSecret}, nil},
		{"rotated: first secret matches", body, Sign(body, sigOldSecret), [][]byte{sigOldSecret, sigSecret}, nil},
		{"rotated: neither matches", body, Sign(body, sigOther), [][]byte{sigOldSecret, sigSecret}, ErrBadSignature},
		{"no secrets configured", body, good, nil, ErrBadSignature},
		{"empty secret does not match everything", body, good, [][]byte{{}}, ErrBadSignature},
		{"missing header", body, "", [][]byte{sigSecret}, ErrNoSignature},
		{"missing header, no secrets", body, "", nil, ErrNoSignature},
		{"malformed: no prefix", body, hexPart, [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: sha1 prefix", body, "sha1=" + hexPart, [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: upper-case prefix", body, "SHA256=" + hexPart, [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: space after prefix", body, "sha256= " + hexPart, [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: trailing space", body, good + " ", [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: prefix only", body, "sha256=", [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: bad hex", body, "sha256=" + strings.Repeat("zz", 32), [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: odd hex length", body, good[:len(good)-1], [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: too short", body, good[:len(good)-2], [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: too long", body, good + "00", [][]byte{sigSecret}, ErrBadSignature},
		{"malformed: twice as long", body, good + hexPart, [][]byte{sigSecret}, ErrBadSignature},
		{"empty body, signed", []byte{}, Sign(nil, sigSecret), [][]byte{sigSecret}, nil},
		{"body with trailing newline", append(append([]byte{}, body...), '\n'), good, [][]byte{sigSecret}, ErrBadSignature},
		{"truncated body", body[:len(body)-1], good, [][]byte{sigSecret}, ErrBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature(c.body, c.header, c.secrets)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("VerifySignature = %v, want %v", err, c.want)
			}
		})
	}
}

func flipHex(h string, i int) string {
	b := []byte(h)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// A proxy or framework that decodes and re-encodes the JSON changes the bytes
// (key order, spacing, number format, escaping), so the signature made over
// what Meta sent must no longer verify. Every fixture is checked.
func TestVerifySignatureReserializedBody(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body := readFixture(t, filepath.Base(f))
			header := Sign(body, sigSecret)
			if err := VerifySignature(body, header, [][]byte{sigSecret}); err != nil {
				t.Fatalf("original body: %v", err)
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			reser, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(reser, body) {
				t.Fatal("re-serialization did not change the bytes; the test proves nothing")
			}
			if err := VerifySignature(reser, header, [][]byte{sigSecret}); !errors.Is(err, ErrBadSignature) {
				t.Errorf("re-serialized body: %v, want ErrBadSignature", err)
			}
		})
	}
}

// Changing any single byte of the body (one bit of it) breaks the signature.
func TestVerifySignatureOneByteChange(t *testing.T) {
	body := readFixture(t, "statuses.json")
	header := Sign(body, sigSecret)
	secrets := [][]byte{sigOldSecret, sigSecret}
	mut := make([]byte, len(body))
	for i := range body {
		copy(mut, body)
		mut[i] ^= 0x01
		if err := VerifySignature(mut, header, secrets); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("byte %d changed (%q -> %q): %v, want ErrBadSignature", i, body[i], mut[i], err)
		}
	}
	// A semantically meaningful one-byte edit: "delivered" -> "delivereD".
	i := bytes.Index(body, []byte(`"delivered"`))
	if i < 0 {
		t.Fatal("fixture has no delivered status")
	}
	copy(mut, body)
	mut[i+9] = 'D'
	if err := VerifySignature(mut, header, secrets); !errors.Is(err, ErrBadSignature) {
		t.Errorf("edited status: %v, want ErrBadSignature", err)
	}
	// The caller's body must not have been modified by VerifySignature.
	if err := VerifySignature(body, header, secrets); err != nil {
		t.Errorf("original body after the loop: %v", err)
	}
}

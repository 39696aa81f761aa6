package twilio

import (
	"encoding/base64"
	"errors"
	"net/url"
	"testing"
)

// TestSignKnownAnswer pins Sign to the example of Twilio's webhook security
// documentation, so the scheme is checked against Twilio and not only
// against itself.
func TestSignKnownAnswer(t *testing.T) {
	form := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	const fullURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	const want = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	if got := Sign(fullURL, form, []byte("12345")); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if err := VerifySignature(fullURL, form, want, [][]byte{[]byte("12345")}); err != nil {
		t.Fatalf("VerifySignature(known answer) = %v", err)
	}
}

func TestVerifySignature(t *testing.T) {
	const fullURL = "https://vigia.example.com/ingest/twilio/status?t=order_update&waba_id=102290129340398"
	form := readForm(t, "undelivered_30003.form")
	current, previous := []byte("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"), []byte("f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5")
	good := Sign(fullURL, form, current)

	tampered := url.Values{}
	for k, v := range form {
		tampered[k] = append([]string(nil), v...)
	}
	tampered.Set("MessageStatus", "delivered")

	added := url.Values{}
	for k, v := range form {
		added[k] = v
	}
	added.Set("ErrorCode", "0")

	repeated := url.Values{"B": {"2", "1"}, "A": {"x"}}
	repeatedSig := Sign(fullURL, url.Values{"A": {"x"}, "B": {"1", "2"}}, current)

	tests := []struct {
		name   string
		url    string
		form   url.Values
		header string
		tokens [][]byte
		want   error
	}{
		{"good", fullURL, form, good, [][]byte{current}, nil},
		{"rotated: old token still configured", fullURL, form, Sign(fullURL, form, previous), [][]byte{current, previous}, nil},
		{"rotated: new token first", fullURL, form, good, [][]byte{previous, current}, nil},
		{"header with surrounding space", fullURL, form, " " + good + " ", [][]byte{current}, nil},
		{"repeated key, values in any order", fullURL, repeated, repeatedSig, [][]byte{current}, nil},
		{"missing header", fullURL, form, "", [][]byte{current}, ErrNoSignature},
		{"wrong token", fullURL, form, good, [][]byte{previous}, ErrBadSignature},
		{"no token configured", fullURL, form, good, nil, ErrBadSignature},
		{"tampered param", fullURL, tampered, good, [][]byte{current}, ErrBadSignature},
		{"added param", fullURL, added, good, [][]byte{current}, ErrBadSignature},
		{"tampered query string", fullURL + "&c=other", form, good, [][]byte{current}, ErrBadSignature},
		{"other host", "https://evil.example.com/ingest/twilio/status?t=order_update&waba_id=102290129340398", form, good, [][]byte{current}, ErrBadSignature},
		{"not base64", fullURL, form, "not base64!", [][]byte{current}, ErrBadSignature},
		{"wrong length", fullURL, form, base64.StdEncoding.EncodeToString([]byte("short")), [][]byte{current}, ErrBadSignature},
		// An empty key is a configuration slip; HMAC under it is public.
		{"empty token is never accepted", fullURL, form, Sign(fullURL, form, nil), [][]byte{nil, {}}, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.url, tc.form, tc.header, tc.tokens)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
}

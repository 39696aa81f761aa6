package twilio

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/pseudo"
)

const (
	testSID   = "SM1f0e8a3c5b7d9f2e4a6c8b0d1e3f5a7c"
	testMG    = "MG9c2b4d6f8a0e1c3b5d7f9a2c4e6b8d0f"
	testTo    = "+5511987654321"
	testWABA  = "102290129340398"
	otherWABA = "100000000000001"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func testPseudo(t testing.TB) *pseudo.Pseudonymizer {
	t.Helper()
	p, err := pseudo.New(bytes.Repeat([]byte("k"), pseudo.MinKeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readForm(t testing.TB, name string) url.Values {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return form
}

func TestNormalizeFixtures(t *testing.T) {
	p := testPseudo(t)
	n := &Normalizer{Pseudo: p, WABAID: otherWABA}
	received := time.Date(2026, 2, 14, 16, 53, 7, 0, time.FixedZone("BRT", -3*3600))
	query := url.Values{"t": {"order_update"}, "u": {"billing"}, "c": {"bf2026"}, "waba_id": {testWABA}}
	wantRecipient := p.Phone(testTo)
	wantRecipient.Type = "individual"

	tests := []struct {
		file      string
		status    string
		errCode   int
		errClass  string
		errTitle  string
		optOut    bool
		phoneID   string
		display   string
		recipient string // pseudonymized number; "" means wantRecipient
	}{
		{file: "queued.form", status: event.StatusAccepted},
		{file: "sent.form", status: event.StatusSent},
		{file: "delivered.form", status: event.StatusDelivered},
		{file: "read.form", status: event.StatusRead},
		{file: "canceled.form", status: event.StatusFailed},
		{file: "undelivered_30003.form", status: event.StatusFailed, errCode: 30003, errClass: event.ClassUndeliverable, errTitle: "Unreachable destination handset"},
		{file: "undelivered_30004.form", status: event.StatusFailed, errCode: 30004, errClass: event.ClassUndeliverable, errTitle: "Message blocked"},
		{file: "undelivered_30007.form", status: event.StatusFailed, errCode: 30007, errClass: event.ClassSpam, errTitle: "Message filtered"},
		{file: "failed_21610.form", status: event.StatusFailed, errCode: 21610, errClass: event.ClassOptedOut, errTitle: "Attempt to send to unsubscribed recipient", optOut: true},
		{file: "failed_30001.form", status: event.StatusFailed, errCode: 30001, errClass: event.ClassThrottle, errTitle: "Queue overflow"},
		{file: "failed_unknown_code.form", status: event.StatusFailed, errCode: 30008, errClass: event.ClassOther},
		{file: "legacy_sms_keys.form", status: event.StatusSent, phoneID: "sms:15557770002", display: "+15557770002", recipient: "+447700900123"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			ev, err := n.Normalize(readForm(t, tc.file), query, received)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if tc.phoneID == "" {
				tc.phoneID = testMG
			}
			if tc.display == "" {
				tc.display = "+15557770001"
			}
			rcpt := wantRecipient
			if tc.recipient != "" {
				rcpt = p.Phone(tc.recipient)
				rcpt.Type = "individual"
			}
			want := event.Event{
				SchemaVersion:      event.SchemaVersion,
				ID:                 event.NewID("sms", "status", testSID, tc.status),
				Kind:               event.KindStatus,
				Channel:            event.ChannelSMS,
				Source:             Source,
				EventTime:          received.UTC(),
				ReceiveTime:        received.UTC(),
				WABAID:             testWABA,
				PhoneNumberID:      tc.phoneID,
				DisplayPhoneNumber: tc.display,
				MessageID:          testSID,
				Status:             tc.status,
				Recipient:          &rcpt,
				Attribution:        &event.Attribution{Template: "order_update", UseCase: "billing", Campaign: "bf2026"},
			}
			if tc.errCode != 0 {
				want.Error = &event.Error{Code: tc.errCode, Class: tc.errClass, Title: tc.errTitle}
			}
			if tc.optOut {
				want.OptOut = &event.OptOut{Source: OptOutSource}
			}
			assertEvent(t, ev, want)
			if !hexID.MatchString(ev.ID) {
				t.Errorf("ID %q is not 32 hex digits", ev.ID)
			}
		})
	}
}

func assertEvent(t *testing.T, got, want event.Event) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	if !bytes.Equal(g, w) {
		t.Errorf("event mismatch\ngot:  %s\nwant: %s", g, w)
	}
}

// TestStatusMapping covers every Twilio status, including the ones no
// fixture carries, and the case-insensitivity of the status value.
func TestStatusMapping(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	tests := map[string]string{
		"queued": event.StatusAccepted, "accepted": event.StatusAccepted, "scheduled": event.StatusAccepted,
		"sending": event.StatusAccepted, "sent": event.StatusSent, "delivered": event.StatusDelivered,
		"read": event.StatusRead, "undelivered": event.StatusFailed, "failed": event.StatusFailed,
		"canceled": event.StatusFailed, "Delivered": event.StatusDelivered, " SENT ": event.StatusSent,
	}
	for raw, want := range tests {
		form := url.Values{"MessageSid": {testSID}, "MessageStatus": {raw}, "To": {testTo}}
		ev, err := n.Normalize(form, nil, time.Now())
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if ev.Status != want {
			t.Errorf("%q -> %q, want %q", raw, ev.Status, want)
		}
	}
	// The three pre-send statuses of one message share one id.
	ids := map[string]bool{}
	for _, raw := range []string{"queued", "sending", "accepted"} {
		ev, _ := n.Normalize(url.Values{"MessageSid": {testSID}, "MessageStatus": {raw}}, nil, time.Now())
		ids[ev.ID] = true
	}
	if len(ids) != 1 {
		t.Errorf("queued/sending/accepted got %d ids, want 1", len(ids))
	}
}

func TestErrorClasses(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	tests := map[string]string{
		"30001": event.ClassThrottle, "30022": event.ClassThrottle, "14107": event.ClassThrottle,
		"21611": event.ClassThrottle, "63017": event.ClassThrottle, "30002": event.ClassAccount,
		"30003": event.ClassUndeliverable, "30004": event.ClassUndeliverable, "30005": event.ClassUndeliverable,
		"30006": event.ClassUndeliverable, "30007": event.ClassSpam, "21610": event.ClassOptedOut,
		"30008": event.ClassOther, "12345": event.ClassOther,
	}
	for code, want := range tests {
		form := url.Values{"MessageSid": {testSID}, "MessageStatus": {"undelivered"}, "ErrorCode": {code}}
		ev, err := n.Normalize(form, nil, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		if ev.Error == nil || ev.Error.Class != want {
			t.Errorf("ErrorCode %s: error %+v, want class %s", code, ev.Error, want)
		}
		if (ev.OptOut != nil) != (code == "21610") {
			t.Errorf("ErrorCode %s: OptOut %+v", code, ev.OptOut)
		}
	}
	// ErrorCode 0 (or absent) is no error.
	ev, err := n.Normalize(url.Values{"MessageSid": {testSID}, "MessageStatus": {"delivered"}, "ErrorCode": {"0"}}, nil, time.Now())
	if err != nil || ev.Error != nil {
		t.Errorf("ErrorCode 0: error %+v, err %v", ev.Error, err)
	}
}

func TestNormalizeErrors(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	tests := []struct {
		file    string
		unknown bool
	}{
		{"no_sid.form", false},
		{"no_status.form", false},
		{"bad_error_code.form", false},
		{"inbound_status.form", true},
	}
	for _, tc := range tests {
		_, err := n.Normalize(readForm(t, tc.file), nil, time.Now())
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.file, err)
		}
		if errors.Is(err, ErrUnknownStatus) != tc.unknown {
			t.Errorf("%s: err = %v, ErrUnknownStatus want %v", tc.file, err, tc.unknown)
		}
	}
}

func TestAttributionAndWABA(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t), WABAID: otherWABA}
	form := readForm(t, "delivered.form")
	tests := []struct {
		name  string
		query url.Values
		attr  *event.Attribution
		waba  string
	}{
		{"none", nil, nil, otherWABA},
		{"long keys", url.Values{"template": {"order_update"}, "use_case": {"billing"}, "campaign": {"bf2026"}},
			&event.Attribution{Template: "order_update", UseCase: "billing", Campaign: "bf2026"}, otherWABA},
		{"short keys", url.Values{"t": {"order_update"}, "c": {"bf2026"}},
			&event.Attribution{Template: "order_update", Campaign: "bf2026"}, otherWABA},
		{"long key wins", url.Values{"template": {"long"}, "t": {"short"}}, &event.Attribution{Template: "long"}, otherWABA},
		{"sanitized", url.Values{"t": {"order update<script>"}}, &event.Attribution{Template: "orderupdatescript"}, otherWABA},
		{"waba from query", url.Values{"waba_id": {testWABA}}, nil, testWABA},
		{"non-numeric waba ignored", url.Values{"waba_id": {"../../x"}}, nil, otherWABA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := n.Normalize(form, tc.query, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(ev.Attribution)
			w, _ := json.Marshal(tc.attr)
			if !bytes.Equal(g, w) {
				t.Errorf("attribution %s, want %s", g, w)
			}
			if ev.WABAID != tc.waba {
				t.Errorf("WABAID %q, want %q", ev.WABAID, tc.waba)
			}
		})
	}
}

// TestPrivacy asserts that no form of the recipient's number reaches the
// marshalled event, whatever the callback carries.
func TestPrivacy(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	entries, err := filepath.Glob(filepath.Join("testdata", "*.form"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range entries {
		form := readForm(t, filepath.Base(path))
		form.Set("Body", "Seu codigo e 123456") // in case Twilio sends the body
		ev, err := n.Normalize(form, nil, time.Now())
		if err != nil {
			continue
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		to := form.Get("To")
		for _, leak := range []string{to, pseudo.Digits(to), "123456"} {
			if bytes.Contains(b, []byte(leak)) {
				t.Errorf("%s: event contains %q: %s", path, leak, b)
			}
		}
		if ev.Recipient == nil || ev.Recipient.Pseudonym == "" || ev.Recipient.IDKind != "phone" {
			t.Errorf("%s: recipient %+v", path, ev.Recipient)
		}
	}
	if len(entries) == 0 {
		t.Fatal("no fixtures")
	}
}

func FuzzNormalize(f *testing.F) {
	entries, _ := filepath.Glob(filepath.Join("testdata", "*.form"))
	for _, path := range entries {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "t=order_update&u=billing&c=bf2026&waba_id=102290129340398")
	}
	n := &Normalizer{Pseudo: testPseudo(f), WABAID: testWABA}
	f.Fuzz(func(t *testing.T, body, rawQuery string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		query, _ := url.ParseQuery(rawQuery)
		ev, err := n.Normalize(form, query, time.Unix(1771087987, 0))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !hexID.MatchString(ev.ID) || ev.MessageID == "" || ev.Status == "" || ev.Kind != event.KindStatus {
			t.Fatalf("bad event %+v", ev)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("marshal: %v", err)
		}
		// Privacy, differentially: another number may change the recipient's
		// pseudonym and nothing else, so no part of To reaches other fields.
		alt := url.Values{}
		for k, v := range form {
			alt[k] = v
		}
		alt.Set("To", "+99900000001")
		ev2, err := n.Normalize(alt, query, time.Unix(1771087987, 0))
		if err != nil {
			t.Fatalf("normalize with another To: %v", err)
		}
		ev.Recipient, ev2.Recipient = nil, nil
		a, _ := json.Marshal(ev)
		b, _ := json.Marshal(ev2)
		if !bytes.Equal(a, b) {
			t.Fatalf("To influences more than the recipient:\n%s\n%s", a, b)
		}
	})
}

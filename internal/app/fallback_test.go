package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"vigia/internal/config"
	"vigia/internal/event"
	"vigia/internal/fallback/sendgrid"
	"vigia/internal/fallback/twilio"
)

// End-to-end tests of the SMS (Twilio) and e-mail (SendGrid) status callback
// endpoints through the whole in-process service on the embedded broker.

const (
	testTwilioToken        = "twilio-auth-token-primary"
	testTwilioRotatedToken = "twilio-auth-token-secondary"
	testTwilioPublicBase   = "https://hooks.example.com"
	testFallbackWABA       = "104996623456789"
	testSendGridMaxSkew    = 5 * time.Minute

	twilioPath   = "/webhooks/twilio?template=otp&use_case=billing"
	sendgridPath = "/webhooks/sendgrid"

	testRecipientPhone = "+5511987654321"
	testSenderPhone    = "+15550001111"
)

// fallbackConfig is testConfig with both fallback endpoints enabled: two
// Twilio auth tokens (a rotation in progress) and a SendGrid verification
// key generated here, whose private half the test signs with.
func fallbackConfig(t *testing.T) (config.Config, *ecdsa.PrivateKey) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Twilio.AuthTokens = []string{testTwilioToken, testTwilioRotatedToken}
	cfg.Twilio.PublicBaseURL = testTwilioPublicBase
	cfg.Twilio.WABAID = testFallbackWABA

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SendGrid.PublicKeys = []string{base64.StdEncoding.EncodeToString(der)}
	cfg.SendGrid.MaxSkew = testSendGridMaxSkew
	cfg.SendGrid.WABAID = testFallbackWABA
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, key
}

// answer is one HTTP answer, read and closed.
type answer struct {
	code  int
	ctype string
	body  []byte
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}
}

// ack decodes a 200 answer's body.
func (a answer) ack(t *testing.T) (events, deadLetters int) {
	t.Helper()
	var v struct {
		Events      *int `json:"events"`
		DeadLetters *int `json:"dead_letters"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || v.Events == nil || v.DeadLetters == nil {
		t.Fatalf("answer body %q is not an acknowledgement: %v", a.body, err)
	}
	return *v.Events, *v.DeadLetters
}

// isProblem reports whether a is an RFC 9457 problem with status code.
func (a answer) isProblem(code int) bool {
	var p struct{ Status int }
	return a.code == code && a.ctype == "application/problem+json" &&
		json.Unmarshal(a.body, &p) == nil && p.Status == code
}

// twilioForm is a status callback as Twilio sends it.
func twilioForm(sid, status, errorCode string) url.Values {
	return url.Values{
		"AccountSid":    {"AC5ef872f6da5a21de157d80997a64bd33"},
		"ApiVersion":    {"2010-04-01"},
		"MessageSid":    {sid},
		"SmsSid":        {sid},
		"MessageStatus": {status},
		"SmsStatus":     {status},
		"To":            {testRecipientPhone},
		"From":          {testSenderPhone},
		"ErrorCode":     {errorCode},
	}
}

// postTwilioRaw posts body to base+path with signature as the
// X-Twilio-Signature header (none when empty).
func postTwilioRaw(t *testing.T, base, path, body, signature string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signature != "" {
		req.Header.Set(twilio.SignatureHeader, signature)
	}
	return do(t, req)
}

// postTwilio posts form to base+path, signed as Twilio would sign a call of
// the public URL testTwilioPublicBase+path under token.
func postTwilio(t *testing.T, base, path string, form url.Values, token string) answer {
	t.Helper()
	return postTwilioRaw(t, base, path, form.Encode(), twilio.Sign(testTwilioPublicBase+path, form, []byte(token)))
}

// postSendGrid posts body with the given signature and timestamp headers
// (each left out when empty).
func postSendGrid(t *testing.T, base string, body []byte, timestamp, signature string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", base+sendgridPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if timestamp != "" {
		req.Header.Set(sendgrid.TimestampHeader, timestamp)
	}
	if signature != "" {
		req.Header.Set(sendgrid.SignatureHeader, signature)
	}
	return do(t, req)
}

// signSendGrid signs body at time at under key and returns the headers.
func signSendGrid(t *testing.T, body []byte, at time.Time, key *ecdsa.PrivateKey) (timestamp, signature string) {
	t.Helper()
	timestamp = strconv.FormatInt(at.Unix(), 10)
	signature, err := sendgrid.Sign(body, timestamp, key)
	if err != nil {
		t.Fatal(err)
	}
	return timestamp, signature
}

func decodeEvents(t *testing.T, msgs []kafka.Message) []event.Event {
	t.Helper()
	out := make([]event.Event, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatalf("record %d of the events topic: %v", i, err)
		}
	}
	return out
}

// assertTopicsEmpty fails when any of Vigia's topics holds a record.
func assertTopicsEmpty(t *testing.T, svc *Ingest) {
	t.Helper()
	for _, topic := range []string{"vigia.events", "vigia.dlq", "vigia.raw"} {
		if msgs := readTopic(t, svc.Brokers(), topic); len(msgs) != 0 {
			t.Errorf("%s holds %d records after refused requests", topic, len(msgs))
		}
	}
}

func TestTwilioSignedCallbacksBecomeEvents(t *testing.T) {
	cfg, _ := fallbackConfig(t)
	svc, base := startIngest(t, cfg)

	const (
		sidDelivered   = "SM00000000000000000000000000000001"
		sidRotated     = "SM00000000000000000000000000000002"
		sidUndelivered = "SM00000000000000000000000000000003"
	)
	for _, c := range []struct {
		name, sid, status, code, token string
	}{
		{"delivered", sidDelivered, "delivered", "", testTwilioToken},
		// Twilio signs with the new primary token while the old one is
		// still configured: either must verify.
		{"rotated token", sidRotated, "delivered", "", testTwilioRotatedToken},
		{"undelivered 30007", sidUndelivered, "undelivered", "30007", testTwilioToken},
	} {
		a := postTwilio(t, base, twilioPath, twilioForm(c.sid, c.status, c.code), c.token)
		if a.code != 200 {
			t.Fatalf("%s: %d %s, want 200", c.name, a.code, a.body)
		}
		if ev, dl := a.ack(t); ev != 1 || dl != 0 {
			t.Errorf("%s: answer says %d events, %d dead letters; want 1, 0", c.name, ev, dl)
		}
	}

	msgs := readTopic(t, svc.Brokers(), "vigia.events")
	if len(msgs) != 3 {
		t.Fatalf("%d records in the events topic, want 3", len(msgs))
	}
	bySid := map[string]event.Event{}
	for i, e := range decodeEvents(t, msgs) {
		m := msgs[i]
		if string(m.Key) != testFallbackWABA || e.WABAID != testFallbackWABA {
			t.Errorf("event %s keyed %q with waba_id %q, want the configured WABA id %s", e.MessageID, m.Key, e.WABAID, testFallbackWABA)
		}
		if e.Channel != event.ChannelSMS || e.Kind != event.KindStatus || e.Source != "twilio" {
			t.Errorf("event %s: channel %q kind %q source %q, want sms status twilio", e.MessageID, e.Channel, e.Kind, e.Source)
		}
		if e.Attribution == nil || e.Attribution.Template != "otp" || e.Attribution.UseCase != "billing" {
			t.Errorf("event %s: attribution %+v, want template otp, use case billing from the query", e.MessageID, e.Attribution)
		}
		if e.Recipient == nil || e.Recipient.Pseudonym == "" || e.Recipient.IDKind != "phone" {
			t.Errorf("event %s: recipient %+v, want a pseudonymized phone", e.MessageID, e.Recipient)
		}
		for _, leak := range []string{"5511987654321", "11987654321", "987654321"} {
			if bytes.Contains(m.Value, []byte(leak)) {
				t.Errorf("event %s: the recipient's number (%s) is in the events topic: %s", e.MessageID, leak, m.Value)
			}
		}
		bySid[e.MessageID] = e
	}
	for _, sid := range []string{sidDelivered, sidRotated} {
		if e, ok := bySid[sid]; !ok || e.Status != event.StatusDelivered || e.Error != nil {
			t.Errorf("message %s: %+v, want delivered without an error", sid, e)
		}
	}
	if e, ok := bySid[sidUndelivered]; !ok || e.Status != event.StatusFailed || e.Error == nil ||
		e.Error.Code != 30007 || e.Error.Class != event.ClassSpam {
		t.Errorf("undelivered 30007: %+v (error %+v), want failed with class spam", e, e.Error)
	}
	if bySid[sidDelivered].ID == bySid[sidRotated].ID {
		t.Error("two messages got the same event id")
	}

	if dl := readTopic(t, svc.Brokers(), "vigia.dlq"); len(dl) != 0 {
		t.Errorf("%d dead letters for good callbacks", len(dl))
	}
	if raw := readTopic(t, svc.Brokers(), "vigia.raw"); len(raw) != 0 {
		t.Errorf("%d raw records with the raw topic off", len(raw))
	}
	if n := testutil.ToFloat64(svc.handler.Metrics().Events.WithLabelValues("twilio", "status")); n != 3 {
		t.Errorf("events metric %v, want 3", n)
	}

	// the endpoint takes POST only
	req, _ := http.NewRequest("GET", base+twilioPath, nil)
	if a := do(t, req); a.code != http.StatusMethodNotAllowed {
		t.Errorf("GET on the Twilio endpoint: %d, want 405", a.code)
	}
}

func TestTwilioBadSignaturesAreRefusedAndNothingKept(t *testing.T) {
	cfg, _ := fallbackConfig(t)
	// a YAML list can carry an empty entry (auth_tokens: [a, b, ""]); an
	// HMAC under an empty key is one anyone can compute, so it must not count
	cfg.Twilio.AuthTokens = append(cfg.Twilio.AuthTokens, "")
	svc, base := startIngest(t, cfg)
	form := twilioForm("SM00000000000000000000000000000009", "delivered", "")
	body := form.Encode()
	public := testTwilioPublicBase + twilioPath

	tampered := twilioForm("SM00000000000000000000000000000009", "failed", "30003")
	for _, c := range []struct {
		name, path, body, signature string
	}{
		{"missing", twilioPath, body, ""},
		{"wrong token", twilioPath, body, twilio.Sign(public, form, []byte("not-a-configured-token"))},
		{"not base64", twilioPath, body, "!!!not-base64!!!"},
		// the signature covers the form: another status must not verify
		{"tampered form", twilioPath, tampered.Encode(), twilio.Sign(public, form, []byte(testTwilioToken))},
		// and the query, which carries the attribution
		{"tampered query", "/webhooks/twilio?template=promo&use_case=billing", body, twilio.Sign(public, form, []byte(testTwilioToken))},
		// the public base URL is configured: a signature over the address
		// ingest listens on is not what Twilio would send
		{"internal url", twilioPath, body, twilio.Sign(base+twilioPath, form, []byte(testTwilioToken))},
		// the empty configured token is skipped
		{"empty token", twilioPath, body, twilio.Sign(public, form, nil)},
	} {
		a := postTwilioRaw(t, base, c.path, c.body, c.signature)
		if !a.isProblem(http.StatusUnauthorized) {
			t.Errorf("%s: %d %s %s, want a 401 problem", c.name, a.code, a.ctype, a.body)
		}
	}
	assertTopicsEmpty(t, svc)
	m := svc.handler.Metrics()
	if got := testutil.ToFloat64(m.SignatureFailures.WithLabelValues("twilio", "missing")); got != 1 {
		t.Errorf("missing-signature metric %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.SignatureFailures.WithLabelValues("twilio", "mismatch")); got != 6 {
		t.Errorf("mismatch metric %v, want 6", got)
	}
}

func TestTwilioCallbackWithoutSidIsDeadLettered(t *testing.T) {
	cfg, _ := fallbackConfig(t)
	svc, base := startIngest(t, cfg)
	form := twilioForm("", "delivered", "")
	form.Del("MessageSid")
	form.Del("SmsSid")
	body := form.Encode()
	a := postTwilioRaw(t, base, twilioPath, body, twilio.Sign(testTwilioPublicBase+twilioPath, form, []byte(testTwilioToken)))
	if a.code != 200 {
		t.Fatalf("signed callback without MessageSid: %d %s, want 200 (kept in the dead-letter topic)", a.code, a.body)
	}
	if ev, dl := a.ack(t); ev != 0 || dl != 1 {
		t.Errorf("answer says %d events, %d dead letters; want 0, 1", ev, dl)
	}
	dl := readTopic(t, svc.Brokers(), "vigia.dlq")
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	d := dl[0]
	if header(d, "vigia-reason") != "malformed" || header(d, "vigia-source") != "twilio" {
		t.Errorf("dead letter reason %q source %q, want malformed from twilio", header(d, "vigia-reason"), header(d, "vigia-source"))
	}
	if !bytes.Equal(d.Value, []byte(body)) {
		t.Errorf("dead letter %q is not the exact form body %q", d.Value, body)
	}
	if got := header(d, "vigia-url"); got != testTwilioPublicBase+twilioPath {
		t.Errorf("dead letter vigia-url %q, want %q", got, testTwilioPublicBase+twilioPath)
	}
	if ev := readTopic(t, svc.Brokers(), "vigia.events"); len(ev) != 0 {
		t.Errorf("%d events from a callback without MessageSid", len(ev))
	}
	if got := testutil.ToFloat64(svc.handler.Metrics().DeadLetters.WithLabelValues("twilio", "malformed")); got != 1 {
		t.Errorf("dead-letter metric %v, want 1", got)
	}
}

// sendgridBatch is a SendGrid Event Webhook payload with five events Vigia
// keeps (processed, delivered, open, bounce, unsubscribe) and one it drops
// (a machine open), formatted with whitespace as a real body may be.
func sendgridBatch(ts int64) []byte {
	s := strconv.FormatInt(ts, 10)
	return []byte(`[
  {"email": "ana.lima@example.com", "timestamp": ` + s + `, "event": "processed", "sg_event_id": "sg-ev-processed-0001",
   "sg_message_id": "sg-msg-0001.filter0001", "template": "otp", "use_case": "billing"},
  {"email": "ana.lima@example.com", "timestamp": ` + s + `, "event": "delivered", "sg_event_id": "sg-ev-delivered-0002",
   "sg_message_id": "sg-msg-0001.filter0001", "response": "250 OK ana.lima@example.com", "template": "otp", "use_case": "billing"},
  {"email": "ana.lima@example.com", "timestamp": ` + s + `, "event": "open", "sg_machine_open": false, "sg_event_id": "sg-ev-open-0003",
   "sg_message_id": "sg-msg-0001.filter0001", "ip": "203.0.113.7", "template": "otp", "use_case": "billing"},
  {"email": "ana.lima@example.com", "timestamp": ` + s + `, "event": "open", "sg_machine_open": true, "sg_event_id": "sg-ev-machine-0004",
   "sg_message_id": "sg-msg-0001.filter0001", "template": "otp", "use_case": "billing"},
  {"email": "bruno.costa@example.com", "timestamp": ` + s + `, "event": "bounce", "sg_event_id": "sg-ev-bounce-0005",
   "sg_message_id": "sg-msg-0002.filter0001", "type": "bounce", "bounce_classification": "Invalid Address", "status": "5.1.1",
   "reason": "550 5.1.1 <bruno.costa@example.com>: Recipient address rejected", "template": "otp", "use_case": "billing"},
  {"email": "carla.dias@example.com", "timestamp": ` + s + `, "event": "unsubscribe", "sg_event_id": "sg-ev-unsub-0006",
   "sg_message_id": "sg-msg-0003.filter0001", "template": "otp", "use_case": "billing"}
]
`)
}

func TestSendGridSignedBatchBecomesEvents(t *testing.T) {
	cfg, key := fallbackConfig(t)
	svc, base := startIngest(t, cfg)
	evTime := time.Now().Add(-time.Minute).Truncate(time.Second)
	body := sendgridBatch(evTime.Unix())
	ts, sig := signSendGrid(t, body, time.Now(), key)
	a := postSendGrid(t, base, body, ts, sig)
	if a.code != 200 {
		t.Fatalf("signed batch: %d %s, want 200", a.code, a.body)
	}
	if ev, dl := a.ack(t); ev != 5 || dl != 0 {
		t.Errorf("answer says %d events, %d dead letters; want 5, 0", ev, dl)
	}

	msgs := readTopic(t, svc.Brokers(), "vigia.events")
	if len(msgs) != 5 {
		t.Fatalf("%d records in the events topic, want 5 (the machine open is dropped)", len(msgs))
	}
	byName := map[string]event.Event{}
	for i, e := range decodeEvents(t, msgs) {
		m := msgs[i]
		if string(m.Key) != testFallbackWABA || e.WABAID != testFallbackWABA {
			t.Errorf("%s keyed %q with waba_id %q, want %s", e.Field, m.Key, e.WABAID, testFallbackWABA)
		}
		if e.Channel != event.ChannelEmail || e.Source != "sendgrid" {
			t.Errorf("%s: channel %q source %q, want email sendgrid", e.Field, e.Channel, e.Source)
		}
		if !e.EventTime.Equal(evTime) {
			t.Errorf("%s: event time %s, want the payload's %s", e.Field, e.EventTime, evTime)
		}
		if e.Attribution == nil || e.Attribution.Template != "otp" || e.Attribution.UseCase != "billing" {
			t.Errorf("%s: attribution %+v, want otp / billing from the custom args", e.Field, e.Attribution)
		}
		if e.Recipient == nil || e.Recipient.Pseudonym == "" || e.Recipient.IDKind != "email" {
			t.Errorf("%s: recipient %+v, want a pseudonymized address", e.Field, e.Recipient)
		}
		for _, leak := range []string{"@", "ana.lima", "bruno.costa", "carla.dias", "example.com", "203.0.113.7"} {
			if bytes.Contains(m.Value, []byte(leak)) {
				t.Errorf("%s: %q in the events topic: %s", e.Field, leak, m.Value)
			}
		}
		if _, dup := byName[e.Field]; dup {
			t.Errorf("two %s events", e.Field)
		}
		byName[e.Field] = e
	}
	for name, want := range map[string]struct {
		kind   event.Kind
		status string
	}{
		"processed":   {event.KindStatus, event.StatusAccepted},
		"delivered":   {event.KindStatus, event.StatusDelivered},
		"open":        {event.KindStatus, event.StatusRead},
		"bounce":      {event.KindStatus, event.StatusFailed},
		"unsubscribe": {event.KindUserPreference, ""},
	} {
		e, ok := byName[name]
		if !ok {
			t.Errorf("no %s event", name)
			continue
		}
		if e.Kind != want.kind || e.Status != want.status {
			t.Errorf("%s: kind %q status %q, want %q %q", name, e.Kind, e.Status, want.kind, want.status)
		}
	}
	if e := byName["bounce"]; e.Error == nil || e.Error.Class != event.ClassUndeliverable {
		t.Errorf("bounce error %+v, want class undeliverable", e.Error)
	}
	if e := byName["unsubscribe"]; e.OptOut == nil || e.OptOut.Source != "unsubscribe" {
		t.Errorf("unsubscribe opt-out %+v, want source unsubscribe", e.OptOut)
	}

	if dl := readTopic(t, svc.Brokers(), "vigia.dlq"); len(dl) != 0 {
		t.Errorf("%d dead letters for a good batch", len(dl))
	}
	m := svc.handler.Metrics()
	if got := testutil.ToFloat64(m.Events.WithLabelValues("sendgrid", "status")); got != 4 {
		t.Errorf("status events metric %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.Events.WithLabelValues("sendgrid", "user_preference")); got != 1 {
		t.Errorf("user_preference events metric %v, want 1", got)
	}
}

func TestSendGridBadSignaturesAreRefusedAndNothingKept(t *testing.T) {
	cfg, key := fallbackConfig(t)
	svc, base := startIngest(t, cfg)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := sendgridBatch(now.Unix())
	goodTS, goodSig := signSendGrid(t, body, now, key)
	wrongTS, wrongSig := signSendGrid(t, body, now, other)
	staleTS, staleSig := signSendGrid(t, body, now.Add(-testSendGridMaxSkew-time.Minute), key)
	futureTS, futureSig := signSendGrid(t, body, now.Add(testSendGridMaxSkew+time.Minute), key)
	tampered := bytes.Replace(body, []byte(`"bounce"`), []byte(`"delivered"`), 1)

	for _, c := range []struct {
		name          string
		body          []byte
		ts, signature string
		missing       bool
	}{
		{"missing both headers", body, "", "", true},
		{"missing signature", body, goodTS, "", true},
		{"missing timestamp", body, "", goodSig, true},
		{"wrong key", body, wrongTS, wrongSig, false},
		{"stale timestamp", body, staleTS, staleSig, false},
		{"future timestamp", body, futureTS, futureSig, false},
		// the timestamp is signed: moving it into the window breaks the signature
		{"restamped", body, goodTS, staleSig, false},
		{"tampered body", tampered, goodTS, goodSig, false},
	} {
		a := postSendGrid(t, base, c.body, c.ts, c.signature)
		if !a.isProblem(http.StatusUnauthorized) {
			t.Errorf("%s: %d %s %s, want a 401 problem", c.name, a.code, a.ctype, a.body)
		}
	}
	assertTopicsEmpty(t, svc)
	m := svc.handler.Metrics()
	if got := testutil.ToFloat64(m.SignatureFailures.WithLabelValues("sendgrid", "missing")); got != 3 {
		t.Errorf("missing-signature metric %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.SignatureFailures.WithLabelValues("sendgrid", "mismatch")); got != 5 {
		t.Errorf("mismatch metric %v, want 5", got)
	}
}

func TestSendGridMalformedPayloadsAreDeadLettered(t *testing.T) {
	cfg, key := fallbackConfig(t)
	svc, base := startIngest(t, cfg)

	// a signed body that is not a JSON array is kept whole
	notArray := []byte(`{"email":"ana.lima@example.com","event":"delivered","sg_event_id":"sg-ev-lone-0001"}`)
	ts, sig := signSendGrid(t, notArray, time.Now(), key)
	a := postSendGrid(t, base, notArray, ts, sig)
	if a.code != 200 {
		t.Fatalf("signed non-array: %d %s, want 200 (kept in the dead-letter topic)", a.code, a.body)
	}
	if ev, dl := a.ack(t); ev != 0 || dl != 1 {
		t.Errorf("non-array: answer says %d events, %d dead letters; want 0, 1", ev, dl)
	}

	// an element without sg_event_id is rejected alone
	now := strconv.FormatInt(time.Now().Unix(), 10)
	noID := `{"email":"bruno.costa@example.com","timestamp":` + now + `,"event":"delivered","sg_message_id":"sg-msg-0009"}`
	batch := []byte(`[` +
		`{"email":"ana.lima@example.com","timestamp":` + now + `,"event":"processed","sg_event_id":"sg-ev-a-0001","sg_message_id":"sg-msg-0008"},` +
		noID + `,` +
		`{"email":"ana.lima@example.com","timestamp":` + now + `,"event":"delivered","sg_event_id":"sg-ev-b-0002","sg_message_id":"sg-msg-0008"}` +
		`]`)
	ts, sig = signSendGrid(t, batch, time.Now(), key)
	a = postSendGrid(t, base, batch, ts, sig)
	if a.code != 200 {
		t.Fatalf("batch with a bad element: %d %s, want 200", a.code, a.body)
	}
	if ev, dl := a.ack(t); ev != 2 || dl != 1 {
		t.Errorf("bad element: answer says %d events, %d dead letters; want 2, 1", ev, dl)
	}

	dl := readTopic(t, svc.Brokers(), "vigia.dlq")
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2 (the non-array payload and the element without sg_event_id)", len(dl))
	}
	byReason := map[string]kafka.Message{}
	for _, d := range dl {
		if header(d, "vigia-source") != "sendgrid" {
			t.Errorf("dead letter from source %q, want sendgrid", header(d, "vigia-source"))
		}
		byReason[header(d, "vigia-reason")] = d
	}
	if d, ok := byReason["malformed"]; !ok || !bytes.Equal(d.Value, notArray) {
		t.Errorf("non-array payload not kept byte for byte as a malformed dead letter (reasons %v)", keysOf(byReason))
	}
	if d, ok := byReason[sendgrid.RejectReason]; !ok || !bytes.Equal(d.Value, []byte(noID)) {
		t.Errorf("element without sg_event_id not kept byte for byte as a %s dead letter (reasons %v)", sendgrid.RejectReason, keysOf(byReason))
	}

	evs := decodeEvents(t, readTopic(t, svc.Brokers(), "vigia.events"))
	if len(evs) != 2 {
		t.Fatalf("%d events, want the 2 good elements", len(evs))
	}
	statuses := map[string]bool{}
	for _, e := range evs {
		statuses[e.Status] = true
	}
	if !statuses[event.StatusAccepted] || !statuses[event.StatusDelivered] {
		t.Errorf("event statuses %v, want accepted and delivered", statuses)
	}
	m := svc.handler.Metrics()
	if testutil.ToFloat64(m.DeadLetters.WithLabelValues("sendgrid", "malformed")) != 1 ||
		testutil.ToFloat64(m.DeadLetters.WithLabelValues("sendgrid", sendgrid.RejectReason)) != 1 {
		t.Error("dead-letter metrics wrong")
	}
}

func keysOf(m map[string]kafka.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFallbackEndpointsDisabledWhenNotConfigured: without Twilio tokens or
// SendGrid keys the endpoints do not exist, whatever the request carries.
func TestFallbackEndpointsDisabledWhenNotConfigured(t *testing.T) {
	cfg := testConfig(t)
	if len(cfg.Twilio.AuthTokens) != 0 || len(cfg.SendGrid.PublicKeys) != 0 {
		t.Fatal("testConfig enables a fallback endpoint")
	}
	svc, base := startIngest(t, cfg)

	form := twilioForm("SM00000000000000000000000000000001", "delivered", "")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := sendgridBatch(time.Now().Unix())
	ts, sig := signSendGrid(t, body, time.Now(), key)
	for _, c := range []struct {
		name string
		a    answer
	}{
		{"twilio signed with a token", postTwilio(t, base, twilioPath, form, testTwilioToken)},
		// an empty token is what a disabled endpoint would hold: it must
		// not turn into a key anyone can sign with
		{"twilio signed with an empty token", postTwilio(t, base, twilioPath, form, "")},
		{"twilio unsigned", postTwilioRaw(t, base, twilioPath, form.Encode(), "")},
		{"sendgrid signed", postSendGrid(t, base, body, ts, sig)},
		{"sendgrid unsigned", postSendGrid(t, base, body, "", "")},
	} {
		if c.a.code != http.StatusNotFound && c.a.code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d %s, want 404 or 405", c.name, c.a.code, c.a.body)
		}
	}
	assertTopicsEmpty(t, svc)
}

func TestFallbackRawTopicKeepsExactRequests(t *testing.T) {
	cfg, key := fallbackConfig(t)
	cfg.Kafka.RawEnabled = true
	svc, base := startIngest(t, cfg)

	// Twilio: a body in Twilio's own (unsorted) order with an empty value,
	// so that a re-encoded form would differ from the bytes received.
	twBody := "MessageStatus=delivered&MessageSid=SM0000000000000000000000000000000a&SmsStatus=delivered" +
		"&To=%2B5511987654321&From=%2B15550001111&ErrorCode=&AccountSid=AC5ef872f6da5a21de157d80997a64bd33&ApiVersion=2010-04-01"
	twForm, err := url.ParseQuery(twBody)
	if err != nil {
		t.Fatal(err)
	}
	public := testTwilioPublicBase + twilioPath
	twSig := twilio.Sign(public, twForm, []byte(testTwilioRotatedToken))
	if a := postTwilioRaw(t, base, twilioPath, twBody, twSig); a.code != 200 {
		t.Fatalf("twilio: %d %s", a.code, a.body)
	}

	// SendGrid
	sgBody := sendgridBatch(time.Now().Unix())
	sgTS, sgSig := signSendGrid(t, sgBody, time.Now(), key)
	if a := postSendGrid(t, base, sgBody, sgTS, sgSig); a.code != 200 {
		t.Fatalf("sendgrid: %d %s", a.code, a.body)
	}

	raw := readTopic(t, svc.Brokers(), "vigia.raw")
	if len(raw) != 2 {
		t.Fatalf("%d raw records, want 2 (one per request)", len(raw))
	}
	bySource := map[string]kafka.Message{}
	for _, r := range raw {
		bySource[header(r, "vigia-source")] = r
	}

	tw, ok := bySource["twilio"]
	if !ok {
		t.Fatal("no raw record from twilio")
	}
	if !bytes.Equal(tw.Value, []byte(twBody)) {
		t.Errorf("twilio raw record %q is not the exact form body %q", tw.Value, twBody)
	}
	if got := header(tw, "vigia-url"); got != public {
		t.Errorf("twilio raw vigia-url %q, want the full public URL %q", got, public)
	}
	if got := header(tw, twilio.SignatureHeader); got != twSig {
		t.Errorf("twilio raw signature header %q, want %q", got, twSig)
	}
	replayForm, err := url.ParseQuery(string(tw.Value))
	if err != nil || twilio.VerifySignature(header(tw, "vigia-url"), replayForm, header(tw, twilio.SignatureHeader),
		[][]byte{[]byte(testTwilioRotatedToken)}) != nil {
		t.Errorf("twilio raw record does not re-verify on its own (%v)", err)
	}
	if string(tw.Key) != testFallbackWABA {
		t.Errorf("twilio raw record keyed %q, want %s", tw.Key, testFallbackWABA)
	}

	sg, ok := bySource["sendgrid"]
	if !ok {
		t.Fatal("no raw record from sendgrid")
	}
	if !bytes.Equal(sg.Value, sgBody) {
		t.Errorf("sendgrid raw record is not the exact body:\n%s\nwant\n%s", sg.Value, sgBody)
	}
	if header(sg, sendgrid.SignatureHeader) != sgSig || header(sg, sendgrid.TimestampHeader) != sgTS {
		t.Errorf("sendgrid raw headers signature %q timestamp %q, want %q %q",
			header(sg, sendgrid.SignatureHeader), header(sg, sendgrid.TimestampHeader), sgSig, sgTS)
	}
	pub, err := sendgrid.ParsePublicKey(cfg.SendGrid.PublicKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := sendgrid.VerifySignature(sg.Value, header(sg, sendgrid.TimestampHeader), header(sg, sendgrid.SignatureHeader),
		[]*ecdsa.PublicKey{pub}, time.Now(), testSendGridMaxSkew); err != nil {
		t.Errorf("sendgrid raw record does not re-verify on its own: %v", err)
	}
	if string(sg.Key) != testFallbackWABA {
		t.Errorf("sendgrid raw record keyed %q, want %s", sg.Key, testFallbackWABA)
	}

	// the raw topic is where personal data may be; the events topic still
	// holds none
	evs := readTopic(t, svc.Brokers(), "vigia.events")
	if len(evs) != 6 {
		t.Errorf("%d events, want 6 (1 sms + 5 e-mail)", len(evs))
	}
	for _, m := range evs {
		if bytes.Contains(m.Value, []byte("5511987654321")) || bytes.Contains(m.Value, []byte("@")) {
			t.Errorf("personal data in the events topic: %s", m.Value)
		}
	}
}

// TestTwilioPublicBaseURLWithTrailingSlash: "https://host/" is how people
// write URLs; the signature must still be checked against
// https://host/webhooks/twilio, not https://host//webhooks/twilio.
func TestTwilioPublicBaseURLWithTrailingSlash(t *testing.T) {
	cfg, _ := fallbackConfig(t)
	cfg.Twilio.PublicBaseURL = testTwilioPublicBase + "/"
	_, base := startIngest(t, cfg)
	a := postTwilio(t, base, twilioPath, twilioForm("SM00000000000000000000000000000009", "delivered", ""), testTwilioToken)
	if a.code != 200 {
		t.Fatalf("%d %s, want 200", a.code, a.body)
	}
}

// TestTwilioUnknownStatusIsDeadLetteredWithItsReason: a status Vigia does
// not map is kept, not guessed, under its own reason.
func TestTwilioUnknownStatusIsDeadLetteredWithItsReason(t *testing.T) {
	cfg, _ := fallbackConfig(t)
	svc, base := startIngest(t, cfg)
	a := postTwilio(t, base, twilioPath, twilioForm("SM00000000000000000000000000000010", "partially_delivered", ""), testTwilioToken)
	if ev, dl := a.ack(t); a.code != 200 || ev != 0 || dl != 1 {
		t.Fatalf("%d: %d events %d dead letters", a.code, ev, dl)
	}
	dlq := readTopic(t, svc.Brokers(), "vigia.dlq")
	if len(dlq) != 1 || header(dlq[0], "vigia-reason") != "unknown_status" || string(dlq[0].Key) != testFallbackWABA {
		t.Fatalf("dead letter %+v", dlq)
	}
}

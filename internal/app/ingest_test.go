package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"vigia/internal/config"
	"vigia/internal/event"
	"vigia/internal/kafkaio"
	"vigia/internal/meta"
)

func TestMain(m *testing.M) {
	ReadyInterval = 100 * time.Millisecond
	goleak.VerifyTestMain(m,
		// kafka-go keeps idle connection reapers per transport.
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const (
	testSecret      = "app-secret-current"
	testOldSecret   = "app-secret-previous"
	testVerifyToken = "verify-me"
)

func testConfig(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Kafka.Embedded = config.Embedded{DataDir: t.TempDir(), Port: 0}
	cfg.Kafka.Partitions = 3
	cfg.Kafka.PublishTimeout = 3 * time.Second
	cfg.Meta.AppSecrets = []string{testSecret, testOldSecret}
	cfg.Meta.VerifyToken = testVerifyToken
	cfg.Privacy.PseudonymKey = "k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startIngest starts the whole service and waits until it is ready.
func startIngest(t *testing.T, cfg config.Config) (*Ingest, string) {
	t.Helper()
	svc, err := NewIngest(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	base := "http://" + svc.Addr()
	waitReady(t, base, 15*time.Second)
	return svc, base
}

func waitReady(t *testing.T, base string, within time.Duration) {
	t.Helper()
	if !pollReady(base, within) {
		t.Fatalf("%s not ready within %s", base, within)
	}
}

// pollReady reports whether base/-/ready answers 200 within the time.
func pollReady(base string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
	}
	return false
}

func postSigned(t *testing.T, base string, body []byte, secret string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(meta.SignatureHeader, meta.Sign(body, []byte(secret)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readTopic(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := kafkaio.ReadAll(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../meta/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandshake(t *testing.T) {
	_, base := startIngest(t, testConfig(t))
	for _, c := range []struct {
		query string
		code  int
		body  string
	}{
		{"hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444", 200, "1158201444"},
		{"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444", 403, ""},
		{"hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1", 403, ""},
		{"", 403, ""},
	} {
		resp, err := http.Get(base + "/webhooks/whatsapp?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || (c.body != "" && string(b) != c.body) {
			t.Errorf("%q: %d %q, want %d %q", c.query, resp.StatusCode, b, c.code, c.body)
		}
		if c.code == 403 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%q: 403 without a problem body", c.query)
		}
	}
}

func TestSignedBatchLandsInEventsTopic(t *testing.T) {
	svc, base := startIngest(t, testConfig(t))
	body := fixture(t, "statuses.json")
	// the previous secret still verifies during a rotation
	resp := postSigned(t, base, body, testOldSecret)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var ack struct{ Events, DeadLetters int }
	if err := json.NewDecoder(resp.Body).Decode(&ack); err != nil || ack.Events != 6 || ack.DeadLetters != 0 {
		t.Fatalf("answer %+v %v", ack, err)
	}
	msgs := readTopic(t, svc.Brokers(), "vigia.events")
	if len(msgs) != 6 {
		t.Fatalf("%d records in events topic, want 6", len(msgs))
	}
	partition := msgs[0].Partition
	for _, m := range msgs {
		var e event.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != "102290129340398" || e.WABAID != "102290129340398" || m.Partition != partition {
			t.Errorf("record keyed %q in partition %d, want the WABA id in one partition", m.Key, m.Partition)
		}
		if bytes.Contains(m.Value, []byte("5511987654321")) {
			t.Error("raw phone number in the events topic")
		}
	}
	if n := testutil.ToFloat64(svc.handler.Metrics().Events.WithLabelValues("meta", "status")); n != 6 {
		t.Errorf("events metric %v, want 6", n)
	}
	if dl := readTopic(t, svc.Brokers(), "vigia.dlq"); len(dl) != 0 {
		t.Errorf("%d dead letters for a good payload", len(dl))
	}
}

func TestBadSignaturesAreRefusedAndNothingKept(t *testing.T) {
	svc, base := startIngest(t, testConfig(t))
	body := fixture(t, "statuses.json")
	for name, secret := range map[string]string{"missing": "", "wrong secret": "not-the-secret"} {
		resp := postSigned(t, base, body, secret)
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// re-serialized JSON has different bytes: the signature of the
	// original no longer matches
	var v any
	_ = json.Unmarshal(body, &v)
	reser, _ := json.Marshal(v)
	req, _ := http.NewRequest("POST", base+"/webhooks/whatsapp", bytes.NewReader(reser))
	req.Header.Set(meta.SignatureHeader, meta.Sign(body, []byte(testSecret)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("re-serialized body: %d", resp.StatusCode)
	}
	for _, topic := range []string{"vigia.events", "vigia.dlq"} {
		if msgs := readTopic(t, svc.Brokers(), topic); len(msgs) != 0 {
			t.Errorf("%s holds %d records after refused requests", topic, len(msgs))
		}
	}
	m := svc.handler.Metrics()
	if testutil.ToFloat64(m.SignatureFailures.WithLabelValues("meta", "missing")) != 1 ||
		testutil.ToFloat64(m.SignatureFailures.WithLabelValues("meta", "mismatch")) != 2 {
		t.Error("signature failure metrics wrong")
	}
}

func TestMalformedSignedPayloadIsDeadLettered(t *testing.T) {
	svc, base := startIngest(t, testConfig(t))
	garbage := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[` + "\x00")
	if resp := postSigned(t, base, garbage, testSecret); resp.StatusCode != 200 {
		t.Fatalf("malformed: %d, want 200 (kept in the dead-letter topic)", resp.StatusCode)
	}
	if resp := postSigned(t, base, fixture(t, "bad_items.json"), testSecret); resp.StatusCode != 200 {
		t.Fatalf("bad items: %d", resp.StatusCode)
	}
	dl := readTopic(t, svc.Brokers(), "vigia.dlq")
	if len(dl) != 5 {
		t.Fatalf("%d dead letters, want 5 (1 payload + 4 items)", len(dl))
	}
	var whole *kafka.Message
	for i := range dl {
		if header(dl[i], "vigia-reason") == "malformed" {
			whole = &dl[i]
		}
	}
	if whole == nil || !bytes.Equal(whole.Value, garbage) || header(*whole, meta.SignatureHeader) == "" {
		t.Fatal("whole malformed payload not kept byte for byte with its signature")
	}
	if ev := readTopic(t, svc.Brokers(), "vigia.events"); len(ev) != 1 {
		t.Errorf("%d events, want the 1 good status of bad_items.json", len(ev))
	}
	m := svc.handler.Metrics()
	if testutil.ToFloat64(m.DeadLetters.WithLabelValues("meta", "malformed")) != 1 ||
		testutil.ToFloat64(m.DeadLetters.WithLabelValues("meta", "bad_status")) != 3 {
		t.Error("dead-letter metrics wrong")
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestRawTopicKeepsExactBytes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Kafka.RawEnabled = true
	svc, base := startIngest(t, cfg)
	body := fixture(t, "inbound.json")
	if resp := postSigned(t, base, body, testSecret); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	raw := readTopic(t, svc.Brokers(), "vigia.raw")
	if len(raw) != 1 || !bytes.Equal(raw[0].Value, body) || meta.VerifySignature(raw[0].Value, header(raw[0], meta.SignatureHeader), [][]byte{[]byte(testSecret)}) != nil {
		t.Fatal("raw record is not the exact signed payload with its signature")
	}
}

func TestBodyLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MaxBodyBytes = 4 << 20
	_, base := startIngest(t, cfg)
	big := bytes.Repeat([]byte("x"), 5<<20)
	if resp := postSigned(t, base, big, testSecret); resp.StatusCode != 413 {
		t.Errorf("oversized body: %d, want 413", resp.StatusCode)
	}
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	_, base := startIngest(t, testConfig(t))
	for path, want := range map[string]string{"/-/healthy": "OK", "/-/ready": "OK", "/metrics": "vigia_ingest_events_total"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}

// TestNotReadyWithoutKafka points ingest at a closed port: /-/ready stays
// 503 and webhooks are answered 503, never 200.
func TestNotReadyWithoutKafka(t *testing.T) {
	cfg := testConfig(t)
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"}
	cfg.Kafka.PublishTimeout = 500 * time.Millisecond
	svc, err := NewIngest(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(context.Background())
	base := "http://" + svc.Addr()
	time.Sleep(300 * time.Millisecond)
	resp, err := http.Get(base + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("ready: %d, want 503", resp.StatusCode)
	}
	if resp := postSigned(t, base, fixture(t, "statuses.json"), testSecret); resp.StatusCode != 503 {
		t.Errorf("webhook without Kafka: %d, want 503", resp.StatusCode)
	}
}

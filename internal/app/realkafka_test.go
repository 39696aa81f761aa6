package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigia/internal/event"
)

// realBroker is an Apache Kafka broker started by scripts/kafka.sh for one
// test, on its own port and data directory.
type realBroker struct {
	t    *testing.T
	port int
	dir  string
}

// startRealBroker starts a real broker, or skips the test when real-broker
// tests are not enabled (make test enables them; a plain go test does not,
// since it needs Java and the cached jars).
func startRealBroker(t *testing.T, port int) *realBroker {
	t.Helper()
	if os.Getenv("VIGIA_TEST_REAL_KAFKA") != "1" {
		t.Skip("real Kafka broker tests need VIGIA_TEST_REAL_KAFKA=1 (set by make test)")
	}
	b := &realBroker{t: t, port: port, dir: t.TempDir()}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func scriptCmd(b *realBroker, args ...string) *exec.Cmd {
	args = append(args, "--port", strconv.Itoa(b.port), "--dir", b.dir)
	return exec.Command("../../scripts/kafka.sh", args...)
}

func (b *realBroker) script(args ...string) {
	b.t.Helper()
	out, err := scriptCmd(b, args...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("scripts/kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (b *realBroker) start()         { b.script("start") }
func (b *realBroker) stop()          { b.script("stop") }
func (b *realBroker) addr() []string { return []string{fmt.Sprintf("127.0.0.1:%d", b.port)} }

// statusBatch builds a messages webhook with n statuses, distinct message ids.
func statusBatch(waba string, n, offset int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"object":"whatsapp_business_account","entry":[{"id":%q,"changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[`, waba)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"wamid.T%08d","status":"delivered","timestamp":"%d","recipient_id":"55119%08d","recipient_type":"individual","biz_opaque_callback_data":"t=promo;u=sales","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}`,
			offset+i, 1750263773+i, offset+i)
	}
	sb.WriteString(`]}}]}]}`)
	return []byte(sb.String())
}

// TestRealBrokerDurability: against a real Apache Kafka broker, a
// 1000-status POST lands once per status; with the broker stopped the answer
// is 503 (nothing acknowledged) and readiness drops; with the broker back,
// webhooks are accepted again.
func TestRealBrokerDurability(t *testing.T) {
	broker := startRealBroker(t, 19392)
	cfg := testConfig(t)
	cfg.Kafka.Brokers = broker.addr()
	cfg.Kafka.PublishTimeout = 5 * time.Second
	svc, base := startIngest(t, cfg)

	first := statusBatch("waba-1", 1000, 0)
	resp := postSigned(t, base, first, testSecret)
	if resp.StatusCode != 200 {
		t.Fatalf("1000-status POST: %d", resp.StatusCode)
	}
	msgs := readTopic(t, broker.addr(), "vigia.events")
	ids := map[string]bool{}
	for _, m := range msgs {
		var e event.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		ids[e.MessageID] = true
	}
	if len(msgs) != 1000 || len(ids) != 1000 {
		t.Fatalf("events topic holds %d records for %d messages, want 1000 and 1000", len(msgs), len(ids))
	}

	broker.stop()
	start := time.Now()
	resp = postSigned(t, base, statusBatch("waba-1", 10, 5000), testSecret)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("broker down: %d, want 503", resp.StatusCode)
	}
	if took := time.Since(start); took > cfg.Kafka.PublishTimeout+2*time.Second {
		t.Errorf("503 took %s, want within the publish timeout %s", took, cfg.Kafka.PublishTimeout)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := http.Get(base + "/-/ready")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 503 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/-/ready did not turn 503 with the broker down")
		}
		time.Sleep(100 * time.Millisecond)
	}

	broker.start()
	waitReady(t, base, 60*time.Second)
	// the producer reconnects: accepted again, possibly after a retry
	var code int
	for i := 0; i < 10; i++ {
		code = postSigned(t, base, statusBatch("waba-1", 1000, 10000), testSecret).StatusCode
		if code == 200 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("broker back: %d, want 200", code)
	}
	all := readTopic(t, broker.addr(), "vigia.events")
	ids = map[string]bool{}
	for _, m := range all {
		var e event.Event
		_ = json.Unmarshal(m.Value, &e)
		ids[e.MessageID] = true
	}
	if !ids["wamid.T00010999"] || !ids["wamid.T00000000"] {
		t.Error("records of the first or the last batch missing after the restart")
	}
	if n := testutilCount(svc); n < 1 {
		t.Error("publish failure not counted")
	}
}

func testutilCount(svc *Ingest) float64 {
	return testutil.ToFloat64(svc.handler.Metrics().PublishFailures.WithLabelValues("meta"))
}

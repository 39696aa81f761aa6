package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/kafkaio"
	"vigia/internal/notify/alertmanager/amtest"
	"vigia/internal/notify/slack/slacktest"
	"vigia/internal/quality"
)

const testSlackChannel = "#vigia-alerts"

func notifierConfig(t *testing.T, brokers []string, slackAPI, amURL string) config.Config {
	cfg := testConfig(t)
	cfg.Kafka.Brokers = brokers
	n := &cfg.Notifier
	n.Listen = "127.0.0.1:0"
	n.GroupID = "test-notifier"
	n.CommitInterval = 100 * time.Millisecond
	n.MaxBackoff = 500 * time.Millisecond
	n.ExternalURL = "http://127.0.0.1:8081"
	n.Alertmanager.ResendInterval = 500 * time.Millisecond
	if amURL != "" {
		n.Alertmanager.URLs = []string{amURL}
	}
	if slackAPI != "" {
		n.Slack.Token, n.Slack.APIURL, n.Slack.Channel = slacktest.Token, slackAPI, testSlackChannel
	}
	if err := cfg.ValidateFor("notifier"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startNotifier(t *testing.T, cfg config.Config) (*Notifier, string) {
	t.Helper()
	n, err := NewNotifier(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stopNotifier(t, n)
		}
	})
	base := "http://" + n.Addr()
	waitReady(t, base, 30*time.Second)
	return n, base
}

func stopNotifier(t *testing.T, n *Notifier) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stop notifier: %v", err)
	}
}

// eventually polls cond every 50 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
	}
}

// publishAlerts writes alert records to the alerts topic as the evaluator
// does (key: fingerprint).
func publishAlerts(t *testing.T, brokers []string, as ...*alert.Alert) {
	t.Helper()
	w, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: brokers, BatchTimeout: time.Millisecond, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(as))
	for i, a := range as {
		v, _ := json.Marshal(a)
		msgs[i] = kafka.Message{Topic: "vigia.alerts", Key: []byte(a.Fingerprint), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// alertRecord builds a record as the evaluator publishes it.
func alertRecord(state alert.State, activeAt, at time.Time) *alert.Alert {
	labels := map[string]string{"alertname": "DeliveryRateDrop", "phone_number": "106540352242922", "severity": "critical"}
	a := &alert.Alert{SchemaVersion: alert.SchemaVersion, Fingerprint: alert.Fingerprint(labels), Name: "DeliveryRateDrop",
		Group: "delivery", Rule: "rules/delivery.yaml:9", State: state, Labels: labels,
		Annotations: map[string]string{"summary": "Delivery on number 106540352242922 fell to 61.0%"},
		ActiveAt:    activeAt, EvalTime: at, FiredAt: &activeAt,
		Actions: []alert.Action{{Type: "failover", Params: map[string]string{"phone_number": "106540352242922"}}}}
	a.Values.Attempts, a.Values.DeliveryRate = 1200, 0.61
	a.Baseline = &quality.Values{Attempts: 5000, DeliveryRate: 0.95}
	return a
}

// slackParents returns the top-level messages (not thread replies).
func slackParents(s *slacktest.Server) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range s.Messages() {
		if m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

func slackReplies(s *slacktest.Server) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range s.Messages() {
		if m.ThreadTS != "" {
			out = append(out, m)
		}
	}
	return out
}

// metricValue sums the series of metric name in reg whose labels include
// the given name, value pairs (counters and gauges).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

func receiverMetric(t *testing.T, n *Notifier, name, receiver string, extra ...string) float64 {
	t.Helper()
	return metricValue(t, n.Registry(), name, append([]string{"receiver", receiver}, extra...)...)
}

// TestNotifierEndToEnd: webhooks into ingest, the evaluator fires a rule
// and resolves it seconds later; the notifier posts the alert to Slack
// (Block Kit, values, actions), updates the same message on resolve and
// replies in its thread, and a real Alertmanager gets the firing alert,
// its re-sends, then its resolve, which its webhook receiver reports.
func TestNotifierEndToEnd(t *testing.T) {
	ing, ingBase := startIngest(t, testConfig(t))
	evCfg := evaluatorConfig(t, ing.Brokers())
	evCfg.Evaluator.Rules = []string{"testdata/rules-brief"}
	startEvaluator(t, evCfg)

	sl := slacktest.New(t)
	channelID := sl.AddChannel(testSlackChannel)
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, hook.URL())
	n, _ := startNotifier(t, notifierConfig(t, ing.Brokers(), sl.APIURL(), am.URL()))

	if resp := postSigned(t, ingBase, throttledBatch("PN7", 6, 0, time.Now()), testSecret); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	labels := map[string]string{"alertname": "BriefThroughputErrors", "phone_number": "PN7", "severity": "critical", "alertgroup": "brief"}
	got := hook.WaitForAlert(t, 20*time.Second, "firing", labels)
	if !strings.Contains(got.Annotations["summary"], "PN7: 6 throughput errors") {
		t.Errorf("Alertmanager alert annotations: %v", got.Annotations)
	}
	eventually(t, 10*time.Second, "one Slack message", func() bool { return len(slackParents(sl)) == 1 })
	msg := slackParents(sl)[0]
	text := msg.BlockText()
	for _, want := range []string{"FIRING", "BriefThroughputErrors", "PN7", "130429", "throttle", "https://runbooks.example.com/throughput"} {
		if !strings.Contains(text, want) {
			t.Errorf("Slack message lacks %q:\n%s", want, text)
		}
	}
	if msg.Channel != channelID {
		t.Errorf("posted to %s, want %s", msg.Channel, channelID)
	}
	// While firing, Alertmanager gets it again every resend interval.
	eventually(t, 10*time.Second, "Alertmanager re-sends", func() bool {
		return receiverMetric(t, n, "vigia_notifier_notifications_total", "alertmanager:"+strings.TrimPrefix(am.URL(), "http://")) >= 3
	})

	hook.WaitForAlert(t, 30*time.Second, "resolved", labels)
	eventually(t, 10*time.Second, "the Slack message updated and a thread reply", func() bool {
		ps := slackParents(sl)
		return len(ps) == 1 && ps[0].Updates == 1 && len(slackReplies(sl)) == 1
	})
	resolved := slackParents(sl)[0]
	if resolved.TS != msg.TS || !strings.Contains(resolved.BlockText(), "RESOLVED") {
		t.Errorf("resolve did not update the firing message: %+v\n%s", resolved, resolved.BlockText())
	}
	if reply := slackReplies(sl)[0]; reply.ThreadTS != msg.TS {
		t.Errorf("reply in thread %s, want %s", reply.ThreadTS, msg.TS)
	}
	if d := testutil.ToFloat64(n.records.WithLabelValues(recordNotified)); d != 2 {
		t.Errorf("notified records = %v, want 2 (firing, resolved)", d)
	}
}

// TestNotifierDeliversOnce: the same record read twice (a duplicate on the
// topic, a restart of the notifier, a new consumer group that reads the
// whole topic again) is posted once; the resolve after a restart updates
// the message posted before it.
func TestNotifierDeliversOnce(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	deliversOnce(t, ing.Brokers())
}

// TestNotifierDeliversOnceRealKafka: the same on a real Apache Kafka
// broker, where the notification log is a topic with cleanup.policy
// compact.
func TestNotifierDeliversOnceRealKafka(t *testing.T) {
	b := startRealBroker(t, 19792)
	deliversOnce(t, b.addr())
}

func deliversOnce(t *testing.T, brokers []string) {
	sl := slacktest.New(t)
	sl.AddChannel(testSlackChannel)
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, hook.URL())
	cfg := notifierConfig(t, brokers, sl.APIURL(), am.URL())

	active := time.Now().Add(-time.Minute).Truncate(time.Second)
	firing := alertRecord(alert.StateFiring, active, active)
	n1, _ := startNotifier(t, cfg)
	publishAlerts(t, brokers, firing, firing)
	// Both copies done with: the offset passes them. (The second copy is
	// either dropped by the log or replaces the first in the queue.)
	eventually(t, 10*time.Second, "both records done", func() bool { return committedOffsets(t, brokers, "test-notifier") == 2 })
	if ps := slackParents(sl); len(ps) != 1 {
		t.Fatalf("Slack got %d messages for a record published twice, want 1", len(ps))
	}
	hook.WaitForAlert(t, 10*time.Second, "firing", firing.Labels)
	stopNotifier(t, n1)

	// A restart: the evaluator may publish the firing record again; then
	// the resolve comes.
	n2, _ := startNotifier(t, cfg)
	resolvedAt := time.Now()
	resolved := alertRecord(alert.StateResolved, active, resolvedAt)
	resolved.ResolvedAt = &resolvedAt
	publishAlerts(t, brokers, firing, resolved)
	eventually(t, 10*time.Second, "update and reply", func() bool {
		ps := slackParents(sl)
		return len(ps) == 1 && ps[0].Updates == 1 && len(slackReplies(sl)) == 1
	})
	hook.WaitForAlert(t, 10*time.Second, "resolved", firing.Labels)
	stopNotifier(t, n2)

	// A new group reads every record from the start: the log says each
	// was sent, nothing is posted again.
	cfg.Notifier.GroupID = "test-notifier-2"
	n3, _ := startNotifier(t, cfg)
	eventually(t, 10*time.Second, "all four records done", func() bool { return committedOffsets(t, brokers, "test-notifier-2") == 4 })
	if d := receiverMetric(t, n3, "vigia_notifier_notifications_deduplicated_total", "slack"); d < 1 {
		t.Errorf("deduplicated %v records, want at least the last one", d)
	}
	if ps, rs := slackParents(sl), slackReplies(sl); len(ps) != 1 || ps[0].Updates != 1 || len(rs) != 1 {
		t.Errorf("after re-reading: %d messages (updates %d), %d replies; want 1 (1), 1", len(ps), ps[0].Updates, len(rs))
	}
}

// TestNotifierReceiverDownThenUp: with Slack and Alertmanager both down,
// the notifier retries and does not commit past the record; once they are
// back, each gets the alert once.
func TestNotifierReceiverDownThenUp(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	brokers := ing.Brokers()
	sl := slacktest.New(t)
	sl.AddChannel(testSlackChannel)
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, hook.URL())
	amName := "alertmanager:" + strings.TrimPrefix(am.URL(), "http://")
	n, base := startNotifier(t, notifierConfig(t, brokers, sl.APIURL(), am.URL()))

	sl.SetDown(true)
	am.Stop()
	now := time.Now()
	firing := alertRecord(alert.StateFiring, now, now)
	publishAlerts(t, brokers, firing)
	eventually(t, 10*time.Second, "failed attempts on both receivers", func() bool {
		return receiverMetric(t, n, "vigia_notifier_notifications_failed_total", "slack", "reason", "unreachable") >= 2 &&
			receiverMetric(t, n, "vigia_notifier_notifications_failed_total", amName, "reason", "unreachable") >= 2
	})
	if committed := committedOffsets(t, brokers, "test-notifier"); committed > 0 {
		t.Errorf("offsets committed (%d records) while no receiver had the alert", committed)
	}
	resp, err := http.Get(base + "/api/v1/receivers")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Receivers []receiverStatus }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(body.Receivers) != 2 {
		t.Errorf("receivers API: %+v", body.Receivers)
	}

	sl.SetDown(false)
	am.Restart()
	hook.WaitForAlert(t, 20*time.Second, "firing", firing.Labels)
	eventually(t, 10*time.Second, "the Slack message", func() bool { return len(slackParents(sl)) == 1 })
	eventually(t, 5*time.Second, "offset committed after delivery", func() bool {
		return committedOffsets(t, brokers, "test-notifier") == 1
	})
	time.Sleep(time.Second) // retries in flight would land here
	if ps := slackParents(sl); len(ps) != 1 {
		t.Errorf("Slack got %d messages, want 1", len(ps))
	}
}

// committedOffsets sums the offsets the group committed on the alerts
// topic: the number of records it is done with.
func committedOffsets(t *testing.T, brokers []string, group string) int64 {
	t.Helper()
	return committedOffsetsOf(t, brokers, group, "vigia.alerts")
}

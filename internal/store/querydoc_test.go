package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigia/internal/store"
	_ "vigia/internal/store/chdb"
)

// The documented SQL (docs/queries.md), the Grafana dashboard
// (deploy/grafana) and the cluster DDL (deploy/clickhouse) are checked
// here against embedded chDB, on a small dataset whose numbers are known.

// Dataset: one WABA, numbers A and B, templates promo_julho (marketing)
// and codigo_acesso (authentication). All times are offsets from base, a
// whole hour two hours ago, so that every event falls in one hour and one
// day, and inside every "last day" window of the queries.
const (
	wabaID  = "102290129340398"
	numberA = "106540352242922"
	numberB = "106540352242923"
	promo   = "promo_julho"
	codigo  = "codigo_acesso"
	fpDrop  = "3f1c0a5be2d94e71" // DeliveryRateDrop on B: fires, a failover, resolves
	fpLat   = "8a2e6d0c4b1f9357" // DeliveryLatencyRising on A: still firing
	fpOpt   = "c0ffee0123456789" // OptOutSpike: pending, then inactive
)

var display = map[string]string{numberA: "+55 11 4000-0001", numberB: "+55 11 4000-0002"}

// ev is one row of events, with the columns the queries read.
type ev struct {
	kind, field, number, msg, status string
	at                               time.Duration
	code                             int
	class, title                     string
	template, useCase                string
	inboundType, context             string
	optOut, optOutCategory           string
	resumed                          bool
	quality, limit, oldLimit         string
}

var eventCols = []string{"id", "kind", "channel", "source", "field", "event_time", "receive_time",
	"waba_id", "phone_number_id", "display_phone_number", "message_id", "status",
	"recipient", "recipient_country", "recipient_id_kind",
	"error_code", "error_class", "error_title", "template", "use_case",
	"inbound_type", "inbound_context_message_id", "opt_out_source", "opt_out_category", "opt_out_resumed",
	"quality_event", "quality_current_limit", "quality_old_limit", "kafka_partition", "kafka_offset"}

func (e ev) id() string {
	return fmt.Sprintf("%x", []byte(e.kind+"|"+e.msg+"|"+e.status+"|"+e.number+"|"+e.at.String()))
}

func appendEvent(v *store.Values, base time.Time, e ev, offset int64) {
	t := base.Add(e.at)
	v.Begin().Str(e.id()).Str(e.kind).Str("whatsapp").Str("meta").Str(e.field).Time(t).Time(t.Add(800 * time.Millisecond)).
		Str(wabaID).Str(e.number).Str(display[e.number]).Str(e.msg).Str(e.status).
		Str(fmt.Sprintf("%032x", len(e.msg)*7919+int(e.at/time.Second))).Str("55").Str("phone").
		Int(int64(e.code)).Str(e.class).Str(e.title).Str(e.template).Str(e.useCase).
		Str(e.inboundType).Str(e.context).Str(e.optOut).Str(e.optOutCategory).Bool(e.resumed).
		Str(e.quality).Str(e.limit).Str(e.oldLimit).Int(0).Int(offset).End()
}

func status(number, msg, st string, at time.Duration, template string) ev {
	uc := "marketing"
	if template == codigo {
		uc = "authentication"
	}
	return ev{kind: "status", field: "messages", number: number, msg: msg, status: st, at: at, template: template, useCase: uc}
}

func failed(number, msg string, at time.Duration, template string, code int, class, title string) ev {
	e := status(number, msg, "failed", at, template)
	e.code, e.class, e.title = code, class, title
	return e
}

const sec = time.Second

// dataset returns the events of the first batch and of a second batch
// that repeats one status (Meta delivering a webhook twice).
func dataset() (first, second []ev) {
	// A, first minute: 10 sent, 8 delivered (latency 1..4 s and 6..9 s),
	// 4 read, 2 failed.
	for i := range 10 {
		tpl := promo
		if i >= 6 {
			tpl = codigo
		}
		msg := fmt.Sprintf("wamid.A%02d", i+1)
		sentAt := time.Duration(3*i) * sec
		first = append(first, status(numberA, msg, "sent", sentAt, tpl))
		switch i {
		case 4:
			first = append(first, failed(numberA, msg, 40*sec, tpl, 131049, "marketing_cap",
				"This message was not delivered to maintain healthy ecosystem engagement."))
		case 9:
			first = append(first, failed(numberA, msg, 40*sec, tpl, 131026, "undeliverable", "Message undeliverable"))
		default:
			first = append(first, status(numberA, msg, "delivered", sentAt+time.Duration(i+1)*sec, tpl))
		}
		if i == 0 || i == 1 || i == 2 || i == 6 {
			first = append(first, status(numberA, msg, "read", 45*sec+time.Duration(i)*sec, tpl))
		}
	}
	// A, second minute: 4 sent, 4 delivered after 1 s.
	for i := range 4 {
		msg := fmt.Sprintf("wamid.A%02d", 11+i)
		at := 60*sec + time.Duration(2*i)*sec
		first = append(first, status(numberA, msg, "sent", at, codigo), status(numberA, msg, "delivered", at+sec, codigo))
	}
	// B, first minute: 6 sent, 2 delivered (10 s, 20 s), 4 failed, one of
	// them an opt-out (131050).
	for i := range 6 {
		msg := fmt.Sprintf("wamid.B%02d", i+1)
		first = append(first, status(numberB, msg, "sent", time.Duration(5*i)*sec, promo))
	}
	first = append(first,
		status(numberB, "wamid.B01", "delivered", 10*sec, promo),
		status(numberB, "wamid.B02", "delivered", 25*sec, promo),
		failed(numberB, "wamid.B03", 50*sec, promo, 130429, "throttle", "Rate limit hit"),
		failed(numberB, "wamid.B04", 50*sec, promo, 130429, "throttle", "Rate limit hit"),
		failed(numberB, "wamid.B05", 50*sec, promo, 131048, "spam", "Spam rate limit hit"))
	optOut131050 := failed(numberB, "wamid.B06", 50*sec, promo, 131050, "opted_out",
		"Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business")
	optOut131050.optOut, optOut131050.optOutCategory = "error_131050", "marketing_messages"
	first = append(first, optOut131050)
	// Quality: A upgraded an hour before, then downgraded; B onboarded,
	// then flagged (no limit named).
	first = append(first,
		ev{kind: "phone_quality", field: "phone_number_quality_update", number: numberA, at: -time.Hour,
			quality: "UPGRADE", limit: "TIER_10K", oldLimit: "TIER_1K"},
		ev{kind: "phone_quality", field: "phone_number_quality_update", number: numberA, at: 10 * time.Minute,
			quality: "DOWNGRADE", limit: "TIER_1K", oldLimit: "TIER_10K"},
		ev{kind: "phone_quality", field: "phone_number_quality_update", number: numberB, at: -time.Hour,
			quality: "ONBOARDING", limit: "TIER_250"},
		ev{kind: "phone_quality", field: "phone_number_quality_update", number: numberB, at: 12 * time.Minute,
			quality: "FLAGGED"})

	// Second batch: the delivered status of A01 again, a keyword opt-out
	// replying to A02 (promo), a marketing opt-out and its resume, and a
	// plain reply.
	second = append(second,
		status(numberA, "wamid.A01", "delivered", 1*sec, promo),
		ev{kind: "inbound", field: "messages", number: numberA, msg: "wamid.IN1", at: 5 * time.Minute,
			inboundType: "text", context: "wamid.A02", optOut: "keyword"},
		ev{kind: "user_preference", field: "user_preferences", number: numberA, at: 6 * time.Minute,
			optOut: "user_preferences", optOutCategory: "marketing_messages"},
		ev{kind: "user_preference", field: "user_preferences", number: numberA, at: 7 * time.Minute,
			optOut: "user_preferences", optOutCategory: "marketing_messages", resumed: true},
		ev{kind: "inbound", field: "messages", number: numberA, msg: "wamid.IN2", at: 8 * time.Minute,
			inboundType: "text", context: "wamid.A03"})
	return first, second
}

var alertCols = []string{"fingerprint", "alertname", "rule_group", "rule", "state", "labels", "annotations",
	"values", "baseline", "active_at", "fired_at", "resolved_at", "eval_time", "actions", "kafka_partition", "kafka_offset"}

var actionCols = []string{"id", "time", "actor", "actor_kind", "action", "use_case", "target", "reason",
	"alert_fingerprint", "occurrence", "before", "after", "dry_run", "kafka_partition", "kafka_offset"}

func insertDataset(t *testing.T, s *store.Store, base time.Time) {
	t.Helper()
	ctx := context.Background()
	first, second := dataset()
	off := int64(0)
	for i, batch := range [][]ev{first, second} {
		v := store.NewValues(eventCols...)
		for _, e := range batch {
			appendEvent(v, base, e, off)
			off++
		}
		if err := s.Insert(ctx, "events", fmt.Sprintf("events:0:batch%d", i), v); err != nil {
			t.Fatal(err)
		}
	}

	at := func(d time.Duration) *time.Time { x := base.Add(d); return &x }
	alert := func(v *store.Values, fp, name, group, state string, labels map[string]string, summary string,
		active time.Duration, fired, resolved *time.Time, eval time.Duration, offset int64) {
		keys := []string{}
		for k := range labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		v.Begin().Str(fp).Str(name).Str(group).Str("rules/"+group+".yaml:9").Str(state).
			Map(labels, keys).Map(map[string]string{"summary": summary}, []string{"summary"}).
			Str(`{"delivery_rate":0.33,"attempts":600}`).Str("").
			Time(base.Add(active)).NullTime(fired).NullTime(resolved).Time(base.Add(eval)).
			Str("").Int(1).Int(offset).End()
	}
	drop := map[string]string{"alertname": "DeliveryRateDrop", "phone_number": numberB, "severity": "critical"}
	lat := map[string]string{"alertname": "DeliveryLatencyRising", "phone_number": numberA, "severity": "warning"}
	opt := map[string]string{"alertname": "OptOutSpike", "template": promo, "severity": "warning"}
	v := store.NewValues(alertCols...)
	alert(v, fpDrop, "DeliveryRateDrop", "delivery", "pending", drop, "Delivery on B fell to 33%", 2*time.Minute, nil, nil, 2*time.Minute, 0)
	alert(v, fpDrop, "DeliveryRateDrop", "delivery", "firing", drop, "Delivery on B fell to 33%", 2*time.Minute, at(4*time.Minute), nil, 4*time.Minute, 1)
	alert(v, fpLat, "DeliveryLatencyRising", "latency", "pending", lat, "p90 latency on A is 9s", 3*time.Minute, nil, nil, 3*time.Minute, 2)
	alert(v, fpOpt, "OptOutSpike", "optout", "pending", opt, "Opt-outs of promo_julho", 6*time.Minute, nil, nil, 6*time.Minute, 3)
	alert(v, fpOpt, "OptOutSpike", "optout", "inactive", opt, "Opt-outs of promo_julho", 6*time.Minute, nil, nil, 7*time.Minute, 4)
	alert(v, fpLat, "DeliveryLatencyRising", "latency", "firing", lat, "p90 latency on A is 9s", 3*time.Minute, at(8*time.Minute), nil, 8*time.Minute, 5)
	alert(v, fpDrop, "DeliveryRateDrop", "delivery", "resolved", drop, "Delivery on B is back to 95%", 2*time.Minute, at(4*time.Minute), at(19*time.Minute), 19*time.Minute, 6)
	if err := s.Insert(ctx, "alerts", "", v); err != nil {
		t.Fatal(err)
	}

	occurrence := fpDrop + "-" + strconv.FormatInt(base.Add(2*time.Minute).UnixNano(), 10)
	v = store.NewValues(actionCols...)
	v.Begin().Str("act-1").Time(base.Add(4*time.Minute + 30*time.Second)).Str("DeliveryRateDrop").Str("rule").Str("failover").
		Str("marketing").Str(numberB).Str("DeliveryRateDrop firing: delivery_rate 0.33 below 0.8 of the previous hour").
		Str(fpDrop).Str(occurrence).Str(`{"phone_number":"` + numberB + `"}`).Str(`{"phone_number":"` + numberA + `"}`).
		Bool(false).Int(0).Int(0).End()
	v.Begin().Str("act-2").Time(base.Add(9 * time.Minute)).Str("DeliveryLatencyRising").Str("rule").Str("throttle").
		Str("authentication").Str(numberA).Str("DeliveryLatencyRising firing").
		Str(fpLat).Str(fpLat + "-" + strconv.FormatInt(base.Add(3*time.Minute).UnixNano(), 10)).
		Str(`{"rate":""}`).Str(`{"rate":"40/s"}`).Bool(true).Int(0).Int(1).End()
	v.Begin().Str("act-3").Time(base.Add(30 * time.Minute)).Str("ana@example.com").Str("operator").Str("restore").
		Str("marketing").Str(numberB).Str("delivery on B back to normal").
		Str("").Str("").Str(`{"phone_number":"` + numberA + `"}`).Str(`{"phone_number":"` + numberB + `"}`).
		Bool(false).Int(0).Int(2).End()
	if err := s.Insert(ctx, "actions", "", v); err != nil {
		t.Fatal(err)
	}
}

// openStore opens a migrated store in a fresh directory, closed at the
// end of the test (chDB holds one data path per process).
func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx, store.Retention{Events: 90 * 24 * time.Hour, Recipient: 30 * 24 * time.Hour,
		Rollups: 400 * 24 * time.Hour, Alerts: 400 * 24 * time.Hour, Raw: 72 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	return s
}

// result is a query's rows by column name.
type result struct {
	cols []string
	rows [][]string
}

func (r result) get(row []string, col string) string {
	for i, c := range r.cols {
		if c == col {
			return row[i]
		}
	}
	panic("no column " + col)
}

// find returns the rows whose columns have the given values (pairs of
// column name and value).
func (r result) find(kv ...string) [][]string {
	var out [][]string
rows:
	for _, row := range r.rows {
		for i := 0; i+1 < len(kv); i += 2 {
			if r.get(row, kv[i]) != kv[i+1] {
				continue rows
			}
		}
		out = append(out, row)
	}
	return out
}

func query(t *testing.T, s *store.Store, q string) (result, error) {
	t.Helper()
	ctx := context.Background()
	var r result
	if err := s.Select(ctx, "DESCRIBE ("+q+")", func(f [][]byte) error {
		r.cols = append(r.cols, string(f[0]))
		return nil
	}); err != nil {
		return r, err
	}
	err := s.Select(ctx, q, func(f [][]byte) error {
		row := make([]string, len(f))
		for i := range f {
			row[i] = string(f[i])
		}
		r.rows = append(r.rows, row)
		return nil
	})
	return r, err
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sqlBlocks returns the ```sql blocks of a markdown text, with the title
// of the section each is in.
func sqlBlocks(md string) (blocks, titles []string) {
	var cur []string
	in, title := false, ""
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.HasPrefix(line, "#"):
			title = strings.TrimSpace(strings.TrimLeft(line, "#"))
		case !in && strings.TrimSpace(line) == "```sql":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks, titles = append(blocks, strings.Join(cur, "\n")), append(titles, title)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, titles
}

// pick returns the one block that contains every needle.
func pick(t *testing.T, blocks []string, needles ...string) string {
	t.Helper()
	var found []string
	for _, b := range blocks {
		all := true
		for _, n := range needles {
			all = all && strings.Contains(b, n)
		}
		if all {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d documented queries contain %q, want 1", len(found), needles)
	}
	return found[0]
}

func TestDocumentedQueries(t *testing.T) {
	s := openStore(t)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	insertDataset(t, s, base)

	blocks, titles := sqlBlocks(repoFile(t, "docs/queries.md"))
	if len(blocks) < 10 {
		t.Fatalf("docs/queries.md has %d sql blocks, want at least 10", len(blocks))
	}
	results := map[string]result{}
	for i, q := range blocks {
		if !strings.Contains(q, "vigia.") {
			t.Errorf("query %d (%s) does not name the vigia database", i+1, titles[i])
		}
		r, err := query(t, s, q)
		if err != nil {
			t.Errorf("query %d (%s) fails: %v\n%s", i+1, titles[i], err, q)
			continue
		}
		if len(r.rows) == 0 {
			t.Errorf("query %d (%s) returns no row on the test dataset\n%s", i+1, titles[i], q)
		}
		results[q] = r
	}
	if t.Failed() {
		return
	}
	// base is a whole hour: the first minute and the hour print alike.
	minute0, hour0, day0 := base.Format(time.DateTime), base.Format(time.DateTime), base.Format(time.DateOnly)

	expect := func(name string, r result, kv []string, col, want string) {
		t.Helper()
		rows := r.find(kv...)
		if len(rows) != 1 {
			t.Errorf("%s: %d rows with %v, want 1 (all rows: %q)", name, len(rows), kv, r.rows)
			return
		}
		if got := r.get(rows[0], col); got != want {
			t.Errorf("%s: %s = %s for %v, want %s", name, col, got, kv, want)
		}
	}

	// The rollups count A01's delivered status twice (it came again in
	// another batch); events FINAL counts it once.
	rollup := results[pick(t, blocks, "FROM vigia.rollup_minute", "delivery_rate", "GROUP BY minute")]
	a0 := []string{"minute", minute0, "phone_number_id", numberA}
	expect("rollup delivery rate", rollup, a0, "sends", "10")
	expect("rollup delivery rate", rollup, a0, "deliveries", "9")
	expect("rollup delivery rate", rollup, a0, "delivery_rate", "0.9")
	expect("rollup delivery rate", rollup, []string{"minute", minute0, "phone_number_id", numberB}, "delivery_rate", "0.3333")

	exact := results[pick(t, blocks, "FROM vigia.events FINAL", "delivery_rate", "GROUP BY minute")]
	expect("exact delivery rate", exact, a0, "deliveries", "8")
	expect("exact delivery rate", exact, a0, "failures", "2")
	expect("exact delivery rate", exact, a0, "delivery_rate", "0.8")

	perMessage := results[pick(t, blocks, "uniqExactIf(message_id")]
	expect("per-message delivery rate", perMessage, []string{"hour", hour0, "phone_number_id", numberA}, "attempts", "14")
	expect("per-message delivery rate", perMessage, []string{"hour", hour0, "phone_number_id", numberA}, "reached", "12")
	expect("per-message delivery rate", perMessage, []string{"hour", hour0, "phone_number_id", numberB}, "delivery_rate", "0.3333")

	latency := results[pick(t, blocks, "latency_s")]
	expect("latency", latency, []string{"phone_number_id", numberA}, "messages", "12")
	expect("latency", latency, []string{"phone_number_id", numberA}, "max_s", "9")
	expect("latency", latency, []string{"phone_number_id", numberB}, "max_s", "20")

	optOuts := results[pick(t, blocks, "opt_out_rate")]
	expect("opt-outs", optOuts, []string{"day", day0, "template", promo}, "opt_outs", "2") // keyword reply to A02 + 131050
	expect("opt-outs", optOuts, []string{"day", day0, "template", "(unattributed)"}, "opt_outs", "1")

	quality := results[pick(t, blocks, "messaging_tier")]
	expect("quality", quality, []string{"number", numberA}, "last_quality_event", "DOWNGRADE")
	expect("quality", quality, []string{"number", numberA}, "messaging_tier", "TIER_1K")
	expect("quality", quality, []string{"number", numberB}, "last_quality_event", "FLAGGED")
	expect("quality", quality, []string{"number", numberB}, "messaging_tier", "TIER_250")

	history := results[pick(t, blocks, "avg_firing_s")]
	expect("alert history", history, []string{"alertname", "DeliveryRateDrop"}, "avg_firing_s", "900")
	expect("alert history", history, []string{"alertname", "DeliveryLatencyRising"}, "resolved", "0")
	if rows := history.find("alertname", "OptOutSpike"); len(rows) != 0 {
		t.Errorf("alert history counts OptOutSpike, which never fired: %q", rows)
	}

	firing := results[pick(t, blocks, "HAVING last_state = 'firing'")]
	if len(firing.rows) != 1 || firing.get(firing.rows[0], "alertname") != "DeliveryLatencyRising" {
		t.Errorf("firing alerts: %q, want DeliveryLatencyRising only", firing.rows)
	}

	// The failover happened at 4m30s, the alert resolved at 19m.
	recover := results[pick(t, blocks, "seconds_to_recover")]
	if len(recover.rows) != 1 {
		t.Fatalf("time to recover: %q, want one failover", recover.rows)
	}
	expect("time to recover", recover, []string{"target", numberB}, "seconds_to_recover", "870")
	expect("time to recover", recover, []string{"target", numberB}, "alertname", "DeliveryRateDrop")
}

// grafanaMacros expands the ClickHouse data source plugin's macros and
// the dashboard's variables the way the plugin does, for a range and a
// selection of every WABA and number.
func grafanaMacros(t *testing.T, q string, from, to time.Time) string {
	t.Helper()
	// $__conditionalAll(condition, $var): the condition, since the test
	// selects values explicitly.
	for {
		i := strings.Index(q, "$__conditionalAll(")
		if i < 0 {
			break
		}
		start := i + len("$__conditionalAll(")
		j, depth := start, 1
		for ; j < len(q) && depth > 0; j++ {
			switch q[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		inner := q[start : j-1]
		k := strings.LastIndex(inner, ",")
		if k < 0 {
			t.Fatalf("bad $__conditionalAll in %s", q)
		}
		q = q[:i] + inner[:k] + q[j:]
	}
	fn := regexp.MustCompile(`\$__(timeFilter|timeInterval)\(([^()]*)\)`)
	q = fn.ReplaceAllStringFunc(q, func(m string) string {
		p := fn.FindStringSubmatch(m)
		col := strings.TrimSpace(p[2])
		if p[1] == "timeFilter" {
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", col, from.Unix(), col, to.Unix())
		}
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL 60 second)", col)
	})
	q = strings.NewReplacer(
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", from.Unix()),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", to.Unix()),
		"$__interval_s", "60",
		"${waba:singlequote}", "'"+wabaID+"'",
		"${phone_number:singlequote}", "'"+numberA+"','"+numberB+"'",
	).Replace(q)
	if strings.Contains(q, "$") {
		t.Errorf("unexpanded macro or variable left in:\n%s", q)
	}
	return q
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int        `json:"id"`
		Title      string     `json:"title"`
		Type       string     `json:"type"`
		Datasource *grafanaDS `json:"datasource"`
		Targets    []struct {
			RefID      string     `json:"refId"`
			Datasource *grafanaDS `json:"datasource"`
			RawSQL     string     `json:"rawSql"`
			Format     *int       `json:"format"`
		} `json:"targets"`
	} `json:"panels"`
}

func checkDS(t *testing.T, what string, ds *grafanaDS) {
	t.Helper()
	if ds == nil || ds.Type != "grafana-clickhouse-datasource" || ds.UID != "${DS_CLICKHOUSE}" {
		t.Errorf("%s: datasource %+v, want grafana-clickhouse-datasource with uid ${DS_CLICKHOUSE}", what, ds)
	}
}

// The dashboard is valid JSON, every panel and query uses the templated
// ClickHouse data source and has SQL, and every query, macros expanded,
// runs on the test dataset and returns rows.
func TestDocumentedQueriesDashboard(t *testing.T) {
	var d grafanaDashboard
	if err := json.Unmarshal([]byte(repoFile(t, "deploy/grafana/vigia-dashboard.json")), &d); err != nil {
		t.Fatalf("deploy/grafana/vigia-dashboard.json: %v", err)
	}
	s := openStore(t)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	insertDataset(t, s, base)
	from, to := base.Add(-time.Hour), time.Now().UTC()

	run := func(what, q string) {
		t.Helper()
		r, err := query(t, s, grafanaMacros(t, q, from, to))
		if err != nil {
			t.Errorf("%s: %v\n%s", what, err, q)
		} else if len(r.rows) == 0 {
			t.Errorf("%s returns no row on the test dataset\n%s", what, q)
		}
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		checkDS(t, "variable "+v.Name, v.Datasource)
		var sql string
		if err := json.Unmarshal(v.Query, &sql); err != nil {
			t.Errorf("variable %s: query is not an SQL string: %s", v.Name, v.Query)
			continue
		}
		if !strings.Contains(sql, "vigia.rollup_minute") {
			t.Errorf("variable %s does not read rollup_minute: %s", v.Name, sql)
		}
		run("variable "+v.Name, sql)
	}
	for _, name := range []string{"DS_CLICKHOUSE", "waba", "phone_number"} {
		if !vars[name] {
			t.Errorf("no template variable %s", name)
		}
	}
	if len(d.Panels) < 6 {
		t.Errorf("%d panels, want at least 6", len(d.Panels))
	}
	for _, p := range d.Panels {
		what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		checkDS(t, what, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s has no query", what)
		}
		for _, tg := range p.Targets {
			checkDS(t, what+" query "+tg.RefID, tg.Datasource)
			if strings.TrimSpace(tg.RawSQL) == "" {
				t.Errorf("%s query %s has no rawSql", what, tg.RefID)
				continue
			}
			if tg.Format == nil || (p.Type == "timeseries") != (*tg.Format == 0) {
				t.Errorf("%s query %s: format %v does not fit a %s panel (0 time series, 1 table)", what, tg.RefID, tg.Format, p.Type)
			}
			run(what, tg.RawSQL)
		}
	}
}

// TestClusterDDLParses checks deploy/clickhouse/cluster.sql as far as
// chDB can: every statement parses exactly as written (EXPLAIN AST); then,
// with ON CLUSTER removed, the replicated engines swapped for their
// single-node forms and the Distributed tables for Merge tables (chDB has
// no cluster), every statement runs; each local table and view is then the
// single-node migration's, up to names and settings; and the sharding
// keys are valid expressions over their tables.
func TestClusterDDLParses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t) // the single-node schema, in database vigia
	const db = "vigia_cluster"
	params := map[string]string{"db": db, "events_ttl_days": "90", "recipient_ttl_days": "30",
		"rollup_ttl_days": "400", "alerts_ttl_days": "400", "raw_ttl_days": "3"}
	stmts, err := store.Migration{Version: 1, Name: "cluster", SQL: repoFile(t, "deploy/clickhouse/cluster.sql")}.Statements(params)
	if err != nil {
		t.Fatal(err)
	}

	onCluster := regexp.MustCompile(`\s+ON CLUSTER '\{cluster\}'`)
	replicated := regexp.MustCompile(`Replicated(\w*MergeTree)\('/clickhouse/tables/[^']*', '\{replica\}'\)`)
	distributed := regexp.MustCompile(`Distributed\('\{cluster\}', (\w+), (\w+), (.+)\)$`)
	name := regexp.MustCompile(`^(?:CREATE (?:TABLE|MATERIALIZED VIEW|DATABASE) IF NOT EXISTS|INSERT INTO) ([\w.]+)`)

	var localTables, views []string
	distributedOf := map[string]string{}
	for _, st := range stmts {
		if err := s.Exec(ctx, "EXPLAIN AST "+st); err != nil {
			t.Errorf("does not parse: %v\n%s", err, st)
			continue
		}
		if !strings.HasPrefix(st, "INSERT") && !onCluster.MatchString(st) {
			t.Errorf("statement without ON CLUSTER '{cluster}':\n%s", st)
		}
		x := onCluster.ReplaceAllString(st, "")
		x = replicated.ReplaceAllString(x, "$1")
		if m := distributed.FindStringSubmatch(x); m != nil {
			// The sharding key must be a valid expression of the local table.
			if err := s.Exec(ctx, fmt.Sprintf("SELECT %s FROM %s.%s LIMIT 0", m[3], m[1], m[2])); err != nil {
				t.Errorf("sharding key %s of %s: %v", m[3], m[2], err)
			}
			distributedOf[m[2]] = name.FindStringSubmatch(x)[1]
			x = distributed.ReplaceAllString(x, fmt.Sprintf("Merge(%s, '^%s$$')", m[1], m[2]))
		}
		if strings.Contains(x, "Replicated") || strings.Contains(x, "{") {
			t.Errorf("left after swapping the engines:\n%s", x)
		}
		if err := s.Exec(ctx, x); err != nil {
			t.Errorf("fails on chDB: %v\n%s", err, x)
			continue
		}
		if m := name.FindStringSubmatch(x); m != nil {
			switch {
			case strings.Contains(x, "MATERIALIZED VIEW"):
				views = append(views, m[1])
			case strings.HasSuffix(m[1], "_local"):
				localTables = append(localTables, m[1])
			}
		}
	}
	if t.Failed() {
		return
	}

	// Every single-node table and view has its cluster counterpart, with
	// the same definition once names and settings are set aside.
	createQuery := func(db, table string) string {
		var q string
		err := s.Select(ctx, "SELECT create_table_query FROM system.tables WHERE database = "+store.Quote(db)+
			" AND name = "+store.Quote(table), func(f [][]byte) error { q = string(f[0]); return nil })
		if err != nil || q == "" {
			t.Errorf("no %s.%s (%v)", db, table, err)
		}
		return q
	}
	normalize := func(q string) string {
		q = strings.ReplaceAll(q, db+".", "vigia.")
		q = strings.ReplaceAll(q, "_local", "")
		if i := strings.LastIndex(q, " SETTINGS "); i >= 0 {
			q = q[:i]
		}
		return q
	}
	var single []string
	if err := s.Select(ctx, "SELECT name FROM system.tables WHERE database = 'vigia' ORDER BY name", func(f [][]byte) error {
		single = append(single, string(f[0]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, table := range single {
		cluster := table + "_local"
		if strings.HasSuffix(table, "_mv") || table == "schema_migrations" {
			cluster = table
		} else if distributedOf[cluster] != db+"."+table {
			t.Errorf("no Distributed table %s.%s over %s", db, table, cluster)
		}
		want, got := normalize(createQuery("vigia", table)), normalize(createQuery(db, cluster))
		if want != got {
			t.Errorf("%s differs from the single-node %s:\ncluster: %s\nsingle:  %s", cluster, table, got, want)
		}
	}
	if n := len(localTables) + len(views) + 1; n != len(single) {
		t.Errorf("cluster.sql has %d local tables, %d views and schema_migrations; the migrations %d tables and views",
			len(localTables), len(views), len(single))
	}

	// The versions recorded are every migration's, so that Vigia applies
	// none of them.
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, m := range ms {
		want = append(want, fmt.Sprintf("%d %s", m.Version, m.Name))
	}
	if err := s.Select(ctx, "SELECT version, name FROM "+db+".schema_migrations ORDER BY version", func(f [][]byte) error {
		got = append(got, string(f[0])+" "+string(f[1]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("cluster.sql records migrations %q, the embedded migrations are %q", got, want)
	}
}

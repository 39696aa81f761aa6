// Package storetest is the store's contract: one suite of tests that every
// engine must pass, run against embedded chDB in CI (store/chdb) and
// against a ClickHouse server whenever CLICKHOUSE_ADDR is set
// (store/server).
package storetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/event"
	"vigia/internal/meta"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
	"vigia/internal/store"
)

// Retention is what the suite migrates with: events kept 90 days.
var Retention = store.Retention{Events: 90 * 24 * time.Hour, Recipient: 30 * 24 * time.Hour,
	Rollups: 400 * 24 * time.Hour, Alerts: 400 * 24 * time.Hour, Raw: 72 * time.Hour}

// Open opens a fresh, migrated store for one test.
type Open func(t *testing.T) *store.Store

// Run runs the contract against the engine open gives.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, *store.Store)
	}{
		{"MigrateIsIdempotent", testMigrate},
		{"EventsRoundTrip", testEventsRoundTrip},
		{"RetriedBatchIsDeduplicated", testRetriedBatch},
		{"DuplicateEventsCollapse", testDuplicateEvents},
		{"Progress", testProgress},
		{"AlertsRoundTrip", testAlerts},
		{"QuotingSurvives", testQuoting},
		{"TextRowsMatchBlocks", testTextMatchesBlocks},
		{"OldEventsExpire", testTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// SampleEvents normalizes the sample Meta payloads of internal/meta: one
// of each webhook field, as ingest would publish them.
func SampleEvents(t testing.TB) []event.Event {
	t.Helper()
	p, err := pseudo.New([]byte("storetest-pseudonym-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	n := meta.NewNormalizer(p, meta.NewDirectory(nil, 100), optout.New(nil, nil))
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "internal/meta/testdata/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("sample payloads: %v", err)
	}
	received := time.Now().UTC().Truncate(time.Millisecond)
	var out []event.Event
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := n.Normalize(body, received)
		if err != nil {
			continue // the deliberately malformed samples
		}
		out = append(out, res.Events...)
	}
	// Stored times are milliseconds; recent event times so that no TTL
	// applies.
	for i := range out {
		out[i].EventTime = received.Add(-time.Duration(i) * time.Second)
		out[i].ReceiveTime = received
	}
	return out
}

func repoRoot(t testing.TB) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func insertEvents(t *testing.T, s *store.Store, token string, evs []event.Event, firstOffset int64) {
	t.Helper()
	v := store.NewValues(store.EventColumns...)
	for i := range evs {
		store.AppendEvent(v, &evs[i], store.Origin{Partition: 0, Offset: firstOffset + int64(i)})
	}
	if err := s.Insert(context.Background(), "events", token, v); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, s *store.Store, q string) int64 {
	t.Helper()
	n, err := s.Count(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func testMigrate(t *testing.T, s *store.Store) {
	applied, err := s.Migrate(context.Background(), Retention)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate: applied %v, err %v; want nothing", applied, err)
	}
	ms, _ := store.Migrations()
	if n := count(t, s, "SELECT count() FROM "+s.Table("schema_migrations")); n != int64(len(ms)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	// A changed retention is applied at start, without a migration.
	r := Retention
	r.Events = 10 * 24 * time.Hour
	if _, err := s.Migrate(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var ddl string
	_ = s.Select(context.Background(), "SELECT create_table_query FROM system.tables WHERE database = "+
		store.Quote(s.Database())+" AND name = 'events'", func(f [][]byte) error { ddl = string(f[0]); return nil })
	if !strings.Contains(ddl, "toIntervalDay(10)") {
		t.Errorf("events TTL not updated: %s", ddl)
	}
}

func testEventsRoundTrip(t *testing.T, s *store.Store) {
	evs := SampleEvents(t)
	insertEvents(t, s, "", evs, 0)
	from, to := evs[len(evs)-1].EventTime, evs[0].EventTime.Add(time.Millisecond)
	var got []event.Event
	if err := s.Events(context.Background(), from, to, func(b []event.Event) error {
		got = append(got, b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("read %d events, wrote %d", len(got), len(evs))
	}
	byID := map[string]event.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	for _, g := range got {
		w := byID[g.ID]
		w.EventTime, w.ReceiveTime = w.EventTime.UTC(), w.ReceiveTime.UTC()
		if w.Conversation != nil && w.Conversation.ExpirationTime != nil {
			e := w.Conversation.ExpirationTime.UTC().Truncate(time.Millisecond)
			w.Conversation.ExpirationTime = &e
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("event %s (%s) changed on the way:\n got %+v\nwant %+v", g.ID, g.Kind, g, w)
		}
	}
	if n, _ := s.CountEvents(context.Background(), from, to); n != int64(len(evs)) {
		t.Errorf("CountEvents = %d, want %d", n, len(evs))
	}
}

// A batch inserted again with the same token (a retry after a timeout
// whose insert had in fact landed) is dropped, in the events and in the
// rollups the materialized view feeds.
func testRetriedBatch(t *testing.T, s *store.Store) {
	evs := SampleEvents(t)
	insertEvents(t, s, "events:0:0-99", evs, 0)
	insertEvents(t, s, "events:0:0-99", evs, 0)
	if n := count(t, s, "SELECT count() FROM "+s.Table("events")); n != int64(len(evs)) {
		t.Errorf("events: %d rows after a retried batch, want %d", n, len(evs))
	}
	if n := count(t, s, "SELECT sum(events) FROM "+s.Table("rollup_minute")); n != int64(len(evs)) {
		t.Errorf("rollups count %d events after a retried batch, want %d", n, len(evs))
	}
	optOuts := 0
	for _, e := range evs {
		if e.OptOut != nil && !e.OptOut.Resumed {
			optOuts++
		}
	}
	if optOuts == 0 {
		t.Fatal("the sample events hold no opt-out: the rollup check below would prove nothing")
	}
	if n := count(t, s, "SELECT sum(opt_outs) FROM "+s.Table("rollup_minute")); n != int64(optOuts) {
		t.Errorf("rollups count %d opt-outs, want %d", n, optOuts)
	}
}

// The same event in two different batches (Meta delivering a webhook
// twice) is one row for queries with FINAL.
func testDuplicateEvents(t *testing.T, s *store.Store) {
	evs := SampleEvents(t)
	insertEvents(t, s, "a", evs, 0)
	insertEvents(t, s, "b", evs, 1000)
	if n := count(t, s, "SELECT count() FROM "+s.Table("events")+" FINAL"); n != int64(len(evs)) {
		t.Errorf("events FINAL: %d rows, want %d", n, len(evs))
	}
}

func testProgress(t *testing.T, s *store.Store) {
	evs := SampleEvents(t)
	insertEvents(t, s, "", evs[:3], 40)
	insertEvents(t, s, "", evs[3:5], 90)
	p, err := s.Progress(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p["events"][0] != 91 {
		t.Errorf("progress %v, want events partition 0 at 91", p)
	}
}

func testAlerts(t *testing.T, s *store.Store) {
	at := time.Now().UTC().Truncate(time.Millisecond)
	labels := map[string]string{"alertname": "DeliveryRateDrop", "phone_number": "106540352242922", "severity": "critical"}
	a := &alert.Alert{SchemaVersion: 1, Fingerprint: alert.Fingerprint(labels), Name: "DeliveryRateDrop", Group: "delivery",
		Rule: "rules/delivery.yaml:9", State: alert.StateFiring, Labels: labels,
		Annotations: map[string]string{"summary": "it's 'quoted' and \\ back"}, ActiveAt: at, FiredAt: &at, EvalTime: at,
		Actions: []alert.Action{{Type: "failover", Params: map[string]string{"phone_number": "106540352242922"}}}}
	a.Values.DeliveryRate = 0.61
	v := store.NewValues(store.AlertColumns...)
	store.AppendAlert(v, a, store.Origin{Partition: 2, Offset: 7})
	store.AppendAlert(v, a, store.Origin{Partition: 2, Offset: 7})
	if err := s.Insert(context.Background(), "alerts", "", v); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.Select(context.Background(), "SELECT alertname, state, labels['phone_number'], annotations['summary'], "+
		"JSONExtractFloat(values, 'delivery_rate'), fired_at FROM "+s.Table("alerts")+" FINAL", func(f [][]byte) error {
		for _, x := range f {
			got = append(got, string(x))
		}
		return nil
	})
	want := []string{"DeliveryRateDrop", "firing", "106540352242922", "it's 'quoted' and \\ back", "0.61", at.Format("2006-01-02 15:04:05.000")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("alerts row %q (%v), want %q", got, err, want)
	}
}

// Strings with quotes, backslashes, tabs, newlines, NULs, emoji and
// invalid UTF-8 survive the VALUES text and the TabSeparated output.
func testQuoting(t *testing.T, s *store.Store) {
	ev := SampleEvents(t)[0]
	nasty := "a'b\\c\td\ne\r\x00f 🔥 \xff end"
	ev.MessageID = nasty
	insertEvents(t, s, "", []event.Event{ev}, 0)
	var got string
	_ = s.Select(context.Background(), "SELECT message_id FROM "+s.Table("events"), func(f [][]byte) error {
		got = string(f[0])
		return nil
	})
	if want := "a'b\\c\td\ne\r\x00f 🔥 \uFFFD end"; got != want {
		t.Errorf("message_id = %q, want %q", got, want)
	}
}

// Rows older than the events TTL are dropped as they are written.
func testTTL(t *testing.T, s *store.Store) {
	evs := SampleEvents(t)[:2]
	evs[0].EventTime = time.Now().Add(-100 * 24 * time.Hour)
	insertEvents(t, s, "", evs, 0)
	s.Exec(context.Background(), "OPTIMIZE TABLE "+s.Table("events")+" FINAL")
	if n := count(t, s, "SELECT count() FROM "+s.Table("events")); n != 1 {
		t.Errorf("%d rows after inserting one event older than the 90-day TTL and one new, want 1", n)
	}
}

// The same rows inserted through Insert (a Native block on chDB) and as
// the TabSeparated text of Values.TSV (what the server engine sends) read
// back the same, for every table the sink writes: the two renderings of
// Values agree on every column type (strings with escapes and invalid
// UTF-8, integers, times, NULL, maps).
func testTextMatchesBlocks(t *testing.T, s *store.Store) {
	ctx := context.Background()
	evs := SampleEvents(t)
	evs[0].MessageID = "a'b\\c\td\ne\r\x00f 🔥 \xff end"
	at := time.Now().UTC().Truncate(time.Millisecond)
	labels := map[string]string{"alertname": "X", "phone_number": "1", "tab": "a\tb", "quote": "it's"}
	firing := &alert.Alert{SchemaVersion: 1, Fingerprint: "f1", Name: "X", Group: "g", Rule: "r.yaml:1",
		State: alert.StateFiring, Labels: labels, Annotations: map[string]string{}, ActiveAt: at, FiredAt: &at, EvalTime: at}
	pending := *firing
	pending.State, pending.FiredAt = alert.StatePending, nil
	act := &action.Record{ID: "a1", Time: at, Actor: "op", ActorKind: "operator", Action: "switch", UseCase: "sales",
		Target: "PN1", Reason: "x\ny", Before: []byte(`{"a":1}`), After: []byte(`{"a":2}`), DryRun: true}

	tables := []struct {
		table string
		v     *store.Values
	}{
		{"events", store.NewValues(store.EventColumns...)},
		{"alerts", store.NewValues(store.AlertColumns...)},
		{"actions", store.NewValues(store.ActionColumns...)},
		{"raw_payloads", store.NewValues(store.RawColumns...)},
	}
	for i := range evs {
		store.AppendEvent(tables[0].v, &evs[i], store.Origin{Partition: 1, Offset: int64(i)})
	}
	store.AppendAlert(tables[1].v, firing, store.Origin{Partition: 1, Offset: 1})
	store.AppendAlert(tables[1].v, &pending, store.Origin{Partition: 1, Offset: 2})
	store.AppendAction(tables[2].v, act, store.Origin{Partition: 1, Offset: 1})
	store.AppendRaw(tables[3].v, at, "waba", map[string]string{"X-Hub-Signature-256": "sha256=ab", "Empty": ""},
		[]byte(`{"object":"whatsapp_business_account"}`), store.Origin{Partition: 1, Offset: 1})
	store.AppendRaw(tables[3].v, at, "waba", nil, []byte("not json\t"), store.Origin{Partition: 1, Offset: 2})

	for _, tc := range tables {
		text := tc.table + "_text"
		if err := s.Exec(ctx, "CREATE TABLE "+s.Table(text)+" AS "+s.Table(tc.table)); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, tc.table, "", tc.v); err != nil {
			t.Fatal(err)
		}
		q := "INSERT INTO " + s.Table(text) + " (" + strings.Join(tc.v.Columns(), ", ") + ") FORMAT TabSeparated\n" + string(tc.v.TSV())
		if err := s.Exec(ctx, q); err != nil {
			t.Fatalf("%s as text: %v", tc.table, err)
		}
		read := func(table string) []string {
			var rows []string
			err := s.Select(ctx, "SELECT * FROM "+s.Table(table)+" ORDER BY kafka_offset", func(f [][]byte) error {
				rows = append(rows, fmt.Sprintf("%q", f))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		blocks, texts := read(tc.table), read(text)
		if len(blocks) != tc.v.Rows() || !reflect.DeepEqual(blocks, texts) {
			t.Errorf("%s: %d rows from the insert, %d from the text; first differences:\n%s", tc.table, len(blocks), len(texts),
				firstDiff(blocks, texts))
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return "insert: " + x + "\ntext:   " + y
		}
	}
	return ""
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"vigia/internal/backtest"
	"vigia/internal/event"
	"vigia/internal/store"
	"vigia/internal/store/storetest"
)

func TestBacktestSubcommand(t *testing.T) {
	if code := run([]string{"backtest"}); code != 2 {
		t.Errorf("backtest without a range: exit %d, want 2", code)
	}
}

// TestBacktestFromTheStore: history stored in embedded ClickHouse (60
// throughput errors on one number within a minute, then quiet) replayed by
// `evaluator backtest` through the shipped rules: ThroughputErrors fires
// at the burst and resolves later, with its action; an empty range is an
// error that names it.
func TestBacktestFromTheStore(t *testing.T) {
	dir := t.TempDir()
	burst := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	st, err := store.Open(context.Background(), store.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background(), storetest.Retention); err != nil {
		t.Fatal(err)
	}
	v := store.NewValues(store.EventColumns...)
	add := func(i int, at time.Time, status string, code int) {
		ev := event.Event{SchemaVersion: 1, Kind: event.KindStatus, Channel: event.ChannelWhatsApp, Source: "meta",
			EventTime: at, ReceiveTime: at.Add(time.Second), WABAID: "W1", PhoneNumberID: "P1",
			MessageID: fmt.Sprintf("wamid.%d", i), Status: status}
		if code != 0 {
			ev.Error = &event.Error{Code: code, Class: "throughput"}
		}
		ev.ID = event.NewID(ev.MessageID, status)
		store.AppendEvent(v, &ev, store.Origin{Offset: int64(i)})
	}
	for i := range 60 {
		add(i, burst.Add(time.Duration(i)*time.Second), "failed", 130429)
	}
	for i := range 120 { // quiet traffic for the next 20 minutes
		add(1000+i, burst.Add(2*time.Minute+time.Duration(i)*10*time.Second), "sent", 0)
	}
	if err := st.Insert(context.Background(), "events", "", v); err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Setenv("VIGIA_CLICKHOUSE_PATH", dir)

	var out, errs bytes.Buffer
	args := []string{"--rules", "../../rules", "--from", "2026-11-20T09:50:00Z", "--to", "2026-11-20T10:30:00Z", "--json", "--progress=false"}
	if code := backtest.Main(context.Background(), args, openSource, &out, &errs); code != 0 {
		t.Fatalf("backtest: exit %d\n%s", code, errs.String())
	}
	var rep struct {
		Changes []struct {
			Alert   string            `json:"alertname"`
			State   string            `json:"state"`
			Labels  map[string]string `json:"labels"`
			Actions []json.RawMessage `json:"actions"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	states := map[string]int{}
	for _, c := range rep.Changes {
		if c.Alert == "ThroughputErrors" && c.Labels["phone_number"] == "P1" {
			states[c.State]++
			if c.State == "firing" && len(c.Actions) == 0 {
				t.Error("firing without its action")
			}
		}
	}
	if states["firing"] != 1 || states["resolved"] != 1 {
		t.Errorf("ThroughputErrors on P1: %v, want one firing and one resolve\n%s", states, out.String())
	}

	out.Reset()
	errs.Reset()
	empty := []string{"--rules", "../../rules", "--from", "2026-11-21T00:00:00Z", "--to", "2026-11-21T01:00:00Z"}
	if code := backtest.Main(context.Background(), empty, openSource, &out, &errs); code != 1 || !strings.Contains(errs.String(), "no stored events") {
		t.Errorf("empty range: exit %d, stderr %q", code, errs.String())
	}
}

func TestOtherSubcommandsStillWork(t *testing.T) {
	if code := run([]string{"check", "../../rules"}); code != 0 {
		t.Errorf("check: exit %d", code)
	}
	if code := run([]string{"test", "../../rules/tests/errors_test.yaml"}); code != 0 {
		t.Errorf("test: exit %d", code)
	}
	if code := run([]string{"check"}); code != 2 {
		t.Errorf("check without paths: exit %d, want 2", code)
	}
}

package backtest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
)

func TestRunErrors(t *testing.T) {
	set := loadRules(t, "../../rules")
	src := NewMemory(history(t, burst...)) // events from t0 to t0+60m
	for _, tc := range []struct {
		name string
		opts Options
		want []string
		is   error
	}{
		{name: "empty range", opts: Options{From: t0.Add(5 * time.Hour), To: t0.Add(6 * time.Hour)},
			want: []string{"no stored events between 2026-01-05T17:00:00Z and 2026-01-05T18:00:00Z"}, is: ErrNoEvents},
		{name: "from equal to to", opts: Options{From: t0, To: t0},
			want: []string{"from (2026-01-05T12:00:00Z) must be before to (2026-01-05T12:00:00Z)"}},
		{name: "from after to", opts: Options{From: t0.Add(time.Hour), To: t0},
			want: []string{"must be before to"}},
		{name: "no from", opts: Options{To: t0},
			want: []string{"from and to are required"}},
		{name: "unknown rule", opts: Options{From: t0, To: t0.Add(time.Hour), Rules: []string{"ThroughputErrors", "NoSuchRule"}},
			want: []string{`unknown rule "NoSuchRule"`, "known rules: AccountRestricted, DeliveryLatencyRising", "ThroughputErrors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), src, set, tc.opts)
			if err == nil {
				t.Fatalf("no error; report with %d events", rep.Events)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestRuleFilter: --rule keeps only the named rules, by alertname or
// group/alertname.
func TestRuleFilter(t *testing.T) {
	set := loadRules(t, "../../rules")
	src := NewMemory(history(t, burst...))
	for _, names := range [][]string{{"ThroughputErrors"}, {"errors/ThroughputErrors", "SpamRateLimitSpike"}} {
		rep, err := Run(context.Background(), src, set, Options{From: t0, To: t0.Add(time.Hour), Rules: names})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rep.Rules {
			got = append(got, r.Group+"/"+r.Alertname)
		}
		want := "errors/ThroughputErrors"
		if len(names) == 2 {
			want = "errors/SpamRateLimitSpike errors/ThroughputErrors"
		}
		if strings.Join(got, " ") != want || rep.Totals.Firing != 1 {
			t.Errorf("rules %v: evaluated %v, %d fired; want %s, 1 fired", names, got, rep.Totals.Firing, want)
		}
	}
}

// TestSourceContract: events out of order or outside the range are the
// source's bug, reported rather than replayed wrong.
func TestSourceContract(t *testing.T) {
	set := loadRules(t, "../../rules")
	evs := history(t, "0m-10m every 10s: 5 sent phone_number=P1 waba=W1")
	for _, tc := range []struct {
		name string
		src  Source
		want string
	}{
		{"out of order", sliceSource{evs[10], evs[0]}, "source out of order"},
		{"outside the range", sliceSource{evs[0], evs[len(evs)-1]}, "outside the range"},
	} {
		_, err := Run(context.Background(), tc.src, set, Options{From: t0, To: t0.Add(5 * time.Minute)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// sliceSource hands its events over as they are, unchecked.
type sliceSource []event.Event

func (s sliceSource) Events(_ context.Context, _, _ time.Time, fn func([]event.Event) error) error {
	return fn(s)
}

// TestCancel: a cancelled context stops the replay with its error.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, NewMemory(history(t, burst...)), loadRules(t, "../../rules"), Options{From: t0, To: t0.Add(time.Hour)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// cancelSource cancels the replay's context, then hands its events over
// in one batch: the parts see the cancellation in the middle of it.
type cancelSource struct {
	events []event.Event
	cancel context.CancelFunc
}

func (s cancelSource) Events(_ context.Context, _, _ time.Time, fn func([]event.Event) error) error {
	s.cancel()
	return fn(s.events)
}

// TestCancelMidBatch: a replay cancelled while its parts and the decider
// are inside one batch stops with the context's error, with every
// goroutine of the batch ended (a part waiting for a chunk the decider
// will not decide, or the decider for a slot, would hang here).
func TestCancelMidBatch(t *testing.T) {
	// Twelve hours evaluated every 10 s: a part checks its context every
	// 1,024 instants (evalBefore), here a quarter of the way through.
	o := genOptions{Seed: 3, Start: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC), Duration: 12 * time.Hour,
		Rate: 0.5, Numbers: 20, WABAs: 2, Templates: 5, Users: 500}
	events := NewMemory(generate(o)).events
	for _, par := range []int{1, 2, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Run(ctx, cancelSource{events, cancel}, loadRules(t, "../../rules"),
			Options{From: o.Start, To: o.Start.Add(o.Duration), Parallelism: par})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("parallelism %d: error %v, want context.Canceled", par, err)
		}
	}
}

// TestProgress: the bar is redrawn on one line with \r, and the last line
// holds the totals. The clock advances 150 ms per reading.
func TestProgress(t *testing.T) {
	var out bytes.Buffer
	clock := t0
	tick := func() time.Time { clock = clock.Add(150 * time.Millisecond); return clock }
	src := NewMemory(history(t, burst...))
	src.BatchSize = 500
	rep, err := Run(context.Background(), src, loadRules(t, "../../rules"),
		Options{From: t0, To: t0.Add(time.Hour), Progress: &out, clock: tick})
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("want one line ending the output, got %q", s)
	}
	draws := strings.Split(strings.TrimSuffix(s, "\n"), "\r")[1:]
	// 14 batches, a redraw at most every 200 ms: every other batch.
	if len(draws) < 4 || len(draws) > 9 {
		t.Errorf("%d redraws, want about 7: %q", len(draws), s)
	}
	if !strings.Contains(draws[0], "events/s") || !strings.Contains(draws[0], "ETA") || !strings.Contains(draws[0], "%") {
		t.Errorf("progress line %q lacks events/s, %% or ETA", draws[0])
	}
	last := strings.TrimRight(draws[len(draws)-1], " ")
	want := "replayed " + count(rep.Events) + " events (2026-01-05T12:00:00Z .. 2026-01-05T13:00:00Z) in "
	if !strings.HasPrefix(last, want) || !strings.HasSuffix(last, "360 rounds, 1 fired, 1 resolved") {
		t.Errorf("last line %q, want %q... 360 rounds, 1 fired, 1 resolved", last, want)
	}
	// No progress writer, no output and no clock reading.
	if _, err := Run(context.Background(), src, loadRules(t, "../../rules"), Options{From: t0, To: t0.Add(time.Hour),
		clock: func() time.Time { t.Fatal("clock read"); return time.Time{} }}); err != nil {
		t.Fatal(err)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-01-05":                time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		"2026-01-05T12:30:00Z":      time.Date(2026, 1, 5, 12, 30, 0, 0, time.UTC),
		"2026-01-05T12:30:00-03:00": time.Date(2026, 1, 5, 15, 30, 0, 0, time.UTC),
		"2026-01-05T12:30:00.5Z":    time.Date(2026, 1, 5, 12, 30, 0, 5e8, time.UTC),
	} {
		got, err := ParseTime(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v UTC", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-13-01", "2026-01-05 12:00"} {
		if _, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q): no error", in)
		}
	}
}

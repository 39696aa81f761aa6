package route

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pickYAML is the routes file of the pick tests; each use case serves one
// kind of test.
const pickYAML = `
ramp:
  - {after: 0s, fraction: 0.25}
  - {after: 1h, fraction: 0.5}
  - {after: 2h, fraction: 1}
quality_factors: {RED: 0.02}
portfolios:
  - {id: tiny, messaging_limit: 250, quality: RED}  # 5 unique recipients a day
  - {id: big, messaging_limit: 10k}
use_cases:
  - name: weighted
    numbers:
      - {id: "1001", weight: 3, rate: 1000/s}
      - {id: "1002", weight: 1, rate: 1000/s}
  - name: rr
    strategy: round_robin
    numbers:
      - {id: "2001", rate: 1000/s}
      - {id: "2002", rate: 1000/s}
      - {id: "2003", rate: 1000/s}
  - name: ordered
    strategy: ordered
    numbers:
      - {id: "3001", rate: 1000/s}
      - {id: "3002", rate: 1000/s}
      - {id: "3003", rate: 1000/s, role: reserve}
  - name: burst
    strategy: round_robin
    channels: [whatsapp, sms]
    numbers:
      - {id: "4001", waba: w4, rate: 3/s}
      - {id: "4002", waba: w4, rate: 2/s}
      - {id: "4003", waba: w4, rate: 1/s, role: reserve}
  - name: wa-only
    numbers:
      - {id: "5001", rate: 2/s}
  - name: daily
    strategy: ordered
    channels: [whatsapp, email]
    numbers:
      - {id: "6001", portfolio: tiny, rate: 6/s}
      - {id: "6003", portfolio: tiny, rate: 1000/s}
      - {id: "6002", rate: 1000/s}
  - name: ramping
    numbers:
      - {id: "7001", portfolio: big, rate: 8/s}
`

// picker returns a picker over the pick tests' file and the state the
// operator commands make (each applied at t0 unless it has a time).
func picker(t testing.TB, replicas int, cmds ...Command) (*Picker, *File, *State) {
	t.Helper()
	f := mustParse(t, pickYAML)
	s := NewState()
	for _, c := range cmds {
		if c.Time.IsZero() {
			c.Time = t0
		}
		if c.Actor == "" {
			c.ID, c.Actor, c.ActorKind = fmt.Sprintf("cmd-%d", s.Seq+1), "ana", "operator"
		}
		if res := s.Apply(f, c); res.Outcome != OutcomeApplied {
			t.Fatalf("%+v: %+v", c, res)
		}
	}
	return NewPicker(NewTable(f, s), replicas), f, s
}

// pick picks and fails the test on an error.
func pick(t *testing.T, p *Picker, useCase, recipient string, now time.Time) Answer {
	t.Helper()
	a, err := p.Pick(useCase, recipient, now)
	if err != nil {
		t.Fatalf("Pick(%s, %q, %s): %v", useCase, recipient, now.Format(time.TimeOnly), err)
	}
	return a
}

// route names an answer: the number, or the channel when not WhatsApp.
func route(a Answer) string {
	if a.Channel == ChannelWhatsApp {
		return a.PhoneNumberID
	}
	return a.Channel
}

func TestSmoothWeighted(t *testing.T) {
	tests := []struct {
		ids     []string
		weights []int
		want    string
	}{
		{[]string{"a", "b"}, []int{2, 1}, "aba"},
		{[]string{"a", "b"}, []int{3, 1}, "aaba"},
		{[]string{"a", "b", "c"}, []int{5, 1, 1}, "aabacaa"}, // nginx's example
		{[]string{"a", "b", "c"}, []int{1, 1, 1}, "abc"},
		{[]string{"a"}, []int{4}, "aaaa"},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		got := smoothWeighted(tt.ids, tt.weights)
		var s string
		for _, id := range got {
			s += id
		}
		if s != tt.want {
			t.Errorf("smoothWeighted(%v, %v) = %s, want %s", tt.ids, tt.weights, s, tt.want)
		}
	}
}

func TestPickWeighted(t *testing.T) {
	p, _, _ := picker(t, 1)
	var seq []string
	count := map[string]int{}
	for range 400 {
		a := pick(t, p, "weighted", "", t0)
		seq = append(seq, a.PhoneNumberID)
		count[a.PhoneNumberID]++
		if a.Reason != "" || a.Channel != ChannelWhatsApp || a.UseCase != "weighted" {
			t.Fatalf("answer %+v", a)
		}
	}
	if count["1001"] != 300 || count["1002"] != 100 {
		t.Errorf("counts %v, want 1001: 300, 1002: 100", count)
	}
	// Smooth: every 4 picks in a row hold 3 of 1001, never a burst of
	// the heavy number's whole share followed by the light one's.
	for i := 0; i+4 <= len(seq); i++ {
		n := 0
		for _, id := range seq[i : i+4] {
			if id == "1001" {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("picks %d..%d: %v has %d of 1001", i, i+3, seq[i:i+4], n)
		}
	}
}

func TestPickRoundRobin(t *testing.T) {
	p, _, _ := picker(t, 1)
	count := map[string]int{}
	prev := ""
	for i := range 300 {
		id := pick(t, p, "rr", "", t0).PhoneNumberID
		count[id]++
		if id == prev {
			t.Fatalf("pick %d: %s twice in a row", i, id)
		}
		prev = id
	}
	if !reflect.DeepEqual(count, map[string]int{"2001": 100, "2002": 100, "2003": 100}) {
		t.Errorf("counts %v", count)
	}
	// A number out of rotation is skipped; the others share its traffic.
	p, _, _ = picker(t, 1, Command{Op: OpPause, Number: "2002"})
	count = map[string]int{}
	for range 100 {
		count[pick(t, p, "rr", "", t0).PhoneNumberID]++
	}
	if !reflect.DeepEqual(count, map[string]int{"2001": 50, "2003": 50}) {
		t.Errorf("counts with 2002 paused: %v", count)
	}
}

func TestPickOrdered(t *testing.T) {
	tests := []struct {
		name   string
		cmds   []Command
		want   string
		reason string
	}{
		{"the first", nil, "3001", ""},
		{"the first active", []Command{{Op: OpMark, Number: "3001", State: StateDegraded}}, "3002", ""},
		{"reserve once rotation is exhausted",
			[]Command{{Op: OpMark, Number: "3001", State: StateBlocked}, {Op: OpPause, Number: "3002"}},
			"3003", "reserve: no number in rotation is active with budget"},
		{"preferred first", []Command{{Op: OpSwitch, UseCase: "ordered", To: "3002", Reason: "test"}}, "3002", "switched: test"},
		{"preferred reserve", []Command{{Op: OpSwitch, UseCase: "ordered", To: "3003"}}, "3003", "switched: "},
		{"preferred not active: the usual order",
			[]Command{{Op: OpSwitch, UseCase: "ordered", To: "3002"}, {Op: OpMark, Number: "3002", State: StateDegraded}}, "3001", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _ := picker(t, 1, tt.cmds...)
			for range 50 {
				a := pick(t, p, "ordered", "", t0)
				if a.PhoneNumberID != tt.want || a.Reason != tt.reason {
					t.Fatalf("answer %s %q, want %s %q", a.PhoneNumberID, a.Reason, tt.want, tt.reason)
				}
			}
		})
	}
}

// TestPickRateBudget: at a fixed now, a number takes as many messages as
// its rate, then the next number, then the reserve, then the next channel.
func TestPickRateBudget(t *testing.T) {
	p, _, _ := picker(t, 1)
	count := map[string]int{}
	var order []string
	for range 10 {
		a := pick(t, p, "burst", "", t0)
		count[route(a)]++
		order = append(order, route(a))
		if a.Channel == ChannelWhatsApp && (a.WABA != "w4" || a.Budget == nil || a.Budget.Replicas != 1) {
			t.Errorf("answer %+v", a)
		}
		if a.Channel == "sms" && (a.Reason != "no whatsapp number is active with budget" || a.PhoneNumberID != "" || a.Budget != nil) {
			t.Errorf("fallback answer %+v", a)
		}
	}
	if want := map[string]int{"4001": 3, "4002": 2, "4003": 1, "sms": 4}; !reflect.DeepEqual(count, want) {
		t.Errorf("counts %v, want %v", count, want)
	}
	if i := slices.Index(order, "4003"); i != 5 {
		t.Errorf("order %v: the reserve only once both numbers in rotation are spent", order)
	}
	// A second later every bucket is full again.
	count = map[string]int{}
	for range 10 {
		count[route(pick(t, p, "burst", "", t0.Add(time.Second)))]++
	}
	if want := map[string]int{"4001": 3, "4002": 2, "4003": 1, "sms": 4}; !reflect.DeepEqual(count, want) {
		t.Errorf("a second later: counts %v, want %v", count, want)
	}
	// Half a second later: half the rate, rounded down per number.
	count = map[string]int{}
	for range 10 {
		count[route(pick(t, p, "burst", "", t0.Add(1500*time.Millisecond)))]++
	}
	if want := map[string]int{"4001": 1, "4002": 1, "sms": 8}; !reflect.DeepEqual(count, want) {
		t.Errorf("half a second later: counts %v, want %v", count, want)
	}

	// WhatsApp only: no route once the budget is spent.
	for i := range 2 {
		if a := pick(t, p, "wa-only", "", t0); a.PhoneNumberID != "5001" {
			t.Fatalf("pick %d: %+v", i, a)
		}
	}
	if a, err := p.Pick("wa-only", "", t0); !errors.Is(err, ErrNoRoute) {
		t.Errorf("third pick: %+v, %v; want ErrNoRoute", a, err)
	}
}

func TestPickThrottle(t *testing.T) {
	p, _, _ := picker(t, 1, Command{Op: OpThrottle, Number: "4001", Rate: 1}, Command{Op: OpThrottle, Number: "4002", Rate: 100})
	count := map[string]int{}
	for range 10 {
		a := pick(t, p, "burst", "", t0)
		count[route(a)]++
		switch a.PhoneNumberID {
		case "4001":
			if b := a.Budget; b.Rate != 1 || !b.RateCapped || b.NumberLimit != 3 {
				t.Errorf("4001 budget %+v, want capped at 1 of 3", b)
			}
		case "4002":
			if b := a.Budget; b.Rate != 2 || b.RateCapped || b.NumberLimit != 2 {
				t.Errorf("4002 budget %+v, want its own rate 2 (the cap is above it)", b)
			}
		}
	}
	if want := map[string]int{"4001": 1, "4002": 2, "4003": 1, "sms": 6}; !reflect.DeepEqual(count, want) {
		t.Errorf("counts %v, want %v", count, want)
	}
	// The throttle ends at its Until.
	until := t0.Add(time.Minute)
	p, _, _ = picker(t, 1, Command{Op: OpThrottle, Number: "5001", Rate: 0.5, Until: &until})
	if _, err := p.Pick("wa-only", "", t0); !errors.Is(err, ErrNoRoute) {
		t.Errorf("a bucket of half a message: %v, want ErrNoRoute", err)
	}
	if a := pick(t, p, "wa-only", "", t0.Add(2*time.Second)); a.Budget.Rate != 0.5 || !a.Budget.RateCapped {
		t.Errorf("throttled budget %+v", a.Budget)
	}
	if a := pick(t, p, "wa-only", "", until.Add(time.Second)); a.Budget.Rate != 2 || a.Budget.RateCapped {
		t.Errorf("after the throttle's until: budget %+v", a.Budget)
	}
}

func TestPickRamp(t *testing.T) {
	p, _, _ := picker(t, 1,
		Command{Time: t0.Add(-time.Minute), Op: OpMark, Number: "7001", State: StateDegraded},
		Command{Op: OpMark, Number: "7001", State: StateActive}) // ramping from t0
	tests := []struct {
		at       time.Duration
		ramp     *Ramp
		rate     float64
		daily    int
		accepted int // picks at that instant
	}{
		{30 * time.Minute, &Ramp{Step: 0, Fraction: 0.25, Started: t0, NextStepAt: ptr(t0.Add(time.Hour))}, 2, 2500, 2},
		{time.Hour, &Ramp{Step: 1, Fraction: 0.5, Started: t0, NextStepAt: ptr(t0.Add(2 * time.Hour))}, 4, 5000, 4},
		{2 * time.Hour, nil, 8, 10000, 8},
	}
	used := 0 // unique recipients so far
	for i, tt := range tests {
		now := t0.Add(tt.at)
		for j := range tt.accepted {
			a := pick(t, p, "ramping", fmt.Sprintf("r%d-%d", i, j), now)
			used++
			if !reflect.DeepEqual(a.Ramp, tt.ramp) {
				t.Errorf("at %s: Ramp %+v, want %+v", tt.at, a.Ramp, tt.ramp)
			}
			if b := a.Budget; b.Rate != tt.rate || b.DailyLimit != tt.daily || b.DailyUsed != used {
				t.Errorf("at %s pick %d: budget %+v, want rate %g, daily %d", tt.at, j, b, tt.rate, tt.daily)
			}
		}
		if _, err := p.Pick("ramping", "", now); !errors.Is(err, ErrNoRoute) {
			t.Errorf("at %s: pick %d: %v, want ErrNoRoute", tt.at, tt.accepted+1, err)
		}
	}
}

func TestPickReplicas(t *testing.T) {
	p, _, _ := picker(t, 4)
	n := 0
	for {
		a, err := p.Pick("ordered", "", t0)
		if err != nil {
			t.Fatal(err)
		}
		if a.PhoneNumberID != "3001" {
			break
		}
		if b := a.Budget; b.Rate != 250 || b.Replicas != 4 || b.NumberLimit != 1000 {
			t.Fatalf("budget %+v", b)
		}
		n++
	}
	if n != 250 {
		t.Errorf("3001 took %d picks at one instant, want 1000/s over 4 replicas = 250", n)
	}
	// Daily budgets split too: 5 a day over 4 replicas is 1 (at least 1).
	got := []string{route(pick(t, p, "daily", "r1", t0)), route(pick(t, p, "daily", "r2", t0))}
	if want := []string{"6001", "6002"}; !slices.Equal(got, want) {
		t.Errorf("daily with 4 replicas: %v, want %v", got, want)
	}
	// Fewer than one replica is one.
	if NewPicker(p.Table(), 0).replicas != 1 {
		t.Error("NewPicker(_, 0) has no replica")
	}
}

func TestPickDailyRecipients(t *testing.T) {
	p, f, _ := picker(t, 1)
	n, _ := f.Number("6001")
	if got := f.DailyLimit(n); got != 5 {
		t.Fatalf("DailyLimit(6001) = %d, want 5 (250 at RED 0.02)", got)
	}
	for i := range 5 {
		a := pick(t, p, "daily", fmt.Sprintf("r%d", i), t0)
		if a.PhoneNumberID != "6001" || a.Budget.DailyLimit != 5 || a.Budget.DailyUsed != i+1 {
			t.Fatalf("r%d: %+v budget %+v", i, a, a.Budget)
		}
	}
	// A sixth recipient: 6001 has a token left but no daily budget, 6003
	// shares the portfolio's, 6002 has no limit.
	if a := pick(t, p, "daily", "r5", t0); a.PhoneNumberID != "6002" || a.Budget.DailyLimit != 0 {
		t.Errorf("r5: %+v", a)
	}
	// A recipient already counted costs nothing: it takes 6001's last
	// token (given back when r5 was refused).
	if a := pick(t, p, "daily", "r0", t0); a.PhoneNumberID != "6001" || a.Budget.DailyUsed != 5 {
		t.Errorf("r0 again: %+v %+v", a, a.Budget)
	}
	// 6001 is out of tokens; 6003 is new to r0 but the portfolio is not.
	if a := pick(t, p, "daily", "r0", t0); a.PhoneNumberID != "6003" || a.Budget.DailyUsed != 1 {
		t.Errorf("r0 on 6003: %+v %+v", a, a.Budget)
	}
	// Picks without a recipient do not count.
	if a := pick(t, p, "daily", "", t0.Add(time.Second)); a.PhoneNumberID != "6001" || a.Budget.DailyUsed != 0 {
		t.Errorf("no recipient: %+v %+v", a, a.Budget)
	}
	// The window is 24 hours, counted by the hour.
	if a := pick(t, p, "daily", "r6", t0.Add(23*time.Hour+59*time.Minute)); a.PhoneNumberID != "6002" {
		t.Errorf("r6 a minute before the day is over: %+v", a)
	}
	if a := pick(t, p, "daily", "r6", t0.Add(24*time.Hour)); a.PhoneNumberID != "6001" || a.Budget.DailyUsed != 1 {
		t.Errorf("r6 a day later: %+v %+v", a, a.Budget)
	}

	// A recipient sent to again counts from the later hour.
	p, _, _ = picker(t, 1)
	pick(t, p, "daily", "r0", t0)
	pick(t, p, "daily", "r0", t0.Add(2*time.Hour))
	day := t0.Add(24 * time.Hour)
	for i := 1; i <= 4; i++ {
		if a := pick(t, p, "daily", fmt.Sprintf("r%d", i), day); a.PhoneNumberID != "6001" || a.Budget.DailyUsed != i+1 {
			t.Errorf("r%d: %+v %+v", i, a, a.Budget)
		}
	}
	if a := pick(t, p, "daily", "r5", day); a.PhoneNumberID != "6002" {
		t.Errorf("r5: %+v, want 6001 full (r0 still counted)", a)
	}
	// Days later everything is forgotten.
	if a := pick(t, p, "daily", "r9", t0.Add(72*time.Hour)); a.PhoneNumberID != "6001" || a.Budget.DailyUsed != 1 {
		t.Errorf("three days later: %+v %+v", a, a.Budget)
	}
}

// TestRecipients tests the rolling 24-hour count directly.
func TestRecipients(t *testing.T) {
	r := &recipients{last: map[uint64]int64{}}
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	r.add(1, h(0))
	r.add(2, h(0))
	r.add(3, h(5))
	r.add(1, h(10)) // moves 1 to hour 10
	steps := []struct {
		at   time.Time
		want int
		seen []uint64
	}{
		{h(10), 3, []uint64{1, 2, 3}},
		{h(23), 3, []uint64{1, 2, 3}},
		{h(24), 2, []uint64{1, 3}},
		{h(29), 1, []uint64{1}},
		{h(34), 0, nil},
	}
	for _, s := range steps {
		if got := r.count(s.at); got != s.want {
			t.Errorf("count at +%s = %d, want %d", s.at.Sub(t0), got, s.want)
		}
		for _, id := range []uint64{1, 2, 3} {
			if got := r.seen(id, s.at); got != slices.Contains(s.seen, id) {
				t.Errorf("seen(%d) at +%s = %v", id, s.at.Sub(t0), got)
			}
		}
	}
}

func TestPickPausedAndFallback(t *testing.T) {
	until := t0.Add(time.Hour)
	p, _, s := picker(t, 1,
		Command{Op: OpPause, UseCase: "burst", Until: &until, Reason: "incident"},
		Command{Op: OpFallback, UseCase: "daily", Channel: "email", Reason: "outage"})
	a := pick(t, p, "burst", "", t0)
	if a.Channel != "none" || a.PhoneNumberID != "" || a.Reason != "use case paused: incident" || a.Until == nil ||
		!a.Until.Equal(until) || a.Seq != s.Seq || a.UseCase != "burst" {
		t.Errorf("paused: %+v", a)
	}
	if a := pick(t, p, "burst", "", until); a.Channel != ChannelWhatsApp {
		t.Errorf("after the pause: %+v", a)
	}
	if a := pick(t, p, "daily", "r1", t0); a.Channel != "email" || a.PhoneNumberID != "" || a.Reason != "channel fallback: outage" {
		t.Errorf("fallback: %+v", a)
	}
	if _, err := p.Pick("nope", "", t0); !errors.Is(err, ErrNoUseCase) {
		t.Errorf("unknown use case: %v", err)
	}
}

func TestPickerSetTable(t *testing.T) {
	p, f, s := picker(t, 1)
	pick(t, p, "wa-only", "", t0)
	pick(t, p, "wa-only", "", t0)
	if res := s.Apply(f, Command{ID: "x", Time: t0, Op: OpRamp, Number: "7001", Actor: "ana", ActorKind: "operator"}); res.Outcome != OutcomeApplied {
		t.Fatal(res)
	}
	tb := NewTable(f, s)
	p.SetTable(tb)
	if p.Table() != tb || tb.Seq != s.Seq || tb.File() != f {
		t.Error("SetTable did not swap")
	}
	// Budgets carry over the swap.
	if _, err := p.Pick("wa-only", "", t0); !errors.Is(err, ErrNoRoute) {
		t.Errorf("after SetTable: %v, want ErrNoRoute (the budget was spent)", err)
	}
	// The table copied the state: later changes do not show.
	s.Apply(f, Command{ID: "y", Time: t0, Op: OpPause, UseCase: "rr", Actor: "ana", ActorKind: "operator"})
	if a := pick(t, p, "rr", "", t0); a.Channel != ChannelWhatsApp {
		t.Errorf("table saw a later change: %+v", a)
	}
	if tb.State().UseCases["rr"] != nil {
		t.Error("the table's state is the live one")
	}
}

func TestTableView(t *testing.T) {
	p, _, s := picker(t, 1,
		Command{Op: OpSwitch, UseCase: "daily", To: "6003", Reason: "test"},
		Command{Op: OpMark, Number: "6001", State: StateDegraded},
		Command{Time: t0.Add(time.Minute), Op: OpMark, Number: "6001", State: StateActive})
	tb := p.Table()
	if names := tb.UseCaseNames(); !slices.Equal(names, []string{"weighted", "rr", "ordered", "burst", "wa-only", "daily", "ramping"}) {
		t.Errorf("UseCaseNames = %v", names)
	}
	v, ok := tb.View("daily", t0.Add(30*time.Minute))
	if !ok {
		t.Fatal("no view")
	}
	if v.Name != "daily" || v.Strategy != StrategyOrdered || !slices.Equal(v.Channels, []string{"whatsapp", "email"}) ||
		v.Channel != ChannelWhatsApp || v.Preferred != "6003" || v.Paused || v.Since == nil || v.Seq != s.Seq || len(v.Numbers) != 3 {
		t.Errorf("view %+v", v)
	}
	n := v.Numbers[0]
	if n.ID != "6001" || n.Portfolio != "tiny" || n.DailyLimit != 5 || n.Rate != 6 || n.State != StateActive || n.Ramp == nil ||
		n.Ramp.Fraction != 0.25 || !n.Ramp.Started.Equal(t0.Add(time.Minute)) {
		t.Errorf("6001 view %+v ramp %+v", n, n.Ramp)
	}
	if n := v.Numbers[2]; n.ID != "6002" || n.DailyLimit != 0 || n.Ramp != nil {
		t.Errorf("6002 view %+v", n)
	}
	if _, ok := tb.View("nope", t0); ok {
		t.Error("View(nope) found")
	}
}

// TestPickConcurrent: the budgets hold under concurrent picks while the
// table is swapped (run with -race).
func TestPickConcurrent(t *testing.T) {
	p, f, s := picker(t, 1)
	var ok, noRoute atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				a, err := p.Pick("rr", "", t0)
				switch {
				case errors.Is(err, ErrNoRoute):
					noRoute.Add(1)
				case err != nil || a.Channel != ChannelWhatsApp:
					t.Errorf("%+v %v", a, err)
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			p.SetTable(NewTable(f, s))
		}
	})
	wg.Wait()
	if ok.Load() != 3000 || noRoute.Load() != 1000 {
		t.Errorf("%d picks, %d without route; want 3 numbers x 1000/s = 3000 and 1000", ok.Load(), noRoute.Load())
	}
}

// BenchmarkPick measures picks from parallel callers, with recipients
// against a daily budget, as the control API makes them.
func BenchmarkPick(b *testing.B) {
	f := mustParse(b, `
portfolios: [{id: p, messaging_limit: 100k}]
use_cases:
  - name: sales
    channels: [whatsapp, sms]
    numbers:
      - {id: "1", portfolio: p, weight: 3, rate: 1000/s}
      - {id: "2", portfolio: p, weight: 2, rate: 1000/s}
      - {id: "3", portfolio: p, rate: 1000/s}
      - {id: "4", portfolio: p, role: reserve, rate: 1000/s}
`)
	p := NewPicker(NewTable(f, NewState()), 1)
	recipients := make([]string, 4096)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("recipient-%d", i)
	}
	var clock atomic.Int64 // one microsecond per pick: about 1M picks a second
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			now := t0.Add(time.Duration(clock.Add(1)) * time.Microsecond)
			if _, err := p.Pick("sales", recipients[i%len(recipients)], now); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

package route

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"vigia/internal/alert"
)

// stateYAML is the routes file of the state tests: six numbers, so that
// with platform_fraction 0.6 one or two bad numbers are a number problem
// and four are a platform problem. %s is more automation settings.
const stateYAML = `
ramp:
  - {after: 0s, fraction: 0.25}
  - {after: 1h, fraction: 1}
portfolios:
  - {id: main, messaging_limit: 2k}
use_cases:
  - name: sales
    channels: [whatsapp, sms, email]
    numbers:
      - {id: "1001", waba: w1, portfolio: main, weight: 3}
      - {id: "1002", waba: w1, portfolio: main, role: high_volume}
      - {id: "1003", waba: w2, portfolio: main, role: reserve}
  - name: support
    numbers:
      - {id: "2001", waba: w2}
  - name: billing
    channels: [whatsapp, sms]
    numbers:
      - {id: "3001", waba: w3}
      - {id: "3002", waba: w3, role: reserve}
automation:
  platform_fraction: 0.6
%s`

// routes returns the state tests' file with extra automation settings,
// each like "dry_run: true".
func routes(t testing.TB, automation ...string) *File {
	t.Helper()
	var extra string
	for _, a := range automation {
		extra += "  " + a + "\n"
	}
	return mustParse(t, fmt.Sprintf(stateYAML, extra))
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// apply applies c, filling in an id and an operator when c has none.
func apply(s *State, f *File, c Command) Result {
	if c.ID == "" {
		c.ID = fmt.Sprintf("cmd-%d", s.Seq+1)
	}
	if c.Actor == "" {
		c.Actor, c.ActorKind = "ana", "operator"
	}
	return s.Apply(f, c)
}

// mustApply applies c and fails unless the outcome is want.
func mustApply(t *testing.T, s *State, f *File, c Command, want string) Result {
	t.Helper()
	res := apply(s, f, c)
	if res.Outcome != want {
		t.Fatalf("%s %+v: outcome %s (err %v), want %s", c.Op, c, res.Outcome, res.Err, want)
	}
	return res
}

// alertCmd is an automatic command: action index of occurrence occ.
func alertCmd(when time.Time, occ string, index int, typ string, params map[string]string) Command {
	return Command{ID: fmt.Sprintf("%s/%d@%s", occ, index, when.Format("15:04:05")), Time: when, Op: OpAlert,
		Actor: "DeliveryRateDrop", ActorKind: "rule", Alert: &AlertRef{Name: "DeliveryRateDrop", Fingerprint: "fp-" + occ,
			Occurrence: occ, Labels: map[string]string{"alertname": "DeliveryRateDrop"}, Index: index,
			Action: alert.Action{Type: typ, Params: params}}}
}

func resolvedCmd(when time.Time, occ string) Command {
	return Command{ID: "resolved-" + occ, Time: when, Op: OpResolved, Actor: "DeliveryRateDrop", ActorKind: "rule",
		Alert: &AlertRef{Name: "DeliveryRateDrop", Fingerprint: "fp-" + occ, Occurrence: occ}}
}

func restoreCmd(when time.Time, occ string) Command {
	return Command{ID: "restore-" + occ + "@" + when.Format("15:04:05"), Time: when, Op: OpRestore, Actor: "control",
		ActorKind: "rule", Alert: &AlertRef{Name: "DeliveryRateDrop", Fingerprint: "fp-" + occ, Occurrence: occ}}
}

// routeJSON is the state without Seq and the audit log: what a refused
// command must leave as it was.
func routeJSON(t *testing.T, s *State) string {
	t.Helper()
	c := s.Clone()
	c.Seq, c.Audit = 0, nil
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// numbersJSON is only the numbers and use cases: what dry-run must leave
// as it was.
func routesOnlyJSON(t *testing.T, s *State) string {
	t.Helper()
	data, err := json.Marshal(struct {
		N map[string]*NumberState
		U map[string]*UseCaseState
	}{s.Numbers, s.UseCases})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func decodeNumber(t *testing.T, raw json.RawMessage) NumberState {
	t.Helper()
	var n NumberState
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return n
}

func decodeUseCase(t *testing.T, raw json.RawMessage) UseCaseState {
	t.Helper()
	var u UseCaseState
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return u
}

func TestOperatorApplied(t *testing.T) {
	f := routes(t)
	type check func(t *testing.T, s *State, r Result)
	// number/useCase check the After view of the only record and the
	// state at the command's time.
	number := func(id string, want NumberState) check {
		return func(t *testing.T, s *State, r Result) {
			t.Helper()
			if got := decodeNumber(t, r.Records[0].After); !reflect.DeepEqual(got, want) {
				t.Errorf("After = %+v, want %+v", got, want)
			}
			if got := s.EffectiveNumber(id, at(time.Minute)); !reflect.DeepEqual(got, want) {
				t.Errorf("EffectiveNumber = %+v, want %+v", got, want)
			}
		}
	}
	useCase := func(name string, want UseCaseState) check {
		return func(t *testing.T, s *State, r Result) {
			t.Helper()
			if got := decodeUseCase(t, r.Records[0].After); !reflect.DeepEqual(got, want) {
				t.Errorf("After = %+v, want %+v", got, want)
			}
			if got := s.EffectiveUseCase(name, at(time.Minute)); !reflect.DeepEqual(got, want) {
				t.Errorf("EffectiveUseCase = %+v, want %+v", got, want)
			}
		}
	}
	now := at(time.Minute)
	until := at(2 * time.Hour)
	tests := []struct {
		name   string
		setup  []Command // applied at t0
		cmd    Command   // applied at now
		target string
		before string // the Before view, exactly
		check  check
	}{
		{"switch", nil,
			Command{Op: OpSwitch, UseCase: "sales", To: "1002", Reason: "test"},
			"sales", `{"channel":"whatsapp","since":"0001-01-01T00:00:00Z"}`,
			useCase("sales", UseCaseState{Channel: "whatsapp", Preferred: "1002", Reason: "test", Since: now})},
		{"switch to a reserve", nil,
			Command{Op: OpSwitch, UseCase: "sales", To: "1003"},
			"sales", `{"channel":"whatsapp","since":"0001-01-01T00:00:00Z"}`,
			useCase("sales", UseCaseState{Channel: "whatsapp", Preferred: "1003", Since: now})},
		{"switch to a number whose pause ended",
			[]Command{{Op: OpPause, Number: "1002", Until: ptr(at(30 * time.Second))}},
			Command{Op: OpSwitch, UseCase: "sales", To: "1002"},
			"sales", `{"channel":"whatsapp","since":"0001-01-01T00:00:00Z"}`,
			useCase("sales", UseCaseState{Channel: "whatsapp", Preferred: "1002", Since: now})},
		{"pause a number until", nil,
			Command{Op: OpPause, Number: "1001", Until: &until, Reason: "maintenance"},
			"1001", `{"state":"active","since":"0001-01-01T00:00:00Z"}`,
			number("1001", NumberState{State: StatePaused, Reason: "maintenance", Since: now, Until: &until})},
		{"pause a use case", nil,
			Command{Op: OpPause, UseCase: "support", Reason: "incident"},
			"support", `{"channel":"whatsapp","since":"0001-01-01T00:00:00Z"}`,
			useCase("support", UseCaseState{Channel: "whatsapp", Paused: true, Reason: "incident", Since: now})},
		{"resume a paused number starts its ramp",
			[]Command{{Op: OpPause, Number: "1001", Reason: "x"}, {Op: OpThrottle, Number: "1001", Rate: 5, Reason: "slow"}},
			Command{Op: OpResume, Number: "1001", Reason: "back"},
			// The throttle's reason replaced the pause's: they share Reason.
			"1001", `{"state":"paused","reason":"slow","since":"` + t0.Format(time.RFC3339) + `","rate_cap":5}`,
			number("1001", NumberState{State: StateActive, Reason: "back", Since: now, RampStart: &now})},
		{"resume an active number clears its throttle",
			[]Command{{Op: OpThrottle, Number: "1001", Rate: 5, Reason: "slow"}},
			Command{Op: OpResume, Number: "1001"},
			"1001", `{"state":"active","reason":"slow","since":"0001-01-01T00:00:00Z","rate_cap":5}`,
			number("1001", NumberState{State: StateActive, Since: now})},
		{"resume a use case",
			[]Command{{Op: OpPause, UseCase: "sales", Until: ptr(at(time.Hour))}},
			Command{Op: OpResume, UseCase: "sales"},
			"sales", `{"channel":"whatsapp","paused":true,"paused_until":"` + at(time.Hour).Format(time.RFC3339) + `","since":"` + t0.Format(time.RFC3339) + `"}`,
			useCase("sales", UseCaseState{Channel: "whatsapp", Since: now})},
		{"throttle", nil,
			Command{Op: OpThrottle, Number: "1002", Rate: 10, Until: &until, Reason: "131056"},
			"1002", `{"state":"active","since":"0001-01-01T00:00:00Z"}`,
			number("1002", NumberState{State: StateActive, Reason: "131056", RateCap: 10, CapUntil: &until})},
		{"fallback", nil,
			Command{Op: OpFallback, UseCase: "sales", Channel: "sms", Reason: "outage"},
			"sales", `{"channel":"whatsapp","since":"0001-01-01T00:00:00Z"}`,
			useCase("sales", UseCaseState{Channel: "sms", Reason: "outage", Since: now})},
		{"fallback back to whatsapp",
			[]Command{{Op: OpFallback, UseCase: "sales", Channel: "email"}},
			Command{Op: OpFallback, UseCase: "sales", Channel: "whatsapp"},
			"sales", `{"channel":"email","since":"` + t0.Format(time.RFC3339) + `"}`,
			useCase("sales", UseCaseState{Channel: "whatsapp", Since: now})},
		{"lock a number", nil,
			Command{Op: OpLock, Number: "1001", Until: &until, Reason: "investigating"},
			"1001", `{"state":"active","since":"0001-01-01T00:00:00Z"}`,
			number("1001", NumberState{State: StateActive, Lock: &Lock{By: "ana", Reason: "investigating", Until: until}})},
		{"lock a use case", nil,
			Command{Op: OpLock, UseCase: "billing", Until: &until, Reason: "campaign"},
			"billing", `{"channel":"whatsapp","since":"0001-01-01T00:00:00Z"}`,
			useCase("billing", UseCaseState{Channel: "whatsapp", Lock: &Lock{By: "ana", Reason: "campaign", Until: until}})},
		{"unlock",
			[]Command{{Op: OpLock, Number: "1001", Until: &until, Reason: "x"}},
			Command{Op: OpUnlock, Number: "1001"},
			"1001", `{"state":"active","since":"0001-01-01T00:00:00Z","lock":{"by":"ana","reason":"x","until":"` + until.Format(time.RFC3339) + `"}}`,
			number("1001", NumberState{State: StateActive})},
		{"mark blocked", nil,
			Command{Op: OpMark, Number: "2001", State: StateBlocked, Reason: "meta"},
			"2001", `{"state":"active","since":"0001-01-01T00:00:00Z"}`,
			number("2001", NumberState{State: StateBlocked, Reason: "meta", Since: now})},
		{"mark active after blocked starts the ramp",
			[]Command{{Op: OpMark, Number: "2001", State: StateBlocked}},
			Command{Op: OpMark, Number: "2001", State: StateActive},
			"2001", `{"state":"blocked","since":"` + t0.Format(time.RFC3339) + `"}`,
			number("2001", NumberState{State: StateActive, Since: now, RampStart: &now})},
		{"ramp", nil,
			Command{Op: OpRamp, Number: "3001"},
			"3001", `{"state":"active","since":"0001-01-01T00:00:00Z"}`,
			number("3001", NumberState{State: StateActive, RampStart: &now})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			for _, c := range tt.setup {
				c.Time = t0
				mustApply(t, s, f, c, OutcomeApplied)
			}
			c := tt.cmd
			c.ID, c.Time = "op-1", now
			res := mustApply(t, s, f, c, OutcomeApplied)
			if res.Err != nil || len(res.Records) != 1 {
				t.Fatalf("result %+v, want one record", res)
			}
			r := res.Records[0]
			if r.ID != "op-1/0" || !r.Time.Equal(now) || r.Actor != "ana" || r.ActorKind != "operator" ||
				r.Action != c.Op || r.Target != tt.target || r.DryRun || r.SchemaVersion == 0 {
				t.Errorf("record %+v", r)
			}
			if string(r.Before) != tt.before {
				t.Errorf("Before = %s\n      want %s", r.Before, tt.before)
			}
			tt.check(t, s, res)
			last := s.Audit[len(s.Audit)-1]
			if last.Outcome != OutcomeApplied || last.Record.ID != r.ID || string(last.After) != string(r.After) {
				t.Errorf("audit entry %+v", last)
			}
			if s.Seq != int64(len(tt.setup)+1) {
				t.Errorf("Seq = %d", s.Seq)
			}
		})
	}
}

func TestOperatorNoop(t *testing.T) {
	f := routes(t)
	s := NewState()
	mustApply(t, s, f, Command{Time: t0, Op: OpSwitch, UseCase: "sales", To: "1002"}, OutcomeApplied)
	audit := len(s.Audit)
	for _, c := range []Command{
		{Time: t0, Op: OpSwitch, UseCase: "sales", To: "1002"}, // same Reason, Since: nothing changes
		{Time: t0, Op: OpFallback, UseCase: "sales", Channel: "whatsapp"},
		{Time: t0, Op: OpResume, UseCase: "sales"},
		{Time: t0, Op: OpUnlock, Number: "1001"},
		// Later, with another reason: still what is already so.
		{Time: at(time.Hour), Op: OpSwitch, UseCase: "sales", To: "1002", Reason: "again"},
		{Time: at(time.Hour), Op: OpFallback, UseCase: "sales", Channel: "whatsapp", Reason: "again"},
		{Time: at(time.Hour), Op: OpResume, UseCase: "sales", Reason: "again"},
		{Time: at(time.Hour), Op: OpResume, Number: "1001", Reason: "again"},
		{Time: at(time.Hour), Op: OpMark, Number: "1001", State: StateActive, Reason: "again"},
	} {
		res := apply(s, f, c)
		if res.Outcome != OutcomeNoop || res.Err != nil || res.Records != nil {
			t.Errorf("%s: %+v, want noop", c.Op, res)
		}
	}
	if len(s.Audit) != audit {
		t.Errorf("noops added %d audit entries", len(s.Audit)-audit)
	}
	if u := s.UseCases["sales"]; u.Reason != "" || !u.Since.Equal(t0) {
		t.Errorf("a noop changed the reason or time of sales: %+v", u)
	}
	if _, ok := s.Numbers["1001"]; ok {
		t.Errorf("a noop created state for 1001: %+v", s.Numbers["1001"])
	}
}

// TestApplyRefusesUnsavableValues: values JSON cannot hold would make
// snapshots and clones fail; Apply refuses them.
func TestApplyRefusesUnsavableValues(t *testing.T) {
	f := routes(t)
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []Command{
		{Time: t0, Op: OpPause, Number: "1001", Until: &far},
		{Time: t0, Op: OpThrottle, Number: "1001", Rate: math.Inf(1)},
		{Time: t0, Op: OpThrottle, Number: "1001", Rate: math.NaN()},
	} {
		s := NewState()
		if res := apply(s, f, c); res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrInvalid) {
			t.Errorf("%+v: %+v, want refused as invalid", c, res)
		}
		_ = s.Clone() // must not panic
	}
}

func TestOperatorRefused(t *testing.T) {
	f := routes(t)
	noRamp := mustParse(t, `use_cases: [{name: sales, numbers: [{id: "1001"}]}]`)
	now := at(time.Minute)
	past := at(-time.Second)
	tests := []struct {
		name  string
		file  *File
		setup []Command
		cmd   Command
		want  error
		msg   string
	}{
		{"switch, unknown use case", nil, nil, Command{Op: OpSwitch, UseCase: "nope", To: "1001"}, ErrNotFound, `no use case "nope"`},
		{"switch, no use case", nil, nil, Command{Op: OpSwitch, To: "1001"}, ErrInvalid, "use_case is required"},
		{"switch, number of another use case", nil, nil, Command{Op: OpSwitch, UseCase: "sales", To: "2001"}, ErrNotFound,
			`number "2001" is not in use case sales`},
		{"switch, degraded number", nil, []Command{{Op: OpMark, Number: "1002", State: StateDegraded}},
			Command{Op: OpSwitch, UseCase: "sales", To: "1002"}, ErrConflict, "number 1002 is degraded; switch to an active number"},
		{"switch, paused number", nil, []Command{{Op: OpPause, Number: "1003", Until: ptr(at(time.Hour))}},
			Command{Op: OpSwitch, UseCase: "sales", To: "1003"}, ErrConflict, "number 1003 is paused"},
		{"switch, blocked number", nil, []Command{{Op: OpMark, Number: "1003", State: StateBlocked}},
			Command{Op: OpSwitch, UseCase: "sales", To: "1003"}, ErrConflict, "number 1003 is blocked"},
		{"pause, until in the past", nil, nil, Command{Op: OpPause, Number: "1001", Until: &past}, ErrInvalid, "until is in the past"},
		{"pause, until now", nil, nil, Command{Op: OpPause, UseCase: "sales", Until: &now}, ErrInvalid, "until is in the past"},
		{"pause, unknown number", nil, nil, Command{Op: OpPause, Number: "9999"}, ErrNotFound, `no number "9999"`},
		{"pause, no target", nil, nil, Command{Op: OpPause}, ErrInvalid, "use_case is required"},
		{"resume, unknown use case", nil, nil, Command{Op: OpResume, UseCase: "nope"}, ErrNotFound, `no use case "nope"`},
		{"resume, unknown number", nil, nil, Command{Op: OpResume, Number: "9999"}, ErrNotFound, `no number "9999"`},
		{"throttle, rate 0", nil, nil, Command{Op: OpThrottle, Number: "1001"}, ErrInvalid, "rate must be positive"},
		{"throttle, negative rate", nil, nil, Command{Op: OpThrottle, Number: "1001", Rate: -1}, ErrInvalid, "rate must be positive"},
		{"throttle, unknown number", nil, nil, Command{Op: OpThrottle, Number: "9999", Rate: 1}, ErrNotFound, `no number "9999"`},
		{"throttle, until in the past", nil, nil, Command{Op: OpThrottle, Number: "1001", Rate: 1, Until: &past}, ErrInvalid, "until is in the past"},
		{"fallback, channel not in the chain", nil, nil, Command{Op: OpFallback, UseCase: "support", Channel: "sms"}, ErrInvalid,
			`channel "sms" is not in the chain of use case support ([whatsapp])`},
		{"fallback, unknown channel", nil, nil, Command{Op: OpFallback, UseCase: "sales", Channel: "fax"}, ErrInvalid, `channel "fax"`},
		{"fallback, no channel", nil, nil, Command{Op: OpFallback, UseCase: "sales"}, ErrInvalid, `channel ""`},
		{"fallback, unknown use case", nil, nil, Command{Op: OpFallback, UseCase: "nope", Channel: "sms"}, ErrNotFound, `no use case "nope"`},
		{"lock, no reason", nil, nil, Command{Op: OpLock, Number: "1001", Until: ptr(at(time.Hour)), Reason: ""}, ErrInvalid, "a lock needs a reason"},
		{"lock, no until", nil, nil, Command{Op: OpLock, Number: "1001", Reason: "x"}, ErrInvalid, "a lock needs an expiry (until) in the future"},
		{"lock, until in the past", nil, nil, Command{Op: OpLock, UseCase: "sales", Reason: "x", Until: &past}, ErrInvalid, "a lock needs an expiry"},
		{"lock, unknown number", nil, nil, Command{Op: OpLock, Number: "9999", Reason: "x", Until: ptr(at(time.Hour))}, ErrNotFound, `no number "9999"`},
		{"unlock, unknown use case", nil, nil, Command{Op: OpUnlock, UseCase: "nope"}, ErrNotFound, `no use case "nope"`},
		{"mark paused", nil, nil, Command{Op: OpMark, Number: "1001", State: StatePaused}, ErrInvalid,
			`state: want active, degraded or blocked (pause has its own action), got "paused"`},
		{"mark, unknown number", nil, nil, Command{Op: OpMark, Number: "9999", State: StateBlocked}, ErrNotFound, `no number "9999"`},
		{"ramp, no schedule", noRamp, nil, Command{Op: OpRamp, Number: "1001"}, ErrConflict, "the routes file has no ramp schedule"},
		{"ramp, unknown number", nil, nil, Command{Op: OpRamp, Number: "9999"}, ErrNotFound, `no number "9999"`},
		{"unknown op", nil, nil, Command{Op: "reboot", Number: "1001"}, ErrInvalid, `unknown op "reboot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := f
			if tt.file != nil {
				file = tt.file
			}
			s := NewState()
			// Something in the state already, so that "nothing changed"
			// means something.
			mustApply(t, s, file, Command{Time: t0, Op: OpThrottle, Number: "1001", Rate: 5, Reason: "init"}, OutcomeApplied)
			for _, c := range tt.setup {
				c.Time = t0
				mustApply(t, s, file, c, OutcomeApplied)
			}
			before := routeJSON(t, s)
			seq, audit := s.Seq, len(s.Audit)
			c := tt.cmd
			c.ID, c.Time = "op-1", now
			res := apply(s, file, c)
			if res.Outcome != OutcomeRefused || res.Records != nil {
				t.Fatalf("result %+v, want refused", res)
			}
			if !errors.Is(res.Err, tt.want) {
				t.Errorf("err %v does not wrap %v", res.Err, tt.want)
			}
			for _, other := range []error{ErrNotFound, ErrConflict, ErrInvalid} {
				if other != tt.want && errors.Is(res.Err, other) {
					t.Errorf("err %v also wraps %v", res.Err, other)
				}
			}
			if !strings.Contains(res.Err.Error(), tt.msg) {
				t.Errorf("err %q does not say %q", res.Err, tt.msg)
			}
			if got := routeJSON(t, s); got != before {
				t.Errorf("refused command changed the state:\n%s\n%s", before, got)
			}
			if s.Seq != seq+1 || len(s.Audit) != audit+1 {
				t.Fatalf("Seq %d -> %d, audit %d -> %d", seq, s.Seq, audit, len(s.Audit))
			}
			e := s.Audit[len(s.Audit)-1]
			if e.Outcome != OutcomeRefused || e.Detail != res.Err.Error() || e.Record.ID != "op-1" || e.Action != c.Op ||
				!e.Time.Equal(now) || e.Actor != "ana" || e.Before != nil || e.After != nil {
				t.Errorf("audit entry %+v", e)
			}
		})
	}
}

// TestExpiry checks that pauses, throttles and locks end at their Until
// without a command.
func TestExpiry(t *testing.T) {
	f := routes(t)
	s := NewState()
	until := at(time.Hour)
	for _, c := range []Command{
		{Op: OpPause, Number: "1001", Until: &until, Reason: "p"},
		{Op: OpThrottle, Number: "1002", Rate: 5, Until: &until},
		{Op: OpLock, Number: "1003", Until: &until, Reason: "l"},
		{Op: OpPause, UseCase: "sales", Until: &until},
		{Op: OpLock, UseCase: "support", Until: &until, Reason: "l"},
		{Op: OpMark, Number: "2001", State: StateBlocked}, // no Until: stays
		{Op: OpPause, Number: "3001"},                     // no Until: stays
	} {
		c.Time = t0
		mustApply(t, s, f, c, OutcomeApplied)
	}
	before, after := until.Add(-time.Nanosecond), until
	if n := s.EffectiveNumber("1001", before); n.State != StatePaused || n.Until == nil {
		t.Errorf("1001 before until: %+v", n)
	}
	if n := s.EffectiveNumber("1001", after); n.State != StateActive || n.Until != nil || n.Reason != "" {
		t.Errorf("1001 at until: %+v", n)
	}
	if n := s.EffectiveNumber("1002", before); n.RateCap != 5 {
		t.Errorf("1002 before until: %+v", n)
	}
	if n := s.EffectiveNumber("1002", after); n.RateCap != 0 || n.CapUntil != nil {
		t.Errorf("1002 at until: %+v", n)
	}
	if n := s.EffectiveNumber("1003", before); n.Lock == nil {
		t.Errorf("1003 before until: %+v", n)
	}
	if n := s.EffectiveNumber("1003", after); n.Lock != nil {
		t.Errorf("1003 at until: %+v", n)
	}
	if u := s.EffectiveUseCase("sales", before); !u.Paused {
		t.Errorf("sales before until: %+v", u)
	}
	if u := s.EffectiveUseCase("sales", after); u.Paused || u.PausedUntil != nil {
		t.Errorf("sales at until: %+v", u)
	}
	if u := s.EffectiveUseCase("support", before); u.Lock == nil {
		t.Errorf("support before until: %+v", u)
	}
	if u := s.EffectiveUseCase("support", after); u.Lock != nil {
		t.Errorf("support at until: %+v", u)
	}
	far := at(365 * 24 * time.Hour)
	if n := s.EffectiveNumber("2001", far); n.State != StateBlocked {
		t.Errorf("2001: %+v", n)
	}
	if n := s.EffectiveNumber("3001", far); n.State != StatePaused {
		t.Errorf("3001: %+v", n)
	}
	// The stored state is not changed by looking at it.
	if s.Numbers["1001"].State != StatePaused {
		t.Error("EffectiveNumber changed the state")
	}
	// Unknown names are active and on whatsapp.
	if n := s.EffectiveNumber("9999", t0); n.State != StateActive {
		t.Errorf("unknown number: %+v", n)
	}
	if u := s.EffectiveUseCase("nope", t0); u.Channel != ChannelWhatsApp || u.Paused {
		t.Errorf("unknown use case: %+v", u)
	}
	// A pause that ended lets an operator switch to the number again.
	mustApply(t, s, f, Command{Time: after, Op: OpSwitch, UseCase: "sales", To: "1001"}, OutcomeApplied)
}

func TestFailover(t *testing.T) {
	tests := []struct {
		name      string
		setup     []Command // operator commands at t0
		params    map[string]string
		labels    map[string]string
		actions   []string // record actions, in order
		targets   []string
		numbers   map[string]string // number -> state after
		preferred map[string]string // use case -> preferred after
		channel   map[string]string // use case -> channel after
		undo      []Undo
	}{
		{name: "by phone_number: degraded, reserve preferred",
			params:    map[string]string{"phone_number": "1001"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1001", "sales"},
			numbers:   map[string]string{"1001": StateDegraded, "1003": StateActive},
			preferred: map[string]string{"sales": "1003"},
			channel:   map[string]string{"sales": "whatsapp"},
			undo: []Undo{{Kind: "number_state", Number: "1001", Set: StateDegraded},
				{Kind: "preferred", UseCase: "sales", Set: "1003"}}},
		{name: "by the alert's phone_number label",
			labels:    map[string]string{"phone_number": "1001"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1001", "sales"},
			numbers:   map[string]string{"1001": StateDegraded},
			preferred: map[string]string{"sales": "1003"}},
		{name: "by use case: its current number",
			params:    map[string]string{"use_case": "sales"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1001", "sales"},
			numbers:   map[string]string{"1001": StateDegraded},
			preferred: map[string]string{"sales": "1003"}},
		{name: "by use case after a switch: the preferred number",
			setup:     []Command{{Op: OpSwitch, UseCase: "sales", To: "1002"}},
			params:    map[string]string{"use_case": "sales"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1002", "sales"},
			numbers:   map[string]string{"1002": StateDegraded, "1001": StateActive},
			preferred: map[string]string{"sales": "1003"}},
		{name: "reserve not active: the next active number",
			setup:     []Command{{Op: OpMark, Number: "1003", State: StateBlocked}},
			params:    map[string]string{"phone_number": "1001"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1001", "sales"},
			preferred: map[string]string{"sales": "1002"}},
		{name: "to",
			params:    map[string]string{"phone_number": "1001", "to": "1002"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1001", "sales"},
			preferred: map[string]string{"sales": "1002"}},
		{name: "to a number not active: next channel",
			setup:     []Command{{Op: OpPause, Number: "1002"}},
			params:    map[string]string{"phone_number": "1001", "to": "1002"},
			actions:   []string{"degrade", "fallback_channel"},
			targets:   []string{"1001", "sales"},
			preferred: map[string]string{"sales": ""},
			channel:   map[string]string{"sales": "sms"}},
		{name: "no active standby: next channel",
			setup:   []Command{{Op: OpMark, Number: "3002", State: StateBlocked}},
			params:  map[string]string{"phone_number": "3001"},
			actions: []string{"degrade", "fallback_channel"},
			targets: []string{"3001", "billing"},
			numbers: map[string]string{"3001": StateDegraded},
			channel: map[string]string{"billing": "sms"},
			undo: []Undo{{Kind: "number_state", Number: "3001", Set: StateDegraded},
				{Kind: "channel", UseCase: "billing", Set: "sms"}}},
		// Current behaviour, questionable: the use case's only number is
		// degraded though there is nowhere to go, so picks get ErrNoRoute.
		{name: "no standby and no other channel: only the degrade",
			params:  map[string]string{"phone_number": "2001"},
			actions: []string{"degrade"},
			targets: []string{"2001"},
			numbers: map[string]string{"2001": StateDegraded},
			channel: map[string]string{"support": "whatsapp"}},
		{name: "platform-wide: channel fallback instead of another number",
			setup: []Command{{Op: OpMark, Number: "2001", State: StateBlocked},
				{Op: OpMark, Number: "3001", State: StateDegraded}, {Op: OpPause, Number: "3002"}},
			params:    map[string]string{"phone_number": "1001"},
			actions:   []string{"degrade", "fallback_channel"},
			targets:   []string{"1001", "sales"},
			numbers:   map[string]string{"1001": StateDegraded, "1003": StateActive},
			preferred: map[string]string{"sales": ""},
			channel:   map[string]string{"sales": "sms"}},
		{name: "just below platform-wide: another number",
			setup:     []Command{{Op: OpMark, Number: "2001", State: StateBlocked}, {Op: OpMark, Number: "3001", State: StateDegraded}},
			params:    map[string]string{"phone_number": "1001"},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1001", "sales"},
			preferred: map[string]string{"sales": "1003"},
			channel:   map[string]string{"sales": "whatsapp"}},
		{name: "high_volume number: the reserve takes over",
			params:    map[string]string{"phone_number": "1002", "to": ""},
			actions:   []string{"degrade", "failover"},
			targets:   []string{"1002", "sales"},
			preferred: map[string]string{"sales": "1003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := routes(t)
			s := NewState()
			for _, c := range tt.setup {
				c.Time = t0
				mustApply(t, s, f, c, OutcomeApplied)
			}
			c := alertCmd(at(time.Minute), "occ1", 0, "failover", tt.params)
			if tt.labels != nil {
				c.Alert.Labels = tt.labels
			}
			res := mustApply(t, s, f, c, OutcomeApplied)
			var actions, targets []string
			for i, r := range res.Records {
				actions = append(actions, r.Action)
				targets = append(targets, r.Target)
				if r.ID != fmt.Sprintf("%s/%d", c.ID, i) || r.ActorKind != "rule" || r.Actor != "DeliveryRateDrop" ||
					r.AlertFingerprint != "fp-occ1" || r.Occurrence != "occ1" || r.Reason != "alert DeliveryRateDrop" || r.DryRun {
					t.Errorf("record %+v", r)
				}
			}
			if !slices.Equal(actions, tt.actions) || !slices.Equal(targets, tt.targets) {
				t.Errorf("records %v on %v, want %v on %v", actions, targets, tt.actions, tt.targets)
			}
			now := at(time.Minute)
			for id, want := range tt.numbers {
				if got := s.EffectiveNumber(id, now).State; got != want {
					t.Errorf("number %s is %s, want %s", id, got, want)
				}
			}
			for uc, want := range tt.preferred {
				if got := s.EffectiveUseCase(uc, now).Preferred; got != want {
					t.Errorf("%s preferred %q, want %q", uc, got, want)
				}
			}
			for uc, want := range tt.channel {
				if got := s.EffectiveUseCase(uc, now).Channel; got != want {
					t.Errorf("%s channel %q, want %q", uc, got, want)
				}
			}
			occ := s.Occurrences["occ1"]
			if occ == nil || occ.Alert != "DeliveryRateDrop" || occ.ResolvedAt != nil {
				t.Fatalf("occurrence %+v", occ)
			}
			if tt.undo != nil && !reflect.DeepEqual(occ.Changes, tt.undo) {
				t.Errorf("undo %+v, want %+v", occ.Changes, tt.undo)
			}
			if len(s.AutoTimes) != 1 || !s.LastAuto["number:"+tt.targets[0]].Equal(now) {
				t.Errorf("guards not updated: AutoTimes %v LastAuto %v", s.AutoTimes, s.LastAuto)
			}
		})
	}
}

// TestFailoverTwoUseCases: number 1002 serves sales and support in a file
// where both have a standby.
func TestFailoverTwoUseCases(t *testing.T) {
	f := mustParse(t, `
use_cases:
  - name: sales
    numbers: [{id: "1"}, {id: "2"}, {id: "9", role: reserve}]
  - name: support
    channels: [whatsapp, email]
    numbers: [{id: "3"}, {id: "2"}, {id: "4"}, {id: "5"}, {id: "6"}]
`)
	s := NewState()
	res := mustApply(t, s, f, alertCmd(t0, "occ", 0, "failover", map[string]string{"phone_number": "2"}), OutcomeApplied)
	var got []string
	for _, r := range res.Records {
		got = append(got, r.Action+":"+r.Target)
	}
	want := []string{"degrade:2", "failover:sales", "failover:support"}
	if !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if p := s.EffectiveUseCase("sales", t0).Preferred; p != "9" {
		t.Errorf("sales preferred %q, want the reserve 9", p)
	}
	if p := s.EffectiveUseCase("support", t0).Preferred; p != "3" {
		t.Errorf("support preferred %q, want 3 (no reserve: first other active)", p)
	}
	for _, k := range []string{"number:2", "use_case:sales", "use_case:support"} {
		if _, ok := s.LastAuto[k]; !ok {
			t.Errorf("LastAuto has no %s: %v", k, s.LastAuto)
		}
	}
}

func TestAlertIdempotency(t *testing.T) {
	f := routes(t)
	s := NewState()
	c := alertCmd(t0, "occ1", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "10/s"})
	mustApply(t, s, f, c, OutcomeApplied)
	before, audit := routeJSON(t, s), len(s.Audit)
	// Redelivered later, with another command id: still the same action
	// of the same occurrence.
	again := c
	again.ID, again.Time = "redelivered", at(30*time.Minute)
	res := apply(s, f, again)
	if res.Outcome != OutcomeDuplicate || res.Err != nil || res.Records != nil {
		t.Fatalf("again: %+v, want duplicate", res)
	}
	if got := routeJSON(t, s); got != before {
		t.Errorf("duplicate changed the state:\n%s\n%s", before, got)
	}
	if len(s.Audit) != audit {
		t.Error("duplicate added an audit entry")
	}
	// Another action of the same occurrence is not a duplicate.
	mustApply(t, s, f, alertCmd(at(time.Hour), "occ1", 1, "throttle", map[string]string{"phone_number": "2001", "rate": "10/s"}), OutcomeApplied)
	// Keys are kept a week, then forgotten.
	mustApply(t, s, f, alertCmd(at(7*24*time.Hour), "occ1", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "10/s"}), OutcomeDuplicate)
	late := alertCmd(at(7*24*time.Hour+time.Minute), "occ1", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "5/s"})
	mustApply(t, s, f, late, OutcomeApplied)
}

func TestAlertLock(t *testing.T) {
	f := routes(t)
	s := NewState()
	lockUntil := at(time.Hour)
	mustApply(t, s, f, Command{Time: t0, Op: OpLock, Number: "1001", Until: &lockUntil, Reason: "investigating"}, OutcomeApplied)
	before := routeJSON(t, s)
	res := apply(s, f, alertCmd(at(time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1001"}))
	if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrConflict) ||
		!strings.Contains(res.Err.Error(), "number:1001 is locked by ana until "+lockUntil.Format(time.RFC3339)+": investigating") {
		t.Fatalf("failover of a locked number: %+v", res)
	}
	// Only the idempotency key is new: the refusal is final for this
	// action of this occurrence.
	after := s.Clone()
	delete(after.Done, "occ1/0")
	if got := routeJSON(t, after); got != before {
		t.Errorf("refused alert changed the state:\n%s\n%s", before, got)
	}
	e := s.Audit[len(s.Audit)-1]
	if e.Outcome != OutcomeRefused || e.Target != "number:1001" || e.AlertFingerprint != "fp-occ1" || e.Occurrence != "occ1" {
		t.Errorf("audit entry %+v", e)
	}
	// A lock on a use case guards it too.
	mustApply(t, s, f, Command{Time: t0, Op: OpLock, UseCase: "billing", Until: &lockUntil, Reason: "x"}, OutcomeApplied)
	res = apply(s, f, alertCmd(at(time.Minute), "occ2", 0, "fallback_channel", map[string]string{"use_case": "billing", "channel": "sms"}))
	if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrConflict) {
		t.Errorf("fallback of a locked use case: %+v", res)
	}
	// Operators are not stopped by locks.
	mustApply(t, s, f, Command{Time: at(2 * time.Minute), Op: OpPause, Number: "1001"}, OutcomeApplied)
	mustApply(t, s, f, Command{Time: at(3 * time.Minute), Op: OpResume, Number: "1001"}, OutcomeApplied)
	// Once the lock expires, automation acts again.
	mustApply(t, s, f, alertCmd(lockUntil, "occ3", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
}

func TestAlertCooldown(t *testing.T) {
	f := routes(t, "cooldown: 10m")
	s := NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	before := routeJSON(t, s)
	res := apply(s, f, alertCmd(at(10*time.Minute-time.Second), "occ2", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "1/s"}))
	if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrConflict) || !strings.Contains(res.Err.Error(), "cooldown: number:1001 was changed automatically at") {
		t.Fatalf("within cooldown: %+v", res)
	}
	after := s.Clone()
	delete(after.Done, "occ2/0")
	if got := routeJSON(t, after); got != before {
		t.Errorf("refused alert changed the state:\n%s\n%s", before, got)
	}
	// The use case failed over with the number is in cooldown too.
	res = apply(s, f, alertCmd(at(time.Minute), "occ3", 0, "fallback_channel", map[string]string{"use_case": "sales", "channel": "sms"}))
	if res.Outcome != OutcomeRefused || !strings.Contains(res.Err.Error(), "cooldown: use_case:sales") {
		t.Errorf("use case within cooldown: %+v", res)
	}
	// Other targets are free.
	mustApply(t, s, f, alertCmd(at(time.Minute), "occ4", 0, "throttle", map[string]string{"phone_number": "2001", "rate": "1/s"}), OutcomeApplied)
	// Operators are not bound by the cooldown.
	mustApply(t, s, f, Command{Time: at(2 * time.Minute), Op: OpMark, Number: "1001", State: StateActive}, OutcomeApplied)
	// After the cooldown, the same target can change again.
	mustApply(t, s, f, alertCmd(at(10*time.Minute), "occ5", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "1/s"}), OutcomeApplied)
}

func TestAlertHourlyBudget(t *testing.T) {
	f := routes(t, "hourly_budget: 2")
	s := NewState()
	throttle := func(when time.Time, occ, number string) Command {
		return alertCmd(when, occ, 0, "throttle", map[string]string{"phone_number": number, "rate": "1/s"})
	}
	mustApply(t, s, f, throttle(t0, "a", "1001"), OutcomeApplied)
	mustApply(t, s, f, throttle(at(10*time.Minute), "b", "1002"), OutcomeApplied)
	res := apply(s, f, throttle(at(59*time.Minute), "c", "2001"))
	if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrConflict) ||
		!strings.Contains(res.Err.Error(), "budget: 2 automatic changes in the last hour (hourly_budget 2)") {
		t.Fatalf("over budget: %+v", res)
	}
	// Operator changes do not count.
	mustApply(t, s, f, Command{Time: at(59 * time.Minute), Op: OpThrottle, Number: "3001", Rate: 3}, OutcomeApplied)
	// An hour after the first change, there is room for one more.
	mustApply(t, s, f, throttle(at(time.Hour), "d", "2001"), OutcomeApplied)
	mustApply(t, s, f, throttle(at(time.Hour+time.Minute), "e", "3002"), OutcomeRefused)
	// Refused and noop alerts do not spend the budget.
	if len(s.AutoTimes) != 2 {
		t.Errorf("AutoTimes %v, want 2", s.AutoTimes)
	}
}

func TestAlertDryRun(t *testing.T) {
	f := routes(t, "dry_run: true")
	s := NewState()
	mustApply(t, s, f, Command{Time: t0, Op: OpSwitch, UseCase: "billing", To: "3002"}, OutcomeApplied)
	before := routesOnlyJSON(t, s)
	res := mustApply(t, s, f, alertCmd(at(time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeDryRun)
	if len(res.Records) != 2 {
		t.Fatalf("records %+v", res.Records)
	}
	for _, r := range res.Records {
		if !r.DryRun {
			t.Errorf("record %+v is not marked dry-run", r)
		}
	}
	if r := res.Records[0]; r.Action != "degrade" || decodeNumber(t, r.After).State != StateDegraded {
		t.Errorf("first record %+v", r)
	}
	if r := res.Records[1]; r.Action != "failover" || decodeUseCase(t, r.After).Preferred != "1003" {
		t.Errorf("second record %+v", r)
	}
	if got := routesOnlyJSON(t, s); got != before {
		t.Errorf("dry run changed the routes:\n%s\n%s", before, got)
	}
	if len(s.Occurrences) != 0 || len(s.LastAuto) != 0 || len(s.AutoTimes) != 0 {
		t.Errorf("dry run left automation memory: %+v %v %v", s.Occurrences, s.LastAuto, s.AutoTimes)
	}
	for _, e := range s.Audit[len(s.Audit)-2:] {
		if e.Outcome != OutcomeDryRun || !e.DryRun {
			t.Errorf("audit entry %+v", e)
		}
	}
	// Every kind of action is shadowed.
	for i, c := range []Command{
		alertCmd(at(2*time.Minute), "occ2", 0, "throttle", map[string]string{"waba": "w1", "rate": "1/s"}),
		alertCmd(at(2*time.Minute), "occ2", 1, "pause", map[string]string{"use_case": "billing", "for": "1h"}),
		alertCmd(at(2*time.Minute), "occ2", 2, "pause", map[string]string{"phone_number": "2001"}),
		alertCmd(at(2*time.Minute), "occ2", 3, "fallback_channel", map[string]string{"use_case": "sales", "channel": "email"}),
		alertCmd(at(2*time.Minute), "occ2", 4, "throttle", map[string]string{"template": "welcome", "rate": "1/s"}),
	} {
		res := mustApply(t, s, f, c, OutcomeDryRun)
		if len(res.Records) == 0 || !res.Records[0].DryRun {
			t.Errorf("action %d: %+v", i, res)
		}
	}
	if got := routesOnlyJSON(t, s); got != before {
		t.Errorf("dry run changed the routes:\n%s\n%s", before, got)
	}
	// The idempotency key is spent even in dry-run: a redelivery is a
	// duplicate, not a second shadow record.
	mustApply(t, s, f, alertCmd(at(3*time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeDuplicate)
}

func TestResolvedAndRestore(t *testing.T) {
	f := routes(t, "restore_after: 15m")
	s := NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	// Restore before resolved: nothing is due.
	mustApply(t, s, f, restoreCmd(at(2*time.Minute), "occ1"), OutcomeNoop)

	resolvedAt := at(5 * time.Minute)
	res := mustApply(t, s, f, resolvedCmd(resolvedAt, "occ1"), OutcomeApplied)
	if res.Records != nil {
		t.Errorf("resolved made records: %+v", res.Records)
	}
	occ := s.Occurrences["occ1"]
	if occ == nil || !occ.ResolvedAt.Equal(resolvedAt) || !occ.RestoreDue.Equal(at(20*time.Minute)) {
		t.Fatalf("occurrence %+v", occ)
	}
	// A second resolved does not move the due time.
	mustApply(t, s, f, resolvedCmd(at(10*time.Minute), "occ1"), OutcomeNoop)
	if !s.Occurrences["occ1"].RestoreDue.Equal(at(20 * time.Minute)) {
		t.Error("second resolved moved the restore")
	}
	// Resolved of an occurrence that did nothing is a noop.
	mustApply(t, s, f, resolvedCmd(at(5*time.Minute), "other"), OutcomeNoop)

	if due := s.DueRestores(at(20*time.Minute - time.Second)); len(due) != 0 {
		t.Errorf("DueRestores before due = %v", due)
	}
	if due := s.DueRestores(at(20 * time.Minute)); !slices.Equal(due, []string{"occ1"}) {
		t.Errorf("DueRestores at due = %v", due)
	}

	before := routeJSON(t, s)
	mustApply(t, s, f, restoreCmd(at(20*time.Minute-time.Second), "occ1"), OutcomeNoop)
	if got := routeJSON(t, s); got != before {
		t.Errorf("early restore changed the state")
	}

	now := at(20 * time.Minute)
	res = mustApply(t, s, f, restoreCmd(now, "occ1"), OutcomeApplied)
	var got []string
	for _, r := range res.Records {
		got = append(got, r.Action+":"+r.Target)
	}
	// Undone in reverse order: the preference first, then the number.
	if want := []string{"restore:sales", "restore:1001"}; !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if n := s.EffectiveNumber("1001", now); n.State != StateActive || n.RampStart == nil || !n.RampStart.Equal(now) {
		t.Errorf("1001 after restore: %+v (want active, ramping from now)", n)
	}
	if u := s.EffectiveUseCase("sales", now); u.Preferred != "" || u.Channel != ChannelWhatsApp {
		t.Errorf("sales after restore: %+v", u)
	}
	if _, ok := s.Occurrences["occ1"]; ok {
		t.Error("occurrence not forgotten after restore")
	}
	if due := s.DueRestores(at(time.Hour)); len(due) != 0 {
		t.Errorf("DueRestores after restore = %v", due)
	}
	mustApply(t, s, f, restoreCmd(at(21*time.Minute), "occ1"), OutcomeNoop)
	// The idempotency key outlives the occurrence: a redelivered alert
	// record does not fail over again.
	mustApply(t, s, f, alertCmd(at(22*time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeDuplicate)
}

func TestRestoreChannel(t *testing.T) {
	f := routes(t)
	s := NewState()
	for _, c := range []Command{{Op: OpMark, Number: "2001", State: StateBlocked},
		{Op: OpMark, Number: "3001", State: StateBlocked}, {Op: OpMark, Number: "3002", State: StateBlocked}} {
		c.Time = t0
		mustApply(t, s, f, c, OutcomeApplied)
	}
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	if ch := s.EffectiveUseCase("sales", t0).Channel; ch != "sms" {
		t.Fatalf("platform failover: channel %s", ch)
	}
	mustApply(t, s, f, resolvedCmd(at(time.Minute), "occ1"), OutcomeApplied)
	mustApply(t, s, f, restoreCmd(at(16*time.Minute), "occ1"), OutcomeApplied)
	if u := s.EffectiveUseCase("sales", at(16*time.Minute)); u.Channel != ChannelWhatsApp {
		t.Errorf("channel after restore: %+v", u)
	}
	if n := s.EffectiveNumber("1001", at(16*time.Minute)); n.State != StateActive {
		t.Errorf("1001 after restore: %+v", n)
	}
	// What operators marked stays.
	if n := s.EffectiveNumber("2001", at(16*time.Minute)); n.State != StateBlocked {
		t.Errorf("2001 after restore: %+v", n)
	}
}

func TestRestoreOtherKinds(t *testing.T) {
	f := routes(t)
	s := NewState()
	for i, c := range []Command{
		alertCmd(t0, "occ1", 0, "throttle", map[string]string{"waba": "w1", "rate": "10/s"}),
		alertCmd(t0, "occ1", 1, "pause", map[string]string{"use_case": "billing"}),
		alertCmd(t0, "occ1", 2, "pause", map[string]string{"phone_number": "2001", "for": "2h"}),
	} {
		if res := apply(s, f, c); res.Outcome != OutcomeApplied {
			t.Fatalf("action %d: %+v", i, res)
		}
	}
	mustApply(t, s, f, resolvedCmd(at(time.Minute), "occ1"), OutcomeApplied)
	now := at(16 * time.Minute)
	mustApply(t, s, f, restoreCmd(now, "occ1"), OutcomeApplied)
	for _, id := range []string{"1001", "1002", "2001"} {
		if n := s.EffectiveNumber(id, now); n.State != StateActive || n.RateCap != 0 {
			t.Errorf("%s after restore: %+v", id, n)
		}
	}
	if u := s.EffectiveUseCase("billing", now); u.Paused {
		t.Errorf("billing after restore: %+v", u)
	}
}

// TestRestoreSkipsOperatorChanges: the restore undoes only what is still
// as the alert set it.
func TestRestoreSkipsOperatorChanges(t *testing.T) {
	f := routes(t)
	s := NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	mustApply(t, s, f, alertCmd(t0, "occ1", 1, "throttle", map[string]string{"phone_number": "2001", "rate": "10/s"}), OutcomeApplied)
	// An operator changes the preference, marks the number blocked, and
	// throttles 2001 harder.
	mustApply(t, s, f, Command{Time: at(2 * time.Minute), Op: OpSwitch, UseCase: "sales", To: "1002"}, OutcomeApplied)
	mustApply(t, s, f, Command{Time: at(2 * time.Minute), Op: OpMark, Number: "1001", State: StateBlocked}, OutcomeApplied)
	mustApply(t, s, f, Command{Time: at(2 * time.Minute), Op: OpThrottle, Number: "2001", Rate: 2}, OutcomeApplied)
	mustApply(t, s, f, resolvedCmd(at(3*time.Minute), "occ1"), OutcomeApplied)
	now := at(18 * time.Minute)
	res := mustApply(t, s, f, restoreCmd(now, "occ1"), OutcomeApplied)
	if len(res.Records) != 0 {
		t.Errorf("restore changed what operators set: %+v", res.Records)
	}
	if u := s.EffectiveUseCase("sales", now); u.Preferred != "1002" {
		t.Errorf("sales preferred %q, want the operator's 1002", u.Preferred)
	}
	if n := s.EffectiveNumber("1001", now); n.State != StateBlocked {
		t.Errorf("1001 %s, want the operator's blocked", n.State)
	}
	if n := s.EffectiveNumber("2001", now); n.RateCap != 2 {
		t.Errorf("2001 cap %g, want the operator's 2", n.RateCap)
	}
	if _, ok := s.Occurrences["occ1"]; ok {
		t.Error("occurrence kept")
	}
}

// TestRestoreLeavesWhatTheAlertFoundSo: an alert that set a value already
// so (here the channel an operator chose) did not change it, so its
// restore must not undo it.
func TestRestoreLeavesWhatTheAlertFoundSo(t *testing.T) {
	f := routes(t, "cooldown: 1s")
	s := NewState()
	for _, c := range []Command{{Op: OpMark, Number: "2001", State: StateBlocked},
		{Op: OpMark, Number: "3001", State: StateBlocked}, {Op: OpMark, Number: "3002", State: StateBlocked},
		{Op: OpFallback, UseCase: "sales", Channel: "sms", Reason: "operator's choice"},
		{Op: OpThrottle, Number: "1002", Rate: 10, Reason: "operator's cap"}} {
		c.Time = t0
		mustApply(t, s, f, c, OutcomeApplied)
	}
	// Platform-wide: sales would go to sms, where it already is.
	res := mustApply(t, s, f, alertCmd(at(time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	if len(res.Records) != 1 || res.Records[0].Action != "degrade" {
		t.Errorf("records %+v, want only the degrade", res.Records)
	}
	// Throttling w1 at the rate the operator already set on 1002 only
	// changes 1001.
	mustApply(t, s, f, alertCmd(at(2*time.Minute), "occ1", 1, "throttle", map[string]string{"waba": "w1", "rate": "10/s"}), OutcomeApplied)
	mustApply(t, s, f, resolvedCmd(at(3*time.Minute), "occ1"), OutcomeApplied)
	now := at(20 * time.Minute)
	mustApply(t, s, f, restoreCmd(now, "occ1"), OutcomeApplied)
	if u := s.EffectiveUseCase("sales", now); u.Channel != "sms" {
		t.Errorf("sales channel %s after restore, want the operator's sms", u.Channel)
	}
	if n := s.EffectiveNumber("1002", now); n.RateCap != 10 {
		t.Errorf("1002 cap %g after restore, want the operator's 10", n.RateCap)
	}
	if n := s.EffectiveNumber("1001", now); n.State != StateActive || n.RateCap != 0 {
		t.Errorf("1001 after restore: %+v", n)
	}
}

// TestAlertKeepsOperatorPause: an alert's timed pause of a number or use
// case an operator paused for good neither shortens that pause nor ends
// it on restore.
func TestAlertKeepsOperatorPause(t *testing.T) {
	f := routes(t)
	s := NewState()
	mustApply(t, s, f, Command{Time: t0, Op: OpPause, Number: "2001", Reason: "operator"}, OutcomeApplied)
	mustApply(t, s, f, Command{Time: t0, Op: OpPause, UseCase: "billing", Reason: "operator"}, OutcomeApplied)
	mustApply(t, s, f, alertCmd(at(time.Minute), "occ1", 0, "pause", map[string]string{"phone_number": "2001", "for": "30m"}), OutcomeNoop)
	mustApply(t, s, f, alertCmd(at(time.Minute), "occ1", 1, "pause", map[string]string{"use_case": "billing", "for": "30m"}), OutcomeNoop)
	later := at(2 * time.Hour)
	if n := s.EffectiveNumber("2001", later); n.State != StatePaused || n.Reason != "operator" {
		t.Errorf("2001: %+v, want the operator's pause", n)
	}
	if u := s.EffectiveUseCase("billing", later); !u.Paused || u.Reason != "operator" {
		t.Errorf("billing: %+v, want the operator's pause", u)
	}
	if len(s.Occurrences) != 0 {
		t.Errorf("occurrences %+v: nothing to restore", s.Occurrences)
	}
}

func TestRestoreLocked(t *testing.T) {
	f := routes(t)
	s := NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	mustApply(t, s, f, resolvedCmd(at(time.Minute), "occ1"), OutcomeApplied)
	lockUntil := at(time.Hour)
	mustApply(t, s, f, Command{Time: at(2 * time.Minute), Op: OpLock, UseCase: "sales", Until: &lockUntil, Reason: "keep it"}, OutcomeApplied)
	before := routeJSON(t, s)
	res := apply(s, f, restoreCmd(at(20*time.Minute), "occ1"))
	if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrConflict) || !strings.Contains(res.Err.Error(), "use_case:sales is locked by ana") {
		t.Fatalf("restore while locked: %+v", res)
	}
	if got := routeJSON(t, s); got != before {
		t.Errorf("refused restore changed the state:\n%s\n%s", before, got)
	}
	if due := s.DueRestores(at(30 * time.Minute)); !slices.Equal(due, []string{"occ1"}) {
		t.Errorf("DueRestores while locked = %v, want occ1 still due", due)
	}
	mustApply(t, s, f, restoreCmd(lockUntil, "occ1"), OutcomeApplied)
	if u := s.EffectiveUseCase("sales", lockUntil); u.Preferred != "" {
		t.Errorf("sales after restore: %+v", u)
	}
}

// TestRestoreInherited: a new alert on a target whose restore is pending
// takes the pending restore over; the old occurrence's restore does
// nothing, the new one's undoes both.
func TestRestoreInherited(t *testing.T) {
	f := routes(t)
	s := NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	mustApply(t, s, f, resolvedCmd(at(time.Minute), "occ1"), OutcomeApplied) // due at 16m
	mustApply(t, s, f, alertCmd(at(12*time.Minute), "occ2", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "5/s"}), OutcomeApplied)
	if _, ok := s.Occurrences["occ1"]; ok {
		t.Error("occ1 still pending")
	}
	occ2 := s.Occurrences["occ2"]
	if occ2 == nil || len(occ2.Changes) != 3 || occ2.ResolvedAt != nil {
		t.Fatalf("occ2 %+v, want the 2 changes of occ1 and its own", occ2)
	}
	mustApply(t, s, f, restoreCmd(at(16*time.Minute), "occ1"), OutcomeNoop)
	if n := s.EffectiveNumber("1001", at(16*time.Minute)); n.State != StateDegraded {
		t.Errorf("1001 restored by the old occurrence: %+v", n)
	}
	mustApply(t, s, f, resolvedCmd(at(30*time.Minute), "occ2"), OutcomeApplied)
	now := at(45 * time.Minute)
	mustApply(t, s, f, restoreCmd(now, "occ2"), OutcomeApplied)
	if n := s.EffectiveNumber("1001", now); n.State != StateActive || n.RateCap != 0 {
		t.Errorf("1001 after restore: %+v", n)
	}
	if u := s.EffectiveUseCase("sales", now); u.Preferred != "" {
		t.Errorf("sales after restore: %+v", u)
	}
	if len(s.Occurrences) != 0 {
		t.Errorf("occurrences left: %v", s.Occurrences)
	}

	// Inherited even when the new alert is refused (cooldown): the target
	// is unhealthy again, so the new occurrence decides when to restore.
	s = NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	mustApply(t, s, f, resolvedCmd(at(time.Minute), "occ1"), OutcomeApplied)
	mustApply(t, s, f, alertCmd(at(5*time.Minute), "occ2", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "5/s"}), OutcomeRefused)
	if occ2 := s.Occurrences["occ2"]; occ2 == nil || len(occ2.Changes) != 2 {
		t.Fatalf("occ2 %+v, want occ1's 2 changes", occ2)
	}
	// An alert on an unrelated target does not inherit.
	s = NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	mustApply(t, s, f, resolvedCmd(at(time.Minute), "occ1"), OutcomeApplied)
	mustApply(t, s, f, alertCmd(at(5*time.Minute), "occ3", 0, "throttle", map[string]string{"phone_number": "2001", "rate": "5/s"}), OutcomeApplied)
	if occ1 := s.Occurrences["occ1"]; occ1 == nil || occ1.RestoreDue == nil {
		t.Errorf("occ1 %+v, want its restore still pending", occ1)
	}
}

func TestAlertActions(t *testing.T) {
	tests := []struct {
		name   string
		typ    string
		params map[string]string
		check  func(t *testing.T, s *State, res Result)
	}{
		{"throttle by waba", "throttle", map[string]string{"waba": "w1", "rate": "600/m"}, func(t *testing.T, s *State, res Result) {
			for _, id := range []string{"1001", "1002"} {
				if n := s.EffectiveNumber(id, t0); n.RateCap != 10 || n.CapUntil != nil {
					t.Errorf("%s: %+v", id, n)
				}
			}
			if n := s.EffectiveNumber("1003", t0); n.RateCap != 0 {
				t.Errorf("1003 (w2) throttled: %+v", n)
			}
			if len(res.Records) != 2 || res.Records[0].Action != OpThrottle {
				t.Errorf("records %+v", res.Records)
			}
		}},
		{"throttle by use case", "throttle", map[string]string{"use_case": "billing", "rate": "2/s"}, func(t *testing.T, s *State, res Result) {
			for _, id := range []string{"3001", "3002"} {
				if n := s.EffectiveNumber(id, t0); n.RateCap != 2 {
					t.Errorf("%s: %+v", id, n)
				}
			}
		}},
		{"pause by use case, for", "pause", map[string]string{"use_case": "billing", "for": "30m"}, func(t *testing.T, s *State, res Result) {
			u := s.EffectiveUseCase("billing", t0)
			if !u.Paused || u.PausedUntil == nil || !u.PausedUntil.Equal(at(30*time.Minute)) {
				t.Errorf("billing: %+v", u)
			}
			if u := s.EffectiveUseCase("billing", at(30*time.Minute)); u.Paused {
				t.Error("pause did not end")
			}
		}},
		{"pause by waba", "pause", map[string]string{"waba": "w3"}, func(t *testing.T, s *State, res Result) {
			for _, id := range []string{"3001", "3002"} {
				if n := s.EffectiveNumber(id, t0); n.State != StatePaused || n.Until != nil {
					t.Errorf("%s: %+v", id, n)
				}
			}
			if u := s.EffectiveUseCase("billing", t0); u.Paused {
				t.Error("pause by waba paused the use case")
			}
		}},
		{"pause by phone_number with use_case", "pause", map[string]string{"phone_number": "1002", "use_case": "sales"}, func(t *testing.T, s *State, res Result) {
			if n := s.EffectiveNumber("1002", t0); n.State != StatePaused {
				t.Errorf("1002: %+v", n)
			}
			if u := s.EffectiveUseCase("sales", t0); u.Paused {
				t.Error("paused the use case, not the number")
			}
		}},
		{"fallback_channel by use case", "fallback_channel", map[string]string{"use_case": "sales", "channel": "email"}, func(t *testing.T, s *State, res Result) {
			if u := s.EffectiveUseCase("sales", t0); u.Channel != "email" {
				t.Errorf("sales: %+v", u)
			}
		}},
		{"fallback_channel by waba", "fallback_channel", map[string]string{"waba": "w3", "channel": "sms"}, func(t *testing.T, s *State, res Result) {
			if u := s.EffectiveUseCase("billing", t0); u.Channel != "sms" {
				t.Errorf("billing: %+v", u)
			}
		}},
		// w2 serves sales (chain whatsapp, sms, email) and support
		// (whatsapp only): a WABA-wide fallback to a channel sales lacks
		// takes sales to its own next channel and leaves support alone.
		{"fallback_channel by waba, channel outside a chain", "fallback_channel", map[string]string{"waba": "w2", "channel": "push"}, func(t *testing.T, s *State, res Result) {
			if u := s.EffectiveUseCase("sales", t0); u.Channel != "sms" {
				t.Errorf("sales: %+v, want its next channel sms", u)
			}
			if u := s.EffectiveUseCase("support", t0); u.Channel != ChannelWhatsApp {
				t.Errorf("support (whatsapp only): %+v", u)
			}
			if len(res.Records) != 1 || res.Records[0].UseCase != "sales" {
				t.Errorf("records %+v, want one for sales", res.Records)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := routes(t)
			s := NewState()
			res := mustApply(t, s, f, alertCmd(t0, "occ", 0, tt.typ, tt.params), OutcomeApplied)
			tt.check(t, s, res)
		})
	}
}

func TestAlertRefused(t *testing.T) {
	tests := []struct {
		name   string
		typ    string
		params map[string]string
		want   error
		msg    string
	}{
		{"unknown type", "reboot", nil, ErrInvalid, `unknown action type "reboot"`},
		{"throttle, bad rate", "throttle", map[string]string{"phone_number": "1001", "rate": "fast"}, ErrInvalid, "throttle rate: "},
		{"throttle, unknown number", "throttle", map[string]string{"phone_number": "9999", "rate": "1/s"}, ErrNotFound,
			"throttle: no configured number matches number:9999"},
		{"throttle, unknown waba", "throttle", map[string]string{"waba": "w9", "rate": "1/s"}, ErrNotFound, "no configured number matches waba:w9"},
		{"throttle, no target", "throttle", map[string]string{"rate": "1/s"}, ErrNotFound, "no configured number matches all"},
		{"pause, bad for", "pause", map[string]string{"use_case": "sales", "for": "a while"}, ErrInvalid, "pause for: "},
		{"pause, unknown use case", "pause", map[string]string{"use_case": "nope"}, ErrNotFound, `no use case "nope"`},
		{"failover, unknown use case", "failover", map[string]string{"use_case": "nope"}, ErrNotFound, `no use case "nope"`},
		{"failover, unknown number", "failover", map[string]string{"phone_number": "9999"}, ErrNotFound, `number "9999" is in no use case`},
		{"failover, no target", "failover", nil, ErrInvalid, "the action names no use case, number or waba"},
		{"fallback_channel, not in chain", "fallback_channel", map[string]string{"use_case": "support", "channel": "sms"}, ErrInvalid,
			`channel "sms" is not in the chain of use case support`},
		{"fallback_channel, no use case can fall back", "fallback_channel", map[string]string{"phone_number": "2001", "channel": "sms"}, ErrConflict,
			"no use case of number:2001 has a channel to fall back to"},
		{"fallback_channel, unknown waba", "fallback_channel", map[string]string{"waba": "w9", "channel": "sms"}, ErrNotFound,
			`waba "w9" has no configured number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := routes(t)
			s := NewState()
			res := apply(s, f, alertCmd(t0, "occ", 0, tt.typ, tt.params))
			if res.Outcome != OutcomeRefused || !errors.Is(res.Err, tt.want) || !strings.Contains(res.Err.Error(), tt.msg) {
				t.Errorf("result %+v, want refused %v %q", res, tt.want, tt.msg)
			}
			if len(s.Numbers) != 0 || len(s.UseCases) != 0 || len(s.Occurrences) != 0 || len(s.AutoTimes) != 0 {
				t.Errorf("refused alert changed the state: %+v", s)
			}
			// The audit names the refused action, not the command's op.
			if n := len(s.Audit); n != 1 || s.Audit[0].Action != tt.typ || s.Audit[0].Outcome != OutcomeRefused {
				t.Errorf("audit %+v, want one refused %s entry", s.Audit, tt.typ)
			}
		})
	}
	f := routes(t)
	for _, op := range []string{OpAlert, OpResolved, OpRestore} {
		s := NewState()
		res := apply(s, f, Command{Time: t0, Op: op, Actor: "r", ActorKind: "rule"})
		if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrInvalid) {
			t.Errorf("%s without an alert: %+v", op, res)
		}
	}
	s := NewState()
	c := alertCmd(t0, "", 0, "failover", map[string]string{"phone_number": "1001"})
	if res := apply(s, f, c); res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrInvalid) {
		t.Errorf("alert without occurrence: %+v", res)
	}
}

// TestAdvisory: campaigns and templates are the senders' business; the
// action is recorded for them.
func TestAdvisory(t *testing.T) {
	tests := []struct {
		typ    string
		params map[string]string
		action string
		target string
	}{
		{"throttle", map[string]string{"template": "welcome", "rate": "1/s"}, "advise_throttle", "template:welcome"},
		{"pause", map[string]string{"campaign": "black-friday"}, "advise_pause", "campaign:black-friday"},
		{"pause", map[string]string{"campaign": "bf", "template": "promo"}, "advise_pause", "template:promo"},
		{"fallback_channel", map[string]string{"campaign": "bf", "channel": "sms"}, "advise_fallback_channel", "campaign:bf"},
		{"notify_senders", map[string]string{"message": "slow down"}, "advise_notify_senders", "all"},
		{"notify_senders", map[string]string{"use_case": "sales"}, "advise_notify_senders", "use_case:sales"},
	}
	for _, tt := range tests {
		t.Run(tt.action+" "+tt.target, func(t *testing.T) {
			f := routes(t)
			s := NewState()
			c := alertCmd(t0, "occ", 0, tt.typ, tt.params)
			res := mustApply(t, s, f, c, OutcomeApplied)
			if len(res.Records) != 1 {
				t.Fatalf("records %+v", res.Records)
			}
			r := res.Records[0]
			want, _ := json.Marshal(tt.params)
			if r.Action != tt.action || r.Target != tt.target || r.UseCase != tt.params["use_case"] || string(r.After) != string(want) ||
				r.ID != c.ID+"/0" || r.Occurrence != "occ" || r.AlertFingerprint != "fp-occ" || r.DryRun {
				t.Errorf("record %+v", r)
			}
			if len(s.Numbers) != 0 || len(s.UseCases) != 0 {
				t.Errorf("advisory changed routes: %+v %+v", s.Numbers, s.UseCases)
			}
			if _, ok := s.LastAuto["advisory:"+tt.target]; !ok {
				t.Errorf("LastAuto %v: advisories have their own cooldown", s.LastAuto)
			}
		})
	}
}

// commandLog is a mix of every kind of command, for the determinism
// tests.
func commandLog() []Command {
	until := at(90 * time.Minute)
	op := func(d time.Duration, c Command) Command {
		c.ID, c.Time, c.Actor, c.ActorKind = fmt.Sprintf("op-%s", d), at(d), "ana", "operator"
		return c
	}
	return []Command{
		op(0, Command{Op: OpSwitch, UseCase: "sales", To: "1002", Reason: "test"}),
		op(time.Minute, Command{Op: OpThrottle, Number: "2001", Rate: 5, Until: &until}),
		alertCmd(at(2*time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1002"}),
		alertCmd(at(2*time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1002"}),
		alertCmd(at(3*time.Minute), "occ2", 0, "pause", map[string]string{"use_case": "billing", "for": "1h"}),
		alertCmd(at(3*time.Minute), "occ2", 1, "throttle", map[string]string{"template": "t", "rate": "1/s"}),
		op(4*time.Minute, Command{Op: OpLock, Number: "3001", Until: &until, Reason: "x"}),
		alertCmd(at(5*time.Minute), "occ3", 0, "throttle", map[string]string{"phone_number": "3001", "rate": "1/s"}),
		op(6*time.Minute, Command{Op: OpMark, Number: "3002", State: StateBlocked}),
		op(7*time.Minute, Command{Op: OpRamp, Number: "3002"}),
		resolvedCmd(at(8*time.Minute), "occ1"),
		op(9*time.Minute, Command{Op: OpPause, Number: "9999"}),
		restoreCmd(at(30*time.Minute), "occ1"),
		resolvedCmd(at(31*time.Minute), "occ2"),
		op(32*time.Minute, Command{Op: OpFallback, UseCase: "sales", Channel: "email"}),
	}
}

func TestDeterminism(t *testing.T) {
	f := routes(t)
	run := func() (*State, []byte) {
		s := NewState()
		for _, c := range commandLog() {
			s.Apply(f, c)
		}
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return s, data
	}
	s1, a := run()
	_, b := run()
	if string(a) != string(b) {
		t.Errorf("same log, different states:\n%s\n%s", a, b)
	}
	if s1.Seq != int64(len(commandLog())) || len(s1.Audit) == 0 || len(s1.Occurrences) == 0 {
		t.Errorf("the log did not do much: seq %d, %d audit entries, %d occurrences", s1.Seq, len(s1.Audit), len(s1.Occurrences))
	}

	// A clone, and a state restored from its JSON snapshot, are equal to
	// the original, and go on the same way.
	c := s1.Clone()
	if !reflect.DeepEqual(c, s1) {
		t.Errorf("clone differs:\n%+v\n%+v", c, s1)
	}
	restored := NewState()
	if err := json.Unmarshal(a, restored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(restored, s1) {
		t.Error("state restored from JSON differs")
	}
	next := alertCmd(at(time.Hour), "occ9", 0, "failover", map[string]string{"use_case": "sales"})
	r1, r2 := s1.Apply(f, next), restored.Apply(f, next)
	if !reflect.DeepEqual(r1, r2) {
		t.Errorf("original and restored apply differently:\n%+v\n%+v", r1, r2)
	}
	j1, _ := json.Marshal(s1)
	j2, _ := json.Marshal(restored)
	if string(j1) != string(j2) {
		t.Error("original and restored diverged")
	}
	// The clone is deep: changing it leaves the original alone.
	c.Numbers["1002"].State = StateBlocked
	c.UseCases["sales"].Preferred = "x"
	c.Audit[0].Detail = "changed"
	if s1.Numbers["1002"].State == StateBlocked || s1.UseCases["sales"].Preferred == "x" || s1.Audit[0].Detail == "changed" {
		t.Error("clone shares memory with the original")
	}
}

func TestAuditBounded(t *testing.T) {
	f := routes(t, "audit_size: 3")
	s := NewState()
	for i := range 5 {
		apply(s, f, Command{ID: fmt.Sprintf("c%d", i), Time: at(time.Duration(i) * time.Minute), Op: OpPause, Number: "9999"})
	}
	var ids []string
	for _, e := range s.Audit {
		ids = append(ids, e.Record.ID)
	}
	if !slices.Equal(ids, []string{"c2", "c3", "c4"}) {
		t.Errorf("audit %v, want the 3 latest", ids)
	}
	if s.Seq != 5 {
		t.Errorf("Seq %d", s.Seq)
	}
}

// TestFailoverUnknownNumber: a failover naming a use case and a number
// the routes file does not have is refused, not applied to a phantom
// number without a record.
func TestFailoverUnknownNumber(t *testing.T) {
	f := routes(t)
	s := NewState()
	res := apply(s, f, alertCmd(t0, "occ", 0, "failover", map[string]string{"use_case": "sales", "phone_number": "9999"}))
	if res.Outcome != OutcomeRefused || !errors.Is(res.Err, ErrNotFound) {
		t.Errorf("result %+v, want refused: not found", res)
	}
	if _, ok := s.Numbers["9999"]; ok {
		t.Errorf("state has the unknown number: %+v", s.Numbers["9999"])
	}
}

// TestCooldownSameOccurrence: a rule with two actions on one number
// (throttle, then failover) acts whole: the cooldown holds back other
// occurrences, not the rest of the one that made the change.
func TestCooldownSameOccurrence(t *testing.T) {
	f := routes(t)
	s := NewState()
	mustApply(t, s, f, alertCmd(t0, "occ1", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "10/s"}), OutcomeApplied)
	mustApply(t, s, f, alertCmd(t0, "occ1", 1, "failover", map[string]string{"phone_number": "1001"}), OutcomeApplied)
	if n := s.EffectiveNumber("1001", t0); n.State != StateDegraded || n.RateCap != 10 {
		t.Errorf("1001 after throttle and failover: %+v", n)
	}
	// Another occurrence on the same number is still held back.
	res := apply(s, f, alertCmd(at(time.Second), "occ2", 0, "throttle", map[string]string{"phone_number": "1001", "rate": "5/s"}))
	if res.Outcome != OutcomeRefused || !strings.Contains(res.Err.Error(), "cooldown") {
		t.Errorf("another occurrence within the cooldown: %+v", res)
	}
}

// TestPartialPlan: a WABA-wide action goes ahead on the targets no lock
// or cooldown holds back, and the audit says which were held back; a
// failover (one move) waits whole.
func TestPartialPlan(t *testing.T) {
	f := routes(t)
	s := NewState()
	lockUntil := at(time.Hour)
	// w1 has 1001 and 1002; lock 1002.
	mustApply(t, s, f, Command{Time: t0, Op: OpLock, Number: "1002", Until: &lockUntil, Reason: "vip campaign"}, OutcomeApplied)
	res := apply(s, f, alertCmd(at(time.Minute), "occ1", 0, "throttle", map[string]string{"waba": "w1", "rate": "10/s"}))
	if res.Outcome != OutcomeApplied || len(res.Records) != 1 || res.Records[0].Target != "1001" {
		t.Fatalf("throttle of w1 with 1002 locked: %+v", res)
	}
	if n := s.EffectiveNumber("1002", at(time.Minute)); n.RateCap != 0 {
		t.Errorf("the locked 1002 was throttled: %+v", n)
	}
	var held []Entry
	for _, e := range s.Audit {
		if e.Outcome == OutcomeRefused {
			held = append(held, e)
		}
	}
	if len(held) != 1 || held[0].Target != "number:1002" || held[0].Action != "throttle" || !strings.Contains(held[0].Detail, "vip campaign") {
		t.Errorf("refused audit entries %+v, want one for number:1002", held)
	}
	// The restore undoes only what was done.
	mustApply(t, s, f, resolvedCmd(at(2*time.Minute), "occ1"), OutcomeApplied)
	if occ := s.Occurrences["occ1"]; len(occ.Changes) != 1 || occ.Changes[0].Number != "1001" {
		t.Errorf("occurrence changes %+v, want only 1001's", occ.Changes)
	}

	// Every target held back: refused whole.
	s = NewState()
	mustApply(t, s, f, Command{Time: t0, Op: OpLock, Number: "1001", Until: &lockUntil, Reason: "x"}, OutcomeApplied)
	mustApply(t, s, f, Command{Time: t0, Op: OpLock, Number: "1002", Until: &lockUntil, Reason: "x"}, OutcomeApplied)
	if res := apply(s, f, alertCmd(at(time.Minute), "occ1", 0, "throttle", map[string]string{"waba": "w1", "rate": "10/s"})); res.Outcome != OutcomeRefused {
		t.Errorf("throttle of w1 with both numbers locked: %+v", res)
	}

	// A failover whose use case is locked waits whole, number included.
	s = NewState()
	mustApply(t, s, f, Command{Time: t0, Op: OpLock, UseCase: "sales", Until: &lockUntil, Reason: "x"}, OutcomeApplied)
	if res := apply(s, f, alertCmd(at(time.Minute), "occ1", 0, "failover", map[string]string{"phone_number": "1001"})); res.Outcome != OutcomeRefused {
		t.Errorf("failover with sales locked: %+v", res)
	}
	if n := s.EffectiveNumber("1001", at(time.Minute)); n.State != StateActive {
		t.Errorf("1001 degraded although its failover was refused: %+v", n)
	}
}

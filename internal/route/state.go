package route

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/rules"
)

// Number states.
const (
	StateActive   = "active"   // in use
	StateDegraded = "degraded" // moved away from by a failover; not picked
	StatePaused   = "paused"   // stopped by an operator or a rule; not picked
	StateBlocked  = "blocked"  // blocked by Meta, as an operator marked it; not picked
)

// Ops of commands. The first group is what operators do through the API;
// the second is what the automation proposes.
const (
	OpSwitch   = "switch"   // use case: prefer number To
	OpPause    = "pause"    // a number or a use case, until Until if set
	OpResume   = "resume"   // a number (active, no throttle) or a use case
	OpThrottle = "throttle" // a number: cap its rate to Rate, until Until if set
	OpFallback = "fallback" // use case: send on Channel (whatsapp: back to numbers)
	OpLock     = "lock"     // a number or a use case: automation keeps off until Until
	OpUnlock   = "unlock"
	OpMark     = "mark" // a number: set State (active, degraded, blocked)
	OpRamp     = "ramp" // a number: start its ramp schedule now

	OpAlert    = "alert"    // carry out one action of a firing alert
	OpResolved = "resolved" // an alert resolved: schedule the restore of what it did
	OpRestore  = "restore"  // undo what an alert occurrence did, once due
)

// Outcomes of a command.
const (
	OutcomeApplied   = "applied"
	OutcomeDryRun    = "dry_run"   // shadow mode: recorded, not done
	OutcomeRefused   = "refused"   // a guard or a check said no; nothing changed
	OutcomeDuplicate = "duplicate" // the idempotency key was seen; nothing changed
	OutcomeNoop      = "noop"      // nothing to do (already so)
)

// Command is one change request, as written to the route log. Time is
// when it was proposed; Apply uses it as "now", so every replica
// computes the same result.
type Command struct {
	ID        string     `json:"id"`
	Time      time.Time  `json:"time"`
	Op        string     `json:"op"`
	Actor     string     `json:"actor"`
	ActorKind string     `json:"actor_kind"` // operator or rule
	UseCase   string     `json:"use_case,omitempty"`
	Number    string     `json:"number,omitempty"`
	To        string     `json:"to,omitempty"`
	Channel   string     `json:"channel,omitempty"`
	State     string     `json:"state,omitempty"`
	Rate      float64    `json:"rate,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Alert     *AlertRef  `json:"alert,omitempty"`
	// FileHash is the routes file of the proposer, so that a replica
	// applying it with another file can say so.
	FileHash string `json:"file_hash,omitempty"`
}

// AlertRef is the alert occurrence behind an automatic command.
type AlertRef struct {
	Name        string            `json:"alertname"`
	Fingerprint string            `json:"fingerprint"`
	Occurrence  string            `json:"occurrence"`
	Labels      map[string]string `json:"labels,omitempty"`
	Index       int               `json:"index"` // of the action in the rule
	Action      alert.Action      `json:"action"`
}

// Lock keeps automation off a number or a use case until Until.
type Lock struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// NumberState is the run-time state of one number.
type NumberState struct {
	State     string     `json:"state"`
	Reason    string     `json:"reason,omitempty"`
	Since     time.Time  `json:"since"`
	Until     *time.Time `json:"until,omitempty"` // of a pause
	RateCap   float64    `json:"rate_cap,omitempty"`
	CapUntil  *time.Time `json:"rate_cap_until,omitempty"`
	RampStart *time.Time `json:"ramp_start,omitempty"`
	Lock      *Lock      `json:"lock,omitempty"`
}

// UseCaseState is the run-time state of one use case.
type UseCaseState struct {
	Channel     string     `json:"channel"`             // the channel in use; whatsapp normally
	Preferred   string     `json:"preferred,omitempty"` // the number traffic was switched to
	Paused      bool       `json:"paused,omitempty"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	Lock        *Lock      `json:"lock,omitempty"`
	Reason      string     `json:"reason,omitempty"` // of the last change
	Since       time.Time  `json:"since"`
}

// Occurrence is what automation remembers of one alert occurrence: the
// changes it made, to undo them once it resolved and stayed so.
type Occurrence struct {
	Alert      string     `json:"alertname"`
	Changes    []Undo     `json:"changes"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	RestoreDue *time.Time `json:"restore_due,omitempty"`
}

// Undo is one change automation made, with the value it set: the restore
// undoes it only if the value is still the one set (an operator's later
// change wins).
type Undo struct {
	Kind    string  `json:"kind"` // number_state, preferred, channel, rate_cap, use_case_pause
	UseCase string  `json:"use_case,omitempty"`
	Number  string  `json:"number,omitempty"`
	Set     string  `json:"set,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
}

// Entry is one audit log entry: a route change, a dry-run change, or a
// refused command.
type Entry struct {
	action.Record
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// State is everything that changes at run time. Its zero value is not
// usable: see [NewState].
type State struct {
	Seq         int64                    `json:"seq"` // commands applied
	Numbers     map[string]*NumberState  `json:"numbers"`
	UseCases    map[string]*UseCaseState `json:"use_cases"`
	Occurrences map[string]*Occurrence   `json:"occurrences"`
	Done        map[string]time.Time     `json:"done"`         // idempotency keys of automatic commands
	LastAuto    map[string]time.Time     `json:"last_auto"`    // target -> last automatic change, for the cooldown
	LastAutoBy  map[string]string        `json:"last_auto_by"` // target -> the occurrence that made it: its other actions are not held back
	AutoTimes   []time.Time              `json:"auto_times"`
	Audit       []Entry                  `json:"audit"` // oldest first, bounded by automation.audit_size
}

// NewState returns the state of a log with no commands.
func NewState() *State {
	return &State{Numbers: map[string]*NumberState{}, UseCases: map[string]*UseCaseState{},
		Occurrences: map[string]*Occurrence{}, Done: map[string]time.Time{}, LastAuto: map[string]time.Time{},
		LastAutoBy: map[string]string{}}
}

// doneHorizon is how long idempotency keys are kept: longer than any
// redelivery of an alert record (the alerts topic is read from the
// committed offset, and a replica restarts within minutes).
const doneHorizon = 7 * 24 * time.Hour

// Error kinds of a refused command, for the API's status code.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// Result is what applying a command did.
type Result struct {
	Outcome string
	Err     error           // why it was refused; wraps ErrNotFound, ErrConflict or ErrInvalid
	Records []action.Record // the changes (also dry-run ones), in order
}

// Clone returns a deep copy, through JSON: the snapshot format is the
// copy format, so what a snapshot loses a clone loses too (and tests
// catch it).
func (s *State) Clone() *State {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	c := NewState()
	if err := json.Unmarshal(data, c); err != nil {
		panic(err)
	}
	return c
}

// number returns the state of id, creating the default one.
func (s *State) number(id string) *NumberState {
	n := s.Numbers[id]
	if n == nil {
		n = &NumberState{State: StateActive}
		s.Numbers[id] = n
	}
	return n
}

func (s *State) useCase(name string) *UseCaseState {
	u := s.UseCases[name]
	if u == nil {
		u = &UseCaseState{Channel: ChannelWhatsApp}
		s.UseCases[name] = u
	}
	return u
}

// EffectiveNumber is a number's state at now: pauses, throttles and locks
// whose Until passed are over.
func (s *State) EffectiveNumber(id string, now time.Time) NumberState {
	n, ok := s.Numbers[id]
	if !ok {
		return NumberState{State: StateActive}
	}
	e := *n
	if e.State == StatePaused && e.Until != nil && !now.Before(*e.Until) {
		e.State, e.Until, e.Reason = StateActive, nil, ""
	}
	if e.CapUntil != nil && !now.Before(*e.CapUntil) {
		e.RateCap, e.CapUntil = 0, nil
	}
	if e.Lock != nil && !now.Before(e.Lock.Until) {
		e.Lock = nil
	}
	return e
}

// EffectiveUseCase is a use case's state at now.
func (s *State) EffectiveUseCase(name string, now time.Time) UseCaseState {
	u, ok := s.UseCases[name]
	if !ok {
		return UseCaseState{Channel: ChannelWhatsApp}
	}
	e := *u
	if e.Paused && e.PausedUntil != nil && !now.Before(*e.PausedUntil) {
		e.Paused, e.PausedUntil = false, nil
	}
	if e.Lock != nil && !now.Before(e.Lock.Until) {
		e.Lock = nil
	}
	return e
}

// Apply applies c to s with the routes file f and says what it did. A
// refused command changes nothing but the audit log and Seq.
func (s *State) Apply(f *File, c Command) Result {
	s.Seq++
	s.prune(c.Time)
	a := applier{s: s, f: f, c: c}
	var err error
	// Values JSON cannot carry would make the state unsavable (snapshots,
	// clones): refuse them here, whatever the proposer checked.
	if c.Until != nil && (c.Until.Year() > 9999 || c.Until.Year() < 1) || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return a.finish(fmt.Errorf("%w: until or rate out of range", ErrInvalid))
	}
	switch c.Op {
	case OpSwitch:
		err = a.switchTo()
	case OpPause:
		err = a.pause()
	case OpResume:
		err = a.resume()
	case OpThrottle:
		err = a.throttle()
	case OpFallback:
		err = a.fallback()
	case OpLock, OpUnlock:
		err = a.lock()
	case OpMark:
		err = a.mark()
	case OpRamp:
		err = a.ramp()
	case OpAlert:
		return a.alert()
	case OpResolved:
		return a.resolved()
	case OpRestore:
		return a.restore()
	default:
		err = fmt.Errorf("%w: unknown op %q", ErrInvalid, c.Op)
	}
	return a.finish(err)
}

// prune forgets what the guards no longer need, by command time.
func (s *State) prune(now time.Time) {
	for k, t := range s.Done {
		if now.Sub(t) > doneHorizon {
			delete(s.Done, k)
		}
	}
	i := 0
	for i < len(s.AutoTimes) && now.Sub(s.AutoTimes[i]) >= time.Hour {
		i++
	}
	s.AutoTimes = s.AutoTimes[i:]
}

// applier carries one command through Apply.
type applier struct {
	s       *State
	f       *File
	c       Command
	dryRun  bool
	records []action.Record
	undo    []Undo
	targets []string         // guard targets touched, "number:<id>" or "use_case:<name>"
	skip    map[string]error // targets held back from a partial plan
}

func (a *applier) finish(err error) Result {
	if err != nil {
		act := a.c.Op
		if a.c.Op == OpAlert && a.c.Alert != nil && a.c.Alert.Action.Type != "" {
			act = a.c.Alert.Action.Type // the audit says which action was refused
		}
		a.audit(action.Record{Action: act, UseCase: a.c.UseCase, Target: a.target(), Reason: a.reason()}, OutcomeRefused, err.Error())
		return Result{Outcome: OutcomeRefused, Err: err}
	}
	if len(a.records) == 0 {
		return Result{Outcome: OutcomeNoop}
	}
	outcome := OutcomeApplied
	if a.dryRun {
		outcome = OutcomeDryRun
	}
	for _, r := range a.records {
		a.audit(r, outcome, "")
	}
	return Result{Outcome: outcome, Records: a.records}
}

func (a *applier) target() string {
	switch {
	case a.c.Number != "":
		return a.c.Number
	case a.c.Alert != nil:
		return describeTarget(a.c.Alert.Action.Params)
	}
	return a.c.UseCase
}

func (a *applier) audit(r action.Record, outcome, detail string) {
	r.SchemaVersion = action.SchemaVersion
	if r.ID == "" {
		r.ID = a.c.ID
	}
	r.Time, r.Actor, r.ActorKind = a.c.Time, a.c.Actor, a.c.ActorKind
	if al := a.c.Alert; al != nil {
		r.AlertFingerprint, r.Occurrence = al.Fingerprint, al.Occurrence
	}
	a.s.Audit = append(a.s.Audit, Entry{Record: r, Outcome: outcome, Detail: detail})
	if max := a.f.Automation.AuditSize; len(a.s.Audit) > max {
		a.s.Audit = slices.Delete(a.s.Audit, 0, len(a.s.Audit)-max)
	}
}

// change records one change of a number or use case, computing the
// before and after views around do, and says whether there was one. In dry-run mode do runs on a copy
// and the state is left as it was.
func (a *applier) change(act, useCase, target string, do func(s *State)) bool {
	if a.skip != nil {
		key := "use_case:" + useCase
		if _, ok := a.f.Number(target); ok {
			key = "number:" + target
		}
		if a.skip[key] != nil {
			return false
		}
	}
	before := a.view(a.s, useCase, target)
	st := a.s
	if a.dryRun {
		st = a.s.Clone()
	}
	// Keep the entities do may touch, to put them back if nothing but
	// the reason and the time would change: asking again for what is
	// already so is a noop, not a change to audit and push to senders.
	num, hadNum := st.Numbers[target]
	var numCopy NumberState
	if hadNum {
		numCopy = *num
	}
	uc, hadUC := st.UseCases[useCase]
	var ucCopy UseCaseState
	if hadUC {
		ucCopy = *uc
	}
	do(st)
	after := a.view(st, useCase, target)
	if essential(before) == essential(after) {
		if hadNum {
			*st.Numbers[target] = numCopy
		} else {
			delete(st.Numbers, target)
		}
		if hadUC {
			*st.UseCases[useCase] = ucCopy
		} else {
			delete(st.UseCases, useCase)
		}
		return false
	}
	r := action.Record{
		SchemaVersion: action.SchemaVersion,
		ID:            a.c.ID + "/" + strconv.Itoa(len(a.records)),
		Time:          a.c.Time, Actor: a.c.Actor, ActorKind: a.c.ActorKind,
		Action: act, UseCase: useCase, Target: target, Reason: a.reason(),
		Before: before, After: after, DryRun: a.dryRun,
	}
	if al := a.c.Alert; al != nil {
		r.AlertFingerprint, r.Occurrence = al.Fingerprint, al.Occurrence
	}
	a.records = append(a.records, r)
	return true
}

// essential is a view without its reason and time: what routing depends on.
func essential(view json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(view, &m) != nil {
		return string(view)
	}
	delete(m, "reason")
	delete(m, "since")
	out, _ := json.Marshal(m)
	return string(out)
}

func (a *applier) reason() string {
	if a.c.Reason != "" {
		return a.c.Reason
	}
	if al := a.c.Alert; al != nil {
		return "alert " + al.Name
	}
	return ""
}

// view is the JSON the audit log shows before and after a change: the
// number's state for a number target, else the use case's.
func (a *applier) view(s *State, useCase, target string) json.RawMessage {
	var v any
	if _, ok := a.f.Number(target); ok {
		v = s.EffectiveNumber(target, a.c.Time)
	} else {
		v = s.EffectiveUseCase(useCase, a.c.Time)
	}
	data, _ := json.Marshal(v)
	return data
}

func (a *applier) knownUseCase(name string) (*UseCase, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: use_case is required", ErrInvalid)
	}
	uc, ok := a.f.UseCase(name)
	if !ok {
		return nil, fmt.Errorf("%w: no use case %q", ErrNotFound, name)
	}
	return uc, nil
}

func (a *applier) knownNumber(id string) error {
	if _, ok := a.f.Number(id); !ok {
		return fmt.Errorf("%w: no number %q", ErrNotFound, id)
	}
	return nil
}

// --- operator commands ---

func (a *applier) switchTo() error {
	uc, err := a.knownUseCase(a.c.UseCase)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(uc.Numbers, func(n Number) bool { return n.ID == a.c.To }) {
		return fmt.Errorf("%w: number %q is not in use case %s", ErrNotFound, a.c.To, uc.Name)
	}
	if st := a.s.EffectiveNumber(a.c.To, a.c.Time).State; st != StateActive {
		return fmt.Errorf("%w: number %s is %s; switch to an active number", ErrConflict, a.c.To, st)
	}
	a.change(OpSwitch, uc.Name, uc.Name, func(s *State) {
		u := s.useCase(uc.Name)
		u.Preferred, u.Reason, u.Since = a.c.To, a.c.Reason, a.c.Time
	})
	return nil
}

func (a *applier) pause() error {
	if a.c.Until != nil && !a.c.Until.After(a.c.Time) {
		return fmt.Errorf("%w: until is in the past", ErrInvalid)
	}
	if a.c.Number != "" {
		if err := a.knownNumber(a.c.Number); err != nil {
			return err
		}
		a.change(OpPause, a.c.UseCase, a.c.Number, func(s *State) { s.setNumber(a.c.Number, StatePaused, a.reason(), a.c.Time, a.c.Until) })
		return nil
	}
	uc, err := a.knownUseCase(a.c.UseCase)
	if err != nil {
		return err
	}
	a.change(OpPause, uc.Name, uc.Name, func(s *State) {
		u := s.useCase(uc.Name)
		u.Paused, u.PausedUntil, u.Reason, u.Since = true, a.c.Until, a.reason(), a.c.Time
	})
	return nil
}

func (a *applier) resume() error {
	if a.c.Number != "" {
		if err := a.knownNumber(a.c.Number); err != nil {
			return err
		}
		a.change(OpResume, a.c.UseCase, a.c.Number, func(s *State) {
			s.setNumber(a.c.Number, StateActive, a.reason(), a.c.Time, nil)
			n := s.number(a.c.Number)
			n.RateCap, n.CapUntil = 0, nil
		})
		return nil
	}
	uc, err := a.knownUseCase(a.c.UseCase)
	if err != nil {
		return err
	}
	a.change(OpResume, uc.Name, uc.Name, func(s *State) {
		u := s.useCase(uc.Name)
		u.Paused, u.PausedUntil, u.Reason, u.Since = false, nil, a.reason(), a.c.Time
	})
	return nil
}

// setNumber moves a number to state; leaving paused, blocked or degraded
// for active starts the ramp schedule (a recovering number).
func (s *State) setNumber(id, state, reason string, now time.Time, until *time.Time) {
	n := s.number(id)
	if n.State != state && state == StateActive && n.State != StateActive {
		t := now
		n.RampStart = &t
	}
	n.State, n.Reason, n.Since, n.Until = state, reason, now, until
}

func (a *applier) throttle() error {
	if err := a.knownNumber(a.c.Number); err != nil {
		return err
	}
	if a.c.Rate <= 0 {
		return fmt.Errorf("%w: rate must be positive", ErrInvalid)
	}
	if a.c.Until != nil && !a.c.Until.After(a.c.Time) {
		return fmt.Errorf("%w: until is in the past", ErrInvalid)
	}
	a.change(OpThrottle, a.c.UseCase, a.c.Number, func(s *State) {
		n := s.number(a.c.Number)
		n.RateCap, n.CapUntil, n.Reason = a.c.Rate, a.c.Until, a.reason()
	})
	return nil
}

func (a *applier) fallback() error {
	uc, err := a.knownUseCase(a.c.UseCase)
	if err != nil {
		return err
	}
	if !slices.Contains(uc.Channels, a.c.Channel) {
		return fmt.Errorf("%w: channel %q is not in the chain of use case %s (%v)", ErrInvalid, a.c.Channel, uc.Name, uc.Channels)
	}
	a.change(OpFallback, uc.Name, uc.Name, func(s *State) {
		u := s.useCase(uc.Name)
		u.Channel, u.Reason, u.Since = a.c.Channel, a.reason(), a.c.Time
	})
	return nil
}

func (a *applier) lock() error {
	var lock *Lock
	if a.c.Op == OpLock {
		if a.c.Reason == "" {
			return fmt.Errorf("%w: a lock needs a reason", ErrInvalid)
		}
		if a.c.Until == nil || !a.c.Until.After(a.c.Time) {
			return fmt.Errorf("%w: a lock needs an expiry (until) in the future", ErrInvalid)
		}
		lock = &Lock{By: a.c.Actor, Reason: a.c.Reason, Until: *a.c.Until}
	}
	if a.c.Number != "" {
		if err := a.knownNumber(a.c.Number); err != nil {
			return err
		}
		a.change(a.c.Op, a.c.UseCase, a.c.Number, func(s *State) { s.number(a.c.Number).Lock = lock })
		return nil
	}
	uc, err := a.knownUseCase(a.c.UseCase)
	if err != nil {
		return err
	}
	a.change(a.c.Op, uc.Name, uc.Name, func(s *State) { s.useCase(uc.Name).Lock = lock })
	return nil
}

func (a *applier) mark() error {
	if err := a.knownNumber(a.c.Number); err != nil {
		return err
	}
	if !slices.Contains([]string{StateActive, StateDegraded, StateBlocked}, a.c.State) {
		return fmt.Errorf("%w: state: want active, degraded or blocked (pause has its own action), got %q", ErrInvalid, a.c.State)
	}
	a.change(OpMark, a.c.UseCase, a.c.Number, func(s *State) { s.setNumber(a.c.Number, a.c.State, a.reason(), a.c.Time, nil) })
	return nil
}

func (a *applier) ramp() error {
	if err := a.knownNumber(a.c.Number); err != nil {
		return err
	}
	if len(a.f.Ramp) == 0 {
		return fmt.Errorf("%w: the routes file has no ramp schedule", ErrConflict)
	}
	a.change(OpRamp, a.c.UseCase, a.c.Number, func(s *State) {
		t := a.c.Time
		s.number(a.c.Number).RampStart = &t
	})
	return nil
}

// --- automation ---

// alert carries out one action of a firing alert, behind the guards:
// idempotency, operator locks, cooldown per target, hourly budget,
// dry-run.
func (a *applier) alert() Result {
	al := a.c.Alert
	if al == nil || al.Occurrence == "" {
		return a.finish(fmt.Errorf("%w: an alert command needs the alert occurrence", ErrInvalid))
	}
	key := al.Occurrence + "/" + strconv.Itoa(al.Index)
	if _, seen := a.s.Done[key]; seen {
		return Result{Outcome: OutcomeDuplicate}
	}
	a.s.Done[key] = a.c.Time
	plan, err := a.plan()
	if err != nil {
		return a.finish(err)
	}
	// The targets are unhealthy again: restores pending on them wait for
	// this alert instead (it inherits what they would have undone).
	a.inheritRestores(plan.targets)
	if err := a.budget(); err != nil {
		return a.finish(err)
	}
	held := a.held(plan.targets)
	if len(held) > 0 {
		// Independent targets (the numbers of a WABA, the use cases of a
		// channel fallback) go ahead without those a lock or a cooldown
		// holds back; a failover is one move and waits whole.
		if !plan.partial || len(held) == len(plan.targets) {
			return a.finish(held[plan.targets[slices.IndexFunc(plan.targets, func(t string) bool { return held[t] != nil })]])
		}
		a.skip = held
		var open []string
		for _, t := range plan.targets {
			if held[t] == nil {
				open = append(open, t)
			}
		}
		plan.targets = open
	}
	a.dryRun = a.f.Automation.DryRun
	a.targets = plan.targets
	plan.do()
	for _, t := range slices.Sorted(maps.Keys(a.skip)) {
		a.audit(action.Record{Action: a.c.Alert.Action.Type, Target: t, Reason: a.reason()}, OutcomeRefused, a.skip[t].Error())
	}
	res := a.finish(nil)
	if res.Outcome == OutcomeApplied {
		occ := a.s.Occurrences[al.Occurrence]
		if occ == nil {
			occ = &Occurrence{Alert: al.Name}
			a.s.Occurrences[al.Occurrence] = occ
		}
		occ.Changes = append(occ.Changes, a.undo...)
		for t, at := range a.s.LastAuto {
			// Past its cooldown a target needs no memory (advisory
			// targets, templates and campaigns, would otherwise pile up).
			if a.c.Time.Sub(at) >= time.Duration(a.f.Automation.Cooldown) {
				delete(a.s.LastAuto, t)
				delete(a.s.LastAutoBy, t)
			}
		}
		for _, t := range plan.targets {
			a.s.LastAuto[t] = a.c.Time
			a.s.LastAutoBy[t] = al.Occurrence
		}
		a.s.AutoTimes = append(a.s.AutoTimes, a.c.Time)
	}
	return res
}

// held returns the targets an operator's lock or the cooldown holds
// back, with why. The cooldown does not hold back the other actions of
// the occurrence that made the last change (a rule that throttles then
// fails over acts whole).
func (a *applier) held(targets []string) map[string]error {
	now := a.c.Time
	out := map[string]error{}
	for _, t := range targets {
		kind, name, _ := strings.Cut(t, ":")
		var lock *Lock
		switch kind {
		case "number":
			lock = a.s.EffectiveNumber(name, now).Lock
		case "use_case":
			lock = a.s.EffectiveUseCase(name, now).Lock
		}
		if lock != nil {
			out[t] = fmt.Errorf("%w: %s is locked by %s until %s: %s", ErrConflict, t, lock.By, lock.Until.Format(time.RFC3339), lock.Reason)
			continue
		}
		if last, ok := a.s.LastAuto[t]; ok && now.Sub(last) < time.Duration(a.f.Automation.Cooldown) &&
			a.s.LastAutoBy[t] != a.c.Alert.Occurrence {
			out[t] = fmt.Errorf("%w: cooldown: %s was changed automatically at %s (cooldown %s)", ErrConflict, t,
				last.Format(time.RFC3339), time.Duration(a.f.Automation.Cooldown))
		}
	}
	return out
}

// budget refuses an automatic change beyond the hourly budget.
func (a *applier) budget() error {
	if len(a.s.AutoTimes) >= a.f.Automation.HourlyBudget {
		return fmt.Errorf("%w: budget: %d automatic changes in the last hour (hourly_budget %d)", ErrConflict,
			len(a.s.AutoTimes), a.f.Automation.HourlyBudget)
	}
	return nil
}

// plan is what an alert's action will do, and to which targets.
type plan struct {
	targets []string
	do      func()
	// partial: the targets are independent, so those a lock or a
	// cooldown holds back are skipped and the others done.
	partial bool
}

func (a *applier) plan() (plan, error) {
	act := a.c.Alert.Action
	p := act.Params
	labels := a.c.Alert.Labels
	get := func(k string) string { return p[k] }
	switch act.Type {
	case "failover":
		number := get("phone_number")
		if number == "" && p["use_case"] == "" {
			number = labels["phone_number"]
		}
		ucs, err := a.useCasesFor(get("use_case"), number, "")
		if err != nil {
			return plan{}, err
		}
		// With use_case given, useCasesFor does not check the number: an
		// unknown one was degraded in the state with no record (test fix).
		if number != "" {
			if err := a.knownNumber(number); err != nil {
				return plan{}, err
			}
		}
		if number == "" {
			number = a.currentNumber(ucs[0])
		}
		targets := []string{}
		if number != "" {
			targets = append(targets, "number:"+number)
		}
		for _, uc := range ucs {
			targets = append(targets, "use_case:"+uc)
		}
		return plan{targets: targets, do: func() { a.failover(number, ucs, get("to")) }}, nil
	case "throttle":
		rate, err := rules.ParseRate(p["rate"])
		if err != nil {
			return plan{}, fmt.Errorf("%w: throttle rate: %w", ErrInvalid, err)
		}
		numbers, advisory := a.numbersFor(p)
		if advisory {
			return a.advisory(), nil
		}
		if len(numbers) == 0 {
			return plan{}, fmt.Errorf("%w: throttle: no configured number matches %s", ErrNotFound, describeTarget(p))
		}
		return plan{targets: prefixed("number:", numbers), do: func() {
			for _, n := range numbers {
				// Already capped so (by an operator, say): not this
				// alert's change, so not its restore's either (test fix).
				if a.s.EffectiveNumber(n, a.c.Time).RateCap == rate {
					continue
				}
				if a.change(OpThrottle, "", n, func(s *State) {
					ns := s.number(n)
					ns.RateCap, ns.CapUntil, ns.Reason = rate, nil, a.reason()
				}) {
					a.undo = append(a.undo, Undo{Kind: "rate_cap", Number: n, Rate: rate})
				}
			}
		}, partial: true}, nil
	case "pause":
		var until *time.Time
		if d := p["for"]; d != "" {
			dur, err := rules.ParseDuration(d)
			if err != nil {
				return plan{}, fmt.Errorf("%w: pause for: %w", ErrInvalid, err)
			}
			t := a.c.Time.Add(dur)
			until = &t
		}
		if uc := p["use_case"]; uc != "" && p["phone_number"] == "" {
			if _, err := a.knownUseCase(uc); err != nil {
				return plan{}, err
			}
			return plan{targets: []string{"use_case:" + uc}, do: func() {
				// Already paused: leave that pause (and its end) alone and
				// do not undo it on restore (test fix).
				if a.s.EffectiveUseCase(uc, a.c.Time).Paused {
					return
				}
				if a.change(OpPause, uc, uc, func(s *State) {
					u := s.useCase(uc)
					u.Paused, u.PausedUntil, u.Reason, u.Since = true, until, a.reason(), a.c.Time
				}) {
					a.undo = append(a.undo, Undo{Kind: "use_case_pause", UseCase: uc})
				}
			}}, nil
		}
		numbers, advisory := a.numbersFor(p)
		if advisory {
			return a.advisory(), nil
		}
		if len(numbers) == 0 {
			return plan{}, fmt.Errorf("%w: pause: no configured number matches %s", ErrNotFound, describeTarget(p))
		}
		return plan{targets: prefixed("number:", numbers), do: func() {
			for _, n := range numbers {
				// Already paused: as for the use case above (test fix).
				if a.s.EffectiveNumber(n, a.c.Time).State == StatePaused {
					continue
				}
				if a.change(OpPause, "", n, func(s *State) { s.setNumber(n, StatePaused, a.reason(), a.c.Time, until) }) {
					a.undo = append(a.undo, Undo{Kind: "number_state", Number: n, Set: StatePaused})
				}
			}
		}, partial: true}, nil
	case "fallback_channel":
		ucs, err := a.useCasesFor(p["use_case"], p["phone_number"], p["waba"])
		if err != nil {
			if p["campaign"] != "" || p["template"] != "" {
				return a.advisory(), nil
			}
			return plan{}, err
		}
		// A use case named by the action must have the channel in its
		// chain. Use cases reached through a number or a WABA that lack it
		// take their own next channel instead: the rule means "off
		// WhatsApp", and a use case with nothing else stays.
		ch := p["channel"]
		type move struct{ useCase, channel string }
		var moves []move
		for _, name := range ucs {
			uc, _ := a.f.UseCase(name)
			switch {
			case slices.Contains(uc.Channels, ch):
				moves = append(moves, move{name, ch})
			case p["use_case"] != "":
				return plan{}, fmt.Errorf("%w: channel %q is not in the chain of use case %s (%v)", ErrInvalid, ch, name, uc.Channels)
			case len(uc.Channels) > 1:
				moves = append(moves, move{name, uc.Channels[1]})
			}
		}
		if len(moves) == 0 {
			return plan{}, fmt.Errorf("%w: no use case of %s has a channel to fall back to", ErrConflict, describeTarget(p))
		}
		var targets []string
		for _, m := range moves {
			targets = append(targets, "use_case:"+m.useCase)
		}
		return plan{targets: targets, do: func() {
			for _, m := range moves {
				a.setChannel(m.useCase, m.channel)
			}
		}, partial: true}, nil
	case "notify_senders":
		return a.advisory(), nil
	}
	return plan{}, fmt.Errorf("%w: unknown action type %q", ErrInvalid, act.Type)
}

// advisory is an action control cannot carry out itself (a campaign or a
// template is the senders' business): it is recorded and pushed to the
// senders as is.
func (a *applier) advisory() plan {
	p := a.c.Alert.Action.Params
	target := describeTarget(p)
	return plan{targets: []string{"advisory:" + target}, do: func() {
		r := action.Record{
			SchemaVersion: action.SchemaVersion,
			ID:            a.c.ID + "/" + strconv.Itoa(len(a.records)),
			Time:          a.c.Time, Actor: a.c.Actor, ActorKind: a.c.ActorKind,
			Action: "advise_" + a.c.Alert.Action.Type, UseCase: p["use_case"], Target: target, Reason: a.reason(),
			DryRun: a.dryRun,
		}
		r.After, _ = json.Marshal(p)
		r.AlertFingerprint, r.Occurrence = a.c.Alert.Fingerprint, a.c.Alert.Occurrence
		a.records = append(a.records, r)
	}}
}

// describeTarget names what an action's params point at, most specific
// first: "template:welcome", "number:1001".
func describeTarget(p map[string]string) string {
	for _, k := range []string{"phone_number", "template", "campaign", "use_case", "waba"} {
		if v := p[k]; v != "" {
			if k == "phone_number" {
				k = "number"
			}
			return k + ":" + v
		}
	}
	return "all"
}

// numbersFor resolves an action's target params to configured numbers;
// advisory is true when the target is a campaign or a template, which
// only senders can act on.
func (a *applier) numbersFor(p map[string]string) (numbers []string, advisory bool) {
	switch {
	case p["phone_number"] != "":
		if _, ok := a.f.Number(p["phone_number"]); ok {
			return []string{p["phone_number"]}, false
		}
		return nil, false
	case p["waba"] != "":
		for _, id := range a.f.NumberIDs() {
			if n, _ := a.f.Number(id); n.WABA == p["waba"] {
				numbers = append(numbers, id)
			}
		}
		return numbers, false
	case p["use_case"] != "":
		if uc, ok := a.f.UseCase(p["use_case"]); ok {
			for _, n := range uc.Numbers {
				numbers = append(numbers, n.ID)
			}
		}
		return numbers, false
	}
	return nil, p["campaign"] != "" || p["template"] != ""
}

// useCasesFor resolves a use case, or the use cases of a number or of a
// WABA's numbers.
func (a *applier) useCasesFor(useCase, number, waba string) ([]string, error) {
	switch {
	case useCase != "":
		if _, err := a.knownUseCase(useCase); err != nil {
			return nil, err
		}
		return []string{useCase}, nil
	case number != "":
		if ucs := a.f.UseCasesOf(number); len(ucs) > 0 {
			return ucs, nil
		}
		return nil, fmt.Errorf("%w: number %q is in no use case", ErrNotFound, number)
	case waba != "":
		seen := map[string]bool{}
		var out []string
		for _, id := range a.f.NumberIDs() {
			if n, _ := a.f.Number(id); n.WABA == waba {
				for _, uc := range a.f.UseCasesOf(id) {
					if !seen[uc] {
						seen[uc] = true
						out = append(out, uc)
					}
				}
			}
		}
		if len(out) > 0 {
			slices.Sort(out)
			return out, nil
		}
		return nil, fmt.Errorf("%w: waba %q has no configured number", ErrNotFound, waba)
	}
	return nil, fmt.Errorf("%w: the action names no use case, number or waba", ErrInvalid)
}

// currentNumber is the number a use case sends through first: its
// preferred number, else its first active number in rotation.
func (a *applier) currentNumber(useCase string) string {
	u := a.s.EffectiveUseCase(useCase, a.c.Time)
	if u.Preferred != "" {
		return u.Preferred
	}
	uc, _ := a.f.UseCase(useCase)
	for _, n := range uc.Numbers {
		if n.Role != RoleReserve && a.s.EffectiveNumber(n.ID, a.c.Time).State == StateActive {
			return n.ID
		}
	}
	return ""
}

// failover marks number degraded and moves each use case to a standby
// number, or to its next channel when there is none or when the platform
// as a whole is degraded.
func (a *applier) failover(number string, useCases []string, to string) {
	if number != "" && a.s.EffectiveNumber(number, a.c.Time).State == StateActive {
		if a.change("degrade", "", number, func(s *State) { s.setNumber(number, StateDegraded, a.reason(), a.c.Time, nil) }) {
			a.undo = append(a.undo, Undo{Kind: "number_state", Number: number, Set: StateDegraded})
		}
	}
	// In dry-run mode the degrade above did not happen; count it anyway,
	// so that the shadow record says what a live run would have done.
	platform := a.platformDegraded(number)
	for _, name := range useCases {
		uc, _ := a.f.UseCase(name)
		standby := ""
		if !platform {
			standby = a.standby(uc, number, to)
		}
		if standby != "" {
			// Already preferred: nothing of this alert's to undo (test fix).
			if a.s.EffectiveUseCase(name, a.c.Time).Preferred == standby {
				continue
			}
			if a.change("failover", name, name, func(s *State) {
				u := s.useCase(name)
				u.Preferred, u.Reason, u.Since = standby, a.reason(), a.c.Time
			}) {
				a.undo = append(a.undo, Undo{Kind: "preferred", UseCase: name, Set: standby})
			}
			continue
		}
		if len(uc.Channels) > 1 {
			a.setChannel(name, uc.Channels[1])
		}
	}
}

func (a *applier) setChannel(useCase, channel string) {
	// Already on channel (an operator's fallback, say): the restore must
	// not move it back to whatsapp, so neither change nor undo (test fix).
	if a.s.EffectiveUseCase(useCase, a.c.Time).Channel == channel {
		return
	}
	if a.change("fallback_channel", useCase, useCase, func(s *State) {
		u := s.useCase(useCase)
		u.Channel, u.Reason, u.Since = channel, a.reason(), a.c.Time
	}) {
		a.undo = append(a.undo, Undo{Kind: "channel", UseCase: useCase, Set: channel})
	}
}

// platformDegraded says whether, counting number as degraded, the share
// of numbers not active reaches automation.platform_fraction.
func (a *applier) platformDegraded(number string) bool {
	ids := a.f.NumberIDs()
	bad := 0
	for _, id := range ids {
		if id == number || a.s.EffectiveNumber(id, a.c.Time).State != StateActive {
			bad++
		}
	}
	return len(ids) > 1 && float64(bad) >= a.f.Automation.PlatformFraction*float64(len(ids))
}

// standby chooses the number a use case fails over to: to if given and
// active, else its first active reserve, else its first other active
// number. Never a degraded, paused or blocked one.
func (a *applier) standby(uc *UseCase, from, to string) string {
	active := func(id string) bool {
		return id != from && a.s.EffectiveNumber(id, a.c.Time).State == StateActive
	}
	if to != "" {
		if slices.ContainsFunc(uc.Numbers, func(n Number) bool { return n.ID == to }) && active(to) {
			return to
		}
		return ""
	}
	for _, role := range []string{RoleReserve, RolePrimary, RoleHighVolume} {
		for _, n := range uc.Numbers {
			if n.Role == role && active(n.ID) {
				return n.ID
			}
		}
	}
	return ""
}

// inheritRestores moves the undo lists of resolved occurrences whose
// changes touch targets to the current occurrence: the target is
// unhealthy again, so it is restored when this alert resolves.
func (a *applier) inheritRestores(targets []string) {
	cur := a.c.Alert.Occurrence
	for _, id := range slices.Sorted(maps.Keys(a.s.Occurrences)) {
		occ := a.s.Occurrences[id]
		if id == cur || occ.ResolvedAt == nil || !touches(occ.Changes, targets) {
			continue
		}
		mine := a.s.Occurrences[cur]
		if mine == nil {
			mine = &Occurrence{Alert: a.c.Alert.Name}
			a.s.Occurrences[cur] = mine
		}
		mine.Changes = append(mine.Changes, occ.Changes...)
		delete(a.s.Occurrences, id)
	}
}

func touches(changes []Undo, targets []string) bool {
	for _, u := range changes {
		for _, t := range targets {
			if t == "number:"+u.Number || t == "use_case:"+u.UseCase {
				return true
			}
		}
	}
	return false
}

// resolved schedules the restore of what an occurrence did.
func (a *applier) resolved() Result {
	al := a.c.Alert
	if al == nil {
		return a.finish(fmt.Errorf("%w: a resolved command needs the alert occurrence", ErrInvalid))
	}
	occ := a.s.Occurrences[al.Occurrence]
	if occ == nil || occ.ResolvedAt != nil {
		return Result{Outcome: OutcomeNoop}
	}
	t := a.c.Time
	due := t.Add(time.Duration(a.f.Automation.RestoreAfter))
	occ.ResolvedAt, occ.RestoreDue = &t, &due
	return Result{Outcome: OutcomeApplied}
}

// DueRestores returns the occurrences whose restore is due at now, for
// the proposer of restore commands.
func (s *State) DueRestores(now time.Time) []string {
	var out []string
	for id, occ := range s.Occurrences {
		if occ.RestoreDue != nil && !now.Before(*occ.RestoreDue) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// restore undoes what an occurrence did, change by change, where the
// value is still the one it set and no operator lock says otherwise.
func (a *applier) restore() Result {
	al := a.c.Alert
	if al == nil {
		return a.finish(fmt.Errorf("%w: a restore command needs the alert occurrence", ErrInvalid))
	}
	occ := a.s.Occurrences[al.Occurrence]
	if occ == nil || occ.RestoreDue == nil {
		return Result{Outcome: OutcomeNoop}
	}
	if a.c.Time.Before(*occ.RestoreDue) {
		return Result{Outcome: OutcomeNoop}
	}
	var targets []string
	for _, u := range occ.Changes {
		if u.Number != "" {
			targets = append(targets, "number:"+u.Number)
		}
		if u.UseCase != "" {
			targets = append(targets, "use_case:"+u.UseCase)
		}
	}
	for _, t := range targets {
		kind, name, _ := strings.Cut(t, ":")
		var lock *Lock
		if kind == "number" {
			lock = a.s.EffectiveNumber(name, a.c.Time).Lock
		} else {
			lock = a.s.EffectiveUseCase(name, a.c.Time).Lock
		}
		if lock != nil {
			// The lock wins; the restore waits for it to end.
			return a.finish(fmt.Errorf("%w: %s is locked by %s until %s: %s", ErrConflict, t, lock.By, lock.Until.Format(time.RFC3339), lock.Reason))
		}
	}
	for _, u := range slices.Backward(occ.Changes) {
		switch u.Kind {
		case "number_state":
			if a.s.EffectiveNumber(u.Number, a.c.Time).State == u.Set {
				a.change(OpRestore, "", u.Number, func(s *State) { s.setNumber(u.Number, StateActive, a.reason(), a.c.Time, nil) })
			}
		case "rate_cap":
			if a.s.EffectiveNumber(u.Number, a.c.Time).RateCap == u.Rate {
				a.change(OpRestore, "", u.Number, func(s *State) {
					n := s.number(u.Number)
					n.RateCap, n.CapUntil = 0, nil
				})
			}
		case "preferred":
			if a.s.EffectiveUseCase(u.UseCase, a.c.Time).Preferred == u.Set {
				a.change(OpRestore, u.UseCase, u.UseCase, func(s *State) {
					uc := s.useCase(u.UseCase)
					uc.Preferred, uc.Reason, uc.Since = "", a.reason(), a.c.Time
				})
			}
		case "channel":
			if a.s.EffectiveUseCase(u.UseCase, a.c.Time).Channel == u.Set {
				a.change(OpRestore, u.UseCase, u.UseCase, func(s *State) {
					uc := s.useCase(u.UseCase)
					uc.Channel, uc.Reason, uc.Since = ChannelWhatsApp, a.reason(), a.c.Time
				})
			}
		case "use_case_pause":
			if a.s.EffectiveUseCase(u.UseCase, a.c.Time).Paused {
				a.change(OpRestore, u.UseCase, u.UseCase, func(s *State) {
					uc := s.useCase(u.UseCase)
					uc.Paused, uc.PausedUntil, uc.Reason, uc.Since = false, nil, a.reason(), a.c.Time
				})
			}
		}
	}
	delete(a.s.Occurrences, al.Occurrence)
	res := a.finish(nil)
	if res.Outcome == OutcomeNoop {
		res.Outcome = OutcomeApplied // the occurrence is done even if an operator undid everything first
	}
	return res
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

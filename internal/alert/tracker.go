package alert

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"vigia/internal/quality"
)

// DefaultMaxActive is the number of pending and firing alerts a tracker
// holds when Options.MaxActive is not set: far more than people can act on,
// small enough that a rule keyed by a runaway dimension cannot exhaust
// memory.
const DefaultMaxActive = 10000

// RuleInfo names the rule a tracker follows; it is copied onto every record.
type RuleInfo struct {
	Name  string // alertname
	Group string // group name
	Rule  string // file:line of the rule
}

// Params are the lifecycle settings of a rule.
type Params struct {
	For           time.Duration // how long the condition must hold before firing; 0 fires at once
	KeepFiringFor time.Duration // how long a firing alert must be clear before it resolves; 0 resolves at once
	HasResolve    bool          // the rule has a resolve condition (resolve_when): Input.Resolve is meaningful
}

// Options are the tracker's bounds; the zero value is usable.
type Options struct {
	// MaxActive bounds the pending and firing alerts held; <= 0 means
	// DefaultMaxActive.
	MaxActive int
}

// Input is the outcome of evaluating a rule for one key.
type Input struct {
	// Labels of the alert: the rule's key dimensions and labels.
	// alertname is set by the tracker.
	Labels map[string]string
	// Fingerprint, when set, is Tracker.Fingerprint(Labels), computed
	// once by a caller that evaluates the same key again and again, so
	// that each evaluation does not hash the labels again.
	Fingerprint string
	// Condition is the value of the rule's condition (when).
	Condition bool
	// Resolve is the value of the resolve condition (resolve_when);
	// ignored unless Params.HasResolve.
	Resolve bool
	// What the conditions were computed from, and what was rendered from
	// them; copied onto the record if this evaluation changes the state.
	Values      quality.Values
	Baseline    *quality.Values
	Annotations map[string]string
	Actions     []Action
	// Render, if set, is called only when this evaluation changes the
	// state, and what it returns replaces Annotations and Actions. Most
	// evaluations change nothing, so rendering templates on each of them
	// would be wasted; rendering after Eval instead, on the returned copy,
	// would leave the tracker's record (Active, and the records of keys
	// whose data expired) without annotations.
	Render func() (annotations map[string]string, actions []Action)
}

// Tracker follows the alerts of one rule; see the package doc for the
// lifecycle. It is not safe for concurrent use.
type Tracker struct {
	info      RuleInfo
	params    Params
	maxActive int
	active    map[string]*entry // by fingerprint; pending and firing only
	refused   uint64
}

type entry struct {
	rec Alert // the last record published, owned by the tracker
	// Set while a firing alert is clear, to count KeepFiringFor.
	clearing   bool
	clearSince time.Time
}

// NewTracker returns a tracker for one rule.
func NewTracker(info RuleInfo, p Params, o Options) (*Tracker, error) {
	if info.Name == "" {
		return nil, errors.New("alert: new tracker: rule has no name")
	}
	if p.For < 0 || p.KeepFiringFor < 0 {
		return nil, fmt.Errorf("alert: new tracker %s: negative for (%v) or keep_firing_for (%v)", info.Name, p.For, p.KeepFiringFor)
	}
	maxActive := o.MaxActive
	if maxActive <= 0 {
		maxActive = DefaultMaxActive
	}
	return &Tracker{info: info, params: p, maxActive: maxActive, active: map[string]*entry{}}, nil
}

// Fingerprint returns the fingerprint the tracker gives an alert with these
// labels (alertname set to the rule's name): the keys of Absent's present
// map.
func (t *Tracker) Fingerprint(labels map[string]string) string {
	fp := fingerprint(labels, LabelAlertName, t.info.Name)
	return string(fp[:])
}

// Eval applies one evaluation of the rule for one key at time now and
// returns the record of the state change it causes, or nil when the state
// did not change (or the alert was refused, see Options.MaxActive). The
// record is the caller's: the tracker keeps no reference to it.
func (t *Tracker) Eval(now time.Time, in Input) *Alert {
	if !in.Condition && len(t.active) == 0 {
		return nil // the common case of a healthy rule: nothing to hash
	}
	// UTC and no monotonic reading: records marshal the same whatever
	// clock or zone the caller's times come from.
	now = now.UTC()
	var fpb [16]byte
	var e *entry
	if in.Fingerprint != "" {
		e = t.active[in.Fingerprint]
	} else {
		fpb = fingerprint(in.Labels, LabelAlertName, t.info.Name)
		e = t.active[string(fpb[:])] // no allocation: the steady state is free
	}
	if e != nil {
		return t.step(e, now, &in)
	}
	if !in.Condition {
		return nil
	}
	if len(t.active) >= t.maxActive {
		t.refused++
		return nil
	}
	fp := in.Fingerprint
	if fp == "" {
		fp = string(fpb[:])
	}
	labels := make(map[string]string, len(in.Labels)+1)
	maps.Copy(labels, in.Labels)
	labels[LabelAlertName] = t.info.Name
	e = &entry{rec: Alert{
		SchemaVersion: SchemaVersion,
		Fingerprint:   fp,
		Name:          t.info.Name,
		Group:         t.info.Group,
		Rule:          t.info.Rule,
		Labels:        labels,
		ActiveAt:      now,
	}}
	t.active[fp] = e
	if t.params.For > 0 {
		return t.change(e, StatePending, now, &in)
	}
	e.rec.FiredAt = timePtr(now)
	return t.change(e, StateFiring, now, &in)
}

// Missing evaluates the alert with this fingerprint as a key without data:
// condition false, resolve condition true. It returns the state change, nil
// if there is none or the tracker holds no such alert.
func (t *Tracker) Missing(now time.Time, fingerprint string) *Alert {
	e := t.active[fingerprint]
	if e == nil {
		return nil
	}
	in := Input{Resolve: true, Annotations: e.rec.Annotations, Actions: e.rec.Actions}
	return t.step(e, now.UTC(), &in)
}

// Absent applies Missing to every alert held whose fingerprint is not in
// present (a nil map: none is present), and returns the changes ordered by
// fingerprint, so that replays publish in the same order. Call it on every
// evaluation round, after Eval, with the fingerprints of the keys that have
// data (Tracker.Fingerprint or Fingerprint of the labels with alertname):
// KeepFiringFor is counted over rounds.
func (t *Tracker) Absent(now time.Time, present map[string]bool) []*Alert {
	return t.AbsentFunc(now, func(fp string) bool { return present[fp] })
}

// AbsentFunc is Absent with the keys that have data given by a function,
// for a caller that can answer without building a map of every key: it is
// asked only about the alerts held.
func (t *Tracker) AbsentFunc(now time.Time, present func(fingerprint string) bool) []*Alert {
	if len(t.active) == 0 {
		return nil
	}
	var gone []string
	for fp := range t.active {
		if !present(fp) {
			gone = append(gone, fp)
		}
	}
	slices.Sort(gone)
	var out []*Alert
	for _, fp := range gone {
		if a := t.Missing(now, fp); a != nil {
			out = append(out, a)
		}
	}
	return out
}

// step moves a pending or firing alert on by one evaluation.
func (t *Tracker) step(e *entry, now time.Time, in *Input) *Alert {
	switch e.rec.State {
	case StatePending:
		if !in.Condition {
			return t.change(e, StateInactive, now, in)
		}
		if now.Sub(e.rec.ActiveAt) >= t.params.For {
			e.rec.FiredAt = timePtr(now)
			return t.change(e, StateFiring, now, in)
		}
		return nil
	case StateFiring:
		isClear := !in.Condition && (!t.params.HasResolve || in.Resolve)
		if !isClear {
			e.clearing = false
			return nil
		}
		if !e.clearing {
			e.clearing, e.clearSince = true, now
		}
		if now.Sub(e.clearSince) < t.params.KeepFiringFor {
			return nil
		}
		e.rec.ResolvedAt = timePtr(now)
		return t.change(e, StateResolved, now, in)
	}
	return nil // not reached: only pending and firing alerts are held
}

// change records a state change and returns the record to publish. Ended
// occurrences are forgotten here, which is what bounds memory.
func (t *Tracker) change(e *entry, s State, now time.Time, in *Input) *Alert {
	e.rec.State = s
	e.rec.EvalTime = now
	e.rec.Values = cloneValues(in.Values)
	e.rec.Baseline = cloneBaseline(in.Baseline)
	ann, actions := in.Annotations, in.Actions
	if in.Render != nil {
		ann, actions = in.Render()
	}
	e.rec.Annotations = maps.Clone(ann)
	e.rec.Actions = cloneActions(actions)
	if s == StateInactive || s == StateResolved {
		delete(t.active, e.rec.Fingerprint)
		return &e.rec // no longer the tracker's: no copy needed
	}
	return e.rec.clone()
}

// Active returns copies of the records of the pending and firing alerts,
// as of their last state change, ordered by fingerprint.
func (t *Tracker) Active() []*Alert {
	out := make([]*Alert, 0, len(t.active))
	for _, fp := range slices.Sorted(maps.Keys(t.active)) {
		out = append(out, t.active[fp].rec.clone())
	}
	return out
}

// Has reports whether the tracker holds a pending or firing alert with
// this fingerprint. Without one, Eval with a false condition changes
// nothing and returns nil: a caller may skip it, and skip preparing its
// input.
func (t *Tracker) Has(fingerprint string) bool { return t.active[fingerprint] != nil }

// Len returns the number of pending and firing alerts held.
func (t *Tracker) Len() int { return len(t.active) }

// Counts returns the number of pending and firing alerts, for gauges.
func (t *Tracker) Counts() (pending, firing int) {
	for _, e := range t.active {
		if e.rec.State == StatePending {
			pending++
		} else {
			firing++
		}
	}
	return pending, firing
}

// Refused returns how many alerts were refused because MaxActive alerts
// were held: evaluations that would have started one (a key refused on
// several evaluations counts several times) and restores.
func (t *Tracker) Refused() uint64 { return t.refused }

// Restore rebuilds the state of one alert from its last published record,
// after a restart or a reload. A pending or firing record makes the alert
// pending or firing with the record's ActiveAt and FiredAt, replacing what
// the tracker held for that fingerprint: the next evaluations continue the
// occurrence without publishing it again. A resolved or inactive record
// forgets the occurrence it ends, if held, and is otherwise ignored: it is
// the normal last record of an alert that is over.
//
// The fingerprint is recomputed from the labels, and the group and rule
// location are the tracker's, since the rule may have moved in its file. A
// record of another rule, of an unknown schema version or state, or that
// lacks the times its state implies, is an error, as is a new alert beyond
// MaxActive.
func (t *Tracker) Restore(a Alert) error {
	fp := t.Fingerprint(a.Labels)
	switch {
	case a.SchemaVersion != SchemaVersion:
		return fmt.Errorf("alert: restore %s %s: schema version %d, want %d", a.Name, fp, a.SchemaVersion, SchemaVersion)
	case a.Name != t.info.Name:
		return fmt.Errorf("alert: restore %s %s: record of another rule (tracker follows %s)", a.Name, fp, t.info.Name)
	}
	switch a.State {
	case StateInactive, StateResolved:
		if e := t.active[fp]; e != nil && e.rec.ActiveAt.Equal(a.ActiveAt) {
			delete(t.active, fp)
		}
		return nil
	case StatePending, StateFiring:
	default:
		return fmt.Errorf("alert: restore %s %s: unknown state %q", a.Name, fp, a.State)
	}
	if a.ActiveAt.IsZero() {
		return fmt.Errorf("alert: restore %s %s: %s record without active_at", a.Name, fp, a.State)
	}
	if a.State == StateFiring && a.FiredAt == nil {
		return fmt.Errorf("alert: restore %s %s: firing record without fired_at", a.Name, fp)
	}
	if _, ok := t.active[fp]; !ok && len(t.active) >= t.maxActive {
		t.refused++
		return fmt.Errorf("alert: restore %s %s: %d alerts active, the maximum", a.Name, fp, t.maxActive)
	}
	rec := *a.clone()
	rec.Fingerprint = fp
	rec.Group, rec.Rule = t.info.Group, t.info.Rule
	if rec.Labels == nil {
		rec.Labels = map[string]string{}
	}
	rec.Labels[LabelAlertName] = t.info.Name
	rec.ActiveAt = rec.ActiveAt.UTC()
	if rec.State == StatePending {
		rec.FiredAt = nil
	} else {
		fired := rec.FiredAt.UTC()
		rec.FiredAt = &fired
	}
	rec.ResolvedAt = nil
	t.active[fp] = &entry{rec: rec}
	return nil
}

// timePtr allocates a copy of t only on a state change; taking &now would
// move every evaluation's time to the heap.
func timePtr(t time.Time) *time.Time { return &t }

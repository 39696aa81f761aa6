// Package engine joins the window store, the rules and the alert lifecycle:
// it applies events to the windows and, when asked at a time given as a
// parameter, evaluates every rule group that is due over every key and
// returns the alert state changes. It knows nothing of Kafka or clocks, so
// the live evaluator, rule unit tests and backtests all drive the same code.
//
// An evaluation round reads every key's window and baseline through
// window.Period (sums kept between instants) and runs a rule's CEL
// conditions only when what they read of the key's input changed since the
// key's last evaluation (memo.go); the tracker sees every evaluation.
package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"vigia/internal/alert"
	"vigia/internal/event"
	"vigia/internal/quality"
	"vigia/internal/rules"
	"vigia/internal/window"
)

// Options configures the windows; see window.Options.
type Options struct {
	Window window.Options
	// EvalTimeout bounds one rule's evaluation over all its keys.
	EvalTimeout time.Duration
	// MaxActivePerRule bounds the alerts one rule may hold.
	MaxActivePerRule int
	// Decider, when set, is the store whose decisions the engine gets
	// (ApplyDecision): the engine's windows share its hash seeds, so
	// that a decision's key hashes are computed once for every engine
	// (window.NewSharing).
	Decider *window.Store
}

// ruleState is a loaded rule with the keyspace it reads, its lifecycle,
// and what its evaluation loop keeps between rounds so that a round
// allocates nothing in the steady state.
type ruleState struct {
	rule    *rules.Rule
	spec    int
	numbers int // keyspace [phone_number] following waba, for numbers_active/degraded; -1 if the rule has none
	tracker *alert.Tracker

	// The window and the baseline of every key, and for numbers_active
	// and numbers_degraded those of every number (see window.Period).
	cur, base       *window.Period
	numCur, numBase *window.Period
	// keys caches, per slot of the rule's keyspace, what does not change
	// while the key lives: labels and fingerprint. fps finds a slot by
	// fingerprint, for Absent.
	keys  []keyCache
	fps   map[string]int32
	round uint64              // the current round; keys evaluated in it have it
	numBy map[string][2]int64 // numbers per WABA, rebuilt every round

	// reads is what the rule's guard and conditions read, for the memo of
	// each key (see memo.go).
	reads reads
	// in is the evaluation in progress; render renders its annotations
	// and actions, called by the tracker only on a state change.
	in     rules.Input
	render func() (map[string]string, []alert.Action)
}

// keyCache is what an evaluation needs of a key besides its values.
type keyCache struct {
	id     string            // "" for a slot not seen yet
	labels map[string]string // the key's dimensions (rules.Input.Labels)
	alert  map[string]string // the alert's labels: rule labels, dimensions, alertname
	fp     string            // the tracker's fingerprint of alert
	round  uint64            // the last round the key was evaluated in
	memo   memo              // its last successful evaluation
}

// Numbers degraded: what numbers_active and numbers_degraded count (see
// quality.Values).
const (
	numbersMinAttempts = 50
	numbersDegradedAt  = 0.8
	numbersBaseline    = time.Hour
)

type groupState struct {
	group    *rules.Group
	rules    []*ruleState
	nextEval time.Time
}

// Engine is not safe for concurrent use: the evaluator serializes Apply and
// Eval.
type Engine struct {
	opts   Options
	set    *rules.Set
	store  *window.Store
	specs  []window.Spec
	groups []*groupState
	refs   []window.KeyRef // the keys of the keyspace being evaluated
	// numRefs are the keys of the numbers keyspace, counted while refs
	// are being evaluated.
	numRefs []window.KeyRef
	// periods are shared by the rules that read the same period of the
	// same keyspace, so that a key's values are computed once per instant.
	periods map[periodID]*window.Period

	// Stats of the last evaluations, for metrics.
	Evaluations, EvalFailures int64
	LastEvalError             error
}

// New builds an engine for a rule set.
func New(set *rules.Set, o Options) *Engine {
	if o.EvalTimeout <= 0 {
		o.EvalTimeout = 5 * time.Second
	}
	e := &Engine{opts: o}
	e.install(set, nil)
	return e
}

// specsFor derives the keyspaces of a rule set: one per distinct (by,
// resolution), spanning the longest window plus baseline of its rules.
func specsFor(set *rules.Set) ([]window.Spec, map[*rules.Rule]int, map[*rules.Rule]int) {
	var specs []window.Spec
	index := map[string]int{}
	add := func(by []quality.Dim, res, span time.Duration) int {
		id := specID(by, res)
		i, ok := index[id]
		if !ok {
			i = len(specs)
			index[id] = i
			specs = append(specs, window.Spec{By: by, Resolution: res})
		}
		specs[i].Span = max(specs[i].Span, span)
		return i
	}
	ruleSpec := map[*rules.Rule]int{}
	numbersSpec := map[*rules.Rule]int{}
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			span := r.Window
			if r.BaselineKind == rules.BaselinePrevious {
				// same_time_last_week comes from the stored rollups (the
				// ClickHouse stage), never from a week of buckets in memory.
				span += r.Baseline
			}
			ruleSpec[r] = add(r.By, r.Resolution, span)
			if wantsNumbers(r.By) {
				// The numbers' own keyspace, which the delivery rules
				// usually have already: per phone number, following its
				// WABA.
				i := add(numbersBy, r.Resolution, r.Window+numbersBaseline)
				specs[i].Follow = quality.DimWABA
				numbersSpec[r] = i
			}
		}
	}
	return specs, ruleSpec, numbersSpec
}

// numbersBy is what the numbers of a WABA are counted by: each phone
// number once, under the WABA of its latest event (window.Spec.Follow).
var numbersBy = []quality.Dim{quality.DimPhoneNumber}

// Keyspaces returns the keyspaces rule r reads, as (dimensions, resolution)
// names: its own and, for a rule over WABAs, its numbers'. Rules that share
// one share its windows.
func Keyspaces(r *rules.Rule) []string {
	out := []string{specID(r.By, r.Resolution)}
	if wantsNumbers(r.By) {
		out = append(out, specID(numbersBy, r.Resolution))
	}
	return out
}

// wantsNumbers: keys of a WABA (not of one number or template) get the
// count of its numbers and of those degraded, for whole-platform rules.
func wantsNumbers(by []quality.Dim) bool {
	return slices.Contains(by, quality.DimWABA) && !slices.Contains(by, quality.DimPhoneNumber) && !slices.Contains(by, quality.DimTemplate)
}

func specID(by []quality.Dim, res time.Duration) string {
	parts := make([]string, len(by))
	for i, d := range by {
		parts[i] = string(d)
	}
	return strings.Join(parts, ",") + "@" + res.String()
}

// install switches to set, keeping the windows when the keyspaces did not
// change and the alert states of rules that kept their group and name.
func (e *Engine) install(set *rules.Set, old map[string]*alert.Tracker) {
	specs, ruleSpec, numbersSpec := specsFor(set)
	if e.store == nil || !slices.EqualFunc(specs, e.specs, func(a, b window.Spec) bool {
		return specID(a.By, a.Resolution) == specID(b.By, b.Resolution) && a.Span == b.Span && a.Follow == b.Follow
	}) {
		if e.opts.Decider != nil {
			e.store = window.NewSharing(e.opts.Decider, e.opts.Window, specs)
		} else {
			e.store = window.New(e.opts.Window, specs)
		}
	}
	e.specs = specs
	e.set = set
	e.groups = nil
	e.periods = map[periodID]*window.Period{}
	for _, g := range set.Groups {
		gs := &groupState{group: g}
		for _, r := range g.Rules {
			tr, err := alert.NewTracker(
				alert.RuleInfo{Name: r.Alert, Group: r.Group, Rule: fmt.Sprintf("%s:%d", r.File, r.Line)},
				alert.Params{For: r.For, KeepFiringFor: r.KeepFiringFor, HasResolve: r.ResolveWhen != nil},
				alert.Options{MaxActive: e.opts.MaxActivePerRule})
			if err != nil {
				// rules.Load validated names and durations already
				panic(fmt.Sprintf("rule %s: %v", ruleID(r), err))
			}
			// A reloaded rule keeps its pending and firing alerts, under its
			// new for / keep_firing_for / resolve_when.
			if prev := old[ruleID(r)]; prev != nil {
				for _, a := range prev.Active() {
					_ = tr.Restore(*a)
				}
			}
			ns, ok := numbersSpec[r]
			if !ok {
				ns = -1
			}
			gs.rules = append(gs.rules, e.newRuleState(r, ruleSpec[r], ns, tr))
		}
		e.groups = append(e.groups, gs)
	}
}

func ruleID(r *rules.Rule) string { return r.Group + "/" + r.Alert }

// Reload swaps in a new, already validated rule set. It reports whether the
// windows were kept; when they were not (keyspaces changed), the caller
// rebuilds them by replaying history.
func (e *Engine) Reload(set *rules.Set) (windowsKept bool) {
	old := map[string]*alert.Tracker{}
	for _, g := range e.groups {
		for _, r := range g.rules {
			old[ruleID(r.rule)] = r.tracker
		}
	}
	before := e.store
	e.install(set, old)
	return e.store == before
}

// Rules returns the rule set in force.
func (e *Engine) Rules() *rules.Set { return e.set }

// Store exposes the windows (for metrics and tests).
func (e *Engine) Store() *window.Store { return e.store }

// Apply adds one event, read from partition, to the windows.
func (e *Engine) Apply(partition int, ev *event.Event) window.Outcome {
	return e.store.Apply(partition, ev)
}

// ApplyDecision adds to the windows an event decided by another store
// (window.Store.Decide): engines that share one dedupe and attribution
// decision, as a backtest's parallel parts do.
func (e *Engine) ApplyDecision(d *window.Decision) window.Outcome {
	return e.store.ApplyDecision(d)
}

// Restore gives a restored alert back to the tracker of its rule; alerts of
// rules that no longer exist are ignored.
func (e *Engine) Restore(a alert.Alert) bool {
	for _, g := range e.groups {
		if g.group.Name != a.Group {
			continue
		}
		for _, r := range g.rules {
			if r.rule.Alert == a.Name {
				return r.tracker.Restore(a) == nil
			}
		}
	}
	return false
}

// Eval evaluates every group whose interval has come at now (a group is
// evaluated at multiples of its interval) and returns the state changes.
func (e *Engine) Eval(ctx context.Context, now time.Time) []alert.Alert {
	var out []alert.Alert
	for _, g := range e.groups {
		if now.Before(g.nextEval) {
			continue
		}
		out = append(out, e.EvalGroup(ctx, g.group.Name, now)...)
		g.nextEval = now.Truncate(g.group.Interval).Add(g.group.Interval)
	}
	e.store.Expire(now)
	return out
}

// EvalGroup evaluates one group at now regardless of its schedule.
func (e *Engine) EvalGroup(ctx context.Context, group string, now time.Time) []alert.Alert {
	var out []alert.Alert
	for _, g := range e.groups {
		if g.group.Name != group {
			continue
		}
		for _, r := range g.rules {
			out = append(out, e.evalRule(ctx, r, now)...)
		}
	}
	return out
}

// periodID names a period relative to the evaluation time: [now-from,
// now-to) of keyspace spec.
type periodID struct {
	spec     int
	from, to time.Duration
}

func (e *Engine) period(spec int, from, to time.Duration) *window.Period {
	id := periodID{spec, from, to}
	p := e.periods[id]
	if p == nil {
		p = e.store.NewPeriod(spec)
		e.periods[id] = p
	}
	return p
}

func (e *Engine) newRuleState(r *rules.Rule, spec, numbers int, tr *alert.Tracker) *ruleState {
	rs := &ruleState{rule: r, spec: spec, numbers: numbers, tracker: tr,
		cur: e.period(spec, r.Window, 0), base: e.period(spec, r.Window+r.Baseline, r.Window),
		fps: map[string]int32{}, reads: readsOf(r)}
	if numbers >= 0 {
		rs.numCur, rs.numBase = e.period(numbers, r.Window, 0), e.period(numbers, r.Window+numbersBaseline, r.Window)
		rs.numBy = map[string][2]int64{}
	}
	rs.render = func() (map[string]string, []alert.Action) {
		ann, actions, err := r.Render(&rs.in)
		if err != nil {
			e.LastEvalError = fmt.Errorf("%s:%d: %s: render: %w", r.File, r.Line, r.Alert, err)
		}
		return ann, toAlertActions(actions)
	}
	return rs
}

// key returns the cache of the key in ref's slot, rebuilt when the slot
// holds another key than last time.
func (e *Engine) key(rs *ruleState, ref window.KeyRef) *keyCache {
	if int(ref.Slot) >= len(rs.keys) {
		rs.keys = append(rs.keys, make([]keyCache, int(ref.Slot)+1-len(rs.keys))...)
	}
	kc := &rs.keys[ref.Slot]
	if kc.id == ref.ID {
		return kc
	}
	if kc.id != "" && rs.fps[kc.fp] == ref.Slot {
		delete(rs.fps, kc.fp)
	}
	r := rs.rule
	kc.id = ref.ID
	kc.memo.ok = false
	kc.labels = e.store.Labels(rs.spec, ref.ID)
	kc.alert = make(map[string]string, len(kc.labels)+len(r.Labels)+1)
	for k, v := range r.Labels {
		kc.alert[k] = v
	}
	for k, v := range kc.labels {
		kc.alert[k] = v
	}
	kc.alert[alert.LabelAlertName] = r.Alert
	kc.fp = rs.tracker.Fingerprint(kc.alert)
	rs.fps[kc.fp] = ref.Slot
	return kc
}

func (e *Engine) evalRule(ctx context.Context, rs *ruleState, now time.Time) []alert.Alert {
	r := rs.rule
	// One deadline for the rule's whole round over its keys: cheaper than
	// one per key, and it bounds what matters (a round).
	ctx, cancel := context.WithTimeout(ctx, e.opts.EvalTimeout)
	defer cancel()
	var out []alert.Alert
	rd := &rs.reads
	// The numbers of each WABA are counted once a round needs them: at its
	// first key for a rule that reads them, otherwise when a key reaches
	// the tracker, for the record (AccountRestricted, over 24 h, would
	// count its numbers every 10 s for nothing).
	var numbers map[string][2]int64
	setNumbers := func(kc *keyCache) {
		if numbers == nil {
			numbers = e.numbersByWABA(rs, now)
		}
		n := numbers[kc.labels[string(quality.DimWABA)]]
		rs.in.Values.NumbersActive, rs.in.Values.NumbersDegraded = n[0], n[1]
	}
	rs.round++
	in := &rs.in
	start := now.Add(-r.Window)
	e.refs = e.store.AppendKeyRefs(rs.spec, e.refs[:0])
	for _, ref := range e.refs {
		if !rs.cur.Values(e.store, ref, start, now, rd.curParts, &in.Values) {
			continue
		}
		kc := e.key(rs, ref)
		kc.round = rs.round // present, for Absent, even if the evaluation fails
		in.Labels = kc.labels
		if rs.numbers >= 0 && rd.numbers {
			setNumbers(kc)
		}
		if r.BaselineKind == rules.BaselinePrevious {
			rs.base.Values(e.store, ref, start.Add(-r.Baseline), start, rd.baseParts, &in.Baseline)
			in.HasBaseline = hasData(&in.Baseline)
		}

		e.Evaluations++
		var cond bool
		// A memo is used only while the round's context is live: past its
		// deadline every evaluation fails, memo or not.
		if rd.same(&kc.memo, in) && ctx.Err() == nil {
			cond = kc.memo.cond
		} else {
			var err error
			if cond, err = r.Fire(ctx, in); err != nil {
				e.evalFailed(rs, kc, err)
				continue
			}
			rd.keep(&kc.memo, in, cond)
		}
		if !cond && !rs.tracker.Has(kc.fp) {
			continue // the tracker would change nothing: no need for the whole input
		}
		// The tracker reads the resolve condition only for an alert it
		// holds whose condition is false (a firing one clears on it): most
		// evaluations never need it, and it is evaluated only then. The
		// memo keeps it for the same input.
		resolve := !cond
		if !cond && r.ResolveWhen != nil {
			if kc.memo.resolveKnown {
				resolve = kc.memo.resolve
			} else {
				var err error
				if resolve, err = r.Resolve(ctx, in, cond); err != nil {
					e.evalFailed(rs, kc, err)
					continue
				}
				kc.memo.resolve, kc.memo.resolveKnown = resolve, true
			}
		}
		// The alert's record carries the whole values and baseline: the
		// parts the conditions did not need are computed now (the Periods
		// answer again from what they kept).
		if rd.curParts != window.AllParts {
			rs.cur.Values(e.store, ref, start, now, window.AllParts, &in.Values)
		}
		if rs.numbers >= 0 {
			setNumbers(kc)
		}
		if r.BaselineKind == rules.BaselinePrevious && rd.baseParts != window.AllParts {
			rs.base.Values(e.store, ref, start.Add(-r.Baseline), start, window.AllParts, &in.Baseline)
			in.HasBaseline = hasData(&in.Baseline)
		}
		// The tracker clones what it keeps (values, baseline): the
		// Periods' failure maps and in are reused for the next key.
		ai := alert.Input{Labels: kc.alert, Fingerprint: kc.fp, Condition: cond, Resolve: resolve, Values: in.Values, Render: rs.render}
		if r.BaselineKind != "" {
			ai.Baseline = &in.Baseline
		}
		if changed := rs.tracker.Eval(now, ai); changed != nil {
			out = append(out, *changed)
		}
	}
	for _, a := range rs.tracker.AbsentFunc(now, func(fp string) bool {
		slot, ok := rs.fps[fp]
		return ok && rs.keys[slot].fp == fp && rs.keys[slot].round == rs.round
	}) {
		out = append(out, *a)
	}
	return out
}

// evalFailed records a failed evaluation of a key; its memo is dropped,
// so that the next evaluation runs (and fails) again rather than reusing
// an outcome from before.
func (e *Engine) evalFailed(rs *ruleState, kc *keyCache, err error) {
	r := rs.rule
	kc.memo.ok = false
	e.EvalFailures++
	e.LastEvalError = fmt.Errorf("%s:%d: %s %v: %w", r.File, r.Line, r.Alert, kc.labels, err)
}

// numbersByWABA counts, per WABA, the numbers with enough attempts in the
// window and those whose delivery rate fell below numbersDegradedAt of
// their previous hour. A number counts under the WABA of its latest event:
// one that moved between WABAs belongs to its new one only. The periods
// are those of the delivery rules when they read the same ones, already
// computed at this instant.
func (e *Engine) numbersByWABA(rs *ruleState, now time.Time) map[string][2]int64 {
	out := rs.numBy
	clear(out)
	start := now.Add(-rs.rule.Window)
	var cur, base quality.Values
	e.numRefs = e.store.AppendKeyRefs(rs.numbers, e.numRefs[:0])
	for _, ref := range e.numRefs {
		// Attempts and delivery rates: counts, no failure maps.
		if !rs.numCur.Values(e.store, ref, start, now, window.Counts, &cur) || cur.Attempts < numbersMinAttempts {
			continue
		}
		waba := e.store.Followed(rs.numbers, ref)
		if waba == "" {
			continue // no event of the number named its WABA
		}
		n := out[waba]
		n[0]++
		rs.numBase.Values(e.store, ref, start.Add(-numbersBaseline), start, window.Counts, &base)
		if base.Attempts >= numbersMinAttempts && cur.DeliveryRate < base.DeliveryRate*numbersDegradedAt {
			n[1]++
		}
		out[waba] = n
	}
	return out
}

func hasData(v *quality.Values) bool {
	return v.Attempts+v.Reached+v.Read+v.Failed+v.Accepted+v.Deferred+v.OptOuts+v.Inbound > 0
}

func toAlertActions(in []rules.Action) []alert.Action {
	out := make([]alert.Action, len(in))
	for i, a := range in {
		out[i] = alert.Action{Type: a.Type, Params: a.Params}
	}
	return out
}

// Active returns the pending and firing alerts of every rule.
func (e *Engine) Active() []*alert.Alert {
	var out []*alert.Alert
	for _, g := range e.groups {
		for _, r := range g.rules {
			out = append(out, r.tracker.Active()...)
		}
	}
	return out
}

// LongestSpan is how much event history rebuilds the windows: the longest
// window plus baseline of any rule.
func (e *Engine) LongestSpan() time.Duration {
	var d time.Duration
	for _, s := range e.specs {
		d = max(d, s.Span)
	}
	return d
}

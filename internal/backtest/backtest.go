// Package backtest replays stored history through the rule engine in event
// time and reports what the rules would have done: every alert that would
// have fired or resolved, when, on which key, with the values that made it
// and the actions that would have been taken. Diff compares two rule sets
// on the same history; `evaluator backtest` (Main) is the command.
//
// A backtest drives engine.Engine as the live evaluator does, with the
// evaluator's window options, except that time comes from the data:
// events are applied in event-time order (as one partition, 0: the
// history is one ordered stream) and the engine is evaluated at
// event-time instants, each rule group on its own interval at multiples
// of it, the first at From, as engine.Eval schedules groups. Events
// stamped at or before an instant are in the windows when that instant is
// evaluated, as in rule unit tests (ruletest), so that a backtest and a
// rule test of the same input fire at the same instants; after the last
// event the instants up to To are evaluated. Nothing reads the clock but
// the progress bar: the same history and rules give the same report, byte
// for byte, whatever the parallelism, as long as the window store's
// bounds hold. When a history holds more (message id, status) pairs
// within the dedupe horizon than evaluator.max_dedupe, the store evicts
// some, which ones depending on its hash seeds, and a duplicate that
// arrives after its pair was evicted counts again: two runs may then
// differ by such counts. The report warns when it happened
// (Report.Warnings); raise evaluator.max_dedupe for backtests of heavy
// histories.
//
// The windows start empty at From: rules with a baseline or a long window
// see less than a live evaluator would during their first window (plus
// baseline). Start the range that much earlier to see the first alerts
// as production would have.
//
// Source is how history comes in; Memory is one over a slice. A source
// must give every event of the range once, in event-time order (ties in
// any order), and may reuse a batch's memory, strings included, once fn
// returns: the engine keeps no pointer into events (the window store
// copies the strings it keeps).
package backtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vigia/internal/alert"
	"vigia/internal/config"
	"vigia/internal/engine"
	"vigia/internal/event"
	"vigia/internal/quality"
	"vigia/internal/rules"
	"vigia/internal/window"
)

// Source yields stored events whose event_time is in [from, to), in
// event-time order (ties in any order), in batches; fn's slice is valid
// only during the call.
type Source interface {
	Events(ctx context.Context, from, to time.Time, fn func(batch []event.Event) error) error
}

// Counter is a Source that counts its events in a range cheaply (Memory;
// the ClickHouse store, store.Store, with a count query). A replay sizes
// its dedupe and attribution memories for them at once then, instead of
// growing them as the events come. Duplicates may be counted.
type Counter interface {
	CountEvents(ctx context.Context, from, to time.Time) (int64, error)
}

// maxReserve bounds what a count reserves (the window options' bounds do
// too, whatever their setting).
const maxReserve = 1 << 26

// Memory is a Source over events held in memory, for tests and benchmarks.
type Memory struct {
	events []event.Event
	// BatchSize is the number of events per call of fn; 0 means 65,536.
	// A replay's goroutines meet at the end of every batch (the source
	// may reuse its memory then), so small batches cost waits; the
	// ClickHouse source hands over an hour of events at a time.
	BatchSize int
}

// NewMemory returns a Source over events, which it keeps: the caller must
// not change them afterwards. Events not in event-time order are sorted
// into a new slice (stably: equal times keep their order).
func NewMemory(events []event.Event) *Memory {
	byTime := func(a, b event.Event) int { return a.EventTime.Compare(b.EventTime) }
	if slices.IsSortedFunc(events, byTime) {
		return &Memory{events: events}
	}
	// Sort indexes and move each event once: sorting the events
	// themselves (hundreds of bytes each) would move them log n times.
	idx := make([]int32, len(events))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return byTime(events[a], events[b]) })
	sorted := make([]event.Event, len(events))
	for i, j := range idx {
		sorted[i] = events[j]
	}
	return &Memory{events: sorted}
}

// Events implements Source.
func (m *Memory) Events(ctx context.Context, from, to time.Time, fn func([]event.Event) error) error {
	lo, hi := m.bounds(from, to)
	size := m.BatchSize
	if size <= 0 {
		size = 65536
	}
	for lo < hi {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(size, hi-lo)
		if err := fn(m.events[lo : lo+n]); err != nil {
			return err
		}
		lo += n
	}
	return nil
}

// CountEvents implements Counter.
func (m *Memory) CountEvents(_ context.Context, from, to time.Time) (int64, error) {
	lo, hi := m.bounds(from, to)
	return int64(hi - lo), nil
}

// bounds returns the indexes of the events in [from, to).
func (m *Memory) bounds(from, to time.Time) (lo, hi int) {
	lo = sort.Search(len(m.events), func(i int) bool { return !m.events[i].EventTime.Before(from) })
	hi = sort.Search(len(m.events), func(i int) bool { return !m.events[i].EventTime.Before(to) })
	return lo, max(lo, hi)
}

// Options configure a backtest. From and To are required.
type Options struct {
	// From and To bound the replay: events with From <= event_time < To,
	// evaluations at instants in [From, To).
	From, To time.Time
	// Rules, when not empty, restricts the backtest to the rules with
	// these names (alertname, or group/alertname when two groups share
	// one); see Select.
	Rules []string
	// Window configures the windows; the zero value means the live
	// evaluator's defaults, WindowOptions(config.Default().Evaluator).
	Window window.Options
	// Parallelism bounds the goroutines replaying at once; 0 means
	// GOMAXPROCS. Reports do not depend on it.
	Parallelism int
	// Progress, when set, receives a progress line redrawn with \r at
	// most five times a second, and a last line with the totals.
	Progress io.Writer

	clock func() time.Time // the progress bar's clock; time.Now when nil
}

// WindowOptions are the window options the live evaluator builds from its
// configuration.
func WindowOptions(ev config.Evaluator) window.Options {
	return window.Options{
		AllowedLateness: ev.AllowedLateness, DedupeHorizon: ev.DedupeHorizon, IdleTTL: ev.IdleTTL,
		MaxKeys: ev.MaxKeys, MaxDedupe: ev.MaxDedupe, MaxAttribution: ev.MaxAttribution,
		AttributionTTL: ev.AttributionTTL, MaxFutureSkew: ev.MaxFutureSkew,
	}
}

// ErrNoEvents is wrapped by the error Run returns when the source holds no
// event in the range.
var ErrNoEvents = errors.New("no stored events")

// maxEvalErrors bounds the distinct evaluation errors a report keeps.
const maxEvalErrors = 10

// Run replays the events of src in [o.From, o.To) through set and reports
// the alert state changes. See the package doc for the schedule.
func Run(ctx context.Context, src Source, set *rules.Set, o Options) (*Report, error) {
	reps, err := RunSets(ctx, src, []*rules.Set{set}, o)
	if err != nil {
		return nil, err
	}
	return reps[0], nil
}

// RunSets replays src once through each of sets, in parallel, and returns
// one report per set, as Run would: reading the history once is what a
// diff of two rule sets wants.
//
// Parallelism comes from splitting the work into parts, each with its own
// engine: the sets, and each set's rules split by the keyspaces they read.
// One store without keyspaces decides every event first (watermark,
// dedupe, attribution: window.Store.Decide), as one engine would, its
// memories expiring at the parts' evaluation instants, and every part
// counts the decided events in its keyspaces, a chunk behind the decider.
// Sets replayed together share the decider, which expires at the instants
// of all of them: at the very edge of a horizon, an event may be decided
// as the finer schedule says. Every part is evaluated at every instant of
// its set's schedule, so that windows expire at the same times; a rule's
// alerts depend on nothing else.
func RunSets(ctx context.Context, src Source, sets []*rules.Set, o Options) ([]*Report, error) {
	if src == nil || len(sets) == 0 || slices.Contains(sets, nil) {
		return nil, errors.New("backtest: a source and a rule set are required")
	}
	if o.From.IsZero() || o.To.IsZero() {
		return nil, errors.New("backtest: from and to are required")
	}
	if !o.From.Before(o.To) {
		return nil, fmt.Errorf("backtest: from (%s) must be before to (%s)", fmtTime(o.From), fmtTime(o.To))
	}
	if len(o.Rules) > 0 {
		sets = slices.Clone(sets)
		for i := range sets {
			var err error
			if sets[i], err = Select(sets[i], o.Rules...); err != nil {
				return nil, err
			}
		}
	}
	if o.Window == (window.Options{}) {
		o.Window = WindowOptions(config.Default().Evaluator)
	}
	if err := window.Validate(o.Window, nil); err != nil {
		return nil, fmt.Errorf("backtest: window options: %w", err)
	}
	workers := o.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	r := newReplay(ctx, sets, o, workers)
	if c, ok := src.(Counter); ok {
		// An entry per event in the dedupe memory; an attribution per
		// send at most, about a third of the statuses. A failed count
		// only leaves the tables to grow.
		if n, err := c.CountEvents(ctx, o.From, o.To); err == nil && n > 0 {
			n = min(n, maxReserve)
			r.decider.Reserve(int(n), int(n/2))
		}
	}
	fail := func(err error) ([]*Report, error) {
		r.progress.stop()
		return nil, fmt.Errorf("backtest %s .. %s: %w", fmtTime(o.From), fmtTime(o.To), err)
	}
	err := src.Events(ctx, o.From, o.To, r.batch)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(err)
	}
	if r.events == 0 {
		r.progress.stop()
		return nil, fmt.Errorf("%w between %s and %s", ErrNoEvents, fmtTime(o.From), fmtTime(o.To))
	}
	// The instants after the last event, up to To.
	if err := r.each(func(p *part) error { return r.work(func() error { return p.evalBefore(ctx, p.to) }) }); err != nil {
		return fail(err)
	}
	reps := make([]*Report, len(sets))
	for i, set := range sets {
		reps[i] = r.report(i, set)
	}
	r.progress.done(reps[0])
	return reps, nil
}

// replay coordinates the parts of a backtest: it checks the source's
// order, decides each event once (dedupe, attribution) for all the parts,
// replays the decided events in every part, each part on a goroutine of
// its own with at most workers of them busy at once, and merges what the
// parts found.
type replay struct {
	ctx      context.Context
	from, to int64 // Unix nanoseconds
	parts    []*part
	bySet    [][]*part
	tokens   chan struct{} // one per goroutine allowed to work at once

	window window.Options
	// decider decides every event once for all the parts (dedupe,
	// attribution: window.Store.Decide), ahead of them, into ring: chunk
	// c of a batch goes to ring[c%decideAhead], which left counts the
	// parts still to replay.
	decider *window.Store
	ring    [decideAhead][decideChunk]window.Decision
	left    [decideAhead]atomic.Int32
	// expiry is the instants at which the decider's memories expire
	// (their horizons, window.Store.Expire): the parts' instants, those of
	// every set's groups.
	expiry schedule

	events   int64
	last     int64         // event time of the last event
	outcomes [][256]uint64 // per set, by window.Outcome
	progress *progress
}

func newReplay(ctx context.Context, sets []*rules.Set, o Options, workers int) *replay {
	r := &replay{ctx: ctx, from: o.From.UnixNano(), to: o.To.UnixNano(), window: o.Window, outcomes: make([][256]uint64, len(sets)),
		decider: window.New(o.Window, nil), tokens: make(chan struct{}, workers)}
	all := &rules.Set{}
	for _, set := range sets {
		all.Groups = append(all.Groups, set.Groups...)
	}
	r.expiry = newSchedule(all, r.from, r.to)
	// A part per worker: more would balance the work better at run time
	// (a free worker takes whichever part has a chunk to do), but every
	// part repeats the per-event work of finding its keys, and measured
	// two per worker cost 7-12 % more CPU for no faster replay (the
	// decider's goroutine already fills the gaps).
	per := max(1, workers/len(sets))
	r.bySet = make([][]*part, len(sets))
	for i, set := range sets {
		for _, sub := range split(set, per) {
			p := newPart(i, set, sub, r.decider, o.Window, r.from, r.to)
			r.parts = append(r.parts, p)
			r.bySet[i] = append(r.bySet[i], p)
		}
	}
	r.progress = newProgress(o.Progress, o.clock, o.From, o.To)
	return r
}

// batch replays a batch in every part (the decider checks it against the
// source's contract, see check).
func (r *replay) batch(evs []event.Event) error {
	for _, p := range r.parts {
		p.outcomes = slices.Grow(p.outcomes[:0], len(evs))[:len(evs)]
	}
	if err := r.replayBatch(evs); err != nil {
		return err
	}
	// An event's outcome in a set is the best of its parts': applied in
	// one is applied; otherwise the first reason in window.Outcome's order.
	for s, ps := range r.bySet {
		for i := range evs {
			o := ps[0].outcomes[i]
			for _, p := range ps[1:] {
				o = min(o, p.outcomes[i])
			}
			r.outcomes[s][o]++
		}
	}
	r.events += int64(len(evs))
	r.progress.update(r.events, r.last)
	return nil
}

// decideChunk is how many events the decider hands to the parts at a
// time: small enough that the parts start soon after it, large enough
// that waking them costs little per event.
const decideChunk = 512

// decideAhead is how many chunks the decider may be ahead of the slowest
// part. The parts do not keep pace with each other: at an evaluation
// instant a part evaluates every key of its rules at once, a burst of
// milliseconds, while the decider, usually the slowest stage, should go
// on deciding for the others. With 8 chunks it waited for a free slot
// 1.2-1.6 s of a 6 s replay of the benchmark history (one core idle
// meanwhile), with 32 about 0.3 s, with 64 0.02 s. Memory stays bounded
// whatever the size of the source's batches (the ClickHouse source
// gives an hour of events at a time): 64 × 512 decisions of 336 bytes
// are 11 MB.
const decideAhead = 64

// replayBatch decides the events of a batch on a goroutine of its own and
// replays each chunk in every part, each on its goroutine, as soon as it
// is decided. It returns when the decider and every part are done with
// the batch: the source may reuse its memory afterwards.
func (r *replay) replayBatch(evs []event.Event) error {
	n := len(evs)
	chunk := func(c int) (int, int) { return c * decideChunk, min(n, (c+1)*decideChunk) }
	ready := make([]chan struct{}, (n+decideChunk-1)/decideChunk)
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	// A token per free slot of the ring; stop ends the batch early when a
	// part fails or an event is bad, so that nobody waits for a chunk that
	// will not come.
	free := make(chan struct{}, decideAhead)
	for range decideAhead {
		free <- struct{}{}
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	var badErr error // an event against the source's contract (check)
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		for c := range ready {
			select {
			case <-free:
			case <-stop:
				return
			}
			lo, hi := chunk(c)
			slot := c % decideAhead
			r.left[slot].Store(int32(len(r.parts)))
			r.work(func() error {
				if badErr = r.check(evs[lo:hi]); badErr == nil {
					r.decide(evs[lo:hi], r.ring[slot][:hi-lo])
				}
				return nil
			})
			if badErr != nil {
				stopOnce.Do(func() { close(stop) })
				return
			}
			close(ready[c])
		}
	}()
	err := r.each(func(p *part) error {
		for c := range ready {
			select {
			case <-ready[c]:
			case <-stop:
				return nil
			}
			lo, hi := chunk(c)
			slot := c % decideAhead
			err := r.work(func() error { return p.run(r.ctx, evs[lo:hi], r.ring[slot][:hi-lo], p.outcomes[lo:hi]) })
			if err != nil {
				stopOnce.Do(func() { close(stop) })
				return err
			}
			// Chunks end in order in every part, so the last part to end
			// chunk c frees its slot before any later chunk's.
			if r.left[slot].Add(-1) == 0 {
				free <- struct{}{}
			}
		}
		return nil
	})
	<-decided
	return cmp.Or(badErr, err)
}

// decide decides evs into ds. The decider's dedupe and attribution
// memories expire at the parts' evaluation instants, as a live engine's
// do after it evaluates (engine.Engine.Eval): an event at t is decided
// once every instant before t has expired them, as the parts evaluate
// every instant before t before they count it.
func (r *replay) decide(evs []event.Event, ds []window.Decision) {
	for i := 0; i < len(evs); {
		t := evs[i].EventTime.UnixNano()
		for r.expiry.next < t {
			at := time.Unix(0, r.expiry.next).UTC()
			r.decider.Expire(at)
			r.expiry.advance(at)
		}
		j := i + 1
		for j < len(evs) && evs[j].EventTime.UnixNano() <= r.expiry.next {
			j++
		}
		r.decider.DecideBatch(0, evs[i:j], ds[i:j])
		i = j
	}
}

// check checks events against the source's contract: in event-time order
// and in the range. The decider does it, chunk by chunk, rather than the
// source's goroutine before the batch: reading every event's time is a
// cache miss each, which the decider would pay next anyway, and the
// parts would wait for.
func (r *replay) check(evs []event.Event) error {
	for i := range evs {
		t := evs[i].EventTime.UnixNano()
		if t < r.last || t < r.from || t >= r.to {
			return r.badEvent(&evs[i], t)
		}
		r.last = t
	}
	return nil
}

// each runs fn for every part, each on a goroutine of its own, and waits
// for all; fn bounds its busy time with work.
func (r *replay) each(fn func(*part) error) error {
	errs := make([]error, len(r.parts))
	var wg sync.WaitGroup
	for i, p := range r.parts {
		wg.Go(func() { errs[i] = fn(p) })
	}
	wg.Wait()
	return cmp.Or(errs...)
}

// work runs fn once one of the workers' tokens is free.
func (r *replay) work(fn func() error) error {
	r.tokens <- struct{}{}
	defer func() { <-r.tokens }()
	return fn()
}

func (r *replay) badEvent(ev *event.Event, t int64) error {
	if t < r.last {
		return fmt.Errorf("source out of order: event %s at %s after one at %s", ev.ID, fmtTime(ev.EventTime), fmtTime(time.Unix(0, r.last)))
	}
	return fmt.Errorf("source gave event %s at %s, outside the range", ev.ID, fmtTime(ev.EventTime))
}

// report merges the parts of set i.
func (r *replay) report(i int, set *rules.Set) *Report {
	rep := &Report{
		From: time.Unix(0, r.from).UTC(), To: time.Unix(0, r.to).UTC(),
		RuleFiles: slices.Clone(set.Files),
		Events:    r.events,
		Changes:   []Change{},
		Rules:     []RuleTotals{},
		Outcomes:  map[string]uint64{},
	}
	for o, n := range r.outcomes[i] {
		if n > 0 {
			rep.Outcomes[window.Outcome(o).String()] = n
		}
	}
	for _, p := range r.bySet[i] {
		rep.Rounds = p.rounds // the same schedule in every part
		rep.Evaluations += p.eng.Evaluations
		rep.EvalFailures += p.eng.EvalFailures
		rep.Changes = append(rep.Changes, p.changes...)
		for _, e := range p.errs {
			if !slices.Contains(rep.EvalErrors, e) {
				rep.EvalErrors = append(rep.EvalErrors, e)
			}
		}
		for _, a := range p.eng.Active() {
			if c := p.counts[a.Group+"/"+a.Name]; c != nil && a.State == alert.StateFiring {
				c.FiringAtEnd++
			}
		}
		for _, c := range p.counts {
			rep.Rules = append(rep.Rules, *c)
			rep.Totals.Firing += c.Firing
			rep.Totals.Resolved += c.Resolved
			rep.Totals.Pending += c.Pending
			rep.Totals.Inactive += c.Inactive
			rep.Totals.FiringAtEnd += c.FiringAtEnd
		}
	}
	rep.Warnings = r.boundWarnings()
	slices.Sort(rep.EvalErrors)
	if len(rep.EvalErrors) > maxEvalErrors {
		rep.EvalErrors = rep.EvalErrors[:maxEvalErrors]
	}
	slices.SortFunc(rep.Rules, func(a, b RuleTotals) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Alertname, b.Alertname))
	})
	slices.SortStableFunc(rep.Changes, compareChanges)
	return rep
}

// boundWarnings says when the decider's dedupe or attribution memory
// overflowed (the parts' stores keep none). The entries dropped then
// depend on its per-process hash seeds, so another run of the same
// backtest may count a few duplicates or attributions differently (the
// package comment).
func (r *replay) boundWarnings() []string {
	st := r.decider.Stats()
	dedupe, attribution := st.DedupeEvicted, st.AttributionEvicted
	var out []string
	if dedupe > 0 {
		out = append(out, fmt.Sprintf("the dedupe memory (evaluator.max_dedupe = %d) overflowed: %d (message, status) pairs "+
			"were forgotten within evaluator.dedupe_horizon, so a later duplicate of one counted again; which ones depends on "+
			"hash seeds, so another run can differ in such counts; raise evaluator.max_dedupe to several times the pairs in one "+
			"horizon (the table starts forgetting a few from about a quarter full)",
			r.window.MaxDedupe, dedupe))
	}
	if attribution > 0 {
		out = append(out, fmt.Sprintf("the attribution memory (evaluator.max_attribution = %d) overflowed: %d attributions "+
			"were forgotten before evaluator.attribution_ttl, so some later opt-outs were not attributed to a template; which "+
			"ones depends on hash seeds, so another run can differ; raise evaluator.max_attribution to several times the "+
			"(number, user) pairs within evaluator.attribution_ttl",
			r.window.MaxAttribution, attribution))
	}
	return out
}

// part is one engine of a backtest, holding some of one set's rules, with
// the evaluation schedule of the whole set.
type part struct {
	set    int
	eng    *engine.Engine
	to     int64
	sched  schedule
	rounds int64

	outcomes []window.Outcome // of the events of the current batch
	changes  []Change
	counts   map[string]*RuleTotals // by group/alertname
	ruleOf   map[string]*ruleInfo
	errs     []string
}

func newPart(setIndex int, set, sub *rules.Set, decider *window.Store, wo window.Options, from, to int64) *part {
	p := &part{
		set:    setIndex,
		eng:    engine.New(sub, engine.Options{Window: wo, Decider: decider}),
		to:     to,
		sched:  newSchedule(set, from, to),
		counts: map[string]*RuleTotals{},
		ruleOf: map[string]*ruleInfo{},
	}
	for _, g := range sub.Groups {
		for _, rl := range g.Rules {
			id := g.Name + "/" + rl.Alert
			p.counts[id] = &RuleTotals{Group: g.Name, Alertname: rl.Alert, Rule: fmt.Sprintf("%s:%d", rl.File, rl.Line)}
			p.ruleOf[id] = newRuleInfo(rl)
		}
	}
	return p
}

// run applies decided events (evs[i] decided as dec[i]) and records
// their outcomes in out, evaluating first every instant before each
// event: events at an instant are in the windows it evaluates.
func (p *part) run(ctx context.Context, evs []event.Event, dec []window.Decision, out []window.Outcome) error {
	for i := range evs {
		if t := evs[i].EventTime.UnixNano(); t > p.sched.next {
			if err := p.evalBefore(ctx, t); err != nil {
				return err
			}
		}
		out[i] = p.eng.ApplyDecision(&dec[i])
	}
	return nil
}

// evalBefore evaluates every instant of the schedule before t.
func (p *part) evalBefore(ctx context.Context, t int64) error {
	for p.sched.next < t {
		if p.rounds&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p.evalAt(ctx, p.sched.next)
	}
	return nil
}

// evalAt evaluates the engine at now (its due groups, then expiry, as the
// live evaluator's tick does) and moves the schedule on.
func (p *part) evalAt(ctx context.Context, now int64) {
	at := time.Unix(0, now).UTC()
	for _, a := range p.eng.Eval(ctx, at) {
		p.record(&a)
	}
	if err := p.eng.LastEvalError; err != nil {
		p.eng.LastEvalError = nil
		if msg := fmtTime(at) + ": " + err.Error(); len(p.errs) < maxEvalErrors && !slices.Contains(p.errs, msg) {
			p.errs = append(p.errs, msg)
		}
	}
	p.rounds++
	p.sched.advance(at)
}

func (p *part) record(a *alert.Alert) {
	id := a.Group + "/" + a.Name
	c := p.counts[id]
	if c == nil { // not reached: changes come from the part's rules
		c = &RuleTotals{Group: a.Group, Alertname: a.Name, Rule: a.Rule}
		p.counts[id] = c
	}
	switch a.State {
	case alert.StatePending:
		c.Pending++
		return
	case alert.StateInactive:
		c.Inactive++
		return
	case alert.StateFiring:
		c.Firing++
	case alert.StateResolved:
		c.Resolved++
	}
	p.changes = append(p.changes, newChange(a, p.ruleOf[id]))
}

// schedule mirrors engine.Eval's: every group is evaluated at the first
// instant (From), then at the next multiple of its interval after each
// instant it was evaluated at. next is the next instant, To when there is
// none before it.
type schedule struct {
	intervals []time.Duration
	due       []int64
	next, to  int64
}

func newSchedule(set *rules.Set, from, to int64) schedule {
	s := schedule{next: from, to: to}
	for _, g := range set.Groups {
		s.intervals = append(s.intervals, g.Interval)
		s.due = append(s.due, from)
	}
	if len(s.due) == 0 {
		s.next = to // nothing to evaluate
	}
	return s
}

func (s *schedule) advance(at time.Time) {
	now := at.UnixNano()
	next := s.to
	for i, d := range s.due {
		if now >= d {
			iv := s.intervals[i]
			d = at.Truncate(iv).Add(iv).UnixNano()
			s.due[i] = d
		}
		next = min(next, d)
	}
	s.next = next
}

// split divides set into at most n sets of whole keyspaces (the rules
// reading the same keyspace stay together, so that no keyspace is kept
// twice), balanced by ruleCost. Groups keep their names and intervals in
// each.
func split(set *rules.Set, n int) []*rules.Set {
	type cluster struct {
		rules map[*rules.Rule]bool
		cost  float64
	}
	var clusters []*cluster
	byKey := map[string]*cluster{} // keyspace name -> the cluster reading it
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			// A rule joins every cluster reading one of its keyspaces
			// (a rule over WABAs reads its numbers' too), merging them.
			var c *cluster
			keys := engine.Keyspaces(r)
			for _, k := range keys {
				other := byKey[k]
				switch {
				case other == nil || other == c:
				case c == nil:
					c = other
				default:
					maps.Copy(c.rules, other.rules)
					c.cost += other.cost
					for k2, c2 := range byKey {
						if c2 == other {
							byKey[k2] = c
						}
					}
					clusters = slices.DeleteFunc(clusters, func(x *cluster) bool { return x == other })
				}
			}
			if c == nil {
				c = &cluster{rules: map[*rules.Rule]bool{}}
				clusters = append(clusters, c)
			}
			for _, k := range keys {
				byKey[k] = c
			}
			c.rules[r] = true
			c.cost += ruleCost(r, g.Interval)
		}
	}
	if n <= 1 || len(clusters) <= 1 {
		return []*rules.Set{set}
	}
	n = min(n, len(clusters))
	slices.SortStableFunc(clusters, func(a, b *cluster) int { return cmp.Compare(b.cost, a.cost) })
	bins := make([]map[*rules.Rule]bool, n)
	load := make([]float64, n)
	for i := range bins {
		bins[i] = map[*rules.Rule]bool{}
	}
	for _, c := range clusters {
		i := slices.Index(load, slices.Min(load))
		maps.Copy(bins[i], c.rules)
		load[i] += c.cost
	}
	out := make([]*rules.Set, n)
	for i, bin := range bins {
		sub := &rules.Set{Files: set.Files}
		for _, g := range set.Groups {
			var keep []*rules.Rule
			for _, r := range g.Rules {
				if bin[r] {
					keep = append(keep, r)
				}
			}
			if len(keep) > 0 {
				ng := *g
				ng.Rules = keep
				sub.Groups = append(sub.Groups, &ng)
			}
		}
		out[i] = sub
	}
	return out
}

// ruleCost estimates what evaluating a rule costs per second of event
// time: evaluations per second times its keys (guessed from its
// dimensions) times the buckets it reads. Only the proportions matter.
func ruleCost(r *rules.Rule, interval time.Duration) float64 {
	keys := 1.0
	for _, d := range r.By {
		keys = max(keys, dimKeys[d])
	}
	if slices.Contains(r.By, quality.DimWABA) && len(r.By) == 1 {
		keys += 2 * dimKeys[quality.DimPhoneNumber] // numbers_active, numbers_degraded
	}
	buckets := 1.0
	if r.Resolution > 0 {
		span := r.Window
		if r.BaselineKind == rules.BaselinePrevious {
			span += r.Baseline
		}
		buckets = float64(span / r.Resolution)
	}
	return keys * (1 + buckets/100) / max(interval.Seconds(), 1)
}

// dimKeys guesses how many keys a dimension has, relative to the others.
var dimKeys = map[quality.Dim]float64{
	quality.DimPhoneNumber: 1000, quality.DimTemplate: 100, quality.DimCampaign: 50, quality.DimUseCase: 20,
	quality.DimCountry: 20, quality.DimWABA: 10, quality.DimChannel: 3,
}

// Select returns the part of set holding only the named rules: a name is
// an alertname (every rule of that name) or group/alertname. A name that
// matches no rule is an error listing the known names.
func Select(set *rules.Set, names ...string) (*rules.Set, error) {
	var unknown []string
	for _, n := range names {
		if !Knows(set, n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown rule %s; known rules: %s", strings.Join(quoteAll(unknown), ", "), strings.Join(RuleNames(set), ", "))
	}
	out := &rules.Set{Files: set.Files}
	for _, g := range set.Groups {
		var keep []*rules.Rule
		for _, r := range g.Rules {
			if slices.Contains(names, r.Alert) || slices.Contains(names, g.Name+"/"+r.Alert) {
				keep = append(keep, r)
			}
		}
		if len(keep) > 0 {
			ng := *g
			ng.Rules = keep
			out.Groups = append(out.Groups, &ng)
		}
	}
	return out, nil
}

// Knows reports whether name (alertname or group/alertname) names a rule
// of set.
func Knows(set *rules.Set, name string) bool {
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			if name == r.Alert || name == g.Name+"/"+r.Alert {
				return true
			}
		}
	}
	return false
}

// RuleNames lists the alertnames of set, sorted, once each.
func RuleNames(set *rules.Set) []string {
	var out []string
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Alert)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// fmtTime prints times in UTC, RFC 3339, with sub-seconds only when set.
func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

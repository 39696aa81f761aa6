package alert

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"vigia/internal/quality"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

var testRule = RuleInfo{Name: "DeliveryRateDrop", Group: "delivery", Rule: "rules/delivery.yaml:4"}

func mustTracker(t testing.TB, p Params, o Options) *Tracker {
	t.Helper()
	tr, err := NewTracker(testRule, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// step is one evaluation of one key in a timeline.
type step struct {
	at            time.Duration // after t0
	cond, resolve bool
	missing       bool // the key has no data: Missing instead of Eval
}

func on(at time.Duration) step   { return step{at: at, cond: true} }
func off(at time.Duration) step  { return step{at: at} }                // condition false, resolve false
func res(at time.Duration) step  { return step{at: at, resolve: true} } // condition false, resolve true
func both(at time.Duration) step { return step{at: at, cond: true, resolve: true} }
func gone(at time.Duration) step { return step{at: at, missing: true} }

// change is an expected record: its eval time, state and ActiveAt.
type change struct {
	at     time.Duration
	state  State
	active time.Duration
}

const s = time.Second

func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     Params
		steps []step
		want  []change
	}{
		{
			name:  "for 0 fires at once and resolves when the condition stops",
			steps: []step{on(0), on(10 * s), off(20 * s), off(30 * s)},
			want:  []change{{0, StateFiring, 0}, {20 * s, StateResolved, 0}},
		},
		{
			name:  "a false condition starts nothing",
			steps: []step{off(0), res(10 * s), gone(20 * s)},
		},
		{
			name:  "for held fires at For after ActiveAt",
			p:     Params{For: 30 * s},
			steps: []step{on(0), on(10 * s), on(20 * s), on(30 * s), on(40 * s), off(50 * s)},
			want:  []change{{0, StatePending, 0}, {30 * s, StateFiring, 0}, {50 * s, StateResolved, 0}},
		},
		{
			name:  "for fires on the first evaluation past For",
			p:     Params{For: 30 * s},
			steps: []step{on(0), on(25 * s), on(35 * s)},
			want:  []change{{0, StatePending, 0}, {35 * s, StateFiring, 0}},
		},
		{
			name:  "for broken: inactive, then a new pending with a new ActiveAt",
			p:     Params{For: 30 * s},
			steps: []step{on(0), on(10 * s), off(20 * s), off(25 * s), on(30 * s), on(50 * s), on(60 * s)},
			want: []change{
				{0, StatePending, 0}, {20 * s, StateInactive, 0},
				{30 * s, StatePending, 30 * s}, {60 * s, StateFiring, 30 * s},
			},
		},
		{
			name:  "for: a resolve condition does not end a pending alert, the condition does",
			p:     Params{For: 30 * s, HasResolve: true},
			steps: []step{on(0), both(10 * s), off(20 * s)},
			want:  []change{{0, StatePending, 0}, {20 * s, StateInactive, 0}},
		},
		{
			name:  "hysteresis: firing until resolve_when holds",
			p:     Params{HasResolve: true},
			steps: []step{on(0), off(10 * s), off(20 * s), on(25 * s), res(30 * s)},
			want:  []change{{0, StateFiring, 0}, {30 * s, StateResolved, 0}},
		},
		{
			name:  "hysteresis: the condition wins over an overlapping resolve_when",
			p:     Params{HasResolve: true},
			steps: []step{on(0), both(10 * s), both(20 * s), res(30 * s)},
			want:  []change{{0, StateFiring, 0}, {30 * s, StateResolved, 0}},
		},
		{
			name:  "without resolve_when Resolve is ignored",
			steps: []step{on(0), both(10 * s), off(20 * s)},
			want:  []change{{0, StateFiring, 0}, {20 * s, StateResolved, 0}},
		},
		{
			name:  "keep_firing_for held",
			p:     Params{KeepFiringFor: 30 * s},
			steps: []step{on(0), off(10 * s), off(20 * s), off(30 * s), off(40 * s), off(50 * s)},
			want:  []change{{0, StateFiring, 0}, {40 * s, StateResolved, 0}},
		},
		{
			name:  "keep_firing_for reset by a true condition",
			p:     Params{KeepFiringFor: 30 * s},
			steps: []step{on(0), off(10 * s), off(30 * s), on(35 * s), off(40 * s), off(60 * s), off(70 * s)},
			want:  []change{{0, StateFiring, 0}, {70 * s, StateResolved, 0}},
		},
		{
			name: "keep_firing_for counts from when resolve_when holds, reset when it stops",
			p:    Params{KeepFiringFor: 30 * s, HasResolve: true},
			// off: condition false but not resolved, so not clear.
			steps: []step{on(0), off(10 * s), res(20 * s), off(30 * s), res(40 * s), res(60 * s), res(70 * s)},
			want:  []change{{0, StateFiring, 0}, {70 * s, StateResolved, 0}},
		},
		{
			name:  "keep_firing_for does not keep a pending alert",
			p:     Params{For: 30 * s, KeepFiringFor: time.Minute},
			steps: []step{on(0), off(10 * s)},
			want:  []change{{0, StatePending, 0}, {10 * s, StateInactive, 0}},
		},
		{
			name:  "resolved then firing again is a new occurrence",
			steps: []step{on(0), off(10 * s), on(20 * s), on(30 * s), off(40 * s)},
			want: []change{
				{0, StateFiring, 0}, {10 * s, StateResolved, 0},
				{20 * s, StateFiring, 20 * s}, {40 * s, StateResolved, 20 * s},
			},
		},
		{
			name:  "resolved then pending again with for",
			p:     Params{For: 10 * s},
			steps: []step{on(0), on(10 * s), off(20 * s), on(30 * s), on(40 * s)},
			want: []change{
				{0, StatePending, 0}, {10 * s, StateFiring, 0}, {20 * s, StateResolved, 0},
				{30 * s, StatePending, 30 * s}, {40 * s, StateFiring, 30 * s},
			},
		},
		{
			name:  "missing data resolves a firing alert",
			steps: []step{on(0), gone(10 * s), gone(20 * s)},
			want:  []change{{0, StateFiring, 0}, {10 * s, StateResolved, 0}},
		},
		{
			name:  "missing data resolves under hysteresis",
			p:     Params{HasResolve: true},
			steps: []step{on(0), off(10 * s), gone(20 * s)},
			want:  []change{{0, StateFiring, 0}, {20 * s, StateResolved, 0}},
		},
		{
			name:  "missing data ends a pending alert",
			p:     Params{For: time.Minute},
			steps: []step{on(0), gone(10 * s)},
			want:  []change{{0, StatePending, 0}, {10 * s, StateInactive, 0}},
		},
		{
			name:  "missing data waits for keep_firing_for",
			p:     Params{KeepFiringFor: 30 * s},
			steps: []step{on(0), gone(10 * s), gone(30 * s), gone(40 * s)},
			want:  []change{{0, StateFiring, 0}, {40 * s, StateResolved, 0}},
		},
		{
			name:  "data coming back resets keep_firing_for",
			p:     Params{KeepFiringFor: 30 * s},
			steps: []step{on(0), gone(10 * s), on(20 * s), gone(30 * s), gone(50 * s), gone(60 * s)},
			want:  []change{{0, StateFiring, 0}, {60 * s, StateResolved, 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTracker(t, tc.p, Options{})
			got := runTimeline(t, tr, tc.steps)
			if !slices.Equal(got, tc.want) {
				t.Errorf("changes\n got %v\nwant %v", got, tc.want)
			}
			if pending, firing := tr.Counts(); len(tc.want) > 0 {
				last := tc.want[len(tc.want)-1].state
				if wp, wf := last == StatePending, last == StateFiring; (pending == 1) != wp || (firing == 1) != wf {
					t.Errorf("counts pending %d firing %d after %s", pending, firing, last)
				}
			}
		})
	}
}

var keyLabels = map[string]string{"phone_number": "15550001", "severity": "critical"}

// runTimeline drives one key through steps and returns the changes. Each
// evaluation carries Values.Sent = its step number + 1, so that the test
// can check that a record holds the values of the evaluation that caused
// it; it also checks the invariants every record must hold.
func runTimeline(t *testing.T, tr *Tracker, steps []step) []change {
	t.Helper()
	var got []change
	var prev *Alert
	for i, st := range steps {
		now := t0.Add(st.at)
		var a *Alert
		if st.missing {
			a = tr.Missing(now, tr.Fingerprint(keyLabels))
		} else {
			a = tr.Eval(now, Input{
				Labels:      keyLabels,
				Condition:   st.cond,
				Resolve:     st.resolve,
				Values:      quality.Values{Sent: int64(i + 1)},
				Annotations: map[string]string{"step": fmt.Sprint(i)},
			})
		}
		if a == nil {
			continue
		}
		got = append(got, change{a.EvalTime.Sub(t0), a.State, a.ActiveAt.Sub(t0)})
		checkRecord(t, a)
		if !a.EvalTime.Equal(now) {
			t.Errorf("step %d: eval time %v, want %v", i, a.EvalTime, now)
		}
		wantSent := int64(i + 1)
		if st.missing {
			wantSent = 0
		}
		if a.Values.Sent != wantSent {
			t.Errorf("step %d: %s record carries values of another evaluation (sent %d, want %d)", i, a.State, a.Values.Sent, wantSent)
		}
		if prev != nil && prev.Occurrence() == a.Occurrence() {
			if prev.FiredAt != nil && (a.FiredAt == nil || !a.FiredAt.Equal(*prev.FiredAt)) {
				t.Errorf("step %d: fired_at changed within an occurrence: %v then %v", i, prev.FiredAt, a.FiredAt)
			}
		}
		prev = a
	}
	return got
}

// checkRecord checks what holds for every record whatever the timeline.
func checkRecord(t *testing.T, a *Alert) {
	t.Helper()
	if a.SchemaVersion != SchemaVersion || a.Name != testRule.Name || a.Group != testRule.Group || a.Rule != testRule.Rule {
		t.Errorf("%s record: identity %d %q %q %q", a.State, a.SchemaVersion, a.Name, a.Group, a.Rule)
	}
	if a.Labels[LabelAlertName] != a.Name {
		t.Errorf("%s record: alertname label %q", a.State, a.Labels[LabelAlertName])
	}
	if a.Fingerprint != Fingerprint(a.Labels) {
		t.Errorf("%s record: fingerprint %s, Fingerprint(labels) %s", a.State, a.Fingerprint, Fingerprint(a.Labels))
	}
	if a.EvalTime.Before(a.ActiveAt) {
		t.Errorf("%s record: eval time %v before active at %v", a.State, a.EvalTime, a.ActiveAt)
	}
	switch a.State {
	case StatePending, StateInactive:
		if a.FiredAt != nil || a.ResolvedAt != nil {
			t.Errorf("%s record: fired_at %v resolved_at %v", a.State, a.FiredAt, a.ResolvedAt)
		}
		if a.State == StatePending && !a.ActiveAt.Equal(a.EvalTime) {
			t.Errorf("pending record: active at %v, eval time %v", a.ActiveAt, a.EvalTime)
		}
	case StateFiring:
		if a.FiredAt == nil || !a.FiredAt.Equal(a.EvalTime) || a.ResolvedAt != nil {
			t.Errorf("firing record: fired_at %v resolved_at %v eval time %v", a.FiredAt, a.ResolvedAt, a.EvalTime)
		}
	case StateResolved:
		if a.FiredAt == nil || a.ResolvedAt == nil || !a.ResolvedAt.Equal(a.EvalTime) || a.FiredAt.After(*a.ResolvedAt) {
			t.Errorf("resolved record: fired_at %v resolved_at %v eval time %v", a.FiredAt, a.ResolvedAt, a.EvalTime)
		}
	default:
		t.Errorf("unknown state %q", a.State)
	}
	for _, ts := range []time.Time{a.ActiveAt, a.EvalTime} {
		if ts.Location() != time.UTC {
			t.Errorf("%s record: time %v not in UTC", a.State, ts)
		}
	}
}

func TestOccurrence(t *testing.T) {
	tr := mustTracker(t, Params{For: 10 * s}, Options{})
	in := Input{Labels: keyLabels, Condition: true}
	p := tr.Eval(t0, in)
	f := tr.Eval(t0.Add(10*s), in)
	in.Condition = false
	r := tr.Eval(t0.Add(20*s), in)
	in.Condition = true
	p2 := tr.Eval(t0.Add(30*s), in)
	if p.Occurrence() != f.Occurrence() || f.Occurrence() != r.Occurrence() {
		t.Errorf("one occurrence, three keys: %s %s %s", p.Occurrence(), f.Occurrence(), r.Occurrence())
	}
	if p2.Occurrence() == p.Occurrence() {
		t.Errorf("a new occurrence kept the key %s", p.Occurrence())
	}
	if want := fmt.Sprintf("%s-%d", p.Fingerprint, t0.UnixNano()); p.Occurrence() != want {
		t.Errorf("occurrence %s, want %s", p.Occurrence(), want)
	}
}

// TestRecordsCarryTheirEvaluation checks that a record holds the values,
// baseline, annotations and actions of the evaluation that caused it, and
// that neither side can change the other's copy afterwards.
func TestRecordsCarryTheirEvaluation(t *testing.T) {
	tr := mustTracker(t, Params{For: 10 * s}, Options{})
	vals := fullValues()
	base := fullValues()
	in := Input{
		Labels:      map[string]string{"phone_number": "1"},
		Condition:   true,
		Values:      vals,
		Baseline:    &base,
		Annotations: map[string]string{"summary": "first"},
		Actions:     []Action{{Type: "failover", Params: map[string]string{"use_case": "otp"}}},
	}
	pending := tr.Eval(t0, in)
	if !reflect.DeepEqual(pending.Values, fullValues()) || pending.Baseline == nil || pending.Annotations["summary"] != "first" || pending.Actions[0].Params["use_case"] != "otp" {
		t.Fatalf("pending record does not carry its evaluation: %+v", pending)
	}

	// The caller reuses its maps; the engine mutates the record it got.
	in.Labels["phone_number"] = "2"
	in.Values.FailuresByCode[131026] = -1
	base.FailuresByClass["recipient"] = -1
	in.Annotations["summary"] = "mutated"
	in.Actions[0].Params["use_case"] = "mutated"
	pending.Labels["x"] = "y"
	pending.Values.FailuresByCode[1] = 1
	*pending.Baseline = quality.Values{}

	active := tr.Active()
	if len(active) != 1 {
		t.Fatalf("active %d", len(active))
	}
	a := active[0]
	if a.Labels["phone_number"] != "1" || a.Labels["x"] != "" || !reflect.DeepEqual(a.Values, fullValues()) ||
		!reflect.DeepEqual(*a.Baseline, fullValues()) || a.Annotations["summary"] != "first" || a.Actions[0].Params["use_case"] != "otp" {
		t.Errorf("the tracker's record shares memory with the caller: %+v", a)
	}
	a.Annotations["summary"] = "mutated via Active"
	if tr.Active()[0].Annotations["summary"] != "first" {
		t.Error("Active returns the tracker's own record")
	}

	// Firing carries the evaluation that fired, not the one that started.
	second := Input{
		Labels:      map[string]string{"phone_number": "1"},
		Condition:   true,
		Values:      quality.Values{Sent: 2},
		Annotations: map[string]string{"summary": "second"},
	}
	f := tr.Eval(t0.Add(10*s), second)
	if f.State != StateFiring || f.Values.Sent != 2 || f.Baseline != nil || f.Annotations["summary"] != "second" || f.Actions != nil {
		t.Errorf("firing record: %+v", f)
	}

	// Missing data: zero values, no baseline, the last annotations and actions.
	tr2 := mustTracker(t, Params{}, Options{})
	in2 := in
	in2.Labels = map[string]string{"phone_number": "3"}
	tr2.Eval(t0, in2)
	r := tr2.Missing(t0.Add(10*s), tr2.Fingerprint(in2.Labels))
	if r == nil || r.State != StateResolved || !reflect.DeepEqual(r.Values, quality.Values{}) || r.Baseline != nil ||
		r.Annotations["summary"] != "mutated" || len(r.Actions) != 1 {
		t.Errorf("resolved for missing data: %+v", r)
	}
}

func TestRenderOnlyOnChange(t *testing.T) {
	tr := mustTracker(t, Params{For: 10 * s}, Options{})
	renders := 0
	in := Input{
		Labels:      keyLabels,
		Condition:   true,
		Annotations: map[string]string{"summary": "replaced"},
		Render: func() (map[string]string, []Action) {
			renders++
			return map[string]string{"summary": fmt.Sprint("render ", renders)}, []Action{{Type: "failover"}}
		},
	}
	var got []string
	for i := range 5 {
		if a := tr.Eval(t0.Add(time.Duration(i)*5*s), in); a != nil {
			got = append(got, string(a.State)+": "+a.Annotations["summary"])
			if len(a.Actions) != 1 {
				t.Errorf("%s record: actions %v", a.State, a.Actions)
			}
		}
	}
	if want := []string{"pending: render 1", "firing: render 2"}; !slices.Equal(got, want) || renders != 2 {
		t.Errorf("records %v after %d renders, want %v after 2", got, renders, want)
	}
	if a := tr.Active()[0]; a.Annotations["summary"] != "render 2" {
		t.Errorf("the tracker's record lacks the rendering: %v", a.Annotations)
	}
	if r := tr.Missing(t0.Add(time.Minute), tr.Fingerprint(keyLabels)); r.Annotations["summary"] != "render 2" || renders != 2 {
		t.Errorf("missing data: annotations %v after %d renders", r.Annotations, renders)
	}
}

func TestAbsent(t *testing.T) {
	tr := mustTracker(t, Params{}, Options{})
	var fps []string
	for _, k := range []string{"a", "b", "c", "d"} {
		a := tr.Eval(t0, Input{Labels: map[string]string{"k": k}, Condition: true})
		fps = append(fps, a.Fingerprint)
	}
	keep := fps[1]
	got := tr.Absent(t0.Add(10*s), map[string]bool{keep: true, "not held": true})
	var gotFPs []string
	for _, a := range got {
		if a.State != StateResolved || !a.EvalTime.Equal(t0.Add(10*s)) {
			t.Errorf("absent: %s at %v", a.State, a.EvalTime)
		}
		gotFPs = append(gotFPs, a.Fingerprint)
	}
	want := slices.DeleteFunc(slices.Clone(fps), func(fp string) bool { return fp == keep })
	slices.Sort(want)
	if !slices.Equal(gotFPs, want) {
		t.Errorf("absent resolved %v, want %v in fingerprint order", gotFPs, want)
	}
	if act := tr.Active(); len(act) != 1 || act[0].Fingerprint != keep {
		t.Errorf("active after absent: %v", act)
	}
	if got := tr.Absent(t0.Add(20*s), nil); len(got) != 1 || got[0].Fingerprint != keep {
		t.Errorf("absent with nil present: %v", got)
	}
	if got := tr.Absent(t0.Add(30*s), nil); got != nil {
		t.Errorf("absent on an empty tracker: %v", got)
	}
}

func TestRestorePending(t *testing.T) {
	// The first run: pending at t0, then the process stops.
	before := mustTracker(t, Params{For: time.Minute}, Options{})
	rec := before.Eval(t0, Input{Labels: keyLabels, Condition: true})

	after := mustTracker(t, Params{For: time.Minute}, Options{})
	if err := after.Restore(*jsonCopy(t, rec)); err != nil {
		t.Fatal(err)
	}
	if p, f := after.Counts(); p != 1 || f != 0 {
		t.Fatalf("counts after restore: pending %d firing %d", p, f)
	}
	in := Input{Labels: keyLabels, Condition: true}
	if a := after.Eval(t0.Add(30*s), in); a != nil {
		t.Fatalf("restored pending alert published again: %s", a.State)
	}
	a := after.Eval(t0.Add(time.Minute), in)
	if a == nil || a.State != StateFiring || !a.ActiveAt.Equal(t0) || a.Occurrence() != rec.Occurrence() {
		t.Fatalf("For did not continue from the original ActiveAt: %+v", a)
	}
}

func TestRestoreFiring(t *testing.T) {
	before := mustTracker(t, Params{For: 10 * s}, Options{})
	in := Input{Labels: keyLabels, Condition: true}
	before.Eval(t0, in)
	rec := before.Eval(t0.Add(10*s), in)

	after := mustTracker(t, Params{For: 10 * s}, Options{})
	if err := after.Restore(*jsonCopy(t, rec)); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 5; i++ {
		if a := after.Eval(t0.Add(time.Duration(i)*10*s), in); a != nil {
			t.Fatalf("restored firing alert fired again: %s", a.State)
		}
	}
	if act := after.Active(); len(act) != 1 || act[0].State != StateFiring || !act[0].FiredAt.Equal(t0.Add(10*s)) {
		t.Fatalf("active after restore: %+v", act)
	}
	in.Condition = false
	r := after.Eval(t0.Add(50*s), in)
	if r == nil || r.State != StateResolved || !r.ActiveAt.Equal(t0) || !r.FiredAt.Equal(t0.Add(10*s)) || r.Occurrence() != rec.Occurrence() {
		t.Fatalf("resolved after restore: %+v", r)
	}
}

// TestRestartEquivalence restarts a tracker at every point of a random
// timeline, restoring from the JSON records published so far, and checks
// that it publishes what an uninterrupted tracker does. KeepFiringFor is 0:
// its clock is the one thing a restart loses (see the package doc).
func TestRestartEquivalence(t *testing.T) {
	p := Params{For: 30 * s, HasResolve: true}
	rng := rand.New(rand.NewPCG(1, 2))
	type round struct{ ins []Input }
	keys := []string{"a", "b", "c"}
	var rounds []round
	for i := range 60 {
		var r round
		for _, k := range keys {
			if rng.IntN(8) == 0 {
				continue // no data for this key this round
			}
			cond := rng.IntN(3) > 0
			r.ins = append(r.ins, Input{
				Labels:    map[string]string{"k": k},
				Condition: cond,
				Resolve:   !cond && rng.IntN(2) == 0,
				Values:    quality.Values{Sent: int64(i)},
			})
		}
		rounds = append(rounds, r)
	}
	run := func(tr *Tracker, i int) []*Alert {
		now := t0.Add(time.Duration(i) * 10 * s)
		var out []*Alert
		present := map[string]bool{}
		for _, in := range rounds[i].ins {
			present[tr.Fingerprint(in.Labels)] = true
			if a := tr.Eval(now, in); a != nil {
				out = append(out, a)
			}
		}
		return append(out, tr.Absent(now, present)...)
	}

	ref := mustTracker(t, p, Options{})
	var published [][]byte // the alerts topic
	var refOut [][]string  // per round, the JSON of the records
	states := map[State]int{}
	for i := range rounds {
		var js []string
		for _, a := range run(ref, i) {
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			published = append(published, b)
			js = append(js, string(b))
			states[a.State]++
		}
		refOut = append(refOut, js)
	}
	if len(states) != 4 {
		t.Fatalf("the timeline should reach every state: %v", states)
	}

	for restart := 1; restart < len(rounds); restart++ {
		tr := mustTracker(t, p, Options{})
		n := 0
		for i := range restart {
			n += len(refOut[i])
		}
		for _, b := range published[:n] {
			var a Alert
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			if err := tr.Restore(a); err != nil {
				t.Fatal(err)
			}
		}
		for i := restart; i < len(rounds); i++ {
			var js []string
			for _, a := range run(tr, i) {
				b, _ := json.Marshal(a)
				js = append(js, string(b))
			}
			if !slices.Equal(js, refOut[i]) {
				t.Fatalf("restart before round %d: round %d published\n%v\nwant\n%v", restart, i, js, refOut[i])
			}
		}
	}
}

func TestRestoreRecords(t *testing.T) {
	firing := func(active time.Duration, labels map[string]string) Alert {
		fired := t0.Add(active + 10*s)
		return Alert{
			SchemaVersion: SchemaVersion, Fingerprint: "stale", Name: testRule.Name, Group: "old", Rule: "old.yaml:1",
			State: StateFiring, Labels: labels, ActiveAt: t0.Add(active), FiredAt: &fired, EvalTime: fired,
		}
	}
	t.Run("identity is the tracker's", func(t *testing.T) {
		tr := mustTracker(t, Params{}, Options{})
		if err := tr.Restore(firing(0, map[string]string{"k": "a"})); err != nil {
			t.Fatal(err)
		}
		a := tr.Active()[0]
		if a.Fingerprint != Fingerprint(map[string]string{"k": "a", LabelAlertName: testRule.Name}) ||
			a.Group != testRule.Group || a.Rule != testRule.Rule || a.Labels[LabelAlertName] != testRule.Name {
			t.Errorf("restored identity: %+v", a)
		}
		checkRecord(t, a)
	})
	t.Run("terminal records", func(t *testing.T) {
		tr := mustTracker(t, Params{}, Options{})
		labels := map[string]string{"k": "a"}
		if err := tr.Restore(firing(0, labels)); err != nil {
			t.Fatal(err)
		}
		other := firing(time.Hour, labels) // resolved record of another occurrence
		other.State = StateResolved
		if err := tr.Restore(other); err != nil || len(tr.Active()) != 1 {
			t.Fatalf("a resolved record of another occurrence: err %v, active %d", err, len(tr.Active()))
		}
		same := firing(0, labels)
		same.State = StateResolved
		if err := tr.Restore(same); err != nil || len(tr.Active()) != 0 {
			t.Fatalf("the resolved record of the occurrence: err %v, active %d", err, len(tr.Active()))
		}
		same.State = StateInactive
		if err := tr.Restore(same); err != nil || len(tr.Active()) != 0 {
			t.Fatalf("an inactive record: err %v, active %d", err, len(tr.Active()))
		}
	})
	t.Run("the last record wins", func(t *testing.T) {
		tr := mustTracker(t, Params{For: time.Minute}, Options{})
		pending := firing(0, nil)
		pending.State, pending.FiredAt = StatePending, nil
		for _, a := range []Alert{pending, firing(0, nil)} {
			if err := tr.Restore(a); err != nil {
				t.Fatal(err)
			}
		}
		if act := tr.Active(); len(act) != 1 || act[0].State != StateFiring {
			t.Fatalf("active: %+v", act)
		}
	})
	for name, mutate := range map[string]func(a *Alert){
		"schema version": func(a *Alert) { a.SchemaVersion = 2 },
		"other rule":     func(a *Alert) { a.Name = "Other" },
		"unknown state":  func(a *Alert) { a.State = "acknowledged" },
		"no active_at":   func(a *Alert) { a.ActiveAt = time.Time{} },
		"no fired_at":    func(a *Alert) { a.FiredAt = nil },
	} {
		t.Run("error: "+name, func(t *testing.T) {
			tr := mustTracker(t, Params{}, Options{})
			a := firing(0, map[string]string{"k": "a"})
			mutate(&a)
			if err := tr.Restore(a); err == nil || !strings.HasPrefix(err.Error(), "alert: restore ") {
				t.Errorf("error %v", err)
			}
			if len(tr.Active()) != 0 {
				t.Error("a bad record was restored")
			}
		})
	}
}

func TestMaxActive(t *testing.T) {
	tr := mustTracker(t, Params{}, Options{MaxActive: 2})
	ev := func(at time.Duration, k string, cond bool) *Alert {
		return tr.Eval(t0.Add(at), Input{Labels: map[string]string{"k": k}, Condition: cond})
	}
	ev(0, "a", true)
	ev(0, "b", true)
	if a := ev(0, "c", true); a != nil {
		t.Fatalf("third alert accepted: %s", a.State)
	}
	if a := ev(10*s, "c", true); a != nil || tr.Refused() != 2 {
		t.Fatalf("refused %d, want 2 (one per evaluation)", tr.Refused())
	}
	// Held alerts keep being evaluated while full.
	if a := ev(10*s, "a", false); a == nil || a.State != StateResolved {
		t.Fatalf("held alert not evaluated: %v", a)
	}
	if a := ev(20*s, "c", true); a == nil || a.State != StateFiring {
		t.Fatalf("room made, alert still refused: %v", a)
	}
	// Restore is bounded too, except for an alert already held.
	err := tr.Restore(Alert{SchemaVersion: 1, Name: testRule.Name, State: StatePending, Labels: map[string]string{"k": "d"}, ActiveAt: t0})
	if err == nil || tr.Refused() != 3 {
		t.Errorf("restore beyond MaxActive: err %v, refused %d", err, tr.Refused())
	}
	if err := tr.Restore(*tr.Active()[0]); err != nil {
		t.Errorf("restore of a held alert: %v", err)
	}
	if p, f := tr.Counts(); p+f != 2 {
		t.Errorf("held %d alerts, max 2", p+f)
	}

	def := mustTracker(t, Params{}, Options{})
	if def.maxActive != DefaultMaxActive {
		t.Errorf("default max active %d", def.maxActive)
	}
}

func TestFingerprint(t *testing.T) {
	a := map[string]string{"alertname": "DeliveryRateDrop", "phone_number": "15550001", "severity": "critical"}
	// A golden value: the topic is keyed by fingerprints and restores
	// depend on them, so the scheme must not change by accident.
	if got, want := Fingerprint(a), "2a3af2cc701a27cc"; got != want {
		t.Errorf("Fingerprint(%v) = %s, want %s", a, got, want)
	}
	// Insertion order of a map is not observable, but make sure of it
	// anyway with maps built in the opposite order.
	b := map[string]string{}
	for _, k := range slices.Backward(slices.Sorted(maps.Keys(a))) {
		b[k] = a[k]
	}
	if Fingerprint(a) != Fingerprint(b) {
		t.Error("label order changed the fingerprint")
	}
	distinct := []map[string]string{
		a,
		{"alertname": "DeliveryRateDrop", "phone_number": "15550002", "severity": "critical"},
		{"alertname": "OptOutSpike", "phone_number": "15550001", "severity": "critical"},
		{"alertname": "DeliveryRateDrop", "phone_number": "15550001"},
		{"alertname": "DeliveryRateDrop", "phone_number": "15550001", "severity": "critical", "x": ""},
		{"ab": "c"}, {"a": "bc"}, {"a": "b", "c": ""}, {"a": "", "bc": ""}, {"": "abc"}, {},
	}
	seen := map[string]int{}
	for i, l := range distinct {
		fp := Fingerprint(l)
		if len(fp) != 16 || strings.Trim(fp, "0123456789abcdef") != "" {
			t.Errorf("fingerprint %q is not 16 lower-case hex digits", fp)
		}
		if j, ok := seen[fp]; ok {
			t.Errorf("labels %v and %v share fingerprint %s", distinct[j], l, fp)
		}
		seen[fp] = i
	}
	// The inlined FNV must be hash/fnv's, leading zeros included.
	for i := range 2000 {
		l := map[string]string{"k": fmt.Sprint(i), "alertname": "R"}
		h := fnv.New64a()
		for _, k := range slices.Sorted(maps.Keys(l)) {
			fmt.Fprintf(h, "%s\xff%s\xff", k, l[k])
		}
		if got, want := Fingerprint(l), fmt.Sprintf("%016x", h.Sum64()); got != want {
			t.Fatalf("Fingerprint(%v) = %s, hash/fnv %s", l, got, want)
		}
	}
	if Fingerprint(nil) != Fingerprint(map[string]string{}) {
		t.Error("nil and empty labels differ")
	}

	tr := mustTracker(t, Params{}, Options{})
	withName := map[string]string{"phone_number": "15550001", "severity": "critical", LabelAlertName: testRule.Name}
	spoofed := map[string]string{"phone_number": "15550001", "severity": "critical", LabelAlertName: "Spoofed"}
	if tr.Fingerprint(keyLabels) != Fingerprint(withName) || tr.Fingerprint(spoofed) != Fingerprint(withName) {
		t.Error("the tracker's fingerprint is not that of the labels with the rule's alertname")
	}
	if r := tr.Eval(t0, Input{Labels: spoofed, Condition: true}); r.Labels[LabelAlertName] != testRule.Name {
		t.Errorf("alertname label %q, want the rule's name", r.Labels[LabelAlertName])
	}
}

func TestJSONRoundTrip(t *testing.T) {
	// fullValues must keep up with quality.Values, or a field could be
	// lost on the way without this test seeing it.
	fv := reflect.ValueOf(fullValues())
	for i := range fv.NumField() {
		if fv.Field(i).IsZero() {
			t.Errorf("fullValues leaves quality.Values.%s zero", fv.Type().Field(i).Name)
		}
	}
	fired, resolved := t0.Add(time.Minute), t0.Add(time.Hour)
	base := fullValues()
	a := Alert{
		SchemaVersion: SchemaVersion,
		Fingerprint:   "0123456789abcdef",
		Name:          "DeliveryRateDrop",
		Group:         "delivery",
		Rule:          "rules/delivery.yaml:4",
		State:         StateResolved,
		Labels:        map[string]string{"alertname": "DeliveryRateDrop", "phone_number": "15550001"},
		Annotations:   map[string]string{"summary": "Delivery on 15550001 fell to 50%"},
		Values:        fullValues(),
		Baseline:      &base,
		ActiveAt:      t0.Add(123456789 * time.Nanosecond),
		FiredAt:       &fired,
		ResolvedAt:    &resolved,
		EvalTime:      resolved,
		Actions:       []Action{{Type: "failover", Params: map[string]string{"use_case": "otp"}}, {Type: "page"}},
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, back) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, a)
	}
	if back.Occurrence() != a.Occurrence() {
		t.Error("the occurrence key did not survive JSON")
	}
	for _, key := range []string{`"alertname":"DeliveryRateDrop"`, `"active_at":"2026-03-02T12:00:00.123456789Z"`, `"failures_by_code":{"131026":100`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}

	// Optional fields are left out, not null.
	bare := Alert{SchemaVersion: 1, State: StatePending, Labels: map[string]string{}, ActiveAt: t0, EvalTime: t0}
	b, _ = json.Marshal(bare)
	for _, key := range []string{"annotations", "baseline", "fired_at", "resolved_at", "actions", "failures_by"} {
		if strings.Contains(string(b), key) {
			t.Errorf("empty %s marshalled: %s", key, b)
		}
	}
}

func TestTimesAreUTC(t *testing.T) {
	tr := mustTracker(t, Params{For: 10 * s}, Options{})
	zone := time.FixedZone("BRT", -3*3600)
	in := Input{Labels: keyLabels, Condition: true}
	tr.Eval(t0.In(zone), in)
	a := tr.Eval(t0.Add(10*s).In(zone), in)
	checkRecord(t, a)
	if a.FiredAt.Location() != time.UTC {
		t.Errorf("fired_at %v", a.FiredAt)
	}
}

func TestNewTrackerErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		info RuleInfo
		p    Params
	}{
		"no name":                  {RuleInfo{}, Params{}},
		"negative for":             {testRule, Params{For: -1}},
		"negative keep_firing_for": {testRule, Params{KeepFiringFor: -1}},
	} {
		if _, err := NewTracker(tc.info, tc.p, Options{}); err == nil || !strings.HasPrefix(err.Error(), "alert: new tracker") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

func jsonCopy(t *testing.T, a *Alert) *Alert {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var c Alert
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func BenchmarkEvalSteady(b *testing.B) {
	tr := mustTracker(b, Params{For: time.Minute}, Options{})
	in := Input{Labels: map[string]string{"phone_number": "15550001", "template": "otp_v2"}, Condition: true}
	tr.Eval(t0, in)
	for i := 0; b.Loop(); i++ {
		tr.Eval(t0.Add(time.Duration(i)*time.Second%time.Minute), in)
	}
}

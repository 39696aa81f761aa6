package window

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"vigia/internal/quality"
)

// TestPeriodAgainstValues checks that a Period, which keeps sums of sealed
// buckets between calls, answers exactly what Store.Values computes from
// every bucket, on the reference test's streams (late events on the slow
// path, expiry, idle keys whose slots are reused), for windows and
// baselines evaluated at a clock that moves forward as an engine's does,
// and sometimes at a random period.
func TestPeriodAgainstValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	iterations := 60
	if testing.Short() {
		iterations = 10
	}
	for it := range iterations {
		o, specs, g := refCase(rng)
		st := New(o, specs)
		// Per spec: a window ending now and its baseline before it, each
		// with its own Period, as the engine keeps them.
		type periods struct {
			win, base time.Duration
			pw, pb    *Period
		}
		var ps []periods
		for i, sp := range specs {
			win := sp.Resolution * time.Duration(1+rng.IntN(int(sp.Span/sp.Resolution)))
			ps = append(ps, periods{win: win, base: sp.Span - win, pw: st.NewPeriod(i), pb: st.NewPeriod(i)})
		}
		interval := time.Duration(1+rng.IntN(20)) * time.Second
		now := g.clock
		var refs []KeyRef
		for step := range 600 {
			for _, ge := range g.next() {
				st.Apply(ge.p, ge.e)
			}
			for now.Before(g.clock) {
				now = now.Add(interval)
				for si, p := range ps {
					refs = st.AppendKeyRefs(si, refs[:0])
					for _, k := range refs {
						where := fmt.Sprintf("iteration %d step %d spec %d key %q", it, step, si, k.ID)
						check := func(pe *Period, from, to time.Time) {
							t.Helper()
							want, _ := st.Values(si, k.ID, from, to)
							// Some parts first, sometimes, as a rule that
							// reads only those asks; then everything, as
							// a second rule sharing the Period asks.
							if rng.IntN(3) == 0 {
								parts := Parts(rng.IntN(int(AllParts)))
								var got quality.Values
								if !pe.Values(st, k, from, to, parts, &got) {
									t.Fatalf("%s: not found", where)
								}
								if w := onlyParts(want, parts); !reflect.DeepEqual(onlyParts(got, parts), w) {
									t.Fatalf("%s [%v, %v) parts %b:\n got  %+v\n want %+v", where, from, to, parts, got, w)
								}
							}
							var got quality.Values
							if !pe.Values(st, k, from, to, AllParts, &got) {
								t.Fatalf("%s: not found", where)
							}
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("%s [%v, %v):\n got  %+v\n want %+v", where, from, to, got, want)
							}
						}
						check(p.pw, now.Add(-p.win), now)
						if p.base > 0 {
							check(p.pb, now.Add(-p.win-p.base), now.Add(-p.win))
						}
						if rng.IntN(50) == 0 {
							from := now.Add(-time.Duration(rng.IntN(400_000)) * time.Millisecond)
							check(p.pw, from, from.Add(time.Duration(rng.IntN(200_000)-10_000)*time.Millisecond))
						}
					}
				}
				st.Expire(now.Add(-time.Duration(rng.IntN(30)) * time.Second))
			}
		}
		// A ref whose key left its slot is not answered.
		for si := range specs {
			var v quality.Values
			if ps[si].pw.Values(st, KeyRef{Slot: 0, ID: "no such key"}, now, now, AllParts, &v) {
				t.Fatalf("spec %d: a stale ref was answered", si)
			}
		}
	}
}

func TestPeriodNoAlloc(t *testing.T) {
	s := New(Options{AllowedLateness: time.Minute}, []Spec{byPhone})
	for i := range 600 {
		id := fmt.Sprint("m", i)
		s.Apply(0, status(id, "sent", at(time.Duration(i)*time.Second), "u", ""))
		s.Apply(0, status(id, "failed", at(time.Duration(i)*time.Second+time.Millisecond), "u", ""))
	}
	p := s.NewPeriod(0)
	refs := s.AppendKeyRefs(0, nil)
	var v quality.Values
	now := at(10 * time.Minute)
	p.Values(s, refs[0], now.Add(-5*time.Minute), now, AllParts, &v)
	allocs := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Second)
		p.Values(s, refs[0], now.Add(-5*time.Minute), now, AllParts, &v)
	})
	if allocs != 0 {
		t.Errorf("Period.Values: %v allocations per call", allocs)
	}
	if len(v.FailuresByClass) == 0 {
		t.Errorf("no failures counted: %+v", v)
	}
}

// onlyParts keeps of v the parts asked for and the latest state.
func onlyParts(v quality.Values, parts Parts) quality.Values {
	out := v
	if parts&Counts == 0 {
		out = quality.Values{QualityEvent: v.QualityEvent, MessagingTier: v.MessagingTier, TemplateStatus: v.TemplateStatus,
			TemplateQuality: v.TemplateQuality, AccountEvent: v.AccountEvent, AccountBanState: v.AccountBanState}
	}
	out.LatencyP50, out.LatencyP90, out.LatencySamples = 0, 0, 0
	if parts&Latency != 0 {
		out.LatencyP50, out.LatencyP90, out.LatencySamples = v.LatencyP50, v.LatencyP90, v.LatencySamples
	}
	out.FailuresByCode, out.FailuresByClass = nil, nil
	if parts&ByCode != 0 {
		out.FailuresByCode = v.FailuresByCode
	}
	if parts&ByClass != 0 {
		out.FailuresByClass = v.FailuresByClass
	}
	return out
}

package engine

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"vigia/internal/quality"
	"vigia/internal/rules"
)

// TestFieldEq checks that fieldEq has an entry for every field of
// quality.Values and that each entry tells apart its field and no other.
func TestFieldEq(t *testing.T) {
	typ := reflect.TypeFor[quality.Values]()
	if typ.NumField() != len(fieldEq) {
		t.Fatalf("quality.Values has %d fields, fieldEq %d", typ.NumField(), len(fieldEq))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if fieldEq[name] == nil {
			t.Fatalf("fieldEq has no %q", name)
		}
		var a, b quality.Values
		randomize(reflect.ValueOf(&b).Elem().Field(i), rng)
		for other, eq := range fieldEq {
			if got, want := eq(&a, &b), other != name; got != want {
				t.Errorf("field %s changed: fieldEq[%s] = %v", name, other, got)
			}
		}
	}
}

func randomize(f reflect.Value, rng *rand.Rand) {
	switch f.Kind() {
	case reflect.Int64:
		f.SetInt(1 + rng.Int64N(1000))
	case reflect.Float64:
		f.SetFloat(0.1 + rng.Float64())
	case reflect.String:
		f.SetString([]string{"PAUSED", "RED", "DOWNGRADE", "DISABLE", "APPROVED"}[rng.IntN(5)] + "x")
	case reflect.Map:
		m := reflect.MakeMap(f.Type())
		for range 1 + rng.IntN(3) {
			var k reflect.Value
			if f.Type().Key().Kind() == reflect.String {
				k = reflect.ValueOf([]string{"throttle", "spam", "other"}[rng.IntN(3)])
			} else {
				k = reflect.ValueOf([]int64{130429, 131048, 131026}[rng.IntN(3)])
			}
			m.SetMapIndex(k, reflect.ValueOf(1+rng.Int64N(100)))
		}
		f.Set(m)
	}
}

// TestReadsShippedRules checks what the analysis finds in the shipped
// rules: none of them needs whole inputs compared.
func TestReadsShippedRules(t *testing.T) {
	set, err := rules.Load("../../rules")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{ // fields of the values, of the baseline
		"DeliveryRateDrop":       {2, 2},
		"DeliveryLatencyRising":  {2, 2},
		"PlatformDegradation":    {2, 0},
		"SpamRateLimitSpike":     {2, 0},
		"ThroughputErrors":       {1, 0},
		"OptOutsRising":          {3, 1},
		"TemplatePausedOrRed":    {2, 0},
		"NumberQualityDowngrade": {1, 0},
		"AccountRestricted":      {2, 0},
	}
	for _, g := range set.Groups {
		for _, r := range g.Rules {
			rd := readsOf(r)
			w, ok := want[r.Alert]
			if !ok {
				t.Errorf("%s: not in the test's table", r.Alert)
				continue
			}
			if len(rd.cur) != w[0] || len(rd.base) != w[1] {
				t.Errorf("%s: reads %d fields of values and %d of the baseline, want %d and %d", r.Alert, len(rd.cur), len(rd.base), w[0], w[1])
			}
		}
	}
}

// TestReadsAreEnough checks the memo's premise on the shipped rules and a
// few odd expressions: inputs that differ only in fields the analysis
// says are not read give the same outcome.
func TestReadsAreEnough(t *testing.T) {
	set, err := rules.Load("../../rules")
	if err != nil {
		t.Fatal(err)
	}
	var rs []*rules.Rule
	for _, g := range set.Groups {
		rs = append(rs, g.Rules...)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	typ := reflect.TypeFor[quality.Values]()
	ctx := context.Background()
	for _, r := range rs {
		rd := readsOf(r)
		readCur := map[string]bool{}
		readBase := map[string]bool{}
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			var a, b quality.Values
			randomize(reflect.ValueOf(&b).Elem().Field(i), rng)
			readCur[name] = slices.ContainsFunc(rd.cur, func(eq func(a, b *quality.Values) bool) bool { return !eq(&a, &b) })
			readBase[name] = slices.ContainsFunc(rd.base, func(eq func(a, b *quality.Values) bool) bool { return !eq(&a, &b) })
		}
		for range 3000 {
			var in rules.Input
			for i := range typ.NumField() {
				if rng.IntN(2) == 0 {
					randomize(reflect.ValueOf(&in.Values).Elem().Field(i), rng)
				}
				if rng.IntN(2) == 0 {
					randomize(reflect.ValueOf(&in.Baseline).Elem().Field(i), rng)
				}
			}
			in.HasBaseline = rng.IntN(2) == 0
			in.Values.Attempts = rng.Int64N(400) // around the guards
			other := in
			for i := range typ.NumField() {
				name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				if !readCur[name] {
					randomize(reflect.ValueOf(&other.Values).Elem().Field(i), rng)
				}
				if !readBase[name] {
					randomize(reflect.ValueOf(&other.Baseline).Elem().Field(i), rng)
				}
			}
			if !rd.hasBase {
				other.HasBaseline = !other.HasBaseline
			}
			var m memo
			f1, r1, err1 := r.Conditions(ctx, &in)
			rd.keep(&m, &in, f1)
			if !rd.same(&m, &other) {
				t.Fatalf("%s: inputs differing only in fields not read are not the same:\n%+v\n%+v", r.Alert, in, other)
			}
			f2, r2, err2 := r.Conditions(ctx, &other)
			if f1 != f2 || r1 != r2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("%s: outcome changed with fields it does not read: %v %v %v, then %v %v %v", r.Alert, f1, r1, err1, f2, r2, err2)
			}
		}
	}
}

// TestReadsGiveUp checks that what the analysis does not know makes it
// compare whole inputs.
func TestReadsGiveUp(t *testing.T) {
	for _, src := range []string{
		"failures_by_code.exists(c, c == 131048)",
		"math.greatest(sent, failed) > 3",
		"somefunction(sent)",
		"unknown_metric > 3",
		"{'a': sent}['a'] > 1",
	} {
		a := analysis{cur: map[string]bool{}, base: map[string]bool{}}
		a.expr(src)
		if !a.all {
			t.Errorf("%s: analysed as reading only %v", src, a.cur)
		}
	}
	a := analysis{cur: map[string]bool{}, base: map[string]bool{}}
	a.expr(`baseline.code(131048) > 2 && class("spam") > 1 && has(baseline.sent) && labels["x"] == "y" && has_baseline`)
	if a.all || !a.base["failures_by_code"] || !a.cur["failures_by_class"] || !a.base["sent"] || !a.hasBase || len(a.cur) != 1 || len(a.base) != 2 {
		t.Errorf("analysis: %+v", a)
	}
}

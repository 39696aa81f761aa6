package rules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"vigia/internal/quality"
)

// compile compiles a test condition in a rule by phone_number with a
// baseline and one label, failing the test on any issue.
func compile(t testing.TB, src string) *Expr {
	t.Helper()
	e, issues := compileExpr(src, exprContext{
		field:       "when",
		rule:        "T",
		hasBaseline: true,
		labelKeys:   []string{"alertname", "phone_number", "severity"},
		extraLabels: map[string]string{"alertname": "T", "severity": "critical"},
	})
	if len(issues) > 0 {
		t.Fatalf("compile %q: %v", src, issues)
	}
	return e
}

func sampleInput() *Input {
	return &Input{
		Values: quality.Values{
			Sent: 1000, Attempts: 1200, Reached: 900, Failed: 300, Delivered: 880,
			DeliveryRate: 0.75, FailureRate: 0.25, LatencyP90: 2.5,
			FailuresByCode:  map[int64]int64{131048: 7, 130429: 3},
			FailuresByClass: map[string]int64{"throttle": 3, "spam": 7},
			QualityEvent:    "FLAGGED",
		},
		Baseline: quality.Values{
			Sent: 4000, Attempts: 4000, Reached: 3800, DeliveryRate: 0.95,
			FailuresByCode:  map[int64]int64{131048: 2},
			FailuresByClass: map[string]int64{"throttle": 1},
		},
		HasBaseline: true,
		Labels:      map[string]string{"phone_number": "p1"},
	}
}

func TestEvalHelpers(t *testing.T) {
	cases := []string{
		// pct_change: (cur-base)/base, 0 when base is 0, any int/double mix.
		`pct_change(90, 100) == -0.1`,
		`pct_change(5, 0) == 0.0`,
		`pct_change(1.5, 1) == 0.5`,
		`pct_change(3, 2.0) == 0.5`,
		`pct_change(0.0, 0.0) == 0.0`,
		`pct_change(delivery_rate, baseline.delivery_rate) < -0.2`,
		`pct_change(sent, baseline.sent) == -0.75`,
		// ratio: a/b, 0 when b is 0.
		`ratio(failed, attempts) == 0.25`,
		`ratio(1, 0) == 0.0`,
		`ratio(1.0, 4) == 0.25`,
		`ratio(3, 1.5) == 2.0`,
		// code: failures_by_code[n] or 0, current or baseline.
		`code(131048) == 7`,
		`code(999) == 0`,
		`baseline.code(131048) == 2`,
		`baseline.code(130429) == 0`,
		`code(131048) + code(130429) == 10`,
		// class: failures_by_class[name] or 0.
		`class("throttle") == 3`,
		`class("undeliverable") == 0`,
		`baseline.class("throttle") == 1`,
		`baseline.class("spam") == 0`,
		// code and class run without runtime type guards: a dyn argument
		// of another type than declared finds nothing, without failing.
		`code(dyn("131048")) == 0`,
		`code(dyn(131048.0)) == 7`,
		`class(dyn(3)) == 0`,
		// The rest of the environment.
		`has_baseline`,
		`labels["phone_number"] == "p1" && labels.severity == "critical" && labels.alertname == "T"`,
		`"phone_number" in labels && !("waba" in labels)`,
		`failure_rate > 0`, // int/double comparison
		`math.abs(pct_change(delivery_rate, baseline.delivery_rate)) > 0.2`,
		`quality_event in ["FLAGGED", "DOWNGRADE"]`,
		`failures_by_class.exists(c, c == "spam" && failures_by_class[c] > 5)`,
		// The failure maps as maps (countMap): index, membership, size,
		// iteration, equality, and CEL's numeric keys of other types.
		`failures_by_code[131048] == 7 && failures_by_class["spam"] == 7`,
		`131048 in failures_by_code && !(5 in failures_by_code) && "throttle" in failures_by_class && !("x" in failures_by_class)`,
		`dyn(131048.0) in failures_by_code && failures_by_code[dyn(131048u)] == 7 && failures_by_code[dyn(130429.0)] == 3`,
		`size(failures_by_code) == 2 && size(failures_by_class) == 2`,
		`failures_by_code.all(c, failures_by_code[c] > 0) && failures_by_code.exists_one(c, c == 130429)`,
		`failures_by_code == {131048: 7, 130429: 3} && {"throttle": 3, "spam": 7} == failures_by_class`,
		`failures_by_code != baseline.failures_by_code && baseline.failures_by_code != failures_by_code`,
		`failures_by_code.filter(c, c > 131000) == [131048]`,
		`latency_p90 > 2.0 && latency_samples == 0`,
		// Typical conditions.
		`attempts >= 200 && delivery_rate < baseline.delivery_rate * 0.8`,
		`sent >= 200 && has_baseline && pct_change(class("throttle"), baseline.class("throttle")) >= 2.0`,
		`double(failed) > double(sent) * 0.25`,
	}
	in := sampleInput()
	for _, src := range cases {
		got, err := compile(t, src).Eval(context.Background(), in)
		if err != nil {
			t.Errorf("%s: %v", src, err)
		} else if !got {
			t.Errorf("%s: false", src)
		}
	}
	// Absent maps behave as empty.
	var empty Input
	for _, src := range []string{`code(1) == 0`, `class("spam") == 0`, `baseline.code(1) == 0`, `size(failures_by_code) == 0`, `size(labels) == 2`} {
		if got, err := compile(t, src).Eval(context.Background(), &empty); err != nil || !got {
			t.Errorf("%s on empty input: %v, %v", src, got, err)
		}
	}
}

// TestEvalEveryMetric checks that every field of quality.Values reaches
// CEL under its json name, current and baseline, with its value.
func TestEvalEveryMetric(t *testing.T) {
	var in Input
	cur := reflect.ValueOf(&in.Values).Elem()
	base := reflect.ValueOf(&in.Baseline).Elem()
	var conds []string
	for i, f := range valueFields() {
		var lit string
		switch cur.Field(i).Kind() {
		case reflect.Int64:
			cur.Field(i).SetInt(int64(i + 1))
			base.Field(i).SetInt(int64(i + 101))
			lit = fmt.Sprintf("%d", i+1)
			conds = append(conds, fmt.Sprintf("baseline.%s == %d", f.name, i+101))
		case reflect.Float64:
			cur.Field(i).SetFloat(float64(i) + 0.5)
			base.Field(i).SetFloat(float64(i) + 100.5)
			lit = fmt.Sprintf("%d.5", i)
			conds = append(conds, fmt.Sprintf("baseline.%s == %d.5", f.name, i+100))
		case reflect.String:
			cur.Field(i).SetString(fmt.Sprint("s", i))
			base.Field(i).SetString(fmt.Sprint("b", i))
			lit = fmt.Sprintf("'s%d'", i)
			conds = append(conds, fmt.Sprintf("baseline.%s == 'b%d'", f.name, i))
		case reflect.Map:
			m := reflect.MakeMap(cur.Field(i).Type())
			if cur.Field(i).Type().Key().Kind() == reflect.String {
				m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf(int64(i)))
				lit = fmt.Sprintf("{'k': %d}", i)
			} else {
				m.SetMapIndex(reflect.ValueOf(int64(7)), reflect.ValueOf(int64(i)))
				lit = fmt.Sprintf("{7: %d}", i)
			}
			cur.Field(i).Set(m)
			base.Field(i).Set(m)
			conds = append(conds, fmt.Sprintf("baseline.%s == %s", f.name, lit))
		default:
			t.Fatalf("%s: unhandled kind", f.name)
		}
		conds = append(conds, fmt.Sprintf("%s == %s", f.name, lit))
	}
	for _, src := range conds {
		got, err := compile(t, src).Eval(context.Background(), &in)
		if err != nil || !got {
			t.Errorf("%s: %v, %v", src, got, err)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	in := sampleInput()
	cases := []struct{ src, want string }{
		{`failures_by_code[5] > 0`, "no such key"},
		{`sent / (attempts - attempts) > 1`, "division by zero"},
		// 10^4 iterations cost more than CostLimit.
		{`[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d, a + b + c + d >= 0))))`, "cost limit exceeded"},
	}
	for _, c := range cases {
		got, err := compile(t, c.src).Eval(context.Background(), in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %v, %v; want error containing %q", c.src, got, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "T when: ") {
			t.Errorf("error not named after the rule: %v", err)
		}
	}
}

func TestEvalContext(t *testing.T) {
	e := compile(t, `[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, a + b >= 0))`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Eval(ctx, sampleInput()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	// Without a comprehension the context is checked once, up front.
	if _, err := compile(t, `sent > 0`).Eval(ctx, sampleInput()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context, no loop: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := e.Eval(ctx, sampleInput()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: %v", err)
	}
}

// TestEvalConcurrent: one Expr serves every key, from many goroutines.
func TestEvalConcurrent(t *testing.T) {
	e := compile(t, `attempts >= 200 && delivery_rate < baseline.delivery_rate * 0.8 && labels.phone_number != "" && code(131048) > 0`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			in := sampleInput()
			in.Labels = map[string]string{"phone_number": fmt.Sprint("p", g)}
			for range 200 {
				if ok, err := e.Eval(context.Background(), in); err != nil || !ok {
					t.Errorf("%v %v", ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestUsesBaseline(t *testing.T) {
	if compile(t, `sent > 0`).UsesBaseline() {
		t.Error("sent > 0 uses the baseline")
	}
	for _, src := range []string{`baseline.sent > 0`, `has_baseline`, `baseline.code(1) > 0`} {
		if !compile(t, src).UsesBaseline() {
			t.Errorf("%s does not use the baseline", src)
		}
	}
}

func TestGuardAndConditions(t *testing.T) {
	set, err := Load("testdata/delivery.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := set.Groups[0].Rules[0] // min_volume {attempts: 200}
	in := sampleInput()
	if !r.Guard(&in.Values) {
		t.Error("1200 attempts fails a guard of 200")
	}
	fire, resolve, err := r.Conditions(context.Background(), in)
	if err != nil || !fire || resolve {
		t.Errorf("Conditions = %v %v %v, want fire", fire, resolve, err)
	}
	in.Values.Attempts = 199
	if r.Guard(&in.Values) {
		t.Error("199 attempts passes a guard of 200")
	}
	fire, resolve, err = r.Conditions(context.Background(), in)
	if err != nil || fire || !resolve {
		t.Errorf("below min_volume: Conditions = %v %v %v, want resolve", fire, resolve, err)
	}
	// Without resolve_when, resolve is !fire.
	tp := set.Groups[0].Rules[1]
	if !tp.Guard(&quality.Values{}) {
		t.Error("a rule without min_volume guards")
	}
	fire, resolve, _ = tp.Conditions(context.Background(), &Input{Values: quality.Values{TemplateStatus: "APPROVED"}})
	if fire || !resolve {
		t.Errorf("TemplatePaused on APPROVED: %v %v", fire, resolve)
	}
}

func TestClassesAreKnown(t *testing.T) {
	// Literal class names are checked at load, in both spellings.
	for _, src := range []string{`class("nope") > 0`, `failures_by_class["nope"] > 0`, `baseline.class("nope") > 0`, `baseline.failures_by_class["nope"] > 0`} {
		_, issues := compileExpr(src, exprContext{hasBaseline: true})
		if len(issues) != 1 || !strings.Contains(issues[0].msg, `unknown failure class "nope"`) {
			t.Errorf("%s: %v", src, issues)
		}
	}
	// A computed name cannot be checked and is allowed.
	if _, issues := compileExpr(`class(quality_event) >= 0`, exprContext{}); len(issues) > 0 {
		t.Error(issues)
	}
}

// BenchmarkEval is the per-key cost of a typical condition: the engine
// runs it for 10,000 keys × 10 rules every 10 s.
func BenchmarkEval(b *testing.B) {
	for _, bc := range []struct{ name, src string }{
		{"simple", `attempts >= 200 && delivery_rate < 0.8`},
		{"baseline", `attempts >= 200 && delivery_rate < baseline.delivery_rate * 0.8`},
		{"helpers", `class("throttle") > 2 && pct_change(class("throttle"), baseline.class("throttle")) > 1.0 && code(131048) > 0`},
		{"labels", `labels.severity == "critical" && labels.phone_number == "p1"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := compile(b, bc.src)
			in := sampleInput()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := e.Eval(ctx, in); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// TestCostTracking: an expression whose static cost bound is within
// CostLimit runs without cost tracking; one that iterates over an input
// or works on strings of unknown length keeps it, and so does one whose
// bound is above the limit (TestEvalErrors shows that one stopped).
func TestCostTracking(t *testing.T) {
	for src, tracked := range map[string]bool{
		`delivery_rate < 0.8 && sent >= 100`:                           false,
		`has_baseline && delivery_rate < baseline.delivery_rate * 0.8`: false,
		`class("spam") > 10 || failures_by_code[131049] > 5`:           false,
		`failures_by_code.exists(c, failures_by_code[c] > 10)`:         true,
		`labels["phone_number"].matches("^1065.*9$") && sent > 0`:      true,
		`[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d, a + b + c + d >= 0))))`: true,
	} {
		if e := compile(t, src); e.costTracked != tracked {
			t.Errorf("%s: cost tracked %v, want %v", src, e.costTracked, tracked)
		}
	}
}

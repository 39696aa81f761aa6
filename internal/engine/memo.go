package engine

import (
	"maps"
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"

	"vigia/internal/quality"
	"vigia/internal/rules"
	"vigia/internal/window"
)

// A rule's conditions are a function of their input alone (the key's
// values, its baseline, has_baseline and its labels, which are fixed per
// key): CEL programs have no state and the environment no clock. So when a
// key's input did not change since its last successful evaluation, in what
// the conditions read, the engine reuses that evaluation's outcome instead
// of running CEL again. Most keys' inputs do not change between instants in
// what a rule reads: a rule on the latest template status does not read the
// counters that every event moves. This is the largest saving of a
// replay's evaluation loop; the tracker still sees every evaluation, so
// for and keep_firing_for count exactly as before.

// fieldEq compares one field of quality.Values, by json name. A test
// checks that every field has its entry and that each entry tells apart
// exactly its field.
var fieldEq = map[string]func(a, b *quality.Values) bool{
	"sent":              func(a, b *quality.Values) bool { return a.Sent == b.Sent },
	"delivered":         func(a, b *quality.Values) bool { return a.Delivered == b.Delivered },
	"read":              func(a, b *quality.Values) bool { return a.Read == b.Read },
	"failed":            func(a, b *quality.Values) bool { return a.Failed == b.Failed },
	"accepted":          func(a, b *quality.Values) bool { return a.Accepted == b.Accepted },
	"deferred":          func(a, b *quality.Values) bool { return a.Deferred == b.Deferred },
	"attempts":          func(a, b *quality.Values) bool { return a.Attempts == b.Attempts },
	"reached":           func(a, b *quality.Values) bool { return a.Reached == b.Reached },
	"failures_by_code":  func(a, b *quality.Values) bool { return maps.Equal(a.FailuresByCode, b.FailuresByCode) },
	"failures_by_class": func(a, b *quality.Values) bool { return maps.Equal(a.FailuresByClass, b.FailuresByClass) },
	"opt_outs":          func(a, b *quality.Values) bool { return a.OptOuts == b.OptOuts },
	"inbound":           func(a, b *quality.Values) bool { return a.Inbound == b.Inbound },
	"delivery_rate":     func(a, b *quality.Values) bool { return sameFloat(a.DeliveryRate, b.DeliveryRate) },
	"read_rate":         func(a, b *quality.Values) bool { return sameFloat(a.ReadRate, b.ReadRate) },
	"failure_rate":      func(a, b *quality.Values) bool { return sameFloat(a.FailureRate, b.FailureRate) },
	"opt_out_rate":      func(a, b *quality.Values) bool { return sameFloat(a.OptOutRate, b.OptOutRate) },
	"latency_p50":       func(a, b *quality.Values) bool { return sameFloat(a.LatencyP50, b.LatencyP50) },
	"latency_p90":       func(a, b *quality.Values) bool { return sameFloat(a.LatencyP90, b.LatencyP90) },
	"latency_samples":   func(a, b *quality.Values) bool { return a.LatencySamples == b.LatencySamples },
	"numbers_active":    func(a, b *quality.Values) bool { return a.NumbersActive == b.NumbersActive },
	"numbers_degraded":  func(a, b *quality.Values) bool { return a.NumbersDegraded == b.NumbersDegraded },
	"quality_event":     func(a, b *quality.Values) bool { return a.QualityEvent == b.QualityEvent },
	"messaging_tier":    func(a, b *quality.Values) bool { return a.MessagingTier == b.MessagingTier },
	"template_status":   func(a, b *quality.Values) bool { return a.TemplateStatus == b.TemplateStatus },
	"template_quality":  func(a, b *quality.Values) bool { return a.TemplateQuality == b.TemplateQuality },
	"account_event":     func(a, b *quality.Values) bool { return a.AccountEvent == b.AccountEvent },
	"account_ban_state": func(a, b *quality.Values) bool { return a.AccountBanState == b.AccountBanState },
}

// sameFloat is bit-for-bit equality (rates are never NaN, but a NaN should
// not make a memo miss forever nor -0 hit +0).
func sameFloat(a, b float64) bool { return a == b && (a != 0 || 1/a == 1/b) || a != a && b != b }

// pureFunctions are the functions and operators of the rules' environment
// that read nothing but their arguments. A call of any other function
// makes the analysis give up (compare whole inputs): a macro such as code(n)
// reads a field it does not name.
var pureFunctions = map[string]bool{
	operators.Conditional: true, operators.LogicalAnd: true, operators.LogicalOr: true, operators.LogicalNot: true,
	operators.Equals: true, operators.NotEquals: true, operators.Less: true, operators.LessEquals: true,
	operators.Greater: true, operators.GreaterEquals: true, operators.Add: true, operators.Subtract: true,
	operators.Multiply: true, operators.Divide: true, operators.Modulo: true, operators.Negate: true,
	operators.Index: true, operators.In: true, operators.OldIn: true,
	"double": true, "int": true, "uint": true, "string": true, "bool": true, "size": true,
	"contains": true, "startsWith": true, "endsWith": true, "matches": true,
	"ratio": true, "pct_change": true,
}

// reads is what a rule's guard and conditions read of their input.
type reads struct {
	cur, base         []func(a, b *quality.Values) bool
	curMaps, baseMaps bool // a failure map is among them: the memo keeps copies
	hasBase           bool
	// numbers: numbers_active or numbers_degraded, which the engine
	// counts for every round only for the rules that read them.
	numbers bool
	// The parts of the values and of the baseline that the conditions
	// need computed.
	curParts, baseParts window.Parts
}

// partsOf returns the parts of quality.Values holding the named fields:
// counts for everything but the latest state and the numbers (which the
// engine sets), and the failure maps by name.
func partsOf(fields map[string]bool) window.Parts {
	var p window.Parts
	for name := range fields {
		switch name {
		case "failures_by_code":
			p |= window.ByCode
		case "failures_by_class":
			p |= window.ByClass
		case "latency_p50", "latency_p90", "latency_samples":
			p |= window.Latency
		case "quality_event", "messaging_tier", "template_status", "template_quality", "account_event", "account_ban_state",
			"numbers_active", "numbers_degraded":
		default:
			p |= window.Counts
		}
	}
	return p
}

// readsOf analyses a rule's min_volume and conditions. Whatever it does not
// understand (comprehensions, unknown names or functions, a parse it
// cannot do) makes it compare whole inputs, which is always correct.
func readsOf(r *rules.Rule) reads {
	a := analysis{cur: map[string]bool{}, base: map[string]bool{}}
	for name := range r.MinVolume {
		a.ident(name)
	}
	for _, x := range []*rules.Expr{r.When, r.ResolveWhen} {
		if x != nil {
			a.expr(x.Source)
		}
	}
	if a.all {
		for name := range fieldEq {
			a.cur[name], a.base[name] = true, true
		}
		a.hasBase = true
	}
	var out reads
	out.hasBase = a.hasBase
	out.numbers = a.cur["numbers_active"] || a.cur["numbers_degraded"]
	out.curParts, out.baseParts = partsOf(a.cur), partsOf(a.base)
	if a.hasBase {
		out.baseParts |= window.Counts // has_baseline is hasData of the baseline's counts
	}
	for _, name := range slices.Sorted(maps.Keys(a.cur)) {
		out.cur = append(out.cur, fieldEq[name])
		out.curMaps = out.curMaps || name == "failures_by_code" || name == "failures_by_class"
	}
	for _, name := range slices.Sorted(maps.Keys(a.base)) {
		out.base = append(out.base, fieldEq[name])
		out.baseMaps = out.baseMaps || name == "failures_by_code" || name == "failures_by_class"
	}
	return out
}

type analysis struct {
	cur, base map[string]bool
	hasBase   bool
	all       bool
}

var parseEnv, _ = cel.NewEnv()

func (a *analysis) expr(src string) {
	if parseEnv == nil {
		a.all = true
		return
	}
	parsed, iss := parseEnv.Parse(src)
	if iss.Err() != nil {
		a.all = true
		return
	}
	a.visit(parsed.NativeRep().Expr())
}

func (a *analysis) ident(name string) {
	switch {
	case name == "has_baseline":
		a.hasBase = true
	case name == "labels": // fixed per key
	case name == "baseline":
		for f := range fieldEq {
			a.base[f] = true
		}
	case fieldEq[name] != nil:
		a.cur[name] = true
	default:
		a.all = true
	}
}

func (a *analysis) visit(e ast.Expr) {
	switch e.Kind() {
	case ast.LiteralKind:
	case ast.IdentKind:
		a.ident(e.AsIdent())
	case ast.SelectKind:
		s := e.AsSelect()
		if op := s.Operand(); op.Kind() == ast.IdentKind && op.AsIdent() == "baseline" && fieldEq[s.FieldName()] != nil {
			a.base[s.FieldName()] = true
			return
		}
		a.visit(s.Operand())
	case ast.ListKind:
		for _, x := range e.AsList().Elements() {
			a.visit(x)
		}
	case ast.CallKind:
		c := e.AsCall()
		fn := c.FunctionName()
		// code(n), class(n) and baseline.code(n), baseline.class(n) are
		// the rules' lookup macros over the failure maps.
		if (fn == "code" || fn == "class") && len(c.Args()) == 1 {
			field := "failures_by_code"
			if fn == "class" {
				field = "failures_by_class"
			}
			switch {
			case !c.IsMemberFunction():
				a.cur[field] = true
			case c.Target().Kind() == ast.IdentKind && c.Target().AsIdent() == "baseline":
				a.base[field] = true
			default:
				a.all = true
			}
			a.visit(c.Args()[0])
			return
		}
		if !pureFunctions[fn] {
			a.all = true
			return
		}
		if c.IsMemberFunction() {
			a.visit(c.Target())
		}
		for _, x := range c.Args() {
			a.visit(x)
		}
	default: // comprehensions, maps, structs: not in the shipped rules
		a.all = true
	}
}

// memo is the input and outcome of a key's last successful evaluation.
type memo struct {
	ok        bool
	cur, base quality.Values // only the fields read are meaningful
	hasBase   bool
	cond      bool
	// resolve is the resolve condition for the same input, when
	// resolveKnown: it is evaluated only when needed (see evalRule).
	resolve, resolveKnown bool
	curMap, baseMap       mapCopy
}

// mapCopy holds a memo's own copies of failure maps.
type mapCopy struct {
	byCode  map[int64]int64
	byClass map[string]int64
}

func (rd *reads) same(m *memo, in *rules.Input) bool {
	if !m.ok || rd.hasBase && m.hasBase != in.HasBaseline {
		return false
	}
	for _, eq := range rd.cur {
		if !eq(&m.cur, &in.Values) {
			return false
		}
	}
	for _, eq := range rd.base {
		if !eq(&m.base, &in.Baseline) {
			return false
		}
	}
	return true
}

func (rd *reads) keep(m *memo, in *rules.Input, cond bool) {
	m.ok, m.cond, m.resolveKnown, m.hasBase = true, cond, false, in.HasBaseline
	m.cur, m.base = in.Values, in.Baseline
	// The failure maps of in belong to the window's Periods, which reuse
	// them for the next key.
	m.cur.FailuresByCode, m.cur.FailuresByClass = m.curMap.copy(rd.curMaps, &in.Values)
	m.base.FailuresByCode, m.base.FailuresByClass = m.baseMap.copy(rd.baseMaps, &in.Baseline)
}

func (c *mapCopy) copy(want bool, v *quality.Values) (map[int64]int64, map[string]int64) {
	if !want {
		return nil, nil
	}
	var byCode map[int64]int64
	var byClass map[string]int64
	if v.FailuresByCode != nil {
		if c.byCode == nil {
			c.byCode = map[int64]int64{}
		}
		clear(c.byCode)
		maps.Copy(c.byCode, v.FailuresByCode)
		byCode = c.byCode
	}
	if v.FailuresByClass != nil {
		if c.byClass == nil {
			c.byClass = map[string]int64{}
		}
		clear(c.byClass)
		maps.Copy(c.byClass, v.FailuresByClass)
		byClass = c.byClass
	}
	return byCode, byClass
}

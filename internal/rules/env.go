package rules

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"

	"vigia/internal/event"
	"vigia/internal/quality"
)

const (
	// CostLimit bounds the work of one evaluation, in cel-go cost units
	// (about one per operation or element visited). Rules over one key's
	// metrics need tens; the limit only stops a comprehension gone wrong
	// from stalling an evaluation round of 10,000 keys.
	CostLimit = 10000

	// interruptEvery is how many comprehension iterations pass between
	// checks of the context: often enough to stop promptly, rarely
	// enough not to show in the profile.
	interruptEvery = 100

	// maxExprLen bounds an expression's size; conditions are one line or
	// a few, and a megabyte of CEL is a mistake.
	maxExprLen = 4096
)

// valuesTypeName is the CEL type of `baseline`, as ext.NativeTypes names
// quality.Values (package alias and type name).
const valuesTypeName = "quality.Values"

// Input is what one evaluation sees: the metrics of one key over the
// rule's window and over its baseline period, and the key itself.
type Input struct {
	Values, Baseline quality.Values
	// HasBaseline is whether the baseline period had any data; without
	// it baseline.* are all zero and comparisons against them mislead.
	HasBaseline bool
	// Labels holds the key: dimension name -> value (phone_number -> id).
	// The rule's own labels and alertname are added by the rule.
	Labels map[string]string
}

// Expr is a compiled CEL condition. It is immutable and safe for
// concurrent use: one Expr serves every key of its rule.
type Expr struct {
	Source    string // the expression as written
	File      string
	Line, Col int // where the expression starts in File

	name         string // "DeliveryRateDrop when", for evaluation errors
	prg          cel.Program
	extraLabels  map[string]string // alertname and rule labels, merged into `labels`
	usesBaseline bool
	loops        bool // has a comprehension, the only thing a context can interrupt
	costTracked  bool // evaluated under CostLimit: its static cost bound is above it
}

// String returns the expression as written.
func (e *Expr) String() string { return e.Source }

// UsesBaseline reports whether the expression reads baseline or
// has_baseline, so that the engine can skip computing a baseline nobody
// reads.
func (e *Expr) UsesBaseline() bool { return e.usesBaseline }

// Eval evaluates the condition for one key. Evaluation is bounded by
// CostLimit and by ctx: a cancelled context stops comprehensions. Give ctx
// a deadline once per evaluation round rather than per call; a timer per
// key would cost more than most conditions. Errors (cost exceeded, a
// missing map key, integer overflow) are returned, never panicked; the
// caller decides what an error means for the alert.
func (e *Expr) Eval(ctx context.Context, in *Input) (bool, error) {
	act := activation{in: in, extra: e.extraLabels}
	var out ref.Val
	var err error
	if e.loops {
		out, _, err = e.prg.ContextEval(ctx, &act)
	} else if err = ctx.Err(); err == nil {
		// Without a comprehension there is nothing for the context to
		// interrupt: the expression runs in time proportional to its size.
		// Checking ctx once here skips the cancel context ContextEval
		// would build per call, a third of the allocations.
		out, _, err = e.prg.Eval(&act)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", e.name, err)
	}
	b, ok := out.(types.Bool)
	if !ok { // the checker makes this unreachable; keep it an error anyway
		return false, fmt.Errorf("%s: result is %s, not bool", e.name, out.Type().TypeName())
	}
	return bool(b), nil
}

// activation resolves variables straight from an Input, lazily: a
// condition reading two metrics costs two lookups, not a map of thirty
// entries built per key per interval.
type activation struct {
	in    *Input
	extra map[string]string
}

func (a *activation) Parent() cel.Activation { return nil }

func (a *activation) ResolveName(name string) (any, bool) {
	v := &a.in.Values
	switch name {
	case "sent":
		return types.Int(v.Sent), true
	case "delivered":
		return types.Int(v.Delivered), true
	case "read":
		return types.Int(v.Read), true
	case "failed":
		return types.Int(v.Failed), true
	case "accepted":
		return types.Int(v.Accepted), true
	case "deferred":
		return types.Int(v.Deferred), true
	case "attempts":
		return types.Int(v.Attempts), true
	case "reached":
		return types.Int(v.Reached), true
	case "failures_by_code":
		return countMap[int64](v.FailuresByCode), true
	case "failures_by_class":
		return countMap[string](v.FailuresByClass), true
	case "opt_outs":
		return types.Int(v.OptOuts), true
	case "inbound":
		return types.Int(v.Inbound), true
	case "delivery_rate":
		return types.Double(v.DeliveryRate), true
	case "read_rate":
		return types.Double(v.ReadRate), true
	case "failure_rate":
		return types.Double(v.FailureRate), true
	case "opt_out_rate":
		return types.Double(v.OptOutRate), true
	case "latency_p50":
		return types.Double(v.LatencyP50), true
	case "latency_p90":
		return types.Double(v.LatencyP90), true
	case "latency_samples":
		return types.Int(v.LatencySamples), true
	case "numbers_active":
		return types.Int(v.NumbersActive), true
	case "numbers_degraded":
		return types.Int(v.NumbersDegraded), true
	case "quality_event":
		return types.String(v.QualityEvent), true
	case "messaging_tier":
		return types.String(v.MessagingTier), true
	case "template_status":
		return types.String(v.TemplateStatus), true
	case "template_quality":
		return types.String(v.TemplateQuality), true
	case "account_event":
		return types.String(v.AccountEvent), true
	case "account_ban_state":
		return types.String(v.AccountBanState), true
	case "baseline":
		// A pointer lets the native type read fields in place: no copy of
		// the struct per evaluation.
		return &a.in.Baseline, true
	case "has_baseline":
		return types.Bool(a.in.HasBaseline), true
	case "labels":
		return a.labels(), true
	}
	// A metric added to quality.Values after this switch was written still
	// works, by reflection, until it gets its fast path.
	if i, ok := fieldIndex()[name]; ok {
		return reflect.ValueOf(v).Elem().Field(i).Interface(), true
	}
	return nil, false
}

func (a *activation) labels() map[string]string {
	if len(a.extra) == 0 {
		if a.in.Labels == nil {
			return map[string]string{}
		}
		return a.in.Labels
	}
	m := make(map[string]string, len(a.in.Labels)+len(a.extra))
	for k, v := range a.in.Labels {
		m[k] = v
	}
	for k, v := range a.extra { // rule labels never collide with key dims (checked at load)
		m[k] = v
	}
	return m
}

// valueField is one field of quality.Values as CEL sees it.
type valueField struct {
	name string // json tag
	typ  *cel.Type
}

// fieldIndex maps json names to field indexes of quality.Values.
var fieldIndex = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	for i, f := range valueFields() {
		m[f.name] = i
	}
	return m
})

// valueFields lists quality.Values by json name, derived by reflection so
// that a field added there is declared here too (a test checks that the
// activation resolves every one).
var valueFields = sync.OnceValue(func() []valueField {
	var out []valueField
	t := reflect.TypeFor[quality.Values]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		var typ *cel.Type
		switch f.Type {
		case reflect.TypeFor[int64]():
			typ = cel.IntType
		case reflect.TypeFor[float64]():
			typ = cel.DoubleType
		case reflect.TypeFor[string]():
			typ = cel.StringType
		case reflect.TypeFor[map[int64]int64]():
			typ = cel.MapType(cel.IntType, cel.IntType)
		case reflect.TypeFor[map[string]int64]():
			typ = cel.MapType(cel.StringType, cel.IntType)
		default:
			panic(fmt.Sprintf("rules: quality.Values.%s has type %s, unknown to the CEL environment", f.Name, f.Type))
		}
		out = append(out, valueField{name: name, typ: typ})
	}
	return out
})

// countMetrics are the integer metrics, the ones min_volume can guard on.
func countMetrics() []string {
	var out []string
	for _, f := range valueFields() {
		if f.typ == cel.IntType {
			out = append(out, f.name)
		}
	}
	return out
}

// countGetter returns a reader of the count metric name (one of
// countMetrics), for min_volume guards; nil for an unknown name.
func countGetter(name string) func(*quality.Values) int64 {
	switch name {
	case "sent":
		return func(v *quality.Values) int64 { return v.Sent }
	case "delivered":
		return func(v *quality.Values) int64 { return v.Delivered }
	case "read":
		return func(v *quality.Values) int64 { return v.Read }
	case "failed":
		return func(v *quality.Values) int64 { return v.Failed }
	case "accepted":
		return func(v *quality.Values) int64 { return v.Accepted }
	case "deferred":
		return func(v *quality.Values) int64 { return v.Deferred }
	case "attempts":
		return func(v *quality.Values) int64 { return v.Attempts }
	case "reached":
		return func(v *quality.Values) int64 { return v.Reached }
	case "opt_outs":
		return func(v *quality.Values) int64 { return v.OptOuts }
	case "inbound":
		return func(v *quality.Values) int64 { return v.Inbound }
	case "latency_samples":
		return func(v *quality.Values) int64 { return v.LatencySamples }
	}
	i, ok := fieldIndex()[name]
	if !ok {
		return nil
	}
	return func(v *quality.Values) int64 { return reflect.ValueOf(v).Elem().Field(i).Int() }
}

// baseEnv is the environment every rule compiles in. It is built once:
// building it is the expensive part of compilation.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		// baseline is a typed object so that baseline.delivry_rate is a
		// load-time error; NativeTypes over quality.Values with json names
		// keeps one definition of the fields and reads them in place.
		ext.NativeTypes(reflect.TypeFor[quality.Values](), ext.ParseStructTag("json")),
		cel.Variable("baseline", cel.ObjectType(valuesTypeName)),
		cel.Variable("has_baseline", cel.BoolType),
		cel.Variable("labels", cel.MapType(cel.StringType, cel.StringType)),
		// Analysts write failure_rate > 0 and expect it to type-check.
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(maxExprLen),
		ext.Math(),
		cel.Macros(lookupMacros("code", "failures_by_code")...),
		cel.Macros(lookupMacros("class", "failures_by_class")...),
		// No runtime type guards: a guard checks a map argument by
		// iterating it, a third of a simple condition's time, and
		// lookupOrZero checks what it gets itself.
		cel.Function("code", cel.Overload("code_map_int",
			[]*cel.Type{cel.MapType(cel.IntType, cel.IntType), cel.IntType}, cel.IntType,
			cel.BinaryBinding(lookupOrZero)), decls.DisableTypeGuards(true)),
		cel.Function("class", cel.Overload("class_map_string",
			[]*cel.Type{cel.MapType(cel.StringType, cel.IntType), cel.StringType}, cel.IntType,
			cel.BinaryBinding(lookupOrZero)), decls.DisableTypeGuards(true)),
		numericFunction("pct_change", pctChange),
		numericFunction("ratio", ratio),
	}
	for _, f := range valueFields() {
		opts = append(opts, cel.Variable(f.name, f.typ))
	}
	return cel.NewEnv(opts...)
})

// lookupMacros rewrites code(n) to code(failures_by_code, n), and
// x.code(n) to code(x.failures_by_code, n) (for baseline.code(n)). CEL
// functions cannot see variables, so the macro passes the map in; the
// checker still types both arguments.
func lookupMacros(fn, field string) []cel.Macro {
	return []cel.Macro{
		cel.GlobalMacro(fn, 1, func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
			return eh.NewCall(fn, eh.NewIdent(field), args[0]), nil
		}),
		cel.ReceiverMacro(fn, 1, func(eh cel.MacroExprFactory, target ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
			return eh.NewCall(fn, eh.NewSelect(target, field), args[0]), nil
		}),
	}
}

// lookupOrZero is m[k], or 0 when k is absent: a failure code that did not
// occur occurred zero times.
func lookupOrZero(m, k ref.Val) ref.Val {
	// Fast paths for the maps the activation hands over unadapted.
	switch raw := m.Value().(type) {
	case map[int64]int64:
		if n, ok := k.(types.Int); ok {
			return types.Int(raw[int64(n)])
		}
	case map[string]int64:
		if s, ok := k.(types.String); ok {
			return types.Int(raw[string(s)])
		}
	}
	mapper, ok := m.(traits.Mapper)
	if !ok {
		return types.MaybeNoSuchOverloadErr(m)
	}
	if v, found := mapper.Find(k); found {
		return v
	}
	return types.IntZero
}

// numericFunction declares fn(a, b) -> double for every mix of int and
// double: CEL does not convert implicitly, and pct_change(sent,
// baseline.sent) should not need double() around each argument.
func numericFunction(name string, impl func(a, b float64) float64) cel.EnvOption {
	binding := cel.BinaryBinding(func(a, b ref.Val) ref.Val {
		x, ok1 := toFloat(a)
		y, ok2 := toFloat(b)
		if !ok1 || !ok2 {
			return types.NoSuchOverloadErr()
		}
		return types.Double(impl(x, y))
	})
	var overloads []cel.FunctionOpt
	for _, a := range []*cel.Type{cel.IntType, cel.DoubleType} {
		for _, b := range []*cel.Type{cel.IntType, cel.DoubleType} {
			id := fmt.Sprintf("%s_%s_%s", name, a, b)
			overloads = append(overloads, cel.Overload(id, []*cel.Type{a, b}, cel.DoubleType, binding))
		}
	}
	return cel.Function(name, overloads...)
}

func toFloat(v ref.Val) (float64, bool) {
	switch n := v.(type) {
	case types.Int:
		return float64(n), true
	case types.Double:
		return float64(n), true
	}
	return 0, false
}

// pctChange is (cur-base)/base, 0 when base is 0: no baseline volume means
// no change to speak of, not an infinite one.
func pctChange(cur, base float64) float64 {
	if base == 0 {
		return 0
	}
	return (cur - base) / base
}

// ratio is a/b, 0 when b is 0, like the rates of quality.Values.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// exprContext is what compiling one rule expression needs to know about
// its rule.
type exprContext struct {
	field       string // "when", "resolve_when"
	rule        string
	hasBaseline bool
	// labelKeys are the keys `labels` has for this rule; nil when the
	// rule's by or labels were themselves invalid (no check then).
	labelKeys   []string
	extraLabels map[string]string
}

// exprIssue is a compile problem at a position inside the expression.
type exprIssue struct {
	line, col int // line 1-based, col 0-based in characters, as in cel-go
	msg       string
}

// compileExpr parses, type-checks and plans src; on failure it returns
// every issue found, positioned in src.
func compileExpr(src string, c exprContext) (*Expr, []exprIssue) {
	env, err := baseEnv()
	if err != nil {
		return nil, []exprIssue{{line: 1, msg: "building the CEL environment: " + err.Error()}}
	}
	if strings.TrimSpace(src) == "" {
		return nil, []exprIssue{{line: 1, msg: "empty expression"}}
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		var out []exprIssue
		for _, e := range iss.Errors() {
			out = append(out, issueOf(e))
		}
		return nil, out
	}
	a := checked.NativeRep()
	var issues []exprIssue
	at := func(id int64, format string, args ...any) {
		loc := a.SourceInfo().GetStartLocation(id)
		issues = append(issues, exprIssue{line: max(loc.Line(), 1), col: max(loc.Column(), 0), msg: fmt.Sprintf(format, args...)})
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) {
		issues = append(issues, exprIssue{line: 1, msg: fmt.Sprintf("must be a bool condition, got %s", cel.FormatCELType(t))})
	}
	usesBaseline, loops := false, false
	classes := event.ErrorClasses()
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.ComprehensionKind:
			loops = true
		case ast.IdentKind:
			if name := e.AsIdent(); name == "baseline" || name == "has_baseline" {
				usesBaseline = true
				if !c.hasBaseline {
					at(e.ID(), "%s needs a baseline: set baseline: previous_<duration> or same_time_last_week on the rule", name)
				}
			}
		case ast.CallKind:
			call := e.AsCall()
			args := call.Args()
			if len(args) != 2 || args[1].Kind() != ast.LiteralKind {
				return
			}
			key, isString := args[1].AsLiteral().(types.String)
			if !isString {
				return
			}
			switch {
			case call.FunctionName() == "class" || (call.FunctionName() == operators.Index && isField(args[0], "failures_by_class")):
				// A misspelt class would silently count zero forever.
				if !slices.Contains(classes, string(key)) {
					at(args[1].ID(), "unknown failure class %q (one of %s)", string(key), strings.Join(classes, ", "))
				}
			case call.FunctionName() == operators.Index && args[0].Kind() == ast.IdentKind && args[0].AsIdent() == "labels" && c.labelKeys != nil:
				// labels["x"] for a label the rule cannot have fails every
				// evaluation with "no such key".
				if !slices.Contains(c.labelKeys, string(key)) {
					at(args[1].ID(), "labels has no key %q for this rule (keys: %s)", string(key), strings.Join(c.labelKeys, ", "))
				}
			}
		}
	}))
	if len(issues) > 0 {
		return nil, issues
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if loops {
		opts = append(opts, cel.InterruptCheckFrequency(interruptEvery))
	}
	tracked := !withinCostLimit(env, checked)
	if tracked {
		opts = append(opts, cel.CostLimit(CostLimit))
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		return nil, []exprIssue{{line: 1, msg: err.Error()}}
	}
	return &Expr{
		Source:       src,
		name:         c.rule + " " + c.field,
		prg:          prg,
		extraLabels:  c.extraLabels,
		usesBaseline: usesBaseline,
		loops:        loops,
		costTracked:  tracked,
	}, nil
}

// withinCostLimit reports whether every evaluation of checked costs at
// most CostLimit whatever the inputs, by cel-go's static estimate (sizes
// of maps, lists and strings unknown, so taken as unbounded). Such a
// program needs no cost tracking: the limit cannot trip, and tracking
// every operation is about a fifth of an evaluation's time. Comprehensions
// and size-dependent functions over inputs have no finite bound and keep
// the tracker.
func withinCostLimit(env *cel.Env, checked *cel.Ast) bool {
	est, err := env.EstimateCost(checked, unknownSizes{})
	return err == nil && est.Max <= CostLimit
}

// unknownSizes is a cost estimator that knows no sizes and no call costs,
// leaving cel-go's defaults: unbounded sizes.
type unknownSizes struct{}

func (unknownSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }

func (unknownSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// isField reports whether e is the identifier name or a selection x.name.
func isField(e ast.Expr, name string) bool {
	switch e.Kind() {
	case ast.IdentKind:
		return e.AsIdent() == name
	case ast.SelectKind:
		return e.AsSelect().FieldName() == name
	}
	return false
}

// issueOf converts a cel-go error, adding a hint where cel-go's message
// leaves analysts guessing.
func issueOf(e *cel.Error) exprIssue {
	line, col := 1, 0
	if e.Location != nil && e.Location.Line() > 0 {
		line, col = e.Location.Line(), max(e.Location.Column(), 0)
	}
	msg := e.Message
	if strings.Contains(msg, "no matching overload") &&
		(strings.Contains(msg, "(int, double)") || strings.Contains(msg, "(double, int)")) {
		msg += " (CEL does not mix int and double in arithmetic: convert with double(...))"
	}
	return exprIssue{line: line, col: col, msg: msg}
}

package backtest

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"vigia/internal/alert"
	"vigia/internal/quality"
	"vigia/internal/rules"
)

// Report is what a backtest found. Its JSON form (json.Marshal) and its
// text form (WriteText) list the same things in the same, stable order.
type Report struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	RuleFiles []string  `json:"rule_files"`

	// Events is how many stored events were replayed; Outcomes says what
	// the windows did with them (applied, duplicate, ...), as the live
	// evaluator's vigia_evaluator_events_total does.
	Events   int64             `json:"events"`
	Outcomes map[string]uint64 `json:"event_outcomes"`

	// Rounds is how many evaluation instants there were; Evaluations how
	// many rule × key evaluations; EvalFailures those that failed, with up
	// to ten distinct errors in EvalErrors.
	Rounds       int64    `json:"rounds"`
	Evaluations  int64    `json:"evaluations"`
	EvalFailures int64    `json:"evaluation_failures"`
	EvalErrors   []string `json:"evaluation_errors,omitempty"`

	// Changes are the firing and resolved records, ordered by evaluation
	// time, group, alertname and key. Pending and inactive records are
	// only counted, in Rules and Totals.
	Changes []Change     `json:"changes"`
	Rules   []RuleTotals `json:"rules"` // by group, alertname
	Totals  Totals       `json:"totals"`

	// Warnings say when a bound of the window store was reached during
	// the replay, so that the report may differ from another run's.
	Warnings []string `json:"warnings,omitempty"`
}

// Change is one firing or resolved record of the backtest.
type Change struct {
	EvalTime    time.Time   `json:"eval_time"`
	State       alert.State `json:"state"`
	Alertname   string      `json:"alertname"`
	Group       string      `json:"group"`
	Rule        string      `json:"rule"` // file:line
	Fingerprint string      `json:"fingerprint"`
	Occurrence  string      `json:"occurrence"`
	// Key holds the rule's key dimensions (phone_number, template...);
	// Labels all of the alert's labels, alertname included.
	Key    map[string]string `json:"key"`
	Labels map[string]string `json:"labels"`

	ActiveAt   time.Time  `json:"active_at"`
	FiredAt    *time.Time `json:"fired_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`

	// Evidence holds the metrics the rule's conditions and min_volume
	// read, by the name they are written with (attempts, code(130429),
	// baseline.delivery_rate), as of this evaluation: what made it fire
	// or resolve. Values and Baseline are every metric.
	Evidence    map[string]any    `json:"evidence,omitempty"`
	Values      quality.Values    `json:"values"`
	Baseline    *quality.Values   `json:"baseline,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Actions are what the control API would have done: set on firing
	// records only.
	Actions []alert.Action `json:"actions,omitempty"`
}

// RuleTotals counts one rule's records. FiringAtEnd is how many of its
// alerts were still firing at To.
type RuleTotals struct {
	Group       string `json:"group"`
	Alertname   string `json:"alertname"`
	Rule        string `json:"rule"`
	Firing      int    `json:"firing"`
	Resolved    int    `json:"resolved"`
	FiringAtEnd int    `json:"firing_at_end"`
	Pending     int    `json:"pending"`
	Inactive    int    `json:"inactive"`
}

// Totals sums RuleTotals over the rules.
type Totals struct {
	Firing      int `json:"firing"`
	Resolved    int `json:"resolved"`
	FiringAtEnd int `json:"firing_at_end"`
	Pending     int `json:"pending"`
	Inactive    int `json:"inactive"`
}

// ruleInfo is what a change needs from its rule.
type ruleInfo struct {
	by   []string
	refs []metricRef
}

func newRuleInfo(r *rules.Rule) *ruleInfo {
	ri := &ruleInfo{}
	for _, d := range r.By {
		ri.by = append(ri.by, string(d))
	}
	var srcs []string
	for _, e := range []*rules.Expr{r.When, r.ResolveWhen} {
		if e != nil {
			srcs = append(srcs, e.Source)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(r.MinVolume)) {
		srcs = append(srcs, m)
	}
	ri.refs = metricRefs(strings.Join(srcs, " "))
	return ri
}

func newChange(a *alert.Alert, ri *ruleInfo) Change {
	c := Change{
		EvalTime: a.EvalTime, State: a.State, Alertname: a.Name, Group: a.Group, Rule: a.Rule,
		Fingerprint: a.Fingerprint, Occurrence: a.Occurrence(),
		Key: map[string]string{}, Labels: a.Labels,
		ActiveAt: a.ActiveAt, FiredAt: a.FiredAt, ResolvedAt: a.ResolvedAt,
		Values: a.Values, Baseline: a.Baseline, Annotations: a.Annotations,
	}
	if a.State == alert.StateFiring {
		c.Actions = a.Actions
	}
	if ri != nil {
		for _, d := range ri.by {
			c.Key[d] = a.Labels[d]
		}
		if len(ri.refs) > 0 {
			c.Evidence = map[string]any{}
			for _, r := range ri.refs {
				if v, ok := r.get(&a.Values, a.Baseline); ok {
					c.Evidence[r.name] = v
				}
			}
		}
	}
	return c
}

func compareChanges(a, b Change) int {
	return cmp.Or(a.EvalTime.Compare(b.EvalTime), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Alertname, b.Alertname),
		cmp.Compare(labelText(a.Key), labelText(b.Key)), cmp.Compare(a.Fingerprint, b.Fingerprint), cmp.Compare(a.State, b.State))
}

// metricRef reads one metric a rule refers to.
type metricRef struct {
	name string
	get  func(cur, base *quality.Values) (any, bool)
}

var (
	codeRE   = regexp.MustCompile(`(baseline\.)?\bcode\(\s*(-?\d+)\s*\)`)
	classRE  = regexp.MustCompile(`(baseline\.)?\bclass\(\s*(?:"([^"]*)"|'([^']*)')\s*\)`)
	stringRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	identRE  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*`)
)

// valueFields maps the JSON names of quality.Values' scalar fields to
// their indexes.
var valueFields = func() map[string]int {
	out := map[string]int{}
	t := reflect.TypeFor[quality.Values]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch f.Type.Kind() {
		case reflect.Int64, reflect.Float64, reflect.String:
			if name != "" && name != "-" {
				out[name] = i
			}
		}
	}
	return out
}()

// metricRefs finds the metrics an expression reads, in order of first
// appearance: fields (sent, baseline.delivery_rate), code(n) and
// class(name), with or without baseline.
func metricRefs(src string) []metricRef {
	var out []metricRef
	seen := map[string]bool{}
	type found struct {
		at  int
		ref metricRef
	}
	var all []found
	add := func(at int, name string, get func(cur, base *quality.Values) (any, bool)) {
		all = append(all, found{at, metricRef{name, get}})
	}
	pick := func(base bool, cur, b *quality.Values) *quality.Values {
		if base {
			return b
		}
		return cur
	}
	for _, m := range codeRE.FindAllStringSubmatchIndex(src, -1) {
		base := m[2] >= 0
		n, err := strconv.ParseInt(src[m[4]:m[5]], 10, 64)
		if err != nil {
			continue
		}
		add(m[0], src[m[0]:m[1]], func(cur, b *quality.Values) (any, bool) {
			v := pick(base, cur, b)
			if v == nil {
				return nil, false
			}
			return v.FailuresByCode[n], true
		})
	}
	for _, m := range classRE.FindAllStringSubmatchIndex(src, -1) {
		base := m[2] >= 0
		name := ""
		if m[4] >= 0 {
			name = src[m[4]:m[5]]
		} else {
			name = src[m[6]:m[7]]
		}
		add(m[0], src[m[0]:m[1]], func(cur, b *quality.Values) (any, bool) {
			v := pick(base, cur, b)
			if v == nil {
				return nil, false
			}
			return v.FailuresByClass[name], true
		})
	}
	// Identifiers outside string literals and not after a dot (labels.x,
	// math.abs are not metrics).
	plain := stringRE.ReplaceAllStringFunc(src, func(s string) string { return strings.Repeat(" ", len(s)) })
	for _, m := range identRE.FindAllStringIndex(plain, -1) {
		if m[0] > 0 && plain[m[0]-1] == '.' {
			continue
		}
		tok := plain[m[0]:m[1]]
		if m[1] < len(plain) && plain[m[1]] == '(' {
			continue // a function: code(), class(), ratio()...
		}
		base := false
		field := tok
		if rest, ok := strings.CutPrefix(tok, "baseline."); ok {
			base, field = true, rest
		}
		i, ok := valueFields[field]
		if !ok {
			continue
		}
		add(m[0], tok, func(cur, b *quality.Values) (any, bool) {
			v := pick(base, cur, b)
			if v == nil {
				return nil, false
			}
			return reflect.ValueOf(v).Elem().Field(i).Interface(), true
		})
	}
	slices.SortStableFunc(all, func(a, b found) int { return cmp.Compare(a.at, b.at) })
	for _, f := range all {
		if !seen[f.ref.name] {
			seen[f.ref.name] = true
			out = append(out, f.ref)
		}
	}
	return out
}

// WriteText writes the report as readable tables: a summary, the firing
// and resolved records, and per rule totals.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "Backtest %s .. %s\n", fmtTime(r.From), fmtTime(r.To))
	fmt.Fprintf(ew, "rules:   %s\n", strings.Join(r.RuleFiles, ", "))
	fmt.Fprintf(ew, "events:  %d replayed (%s)\n", r.Events, outcomeText(r.Outcomes))
	fmt.Fprintf(ew, "rounds:  %d evaluation instants, %d rule evaluations, %d failed\n", r.Rounds, r.Evaluations, r.EvalFailures)
	for _, e := range r.EvalErrors {
		fmt.Fprintf(ew, "  error: %s\n", e)
	}
	t := r.Totals
	fmt.Fprintf(ew, "alerts:  %d fired, %d resolved, %d still firing at the end (%d pending and %d inactive records not listed)\n",
		t.Firing, t.Resolved, t.FiringAtEnd, t.Pending, t.Inactive)
	for _, w := range r.Warnings {
		fmt.Fprintf(ew, "warning: %s\n", w)
	}
	fmt.Fprintln(ew)

	if len(r.Changes) == 0 {
		fmt.Fprintln(ew, "No alert fired.")
	} else {
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "EVAL TIME\tSTATE\tALERT\tGROUP\tKEY\tEVIDENCE\tACTIONS")
		for _, c := range r.Changes {
			actions := actionText(c.Actions)
			if c.State == alert.StateResolved && c.FiredAt != nil {
				actions = "after " + c.EvalTime.Sub(*c.FiredAt).String() + " firing"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(c.EvalTime), c.State, c.Alertname, c.Group,
				orDash(labelText(c.Key)), orDash(evidenceText(c.Evidence)), orDash(actions))
		}
		tw.Flush()
	}
	fmt.Fprintln(ew)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tFIRED\tRESOLVED\tFIRING AT END\tPENDING\tINACTIVE\tDEFINED AT")
	for _, rt := range r.Rules {
		fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%d\t%d\t%d\t%s\n", rt.Group, rt.Alertname, rt.Firing, rt.Resolved, rt.FiringAtEnd, rt.Pending, rt.Inactive, rt.Rule)
	}
	tw.Flush()
	return ew.err
}

// errWriter keeps the first write error, so that the text writers can
// print freely and report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func outcomeText(o map[string]uint64) string {
	if len(o) == 0 {
		return "none applied"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(o)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, o[k]))
	}
	return strings.Join(parts, ", ")
}

// labelText prints labels as a=x b=y, sorted by name, without alertname.
func labelText(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if k != alert.LabelAlertName {
			parts = append(parts, k+"="+l[k])
		}
	}
	return strings.Join(parts, " ")
}

func evidenceText(e map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e)) {
		parts = append(parts, k+"="+valueText(e[k]))
	}
	return strings.Join(parts, " ")
}

func valueText(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', 4, 64)
	case string:
		if x == "" {
			return `""`
		}
		return x
	}
	return fmt.Sprint(v)
}

func actionText(as []alert.Action) string {
	var parts []string
	for _, a := range as {
		p := a.Type
		if len(a.Params) > 0 {
			p += " " + labelText(a.Params)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

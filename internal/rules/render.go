package rules

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"vigia/internal/quality"
)

// Action is one automation step a firing alert asks for. On a Rule,
// Params hold the templates as written; from Render, the rendered values.
type Action struct {
	Type   string
	Params map[string]string
	File   string
	Line   int

	templates map[string]*template.Template
}

// actionSchema says which params an action type takes. Every action acts
// on something, so each has targets of which at least one is required;
// the control API resolves the target to numbers and use cases.
type actionSchema struct {
	targets  []string // at least one required
	required []string
	optional []string
}

// Action types and their params:
//
//	failover          move traffic to a standby number.
//	                  targets: use_case, phone_number; optional: to (the standby phone number id)
//	throttle          cap the send rate. targets: phone_number, waba, use_case, campaign, template;
//	                  required: rate, "<n>/s", "<n>/m" or "<n>/h"
//	pause             stop sending. targets: campaign, template, use_case, phone_number, waba;
//	                  optional: for, a duration (default: until resumed)
//	fallback_channel  send on another channel instead. targets: use_case, campaign, template,
//	                  phone_number, waba; required: channel, one of sms, email, push
//	notify_senders    tell the teams sending through the key. targets: use_case, campaign,
//	                  template, phone_number, waba; optional: message (default: the summary)
var actionSchemas = map[string]actionSchema{
	"failover":         {targets: []string{"use_case", "phone_number"}, optional: []string{"to"}},
	"throttle":         {targets: []string{"phone_number", "waba", "use_case", "campaign", "template"}, required: []string{"rate"}},
	"pause":            {targets: []string{"campaign", "template", "use_case", "phone_number", "waba"}, optional: []string{"for"}},
	"fallback_channel": {targets: []string{"use_case", "campaign", "template", "phone_number", "waba"}, required: []string{"channel"}},
	"notify_senders":   {targets: []string{"use_case", "campaign", "template", "phone_number", "waba"}, optional: []string{"message"}},
}

var actionTypes = slices.Sorted(maps.Keys(actionSchemas))

var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)/(s|m|h)$`)

// ParseRate parses a rate as rules and routes write it, "<n>/s", "<n>/m"
// or "<n>/h" (like 40/s), into messages per second.
func ParseRate(text string) (perSecond float64, err error) {
	m := rateRE.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("want <n>/s, <n>/m or <n>/h (like 40/s), got %q", text)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(n, 0) {
		return 0, fmt.Errorf("out of range: %q", text)
	}
	if n <= 0 {
		return 0, fmt.Errorf("must be positive, got %q", text)
	}
	switch m[2] {
	case "m":
		n /= 60
	case "h":
		n /= 3600
	}
	return n, nil
}

// ParseDuration parses a duration as rules write it: Go's units plus d
// and w (1d = 24h), like 90s, 15m, 1h30m, 7d.
func ParseDuration(text string) (time.Duration, error) { return parseDuration(text) }

// checkParam validates a param's value; at load for literal values, at
// render for templated ones.
func checkParam(name, value string) error {
	switch name {
	case "rate":
		if _, err := ParseRate(value); err != nil {
			return fmt.Errorf("rate: %w", err)
		}
	case "channel":
		if value != "sms" && value != "email" && value != "push" {
			return fmt.Errorf("channel: want sms, email or push, got %q", value)
		}
	case "for":
		if d, err := parseDuration(value); err != nil || d <= 0 {
			return fmt.Errorf("for: want a positive duration, got %q", value)
		}
	default:
		if value == "" {
			return fmt.Errorf("%s: empty", name)
		}
	}
	return nil
}

// funcs are the template functions of annotations and action params.
var funcs = template.FuncMap{
	"pct":              pct,
	"humanize":         humanize,
	"humanizeDuration": humanizeDuration,
}

func toFloat64(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case int32:
		return float64(n), nil
	case time.Duration:
		return n.Seconds(), nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

// pct formats a ratio as a percentage with one decimal: 0.834 -> "83.4%".
func pct(v any) (string, error) {
	f, err := toFloat64(v)
	if err != nil {
		return "", err
	}
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%", nil
}

// humanize formats a count with an SI prefix (12345 -> "12.35k") and a
// time.Duration the way people write it (90m -> "1h30m").
func humanize(v any) (string, error) {
	if d, ok := v.(time.Duration); ok {
		return fmtDuration(d.Round(time.Second)), nil
	}
	f, err := toFloat64(v)
	if err != nil {
		return "", err
	}
	prefixes := []string{"", "k", "M", "G", "T", "P", "E"}
	i := 0
	for math.Abs(f) >= 1000 && i < len(prefixes)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'g', 4, 64) + prefixes[i], nil
}

// humanizeDuration formats seconds (the unit of latency metrics) as a
// duration: 0.34 -> "340ms", 95 -> "1m35s".
func humanizeDuration(v any) (string, error) {
	f, err := toFloat64(v)
	if err != nil {
		return "", err
	}
	d := time.Duration(f * float64(time.Second))
	switch {
	case d < time.Second && d > -time.Second:
		d = d.Round(time.Millisecond)
	case d < time.Minute && d > -time.Minute:
		d = d.Round(100 * time.Millisecond)
	default:
		d = d.Round(time.Second)
	}
	return fmtDuration(d), nil
}

// tmplContext is what templates of one rule can reference.
type tmplContext struct {
	keyDims []quality.Dim
	// labelKeys are the keys of .labels; nil when by or labels are
	// invalid, and then references to dims and labels go unchecked.
	labelKeys   []string
	hasBaseline bool
}

// tmpl parses a template field and checks what it references, recording
// problems at their positions in the file.
func (s *source) tmpl(name string, n *yaml.Node, what string, tc tmplContext) *template.Template {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		s.errf(n, "%s: want a string, got %s", what, kindOf(n))
		return nil
	}
	text := n.Value
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		off, msg := templateErrorOffset(text, err)
		s.atOffset(s.scalarPositions(n), off, "%s: %s", what, msg)
		return nil
	}
	issues := checkTemplate(t, tc)
	if len(issues) > 0 {
		positions := s.scalarPositions(n)
		for _, is := range issues {
			s.atOffset(positions, utf8.RuneCountInString(text[:min(is.offset, len(text))]), "%s: %s", what, is.msg)
		}
		return nil
	}
	return t
}

var templateErrRE = regexp.MustCompile(`^template: [^:]*:(\d+):(?:\d+:)? (.*)$`)

var quotedRE = regexp.MustCompile(`"([^"]+)"`)

// templateErrorOffset finds where in text a parse error is. text/template
// reports the line only; when the message quotes a token found exactly
// once on that line (function "pctt" not defined, unexpected ".131048"),
// the error points at it, else at the start of the line.
func templateErrorOffset(text string, err error) (int, string) {
	msg := err.Error()
	m := templateErrRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	line, _ := strconv.Atoi(m[1])
	off := 0
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if i+1 >= line {
			if q := quotedRE.FindStringSubmatch(m[2]); q != nil && strings.Count(l, q[1]) == 1 {
				off += utf8.RuneCountInString(l[:strings.Index(l, q[1])])
			}
			break
		}
		off += utf8.RuneCountInString(l)
	}
	return off, m[2]
}

type tmplIssue struct {
	offset int // bytes into the template text
	msg    string
}

// checkTemplate finds references the data of Render cannot satisfy, so
// that a typo fails the load instead of the notification. Only references
// to the top-level data are checked: inside range and with, dot is
// something else.
func checkTemplate(t *template.Template, tc tmplContext) []tmplIssue {
	var issues []tmplIssue
	report := func(pos parse.Pos, format string, args ...any) {
		issues = append(issues, tmplIssue{offset: int(pos), msg: fmt.Sprintf(format, args...)})
	}
	metricNames := make([]string, 0, len(valueFields()))
	for _, f := range valueFields() {
		metricNames = append(metricNames, f.name)
	}
	checkPath := func(pos parse.Pos, idents []string) {
		switch first := idents[0]; first {
		case "values", "baseline":
			if first == "baseline" && !tc.hasBaseline {
				report(pos, ".baseline needs a baseline: set baseline: previous_<duration> or same_time_last_week on the rule")
				return
			}
			if len(idents) > 1 && !slices.Contains(metricNames, idents[1]) {
				msg := fmt.Sprintf(".%s has no metric %q", first, idents[1])
				if near := nearest(idents[1], metricNames); near != "" {
					msg += fmt.Sprintf("; did you mean %q?", near)
				}
				report(pos, "%s", msg)
			}
		case "labels":
			if len(idents) > 1 && tc.labelKeys != nil && !slices.Contains(tc.labelKeys, idents[1]) {
				report(pos, ".labels has no key %q for this rule (keys: %s)", idents[1], strings.Join(tc.labelKeys, ", "))
			}
		case "alertname", "has_baseline":
		default:
			if slices.Contains(quality.Dims, quality.Dim(first)) {
				if tc.labelKeys != nil && !slices.Contains(tc.keyDims, quality.Dim(first)) {
					report(pos, ".%s is not a key dimension of this rule (by: %s)", first, joinDims(tc.keyDims))
				}
				return
			}
			report(pos, "unknown field .%s (want .labels, .values, .baseline, .alertname, .has_baseline or a key dimension)", first)
		}
	}
	var walkNode func(n parse.Node, root bool)
	var walkPipe func(p *parse.PipeNode, root bool)
	walkPipe = func(p *parse.PipeNode, root bool) {
		if p == nil {
			return
		}
		for _, cmd := range p.Cmds {
			for _, arg := range cmd.Args {
				switch a := arg.(type) {
				case *parse.FieldNode:
					if root {
						checkPath(a.Position(), a.Ident)
					}
				case *parse.VariableNode:
					if a.Ident[0] == "$" && len(a.Ident) > 1 {
						checkPath(a.Position(), a.Ident[1:])
					}
				case *parse.PipeNode:
					walkPipe(a, root)
				case *parse.ChainNode:
					if p, ok := a.Node.(*parse.PipeNode); ok {
						walkPipe(p, root)
					}
				}
			}
		}
	}
	walkList := func(l *parse.ListNode, root bool) {
		if l == nil {
			return
		}
		for _, n := range l.Nodes {
			walkNode(n, root)
		}
	}
	walkNode = func(n parse.Node, root bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			walkList(n, root)
		case *parse.ActionNode:
			walkPipe(n.Pipe, root)
		case *parse.IfNode:
			walkPipe(n.Pipe, root)
			walkList(n.List, root)
			walkList(n.ElseList, root)
		case *parse.RangeNode:
			walkPipe(n.Pipe, root)
			walkList(n.List, false)
			walkList(n.ElseList, root)
		case *parse.WithNode:
			walkPipe(n.Pipe, root)
			walkList(n.List, false)
			walkList(n.ElseList, root)
		case *parse.TemplateNode:
			walkPipe(n.Pipe, root)
		}
	}
	if t.Tree != nil {
		walkList(t.Tree.Root, true)
	}
	return issues
}

func joinDims(dims []quality.Dim) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = string(d)
	}
	return strings.Join(s, ", ")
}

func (s *source) annotations(m map[string]field, r *Rule, tc tmplContext) {
	f, ok := m["annotations"]
	if !ok || isNull(f.val) {
		return
	}
	if f.val.Kind != yaml.MappingNode {
		s.errf(f.val, "annotations: want a mapping, got %s", kindOf(f.val))
		return
	}
	r.Annotations = map[string]*template.Template{}
	for i := 0; i+1 < len(f.val.Content); i += 2 {
		k, v := f.val.Content[i], deref(f.val.Content[i+1])
		name := k.Value
		if !nameRE.MatchString(name) {
			s.errf(k, "annotations: %q is not a valid annotation name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
			continue
		}
		if _, dup := r.Annotations[name]; dup {
			s.errf(k, "annotations: %s set twice", name)
			continue
		}
		if t := s.tmpl(name, v, "annotations."+name, tc); t != nil {
			r.Annotations[name] = t
		}
	}
}

func (s *source) actions(m map[string]field, r *Rule, tc tmplContext) {
	for i, item := range s.list(m["actions"], "actions") {
		item = deref(item)
		where := fmt.Sprintf("actions[%d]", i)
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			s.errf(item, "%s: want exactly one action, like {failover: {use_case: ...}} (types: %s)", where, strings.Join(actionTypes, ", "))
			continue
		}
		k, v := item.Content[0], deref(item.Content[1])
		schema, ok := actionSchemas[k.Value]
		if !ok {
			msg := fmt.Sprintf("%s: unknown action type %q", where, k.Value)
			if near := nearest(k.Value, actionTypes); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			} else {
				msg += " (one of " + strings.Join(actionTypes, ", ") + ")"
			}
			s.errf(k, "%s", msg)
			continue
		}
		where += "." + k.Value
		known := slices.Concat(schema.targets, schema.required, schema.optional)
		params := s.fields(v, where, known...)
		if params == nil {
			continue
		}
		a := Action{Type: k.Value, Params: map[string]string{}, File: s.path, Line: k.Line, templates: map[string]*template.Template{}}
		good := true
		if !slices.ContainsFunc(schema.targets, func(t string) bool { _, ok := params[t]; return ok }) {
			s.errf(k, "%s: needs at least one of %s", where, strings.Join(schema.targets, ", "))
			good = false
		}
		for _, req := range schema.required {
			if _, ok := params[req]; !ok {
				s.errf(k, "%s: %s is required", where, req)
				good = false
			}
		}
		for _, name := range known { // schema order, for stable problems
			p, ok := params[name]
			if !ok {
				continue
			}
			t := s.tmpl(where+"."+name, p.val, where+"."+name, tc)
			if t == nil {
				good = false
				continue
			}
			if !strings.Contains(p.val.Value, "{{") {
				if err := checkParam(name, p.val.Value); err != nil {
					s.errf(p.val, "%s.%v", where, err)
					good = false
					continue
				}
			}
			a.Params[name] = p.val.Value
			a.templates[name] = t
		}
		if good {
			r.Actions = append(r.Actions, a)
		}
	}
}

// templateData is what annotations and action params see.
func (r *Rule) templateData(in *Input) map[string]any {
	data := map[string]any{
		"alertname":    r.Alert,
		"labels":       r.AlertLabels(in.Labels),
		"values":       valuesMap(&in.Values),
		"baseline":     valuesMap(&in.Baseline),
		"has_baseline": in.HasBaseline,
	}
	for _, d := range r.By {
		data[string(d)] = in.Labels[string(d)]
	}
	return data
}

// valuesMap is v keyed by json name, the names rules use in CEL too.
func valuesMap(v *quality.Values) map[string]any {
	rv := reflect.ValueOf(v).Elem()
	fields := valueFields()
	m := make(map[string]any, len(fields))
	for i, f := range fields {
		m[f.name] = rv.Field(i).Interface()
	}
	return m
}

// Render renders the rule's annotations and actions for one key. On
// error it still returns what rendered: a notification with one broken
// annotation is better than none. An action whose params fail to render
// or to validate (an empty target, a rate that is not a rate) is left out,
// since acting on the wrong thing is worse than not acting.
func (r *Rule) Render(in *Input) (map[string]string, []Action, error) {
	data := r.templateData(in)
	var errs []error
	ann := make(map[string]string, len(r.Annotations))
	for _, name := range slices.Sorted(maps.Keys(r.Annotations)) {
		var b strings.Builder
		if err := r.Annotations[name].Execute(&b, data); err != nil {
			errs = append(errs, fmt.Errorf("rule %s: annotation %s: %w", r.Alert, name, err))
			continue
		}
		ann[name] = b.String()
	}
	var actions []Action
	for i, a := range r.Actions {
		out := Action{Type: a.Type, Params: make(map[string]string, len(a.Params)), File: a.File, Line: a.Line}
		var actErrs []error
		for _, name := range slices.Sorted(maps.Keys(a.templates)) {
			var b strings.Builder
			if err := a.templates[name].Execute(&b, data); err != nil {
				actErrs = append(actErrs, err)
				continue
			}
			if err := checkParam(name, b.String()); err != nil {
				actErrs = append(actErrs, err)
				continue
			}
			out.Params[name] = b.String()
		}
		if len(actErrs) > 0 {
			errs = append(errs, fmt.Errorf("rule %s: actions[%d] %s: %w", r.Alert, i, a.Type, errors.Join(actErrs...)))
			continue
		}
		actions = append(actions, out)
	}
	return ann, actions, errors.Join(errs...)
}

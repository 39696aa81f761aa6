package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"vigia/internal/quality"
)

// Limits on what a rule may ask of the window store.
const (
	// maxBuckets bounds window/resolution: the store keeps buckets per
	// key and rule, and a day at one minute is as fine as a window
	// multiplied by 10,000 keys should get.
	maxBuckets = 1440
	// maxPeriod bounds windows and previous_<d> baselines: the evaluator
	// keeps recent history in memory; longer looks back belong to the
	// ClickHouse stage.
	maxPeriod = 7 * 24 * time.Hour
	// week is the offset of same_time_last_week.
	week = 7 * 24 * time.Hour
)

// Baseline kinds.
const (
	BaselineNone             = ""
	BaselinePrevious         = "previous"
	BaselineSameTimeLastWeek = "same_time_last_week"
)

// Set is every rule loaded from a set of files. It is immutable once
// loaded; a reload builds a new Set and swaps it in.
type Set struct {
	Groups []*Group
	Files  []string // the files loaded, in load order
}

// Group is a named list of rules evaluated together every Interval.
type Group struct {
	Name     string
	Interval time.Duration
	Rules    []*Rule
	File     string
	Line     int

	col int // of the name, for the duplicate-group problem
}

// Rule is one alerting rule. Durations are validated: Window and
// Resolution are whole seconds and Resolution divides Window.
type Rule struct {
	Alert string
	Group string
	By    []quality.Dim // the key, in the order written

	// Window is the period the condition looks at, ending at evaluation
	// time. Resolution is the bucket width the window store keeps it in.
	Window, Resolution time.Duration

	// BaselineKind says which period `baseline` is, with Baseline:
	//   "" (none): Baseline is 0 and rules cannot reference baseline;
	//   "previous": the Baseline-long period just before the window,
	//     [now-Window-Baseline, now-Window);
	//   "same_time_last_week": the window a week earlier,
	//     [now-Baseline-Window, now-Baseline) with Baseline = 168h.
	Baseline     time.Duration
	BaselineKind string

	// When fires the alert. ResolveWhen, when set, is what resolves a
	// firing alert (hysteresis); otherwise it resolves when When is false.
	When, ResolveWhen *Expr

	// MinVolume maps count metrics to minimums; see Guard.
	MinVolume map[string]int64

	For, KeepFiringFor time.Duration

	Labels      map[string]string
	Annotations map[string]*template.Template
	Actions     []Action // Params hold the templates as written; Render renders them

	File string
	Line int

	col    int // of the alert name, for the duplicate-alert problem
	guards []guard
}

// guard is one min_volume entry, resolved to a field getter at load so
// that Guard does not look metrics up by name per key.
type guard struct {
	get func(*quality.Values) int64
	min int64
}

// Guard reports whether v has the minimum volume the rule asks for. When
// it does not, When counts as false and (in Conditions) ResolveWhen as
// true: too little traffic is no evidence of a problem, and a firing alert
// whose traffic went away (often because its own action moved it)
// resolves, after KeepFiringFor, instead of firing forever.
func (r *Rule) Guard(v *quality.Values) bool {
	for _, g := range r.guards {
		if g.get(v) < g.min {
			return false
		}
	}
	return true
}

// Conditions evaluates the rule for one key with the min_volume semantics
// of Guard: fire is When, resolve is ResolveWhen (or !fire without one);
// below the minimum volume fire is false and resolve true. It is Fire and
// then Resolve, both evaluated.
func (r *Rule) Conditions(ctx context.Context, in *Input) (fire, resolve bool, err error) {
	if fire, err = r.Fire(ctx, in); err != nil {
		return false, false, err
	}
	if resolve, err = r.Resolve(ctx, in, fire); err != nil {
		return false, false, err
	}
	return fire, resolve, nil
}

// Fire evaluates When for one key: false below the minimum volume (Guard).
func (r *Rule) Fire(ctx context.Context, in *Input) (bool, error) {
	if !r.Guard(&in.Values) {
		return false, nil
	}
	return r.When.Eval(ctx, in)
}

// Resolve evaluates the resolve condition for one key whose When is fire:
// true below the minimum volume, ResolveWhen, or !fire without one. An
// alert reads it only while firing with When false, so the engine asks for
// it only then (see alert.Tracker).
func (r *Rule) Resolve(ctx context.Context, in *Input, fire bool) (bool, error) {
	if !r.Guard(&in.Values) {
		return true, nil
	}
	if r.ResolveWhen == nil {
		return !fire, nil
	}
	return r.ResolveWhen.Eval(ctx, in)
}

// UsesBaseline reports whether the rule's conditions read the baseline.
func (r *Rule) UsesBaseline() bool {
	return r.When != nil && r.When.UsesBaseline() || r.ResolveWhen != nil && r.ResolveWhen.UsesBaseline()
}

// AlertLabels returns the labels of the rule's alert for one key:
// alertname, the rule's labels, and the key's dimensions.
func (r *Rule) AlertLabels(key map[string]string) map[string]string {
	m := make(map[string]string, 1+len(r.Labels)+len(key))
	m["alertname"] = r.Alert
	maps.Copy(m, r.Labels)
	maps.Copy(m, key)
	return m
}

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)
)

// Load reads rules from paths, each a file or a directory (its *.yaml and
// *.yml files, sorted, not recursing, skipping rule unit tests named
// *_test.yaml or *.test.yaml and hidden files). On any problem it returns
// no Set and a Problems error listing every problem in every file, so that
// a bad reload keeps the running set and says everything that is wrong.
func Load(paths ...string) (*Set, error) {
	files, probs := expand(paths)
	set := &Set{Files: files}
	groupAt := map[string]*Group{}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			probs = append(probs, &Problem{File: path, Msg: pathErr(err)})
			continue
		}
		src := newSource(path, data)
		groups := src.parse(data)
		for _, g := range groups {
			// Alerts are known by group and name in state, silences and
			// the API, so group names are unique across all files.
			if prev, ok := groupAt[g.Name]; ok && g.Name != "" {
				src.at(g.Line, g.col, "group %q already defined at %s:%d", g.Name, prev.File, prev.Line)
				continue
			}
			groupAt[g.Name] = g
			set.Groups = append(set.Groups, g)
		}
		probs = append(probs, src.probs...)
	}
	if len(probs) > 0 {
		sortProblems(probs, files)
		return nil, probs
	}
	return set, nil
}

// expand turns paths into the list of files to load.
func expand(paths []string) ([]string, Problems) {
	var files []string
	var probs Problems
	seen := map[string]bool{}
	add := func(f string) {
		if c := filepath.Clean(f); !seen[c] {
			seen[c] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			probs = append(probs, &Problem{File: p, Msg: pathErr(err)})
			continue
		}
		if !fi.IsDir() {
			add(p) // named explicitly: loaded whatever its name
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			probs = append(probs, &Problem{File: p, Msg: pathErr(err)})
			continue
		}
		for _, e := range entries { // ReadDir sorts by name
			if e.IsDir() || !isRulesFile(e.Name()) {
				continue
			}
			add(filepath.Join(p, e.Name()))
		}
	}
	return files, probs
}

// pathErr is err without the path a PathError repeats: the path is
// already the problem's File.
func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func isRulesFile(name string) bool {
	if strings.HasPrefix(name, ".") { // editor swap and lock files
		return false
	}
	ext := filepath.Ext(name)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	base := strings.TrimSuffix(name, ext)
	return !strings.HasSuffix(base, "_test") && !strings.HasSuffix(base, ".test")
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse decodes one file into groups, recording every problem in s.
func (s *source) parse(data []byte) []*Group {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // an empty file is an empty rule set
			s.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		s.errf(&extra, "only one YAML document per file")
	} else if !errors.Is(err, io.EOF) {
		s.yamlError(err)
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil
	}
	m := s.fields(root, "rules file", "groups")
	if m == nil {
		return nil
	}
	list := s.list(m["groups"], "groups")
	var groups []*Group
	for _, n := range list {
		if g := s.group(n); g != nil {
			groups = append(groups, g)
		}
	}
	return groups
}

func (s *source) yamlError(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") {
			// yaml.v3 reports parser errors (these) with a 0-based line
			// and scanner errors with a 1-based one.
			line++
		}
		col := 1
		if line >= 1 && line <= len(s.lines) { // yaml.v3 gives no column: point at the line's text
			for col-1 < len(s.lines[line-1]) && s.lines[line-1][col-1] == ' ' {
				col++
			}
		}
		s.at(line, col, "yaml: %s", m[2])
		return
	}
	s.probs = append(s.probs, &Problem{File: s.path, Msg: msg})
}

// field is a key of a mapping with its value.
type field struct{ key, val *yaml.Node }

// fields reads a mapping strictly: a key not in known is a problem, and so
// is a repeated key. It returns nil (and records a problem) when n is not
// a mapping.
func (s *source) fields(n *yaml.Node, what string, known ...string) map[string]field {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		s.errf(n, "%s: want a mapping, got %s", what, kindOf(n))
		return nil
	}
	out := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if !slices.Contains(known, k.Value) {
			msg := fmt.Sprintf("unknown key %q in %s", k.Value, what)
			if near := nearest(k.Value, known); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
			}
			s.errf(k, "%s", msg)
			continue
		}
		if prev, dup := out[k.Value]; dup {
			s.errf(k, "%s: %s set twice (first at line %d)", what, k.Value, prev.key.Line)
			continue
		}
		out[k.Value] = field{k, v}
	}
	return out
}

// list reads a sequence; a missing or null one is empty.
func (s *source) list(f field, what string) []*yaml.Node {
	if f.val == nil || isNull(f.val) {
		return nil
	}
	if f.val.Kind != yaml.SequenceNode {
		s.errf(f.val, "%s: want a list, got %s", what, kindOf(f.val))
		return nil
	}
	return f.val.Content
}

// scalar returns a scalar's text; ok is false (with a problem recorded)
// for anything else.
func (s *source) scalar(f field, what string) (string, bool) {
	if f.val.Kind != yaml.ScalarNode {
		s.errf(f.val, "%s: want a scalar, got %s", what, kindOf(f.val))
		return "", false
	}
	return f.val.Value, true
}

// duration reads a duration field; a missing or null one is absent.
func (s *source) duration(f field, what string) (d time.Duration, set, ok bool) {
	if f.val == nil || isNull(f.val) {
		return 0, false, true
	}
	text, ok := s.scalar(f, what)
	if !ok {
		return 0, true, false
	}
	d, err := parseDuration(text)
	if err != nil {
		s.errf(f.val, "%s: %v", what, err)
		return 0, true, false
	}
	return d, true, true
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (s *source) group(n *yaml.Node) *Group {
	m := s.fields(n, "group", "name", "interval", "rules")
	if m == nil {
		return nil
	}
	n = deref(n)
	g := &Group{File: s.path, Line: n.Line}
	if f, ok := m["name"]; !ok || isNull(f.val) {
		s.errf(n, "group: name is required")
	} else if name, ok := s.scalar(f, "name"); ok {
		g.Name = name
		g.Line, g.col = f.val.Line, f.val.Column // duplicates point at the name
		if !groupNameRE.MatchString(name) {
			s.errf(f.val, "name: %q is not a valid group name (letters, digits, _ . -)", name)
		}
	}
	if f, ok := m["interval"]; !ok || isNull(f.val) {
		s.errf(n, "group: interval is required")
	} else if d, _, ok := s.duration(f, "interval"); ok {
		if d < time.Second {
			s.errf(f.val, "interval: must be at least 1s, got %s", d)
		} else {
			g.Interval = d
		}
	}
	items := s.list(m["rules"], "rules")
	if f := m["rules"]; f.val == nil || isNull(f.val) || f.val.Kind == yaml.SequenceNode && len(items) == 0 {
		// A group without rules is almost always an indentation slip.
		s.errf(n, "group: at least one rule is required")
	}
	names := map[string]int{}
	for _, item := range items {
		r := s.rule(item, g)
		if r == nil {
			continue
		}
		if r.Alert != "" {
			if line, dup := names[r.Alert]; dup {
				s.at(r.Line, r.col, "alert %q already defined in group %s at line %d", r.Alert, g.Name, line)
				continue
			}
			names[r.Alert] = r.Line
		}
		g.Rules = append(g.Rules, r)
	}
	return g
}

var ruleKeys = []string{"alert", "by", "window", "resolution", "baseline", "when", "resolve_when",
	"min_volume", "for", "keep_firing_for", "labels", "annotations", "actions"}

// rule reads one rule. Every field is checked even when an earlier one is
// wrong; checks that depend on another field (CEL on baseline, templates
// on by) are skipped when that field is itself wrong, so one mistake gives
// one problem.
func (s *source) rule(n *yaml.Node, g *Group) *Rule {
	m := s.fields(n, "rule", ruleKeys...)
	if m == nil {
		return nil
	}
	n = deref(n)
	r := &Rule{Group: g.Name, File: s.path, Line: n.Line}

	if f, ok := m["alert"]; !ok || isNull(f.val) {
		s.errf(n, "rule: alert is required")
	} else if name, ok := s.scalar(f, "alert"); ok {
		r.Alert = name
		r.Line, r.col = f.val.Line, f.val.Column
		if !nameRE.MatchString(name) {
			s.errf(f.val, "alert: %q is not a valid name ([A-Za-z_][A-Za-z0-9_]*)", name)
		}
	}

	byOK := s.by(m, n, r)

	window := s.window(m, n, g, r)
	baselineOK := s.baseline(m, r)
	s.resolution(m, g, r, window)

	if f, ok := m["for"]; ok {
		r.For, _, _ = s.duration(f, "for")
	}
	if f, ok := m["keep_firing_for"]; ok {
		r.KeepFiringFor, _, _ = s.duration(f, "keep_firing_for")
	}

	s.minVolume(m, r)
	labelsOK := s.labels(m, r)

	// What templates and `labels` can see, when by and labels are valid.
	var keys []string
	if byOK && labelsOK {
		keys = slices.Sorted(maps.Keys(r.AlertLabels(dimMap(r.By))))
	}
	tc := tmplContext{keyDims: r.By, labelKeys: keys, hasBaseline: r.BaselineKind != "" || !baselineOK}
	s.annotations(m, r, tc)
	s.actions(m, r, tc)

	ec := exprContext{
		rule:        r.Alert,
		hasBaseline: r.BaselineKind != "" || !baselineOK,
		labelKeys:   keys,
		extraLabels: r.AlertLabels(nil),
	}
	if f, ok := m["when"]; !ok || isNull(f.val) {
		s.errf(n, "rule: when is required")
	} else {
		ec.field = "when"
		r.When = s.expr(f, ec)
	}
	if f, ok := m["resolve_when"]; ok && !isNull(f.val) {
		ec.field = "resolve_when"
		r.ResolveWhen = s.expr(f, ec)
	}
	return r
}

func dimMap(dims []quality.Dim) map[string]string {
	m := make(map[string]string, len(dims))
	for _, d := range dims {
		m[string(d)] = ""
	}
	return m
}

func dimNames() string {
	names := make([]string, len(quality.Dims))
	for i, d := range quality.Dims {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

func (s *source) by(m map[string]field, n *yaml.Node, r *Rule) bool {
	f, ok := m["by"]
	if !ok || isNull(f.val) {
		s.errf(n, "rule: by is required (one or more of %s)", dimNames())
		return false
	}
	if f.val.Kind != yaml.SequenceNode {
		s.errf(f.val, "by: want a list of dimensions, got %s", kindOf(f.val))
		return false
	}
	if len(f.val.Content) == 0 {
		s.errf(f.val, "by: at least one dimension is required (%s)", dimNames())
		return false
	}
	good := true
	for _, item := range f.val.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode {
			s.errf(item, "by: want a dimension name, got %s", kindOf(item))
			good = false
			continue
		}
		d := quality.Dim(item.Value)
		switch {
		case !slices.Contains(quality.Dims, d):
			msg := fmt.Sprintf("by: unknown dimension %q", item.Value)
			if near := nearest(item.Value, strings.Split(dimNames(), ", ")); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			} else {
				msg += " (one of " + dimNames() + ")"
			}
			s.errf(item, "%s", msg)
			good = false
		case slices.Contains(r.By, d):
			s.errf(item, "by: %s listed twice", d)
			good = false
		default:
			r.By = append(r.By, d)
		}
	}
	return good
}

// window reads the window; 0 when it is missing or wrong.
func (s *source) window(m map[string]field, n *yaml.Node, g *Group, r *Rule) time.Duration {
	f, ok := m["window"]
	if !ok || isNull(f.val) {
		s.errf(n, "rule: window is required")
		return 0
	}
	d, _, ok := s.duration(f, "window")
	if !ok {
		return 0
	}
	switch {
	case d <= 0:
		s.errf(f.val, "window: must be positive")
	case d%time.Second != 0:
		s.errf(f.val, "window: must be a whole number of seconds, got %s", d)
	case d > maxPeriod:
		s.errf(f.val, "window: at most %s, got %s", fmtDuration(maxPeriod), fmtDuration(d))
	case g.Interval > 0 && d < g.Interval:
		// Events between two evaluations would never be in any window.
		s.errf(f.val, "window: %s is shorter than the group interval %s", fmtDuration(d), fmtDuration(g.Interval))
	default:
		r.Window = d
		return d
	}
	return 0
}

// resolution sets r.Resolution, explicit or by default; window is 0 when
// the window itself is wrong, and then only the resolution's own syntax
// is checked.
//
// The default is the largest whole number of seconds that divides the
// window and the baseline (the previous_<d> period, or the week of
// same_time_last_week, so that the baseline is made of whole buckets too)
// and is at most max(window/15, group interval). At least 15 buckets keep
// the window's trailing edge within 1/15 of its length; buckets finer than
// the interval buy nothing, because the window only moves once per
// interval.
func (s *source) resolution(m map[string]field, g *Group, r *Rule, window time.Duration) {
	f, ok := m["resolution"]
	if !ok || isNull(f.val) {
		if window == 0 {
			return
		}
		r.Resolution = defaultResolution(window, g.Interval, r.Baseline)
		if n := window / r.Resolution; n > maxBuckets {
			s.errf(m["window"].val, "window: %s makes %d buckets at the default resolution %s (at most %d); set resolution or use a rounder window",
				fmtDuration(window), n, fmtDuration(r.Resolution), maxBuckets)
		}
		return
	}
	d, _, ok := s.duration(f, "resolution")
	switch {
	case !ok:
	case d < time.Second || d%time.Second != 0:
		s.errf(f.val, "resolution: must be a whole number of seconds, at least 1s, got %s", d)
	case window == 0:
	case window%d != 0:
		s.errf(f.val, "resolution: %s does not divide the window %s", fmtDuration(d), fmtDuration(window))
	case window/d > maxBuckets:
		s.errf(f.val, "resolution: %s makes %d buckets of the window %s (at most %d)", fmtDuration(d), window/d, fmtDuration(window), maxBuckets)
	case r.BaselineKind == BaselinePrevious && r.Baseline%d != 0:
		s.errf(f.val, "resolution: %s does not divide the baseline period %s", fmtDuration(d), fmtDuration(r.Baseline))
	case r.BaselineKind == BaselineSameTimeLastWeek && r.Baseline%d != 0:
		s.errf(f.val, "resolution: %s does not divide the week of same_time_last_week", fmtDuration(d))
	default:
		r.Resolution = d
	}
}

// defaultResolution: see resolution. baseline is Rule.Baseline (0 when
// there is none).
func defaultResolution(window, interval, baseline time.Duration) time.Duration {
	target := min(max(window/15, interval), window)
	w := int64(window / time.Second)
	if baseline > 0 {
		w = gcd(w, int64(baseline/time.Second))
	}
	for sec := int64(target / time.Second); sec > 1; sec-- {
		if w%sec == 0 {
			return time.Duration(sec) * time.Second
		}
	}
	return time.Second
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// baseline reads the baseline; ok is false when it is present but wrong,
// so that CEL does not also complain that baseline is not configured.
func (s *source) baseline(m map[string]field, r *Rule) bool {
	f, ok := m["baseline"]
	if !ok || isNull(f.val) {
		return true
	}
	text, ok := s.scalar(f, "baseline")
	if !ok {
		return false
	}
	if text == BaselineSameTimeLastWeek {
		r.BaselineKind, r.Baseline = BaselineSameTimeLastWeek, week
		return true
	}
	rest, found := strings.CutPrefix(text, "previous_")
	if !found {
		s.errf(f.val, "baseline: want previous_<duration> (like previous_1h) or same_time_last_week, got %q", text)
		return false
	}
	d, err := parseDuration(rest)
	switch {
	case err != nil:
		s.errf(f.val, "baseline: %v", err)
		return false
	case d < time.Second || d%time.Second != 0:
		s.errf(f.val, "baseline: the previous period must be a whole number of seconds, at least 1s")
		return false
	case d > maxPeriod:
		s.errf(f.val, "baseline: the previous period is at most %s, got %s", fmtDuration(maxPeriod), fmtDuration(d))
		return false
	}
	r.BaselineKind, r.Baseline = BaselinePrevious, d
	return true
}

func (s *source) minVolume(m map[string]field, r *Rule) {
	f, ok := m["min_volume"]
	if !ok || isNull(f.val) {
		return
	}
	if f.val.Kind != yaml.MappingNode {
		s.errf(f.val, "min_volume: want a mapping of count metric to minimum, got %s", kindOf(f.val))
		return
	}
	counts := countMetrics()
	r.MinVolume = map[string]int64{}
	for i := 0; i+1 < len(f.val.Content); i += 2 {
		k, v := f.val.Content[i], deref(f.val.Content[i+1])
		name := k.Value
		if !slices.Contains(counts, name) {
			if _, isMetric := fieldIndex()[name]; isMetric {
				s.errf(k, "min_volume: %s is not a count (min_volume takes %s)", name, strings.Join(counts, ", "))
			} else if near := nearest(name, counts); near != "" {
				s.errf(k, "min_volume: unknown metric %q; did you mean %q?", name, near)
			} else {
				s.errf(k, "min_volume: unknown metric %q (counts: %s)", name, strings.Join(counts, ", "))
			}
			continue
		}
		if _, dup := r.MinVolume[name]; dup {
			s.errf(k, "min_volume: %s set twice", name)
			continue
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil || n < 0 {
			got := kindOf(v)
			if v.Kind == yaml.ScalarNode {
				got = v.Value
			}
			s.errf(v, "min_volume: %s: want a non-negative integer, got %s", name, got)
			continue
		}
		r.MinVolume[name] = n
		r.guards = append(r.guards, guard{min: n, get: countGetter(name)})
	}
}

func (s *source) labels(m map[string]field, r *Rule) bool {
	f, ok := m["labels"]
	if !ok || isNull(f.val) {
		return true
	}
	if f.val.Kind != yaml.MappingNode {
		s.errf(f.val, "labels: want a mapping, got %s", kindOf(f.val))
		return false
	}
	good := true
	r.Labels = map[string]string{}
	for i := 0; i+1 < len(f.val.Content); i += 2 {
		k, v := f.val.Content[i], deref(f.val.Content[i+1])
		name := k.Value
		switch {
		case !nameRE.MatchString(name):
			s.errf(k, "labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
		case strings.HasPrefix(name, "__"):
			s.errf(k, "labels: %q: names starting with __ are reserved", name)
		case name == "alertname":
			s.errf(k, "labels: alertname is set from alert and cannot be overridden")
		case slices.Contains(r.By, quality.Dim(name)):
			s.errf(k, "labels: %s is a key dimension of this rule and cannot be overridden", name)
		case v.Kind != yaml.ScalarNode || isNull(v):
			s.errf(v, "labels: %s: want a string, got %s", name, kindOf(v))
		default:
			if _, dup := r.Labels[name]; dup {
				s.errf(k, "labels: %s set twice", name)
			} else {
				r.Labels[name] = v.Value
				continue
			}
		}
		good = false
	}
	return good
}

// expr compiles a CEL field, mapping issues to file positions.
func (s *source) expr(f field, c exprContext) *Expr {
	text, ok := s.scalar(f, c.field)
	if !ok {
		return nil
	}
	e, issues := compileExpr(text, c)
	if len(issues) > 0 {
		positions := s.scalarPositions(f.val)
		lines := strings.Split(text, "\n")
		for _, is := range issues {
			off := 0
			for i := 0; i < is.line-1 && i < len(lines); i++ {
				off += len([]rune(lines[i])) + 1
			}
			s.atOffset(positions, off+is.col, "%s: %s", c.field, is.msg)
		}
		return nil
	}
	e.File, e.Line, e.Col = s.path, f.val.Line, f.val.Column
	return e
}

// nearest returns the candidate within edit distance 2 of s, if exactly
// one is closest, for "did you mean" hints.
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		} else if d == bestD {
			best = ""
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseDuration is time.ParseDuration plus d (24h) and w (7d), which rule
// authors use for windows and baselines; "0" is zero.
func parseDuration(text string) (time.Duration, error) {
	bad := fmt.Errorf("not a duration (like 10s, 15m, 1h, 1d): %q", text)
	if text == "0" {
		return 0, nil
	}
	if text == "" || text[0] == '-' || text[0] == '+' {
		return 0, bad
	}
	var total time.Duration
	rest := text
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, bad
		}
		var part time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, bad
			}
			hours := 24.0
			if unit == "w" {
				hours *= 7
			}
			f := n * hours * float64(time.Hour)
			if f > float64(100*365*24*time.Hour) {
				return 0, bad // would overflow; far beyond any window anyway
			}
			part = time.Duration(f)
		default:
			var err error
			part, err = time.ParseDuration(num + unit)
			if err != nil {
				return 0, bad
			}
		}
		if part > 100*365*24*time.Hour-total {
			return 0, bad // checked before adding: a sum past int64 would wrap
		}
		total += part
		if total < 0 || total > 100*365*24*time.Hour {
			return 0, bad
		}
	}
	return total, nil
}

// fmtDuration prints 1h rather than Go's 1h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

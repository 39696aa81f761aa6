// Package simulate is Vigia's incident simulator: it plays a scenario file
// against a running Vigia and reports how Vigia responded.
//
// The simulator is the business's sending application and Meta at once. For
// every message it asks the control API which number or channel to use
// (pick), exactly as a sender would, so a failover changes where its
// traffic goes; it then plays what Meta would send back about that
// message (sent, delivered, read, failures with their error codes, replies,
// opt-outs, template and quality changes) as correctly signed webhooks to
// the real ingest over HTTP. Incidents declared in the scenario change
// what happens to the messages on the bad route only (a number, a
// template, a WABA), from their start offset on.
//
// Time is the scenario's: offsets, durations, rates and status delays are
// in scenario time, played speed times faster than the wall clock. Vigia
// itself runs on the wall clock (its rules' windows are wall-clock
// windows), so the report gives Vigia's reaction times in wall-clock
// seconds; docs/simulator.md explains what that means for fast runs.
//
// At the end it reports, per incident: when the first alert on the
// incident's key fired (the evaluator's alerts API), when the route first
// changed for it (the control API's audit log), and how many of its own
// messages went out on the bad route after the detection.
package simulate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"vigia/internal/rules"
)

// Incident types.
const (
	NumberSpamLimited = "number_spam_limited" // 131048 on one number
	NumberBlocked     = "number_blocked"      // 368 on one number
	DeliveryCollapse  = "delivery_collapse"   // sent, then failed 131026, on one number
	TemplatePaused    = "template_paused"     // message_template_status_update PAUSED; sends of it fail 132015
	QualityDowngrade  = "quality_downgrade"   // phone_number_quality_update DOWNGRADE
	PlatformOutage    = "platform_outage"     // every number (of a WABA, or all) fails
	OptOutSpike       = "optout_spike"        // STOP replies and 131050 on one template
	ThroughputErrors  = "throughput_errors"   // a campaign peak and 130429 on one number
)

// IncidentTypes lists the incident types, in documentation order.
var IncidentTypes = []string{NumberSpamLimited, NumberBlocked, DeliveryCollapse, TemplatePaused,
	QualityDowngrade, PlatformOutage, OptOutSpike, ThroughputErrors}

// Scenario is a parsed, validated scenario file. docs/simulator.md is its
// reference.
type Scenario struct {
	Name        string     `yaml:"name"`
	Description string     `yaml:"description"`
	Speed       float64    `yaml:"speed"`
	Duration    Duration   `yaml:"duration"`
	Seed        uint64     `yaml:"seed"`
	Target      Target     `yaml:"target"`
	WABAs       []WABA     `yaml:"wabas"`
	Templates   []Template `yaml:"templates"`
	UseCases    []UseCase  `yaml:"use_cases"`
	Traffic     Traffic    `yaml:"traffic"`
	Incidents   []Incident `yaml:"incidents"`

	Path string `yaml:"-"` // the file it was read from, for messages
}

// Target says where the Vigia under test runs and how to talk to it.
// Secrets may be given by the name of an environment variable instead
// (*_env); flags of `vigia simulate` override both.
type Target struct {
	Ingest       string `yaml:"ingest"`    // base URL of ingest: /webhooks/whatsapp is posted to
	Control      string `yaml:"control"`   // base URL of the control API
	Evaluator    string `yaml:"evaluator"` // base URL of the evaluator (alerts API); empty: no detection times
	AppSecret    string `yaml:"app_secret"`
	AppSecretEnv string `yaml:"app_secret_env"`
	PickToken    string `yaml:"pick_token"`
	PickTokenEnv string `yaml:"pick_token_env"`
	ReadToken    string `yaml:"read_token"` // scope read (or operate): the audit log; empty: no switch times
	ReadTokenEnv string `yaml:"read_token_env"`
}

// WABA is a WhatsApp Business Account and its numbers.
type WABA struct {
	ID      string   `yaml:"id"`
	Numbers []Number `yaml:"numbers"`
}

// Number is a phone number of a WABA.
type Number struct {
	ID      string `yaml:"id"`
	Display string `yaml:"display"`
}

// Template is a message template the use cases send.
type Template struct {
	Name     string `yaml:"name"`
	Category string `yaml:"category"` // marketing, utility, authentication
	Language string `yaml:"language"`
	ID       string `yaml:"id"` // Meta's template id (digits); derived from the name when empty
}

// UseCase is a stream of messages the simulated sender sends: pick asks
// control where each goes.
type UseCase struct {
	Name      string   `yaml:"name"`
	Templates []string `yaml:"templates"`
	Rate      Rate     `yaml:"rate"` // messages per second of scenario time
	Campaign  string   `yaml:"campaign"`
}

// Traffic is how messages fare when no incident touches them.
type Traffic struct {
	Delivered      *float64  `yaml:"delivered"` // share of accepted messages delivered
	Read           *float64  `yaml:"read"`      // share of delivered messages read
	Failed         *float64  `yaml:"failed"`    // share failing for ordinary reasons
	Reply          *float64  `yaml:"reply"`     // share of delivered messages answered
	OptOut         *float64  `yaml:"opt_out"`   // share of delivered messages answered STOP
	SentAfter      *Duration `yaml:"sent_after"`
	DeliveredAfter *Span     `yaml:"delivered_after"`
	ReadAfter      *Span     `yaml:"read_after"`
	ReplyAfter     *Span     `yaml:"reply_after"`
	Recipients     int       `yaml:"recipients"` // size of the recipient pool
}

// Incident is one thing going wrong, from At for For (to the end when
// For is zero).
type Incident struct {
	Name     string   `yaml:"name"`
	Type     string   `yaml:"type"`
	At       Duration `yaml:"at"`
	For      Duration `yaml:"for"`
	Number   string   `yaml:"number"`   // number incidents
	Template string   `yaml:"template"` // template incidents
	WABA     string   `yaml:"waba"`     // platform_outage: one WABA (default: all)
	UseCase  string   `yaml:"use_case"` // throughput_errors: the use case whose campaign peaks
	Fraction *float64 `yaml:"fraction"` // share of the affected messages hit
	Code     int      `yaml:"code"`     // error code (each type has its default)
	Factor   float64  `yaml:"factor"`   // throughput_errors: traffic multiplier of the peak
	Limit    string   `yaml:"limit"`    // quality_downgrade: the new messaging limit tier
	Expect   Expect   `yaml:"expect"`

	Line int `yaml:"-"` // in the scenario file
}

// Expect is what a drill expects of Vigia for an incident. Unmet
// expectations make `vigia simulate` exit 1. The durations are wall-clock
// time after the incident started, like Vigia's own reaction (its rules
// run on the wall clock whatever the scenario's speed).
type Expect struct {
	Alert        string   `yaml:"alert"`  // the alert that should detect it (default: any on its key)
	Action       string   `yaml:"action"` // the audit action that counts as the switch (default by type)
	DetectWithin Duration `yaml:"detect_within"`
	SwitchWithin Duration `yaml:"switch_within"`
	NoSwitch     bool     `yaml:"no_switch"` // the incident must not move traffic (advisories only)
}

// Duration is a duration in scenario time: 90s, 5m, 1h, 1d.
type Duration time.Duration

// UnmarshalYAML parses a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := rules.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Rate is messages per second, written 5/s, 300/m, 1000/h or a bare
// number (per second).
type Rate float64

// UnmarshalYAML parses a rate.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*r = Rate(v)
		return nil
	}
	v, err := rules.ParseRate(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: rate: %v", n.Line, err)}}
	}
	*r = Rate(v)
	return nil
}

// Span is a range of durations [Min, Max] a delay is drawn from, written
// [2s, 10s] or a single duration.
type Span struct{ Min, Max time.Duration }

// UnmarshalYAML parses a span.
func (s *Span) UnmarshalYAML(n *yaml.Node) error {
	bad := func(err error) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := rules.ParseDuration(n.Value)
		if err != nil {
			return bad(err)
		}
		s.Min, s.Max = v, v
	case yaml.SequenceNode:
		if len(n.Content) != 2 {
			return bad(errors.New("a delay range is [min, max]"))
		}
		lo, err := rules.ParseDuration(n.Content[0].Value)
		if err != nil {
			return bad(err)
		}
		hi, err := rules.ParseDuration(n.Content[1].Value)
		if err != nil {
			return bad(err)
		}
		if hi < lo {
			return bad(fmt.Errorf("delay range [%s, %s]: max below min", lo, hi))
		}
		s.Min, s.Max = lo, hi
	default:
		return bad(errors.New("a delay is a duration or [min, max]"))
	}
	return nil
}

// Defaults of a scenario's traffic and incidents.
var (
	defaultTraffic = Traffic{
		Delivered: ptr(0.97), Read: ptr(0.6), Failed: ptr(0.01), Reply: ptr(0.03), OptOut: ptr(0.002),
		SentAfter:      ptr(Duration(time.Second)),
		DeliveredAfter: &Span{2 * time.Second, 12 * time.Second},
		ReadAfter:      &Span{15 * time.Second, 3 * time.Minute},
		ReplyAfter:     &Span{30 * time.Second, 4 * time.Minute},
		Recipients:     20000,
	}
	defaultCode = map[string]int{NumberSpamLimited: 131048, NumberBlocked: 368, DeliveryCollapse: 131026,
		TemplatePaused: 132015, PlatformOutage: 131016, OptOutSpike: 131050, ThroughputErrors: 130429}
	defaultFraction = map[string]float64{NumberSpamLimited: 0.8, NumberBlocked: 1, DeliveryCollapse: 0.7,
		TemplatePaused: 1, QualityDowngrade: 0, PlatformOutage: 0.9, OptOutSpike: 0.25, ThroughputErrors: 0.5}
)

func ptr[T any](v T) *T { return &v }

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates a scenario's content; path is for messages. Every
// problem is reported, each with path:line.
func Parse(path string, data []byte) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.Path = path
	lines := &lineFinder{root: &root}
	for i := range s.Incidents {
		s.Incidents[i].Line = lines.at("incidents", i)
	}
	s.applyDefaults()
	if err := s.validate(lines); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) applyDefaults() {
	if s.Speed == 0 {
		s.Speed = 1
	}
	d, t := defaultTraffic, &s.Traffic
	if t.Delivered == nil {
		t.Delivered = d.Delivered
	}
	if t.Read == nil {
		t.Read = d.Read
	}
	if t.Failed == nil {
		t.Failed = d.Failed
	}
	if t.Reply == nil {
		t.Reply = d.Reply
	}
	if t.OptOut == nil {
		t.OptOut = d.OptOut
	}
	if t.SentAfter == nil {
		t.SentAfter = d.SentAfter
	}
	if t.DeliveredAfter == nil {
		t.DeliveredAfter = d.DeliveredAfter
	}
	if t.ReadAfter == nil {
		t.ReadAfter = d.ReadAfter
	}
	if t.ReplyAfter == nil {
		t.ReplyAfter = d.ReplyAfter
	}
	if t.Recipients == 0 {
		t.Recipients = d.Recipients
	}
	for i := range s.Templates {
		if s.Templates[i].Language == "" {
			s.Templates[i].Language = "pt_BR"
		}
		if s.Templates[i].Category == "" {
			s.Templates[i].Category = "utility"
		}
	}
	for i := range s.Incidents {
		in := &s.Incidents[i]
		if in.Name == "" {
			in.Name = fmt.Sprintf("%s #%d", in.Type, i+1)
		}
		if in.Code == 0 {
			in.Code = defaultCode[in.Type]
		}
		if in.Fraction == nil {
			f := defaultFraction[in.Type]
			in.Fraction = &f
		}
		if in.Type == ThroughputErrors && in.Factor == 0 {
			in.Factor = 3
		}
		if in.Type == QualityDowngrade && in.Limit == "" {
			in.Limit = "TIER_1K"
		}
	}
}

// lineFinder finds the line of a node by its path of keys and indexes.
type lineFinder struct{ root *yaml.Node }

func (l *lineFinder) at(path ...any) int {
	if len(l.root.Content) == 0 {
		return 0
	}
	n := l.root.Content[0]
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return n.Line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return n.Line
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return n.Line
			}
			n = n.Content[k]
		}
	}
	return n.Line
}

func (s *Scenario) validate(lines *lineFinder) error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", s.Path, line, fmt.Sprintf(format, args...)))
	}
	if s.Name == "" {
		bad(lines.at(), "name: required")
	}
	if s.Speed <= 0 || s.Speed > 1000 {
		bad(lines.at("speed"), "speed: must be above 0 and at most 1000, got %g", s.Speed)
	}
	if s.Duration <= 0 {
		bad(lines.at("duration"), "duration: required, a positive duration of scenario time (like 5m)")
	}
	numbers := map[string]bool{}
	if len(s.WABAs) == 0 {
		bad(lines.at("wabas"), "wabas: at least one WABA with its numbers is required")
	}
	wabas := map[string]bool{}
	for i, w := range s.WABAs {
		if !isDigits(w.ID) {
			bad(lines.at("wabas", i), "wabas[%d].id: must be the WABA id (digits), got %q", i, w.ID)
		}
		if wabas[w.ID] {
			bad(lines.at("wabas", i), "wabas[%d]: WABA %s declared twice", i, w.ID)
		}
		wabas[w.ID] = true
		if len(w.Numbers) == 0 {
			bad(lines.at("wabas", i), "wabas[%d].numbers: at least one number is required", i)
		}
		for j, n := range w.Numbers {
			line := lines.at("wabas", i, "numbers", j)
			if !isDigits(n.ID) {
				bad(line, "wabas[%d].numbers[%d].id: must be the phone number id (digits), got %q", i, j, n.ID)
			}
			if digits(n.Display) == "" {
				bad(line, "wabas[%d].numbers[%d].display: required (the number as +CC ...)", i, j)
			}
			if numbers[n.ID] {
				bad(line, "number %s declared twice", n.ID)
			}
			numbers[n.ID] = true
		}
	}
	templates := map[string]bool{}
	for i, t := range s.Templates {
		line := lines.at("templates", i)
		if t.Name == "" {
			bad(line, "templates[%d].name: required", i)
		}
		if templates[t.Name] {
			bad(line, "template %q declared twice", t.Name)
		}
		templates[t.Name] = true
		if !slices.Contains([]string{"marketing", "utility", "authentication", "service"}, t.Category) {
			bad(line, "templates[%d].category: must be marketing, utility, authentication or service, got %q", i, t.Category)
		}
		if t.ID != "" && !isDigits(t.ID) {
			bad(line, "templates[%d].id: must be digits, got %q", i, t.ID)
		}
	}
	if len(s.UseCases) == 0 {
		bad(lines.at("use_cases"), "use_cases: at least one use case is required")
	}
	useCases := map[string]bool{}
	for i, u := range s.UseCases {
		line := lines.at("use_cases", i)
		if u.Name == "" {
			bad(line, "use_cases[%d].name: required (the use case of the routes file)", i)
		}
		if useCases[u.Name] {
			bad(line, "use case %q declared twice", u.Name)
		}
		useCases[u.Name] = true
		if u.Rate <= 0 {
			bad(line, "use_cases[%d].rate: required, messages per second of scenario time (like 5/s)", i)
		}
		if len(u.Templates) == 0 {
			bad(line, "use_cases[%d].templates: at least one template is required", i)
		}
		for _, t := range u.Templates {
			if !templates[t] {
				bad(line, "use_cases[%d].templates: template %q is not declared in templates", i, t)
			}
		}
	}
	t := s.Traffic
	for _, f := range []struct {
		name string
		v    float64
	}{{"delivered", *t.Delivered}, {"read", *t.Read}, {"failed", *t.Failed}, {"reply", *t.Reply}, {"opt_out", *t.OptOut}} {
		if f.v < 0 || f.v > 1 {
			bad(lines.at("traffic", f.name), "traffic.%s: a share between 0 and 1, got %g", f.name, f.v)
		}
	}
	if *t.Reply+*t.OptOut > 1 {
		bad(lines.at("traffic"), "traffic: reply + opt_out must not exceed 1")
	}
	if t.Recipients < 1 {
		bad(lines.at("traffic", "recipients"), "traffic.recipients: must be at least 1")
	}
	for i := range s.Incidents {
		s.validateIncident(i, numbers, templates, wabas, useCases, bad)
	}
	return errors.Join(errs...)
}

func (s *Scenario) validateIncident(i int, numbers, templates, wabas, useCases map[string]bool, bad func(int, string, ...any)) {
	in := s.Incidents[i]
	line := in.Line
	where := fmt.Sprintf("incidents[%d]", i)
	if !slices.Contains(IncidentTypes, in.Type) {
		bad(line, "%s.type: must be one of %s, got %q", where, strings.Join(IncidentTypes, ", "), in.Type)
		return
	}
	if in.At < 0 || in.At >= s.Duration {
		bad(line, "%s.at: must fall within the scenario's duration (%s), got %s", where, s.Duration.D(), in.At.D())
	}
	if in.For < 0 {
		bad(line, "%s.for: must not be negative", where)
	}
	if f := *in.Fraction; f < 0 || f > 1 {
		bad(line, "%s.fraction: a share between 0 and 1, got %g", where, f)
	}
	needNumber := in.Type == NumberSpamLimited || in.Type == NumberBlocked || in.Type == DeliveryCollapse ||
		in.Type == QualityDowngrade || in.Type == ThroughputErrors
	needTemplate := in.Type == TemplatePaused || in.Type == OptOutSpike
	switch {
	case needNumber && in.Number == "":
		bad(line, "%s.number: required for %s", where, in.Type)
	case needNumber && !numbers[in.Number]:
		bad(line, "%s.number: %s is not declared in wabas", where, in.Number)
	case !needNumber && in.Number != "":
		bad(line, "%s.number: not used by %s", where, in.Type)
	}
	switch {
	case needTemplate && in.Template == "":
		bad(line, "%s.template: required for %s", where, in.Type)
	case needTemplate && !templates[in.Template]:
		bad(line, "%s.template: %q is not declared in templates", where, in.Template)
	case !needTemplate && in.Template != "":
		bad(line, "%s.template: not used by %s", where, in.Type)
	}
	if in.WABA != "" && (in.Type != PlatformOutage || !wabas[in.WABA]) {
		if in.Type != PlatformOutage {
			bad(line, "%s.waba: only platform_outage takes a waba", where)
		} else {
			bad(line, "%s.waba: %s is not declared in wabas", where, in.WABA)
		}
	}
	if in.UseCase != "" && (in.Type != ThroughputErrors || !useCases[in.UseCase]) {
		if in.Type != ThroughputErrors {
			bad(line, "%s.use_case: only throughput_errors takes a use_case (the campaign that peaks)", where)
		} else {
			bad(line, "%s.use_case: %q is not declared in use_cases", where, in.UseCase)
		}
	}
	if in.Factor != 0 && in.Type != ThroughputErrors {
		bad(line, "%s.factor: only throughput_errors takes a factor", where)
	}
	if in.Factor < 0 || in.Factor > 100 {
		bad(line, "%s.factor: between 1 and 100, got %g", where, in.Factor)
	}
	if in.Limit != "" && in.Type != QualityDowngrade {
		bad(line, "%s.limit: only quality_downgrade takes a limit", where)
	}
	if in.Code < 0 {
		bad(line, "%s.code: must be a WhatsApp error code", where)
	}
	if in.Expect.DetectWithin < 0 || in.Expect.SwitchWithin < 0 {
		bad(line, "%s.expect: durations must not be negative", where)
	}
	if in.Expect.NoSwitch && in.Expect.SwitchWithin > 0 {
		bad(line, "%s.expect: no_switch and switch_within contradict each other", where)
	}
}

// Start and End are the incident's interval in scenario time; End is the
// scenario's duration when the incident lasts to the end.
func (in *Incident) Start() time.Duration { return in.At.D() }

// End is when the incident stops, in scenario time.
func (in *Incident) End(total time.Duration) time.Duration {
	if in.For <= 0 || in.At.D()+in.For.D() > total {
		return total
	}
	return in.At.D() + in.For.D()
}

// wabaOf returns the WABA of a declared number.
func (s *Scenario) wabaOf(number string) (string, Number, bool) {
	for _, w := range s.WABAs {
		for _, n := range w.Numbers {
			if n.ID == number {
				return w.ID, n, true
			}
		}
	}
	return "", Number{}, false
}

func (s *Scenario) template(name string) Template {
	for _, t := range s.Templates {
		if t.Name == name {
			return t
		}
	}
	return Template{Name: name, Category: "utility", Language: "pt_BR"}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

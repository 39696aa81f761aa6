package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"vigia/internal/quality"
)

// schemaNode is the subset of JSON Schema 2020-12 that schemas/alert.v1.json
// uses; validate below implements exactly that subset.
type schemaNode struct {
	Schema               string                 `json:"$schema"`
	ID                   string                 `json:"$id"`
	Title                string                 `json:"title"`
	Ref                  string                 `json:"$ref"`
	Type                 string                 `json:"type"`
	Description          string                 `json:"description"`
	Properties           map[string]*schemaNode `json:"properties"`
	Required             []string               `json:"required"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"` // false or a schema
	PropertyNames        *schemaNode            `json:"propertyNames"`
	Items                *schemaNode            `json:"items"`
	Enum                 []any                  `json:"enum"`
	Const                any                    `json:"const"`
	Pattern              string                 `json:"pattern"`
	Format               string                 `json:"format"`
	MinLength            *int                   `json:"minLength"`
	Minimum              *float64               `json:"minimum"`
	Maximum              *float64               `json:"maximum"`
	Defs                 map[string]*schemaNode `json:"$defs"`
}

func loadSchema(t *testing.T) *schemaNode {
	t.Helper()
	b, err := os.ReadFile("../../schemas/alert.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var root schemaNode
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a keyword the validator does not know would go unchecked
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatal(err)
	}
	return &root
}

// resolve follows a local $ref ("#/$defs/name").
func (root *schemaNode) resolve(n *schemaNode) *schemaNode {
	if n == nil || n.Ref == "" {
		return n
	}
	name, ok := strings.CutPrefix(n.Ref, "#/$defs/")
	if !ok || root.Defs[name] == nil {
		panic("unresolvable $ref " + n.Ref)
	}
	return root.Defs[name]
}

// TestSchemaMatchesGoType keeps schemas/alert.v1.json and Alert in sync:
// the same property names at every level (quality.Values and Action
// included), each described, required exactly when the field is not
// omitempty, and the state enum equal to the State constants.
func TestSchemaMatchesGoType(t *testing.T) {
	root := loadSchema(t)
	if strings.TrimSpace(root.Description) == "" {
		t.Error("schema: no description")
	}
	compareSchema(t, root, "alert", reflect.TypeFor[Alert](), root)

	var enum []string
	for _, v := range root.Properties["state"].Enum {
		enum = append(enum, v.(string))
	}
	states := []string{string(StateInactive), string(StatePending), string(StateFiring), string(StateResolved)}
	slices.Sort(enum)
	slices.Sort(states)
	if !slices.Equal(enum, states) {
		t.Errorf("state enum %v, Go states %v", enum, states)
	}
	if c := fmt.Sprint(root.Properties["schema_version"].Const); c != fmt.Sprint(SchemaVersion) {
		t.Errorf("schema_version const %s, SchemaVersion %d", c, SchemaVersion)
	}
}

var timeType = reflect.TypeFor[time.Time]()

func compareSchema(t *testing.T, root *schemaNode, path string, typ reflect.Type, node *schemaNode) {
	t.Helper()
	node = root.resolve(node)
	if node.Type != "object" {
		t.Errorf("%s: schema type %q, want object", path, node.Type)
	}
	if string(node.AdditionalProperties) != "false" {
		t.Errorf("%s: additionalProperties must be false so that unknown fields are caught", path)
	}
	goFields := map[string]reflect.StructField{}
	var required []string
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		goFields[name] = f
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	var missing, extra []string
	for name := range goFields {
		if _, ok := node.Properties[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name, p := range node.Properties {
		if _, ok := goFields[name]; !ok {
			extra = append(extra, name)
		}
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("%s.%s: no description in the schema", path, name)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: fields missing from the schema %v, schema properties not in Go %v", path, missing, extra)
	}
	slices.Sort(required)
	schemaRequired := slices.Sorted(slices.Values(node.Required))
	if !slices.Equal(required, schemaRequired) {
		t.Errorf("%s: required %v, Go fields without omitempty %v", path, schemaRequired, required)
	}
	for name, f := range goFields {
		p := node.Properties[name]
		if p == nil {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == timeType:
			if p.Format != "date-time" {
				t.Errorf("%s.%s: a time without format date-time", path, name)
			}
		case ft.Kind() == reflect.Struct:
			compareSchema(t, root, path+"."+name, ft, p)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if p.Items == nil {
				t.Errorf("%s.%s: array without items", path, name)
				continue
			}
			if strings.TrimSpace(root.resolve(p.Items).Description) == "" {
				t.Errorf("%s.%s[]: no description in the schema", path, name)
			}
			compareSchema(t, root, path+"."+name+"[]", ft.Elem(), p.Items)
		}
	}
}

// validate checks a decoded JSON value (numbers as json.Number) against the
// subset of JSON Schema the alert schema uses.
func (root *schemaNode) validate(v any, n *schemaNode, path string) []string {
	n = root.resolve(n)
	var errs []string
	fail := func(format string, args ...any) {
		errs = append(errs, path+": "+fmt.Sprintf(format, args...))
	}
	if n.Const != nil && fmt.Sprint(v) != fmt.Sprint(n.Const) {
		fail("%v, want const %v", v, n.Const)
	}
	if n.Enum != nil && !slices.ContainsFunc(n.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		fail("%v not in %v", v, n.Enum)
	}
	switch n.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("%T, want object", v)
			return errs
		}
		for _, r := range n.Required {
			if _, ok := obj[r]; !ok {
				fail("required %q missing", r)
			}
		}
		for k, val := range obj {
			if n.PropertyNames != nil {
				errs = append(errs, root.validate(k, n.PropertyNames, path+"."+k+"(name)")...)
			}
			if p, ok := n.Properties[k]; ok {
				errs = append(errs, root.validate(val, p, path+"."+k)...)
				continue
			}
			switch ap := string(n.AdditionalProperties); ap {
			case "", "true":
			case "false":
				fail("property %q not allowed", k)
			default:
				var s schemaNode
				if err := json.Unmarshal(n.AdditionalProperties, &s); err != nil {
					panic(err)
				}
				errs = append(errs, root.validate(val, &s, path+"."+k)...)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("%T, want array", v)
			return errs
		}
		for i, e := range arr {
			errs = append(errs, root.validate(e, n.Items, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "integer", "number":
		num, ok := v.(json.Number)
		if !ok {
			fail("%T, want %s", v, n.Type)
			return errs
		}
		f, err := num.Float64()
		if err != nil {
			fail("%v", err)
		}
		if _, err := num.Int64(); n.Type == "integer" && err != nil {
			fail("%s is not an integer", num)
		}
		if n.Minimum != nil && f < *n.Minimum {
			fail("%v below minimum %v", f, *n.Minimum)
		}
		if n.Maximum != nil && f > *n.Maximum {
			fail("%v above maximum %v", f, *n.Maximum)
		}
	case "string", "":
		s, ok := v.(string)
		if !ok {
			if n.Type == "string" {
				fail("%T, want string", v)
			}
			return errs
		}
		if n.MinLength != nil && len(s) < *n.MinLength {
			fail("%q shorter than %d", s, *n.MinLength)
		}
		if n.Pattern != "" && !regexp.MustCompile(n.Pattern).MatchString(s) {
			fail("%q does not match %s", s, n.Pattern)
		}
		if n.Format == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				fail("%q is not a date-time", s)
			}
		}
	default:
		fail("validator does not know type %q", n.Type)
	}
	return errs
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRecordsValidateAgainstSchema validates the records a tracker actually
// publishes, in every state, against the schema: the sync test checks names,
// this one checks types, formats and required fields.
func TestRecordsValidateAgainstSchema(t *testing.T) {
	root := loadSchema(t)
	tr := mustTracker(t, Params{For: time.Minute, KeepFiringFor: time.Minute, HasResolve: true}, Options{})
	bad := fullValues()
	base := fullValues()
	base.Sent = 1000
	in := func(cond, resolve bool) Input {
		return Input{
			Labels:      map[string]string{"phone_number": "15550001", "severity": "critical"},
			Condition:   cond,
			Resolve:     resolve,
			Values:      bad,
			Baseline:    &base,
			Annotations: map[string]string{"summary": "delivery fell"},
			Actions:     []Action{{Type: "failover", Params: map[string]string{"use_case": "otp"}}, {Type: "page"}},
		}
	}
	steps := []struct {
		at            time.Duration
		cond, resolve bool
	}{
		{0, true, false}, {30 * time.Second, false, false}, // pending, inactive
		{time.Minute, true, false}, {2 * time.Minute, true, false}, // pending, firing
		{3 * time.Minute, false, true}, {4 * time.Minute, false, true}, // clear, resolved
	}
	var records []*Alert
	for _, s := range steps {
		if a := tr.Eval(t0.Add(s.at), in(s.cond, s.resolve)); a != nil {
			records = append(records, a)
		}
	}
	// A record without the optional fields, caused by missing data.
	records = append(records, tr.Eval(t0.Add(5*time.Minute), Input{Labels: map[string]string{"phone_number": "2"}, Condition: true}))
	records = append(records, tr.Absent(t0.Add(6*time.Minute), nil)...)

	var seen []State
	for _, a := range records {
		seen = append(seen, a.State)
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range root.validate(decodeJSON(t, b), root, "alert") {
			t.Errorf("%s record: %s", a.State, e)
		}
	}
	if want := []State{StatePending, StateInactive, StatePending, StateFiring, StateResolved, StatePending, StateInactive}; !slices.Equal(seen, want) {
		t.Fatalf("states %v, want %v", seen, want)
	}

	// The validator must reject what the schema forbids, or the test
	// above proves nothing.
	b, _ := json.Marshal(records[3])
	for name, mutate := range map[string]func(m map[string]any){
		"unknown field":   func(m map[string]any) { m["extra"] = 1 },
		"bad fingerprint": func(m map[string]any) { m["fingerprint"] = "XYZ" },
		"bad state":       func(m map[string]any) { m["state"] = "acknowledged" },
		"no labels":       func(m map[string]any) { delete(m, "labels") },
		"bad time":        func(m map[string]any) { m["eval_time"] = "yesterday" },
		"bad value":       func(m map[string]any) { m["values"].(map[string]any)["sent"] = "many" },
		"bad action":      func(m map[string]any) { m["actions"].([]any)[0].(map[string]any)["when"] = "now" },
		"bad code":        func(m map[string]any) { m["values"].(map[string]any)["failures_by_code"].(map[string]any)["x"] = 1 },
	} {
		m := decodeJSON(t, b).(map[string]any)
		mutate(m)
		if errs := root.validate(m, root, "alert"); len(errs) == 0 {
			t.Errorf("%s: accepted by the schema", name)
		}
	}
}

// fullValues sets every field of quality.Values, so that round trips and
// schema validation see each of them.
func fullValues() quality.Values {
	return quality.Values{
		Sent: 300, Delivered: 150, Read: 90, Failed: 120, Accepted: 3, Deferred: 2,
		Attempts: 320, Reached: 160,
		FailuresByCode:  map[int64]int64{131026: 100, 131049: 20},
		FailuresByClass: map[string]int64{"recipient": 100, "throttle": 20},
		OptOuts:         4, Inbound: 7,
		DeliveryRate: 0.5, ReadRate: 0.5625, FailureRate: 0.375, OptOutRate: 0.025,
		LatencyP50: 1.5, LatencyP90: 12.25, LatencySamples: 140,
		NumbersActive: 12, NumbersDegraded: 3,
		QualityEvent: "FLAGGED", MessagingTier: "TIER_1K", TemplateStatus: "APPROVED",
		TemplateQuality: "YELLOW", AccountEvent: "ACCOUNT_VIOLATION", AccountBanState: "REINSTATE",
	}
}

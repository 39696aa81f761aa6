// Package schematest checks Vigia's JSON Schemas (schemas/*.json) against
// the Go types they describe, and validates JSON documents against them, for
// the tests of the packages that own those types. It implements only the
// subset of JSON Schema 2020-12 the schemas use, and refuses the others.
package schematest

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
)

// Node is the subset of JSON Schema 2020-12 that Vigia's schemas use;
// Validate implements exactly that subset.
type Node struct {
	Schema               string           `json:"$schema"`
	ID                   string           `json:"$id"`
	Title                string           `json:"title"`
	Ref                  string           `json:"$ref"`
	Type                 string           `json:"type"`
	Description          string           `json:"description"`
	Properties           map[string]*Node `json:"properties"`
	Required             []string         `json:"required"`
	AdditionalProperties json.RawMessage  `json:"additionalProperties"` // false or a schema
	PropertyNames        *Node            `json:"propertyNames"`
	Items                *Node            `json:"items"`
	Enum                 []any            `json:"enum"`
	Const                any              `json:"const"`
	Pattern              string           `json:"pattern"`
	Format               string           `json:"format"`
	MinLength            *int             `json:"minLength"`
	Minimum              *float64         `json:"minimum"`
	Maximum              *float64         `json:"maximum"`
	Defs                 map[string]*Node `json:"$defs"`
}

// Load reads a schema, refusing keywords this package does not know (they
// would go unchecked).
func Load(t testing.TB, path string) *Node {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root Node
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a keyword the validator does not know would go unchecked
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatal(err)
	}
	return &root
}

// resolve follows a local $ref ("#/$defs/name").
func (root *Node) Resolve(n *Node) *Node {
	if n == nil || n.Ref == "" {
		return n
	}
	name, ok := strings.CutPrefix(n.Ref, "#/$defs/")
	if !ok || root.Defs[name] == nil {
		panic("unresolvable $ref " + n.Ref)
	}
	return root.Defs[name]
}

var timeType = reflect.TypeFor[time.Time]()

// CompareType fails t unless node describes typ: the same property names at
// every level (nested structs, arrays of structs), each described, required
// exactly when the Go field is not omitempty, no additional properties,
// times as date-time strings.
func CompareType(t testing.TB, root *Node, path string, typ reflect.Type, node *Node) {
	t.Helper()
	t.Helper()
	node = root.Resolve(node)
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
			CompareType(t, root, path+"."+name, ft, p)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if p.Items == nil {
				t.Errorf("%s.%s: array without items", path, name)
				continue
			}
			if strings.TrimSpace(root.Resolve(p.Items).Description) == "" {
				t.Errorf("%s.%s[]: no description in the schema", path, name)
			}
			CompareType(t, root, path+"."+name+"[]", ft.Elem(), p.Items)
		}
	}
}

// Validate checks a decoded JSON value (numbers as json.Number) against
// node, returning every violation with its path.
func (root *Node) Validate(v any, n *Node, path string) []string {
	n = root.Resolve(n)
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
				errs = append(errs, root.Validate(k, n.PropertyNames, path+"."+k+"(name)")...)
			}
			if p, ok := n.Properties[k]; ok {
				errs = append(errs, root.Validate(val, p, path+"."+k)...)
				continue
			}
			switch ap := string(n.AdditionalProperties); ap {
			case "", "true":
			case "false":
				fail("property %q not allowed", k)
			default:
				var s Node
				if err := json.Unmarshal(n.AdditionalProperties, &s); err != nil {
					panic(err)
				}
				errs = append(errs, root.Validate(val, &s, path+"."+k)...)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("%T, want array", v)
			return errs
		}
		for i, e := range arr {
			errs = append(errs, root.Validate(e, n.Items, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("%T, want boolean", v)
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

// DecodeJSON decodes b for Validate: numbers as json.Number.
func DecodeJSON(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

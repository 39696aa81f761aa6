package control

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// This file keeps openapi.json honest: it parses, it lists exactly what
// the handlers serve, and the answers of api_test.go's requests are
// checked against it with a small validator of the OpenAPI schema
// objects it uses (a JSON Schema subset; an unknown keyword fails the
// test rather than pass unchecked).

// spec is openapi.json, decoded.
type spec struct {
	doc map[string]any
}

var (
	specOnce   sync.Once
	loadedSpec *spec
	specErr    error
)

func loadSpec(t testing.TB) *spec {
	t.Helper()
	specOnce.Do(func() {
		var doc map[string]any
		if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
			specErr = fmt.Errorf("openapi.json: %w", err)
			return
		}
		loadedSpec = &spec{doc: doc}
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return loadedSpec
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns every operation of the spec by "METHOD path".
func (s *spec) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for path, item := range s.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if slices.Contains(httpMethods, method) {
				out[strings.ToUpper(method)+" "+path] = op.(map[string]any)
			}
		}
	}
	return out
}

// pointer resolves a local JSON pointer like #/components/schemas/Route.
func (s *spec) pointer(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("%s: only local references are used", ref)
	}
	var cur any = s.doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok || m[tok] == nil {
			return nil, fmt.Errorf("%s: no %q", ref, tok)
		}
		cur = m[tok]
	}
	return cur, nil
}

// deref follows $ref until an object without one.
func (s *spec) deref(v any) (map[string]any, error) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("not an object: %v", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = s.pointer(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// matchPath returns the spec path template that a request path matches.
func (s *spec) matchPath(path string) (string, bool) {
	segs := strings.Split(path, "/")
	for tmpl := range s.doc["paths"].(map[string]any) {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		ok := true
		for i := range ts {
			if !(ts[i] == segs[i] || strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") && segs[i] != "") {
				ok = false
				break
			}
		}
		if ok {
			return tmpl, true
		}
	}
	return "", false
}

// response returns the documented response of an operation for status.
func (s *spec) response(method, tmpl string, status int) (map[string]any, error) {
	op := s.operations()[method+" "+tmpl]
	if op == nil {
		return nil, fmt.Errorf("%s %s is not in openapi.json", method, tmpl)
	}
	r, ok := op["responses"].(map[string]any)[strconv.Itoa(status)]
	if !ok {
		return nil, fmt.Errorf("%s %s: status %d is not documented", method, tmpl, status)
	}
	return s.deref(r)
}

// checkAnswer validates an answer against the spec: the status is
// documented for the operation, the content type is the documented one,
// the body is valid for its schema. Answers outside the spec's operations
// (an unknown path, a method the path does not take) must be problems.
func (s *spec) checkAnswer(method, path string, status int, header http.Header, body []byte) error {
	tmpl, ok := s.matchPath(path)
	if !ok || s.operations()[method+" "+tmpl] == nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s: %d, want 404 or 405 for what openapi.json does not describe", method, path, status)
		}
		return s.checkBody(header, body, "application/problem+json", map[string]any{"$ref": "#/components/schemas/Problem"})
	}
	resp, err := s.response(method, tmpl, status)
	if err != nil {
		return err
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) != 1 {
		return fmt.Errorf("%s %s %d: want one documented media type, got %d", method, tmpl, status, len(content))
	}
	for mediaType, mt := range content {
		schema := mt.(map[string]any)["schema"]
		if err := s.checkBody(header, body, mediaType, schema); err != nil {
			return fmt.Errorf("%s %s %d: %w", method, path, status, err)
		}
	}
	headers, _ := resp["headers"].(map[string]any)
	for name := range headers {
		if name != "Cache-Control" && header.Get(name) == "" && !(name == "Retry-After" && status == http.StatusServiceUnavailable) {
			return fmt.Errorf("%s %s %d: documented header %s is missing", method, path, status, name)
		}
	}
	return nil
}

func (s *spec) checkBody(header http.Header, body []byte, mediaType string, schema any) error {
	got, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || got != mediaType {
		return fmt.Errorf("content type %q, want %s", header.Get("Content-Type"), mediaType)
	}
	if mediaType == "text/event-stream" {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("body is not JSON: %v: %s", err, body)
	}
	if errs := s.validate(schema, v, "$"); len(errs) > 0 {
		return fmt.Errorf("body does not match its schema:\n  %s\nbody: %s", strings.Join(errs, "\n  "), body)
	}
	return nil
}

// schemaKeywords are the keywords the validator knows; annotation ones
// are ignored, the others checked.
var schemaKeywords = map[string]bool{
	"type": true, "format": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "nullable": true, "$ref": true, "minimum": true, "maximum": true,
	"minLength": true, "maxLength": true, "pattern": true, "minItems": true,
	"description": false, "example": false, "default": false,
}

// validate checks v (decoded JSON) against an OpenAPI 3.0 schema object
// and returns what is wrong, each with its JSON path.
func (s *spec) validate(schema any, v any, at string) []string {
	sc, err := s.deref(schema)
	if err != nil {
		return []string{at + ": schema: " + err.Error()}
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	for k := range sc {
		if _, ok := schemaKeywords[k]; !ok {
			bad("schema keyword %q is not supported by the test's validator", k)
		}
	}
	if v == nil {
		if sc["nullable"] != true && sc["type"] != nil {
			bad("null, want %v", sc["type"])
		}
		return errs
	}
	if enum, ok := sc["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		bad("%v is not one of %v", v, enum)
	}
	switch typ, _ := sc["type"].(string); typ {
	case "":
		// any value
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			return errs
		}
		props, _ := sc["properties"].(map[string]any)
		required, _ := sc["required"].([]any)
		for _, r := range required {
			if _, ok := m[r.(string)]; !ok {
				bad("required property %q is missing", r)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p, ok := props[k]; ok {
				errs = append(errs, s.validate(p, m[k], at+"."+k)...)
				continue
			}
			switch ap := sc["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("property %q is not in the schema", k)
				}
			case map[string]any:
				errs = append(errs, s.validate(ap, m[k], at+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("%T, want an array", v)
			return errs
		}
		if n, ok := sc["minItems"].(float64); ok && float64(len(a)) < n {
			bad("%d items, want at least %g", len(a), n)
		}
		for i, e := range a {
			errs = append(errs, s.validate(sc["items"], e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("%T, want a string", v)
			return errs
		}
		if f, _ := sc["format"].(string); f == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("%q is not an RFC 3339 date-time", str)
			}
		}
		n := float64(utf8.RuneCountInString(str))
		if m, ok := sc["minLength"].(float64); ok && n < m {
			bad("%q is shorter than %g", str, m)
		}
		if m, ok := sc["maxLength"].(float64); ok && n > m {
			bad("%q is longer than %g", str, m)
		}
		if p, ok := sc["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			bad("%q does not match %s", str, p)
		}
	case "integer", "number", "boolean":
		if typ == "boolean" {
			if _, ok := v.(bool); !ok {
				bad("%T, want a boolean", v)
			}
			break
		}
		f, ok := v.(float64)
		if !ok {
			bad("%T, want a %s", v, typ)
			break
		}
		if typ == "integer" && f != math.Trunc(f) {
			bad("%g, want an integer", f)
		}
		if m, ok := sc["minimum"].(float64); ok && f < m {
			bad("%g is below the minimum %g", f, m)
		}
		if m, ok := sc["maximum"].(float64); ok && f > m {
			bad("%g is above the maximum %g", f, m)
		}
	default:
		bad("schema type %q is not supported by the test's validator", typ)
	}
	return errs
}

// TestValidator: the validator catches what it should, so that a passing
// check means something.
func TestValidator(t *testing.T) {
	s := loadSpec(t)
	route := `{"name":"sales","strategy":"ordered","channels":["whatsapp"],"channel":"whatsapp","paused":false,"numbers":[],"seq":3}`
	cases := []struct {
		name, schema, value string
		ok                  bool
	}{
		{"valid route", "Route", route, true},
		{"missing required", "Route", `{"name":"sales"}`, false},
		{"unknown property", "Route", strings.Replace(route, `"seq":3`, `"seq":3,"extra":1`, 1), false},
		{"bad enum", "Route", strings.Replace(route, `"channel":"whatsapp"`, `"channel":"fax"`, 1), false},
		{"wrong type", "Route", strings.Replace(route, `"paused":false`, `"paused":"no"`, 1), false},
		{"not an integer", "Route", strings.Replace(route, `"seq":3`, `"seq":3.5`, 1), false},
		{"below minimum", "Route", strings.Replace(route, `"seq":3`, `"seq":-1`, 1), false},
		{"bad item", "Route", strings.Replace(route, `"channels":["whatsapp"]`, `"channels":[1]`, 1), false},
		{"too few items", "Route", strings.Replace(route, `"channels":["whatsapp"]`, `"channels":[]`, 1), false},
		{"null array", "Route", strings.Replace(route, `"numbers":[]`, `"numbers":null`, 1), false},
		{"bad date-time", "Route", strings.Replace(route, `"seq":3`, `"seq":3,"since":"yesterday"`, 1), false},
		{"nested $ref", "Route", strings.Replace(route, `"seq":3`, `"seq":3,"lock":{"by":"x"}`, 1), false},
		{"nullable", "Occurrence", `{"alertname":"A","changes":null}`, true},
		{"map values", "Automation", `{"dry_run":false,"cooldown":"1s","hourly_budget":1,"used_last_hour":0,"restore_after":"1s","platform_fraction":0.5,"cooldowns":{"number:PN1":"soon"},"occurrences":{},"seq":1}`, false},
		{"pattern", "NumberThrottleRequest", `{"rate":"fast"}`, false},
		{"max length", "NumberThrottleRequest", `{"rate":"1/s","reason":"` + strings.Repeat("é", 1001) + `"}`, false},
		{"max length in characters", "NumberThrottleRequest", `{"rate":"1/s","reason":"` + strings.Repeat("é", 1000) + `"}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(c.value), &v); err != nil {
				t.Fatal(err)
			}
			errs := s.validate(map[string]any{"$ref": "#/components/schemas/" + c.schema}, v, "$")
			if (len(errs) == 0) != c.ok {
				t.Errorf("valid = %v, want %v: %v", len(errs) == 0, c.ok, errs)
			}
		})
	}
}

// TestOpenAPIWellFormed checks the description itself: version, every
// $ref resolves, every schema uses only what the validator checks, every
// operation is documented for people, and its errors are problems.
func TestOpenAPIWellFormed(t *testing.T) {
	s := loadSpec(t)
	if v := s.doc["openapi"]; v != "3.0.3" {
		t.Errorf("openapi %v, want 3.0.3", v)
	}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := s.pointer(ref); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(s.doc, "#")
	for name, sc := range s.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		// A schema's own example must be valid, and no keyword may go
		// unchecked.
		for _, e := range s.validate(sc, exampleOf(s, sc), "#/components/schemas/"+name) {
			if strings.Contains(e, "not supported") {
				t.Error(e)
			}
		}
	}

	ids := map[string]string{}
	for key, op := range s.operations() {
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] != "" {
			t.Errorf("%s: operationId %q missing or not unique (also %s)", key, id, ids[id])
		}
		ids[id] = key
		for _, f := range []string{"summary", "description"} {
			if str, _ := op[f].(string); len(str) < 5 {
				t.Errorf("%s: %s missing or too short: %q", key, f, str)
			}
		}
		if tags, _ := op["tags"].([]any); len(tags) == 0 {
			t.Errorf("%s: no tags", key)
		}
		for code, r := range op["responses"].(map[string]any) {
			resp, err := s.deref(r)
			if err != nil {
				t.Errorf("%s %s: %v", key, code, err)
				continue
			}
			if d, _ := resp["description"].(string); d == "" {
				t.Errorf("%s %s: no description", key, code)
			}
			content, _ := resp["content"].(map[string]any)
			for mediaType := range content {
				status, _ := strconv.Atoi(code)
				switch {
				case status >= 400 && mediaType != "application/problem+json":
					t.Errorf("%s %s: error answered as %s, want application/problem+json", key, code, mediaType)
				case status < 400 && mediaType == "application/problem+json":
					t.Errorf("%s %s: success answered as a problem", key, code)
				}
			}
		}
	}
}

// exampleOf returns a schema's example, or nil.
func exampleOf(s *spec, schema any) any {
	sc, err := s.deref(schema)
	if err != nil {
		return nil
	}
	return sc["example"]
}

// TestOpenAPIInStepWithHandlers: every path and method the API registers
// is in openapi.json, and every operation of openapi.json is served.
func TestOpenAPIInStepWithHandlers(t *testing.T) {
	s := loadSpec(t)
	env := newEnv(t)
	served := map[string]bool{}
	for path, methods := range env.api.Paths() {
		for _, m := range methods {
			served[m+" "+path] = true
		}
	}
	documented := map[string]bool{}
	for key := range s.operations() {
		documented[key] = true
	}
	for _, key := range slices.Sorted(maps.Keys(served)) {
		if !documented[key] {
			t.Errorf("%s is served but not in openapi.json", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(documented)) {
		if !served[key] {
			t.Errorf("%s is in openapi.json but not served", key)
		}
	}
	// And the handler serves this very document.
	rec := env.do(t, "GET", "/openapi.json", "", "")
	if rec.Code != 200 || rec.Body.String() != string(OpenAPI()) {
		t.Errorf("GET /openapi.json: %d, body is not openapi.json", rec.Code)
	}
}

// TestOpenAPISecurity: every operation that needs a token names its scope
// (x-scope and its description), documents 401 and 403, and its scope is
// the one the handler checks: a token with only that scope gets past the
// check, a token with any other single scope (admin aside) gets 403.
func TestOpenAPISecurity(t *testing.T) {
	s := loadSpec(t)
	env := newEnv(t)
	global := s.doc["security"].([]any)
	for _, key := range slices.Sorted(maps.Keys(s.operations())) {
		op := s.operations()[key]
		method, path, _ := strings.Cut(key, " ")
		sec, ok := op["security"].([]any)
		if !ok {
			sec = global
		}
		scope, _ := op["x-scope"].(string)
		if len(sec) == 0 {
			if scope != "" {
				t.Errorf("%s: x-scope %s without security", key, scope)
			}
			if rec := env.do(t, method, path, "", ""); rec.Code == 401 {
				t.Errorf("%s: documented without security, answered 401", key)
			}
			continue
		}
		if !slices.Contains([]string{ScopeRead, ScopePick, ScopeOperate, ScopeAdmin}, scope) {
			t.Errorf("%s: x-scope %q, want read, pick, operate or admin", key, scope)
			continue
		}
		if d, _ := op["description"].(string); !strings.Contains(d, "Scope: `"+scope+"`") {
			t.Errorf("%s: the description does not say its scope %s", key, scope)
		}
		for _, code := range []int{401, 403} {
			if _, err := s.response(method, path, code); err != nil {
				t.Error(err)
			}
		}
		concrete := strings.NewReplacer("{use_case}", "sales", "{number}", "PN1", "{name}", "crm").Replace(path)
		for _, tokScope := range []string{ScopeRead, ScopePick, ScopeOperate, ScopeAdmin} {
			rec := env.do(t, method, concrete, tokenOf[tokScope], "")
			allowed := Token{Scopes: []string{tokScope}}.has(scope)
			if got := rec.Code == http.StatusForbidden; got == allowed {
				t.Errorf("%s with a %s token: %d, want allowed=%v for x-scope %s", key, tokScope, rec.Code, allowed, scope)
			}
		}
	}
}

// TestOpenAPIRequestBodies: each operator action's body schema lists
// exactly the fields the handler takes (reason always), refuses others
// (additionalProperties false), and requires what the handler requires.
func TestOpenAPIRequestBodies(t *testing.T) {
	s := loadSpec(t)
	var all []string
	rt := reflect.TypeFor[opRequest]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		all = append(all, name)
	}
	values := map[string]any{"reason": "test", "until": t0.Add(time.Hour).Format(time.RFC3339), "for": "1h",
		"to": "PN2", "channel": "sms", "rate": "10/s", "state": "blocked"}
	for _, key := range slices.Sorted(maps.Keys(s.operations())) {
		op := s.operations()[key]
		method, path, _ := strings.Cut(key, " ")
		if method != "POST" || strings.HasSuffix(path, "/pick") {
			continue
		}
		rb, err := s.deref(op["requestBody"])
		if err != nil {
			t.Fatalf("%s: request body: %v", key, err)
		}
		schema, err := s.deref(rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"])
		if err != nil {
			t.Fatal(err)
		}
		if schema["additionalProperties"] != false {
			t.Errorf("%s: body schema allows additional properties", key)
		}
		props := schema["properties"].(map[string]any)
		if props["reason"] == nil {
			t.Errorf("%s: body schema has no reason", key)
		}
		concrete := strings.NewReplacer("{use_case}", "sales", "{number}", "PN1").Replace(path)
		for _, field := range all {
			env := newEnv(t)
			body, _ := json.Marshal(map[string]any{field: values[field]})
			rec := env.do(t, method, concrete, tokenOf[ScopeOperate], string(body))
			refused := rec.Code == 400 && strings.Contains(rec.Body.String(), "takes no")
			if _, documented := props[field]; documented == refused {
				t.Errorf("%s with field %s: %d %s; openapi.json documents it: %v", key, field, rec.Code, rec.Body, documented)
			}
		}
		// An empty object lacks every required field: 422 when some are
		// required (lock requires a reason), else the action is done.
		env := newEnv(t)
		rec := env.do(t, method, concrete, tokenOf[ScopeOperate], "{}")
		required, _ := schema["required"].([]any)
		if want := map[bool]int{true: 422, false: 200}[len(required) > 0]; rec.Code != want {
			t.Errorf("%s with {}: %d %s, want %d (required: %v)", key, rec.Code, rec.Body, want, required)
		}
		if (len(required) > 0) != rb["required"].(bool) {
			t.Errorf("%s: requestBody.required %v, but the schema requires %v", key, rb["required"], required)
		}
	}
}

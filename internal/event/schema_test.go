package event

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

type schemaNode struct {
	Type        string                 `json:"type"`
	Description string                 `json:"description"`
	Properties  map[string]*schemaNode `json:"properties"`
	Required    []string               `json:"required"`
}

// TestSchemaMatchesGoType keeps schemas/event.v1.json and Event in sync:
// the same property names at every level, each documented.
func TestSchemaMatchesGoType(t *testing.T) {
	b, err := os.ReadFile("../../schemas/event.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var root schemaNode
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	compare(t, "event", reflect.TypeOf(Event{}), &root)
}

var timeType = reflect.TypeOf(time.Time{})

func compare(t *testing.T, path string, typ reflect.Type, node *schemaNode) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	goFields := map[string]reflect.Type{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		goFields[name] = f.Type
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
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: fields missing from the schema %v, schema properties not in Go %v", path, missing, extra)
	}
	for name, ft := range goFields {
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if p := node.Properties[name]; p != nil && ft.Kind() == reflect.Struct && ft != timeType {
			compare(t, path+"."+name, ft, p)
		}
	}
}

package event

import (
	"reflect"
	"testing"

	"vigia/internal/schematest"
)

// TestSchemaMatchesGoType keeps schemas/event.v1.json and Event in sync:
// the same property names at every level, each documented, required exactly
// when the Go field is not omitempty, no additional properties.
func TestSchemaMatchesGoType(t *testing.T) {
	root := schematest.Load(t, "../../schemas/event.v1.json")
	schematest.CompareType(t, root, "event", reflect.TypeFor[Event](), root)
}

// TestEventsValidateAgainstSchema validates a fully populated event, as
// json.Marshal writes it, against the schema: types, formats, patterns.
func TestEventsValidateAgainstSchema(t *testing.T) {
	root := schematest.Load(t, "../../schemas/event.v1.json")
	doc := schematest.DecodeJSON(t, sampleEventJSON())
	if errs := root.Validate(doc, root, "event"); len(errs) > 0 {
		t.Errorf("a marshalled event does not validate:\n%v", errs)
	}
	bad := schematest.DecodeJSON(t, []byte(`{"schema_version":1,"id":"nothex","kind":"status","channel":"pigeon","source":"meta","event_time":"yesterday","receive_time":"2026-01-01T00:00:00Z"}`))
	if errs := root.Validate(bad, root, "event"); len(errs) < 3 {
		t.Errorf("a bad event validated with only %v", errs)
	}
}

package alert

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"vigia/internal/quality"
	"vigia/internal/schematest"
)

// TestSchemaMatchesGoType keeps schemas/alert.v1.json and Alert in sync:
// the same property names at every level (quality.Values and Action
// included), each described, required exactly when the field is not
// omitempty, and the state enum equal to the State constants.
func TestSchemaMatchesGoType(t *testing.T) {
	root := schematest.Load(t, "../../schemas/alert.v1.json")
	if strings.TrimSpace(root.Description) == "" {
		t.Error("schema: no description")
	}
	schematest.CompareType(t, root, "alert", reflect.TypeFor[Alert](), root)

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

// TestRecordsValidateAgainstSchema validates the records a tracker actually
// publishes, in every state, against the schema: the sync test checks names,
// this one checks types, formats and required fields.
func TestRecordsValidateAgainstSchema(t *testing.T) {
	root := schematest.Load(t, "../../schemas/alert.v1.json")
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
		for _, e := range root.Validate(schematest.DecodeJSON(t, b), root, "alert") {
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
		m := schematest.DecodeJSON(t, b).(map[string]any)
		mutate(m)
		if errs := root.Validate(m, root, "alert"); len(errs) == 0 {
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

package alert_test

import (
	"fmt"
	"time"

	"vigia/internal/alert"
)

// A rule with for: 20s, keep_firing_for: 20s and a resolve condition,
// evaluated every 10s for one phone number.
func ExampleTracker() {
	tr, err := alert.NewTracker(
		alert.RuleInfo{Name: "DeliveryRateDrop", Group: "delivery", Rule: "rules/delivery.yaml:4"},
		alert.Params{For: 20 * time.Second, KeepFiringFor: 20 * time.Second, HasResolve: true},
		alert.Options{},
	)
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	labels := map[string]string{"phone_number": "15550001"}
	for i, st := range []struct{ when, resolveWhen bool }{
		{true, false},  // 0s   pending
		{true, false},  // 10s
		{true, false},  // 20s  firing: held for 20s
		{false, false}, // 30s  condition false, resolve_when not yet: still firing
		{false, true},  // 40s  clear: keep_firing_for starts
		{false, true},  // 50s
		{false, true},  // 60s  resolved: clear for 20s
		{true, false},  // 70s  a new occurrence
	} {
		now := start.Add(time.Duration(i) * 10 * time.Second)
		a := tr.Eval(now, alert.Input{Labels: labels, Condition: st.when, Resolve: st.resolveWhen})
		if a != nil {
			fmt.Println(now.Sub(start), a.State, "active since", a.ActiveAt.Sub(start))
		}
	}
	// Output:
	// 0s pending active since 0s
	// 20s firing active since 0s
	// 1m0s resolved active since 0s
	// 1m10s pending active since 1m10s
}

// Package alert holds the alert lifecycle: the record Vigia publishes on the
// alerts topic each time an alert changes state, and the Tracker that turns
// a rule's evaluations, one key at a time, into those changes.
//
// The model is Prometheus's (rules/alerting.go), with Vigia's additions:
// a resolve condition for hysteresis, the evaluated values carried on every
// record, and restore from the alerts topic after a restart.
//
// # Record
//
// An [Alert] is one state change of one alert. Its JSON form is described by
// schemas/alert.v1.json (a test keeps the two in sync); notifiers, the control
// API and ClickHouse read it. The topic key is the fingerprint.
//
// An alert is identified by its labels: alertname (the rule's name, which
// overrides any alertname label the caller passes), the rule's key
// dimensions and the rule's labels. [Fingerprint] hashes them. One
// occurrence of an alert runs from the evaluation where its condition first
// held (ActiveAt) to the record that ends it (inactive or resolved);
// [Alert.Occurrence] names it, and is the idempotency key for the actions
// of that occurrence: a restart or a replay that publishes the same
// occurrence again yields the same key, so actions are not carried out twice.
//
// # Lifecycle
//
//	            condition                       held for >= For
//	inactive ──────────────▶ pending ───────────────────────────▶ firing
//	    ▲                      │  (For == 0: straight to firing)     │
//	    └──── !condition ──────┘                                     │ clear for >= KeepFiringFor
//	                                                                  ▼
//	                    next condition: new occurrence ◀───────── resolved
//
// A [Tracker] follows every alert of one rule. The engine calls
// [Tracker.Eval] with the evaluation time and, per key, the labels, whether
// the rule's condition (when) and resolve condition (resolve_when) hold, and
// the values they were computed from. Eval returns a record only when the
// alert changed state:
//
//   - inactive, condition true: pending, ActiveAt = now. With For == 0 the
//     alert fires at once (one record, state firing, FiredAt = ActiveAt = now).
//   - pending, condition true for now-ActiveAt >= For: firing, FiredAt = now.
//     Note that For counts from ActiveAt, the first evaluation where the
//     condition held, as in Prometheus: with a 10s interval and For = 30s the
//     alert fires on the fourth consecutive true evaluation.
//   - pending, condition false: inactive. The record is published so that
//     consumers see that the pending episode ended; the alert is forgotten.
//   - firing: the alert is clear when, without a resolve condition, the
//     condition is false; with a resolve condition (Params.HasResolve), when
//     the resolve condition is true and the condition is false. This is the
//     hysteresis: a firing alert whose condition turned false but whose
//     resolve condition does not hold yet stays firing. The condition wins
//     over the resolve condition when both hold (a rule whose two conditions
//     overlap), because resolving then would only start a new occurrence on
//     the next evaluation and flap.
//   - firing and clear: with KeepFiringFor == 0, resolved, ResolvedAt = now.
//     Otherwise the tracker remembers since when the alert has been clear and
//     resolves it on the first evaluation clear for >= KeepFiringFor; an
//     evaluation that is not clear resets that memory.
//   - resolved is terminal for the occurrence. The tracker forgets the alert
//     once it has returned the record, so memory is bounded by the alerts
//     that are pending or firing; the next evaluation whose condition holds
//     starts a new occurrence with a new ActiveAt.
//
// A key that has no data any more (its window expired) is evaluated as
// condition false and resolve condition true by [Tracker.Missing] and
// [Tracker.Absent]: a pending alert becomes inactive, a firing one is clear
// (and resolves, after KeepFiringFor if set). The engine calls Absent on
// every evaluation round, after Eval, with the fingerprints of the keys that
// have data: keys that could not be evaluated (a CEL error) count as present
// so that an error does not resolve an alert.
//
// Values, Baseline, Annotations and Actions on a record are those of the
// evaluation that caused the change: for firing, the values that made the
// condition true; for resolved, the values that made it clear. Input.Render
// lets the engine render annotations and actions only for the evaluations
// that change something. A record
// caused by missing data carries zero Values (the window is empty), no
// baseline, and the annotations and actions of the previous record.
//
// # Restart and reload
//
// The tracker's state lives in memory. After a restart the engine replays
// the alerts topic and hands each record to [Tracker.Restore], in topic
// order or only the last record per fingerprint: pending and firing records
// are restored with their ActiveAt and FiredAt, so that For keeps counting
// from the original ActiveAt and a firing alert does not fire again; a
// resolved or inactive record forgets the occurrence it ends. What a
// restart loses is the KeepFiringFor clock of a firing alert that was being
// cleared: it starts again from the first clear evaluation after the
// restart, which keeps the alert firing longer, never shorter. A pending
// alert whose service was down longer than For fires on its first true
// evaluation after the restart.
//
// On a rules reload the engine builds new trackers and restores them from
// the old trackers' [Tracker.Active] records, so that alerts of rules whose
// name and labels did not change carry over.
//
// # Bounds and concurrency
//
// A tracker holds at most Options.MaxActive pending and firing alerts; an
// alert that would start beyond that is refused and counted
// ([Tracker.Refused]), as is a restore beyond it. A Tracker is not safe for
// concurrent use: the engine evaluates a rule from one goroutine at a time.
//
// Time is a parameter: nothing here reads the clock, so a backtest or a
// replay in event time produces the records a live run would. Evaluation
// times must not go backwards for a key.
package alert

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"vigia/internal/quality"
)

// SchemaVersion is the version of the alert schema this package writes.
// Consumers must refuse records with a version they do not know.
const SchemaVersion = 1

// LabelAlertName is the label that holds the rule's name. It is part of the
// fingerprint, so that two rules alerting on the same key are two alerts.
const LabelAlertName = "alertname"

// State is the state of an alert, as of one record.
type State string

// The states of an alert.
const (
	StateInactive State = "inactive" // a pending alert whose condition stopped holding before For
	StatePending  State = "pending"  // the condition holds, not yet for For
	StateFiring   State = "firing"   // the condition held for For; notifications and actions go out
	StateResolved State = "resolved" // a firing alert that became clear (for KeepFiringFor)
)

// Alert is one state change of one alert: the record published on the
// alerts topic. The package doc describes the lifecycle.
type Alert struct {
	SchemaVersion int    `json:"schema_version"` // SchemaVersion
	Fingerprint   string `json:"fingerprint"`    // Fingerprint(Labels)
	Name          string `json:"alertname"`      // the rule's name
	Group         string `json:"group"`          // the rule's group
	Rule          string `json:"rule"`           // file:line of the rule, for people
	State         State  `json:"state"`

	// Labels identify the alert: alertname, the rule's key dimensions and
	// the rule's labels. They do not change during an occurrence.
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// The window values (and baseline values) of the evaluation that caused
	// this state change: notifications show them, so that people see why.
	Values   quality.Values  `json:"values"`
	Baseline *quality.Values `json:"baseline,omitempty"`

	ActiveAt   time.Time  `json:"active_at"`             // first evaluation of this occurrence where the condition held (startsAt)
	FiredAt    *time.Time `json:"fired_at,omitempty"`    // when it started firing; nil if it never did
	ResolvedAt *time.Time `json:"resolved_at,omitempty"` // set on resolved records only
	EvalTime   time.Time  `json:"eval_time"`             // evaluation (event) time of this state change

	// Actions are the rule's actions rendered for this alert; the control
	// API carries them out when the alert fires, once per Occurrence.
	Actions []Action `json:"actions,omitempty"`
}

// Action is one rendered action of a rule: its type (failover, pause, ...)
// and its parameters after templating.
type Action struct {
	Type   string            `json:"type"`
	Params map[string]string `json:"params,omitempty"`
}

// Occurrence identifies one occurrence of the alert: the fingerprint and
// ActiveAt in Unix nanoseconds, "0123456789abcdef-1700000000000000000".
// Every record of the occurrence (pending, firing, resolved) has the same
// one, and so does a record republished after a restart, since ActiveAt
// is restored; it is the idempotency key of the occurrence's actions.
func (a *Alert) Occurrence() string {
	return a.Fingerprint + "-" + strconv.FormatInt(a.ActiveAt.UnixNano(), 10)
}

// Fingerprint returns the identity of an alert given its labels (alertname
// included): FNV-1a 64 over the pairs sorted by name, each written as
// name 0xff value 0xff, printed as 16 lower-case hex digits. 0xff never
// occurs in UTF-8, so the separators make the encoding unambiguous: moving
// characters between a name and its value, or between pairs, changes the
// hash. The scheme is part of the record's contract (the alerts topic is
// keyed by it and restores depend on it): do not change it within schema
// version 1. 64 bits are plenty for the alerts of a deployment (MaxActive
// bounds them), and FNV is cheap on the evaluation path.
func Fingerprint(labels map[string]string) string {
	fp := fingerprint(labels, "", "")
	return string(fp[:])
}

// FNV-1a 64 parameters (hash/fnv's), inlined so that fingerprinting a key
// on every evaluation does not allocate a hasher.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fingerprint hashes labels with the label name set to value (when name is
// not empty), without building the merged map, into hex digits in an array
// rather than a string: the tracker fingerprints every key on every
// evaluation, and looks the array up without allocating.
func fingerprint(labels map[string]string, name, value string) [16]byte {
	var buf [16]string // label sets are small: keep the sort off the heap
	names := buf[:0]
	for n := range labels {
		if name == "" || n != name {
			names = append(names, n)
		}
	}
	if name != "" {
		names = append(names, name)
	}
	slices.Sort(names)
	h := uint64(fnvOffset64)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= fnvPrime64
		}
		h ^= 0xff
		h *= fnvPrime64
	}
	for _, n := range names {
		v := labels[n]
		if name != "" && n == name {
			v = value
		}
		add(n)
		add(v)
	}
	const hexDigits = "0123456789abcdef"
	var out [16]byte
	for i := 15; i >= 0; i-- {
		out[i] = hexDigits[h&0xf]
		h >>= 4
	}
	return out
}

// clone returns a deep copy, so that a record handed to the engine (which
// publishes it asynchronously) shares nothing with the tracker's state.
func (a *Alert) clone() *Alert {
	c := *a
	c.Labels = maps.Clone(a.Labels)
	c.Annotations = maps.Clone(a.Annotations)
	c.Values = cloneValues(a.Values)
	c.Baseline = cloneBaseline(a.Baseline)
	c.FiredAt = cloneTime(a.FiredAt)
	c.ResolvedAt = cloneTime(a.ResolvedAt)
	c.Actions = cloneActions(a.Actions)
	return &c
}

func cloneValues(v quality.Values) quality.Values {
	v.FailuresByCode = maps.Clone(v.FailuresByCode)
	v.FailuresByClass = maps.Clone(v.FailuresByClass)
	return v
}

func cloneBaseline(b *quality.Values) *quality.Values {
	if b == nil {
		return nil
	}
	c := cloneValues(*b)
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

func cloneActions(as []Action) []Action {
	if as == nil {
		return nil
	}
	c := make([]Action, len(as))
	for i, a := range as {
		c[i] = Action{Type: a.Type, Params: maps.Clone(a.Params)}
	}
	return c
}

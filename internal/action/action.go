// Package action is the record of one route change (failover, throttle,
// pause, channel fallback, restore...), as the control API writes it to
// the actions topic for its audit log and ClickHouse's actions table: who
// or which rule did it, why, and the route before and after.
package action

import (
	"encoding/json"
	"time"
)

// SchemaVersion is the version of the record this package writes.
const SchemaVersion = 1

// Actor kinds.
const (
	ActorOperator = "operator" // a person, through the API
	ActorRule     = "rule"     // an alert's action, carried out automatically
)

// Record is one route change.
type Record struct {
	SchemaVersion int       `json:"schema_version"`
	ID            string    `json:"id"`   // unique per change; the idempotency key of its audit row
	Time          time.Time `json:"time"` // when the change took effect
	Actor         string    `json:"actor"`
	ActorKind     string    `json:"actor_kind"`
	Action        string    `json:"action"` // failover, throttle, pause, resume, fallback_channel, restore, lock...
	UseCase       string    `json:"use_case,omitempty"`
	Target        string    `json:"target,omitempty"` // the number or channel acted on
	Reason        string    `json:"reason,omitempty"`
	// AlertFingerprint and Occurrence name the alert occurrence that
	// caused an automatic change (alert.Alert.Occurrence).
	AlertFingerprint string          `json:"alert_fingerprint,omitempty"`
	Occurrence       string          `json:"occurrence,omitempty"`
	Before           json.RawMessage `json:"before,omitempty"` // route state before, as the control API shows it
	After            json.RawMessage `json:"after,omitempty"`
	DryRun           bool            `json:"dry_run,omitempty"` // shadow mode: recorded, not done
}

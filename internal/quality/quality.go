// Package quality defines the values rules reason about: the quality
// metrics of one key (a phone number, a template, a use case...) over one
// period, and the dimensions keys are made of. The window store computes
// them; CEL rules read them; alerts carry them.
//
// Every metric is defined in docs/rules.md; the definitions here are the
// reference the docs repeat.
package quality

// Dim is a dimension a rule groups events by.
type Dim string

// The dimensions of rule keys. A rule's `by` is one or more of them.
const (
	DimWABA        Dim = "waba"         // event.WABAID
	DimPhoneNumber Dim = "phone_number" // event.PhoneNumberID
	DimTemplate    Dim = "template"     // attribution template; for opt-outs, the last template the user got from that number
	DimUseCase     Dim = "use_case"     // attribution use case (same rule for opt-outs)
	DimCampaign    Dim = "campaign"     // attribution campaign
	DimChannel     Dim = "channel"      // whatsapp, sms, email
	DimCountry     Dim = "country"      // recipient country calling code
)

// Dims lists every dimension.
var Dims = []Dim{DimWABA, DimPhoneNumber, DimTemplate, DimUseCase, DimCampaign, DimChannel, DimCountry}

// Values are the metrics of one key over one period (the rule's window, or
// its baseline period). Counts count distinct (message id, status) pairs:
// duplicates are counted once.
type Values struct {
	// Counts by status.
	Sent      int64 `json:"sent"`      // status sent
	Delivered int64 `json:"delivered"` // status delivered
	Read      int64 `json:"read"`      // status read
	Failed    int64 `json:"failed"`    // status failed
	Accepted  int64 `json:"accepted"`  // status accepted (SMS queued, e-mail processed)
	Deferred  int64 `json:"deferred"`  // status deferred (e-mail)

	// Attempts is Sent plus failed statuses whose message had no sent
	// status seen: every message we tried, once.
	Attempts int64 `json:"attempts"`
	// Reached is Delivered plus read statuses whose message had no
	// delivered status seen (WhatsApp may skip delivered).
	Reached int64 `json:"reached"`

	// Failures by error code and by error class (event.ErrorClass).
	FailuresByCode  map[int64]int64  `json:"failures_by_code,omitempty"`
	FailuresByClass map[string]int64 `json:"failures_by_class,omitempty"`

	OptOuts int64 `json:"opt_outs"` // opt-out verdicts (keyword, button, user_preferences, 131050, ...); resumes not counted
	Inbound int64 `json:"inbound"`  // inbound messages (replies)

	// Rates; 0 when the denominator is 0 (guard rules with min_volume).
	DeliveryRate float64 `json:"delivery_rate"` // Reached / Attempts, at most 1
	ReadRate     float64 `json:"read_rate"`     // Read / Reached, at most 1
	FailureRate  float64 `json:"failure_rate"`  // Failed / Attempts, at most 1
	OptOutRate   float64 `json:"opt_out_rate"`  // OptOuts / Reached (0 when nothing reached)

	// Sent→delivered latency in seconds, over the messages whose sent and
	// delivered statuses both fell in the horizon and whose delivered
	// status is in the period; 0 with LatencySamples 0 when none.
	LatencyP50     float64 `json:"latency_p50"`
	LatencyP90     float64 `json:"latency_p90"`
	LatencySamples int64   `json:"latency_samples"`

	// Numbers of the key's WABA (set only for keys that have the waba
	// dimension and none of phone_number, template): NumbersActive counts
	// the phone numbers with at least 50 attempts in the window,
	// NumbersDegraded those of them whose delivery rate fell below 80 % of
	// their own previous-hour rate. A number counts under the WABA of its
	// latest event only, with all its traffic (a number moved to another
	// WABA takes its history along). For whole-platform degradation rules.
	NumbersActive   int64 `json:"numbers_active"`
	NumbersDegraded int64 `json:"numbers_degraded"`

	// Latest state of the key up to the end of the period (not windowed):
	// the last value seen, "" when never seen.
	QualityEvent    string `json:"quality_event"`     // last phone_number_quality_update event (FLAGGED, DOWNGRADE, ...)
	MessagingTier   string `json:"messaging_tier"`    // current messaging limit tier (TIER_1K, ...)
	TemplateStatus  string `json:"template_status"`   // last template status event (APPROVED, PAUSED, DISABLED, ...)
	TemplateQuality string `json:"template_quality"`  // last template quality score (GREEN, YELLOW, RED, UNKNOWN)
	AccountEvent    string `json:"account_event"`     // last account_update event (ACCOUNT_VIOLATION, DISABLED_UPDATE, ...)
	AccountBanState string `json:"account_ban_state"` // last ban state (SCHEDULE_FOR_DISABLE, DISABLE, REINSTATE)
}

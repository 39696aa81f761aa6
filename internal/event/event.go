// Package event defines Vigia's normalized event: the one record type that
// ingest publishes to the events topic and that every later stage (evaluator,
// ClickHouse sink, control API) consumes.
//
// The JSON form is described by schemas/event.v1.json; the two are kept in
// sync by a test. Events never hold raw phone numbers or message bodies:
// recipients are pseudonymized with a keyed HMAC before an Event is built.
package event

import "time"

// SchemaVersion is the version of the event schema this package writes.
// Consumers must refuse events with a higher major version than they know.
const SchemaVersion = 1

// Kind says what an event is about.
type Kind string

// The kinds of event ingest produces.
const (
	KindStatus          Kind = "status"           // delivery status of an outbound message
	KindInbound         Kind = "inbound"          // a message a user sent to the business
	KindUserPreference  Kind = "user_preference"  // a user changed a messaging preference (marketing opt-out)
	KindPhoneQuality    Kind = "phone_quality"    // phone_number_quality_update
	KindTemplateStatus  Kind = "template_status"  // message_template_status_update
	KindTemplateQuality Kind = "template_quality" // message_template_quality_update
	KindAccountUpdate   Kind = "account_update"   // account_update (violations, bans, ...)
	KindAccountAlert    Kind = "account_alert"    // account_alerts
	KindCapability      Kind = "capability"       // business_capability_update
	KindUnknown         Kind = "unknown"          // a webhook field Vigia does not know yet
)

// Channel is the messaging channel an event belongs to.
type Channel string

// The channels Vigia watches.
const (
	ChannelWhatsApp Channel = "whatsapp"
	ChannelSMS      Channel = "sms"
	ChannelEmail    Channel = "email"
)

// Normalized delivery statuses. WhatsApp uses the first four as they are;
// SMS and e-mail statuses are mapped onto them (see the fallback packages).
const (
	StatusAccepted  = "accepted" // taken by the provider, not yet sent (SMS queued, e-mail processed)
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
	StatusDeferred  = "deferred" // temporary failure, the provider retries (e-mail)
)

// Event is one normalized fact. Optional parts are nil when they do not apply
// to the event's kind. Field documentation lives in schemas/event.v1.json.
type Event struct {
	SchemaVersion int       `json:"schema_version"`
	ID            string    `json:"id"`
	Kind          Kind      `json:"kind"`
	Channel       Channel   `json:"channel"`
	Source        string    `json:"source"`
	Field         string    `json:"field,omitempty"`
	EventTime     time.Time `json:"event_time"`
	ReceiveTime   time.Time `json:"receive_time"`

	WABAID             string `json:"waba_id,omitempty"`
	PhoneNumberID      string `json:"phone_number_id,omitempty"`
	DisplayPhoneNumber string `json:"display_phone_number,omitempty"`

	MessageID string `json:"message_id,omitempty"`
	Status    string `json:"status,omitempty"`

	Recipient    *Recipient    `json:"recipient,omitempty"`
	Error        *Error        `json:"error,omitempty"`
	Pricing      *Pricing      `json:"pricing,omitempty"`
	Conversation *Conversation `json:"conversation,omitempty"`
	Attribution  *Attribution  `json:"attribution,omitempty"`
	Inbound      *Inbound      `json:"inbound,omitempty"`
	OptOut       *OptOut       `json:"opt_out,omitempty"`
	Quality      *Quality      `json:"quality,omitempty"`
	Template     *Template     `json:"template,omitempty"`
	Account      *Account      `json:"account,omitempty"`
	Capability   *Capability   `json:"capability,omitempty"`
}

// Recipient is the pseudonymized counterpart of a message: the user a status
// is about, or the sender of an inbound message.
type Recipient struct {
	// Pseudonym is hex(HMAC-SHA256(key, identity))[:32]; stable for one key.
	Pseudonym string `json:"pseudonym"`
	// CountryCode is the E.164 country calling code ("55"), when the identity
	// is a phone number.
	CountryCode string `json:"country_code,omitempty"`
	// IDKind says what was pseudonymized: phone, bsuid or group.
	IDKind string `json:"id_kind"`
	// Type is Meta's recipient_type: individual or group.
	Type string `json:"type,omitempty"`
}

// Error is the first error attached to a failed status.
type Error struct {
	Code  int    `json:"code"`
	Class string `json:"class"`
	Title string `json:"title,omitempty"`
}

// Pricing is the pricing block of a status.
type Pricing struct {
	Billable bool   `json:"billable"`
	Model    string `json:"model,omitempty"`
	Type     string `json:"type,omitempty"`
	Category string `json:"category,omitempty"`
}

// Conversation is the conversation block of a status.
type Conversation struct {
	ID             string     `json:"id,omitempty"`
	OriginType     string     `json:"origin_type,omitempty"`
	ExpirationTime *time.Time `json:"expiration_time,omitempty"`
}

// Attribution tells which template, use case and campaign a message belongs
// to, as the sender declared it in biz_opaque_callback_data (or in the
// fallback channels' custom arguments).
type Attribution struct {
	Template string `json:"template,omitempty"`
	UseCase  string `json:"use_case,omitempty"`
	Campaign string `json:"campaign,omitempty"`
}

// Inbound describes a message a user sent. Its body is never kept.
type Inbound struct {
	MessageType      string `json:"message_type"`
	ContextMessageID string `json:"context_message_id,omitempty"`
}

// OptOut is the verdict that a user asked to stop receiving messages.
type OptOut struct {
	// Source is keyword, button, user_preferences or error_131050.
	Source string `json:"source"`
	// Category is what the user opted out of when known (marketing_messages).
	Category string `json:"category,omitempty"`
	// Resumed is true when the user opted back in (user_preferences resume).
	Resumed bool `json:"resumed,omitempty"`
}

// Quality is a phone number quality or limit change.
type Quality struct {
	Event        string `json:"event,omitempty"`
	CurrentLimit string `json:"current_limit,omitempty"`
	OldLimit     string `json:"old_limit,omitempty"`
}

// Template is a template status or quality change.
type Template struct {
	ID              string `json:"id,omitempty"`
	Name            string `json:"name,omitempty"`
	Language        string `json:"language,omitempty"`
	Event           string `json:"event,omitempty"`
	Reason          string `json:"reason,omitempty"`
	OtherInfoTitle  string `json:"other_info_title,omitempty"`
	PreviousQuality string `json:"previous_quality,omitempty"`
	NewQuality      string `json:"new_quality,omitempty"`
}

// Account is an account_update or account_alerts change.
type Account struct {
	Event         string `json:"event,omitempty"`
	ViolationType string `json:"violation_type,omitempty"`
	BanState      string `json:"ban_state,omitempty"`
	BanDate       string `json:"ban_date,omitempty"`
	EntityType    string `json:"entity_type,omitempty"`
	EntityID      string `json:"entity_id,omitempty"`
	AlertSeverity string `json:"alert_severity,omitempty"`
	AlertStatus   string `json:"alert_status,omitempty"`
	AlertType     string `json:"alert_type,omitempty"`
}

// Capability is a business_capability_update: the portfolio's limits.
type Capability struct {
	// MessagingLimit is the tier as Meta names it (TIER_2K, ...) or the
	// number of unique users per 24 h as a decimal string.
	MessagingLimit     string `json:"messaging_limit,omitempty"`
	MaxPhoneNumbers    int    `json:"max_phone_numbers,omitempty"`
	MaxDailyConvLegacy string `json:"max_daily_conversation_per_phone,omitempty"`
}

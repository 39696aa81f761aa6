// Package meta verifies and normalizes WhatsApp Business Platform (Cloud API)
// webhooks: the X-Hub-Signature-256 check over the raw body, and the
// translation of every webhook field Vigia knows into event.Event values.
//
// Parsing is lenient where Meta is inconsistent (numbers as int or string,
// the template quality update arriving under the wrong field name, unknown
// keys) and strict where data would be wrong otherwise (a status without a
// message id is rejected, not guessed).
package meta

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"vigia/internal/attribution"
	"vigia/internal/event"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
)

// Source names the origin of events built here.
const Source = "meta"

// ErrMalformed wraps every reason a whole payload cannot be read.
var ErrMalformed = errors.New("malformed webhook payload")

// Reject is one update inside an otherwise readable payload that could not be
// normalized. Ingest sends it, with its reason, to the dead-letter topic.
type Reject struct {
	Reason string          // short machine-readable cause, a metric label
	Detail string          // what exactly was wrong
	Field  string          // the webhook field it came from
	WABAID string          // the entry it came from
	Item   json.RawMessage // the update as received
}

// Result is what one webhook payload turned into.
type Result struct {
	Events  []event.Event
	Rejects []Reject
	// WABAID is the first entry's id, the Kafka key for the raw payload.
	WABAID string
}

// Normalizer turns Meta payloads into events. It is safe for concurrent use.
type Normalizer struct {
	pseudo *pseudo.Pseudonymizer
	dir    *Directory
	optout *optout.Detector
}

// NewNormalizer returns a Normalizer. dir and detector must not be nil.
func NewNormalizer(p *pseudo.Pseudonymizer, dir *Directory, detector *optout.Detector) *Normalizer {
	return &Normalizer{pseudo: p, dir: dir, optout: detector}
}

// Normalize parses one verified webhook body received at received. An error
// (wrapping ErrMalformed) means nothing in the payload could be trusted; the
// caller keeps the whole payload in the dead-letter topic.
func (n *Normalizer) Normalize(body []byte, received time.Time) (Result, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Object != "whatsapp_business_account" {
		return Result{}, fmt.Errorf("%w: object is %q, want whatsapp_business_account", ErrMalformed, env.Object)
	}
	var res Result
	received = received.UTC()
	for _, e := range env.Entry {
		waba := string(e.ID)
		if res.WABAID == "" {
			res.WABAID = waba
		}
		entryTime := unixTime(e.Time)
		for _, ch := range e.Changes {
			c := changeCtx{n: n, res: &res, waba: waba, field: ch.Field, received: received, entryTime: entryTime, raw: ch.Value}
			c.normalize()
		}
	}
	return res, nil
}

// changeCtx carries what every event of one change shares.
type changeCtx struct {
	n         *Normalizer
	res       *Result
	waba      string
	field     string
	received  time.Time
	entryTime time.Time
	raw       json.RawMessage
	// set by the messages field
	phoneID, display string
}

func (c *changeCtx) reject(reason, detail string, item json.RawMessage) {
	c.res.Rejects = append(c.res.Rejects, Reject{Reason: reason, Detail: detail, Field: c.field, WABAID: c.waba, Item: item})
}

// base returns an event with the fields every event of this change shares.
func (c *changeCtx) base(kind event.Kind, id string, at time.Time) event.Event {
	if at.IsZero() {
		at = c.entryTime
	}
	if at.IsZero() {
		at = c.received
	}
	return event.Event{
		SchemaVersion:      event.SchemaVersion,
		ID:                 id,
		Kind:               kind,
		Channel:            event.ChannelWhatsApp,
		Source:             Source,
		Field:              c.field,
		EventTime:          at,
		ReceiveTime:        c.received,
		WABAID:             c.waba,
		PhoneNumberID:      c.phoneID,
		DisplayPhoneNumber: c.display,
	}
}

func (c *changeCtx) normalize() {
	switch c.field {
	case "messages", "user_preferences":
		c.messages()
	case "phone_number_quality_update":
		c.phoneQuality()
	case "message_template_status_update", "message_template_quality_update":
		c.template()
	case "account_update":
		c.accountUpdate()
	case "account_alerts":
		c.accountAlert()
	case "business_capability_update":
		c.capability()
	default:
		c.unknown()
	}
}

// valueID identifies a management change by its content: Meta re-sends the
// same bytes on a retry, so the retry gets the same id.
func (c *changeCtx) valueID() string {
	sum := sha256.Sum256(c.raw)
	return event.NewID("wa", c.field, c.waba, strconv.FormatInt(c.entryTime.Unix(), 10), string(sum[:]))
}

func (c *changeCtx) decode(v any) bool {
	if err := json.Unmarshal(c.raw, v); err != nil {
		c.reject("bad_value", err.Error(), c.raw)
		return false
	}
	return true
}

func (c *changeCtx) messages() {
	// Fast path: decode the whole value into typed slices in one pass. Only
	// when that fails, or an update turns out invalid, decode update by
	// update, so that exactly the bad ones are rejected with their bytes.
	var typed messagesTyped
	if err := json.Unmarshal(c.raw, &typed); err == nil {
		c.phoneID, c.display = string(typed.Metadata.PhoneNumberID), string(typed.Metadata.DisplayPhoneNumber)
		mark := len(c.res.Events)
		ok := true
		for i := 0; ok && i < len(typed.Statuses); i++ {
			ok = c.status(&typed.Statuses[i], nil)
		}
		for i := 0; ok && i < len(typed.Messages); i++ {
			ok = c.inbound(&typed.Messages[i], nil)
		}
		for i := 0; ok && i < len(typed.UserPreferences); i++ {
			ok = c.userPreference(&typed.UserPreferences[i], nil)
		}
		if ok {
			c.n.dir.Learn(c.display, c.phoneID, c.waba)
			return
		}
		c.res.Events = c.res.Events[:mark]
	}
	var v messagesValue
	if !c.decode(&v) {
		return
	}
	c.phoneID, c.display = string(v.Metadata.PhoneNumberID), string(v.Metadata.DisplayPhoneNumber)
	c.n.dir.Learn(c.display, c.phoneID, c.waba)
	for _, raw := range v.Statuses {
		var st status
		if err := json.Unmarshal(raw, &st); err != nil {
			c.reject("bad_status", err.Error(), raw)
			continue
		}
		c.status(&st, raw)
	}
	for _, raw := range v.Messages {
		var m inbound
		if err := json.Unmarshal(raw, &m); err != nil {
			c.reject("bad_message", err.Error(), raw)
			continue
		}
		c.inbound(&m, raw)
	}
	for _, raw := range v.UserPreferences {
		var p userPreference
		if err := json.Unmarshal(raw, &p); err != nil {
			c.reject("bad_value", err.Error(), raw)
			continue
		}
		c.userPreference(&p, raw)
	}
}

// invalid handles an update that decoded but cannot become an event: on the
// slow path (raw set) it is rejected with its bytes; on the fast path (raw
// nil) it returns false so that the change is redone update by update.
func (c *changeCtx) invalid(reason, detail string, raw json.RawMessage) bool {
	if raw != nil {
		c.reject(reason, detail, raw)
	}
	return false
}

// status appends the event of one status; false means it was invalid (see
// invalid).
func (c *changeCtx) status(s *status, raw json.RawMessage) bool {
	st := strings.ToLower(strings.TrimSpace(s.Status))
	if s.ID == "" || st == "" {
		return c.invalid("bad_status", "status without id or status", raw)
	}
	at, ok := parseUnix(s.Timestamp)
	if !ok {
		return c.invalid("bad_status", fmt.Sprintf("timestamp %q is not a unix time", s.Timestamp), raw)
	}
	ev := c.base(event.KindStatus, event.NewID("wa", "status", s.ID, st), at)
	ev.MessageID = s.ID
	ev.Status = st
	ev.Recipient = c.recipient(string(s.RecipientID), s.RecipientUserID, s.RecipientType)
	ev.Attribution = attribution.Parse(s.BizOpaqueCallbackData)
	if len(s.Errors) > 0 {
		code := int(s.Errors[0].Code.int())
		ev.Error = &event.Error{Code: code, Class: event.ErrorClass(code), Title: s.Errors[0].Title}
		if code == 131050 {
			ev.OptOut = &event.OptOut{Source: "error_131050", Category: "marketing_messages"}
		}
	}
	if p := s.Pricing; p != nil {
		ev.Pricing = &event.Pricing{Billable: p.Billable != nil && *p.Billable, Model: p.PricingModel, Type: p.Type, Category: p.Category}
	}
	if cv := s.Conversation; cv != nil {
		ev.Conversation = &event.Conversation{ID: cv.ID, OriginType: cv.Origin.Type}
		if t, ok := parseUnix(cv.ExpirationTimestamp); ok && !t.IsZero() {
			ev.Conversation.ExpirationTime = &t
		}
	}
	c.res.Events = append(c.res.Events, ev)
	return true
}

// recipient pseudonymizes whichever identity a status or message carries:
// the phone number (wa_id) first, for continuity with older events; the
// BSUID for username users; the group id for group messages.
func (c *changeCtx) recipient(phone, bsuid, typ string) *event.Recipient {
	var r event.Recipient
	switch {
	case typ == "group" && phone != "":
		r = c.n.pseudo.Group(phone)
	case phone != "":
		r = c.n.pseudo.Phone(phone)
	case bsuid != "":
		r = c.n.pseudo.BSUID(bsuid)
	default:
		return nil
	}
	r.Type = typ
	return &r
}

func (c *changeCtx) inbound(m *inbound, raw json.RawMessage) bool {
	if m.ID == "" {
		return c.invalid("bad_message", "message without id", raw)
	}
	at, ok := parseUnix(m.Timestamp)
	if !ok {
		return c.invalid("bad_message", fmt.Sprintf("timestamp %q is not a unix time", m.Timestamp), raw)
	}
	ev := c.base(event.KindInbound, event.NewID("wa", "inbound", m.ID), at)
	ev.MessageID = m.ID
	ev.Recipient = c.recipient(string(m.From), m.FromUserID, "individual")
	ev.Inbound = &event.Inbound{MessageType: m.Type}
	if m.Context != nil {
		ev.Inbound.ContextMessageID = m.Context.ID
	}
	// The verdict is all that leaves this function; the text stays here.
	switch {
	case m.Text != nil && c.n.optout.Text(m.Text.Body):
		ev.OptOut = &event.OptOut{Source: "keyword"}
	case m.Button != nil && c.n.optout.Button(m.Button.Payload, m.Button.Text):
		ev.OptOut = &event.OptOut{Source: "button"}
	case m.Interactive != nil && m.Interactive.ButtonReply != nil &&
		c.n.optout.Button(m.Interactive.ButtonReply.ID, m.Interactive.ButtonReply.Title):
		ev.OptOut = &event.OptOut{Source: "button"}
	case m.Interactive != nil && m.Interactive.ListReply != nil &&
		c.n.optout.Button(m.Interactive.ListReply.ID, m.Interactive.ListReply.Title):
		ev.OptOut = &event.OptOut{Source: "button"}
	}
	c.res.Events = append(c.res.Events, ev)
	return true
}

func (c *changeCtx) userPreference(p *userPreference, raw json.RawMessage) bool {
	at, ok := parseUnix(p.Timestamp)
	if !ok {
		return c.invalid("bad_value", fmt.Sprintf("timestamp %q is not a unix time", p.Timestamp), raw)
	}
	r := c.recipient(string(p.WaID), p.UserID, "individual")
	if r == nil {
		return c.invalid("bad_value", "user preference without wa_id or user_id", raw)
	}
	value := strings.ToLower(p.Value)
	ev := c.base(event.KindUserPreference, event.NewID("wa", "pref", r.Pseudonym, p.Category, value, string(p.Timestamp)), at)
	ev.Recipient = r
	ev.OptOut = &event.OptOut{Source: "user_preferences", Category: p.Category, Resumed: value == "resume"}
	c.res.Events = append(c.res.Events, ev)
	return true
}

func (c *changeCtx) phoneQuality() {
	var v phoneQualityValue
	if !c.decode(&v) {
		return
	}
	c.display = string(v.DisplayPhoneNumber)
	if p, ok := c.n.dir.Lookup(c.display); ok {
		c.phoneID = p.ID
	}
	ev := c.base(event.KindPhoneQuality, c.valueID(), time.Time{})
	ev.Quality = &event.Quality{Event: v.Event, CurrentLimit: string(v.CurrentLimit), OldLimit: string(v.OldLimit)}
	c.res.Events = append(c.res.Events, ev)
}

// template handles both template fields. Meta's own sample of the quality
// update carries field message_template_status_update, so the kind follows
// the content (a new_quality_score), not the field name.
func (c *changeCtx) template() {
	var v templateValue
	if !c.decode(&v) {
		return
	}
	kind := event.KindTemplateStatus
	if v.NewQualityScore != "" {
		kind = event.KindTemplateQuality
	}
	ev := c.base(kind, c.valueID(), time.Time{})
	ev.Template = &event.Template{
		ID: string(v.MessageTemplateID), Name: v.MessageTemplateName, Language: v.MessageTemplateLanguage,
		Event: v.Event, Reason: string(v.Reason),
		PreviousQuality: v.PreviousQualityScore, NewQuality: v.NewQualityScore,
	}
	if v.OtherInfo != nil {
		ev.Template.OtherInfoTitle = v.OtherInfo.Title
	}
	ev.Attribution = attribution.FromParts(v.MessageTemplateName, "", "")
	c.res.Events = append(c.res.Events, ev)
}

func (c *changeCtx) accountUpdate() {
	var v accountUpdateValue
	if !c.decode(&v) {
		return
	}
	ev := c.base(event.KindAccountUpdate, c.valueID(), time.Time{})
	ev.Account = &event.Account{Event: v.Event}
	if v.BanInfo != nil {
		ev.Account.BanState, ev.Account.BanDate = string(v.BanInfo.WabaBanState), string(v.BanInfo.WabaBanDate)
	}
	if v.ViolationInfo != nil {
		ev.Account.ViolationType = v.ViolationInfo.ViolationType
	}
	c.res.Events = append(c.res.Events, ev)
}

func (c *changeCtx) accountAlert() {
	var v accountAlertValue
	if !c.decode(&v) {
		return
	}
	ev := c.base(event.KindAccountAlert, c.valueID(), time.Time{})
	ev.Account = &event.Account{
		EntityType: v.EntityType, EntityID: string(v.EntityID),
		AlertSeverity: v.AlertInfo.AlertSeverity, AlertStatus: v.AlertInfo.AlertStatus, AlertType: v.AlertInfo.AlertType,
	}
	if v.EntityType == "PHONE_NUMBER" {
		ev.PhoneNumberID = string(v.EntityID)
	}
	c.res.Events = append(c.res.Events, ev)
}

func (c *changeCtx) capability() {
	var v capabilityValue
	if !c.decode(&v) {
		return
	}
	ev := c.base(event.KindCapability, c.valueID(), time.Time{})
	limit := v.MessagingLimit
	if limit == "" {
		limit = v.MaxDailyConversationsPerBusiness
	}
	maxNumbers := v.MaxPhoneNumbersPerBusiness
	if maxNumbers == "" {
		maxNumbers = v.MaxPhoneNumbersPerWABA
	}
	ev.Capability = &event.Capability{
		MessagingLimit:     string(limit),
		MaxPhoneNumbers:    int(maxNumbers.int()),
		MaxDailyConvLegacy: string(v.MaxDailyConversationPerPhone),
	}
	c.res.Events = append(c.res.Events, ev)
}

// unknown keeps a field Vigia does not know as a generic event: its name and
// time, not its content (which may hold personal data).
func (c *changeCtx) unknown() {
	c.res.Events = append(c.res.Events, c.base(event.KindUnknown, c.valueID(), time.Time{}))
}

// parseUnix reads a unix time in seconds (or milliseconds, when the value is
// too large to be seconds). An empty value is a zero time and ok.
func parseUnix(f flexString) (time.Time, bool) {
	if f == "" {
		return time.Time{}, true
	}
	n, err := strconv.ParseInt(string(f), 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, false
	}
	return event.UnixTime(n)
}

func unixTime(f flexString) time.Time {
	t, _ := parseUnix(f)
	return t
}

// Package twilio verifies and normalizes the status callbacks of Twilio
// Programmable Messaging, Vigia's SMS fallback channel: the form-encoded POST
// Twilio sends to a message's StatusCallback URL each time its status changes.
//
// The callback is translated into the same event.Event a WhatsApp status
// becomes, so that rules compare channels with one vocabulary: Twilio's
// statuses are mapped onto the event.Status* constants and its error codes
// onto the event.Class* error classes. The recipient's number is
// pseudonymized before the event exists; the message body, which Twilio may
// include, is never read.
//
// Attribution cannot travel inside an SMS, so the sender puts it in the
// StatusCallback URL it gives Twilio (…/twilio/status?t=order_update&u=billing
// &c=bf2026&waba_id=123); Twilio calls that URL back verbatim, and the query
// string is covered by the signature.
package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"vigia/internal/attribution"
	"vigia/internal/event"
	"vigia/internal/pseudo"
)

// Source names the origin of events built here.
const Source = "twilio"

// Normalization errors. Every error Normalize returns wraps ErrMalformed;
// an unmapped status additionally wraps ErrUnknownStatus, so the caller can
// tell "Twilio added a status" from "this is not a status callback" when it
// labels the dead letter.
var (
	ErrMalformed     = errors.New("malformed twilio status callback")
	ErrUnknownStatus = errors.New("unknown twilio message status")
)

// statuses maps Twilio's MessageStatus values onto Vigia's. Everything that
// happens before the message leaves Twilio is "accepted"; Twilio's two
// failure statuses (failed: Twilio could not send; undelivered: the carrier
// reported non-delivery) and a cancelled scheduled message are all "failed",
// the error code telling them apart. receiving/received belong to inbound
// messages and never reach a status callback, so they are unknown here.
var statuses = map[string]string{
	"queued":      event.StatusAccepted,
	"accepted":    event.StatusAccepted,
	"scheduled":   event.StatusAccepted,
	"sending":     event.StatusAccepted,
	"sent":        event.StatusSent,
	"delivered":   event.StatusDelivered,
	"read":        event.StatusRead,
	"undelivered": event.StatusFailed,
	"failed":      event.StatusFailed,
	"canceled":    event.StatusFailed,
}

// twilioError is what Vigia knows about one Twilio error code.
type twilioError struct {
	class string
	title string
}

// errorCodes classifies the Twilio codes that matter for alerting; the titles
// are Twilio's own names for the codes. 30004 (message blocked) is deliberately
// undeliverable, not opted_out: Twilio lists a prior STOP as only one of its
// causes, next to carrier blocklists, unreachable devices and landlines, and
// an opt-out verdict suppresses a user, which a guess must not do. A STOP is
// still seen, as 21610, on the next send to that user.
var errorCodes = map[int]twilioError{
	30001: {event.ClassThrottle, "Queue overflow"},
	30022: {event.ClassThrottle, "US A2P 10DLC - Rate Limits Exceeded"},
	14107: {event.ClassThrottle, "SMS send rate limit exceeded"},
	21611: {event.ClassThrottle, "This 'From' number has exceeded the maximum number of queued messages"},
	63017: {event.ClassThrottle, "Rate limit exceeded"},
	30002: {event.ClassAccount, "Account suspended"},
	30003: {event.ClassUndeliverable, "Unreachable destination handset"},
	30004: {event.ClassUndeliverable, "Message blocked"},
	30005: {event.ClassUndeliverable, "Unknown destination handset"},
	30006: {event.ClassUndeliverable, "Landline or unreachable carrier"},
	30007: {event.ClassSpam, "Message filtered"},
	21610: {event.ClassOptedOut, "Attempt to send to unsubscribed recipient"},
}

// OptOutSource is the event.OptOut source of a failure with code 21610: the
// recipient replied STOP (or another opt-out keyword) and Twilio now refuses
// to message them.
const OptOutSource = "sms_stop"

// Normalizer turns Twilio status callbacks into events. Pseudo must not be
// nil. WABAID is the WhatsApp Business Account the SMS traffic is accounted
// to when the callback URL does not name one. A Normalizer is safe for
// concurrent use.
type Normalizer struct {
	Pseudo *pseudo.Pseudonymizer
	WABAID string
}

// Normalize turns one verified callback into an event. form is the POST
// body, query the query string of the URL Twilio called (it carries the
// attribution), received the time the request arrived.
//
// Twilio callbacks carry no timestamp of the status change (RawDlrDoneDate,
// on some delivered/undelivered callbacks, is the carrier's minute-precision
// local time in an unknown time zone), so EventTime is the receive time.
//
// An error (wrapping ErrMalformed) means the callback cannot become an event;
// the caller keeps it in the dead-letter topic.
func (n *Normalizer) Normalize(form url.Values, query url.Values, received time.Time) (event.Event, error) {
	sid := firstOf(form, "MessageSid", "SmsSid")
	if sid == "" {
		return event.Event{}, fmt.Errorf("%w: no MessageSid", ErrMalformed)
	}
	raw := strings.ToLower(firstOf(form, "MessageStatus", "SmsStatus"))
	if raw == "" {
		return event.Event{}, fmt.Errorf("%w: no MessageStatus", ErrMalformed)
	}
	status, ok := statuses[raw]
	if !ok {
		return event.Event{}, fmt.Errorf("%w: %w %.32q", ErrMalformed, ErrUnknownStatus, raw)
	}
	code, err := errorCode(form.Get("ErrorCode"))
	if err != nil {
		return event.Event{}, err
	}

	received = received.UTC()
	from := strings.TrimSpace(form.Get("From"))
	ev := event.Event{
		SchemaVersion: event.SchemaVersion,
		// The id uses the mapped status, so queued, sending and accepted
		// callbacks of one message collapse into one accepted event when
		// consumers deduplicate by id, and a retried callback keeps its id.
		ID:                 event.NewID("sms", "status", sid, status),
		Kind:               event.KindStatus,
		Channel:            event.ChannelSMS,
		Source:             Source,
		EventTime:          received,
		ReceiveTime:        received,
		WABAID:             n.wabaID(query),
		PhoneNumberID:      phoneNumberID(form.Get("MessagingServiceSid"), from),
		DisplayPhoneNumber: from, // the business's own sender, not personal data
		MessageID:          sid,
		Status:             status,
		Attribution: attribution.FromParts(
			firstOf(query, "template", "t"),
			firstOf(query, "use_case", "u"),
			firstOf(query, "campaign", "c"),
		),
	}
	if to := strings.TrimSpace(form.Get("To")); to != "" {
		r := n.Pseudo.Phone(to)
		r.Type = "individual"
		ev.Recipient = &r
	}
	if code != 0 {
		te, known := errorCodes[code]
		if !known {
			te.class = event.ClassOther
		}
		ev.Error = &event.Error{Code: code, Class: te.class, Title: te.title}
		if code == 21610 {
			ev.OptOut = &event.OptOut{Source: OptOutSource}
		}
	}
	return ev, nil
}

// errorCode reads ErrorCode; absent or 0 means no error. Anything else that
// is not a positive integer is malformed rather than guessed at.
func errorCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	code, err := strconv.Atoi(s)
	if err != nil || code < 0 {
		return 0, fmt.Errorf("%w: ErrorCode %.16q is not a number", ErrMalformed, s)
	}
	return code, nil
}

// wabaID prefers the waba_id the sender put in the callback URL, so one
// Vigia can account SMS traffic of several WABAs; a value that is not a
// WABA id (all digits) is ignored rather than trusted as a Kafka key.
func (n *Normalizer) wabaID(query url.Values) string {
	if id := strings.TrimSpace(query.Get("waba_id")); id != "" && isDigits(id) {
		return id
	}
	return n.WABAID
}

// phoneNumberID names the sender the way rules group by it: the Messaging
// Service when one was used (its number pool is one logical sender), else
// the From number prefixed with "sms:" so it can never collide with a Meta
// phone number id. An alphanumeric sender id, which has no digits, is kept
// as it is; it is a brand name, not personal data.
func phoneNumberID(service, from string) string {
	if service = strings.TrimSpace(service); service != "" {
		return service
	}
	if from == "" {
		return ""
	}
	if d := pseudo.Digits(from); d != "" {
		return "sms:" + d
	}
	return "sms:" + from
}

// firstOf returns the first non-empty value among keys: Twilio still sends
// the legacy SmsSid/SmsStatus next to MessageSid/MessageStatus, and the
// attribution keys have a long and a short spelling.
func firstOf(v url.Values, keys ...string) string {
	for _, k := range keys {
		if s := strings.TrimSpace(v.Get(k)); s != "" {
			return s
		}
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

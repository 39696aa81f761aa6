// Package sendgrid verifies and normalizes the SendGrid Event Webhook, Vigia's
// e-mail fallback channel: a JSON array of delivery and engagement events,
// signed with ECDSA P-256 (the Signed Event Webhook).
//
// Each event is translated into the same event.Event a WhatsApp status
// becomes, so that rules compare channels with one vocabulary. Privacy is
// decided here: the address is pseudonymized before an event exists, and
// SendGrid's free-text fields (reason, response, url, useragent, ip), which
// routinely quote the address, are never copied; error titles are fixed
// strings chosen from SendGrid's documented enumerations.
//
// Attribution comes from custom arguments, which SendGrid echoes at the top
// level of every event: template / use_case / campaign as separate arguments,
// or a single "vigia" argument in the convention of internal/attribution
// ("t=order_update;u=billing;c=bf2026"); a waba_id argument names the WABA
// the e-mail traffic is accounted to.
package sendgrid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"vigia/internal/attribution"
	"vigia/internal/event"
	"vigia/internal/meta"
	"vigia/internal/pseudo"
)

// Source names the origin of events built here.
const Source = "sendgrid"

// ErrMalformed wraps every reason a whole payload cannot be read.
var ErrMalformed = errors.New("malformed sendgrid event webhook payload")

// RejectReason is the Reject.Reason of an element that cannot be normalized.
const RejectReason = "bad_event"

// Result is what one webhook payload turned into.
type Result struct {
	Events  []event.Event
	Rejects []meta.Reject
}

// Normalizer turns SendGrid payloads into events. Pseudo must not be nil.
// WABAID is the WhatsApp Business Account the e-mail traffic is accounted to
// when an event carries no waba_id custom argument. A Normalizer is safe for
// concurrent use.
type Normalizer struct {
	Pseudo *pseudo.Pseudonymizer
	WABAID string
}

// Normalize parses one verified webhook body received at received. An error
// (wrapping ErrMalformed) means the body is not a JSON array and nothing in
// it could be trusted; the caller keeps the whole payload in the dead-letter
// topic. Elements that cannot be normalized become Rejects, the rest events.
// Events Vigia deliberately ignores (click, machine opens) produce neither.
func (n *Normalizer) Normalize(body []byte, received time.Time) (Result, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return Result{}, fmt.Errorf("%w: body is not a json array", ErrMalformed)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var res Result
	received = received.UTC()
	for _, raw := range items {
		n.element(&res, raw, received)
	}
	return res, nil
}

// fields is one element, decoded lazily: SendGrid adds properties over time
// and custom arguments are arbitrary keys, so a fixed struct would hide them.
type fields map[string]json.RawMessage

// str returns a string property. Numbers are taken as their literal text,
// since SendGrid has sent ids both ways; other types count as absent.
func (f fields) str(key string) string {
	raw, ok := f[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var num json.Number
	if json.Unmarshal(raw, &num) == nil {
		return num.String()
	}
	return ""
}

// boolean reads a flag sent as true or "true".
func (f fields) boolean(key string) bool {
	var b bool
	if json.Unmarshal(f[key], &b) == nil {
		return b
	}
	return strings.EqualFold(f.str(key), "true")
}

// unix reads the event timestamp: unix seconds, as a number or numeric
// string (milliseconds when too large to be seconds, as for Meta). A missing
// timestamp is the zero time; one that is not a non-negative number, or that
// lies past year 9999, is not ok.
func (f fields) unix(key string) (time.Time, bool) {
	s := f.str(key)
	if s == "" {
		_, present := f[key]
		return time.Time{}, !present || string(f[key]) == "null"
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		x, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(x) || x < 0 || x >= 1e15 {
			return time.Time{}, false
		}
		n = int64(x)
	}
	return event.UnixTime(n)
}

func (n *Normalizer) element(res *Result, raw json.RawMessage, received time.Time) {
	var f fields
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		res.Rejects = append(res.Rejects, meta.Reject{Reason: RejectReason, Detail: "element is not a json object", WABAID: n.WABAID, Item: raw})
		return
	}
	name := strings.ToLower(f.str("event"))
	waba := n.WABAID
	if id := f.str("waba_id"); id != "" && isDigits(id) {
		waba = id
	}
	reject := func(detail string) {
		res.Rejects = append(res.Rejects, meta.Reject{Reason: RejectReason, Detail: detail, Field: cleanName(name), WABAID: waba, Item: raw})
	}
	eventID := f.str("sg_event_id")
	if eventID == "" {
		reject("event without sg_event_id")
		return
	}
	if name == "" {
		reject("event without an event name")
		return
	}
	at, ok := f.unix("timestamp")
	if !ok {
		reject("timestamp is not a unix time")
		return
	}
	if at.IsZero() {
		at = received
	}

	ev := event.Event{
		SchemaVersion: event.SchemaVersion,
		ID:            event.NewID("email", eventID),
		Channel:       event.ChannelEmail,
		Source:        Source,
		Field:         cleanName(name),
		EventTime:     at,
		ReceiveTime:   received,
		WABAID:        waba,
	}
	switch name {
	case "processed":
		n.status(&ev, f, event.StatusAccepted)
	case "delivered":
		n.status(&ev, f, event.StatusDelivered)
	case "deferred":
		n.status(&ev, f, event.StatusDeferred)
	case "open":
		// Apple Mail Privacy Protection and similar proxies fetch every
		// tracking pixel on delivery; SendGrid flags those opens, and
		// counting them as reads would invent engagement.
		if f.boolean("sg_machine_open") {
			return
		}
		n.status(&ev, f, event.StatusRead)
	case "bounce":
		n.status(&ev, f, event.StatusFailed)
		ev.Error = bounceError(f.str("type"), f.str("bounce_classification"), f.str("status"))
	case "dropped":
		n.status(&ev, f, event.StatusFailed)
		var unsubscribed bool
		ev.Error, unsubscribed = droppedError(f.str("reason"))
		if unsubscribed {
			ev.OptOut = &event.OptOut{Source: OptOutDropped}
		}
	case "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe":
		n.common(&ev, f)
		ev.Kind = event.KindUserPreference
		ev.OptOut = &event.OptOut{Source: name, Resumed: name == "group_resubscribe"}
		if g := f.str("asm_group_id"); g != "" && isDigits(g) {
			ev.OptOut.Category = "asm_group:" + g
		}
	case "click":
		// A click proves nothing a delivered or open event does not, and its
		// url often carries personal tokens; it is dropped, not counted.
		return
	default:
		// An event Vigia does not know yet (account_status_change, or one
		// SendGrid adds later) is kept by name and time only, like an unknown
		// WhatsApp webhook field, so that it shows up without leaking content.
		ev.Kind = event.KindUnknown
	}
	res.Events = append(res.Events, ev)
}

// OptOutDropped is the event.OptOut source of a message SendGrid dropped
// because the address is on an unsubscribe list: the e-mail counterpart of
// WhatsApp's error 131050 and Twilio's 21610.
const OptOutDropped = "dropped_unsubscribed"

// status fills a delivery status event.
func (n *Normalizer) status(ev *event.Event, f fields, status string) {
	n.common(ev, f)
	ev.Kind = event.KindStatus
	ev.Status = status
}

// common fills what every message-related event carries.
func (n *Normalizer) common(ev *event.Event, f fields) {
	ev.MessageID = f.str("sg_message_id")
	if addr := f.str("email"); addr != "" {
		r := n.Pseudo.Email(addr)
		r.Type = "individual"
		ev.Recipient = &r
	}
	ev.Attribution = attributionOf(f)
}

// attributionOf reads the "vigia" argument first and lets the separate
// template / use_case / campaign arguments override it key by key, so a
// sender can set a default campaign once and a template per message.
func attributionOf(f fields) *event.Attribution {
	var a event.Attribution
	if p := attribution.Parse(f.str("vigia")); p != nil {
		a = *p
	}
	if v := f.str("template"); v != "" {
		a.Template = v
	}
	if v := f.str("use_case"); v != "" {
		a.UseCase = v
	}
	if v := f.str("campaign"); v != "" {
		a.Campaign = v
	}
	return attribution.FromParts(a.Template, a.UseCase, a.Campaign)
}

// bounceClasses maps SendGrid's documented bounce_classification values.
// Technical covers DNS, TLS and server faults on the receiving side: a
// problem, but neither the address's nor the sender's reputation.
var bounceClasses = map[string]string{
	"invalid address":              event.ClassUndeliverable,
	"mailbox unavailable":          event.ClassUndeliverable,
	"reputation":                   event.ClassSpam,
	"content":                      event.ClassSpam,
	"frequency or volume too high": event.ClassThrottle,
	"technical":                    event.ClassOther,
}

// bounceError classifies a bounce. typ is "bounce" (the receiving server
// rejected the address) or "blocked" (it rejected the message or the sending
// IP); the classification, when SendGrid sent a known one, is the better
// signal. Code is 0: an SMTP enhanced status (5.1.1) is not an integer code,
// so a well-formed one goes into the title instead.
func bounceError(typ, classification, status string) *event.Error {
	verb := "bounced"
	class := event.ClassUndeliverable
	if strings.EqualFold(typ, "blocked") {
		verb, class = "blocked", event.ClassSpam
	}
	label := "unclassified"
	if c, ok := bounceClasses[strings.ToLower(classification)]; ok {
		label, class = strings.ToLower(classification), c
	}
	title := verb + ": " + label
	if isSMTPStatus(status) {
		title += " (" + status + ")"
	}
	return &event.Error{Code: 0, Class: class, Title: title}
}

// droppedReasons maps SendGrid's documented drop reasons, matched by
// substring in this order (the reason is free text in principle, so it is
// matched, never copied).
var droppedReasons = []struct {
	match, class, title string
}{
	{"unsubscribed", event.ClassOptedOut, "dropped: unsubscribed address"},
	{"spam reporting", event.ClassSpam, "dropped: spam reporting address"},
	{"spam content", event.ClassSpam, "dropped: spam content"},
	{"bounced address", event.ClassUndeliverable, "dropped: bounced address"},
	{"smtpapi", event.ClassOther, "dropped: invalid smtpapi header"},
	{"quota", event.ClassAccount, "dropped: recipient list over package quota"},
	{"invalid", event.ClassUndeliverable, "dropped: invalid address"},
}

// droppedError classifies a drop; unsubscribed reports whether the address
// was suppressed because its owner unsubscribed.
func droppedError(reason string) (e *event.Error, unsubscribed bool) {
	r := strings.ToLower(reason)
	for _, d := range droppedReasons {
		if strings.Contains(r, d.match) {
			return &event.Error{Class: d.class, Title: d.title}, d.class == event.ClassOptedOut
		}
	}
	return &event.Error{Class: event.ClassOther, Title: "dropped: other"}, false
}

// isSMTPStatus reports whether s is an RFC 3463 enhanced status code
// (class.subject.detail: 2, 4 or 5, then one to three digits twice).
func isSMTPStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 || !isDigits(p) {
			return false
		}
	}
	return true
}

// cleanName keeps an event name usable as a label: lower-case letters,
// digits and underscores, at most 64 of them.
func cleanName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

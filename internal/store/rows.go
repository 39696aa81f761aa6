package store

import (
	"encoding/json"
	"slices"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/event"
)

// Origin is where a row came from in Kafka: its partition and offset,
// stored with the row so that the sink knows how far it got.
type Origin struct {
	Partition int
	Offset    int64
}

// EventColumns are the columns of the events table the sink writes.
var EventColumns = []string{"id", "kind", "channel", "source", "field", "event_time", "receive_time",
	"waba_id", "phone_number_id", "display_phone_number", "message_id", "status",
	"recipient", "recipient_country", "recipient_id_kind", "recipient_type",
	"error_code", "error_class", "error_title",
	"billable", "pricing_model", "pricing_type", "pricing_category",
	"conversation_id", "conversation_origin", "conversation_expiration",
	"template", "use_case", "campaign",
	"inbound_type", "inbound_context_message_id",
	"opt_out_source", "opt_out_category", "opt_out_resumed",
	"quality_event", "quality_current_limit", "quality_old_limit",
	"template_id", "template_name", "template_language", "template_event", "template_reason",
	"template_other_info_title", "template_previous_quality", "template_new_quality",
	"account_event", "account_violation_type", "account_ban_state", "account_ban_date", "account_entity_type",
	"account_entity_id", "account_alert_severity", "account_alert_status", "account_alert_type",
	"capability_messaging_limit", "capability_max_phone_numbers", "capability_max_daily_conversation_per_phone",
	"kafka_partition", "kafka_offset"}

// AppendEvent adds one event as a row of EventColumns.
func AppendEvent(v *Values, ev *event.Event, o Origin) { appendEvent(v, ev, o, false) }

// AppendDecodedEvent is AppendEvent for an event as event.Decode set it,
// whose strings are valid UTF-8: it skips the check (Values.ValidStr).
func AppendDecodedEvent(v *Values, ev *event.Event, o Origin) { appendEvent(v, ev, o, true) }

func appendEvent(v *Values, ev *event.Event, o Origin, valid bool) {
	v.Begin().str(valid, ev.ID).str(valid, string(ev.Kind)).str(valid, string(ev.Channel)).str(valid, ev.Source).str(valid, ev.Field).
		Time(ev.EventTime).Time(ev.ReceiveTime).
		Str(ev.WABAID).str(valid, ev.PhoneNumberID).str(valid, ev.DisplayPhoneNumber).str(valid, ev.MessageID).str(valid, ev.Status)
	r := ev.Recipient
	if r == nil {
		r = &event.Recipient{}
	}
	v.str(valid, r.Pseudonym).str(valid, r.CountryCode).str(valid, r.IDKind).str(valid, r.Type)
	e := ev.Error
	if e == nil {
		e = &event.Error{}
	}
	v.Int(int64(e.Code)).str(valid, e.Class).str(valid, e.Title)
	p := ev.Pricing
	if p == nil {
		p = &event.Pricing{}
	}
	v.Bool(p.Billable).str(valid, p.Model).str(valid, p.Type).str(valid, p.Category)
	c := ev.Conversation
	if c == nil {
		c = &event.Conversation{}
	}
	v.str(valid, c.ID).str(valid, c.OriginType).NullTime(c.ExpirationTime)
	a := ev.Attribution
	if a == nil {
		a = &event.Attribution{}
	}
	v.str(valid, a.Template).str(valid, a.UseCase).str(valid, a.Campaign)
	in := ev.Inbound
	if in == nil {
		in = &event.Inbound{}
	}
	v.str(valid, in.MessageType).str(valid, in.ContextMessageID)
	oo := ev.OptOut
	if oo == nil {
		oo = &event.OptOut{}
	}
	v.str(valid, oo.Source).str(valid, oo.Category).Bool(oo.Resumed)
	q := ev.Quality
	if q == nil {
		q = &event.Quality{}
	}
	v.str(valid, q.Event).str(valid, q.CurrentLimit).str(valid, q.OldLimit)
	t := ev.Template
	if t == nil {
		t = &event.Template{}
	}
	v.str(valid, t.ID).str(valid, t.Name).str(valid, t.Language).str(valid, t.Event).str(valid, t.Reason).str(valid, t.OtherInfoTitle).
		Str(t.PreviousQuality).str(valid, t.NewQuality)
	ac := ev.Account
	if ac == nil {
		ac = &event.Account{}
	}
	v.str(valid, ac.Event).str(valid, ac.ViolationType).str(valid, ac.BanState).str(valid, ac.BanDate).str(valid, ac.EntityType).
		Str(ac.EntityID).str(valid, ac.AlertSeverity).str(valid, ac.AlertStatus).str(valid, ac.AlertType)
	cp := ev.Capability
	if cp == nil {
		cp = &event.Capability{}
	}
	v.str(valid, cp.MessagingLimit).Int(int64(cp.MaxPhoneNumbers)).str(valid, cp.MaxDailyConvLegacy)
	v.Int(int64(o.Partition)).Int(o.Offset).End()
}

// AlertColumns are the columns of the alerts table.
var AlertColumns = []string{"fingerprint", "alertname", "rule_group", "rule", "state", "labels", "annotations",
	"values", "baseline", "active_at", "fired_at", "resolved_at", "eval_time", "actions", "kafka_partition", "kafka_offset"}

// AppendAlert adds one alert state change as a row of AlertColumns.
func AppendAlert(v *Values, a *alert.Alert, o Origin) {
	vals, _ := json.Marshal(a.Values)
	base := []byte{}
	if a.Baseline != nil {
		base, _ = json.Marshal(a.Baseline)
	}
	acts := []byte{}
	if len(a.Actions) > 0 {
		acts, _ = json.Marshal(a.Actions)
	}
	v.Begin().Str(a.Fingerprint).Str(a.Name).Str(a.Group).Str(a.Rule).Str(string(a.State)).
		Map(a.Labels, sortedKeys(a.Labels)).Map(a.Annotations, sortedKeys(a.Annotations)).
		Str(string(vals)).Str(string(base)).Time(a.ActiveAt).NullTime(a.FiredAt).NullTime(a.ResolvedAt).
		Time(a.EvalTime).Str(string(acts)).Int(int64(o.Partition)).Int(o.Offset).End()
}

// ActionColumns are the columns of the actions table.
var ActionColumns = []string{"id", "time", "actor", "actor_kind", "action", "use_case", "target", "reason",
	"alert_fingerprint", "occurrence", "before", "after", "dry_run", "kafka_partition", "kafka_offset"}

// AppendAction adds one route change as a row of ActionColumns.
func AppendAction(v *Values, r *action.Record, o Origin) {
	v.Begin().Str(r.ID).Time(r.Time).Str(r.Actor).Str(r.ActorKind).Str(r.Action).Str(r.UseCase).
		Str(r.Target).Str(r.Reason).Str(r.AlertFingerprint).Str(r.Occurrence).
		Str(string(r.Before)).Str(string(r.After)).Bool(r.DryRun).
		Int(int64(o.Partition)).Int(o.Offset).End()
}

// RawColumns are the columns of the raw_payloads table.
var RawColumns = []string{"receive_time", "waba_id", "headers", "body", "kafka_partition", "kafka_offset"}

// AppendRaw adds one raw payload as a row of RawColumns.
func AppendRaw(v *Values, receive time.Time, waba string, headers map[string]string, body []byte, o Origin) {
	v.Begin().Time(receive).Str(waba).Map(headers, sortedKeys(headers)).Str(string(body)).
		Int(int64(o.Partition)).Int(o.Offset).End()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

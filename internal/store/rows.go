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
func AppendEvent(v *Values, ev *event.Event, o Origin) {
	v.Begin().Str(ev.ID).Str(string(ev.Kind)).Str(string(ev.Channel)).Str(ev.Source).Str(ev.Field).
		Time(ev.EventTime).Time(ev.ReceiveTime).
		Str(ev.WABAID).Str(ev.PhoneNumberID).Str(ev.DisplayPhoneNumber).Str(ev.MessageID).Str(ev.Status)
	r := ev.Recipient
	if r == nil {
		r = &event.Recipient{}
	}
	v.Str(r.Pseudonym).Str(r.CountryCode).Str(r.IDKind).Str(r.Type)
	e := ev.Error
	if e == nil {
		e = &event.Error{}
	}
	v.Int(int64(e.Code)).Str(e.Class).Str(e.Title)
	p := ev.Pricing
	if p == nil {
		p = &event.Pricing{}
	}
	v.Bool(p.Billable).Str(p.Model).Str(p.Type).Str(p.Category)
	c := ev.Conversation
	if c == nil {
		c = &event.Conversation{}
	}
	v.Str(c.ID).Str(c.OriginType).NullTime(c.ExpirationTime)
	a := ev.Attribution
	if a == nil {
		a = &event.Attribution{}
	}
	v.Str(a.Template).Str(a.UseCase).Str(a.Campaign)
	in := ev.Inbound
	if in == nil {
		in = &event.Inbound{}
	}
	v.Str(in.MessageType).Str(in.ContextMessageID)
	oo := ev.OptOut
	if oo == nil {
		oo = &event.OptOut{}
	}
	v.Str(oo.Source).Str(oo.Category).Bool(oo.Resumed)
	q := ev.Quality
	if q == nil {
		q = &event.Quality{}
	}
	v.Str(q.Event).Str(q.CurrentLimit).Str(q.OldLimit)
	t := ev.Template
	if t == nil {
		t = &event.Template{}
	}
	v.Str(t.ID).Str(t.Name).Str(t.Language).Str(t.Event).Str(t.Reason).Str(t.OtherInfoTitle).
		Str(t.PreviousQuality).Str(t.NewQuality)
	ac := ev.Account
	if ac == nil {
		ac = &event.Account{}
	}
	v.Str(ac.Event).Str(ac.ViolationType).Str(ac.BanState).Str(ac.BanDate).Str(ac.EntityType).
		Str(ac.EntityID).Str(ac.AlertSeverity).Str(ac.AlertStatus).Str(ac.AlertType)
	cp := ev.Capability
	if cp == nil {
		cp = &event.Capability{}
	}
	v.Str(cp.MessagingLimit).Int(int64(cp.MaxPhoneNumbers)).Str(cp.MaxDailyConvLegacy)
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

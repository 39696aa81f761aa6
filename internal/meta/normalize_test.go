package meta

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newTestNormalizer(t testing.TB) *Normalizer {
	t.Helper()
	p, err := pseudo.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return NewNormalizer(p, NewDirectory(nil, 100), optout.New(nil, nil))
}

var received = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func normalizeFile(t *testing.T, n *Normalizer, name string) Result {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Normalize(body, received)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, e := range res.Events {
		if e.SchemaVersion != event.SchemaVersion || len(e.ID) != 32 || e.Channel != event.ChannelWhatsApp ||
			e.Source != Source || e.WABAID != "102290129340398" || !e.ReceiveTime.Equal(received) || e.EventTime.IsZero() {
			t.Errorf("%s: common fields wrong: %+v", name, e)
		}
	}
	return res
}

func TestStatuses(t *testing.T) {
	n := newTestNormalizer(t)
	res := normalizeFile(t, n, "statuses.json")
	if len(res.Events) != 6 || len(res.Rejects) != 0 {
		t.Fatalf("got %d events, %d rejects; want 6, 0", len(res.Events), len(res.Rejects))
	}
	p, _ := pseudo.New(testKey)
	d := res.Events[0]
	if d.Kind != event.KindStatus || d.Status != "delivered" || d.MessageID != "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA" ||
		d.PhoneNumberID != "106540352242922" || d.DisplayPhoneNumber != "15550783881" ||
		!d.EventTime.Equal(time.Unix(1750263773, 0)) {
		t.Errorf("delivered: %+v", d)
	}
	if d.Recipient == nil || d.Recipient.Pseudonym != p.Phone("5511987654321").Pseudonym || d.Recipient.CountryCode != "55" ||
		d.Recipient.IDKind != "phone" || d.Recipient.Type != "individual" {
		t.Errorf("delivered recipient: %+v", d.Recipient)
	}
	if d.Attribution == nil || *d.Attribution != (event.Attribution{Template: "order_update", UseCase: "billing", Campaign: "bf2026"}) {
		t.Errorf("delivered attribution: %+v", d.Attribution)
	}
	if d.Pricing == nil || !d.Pricing.Billable || d.Pricing.Model != "PMP" || d.Pricing.Category != "utility" || d.Pricing.Type != "regular" {
		t.Errorf("pricing: %+v", d.Pricing)
	}
	if d.Conversation == nil || d.Conversation.OriginType != "utility" || d.Conversation.ExpirationTime == nil ||
		!d.Conversation.ExpirationTime.Equal(time.Unix(1750350173, 0)) {
		t.Errorf("conversation: %+v", d.Conversation)
	}
	// read: int timestamp and int recipient_id, same pseudonym as the string form
	r := res.Events[1]
	if r.Status != "read" || r.Recipient.Pseudonym != d.Recipient.Pseudonym || r.ID == d.ID {
		t.Errorf("read: %+v", r)
	}
	f := res.Events[2]
	if f.Error == nil || f.Error.Code != 131048 || f.Error.Class != event.ClassSpam || f.Error.Title != "Spam rate limit hit" {
		t.Errorf("failed 131048: %+v", f.Error)
	}
	if f.Attribution == nil || f.Attribution.Template != "promo_bf" || f.Attribution.UseCase != "sales" {
		t.Errorf("json attribution: %+v", f.Attribution)
	}
	o := res.Events[3]
	if o.Error == nil || o.Error.Code != 131050 || o.Error.Class != event.ClassOptedOut || o.OptOut == nil || o.OptOut.Source != "error_131050" {
		t.Errorf("failed 131050 (string code): %+v %+v", o.Error, o.OptOut)
	}
	b := res.Events[4]
	if b.Recipient == nil || b.Recipient.IDKind != "bsuid" || b.Recipient.CountryCode != "" || b.Recipient.Pseudonym != p.BSUID("BR.1a2b3c4d5e6f").Pseudonym {
		t.Errorf("bsuid recipient: %+v", b.Recipient)
	}
	g := res.Events[5]
	if g.Recipient == nil || g.Recipient.IDKind != "group" || g.Recipient.Type != "group" {
		t.Errorf("group recipient: %+v", g.Recipient)
	}
}

func TestStatusDuplicatesShareID(t *testing.T) {
	n := newTestNormalizer(t)
	a := normalizeFile(t, n, "statuses.json")
	b := normalizeFile(t, n, "statuses.json")
	for i := range a.Events {
		if a.Events[i].ID != b.Events[i].ID {
			t.Errorf("event %d: ids differ across deliveries of the same payload", i)
		}
	}
	mgmt1 := normalizeFile(t, n, "template_status.json")
	mgmt2 := normalizeFile(t, n, "template_status.json")
	if mgmt1.Events[0].ID != mgmt2.Events[0].ID {
		t.Error("management event ids differ across deliveries")
	}
}

func TestInbound(t *testing.T) {
	n := newTestNormalizer(t)
	res := normalizeFile(t, n, "inbound.json")
	want := []struct {
		id, typ, optOut, context string
	}{
		{"wamid.IN1", "text", "keyword", ""},
		{"wamid.IN2", "text", "", "wamid.OUT9"},
		{"wamid.IN3", "button", "button", "wamid.OUT10"},
		{"wamid.IN4", "interactive", "", ""},
		{"wamid.IN5", "system", "", ""},
		{"wamid.IN6", "text", "keyword", ""},
		{"wamid.IN7", "interactive", "button", ""},
	}
	if len(res.Events) != len(want) {
		t.Fatalf("got %d events, want %d", len(res.Events), len(want))
	}
	for i, w := range want {
		e := res.Events[i]
		got := ""
		if e.OptOut != nil {
			got = e.OptOut.Source
		}
		if e.Kind != event.KindInbound || e.MessageID != w.id || e.Inbound.MessageType != w.typ || got != w.optOut ||
			e.Inbound.ContextMessageID != w.context || e.Recipient == nil || e.Recipient.CountryCode != "55" {
			t.Errorf("%s: got kind=%s type=%s optout=%q context=%q recipient=%+v", w.id, e.Kind, e.Inbound.MessageType, got, e.Inbound.ContextMessageID, e.Recipient)
		}
	}
}

func TestUserPreferences(t *testing.T) {
	res := normalizeFile(t, newTestNormalizer(t), "user_preferences.json")
	if len(res.Events) != 2 {
		t.Fatalf("got %d events", len(res.Events))
	}
	stop, resume := res.Events[0], res.Events[1]
	if stop.Kind != event.KindUserPreference || stop.OptOut == nil || stop.OptOut.Source != "user_preferences" ||
		stop.OptOut.Category != "marketing_messages" || stop.OptOut.Resumed || stop.Recipient == nil {
		t.Errorf("stop: %+v %+v", stop, stop.OptOut)
	}
	if !resume.OptOut.Resumed || resume.ID == stop.ID {
		t.Errorf("resume: %+v", resume.OptOut)
	}
}

func TestPhoneQualityMapsDisplayNumberToID(t *testing.T) {
	// Unknown display number: the event keeps the display number, no id.
	n := newTestNormalizer(t)
	res := normalizeFile(t, n, "phone_quality.json")
	q := res.Events[0]
	if q.Kind != event.KindPhoneQuality || q.PhoneNumberID != "" || q.Quality == nil ||
		*q.Quality != (event.Quality{Event: "DOWNGRADE", CurrentLimit: "TIER_1K", OldLimit: "TIER_10K"}) ||
		!q.EventTime.Equal(time.Unix(1750264200, 0)) {
		t.Errorf("unmapped: %+v %+v", q, q.Quality)
	}
	// Learned from the metadata of a messages webhook.
	normalizeFile(t, n, "statuses.json")
	if q := normalizeFile(t, n, "phone_quality.json").Events[0]; q.PhoneNumberID != "106540352242922" {
		t.Errorf("learned mapping not used: %q", q.PhoneNumberID)
	}
	// From configuration.
	p, _ := pseudo.New(testKey)
	cfgN := NewNormalizer(p, NewDirectory([]PhoneNumber{{ID: "999", Display: "1 (555) 078-3881"}}, 0), optout.New(nil, nil))
	if q := normalizeFile(t, cfgN, "phone_quality.json").Events[0]; q.PhoneNumberID != "999" {
		t.Errorf("configured mapping not used: %q", q.PhoneNumberID)
	}
}

func TestManagementFields(t *testing.T) {
	n := newTestNormalizer(t)
	cases := []struct {
		file  string
		kinds []event.Kind
		check func(t *testing.T, evs []event.Event)
	}{
		{"template_status.json", []event.Kind{event.KindTemplateStatus}, func(t *testing.T, evs []event.Event) {
			tp := evs[0].Template
			if tp.Event != "PAUSED" || tp.ID != "594425479261596" || tp.Name != "promo_bf" || tp.Language != "pt_BR" ||
				tp.OtherInfoTitle != "FIRST_PAUSE" || evs[0].Attribution.Template != "promo_bf" {
				t.Errorf("template status: %+v", tp)
			}
		}},
		{"template_quality.json", []event.Kind{event.KindTemplateQuality}, func(t *testing.T, evs []event.Event) {
			if tp := evs[0].Template; tp.PreviousQuality != "GREEN" || tp.NewQuality != "RED" {
				t.Errorf("template quality: %+v", tp)
			}
		}},
		{"template_quality_wrong_field.json", []event.Kind{event.KindTemplateQuality}, func(t *testing.T, evs []event.Event) {
			if tp := evs[0].Template; tp.NewQuality != "YELLOW" || tp.ID != "594425479261596" || evs[0].Field != "message_template_status_update" {
				t.Errorf("wrong-field quality: %+v", tp)
			}
		}},
		{"account_update.json", []event.Kind{event.KindAccountUpdate, event.KindAccountUpdate}, func(t *testing.T, evs []event.Event) {
			if a := evs[0].Account; a.Event != "DISABLED_UPDATE" || a.BanState != "SCHEDULE_FOR_DISABLE" || a.BanDate != "2026-12-01" {
				t.Errorf("ban: %+v", a)
			}
			if a := evs[1].Account; a.Event != "ACCOUNT_VIOLATION" || a.ViolationType != "SCAM" {
				t.Errorf("violation: %+v", a)
			}
		}},
		{"account_alerts.json", []event.Kind{event.KindAccountAlert}, func(t *testing.T, evs []event.Event) {
			a := evs[0].Account
			if a.EntityType != "PHONE_NUMBER" || a.EntityID != "106540352242922" || a.AlertSeverity != "CRITICAL" ||
				a.AlertStatus != "ACTIVE" || a.AlertType != "OBA_REJECTED" || evs[0].PhoneNumberID != "106540352242922" {
				t.Errorf("alert: %+v", a)
			}
		}},
		{"capability.json", []event.Kind{event.KindCapability, event.KindCapability}, func(t *testing.T, evs []event.Event) {
			if c := evs[0].Capability; c.MaxDailyConvLegacy != "1000" || c.MaxPhoneNumbers != 2 {
				t.Errorf("legacy capability: %+v", c)
			}
			if c := evs[1].Capability; c.MessagingLimit != "TIER_10K" || c.MaxPhoneNumbers != 20 {
				t.Errorf("tier capability: %+v", c)
			}
		}},
		{"unknown_field.json", []event.Kind{event.KindUnknown}, func(t *testing.T, evs []event.Event) {
			if evs[0].Field != "message_echoes" {
				t.Errorf("unknown field name: %q", evs[0].Field)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			res := normalizeFile(t, n, c.file)
			if len(res.Rejects) != 0 || len(res.Events) != len(c.kinds) {
				t.Fatalf("got %d events %d rejects", len(res.Events), len(res.Rejects))
			}
			for i, k := range c.kinds {
				if res.Events[i].Kind != k {
					t.Errorf("event %d kind %s, want %s", i, res.Events[i].Kind, k)
				}
			}
			c.check(t, res.Events)
		})
	}
}

func TestRejectsKeepGoodUpdates(t *testing.T) {
	res := normalizeFile(t, newTestNormalizer(t), "bad_items.json")
	if len(res.Events) != 1 || res.Events[0].MessageID != "wamid.OK1" {
		t.Fatalf("events: %+v", res.Events)
	}
	var reasons []string
	for _, r := range res.Rejects {
		if len(r.Item) == 0 || r.WABAID != "102290129340398" {
			t.Errorf("reject lost its item or entry: %+v", r)
		}
		reasons = append(reasons, r.Reason+":"+r.Field)
	}
	want := "bad_status:messages bad_status:messages bad_status:messages bad_value:account_alerts"
	if strings.Join(reasons, " ") != want {
		t.Errorf("rejects %q, want %q", strings.Join(reasons, " "), want)
	}
}

func TestMalformedPayloads(t *testing.T) {
	n := newTestNormalizer(t)
	for _, body := range []string{``, `{`, `[]`, `{"object":"page","entry":[]}`, `{"object":"whatsapp_business_account","entry":"x"}`} {
		if _, err := n.Normalize([]byte(body), received); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v, want ErrMalformed", body, err)
		}
	}
}

// TestNoPersonalDataInEvents checks that no phone number, name or message
// text of the fixtures survives into the published JSON.
func TestNoPersonalDataInEvents(t *testing.T) {
	n := newTestNormalizer(t)
	secrets := []string{"5511987654321", "5521912345678", "5511987654322", "BR.1a2b3c4d5e6f", "120363043968520000",
		"Maria", "PARAR", "prazo", "Parar promo", "changed from", "restrictions on how many"}
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		res := normalizeFile(t, n, filepath.Base(f))
		out, _ := json.Marshal(res.Events)
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("%s: events contain %q", f, s)
			}
		}
	}
}

// TestAbsurdTimestampRejectsOnlyItsUpdate: a timestamp beyond year 9999
// cannot be encoded in an event; it must cost its own status, not the
// payload's good ones.
func TestAbsurdTimestampRejectsOnlyItsUpdate(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[` +
		`{"id":"w1","status":"sent","timestamp":"999999999999"},{"id":"w2","status":"sent","timestamp":"1750263773"}]}}]}]}`
	res, err := newTestNormalizer(t).Normalize([]byte(body), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].MessageID != "w2" || len(res.Rejects) != 1 {
		t.Fatalf("events %d rejects %d", len(res.Events), len(res.Rejects))
	}
	if _, err := json.Marshal(res.Events); err != nil {
		t.Fatal(err)
	}
}

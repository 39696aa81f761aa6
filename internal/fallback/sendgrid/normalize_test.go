package sendgrid

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/pseudo"
)

const (
	testWABA    = "102290129340398"
	defaultWABA = "100000000000001"
	maria       = "maria.silva@example.com"
	msg0        = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000"
)

var (
	hexID    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	received = time.Date(2026, 2, 14, 17, 0, 0, 0, time.FixedZone("BRT", -3*3600))
	fullAttr = &event.Attribution{Template: "order_update", UseCase: "billing", Campaign: "bf2026"}
)

func testPseudo(t testing.TB) *pseudo.Pseudonymizer {
	t.Helper()
	p, err := pseudo.New(bytes.Repeat([]byte("k"), pseudo.MinKeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recipient(p *pseudo.Pseudonymizer, addr string) *event.Recipient {
	r := p.Email(addr)
	r.Type = "individual"
	return &r
}

func TestNormalizeEvents(t *testing.T) {
	p := testPseudo(t)
	n := &Normalizer{Pseudo: p, WABAID: defaultWABA}
	res, err := n.Normalize(readFixture(t, "events.json"), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejects) != 0 {
		t.Fatalf("rejects: %+v", res.Rejects)
	}
	base := func(kind event.Kind, sgID, field string, ts int64) event.Event {
		return event.Event{
			SchemaVersion: event.SchemaVersion, ID: event.NewID("email", sgID), Kind: kind,
			Channel: event.ChannelEmail, Source: Source, Field: field,
			EventTime: time.Unix(ts, 0).UTC(), ReceiveTime: received.UTC(), WABAID: defaultWABA,
		}
	}
	withMsg := func(ev event.Event, msgID, addr, status string, attr *event.Attribution) event.Event {
		ev.MessageID, ev.Status, ev.Recipient, ev.Attribution = msgID, status, recipient(p, addr), attr
		return ev
	}
	processed := withMsg(base(event.KindStatus, "rbtnWrG1DVDGGGFHFyun0A==", "processed", 1771087987), msg0, maria, event.StatusAccepted, fullAttr)
	processed.WABAID = testWABA
	bounce := withMsg(base(event.KindStatus, "6g4ZI7SA-xmRDv57GoPIPw==", "bounce", 1771088003),
		"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000001", "joao.souza@example.com", event.StatusFailed,
		&event.Attribution{Template: "order_update"})
	bounce.Error = &event.Error{Class: event.ClassUndeliverable, Title: "bounced: invalid address (5.1.1)"}
	blocked := withMsg(base(event.KindStatus, "Ym91bmNlLWJsb2NrZWQtMDAwMQ==", "bounce", 1771088004),
		"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000002", "ana.costa@example.com", event.StatusFailed, nil)
	blocked.Error = &event.Error{Class: event.ClassSpam, Title: "blocked: reputation (5.7.1)"}
	dropped := withMsg(base(event.KindStatus, "zmzJhfJgAfUSOW80yEbPyw==", "dropped", 1771088005),
		"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000003", "pedro.lima@example.com", event.StatusFailed,
		&event.Attribution{Campaign: "bf2026"})
	dropped.Error = &event.Error{Class: event.ClassOptedOut, Title: "dropped: unsubscribed address"}
	dropped.OptOut = &event.OptOut{Source: OptOutDropped}
	pref := func(sgID, name string, ts int64, attr *event.Attribution, opt event.OptOut) event.Event {
		ev := withMsg(base(event.KindUserPreference, sgID, name, ts), msg0, maria, "", attr)
		ev.OptOut = &opt
		return ev
	}

	want := []event.Event{
		processed,
		withMsg(base(event.KindStatus, "t7LEShmowp86DTdUW8M-GQ==", "deferred", 1771087990), msg0, maria, event.StatusDeferred, fullAttr),
		withMsg(base(event.KindStatus, "rWVYmVk90MjZJ9iohOBa3w==", "delivered", 1771088001), msg0, maria, event.StatusDelivered, fullAttr),
		withMsg(base(event.KindStatus, "FOTFFO0ecsBE-zxFXfs6WA==", "open", 1771088102), msg0, maria, event.StatusRead, &event.Attribution{Template: "order_update"}),
		// the machine open and the click are skipped
		bounce,
		blocked,
		dropped,
		pref("37nvH5QBz858KGVYCM4uOA==", "spamreport", 1771088200, &event.Attribution{Campaign: "bf2026"}, event.OptOut{Source: "spamreport"}),
		pref("zz_BjPgU_5pS-J8vlfB1sg==", "unsubscribe", 1771088201, nil, event.OptOut{Source: "unsubscribe"}),
		pref("ahSCB7xYcXFb-hEaawsPRw==", "group_unsubscribe", 1771088202, nil, event.OptOut{Source: "group_unsubscribe", Category: "asm_group:10"}),
		pref("w_u0vJhLT-OFfprar5N93g==", "group_resubscribe", 1771088203, nil, event.OptOut{Source: "group_resubscribe", Category: "asm_group:10", Resumed: true}),
		base(event.KindUnknown, "YWNjb3VudC1zdGF0dXMtMDAwMQ==", "account_status_change", 1771088300),
	}
	if len(res.Events) != len(want) {
		for _, ev := range res.Events {
			t.Logf("%s %s", ev.Field, ev.Status)
		}
		t.Fatalf("got %d events, want %d", len(res.Events), len(want))
	}
	for i := range want {
		g, _ := json.MarshalIndent(res.Events[i], "", "  ")
		w, _ := json.MarshalIndent(want[i], "", "  ")
		if !bytes.Equal(g, w) {
			t.Errorf("event %d (%s) mismatch\ngot:  %s\nwant: %s", i, want[i].Field, g, w)
		}
		if !hexID.MatchString(res.Events[i].ID) {
			t.Errorf("event %d: id %q", i, res.Events[i].ID)
		}
	}
}

func TestBouncesAndDrops(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	res, err := n.Normalize(readFixture(t, "drops_and_bounces.json"), received)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		class, title string
		optOut       bool
	}{
		"b-01": {event.ClassUndeliverable, "bounced: mailbox unavailable (5.2.1)", false},
		"b-02": {event.ClassSpam, "blocked: content (5.7.26)", false},
		"b-03": {event.ClassThrottle, "blocked: frequency or volume too high (4.7.28)", false},
		"b-04": {event.ClassOther, "blocked: technical (4.4.7)", false},
		"b-05": {event.ClassSpam, "blocked: unclassified", false},
		// a status that is not an SMTP code (here: the address) is not copied
		"b-06": {event.ClassUndeliverable, "bounced: unclassified", false},
		"d-01": {event.ClassUndeliverable, "dropped: bounced address", false},
		"d-02": {event.ClassSpam, "dropped: spam reporting address", false},
		"d-03": {event.ClassSpam, "dropped: spam content", false},
		"d-04": {event.ClassOther, "dropped: invalid smtpapi header", false},
		"d-05": {event.ClassAccount, "dropped: recipient list over package quota", false},
		"d-06": {event.ClassUndeliverable, "dropped: invalid address", false},
		"d-07": {event.ClassOther, "dropped: other", false},
	}
	if len(res.Events) != len(want) || len(res.Rejects) != 0 {
		t.Fatalf("got %d events, %d rejects; want %d events", len(res.Events), len(res.Rejects), len(want))
	}
	byID := map[string]string{}
	for id := range want {
		byID[event.NewID("email", id)] = id
	}
	for _, ev := range res.Events {
		id := byID[ev.ID]
		w := want[id]
		if ev.Status != event.StatusFailed || ev.Error == nil || ev.Error.Code != 0 || ev.Error.Class != w.class || ev.Error.Title != w.title {
			t.Errorf("%s: status %q error %+v, want class %q title %q", id, ev.Status, ev.Error, w.class, w.title)
		}
		if (ev.OptOut != nil) != w.optOut {
			t.Errorf("%s: OptOut %+v", id, ev.OptOut)
		}
	}
}

func TestRejects(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t), WABAID: defaultWABA}
	res, err := n.Normalize(readFixture(t, "rejects.json"), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].ID != event.NewID("email", "r-ok") {
		t.Fatalf("events: %+v", res.Events)
	}
	want := []struct{ detail, field, waba string }{
		{"event without sg_event_id", "delivered", testWABA},
		{"event without an event name", "", defaultWABA},
		{"timestamp is not a unix time", "delivered", defaultWABA},
		{"timestamp is not a unix time", "delivered", defaultWABA},
		{"element is not a json object", "", defaultWABA},
		{"element is not a json object", "", defaultWABA},
	}
	if len(res.Rejects) != len(want) {
		t.Fatalf("got %d rejects, want %d: %+v", len(res.Rejects), len(want), res.Rejects)
	}
	for i, w := range want {
		r := res.Rejects[i]
		if r.Reason != RejectReason || r.Detail != w.detail || r.Field != w.field || r.WABAID != w.waba || len(r.Item) == 0 {
			t.Errorf("reject %d = {%q %q %q %q %s}, want %+v", i, r.Reason, r.Detail, r.Field, r.WABAID, r.Item, w)
		}
	}
}

func TestMalformed(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	for _, body := range []string{"", "  ", "{}", `{"event":"delivered"}`, "null", `"[]"`, "[", `[{"a":1},]`, "[1] trailing"} {
		if _, err := n.Normalize([]byte(body), received); !errors.Is(err, ErrMalformed) {
			t.Errorf("Normalize(%q) = %v, want ErrMalformed", body, err)
		}
	}
	res, err := n.Normalize([]byte(" \n[]"), received)
	if err != nil || len(res.Events)+len(res.Rejects) != 0 {
		t.Errorf("empty array: %+v, %v", res, err)
	}
}

func TestTimestamps(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	tests := []struct {
		ts   string
		want time.Time // zero: rejected
	}{
		{`1771088000`, time.Unix(1771088000, 0).UTC()},
		{`"1771088000"`, time.Unix(1771088000, 0).UTC()},
		{`1771088000.9`, time.Unix(1771088000, 0).UTC()},
		{`1771088000123`, time.UnixMilli(1771088000123).UTC()},
		{`null`, received.UTC()},
		{`-1`, time.Time{}},
		{`"soon"`, time.Time{}},
		{`true`, time.Time{}},
		{`1e300`, time.Time{}},
		{`999999999999`, time.Time{}}, // seconds past year 9999
	}
	for _, tc := range tests {
		body := `[{"event":"delivered","sg_event_id":"x","timestamp":` + tc.ts + `}]`
		res, err := n.Normalize([]byte(body), received)
		if err != nil {
			t.Fatalf("%s: %v", tc.ts, err)
		}
		if tc.want.IsZero() {
			if len(res.Rejects) != 1 {
				t.Errorf("%s: want a reject, got %+v", tc.ts, res)
			}
			continue
		}
		if len(res.Events) != 1 || !res.Events[0].EventTime.Equal(tc.want) {
			t.Errorf("%s: got %+v, want time %v", tc.ts, res, tc.want)
		}
	}
	// A missing timestamp falls back to the receive time.
	res, _ := n.Normalize([]byte(`[{"event":"delivered","sg_event_id":"x"}]`), received)
	if len(res.Events) != 1 || !res.Events[0].EventTime.Equal(received) {
		t.Errorf("missing timestamp: %+v", res)
	}
}

func TestAttribution(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t), WABAID: defaultWABA}
	tests := []struct {
		name, args string
		want       *event.Attribution
		waba       string
	}{
		{"none", ``, nil, defaultWABA},
		{"separate args", `,"template":"order_update","use_case":"billing","campaign":"bf2026"`, fullAttr, defaultWABA},
		{"vigia arg, short form", `,"vigia":"t=order_update&u=billing&c=bf2026"`, fullAttr, defaultWABA},
		{"vigia arg, json form", `,"vigia":"{\"template\":\"order_update\",\"campaign\":\"bf2026\"}"`, &event.Attribution{Template: "order_update", Campaign: "bf2026"}, defaultWABA},
		{"separate arg overrides vigia", `,"vigia":"t=a;c=bf2026","template":"order_update"`, &event.Attribution{Template: "order_update", Campaign: "bf2026"}, defaultWABA},
		{"sanitized", `,"template":"order update <b>"`, &event.Attribution{Template: "orderupdateb"}, defaultWABA},
		{"non-string arg ignored", `,"template":{"x":1}`, nil, defaultWABA},
		{"waba_id arg", `,"waba_id":"` + testWABA + `"`, nil, testWABA},
		{"non-numeric waba_id ignored", `,"waba_id":"x;drop"`, nil, defaultWABA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `[{"event":"delivered","sg_event_id":"x","timestamp":1771088000,"email":"a@example.com"` + tc.args + `}]`
			res, err := n.Normalize([]byte(body), received)
			if err != nil || len(res.Events) != 1 {
				t.Fatalf("%+v, %v", res, err)
			}
			g, _ := json.Marshal(res.Events[0].Attribution)
			w, _ := json.Marshal(tc.want)
			if !bytes.Equal(g, w) {
				t.Errorf("attribution %s, want %s", g, w)
			}
			if res.Events[0].WABAID != tc.waba {
				t.Errorf("WABAID %q, want %q", res.Events[0].WABAID, tc.waba)
			}
		})
	}
}

// TestPrivacy asserts that no address, nor the free text around it, reaches
// a marshalled event.
func TestPrivacy(t *testing.T) {
	n := &Normalizer{Pseudo: testPseudo(t)}
	for _, name := range []string{"events.json", "drops_and_bounces.json", "rejects.json"} {
		body := readFixture(t, name)
		res, err := n.Normalize(body, received)
		if err != nil {
			t.Fatal(err)
		}
		var items []any
		if err := json.Unmarshal(body, &items); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(res.Events)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range items {
			it, _ := item.(map[string]any)
			if addr, ok := it["email"].(string); ok {
				leaks := []string{addr}
				// A local part long enough not to occur in hex by chance.
				if local, _, _ := strings.Cut(addr, "@"); len(local) >= 6 {
					leaks = append(leaks, local)
				}
				for _, leak := range leaks {
					if bytes.Contains(out, []byte(leak)) {
						t.Errorf("%s: events contain %q", name, leak)
					}
				}
			}
			for _, k := range []string{"reason", "response", "url", "useragent", "ip"} {
				if v, ok := it[k].(string); ok && len(v) > 8 && bytes.Contains(out, []byte(v)) {
					t.Errorf("%s: events contain %s %q", name, k, v)
				}
			}
		}
		for _, ev := range res.Events {
			if ev.Kind != event.KindUnknown && (ev.Recipient == nil || ev.Recipient.IDKind != "email" || !hexID.MatchString(ev.Recipient.Pseudonym)) {
				t.Errorf("%s: recipient %+v", name, ev.Recipient)
			}
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, name := range []string{"events.json", "drops_and_bounces.json", "rejects.json"} {
		f.Add(readFixture(f, name))
	}
	n := &Normalizer{Pseudo: testPseudo(f), WABAID: defaultWABA}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := n.Normalize(body, received)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, ev := range res.Events {
			if !hexID.MatchString(ev.ID) || ev.Channel != event.ChannelEmail || ev.Kind == "" {
				t.Fatalf("bad event %+v", ev)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("marshal: %v", err)
			}
		}
		for _, r := range res.Rejects {
			if r.Reason != RejectReason || r.Detail == "" {
				t.Fatalf("bad reject %+v", r)
			}
		}
		// Privacy, differentially: with every "email" replaced, the events
		// may differ in their recipients and nothing else.
		var items []json.RawMessage
		if json.Unmarshal(body, &items) != nil {
			return
		}
		for i, raw := range items {
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) != nil || m == nil {
				continue
			}
			if _, ok := m["email"]; !ok {
				continue
			}
			m["email"] = json.RawMessage(`"someone.else@example.org"`)
			items[i], _ = json.Marshal(m)
		}
		alt, _ := json.Marshal(items)
		res2, err := n.Normalize(alt, received)
		if err != nil || len(res2.Events) != len(res.Events) {
			t.Fatalf("with other addresses: %d events, %v; want %d", len(res2.Events), err, len(res.Events))
		}
		for i := range res.Events {
			a, b := res.Events[i], res2.Events[i]
			a.Recipient, b.Recipient = nil, nil
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("email influences more than the recipient:\n%s\n%s", ja, jb)
			}
		}
	})
}

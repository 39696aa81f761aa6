package loadgen

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/meta"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
)

var (
	testSecret = []byte("load-test-secret")
	testNow    = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
)

func fixedClock() time.Time { return testNow }

// decoded is the generic view of a body: the test checks what is on the
// wire, not what the generator's own types say.
type decoded struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				MessagingProduct string `json:"messaging_product"`
				Metadata         struct {
					Display string `json:"display_phone_number"`
					ID      string `json:"phone_number_id"`
				} `json:"metadata"`
				Statuses []map[string]any `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

func decode(t *testing.T, b Body) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(b.Data, &d); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if d.Object != "whatsapp_business_account" || len(d.Entry) != 1 || len(d.Entry[0].Changes) != 1 ||
		d.Entry[0].Changes[0].Field != "messages" || d.Entry[0].Changes[0].Value.MessagingProduct != "whatsapp" {
		t.Fatalf("envelope wrong: %s", b.Data[:min(len(b.Data), 300)])
	}
	return d
}

var (
	brPhone  = regexp.MustCompile(`^55\d{11}$`)
	digits15 = regexp.MustCompile(`^\d{15}$`)
	opaque   = regexp.MustCompile(`^t=[a-z_]+;u=[a-z_]+;c=[a-z0-9_]+$`)
)

func TestBatchShape(t *testing.T) {
	g := NewGenerator(1, 4, 16, 0.2, fixedClock)
	b, err := g.Batch(250, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, b)
	if b.Statuses != 250 {
		t.Errorf("Statuses = %d", b.Statuses)
	}
	v := d.Entry[0].Changes[0].Value
	if !digits15.MatchString(d.Entry[0].ID) || !digits15.MatchString(v.Metadata.ID) || !strings.HasPrefix(v.Metadata.Display, "55") {
		t.Errorf("ids: waba %q number %q display %q", d.Entry[0].ID, v.Metadata.ID, v.Metadata.Display)
	}
	if len(v.Statuses) != 250 {
		t.Fatalf("%d statuses, want 250", len(v.Statuses))
	}
	seen := map[string]int{}
	for i, s := range v.Statuses {
		id, _ := s["id"].(string)
		if !strings.HasPrefix(id, "wamid.") {
			t.Errorf("status %d: id %q", i, id)
		}
		st, _ := s["status"].(string)
		seen[st]++
		ts, ok := s["timestamp"].(string) // a string, as Meta sends it
		n, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || n > testNow.Unix() || n < testNow.Unix()-60 {
			t.Errorf("status %d: timestamp %#v", i, s["timestamp"])
		}
		if r, _ := s["recipient_id"].(string); !brPhone.MatchString(r) {
			t.Errorf("status %d: recipient_id %#v", i, s["recipient_id"])
		}
		if s["recipient_type"] != "individual" {
			t.Errorf("status %d: recipient_type %#v", i, s["recipient_type"])
		}
		if o, _ := s["biz_opaque_callback_data"].(string); !opaque.MatchString(o) {
			t.Errorf("status %d: biz_opaque_callback_data %#v", i, s["biz_opaque_callback_data"])
		}
		p, hasPricing := s["pricing"].(map[string]any)
		errs, hasErrors := s["errors"].([]any)
		switch st {
		case "failed":
			if !hasErrors || len(errs) != 1 || hasPricing {
				t.Fatalf("failed status %d: %v", i, s)
			}
			e := errs[0].(map[string]any)
			if code, _ := e["code"].(float64); event.ErrorClass(int(code)) == event.ClassOther || e["title"] == "" {
				t.Errorf("failed status %d: error %v", i, e)
			}
		case "sent", "delivered", "read":
			if hasErrors || !hasPricing || p["billable"] != true || p["pricing_model"] != "PMP" || p["type"] != "regular" || p["category"] == "" {
				t.Errorf("status %d: %v", i, s)
			}
		default:
			t.Errorf("status %d: status %q", i, st)
		}
	}
	for _, st := range []string{"sent", "delivered", "read", "failed"} {
		if seen[st] == 0 {
			t.Errorf("no %s status among 250: %v", st, seen)
		}
	}
}

func TestSignatureVerifies(t *testing.T) {
	b, err := NewGenerator(2, 1, 1, 0.05, fixedClock).Batch(10, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.VerifySignature(b.Data, b.Signature, [][]byte{[]byte("other"), testSecret}); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	if err := meta.VerifySignature(b.Data, b.Signature, [][]byte{[]byte("other")}); err == nil {
		t.Error("signature verifies under the wrong secret")
	}
}

func TestPoolWamidsUnique(t *testing.T) {
	ids := map[string]bool{}
	for _, seed := range []uint64{3, 4} {
		pool, err := BuildPool(t.Context(), NewGenerator(seed, 4, 16, 0.05, fixedClock), testSecret, 100, 30)
		if err != nil {
			t.Fatal(err)
		}
		if len(pool) != 30 {
			t.Fatalf("pool of %d", len(pool))
		}
		for _, b := range pool {
			for _, s := range decode(t, b).Entry[0].Changes[0].Value.Statuses {
				id := s["id"].(string)
				if ids[id] {
					t.Fatalf("wamid %s twice (seed %d)", id, seed)
				}
				ids[id] = true
			}
		}
	}
	if len(ids) != 6000 {
		t.Errorf("%d distinct wamids, want 6000", len(ids))
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, _ := NewGenerator(5, 2, 3, 0.1, fixedClock).Batch(20, testSecret)
	b, _ := NewGenerator(5, 2, 3, 0.1, fixedClock).Batch(20, testSecret)
	c, _ := NewGenerator(6, 2, 3, 0.1, fixedClock).Batch(20, testSecret)
	if !bytes.Equal(a.Data, b.Data) || a.Signature != b.Signature {
		t.Error("same seed and clock gave different bodies")
	}
	if bytes.Equal(a.Data, c.Data) {
		t.Error("different seeds gave the same body")
	}
}

func TestMix(t *testing.T) {
	for _, tc := range []struct {
		mix    float64
		lo, hi float64
	}{{0, 0, 0}, {0.05, 0.04, 0.06}, {0.5, 0.48, 0.52}, {1, 1, 1}} {
		// Straight from the generator: the wire format is checked above,
		// and decoding 20000 statuses is slow under -race.
		g := NewGenerator(7, 1, 1, tc.mix, fixedClock)
		byStatus := map[string]int{}
		codes := map[int]bool{}
		const total = 20000
		for range total {
			s := g.status(testNow.Unix())
			byStatus[s.Status]++
			if s.Status == "failed" {
				codes[s.Errors[0].Code] = true
			}
		}
		if f := float64(byStatus["failed"]) / total; f < tc.lo || f > tc.hi {
			t.Errorf("mix %v: failed fraction %.4f, want %v..%v", tc.mix, f, tc.lo, tc.hi)
		}
		if tc.mix < 1 && (byStatus["sent"] == 0 || byStatus["delivered"] == 0 || byStatus["read"] == 0) {
			t.Errorf("mix %v: %v lacks sent, delivered or read", tc.mix, byStatus)
		}
		if tc.mix >= 0.5 && (!codes[131048] || !codes[130429] || !codes[131026]) {
			t.Errorf("mix %v: error codes %v lack 131048, 130429 or 131026", tc.mix, codes)
		}
	}
}

func TestSpreadsOverAccountsAndNumbers(t *testing.T) {
	g := NewGenerator(8, 4, 16, 0.05, fixedClock)
	wabaOf := map[string]string{}
	wabas := map[string]bool{}
	for range 400 {
		b, _ := g.Batch(1, testSecret)
		d := decode(t, b)
		waba, number := d.Entry[0].ID, d.Entry[0].Changes[0].Value.Metadata.ID
		if w, ok := wabaOf[number]; ok && w != waba {
			t.Fatalf("number %s under accounts %s and %s", number, w, waba)
		}
		wabaOf[number] = waba
		wabas[waba] = true
	}
	if len(wabas) != 4 || len(wabaOf) != 16 {
		t.Errorf("%d accounts, %d numbers; want 4, 16", len(wabas), len(wabaOf))
	}
}

// TestIngestNormalizesEverything runs bodies through the parser ingest
// uses: every status must become an event, none a dead letter.
func TestIngestNormalizesEverything(t *testing.T) {
	p, err := pseudo.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	n := meta.NewNormalizer(p, meta.NewDirectory(nil, 100), optout.New(nil, nil))
	g := NewGenerator(9, 4, 16, 0.3, fixedClock)
	for range 10 {
		b, _ := g.Batch(100, testSecret)
		res, err := n.Normalize(b.Data, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != 100 || len(res.Rejects) != 0 {
			t.Fatalf("%d events, %d rejects; want 100, 0: %+v", len(res.Events), len(res.Rejects), res.Rejects)
		}
		for _, e := range res.Events {
			if e.Kind != event.KindStatus || e.Attribution == nil || e.Attribution.Template == "" ||
				e.Attribution.UseCase == "" || e.Attribution.Campaign == "" || e.Recipient == nil || e.WABAID != res.WABAID {
				t.Fatalf("event: %+v", e)
			}
			if (e.Status == "failed") != (e.Error != nil) || (e.Error != nil && e.Error.Class == event.ClassOther) {
				t.Fatalf("status %s error %+v", e.Status, e.Error)
			}
			if e.Status != "failed" && (e.Pricing == nil || e.Pricing.Model != "PMP") {
				t.Fatalf("status %s pricing %+v", e.Status, e.Pricing)
			}
		}
	}
}

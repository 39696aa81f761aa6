package meta

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
)

// statusesPayload builds a "messages" webhook in the shape of
// testdata/statuses.json carrying n statuses, each with its own wamid and
// recipient, cycling through delivered, read and failed.
func statusesPayload(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		wamid := fmt.Sprintf("wamid.HBgLNTUxMTk4NzY1NDMyMRUCABEYEjBENEFCMzlEQUE4OTJBMTE4%08d", i)
		recipient := fmt.Sprintf("55119%08d", i)
		ts := 1750263773 + i
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `{"id":%q,"status":"delivered","timestamp":"%d","recipient_id":%q,"recipient_type":"individual","biz_opaque_callback_data":"t=order_update;u=billing;c=bf2026","conversation":{"id":"b1fb1a6c2f4f4b5b9c0fd0ef62bcd1f0","expiration_timestamp":"%d","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}`,
				wamid, ts, recipient, ts+86400)
		case 1:
			fmt.Fprintf(&b, `{"id":%q,"status":"read","timestamp":%d,"recipient_id":%s,"recipient_type":"individual"}`,
				wamid, ts, recipient)
		case 2:
			fmt.Fprintf(&b, `{"id":%q,"status":"failed","timestamp":"%d","recipient_id":%q,"recipient_type":"individual","biz_opaque_callback_data":"{\"template\":\"promo_bf\",\"use_case\":\"sales\",\"campaign\":\"bf2026\"}","errors":[{"code":131048,"title":"Spam rate limit hit","message":"Spam rate limit hit","error_data":{"details":"Message failed to send because there are restrictions on how many messages can be sent from this phone number."}}]}`,
				wamid, ts, recipient)
		}
	}
	b.WriteString(`]}}]}]}`)
	return b.Bytes()
}

func newBenchNormalizer(tb testing.TB) *Normalizer {
	tb.Helper()
	p, err := pseudo.New([]byte("bench-pseudonym-key-0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	return NewNormalizer(p, NewDirectory(nil, 100), optout.New(nil, nil))
}

// The generated payload is what the benchmark claims it is.
func TestStatusesPayload(t *testing.T) {
	n := newBenchNormalizer(t)
	for _, size := range []int{1, 3, 1000} {
		body := statusesPayload(size)
		res, err := n.Normalize(body, time.Unix(1750264000, 0))
		if err != nil {
			t.Fatalf("%d: %v", size, err)
		}
		if len(res.Events) != size || len(res.Rejects) != 0 {
			t.Fatalf("%d statuses: %d events, %d rejects", size, len(res.Events), len(res.Rejects))
		}
		ids, recipients := map[string]bool{}, map[string]bool{}
		for _, e := range res.Events {
			if e.Kind != event.KindStatus || e.Recipient == nil {
				t.Fatalf("unexpected event %+v", e)
			}
			ids[e.ID], recipients[e.Recipient.Pseudonym] = true, true
		}
		if len(ids) != size || len(recipients) != size {
			t.Errorf("%d statuses: %d distinct ids, %d distinct recipients", size, len(ids), len(recipients))
		}
	}
}

// BenchmarkVerifyParseNormalize measures what ingest does per webhook before
// publishing: check the signature over the raw body, then normalize it.
func BenchmarkVerifyParseNormalize(b *testing.B) {
	secrets := [][]byte{[]byte("previous-app-secret"), []byte("current-app-secret")}
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("statuses=%d", n), func(b *testing.B) {
			body := statusesPayload(n)
			header := Sign(body, secrets[1]) // the second secret: the rotation case
			norm := newBenchNormalizer(b)
			received := time.Unix(1750264000, 0)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifySignature(body, header, secrets); err != nil {
					b.Fatal(err)
				}
				res, err := norm.Normalize(body, received)
				if err != nil || len(res.Events) != n {
					b.Fatalf("normalize: %d events, err %v", len(res.Events), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/status")
		})
	}
}

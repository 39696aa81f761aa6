package event

import (
	"encoding/json"
	"testing"
	"time"
)

func sampleEventJSON() []byte {
	ev := Event{SchemaVersion: 1, ID: NewID("x"), Kind: KindStatus, Channel: ChannelWhatsApp, Source: "meta",
		Field: "messages", EventTime: time.Unix(1750263773, 0).UTC(), ReceiveTime: time.Now().UTC(), WABAID: "102290129340398",
		PhoneNumberID: "106540352242922", DisplayPhoneNumber: "15550783881", MessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
		Status: "delivered", Recipient: &Recipient{Pseudonym: NewID("u"), CountryCode: "55", IDKind: "phone", Type: "individual"},
		Pricing:     &Pricing{Billable: true, Model: "PMP", Type: "regular", Category: "utility"},
		Attribution: &Attribution{Template: "order_update", UseCase: "billing", Campaign: "bf2026"}}
	b, _ := json.Marshal(&ev)
	return b
}

// BenchmarkUnmarshal is the evaluator's per-event decoding cost.
func BenchmarkUnmarshal(b *testing.B) {
	data := sampleEventJSON()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

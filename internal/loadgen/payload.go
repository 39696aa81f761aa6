// Package loadgen is the engine of the vigia-load tool: it generates
// realistic, correctly signed WhatsApp status webhooks, posts them to the
// ingest service at a fixed rate (open loop) or as fast as the service
// answers (closed loop), and reports throughput, answer latency and errors.
//
// It is a benchmark for a service on the same machine: it only ever posts to
// the one URL it is given, follows no redirects and stops by itself.
package loadgen

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"vigia/internal/meta"
)

// The payload types mirror what the Cloud API sends for field "messages";
// they are written with encoding/json so that a body is always valid JSON.
type envelope struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID      string   `json:"id"`
	Changes []change `json:"changes"`
}

type change struct {
	Field string `json:"field"`
	Value value  `json:"value"`
}

type value struct {
	MessagingProduct string   `json:"messaging_product"`
	Metadata         metadata `json:"metadata"`
	Statuses         []status `json:"statuses"`
}

type metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type status struct {
	ID                    string        `json:"id"`
	Status                string        `json:"status"`
	Timestamp             string        `json:"timestamp"`
	RecipientID           string        `json:"recipient_id"`
	RecipientType         string        `json:"recipient_type"`
	BizOpaqueCallbackData string        `json:"biz_opaque_callback_data,omitempty"`
	Conversation          *conversation `json:"conversation,omitempty"`
	Pricing               *pricing      `json:"pricing,omitempty"`
	Errors                []apiError    `json:"errors,omitempty"`
}

type conversation struct {
	ID                  string `json:"id"`
	ExpirationTimestamp string `json:"expiration_timestamp,omitempty"`
	Origin              struct {
		Type string `json:"type"`
	} `json:"origin"`
}

type pricing struct {
	Billable     bool   `json:"billable"`
	PricingModel string `json:"pricing_model"`
	Type         string `json:"type"`
	Category     string `json:"category"`
}

type apiError struct {
	Code      int        `json:"code"`
	Title     string     `json:"title"`
	Message   string     `json:"message"`
	ErrorData *errorData `json:"error_data,omitempty"`
	Href      string     `json:"href"`
}

type errorData struct {
	Details string `json:"details"`
}

// template is what a sender attributes a message to; the category decides
// the pricing category Meta reports.
type template struct {
	name, useCase, category string
}

var templates = []template{
	{"order_update", "transactional", "utility"},
	{"payment_reminder", "billing", "utility"},
	{"delivery_status", "logistics", "utility"},
	{"otp_login", "auth", "authentication"},
	{"promo_weekly", "sales", "marketing"},
	{"cart_recovery", "sales", "marketing"},
}

var campaigns = []string{"always_on", "bf2026", "reengage_q3", "launch_jun"}

// failure is one WhatsApp error a failed status may carry; weight makes the
// rate-limit and spam errors that Vigia's rules watch most common.
type failure struct {
	code           int
	title, details string
	weight         int
}

var failures = []failure{
	{131048, "Spam rate limit hit", "Message failed to send because there are restrictions on how many messages can be sent from this phone number.", 30},
	{130429, "Rate limit hit", "Message failed to send because there were too many messages sent from this phone number in a short period of time.", 20},
	{131026, "Message undeliverable", "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.", 20},
	{131049, "This message was not delivered to maintain healthy ecosystem engagement.", "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.", 15},
	{131050, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.", "The recipient has stopped marketing messages.", 5},
	{131047, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number.", 5},
	{131056, "(Business Account, Consumer Account) pair rate limit hit", "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.", 5},
}

var failureWeight = func() int {
	n := 0
	for _, f := range failures {
		n += f.weight
	}
	return n
}()

// Brazilian area codes, so that recipients look like real mobile numbers.
var ddds = []string{"11", "12", "13", "19", "21", "27", "31", "41", "47", "48", "51", "61", "62", "71", "81", "85", "91", "92"}

const errorsHref = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

type phoneNumber struct {
	waba, id, display string
}

// Generator produces status webhook bodies. It is deterministic for a seed
// and a clock, so that a run can be reproduced; it is not safe for
// concurrent use (the pool is built before the run, on one goroutine).
type Generator struct {
	rng     *rand.Rand
	numbers []phoneNumber
	run     uint64 // from the seed: keeps wamids of different seeds apart
	seq     uint64 // makes every wamid of the generator unique
	mix     float64
	now     func() time.Time
}

// NewGenerator returns a Generator spreading statuses over wabas accounts and
// numbers phone numbers (numbers >= wabas >= 1; each account gets at least
// one number). mix is the fraction of failed statuses; now stamps them.
func NewGenerator(seed uint64, wabas, numbers int, mix float64, now func() time.Time) *Generator {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &Generator{rng: rng, run: rng.Uint64(), mix: mix, now: now}
	ids := make([]string, wabas)
	for i := range ids {
		ids[i] = "10" + g.digits(13)
	}
	for i := range numbers {
		g.numbers = append(g.numbers, phoneNumber{
			waba:    ids[i%wabas],
			id:      "1" + g.digits(14),
			display: "55" + ddds[g.rng.IntN(len(ddds))] + "4" + g.digits(7),
		})
	}
	return g
}

func (g *Generator) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rng.IntN(10))
	}
	return string(b)
}

// Body is one pre-generated request: the bytes to post and their signature.
type Body struct {
	Data      []byte
	Signature string // X-Hub-Signature-256 value
	Statuses  int
}

// Batch returns a signed body with n statuses from one phone number, as the
// Cloud API groups them.
func (g *Generator) Batch(n int, secret []byte) (Body, error) {
	num := g.numbers[g.rng.IntN(len(g.numbers))]
	v := value{
		MessagingProduct: "whatsapp",
		Metadata:         metadata{DisplayPhoneNumber: num.display, PhoneNumberID: num.id},
		Statuses:         make([]status, n),
	}
	now := g.now().Unix()
	for i := range v.Statuses {
		v.Statuses[i] = g.status(now)
	}
	data, err := json.Marshal(envelope{
		Object: "whatsapp_business_account",
		Entry:  []entry{{ID: num.waba, Changes: []change{{Field: "messages", Value: v}}}},
	})
	if err != nil {
		return Body{}, err
	}
	return Body{Data: data, Signature: meta.Sign(data, secret), Statuses: n}, nil
}

func (g *Generator) status(now int64) status {
	recipient := "55" + ddds[g.rng.IntN(len(ddds))] + "9" + g.digits(8)
	g.seq++
	// Real wamids are base64 of an opaque blob that starts with the
	// recipient; ours carry the run and a sequence number to be unique.
	id := "wamid." + base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s%016X%012X", recipient, g.run, g.seq))
	tpl := templates[g.rng.IntN(len(templates))]
	s := status{
		ID: id,
		// Callbacks arrive a little after the event they report.
		Timestamp:             strconv.FormatInt(now-int64(g.rng.IntN(30)), 10),
		RecipientID:           recipient,
		RecipientType:         "individual",
		BizOpaqueCallbackData: "t=" + tpl.name + ";u=" + tpl.useCase + ";c=" + campaigns[g.rng.IntN(len(campaigns))],
	}
	switch r := g.rng.Float64(); {
	case r < g.mix:
		s.Status = "failed"
		f := g.failure()
		s.Errors = []apiError{{Code: f.code, Title: f.title, Message: f.title, ErrorData: &errorData{Details: f.details}, Href: errorsHref}}
		return s // failed messages are not billed: no pricing, no conversation
	case r < g.mix+(1-g.mix)*0.40:
		s.Status = "sent"
	case r < g.mix+(1-g.mix)*0.75:
		s.Status = "delivered"
	default:
		s.Status = "read"
	}
	s.Pricing = &pricing{Billable: true, PricingModel: "PMP", Type: "regular", Category: tpl.category}
	// Under per-message pricing Meta still sends the conversation object on
	// part of the callbacks; only "sent" carries its expiration.
	if s.Status != "read" && g.rng.IntN(3) == 0 {
		c := &conversation{ID: fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64())}
		c.Origin.Type = tpl.category
		if s.Status == "sent" {
			c.ExpirationTimestamp = strconv.FormatInt(now+24*3600, 10)
		}
		s.Conversation = c
	}
	return s
}

func (g *Generator) failure() failure {
	w := g.rng.IntN(failureWeight)
	for _, f := range failures {
		if w < f.weight {
			return f
		}
		w -= f.weight
	}
	return failures[len(failures)-1]
}

// BuildPool generates count bodies of batch statuses each, signed with
// secret. Doing this before the run keeps JSON encoding and HMAC out of the
// measured time. A large pool takes a noticeable moment, so ctx can cut it
// short.
func BuildPool(ctx context.Context, g *Generator, secret []byte, batch, count int) ([]Body, error) {
	pool := make([]Body, count)
	for i := range pool {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := g.Batch(batch, secret)
		if err != nil {
			return nil, err
		}
		pool[i] = b
	}
	return pool, nil
}

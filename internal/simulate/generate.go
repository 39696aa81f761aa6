package simulate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"vigia/internal/meta"
)

// The payload types mirror what the Cloud API sends (see
// internal/meta/testdata); they are written with encoding/json, so a body
// is always valid JSON, and signed over the exact bytes posted.
type envelope struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID      string   `json:"id"`
	Time    int64    `json:"time,omitempty"`
	Changes []change `json:"changes"`
}

type change struct {
	Field string `json:"field"`
	Value any    `json:"value"`
}

type messagesValue struct {
	MessagingProduct string     `json:"messaging_product"`
	Metadata         metadata   `json:"metadata"`
	Contacts         []contact  `json:"contacts,omitempty"`
	Messages         []inbound  `json:"messages,omitempty"`
	Statuses         []wsStatus `json:"statuses,omitempty"`
}

type metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type contact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WAID string `json:"wa_id"`
}

type inbound struct {
	From      string       `json:"from"`
	ID        string       `json:"id"`
	Timestamp string       `json:"timestamp"`
	Type      string       `json:"type"`
	Text      *textBody    `json:"text,omitempty"`
	Context   *msgContext  `json:"context,omitempty"`
	Button    *buttonReply `json:"button,omitempty"`
}

type textBody struct {
	Body string `json:"body"`
}

type buttonReply struct {
	Payload string `json:"payload"`
	Text    string `json:"text"`
}

type msgContext struct {
	From string `json:"from"`
	ID   string `json:"id"`
}

type wsStatus struct {
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

type templateStatusValue struct {
	Event      string     `json:"event"`
	TemplateID int64      `json:"message_template_id"`
	Name       string     `json:"message_template_name"`
	Language   string     `json:"message_template_language"`
	Reason     string     `json:"reason"`
	OtherInfo  *otherInfo `json:"other_info,omitempty"`
}

type otherInfo struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

type qualityValue struct {
	Display      string `json:"display_phone_number"`
	Event        string `json:"event"`
	CurrentLimit string `json:"current_limit"`
	OldLimit     string `json:"old_limit,omitempty"`
}

const errorsHref = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

// errorTexts are the titles and details Meta sends with the codes the
// scenarios use; others get a generic text.
var errorTexts = map[int][2]string{
	368:    {"Temporarily blocked for policies violations", "The phone number is temporarily blocked from sending messages for violating WhatsApp policies."},
	130429: {"Rate limit hit", "Message failed to send because there were too many messages sent from this phone number in a short period of time."},
	131016: {"Service unavailable", "A service is temporarily unavailable. Please check the WhatsApp Business Platform status page."},
	131026: {"Message undeliverable", "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number."},
	131047: {"Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
	131048: {"Spam rate limit hit", "Message failed to send because there are restrictions on how many messages can be sent from this phone number."},
	131049: {"This message was not delivered to maintain healthy ecosystem engagement.", "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},
	131050: {"Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.", "The recipient has stopped marketing messages."},
	132015: {"Template is paused", "The template is paused due to low quality, so it cannot be sent in a template message."},
}

func apiErr(code int) apiError {
	t, ok := errorTexts[code]
	if !ok {
		t = [2]string{"Message failed", fmt.Sprintf("Message failed with error %d.", code)}
	}
	return apiError{Code: code, Title: t[0], Message: t[0], ErrorData: &errorData{Details: t[1]}, Href: errorsHref}
}

// wamid builds a message id unique to the run: real ones are base64 of an
// opaque blob that starts with the recipient.
func wamid(recipient string, run, seq uint64) string {
	return "wamid." + base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s%016X%012X", recipient, run, seq))
}

// callbackData is what the simulated sender puts in
// biz_opaque_callback_data (docs/attribution.md).
func callbackData(template, useCase, campaign string) string {
	s := "t=" + template + ";u=" + useCase
	if campaign != "" {
		s += ";c=" + campaign
	}
	return s
}

// templateID is the template's declared id, or one derived from its name.
func templateID(t Template) int64 {
	if t.ID != "" {
		if v, err := strconv.ParseInt(t.ID, 10, 64); err == nil {
			return v
		}
	}
	h := fnv.New64a()
	h.Write([]byte(t.Name))
	return int64(h.Sum64()%9e14) + 1e14
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// batch is the content of one messages webhook: Meta groups the updates
// of one number.
type batch struct {
	waba     string
	number   Number
	statuses []wsStatus
	messages []inbound
	contacts []contact
}

// body returns the webhook body of a batch.
func (b *batch) body() ([]byte, error) {
	v := messagesValue{MessagingProduct: "whatsapp",
		Metadata: metadata{DisplayPhoneNumber: digits(b.number.Display), PhoneNumberID: b.number.ID},
		Contacts: b.contacts, Messages: b.messages, Statuses: b.statuses}
	return json.Marshal(envelope{Object: "whatsapp_business_account",
		Entry: []entry{{ID: b.waba, Changes: []change{{Field: "messages", Value: v}}}}})
}

// templateStatusBody is a message_template_status_update webhook.
func templateStatusBody(waba string, t Template, event string, at time.Time) ([]byte, error) {
	v := templateStatusValue{Event: event, TemplateID: templateID(t), Name: t.Name, Language: t.Language, Reason: "NONE"}
	if event == "PAUSED" {
		v.OtherInfo = &otherInfo{Title: "FIRST_PAUSE",
			Description: "Your message template has been paused for 3 hours because it continued to have issues."}
	}
	return json.Marshal(envelope{Object: "whatsapp_business_account",
		Entry: []entry{{ID: waba, Time: at.Unix(), Changes: []change{{Field: "message_template_status_update", Value: v}}}}})
}

// qualityBody is a phone_number_quality_update webhook. It names the
// number by its display form only, as Meta does.
func qualityBody(waba string, n Number, event, current, old string, at time.Time) ([]byte, error) {
	v := qualityValue{Display: n.Display, Event: event, CurrentLimit: current, OldLimit: old}
	return json.Marshal(envelope{Object: "whatsapp_business_account",
		Entry: []entry{{ID: waba, Time: at.Unix(), Changes: []change{{Field: "phone_number_quality_update", Value: v}}}}})
}

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(body []byte, secret string) string { return meta.Sign(body, []byte(secret)) }

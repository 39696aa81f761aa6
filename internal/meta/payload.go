package meta

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// flexString accepts a JSON string or number (Meta sends ids, timestamps and
// limits either way) and keeps its text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	// encoding/json has validated b already; a string without escapes
	// needs no second decoding pass (the common case: ids, timestamps).
	if len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0 {
		*f = flexString(b[1 : len(b)-1])
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// int returns the value as an integer, or 0 when it is not one.
func (f flexString) int() int64 {
	n, err := strconv.ParseInt(string(f), 10, 64)
	if err != nil {
		if fl, ferr := strconv.ParseFloat(string(f), 64); ferr == nil {
			return int64(fl)
		}
		return 0
	}
	return n
}

type envelope struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID      flexString `json:"id"`
	Time    flexString `json:"time"`
	Changes []change   `json:"changes"`
}

type change struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

type metadata struct {
	DisplayPhoneNumber flexString `json:"display_phone_number"`
	PhoneNumberID      flexString `json:"phone_number_id"`
}

// messagesTyped is messagesValue decoded in one pass (the fast path).
type messagesTyped struct {
	Metadata        metadata         `json:"metadata"`
	Statuses        []status         `json:"statuses"`
	Messages        []inbound        `json:"messages"`
	UserPreferences []userPreference `json:"user_preferences"`
}

// messagesValue is the value of field "messages" (and "user_preferences",
// which shares its metadata and contacts).
type messagesValue struct {
	Metadata        metadata          `json:"metadata"`
	Statuses        []json.RawMessage `json:"statuses"`
	Messages        []json.RawMessage `json:"messages"`
	UserPreferences []json.RawMessage `json:"user_preferences"`
}

type status struct {
	ID                    string        `json:"id"`
	Status                string        `json:"status"`
	Timestamp             flexString    `json:"timestamp"`
	RecipientID           flexString    `json:"recipient_id"`
	RecipientType         string        `json:"recipient_type"`
	RecipientUserID       string        `json:"recipient_user_id"`
	BizOpaqueCallbackData string        `json:"biz_opaque_callback_data"`
	Conversation          *conversation `json:"conversation"`
	Pricing               *pricing      `json:"pricing"`
	Errors                []apiError    `json:"errors"`
}

type conversation struct {
	ID                  string     `json:"id"`
	ExpirationTimestamp flexString `json:"expiration_timestamp"`
	Origin              struct {
		Type string `json:"type"`
	} `json:"origin"`
}

type pricing struct {
	Billable     *bool  `json:"billable"`
	PricingModel string `json:"pricing_model"`
	Type         string `json:"type"`
	Category     string `json:"category"`
}

type apiError struct {
	Code  flexString `json:"code"`
	Title string     `json:"title"`
}

type inbound struct {
	From       flexString `json:"from"`
	FromUserID string     `json:"from_user_id"`
	ID         string     `json:"id"`
	Timestamp  flexString `json:"timestamp"`
	Type       string     `json:"type"`
	Context    *struct {
		ID string `json:"id"`
	} `json:"context"`
	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Button *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"list_reply"`
	} `json:"interactive"`
}

type userPreference struct {
	WaID      flexString `json:"wa_id"`
	UserID    string     `json:"user_id"`
	Category  string     `json:"category"`
	Value     string     `json:"value"`
	Timestamp flexString `json:"timestamp"`
}

type phoneQualityValue struct {
	DisplayPhoneNumber flexString `json:"display_phone_number"`
	Event              string     `json:"event"`
	CurrentLimit       flexString `json:"current_limit"`
	OldLimit           flexString `json:"old_limit"`
}

type templateValue struct {
	Event                   string     `json:"event"`
	MessageTemplateID       flexString `json:"message_template_id"`
	MessageTemplateName     string     `json:"message_template_name"`
	MessageTemplateLanguage string     `json:"message_template_language"`
	Reason                  flexString `json:"reason"`
	OtherInfo               *struct {
		Title string `json:"title"`
	} `json:"other_info"`
	PreviousQualityScore string `json:"previous_quality_score"`
	NewQualityScore      string `json:"new_quality_score"`
}

type accountUpdateValue struct {
	Event   string `json:"event"`
	BanInfo *struct {
		WabaBanState flexString `json:"waba_ban_state"`
		WabaBanDate  flexString `json:"waba_ban_date"`
	} `json:"ban_info"`
	ViolationInfo *struct {
		ViolationType string `json:"violation_type"`
	} `json:"violation_info"`
}

type accountAlertValue struct {
	EntityType string     `json:"entity_type"`
	EntityID   flexString `json:"entity_id"`
	AlertInfo  struct {
		AlertSeverity string `json:"alert_severity"`
		AlertStatus   string `json:"alert_status"`
		AlertType     string `json:"alert_type"`
	} `json:"alert_info"`
}

type capabilityValue struct {
	MaxDailyConversationPerPhone     flexString `json:"max_daily_conversation_per_phone"`
	MaxDailyConversationsPerBusiness flexString `json:"max_daily_conversations_per_business"`
	MessagingLimit                   flexString `json:"messaging_limit"`
	MaxPhoneNumbersPerBusiness       flexString `json:"max_phone_numbers_per_business"`
	MaxPhoneNumbersPerWABA           flexString `json:"max_phone_numbers_per_waba"`
}

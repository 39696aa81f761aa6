// Package attribution reads the sender's attribution (template, use case,
// campaign) out of WhatsApp's biz_opaque_callback_data and the equivalent
// custom arguments of the fallback channels.
//
// The convention senders follow (documented in docs/attribution.md) accepts
// two spellings of the same three keys:
//
//	{"template":"order_update","use_case":"billing","campaign":"bf2026"}
//	t=order_update;u=billing;c=bf2026     (also template=, use_case=, campaign=; ';' or '&')
//
// Anything else is ignored: a sender that uses the field for its own purposes
// simply gets no attribution, never an error.
package attribution

import (
	"encoding/json"
	"strings"

	"vigia/internal/event"
)

// MaxValueLen bounds each value; longer values are cut, since they become
// labels and ClickHouse keys downstream.
const MaxValueLen = 128

// Parse returns the attribution in s, or nil when s declares none.
func Parse(s string) *event.Attribution {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var a event.Attribution
	if s[0] == '{' {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return nil
		}
		// Short keys first, so that the long spelling wins when a sender
		// set both; map order must not decide.
		for _, pass := range []bool{true, false} {
			for k, v := range m {
				if str, ok := v.(string); ok && (len(k) == 1) == pass {
					set(&a, k, str)
				}
			}
		}
	} else {
		pairs := strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '&' })
		for _, pass := range []bool{true, false} {
			for _, pair := range pairs {
				k, v, ok := strings.Cut(pair, "=")
				k = strings.TrimSpace(k)
				if ok && (len(k) == 1) == pass {
					set(&a, k, strings.TrimSpace(v))
				}
			}
		}
	}
	return FromParts(a.Template, a.UseCase, a.Campaign)
}

// FromParts builds an attribution from already separated values (the
// fallback channels carry them as separate custom arguments), sanitized the
// same way as Parse. It returns nil when all three are empty.
func FromParts(template, useCase, campaign string) *event.Attribution {
	a := event.Attribution{Template: clean(template), UseCase: clean(useCase), Campaign: clean(campaign)}
	if a == (event.Attribution{}) {
		return nil
	}
	return &a
}

func set(a *event.Attribution, key, value string) {
	switch strings.ToLower(key) {
	case "t", "template":
		a.Template = value
	case "u", "use_case", "usecase":
		a.UseCase = value
	case "c", "campaign":
		a.Campaign = value
	}
}

// clean keeps the characters that are safe in labels and keys and cuts the
// value to MaxValueLen.
func clean(v string) string {
	var b strings.Builder
	for _, r := range v {
		if b.Len() >= MaxValueLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '_', r == '-', r == '.', r == ':', r == '/':
			b.WriteRune(r)
		}
	}
	return b.String()
}

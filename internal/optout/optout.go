// Package optout decides whether an inbound message is a request to stop
// receiving messages. Ingest keeps only the verdict: the message body itself
// never leaves this package.
package optout

import (
	"strings"
	"unicode"
)

// DefaultKeywords are stop words in Portuguese, Spanish and English, matched
// after normalization (lower case, accents and punctuation removed), as the
// whole message or as the start of a short one ("parar por favor").
var DefaultKeywords = []string{
	"parar", "pare", "sair", "stop", "descadastrar", "descadastre",
	"nao quero mais", "unsubscribe", "darme de baja", "no mas", "optout", "opt out",
}

// DefaultExactKeywords are stop words that are opt-outs only as the whole
// message: at the start of a sentence they usually mean something else
// ("cancelar meu pedido", "nao quero cancelar").
var DefaultExactKeywords = []string{
	"cancelar", "nao quero", "remover", "bloquear", "baja",
}

// DefaultButtonPayloads are quick-reply payloads and titles that mean opt-out,
// matched after the same normalization as keywords.
var DefaultButtonPayloads = []string{
	"stop", "stop_promotions", "optout", "opt_out", "parar promocoes",
	"nao quero receber", "stop promotions", "unsubscribe", "opt out",
}

// MaxWords is the longest message still taken as a keyword command: "parar
// por favor" is an opt-out, a paragraph that happens to start with "pare" is
// not.
const MaxWords = 4

// Detector matches normalized text against keyword and button lists.
type Detector struct {
	keywords map[string]bool
	exact    map[string]bool
	buttons  map[string]bool
}

// New returns a Detector with the default exact-only keywords; nil lists
// mean the defaults.
func New(keywords, buttonPayloads []string) *Detector {
	return NewWithExact(keywords, nil, buttonPayloads)
}

// NewWithExact is New with a list of keywords that count only as the whole
// message; nil lists mean the defaults.
func NewWithExact(keywords, exactKeywords, buttonPayloads []string) *Detector {
	if keywords == nil {
		keywords = DefaultKeywords
	}
	if exactKeywords == nil {
		exactKeywords = DefaultExactKeywords
	}
	if buttonPayloads == nil {
		buttonPayloads = DefaultButtonPayloads
	}
	d := &Detector{keywords: map[string]bool{}, exact: map[string]bool{}, buttons: map[string]bool{}}
	for _, k := range keywords {
		d.keywords[Normalize(k)] = true
	}
	for _, k := range exactKeywords {
		d.exact[Normalize(k)] = true
	}
	for _, b := range buttonPayloads {
		d.buttons[Normalize(b)] = true
	}
	return d
}

// Text reports whether a free-text message is an opt-out: the whole message
// is a keyword (of either list), or it has at most MaxWords words and begins
// with a keyword that is not exact-only.
func (d *Detector) Text(body string) bool {
	n := Normalize(body)
	if n == "" {
		return false
	}
	if d.keywords[n] || d.exact[n] {
		return true
	}
	words := strings.Fields(n)
	if len(words) > MaxWords {
		return false
	}
	for i := len(words) - 1; i >= 1; i-- {
		if d.keywords[strings.Join(words[:i], " ")] {
			return true
		}
	}
	return false
}

// Button reports whether a quick-reply button (its payload or its title) is
// an opt-out.
func (d *Detector) Button(payloadOrTitle ...string) bool {
	for _, s := range payloadOrTitle {
		if n := Normalize(s); n != "" && d.buttons[n] {
			return true
		}
	}
	return false
}

// Normalize lower-cases s, folds common Latin accents, turns punctuation into
// spaces and collapses whitespace, so that "PARAR!!", "Parar" and " parar "
// compare equal.
func Normalize(s string) string {
	var b strings.Builder
	space := true
	for _, r := range strings.ToLower(s) {
		if unicode.Is(unicode.Mn, r) {
			continue // a combining accent typed as its own mark (NFD)
		}
		r = fold(r)
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_':
			b.WriteRune(r)
			space = false
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	return strings.TrimSpace(b.String())
}

func fold(r rune) rune {
	switch r {
	case 'á', 'à', 'â', 'ã', 'ä':
		return 'a'
	case 'é', 'è', 'ê', 'ë':
		return 'e'
	case 'í', 'ì', 'î', 'ï':
		return 'i'
	case 'ó', 'ò', 'ô', 'õ', 'ö':
		return 'o'
	case 'ú', 'ù', 'û', 'ü':
		return 'u'
	case 'ç':
		return 'c'
	case 'ñ':
		return 'n'
	}
	return r
}

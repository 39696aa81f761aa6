package optout

import (
	"strings"
	"testing"
)

func TestTextDefaults(t *testing.T) {
	d := New(nil, nil)
	cases := []struct {
		body string
		want bool
	}{
		// Portuguese, with case, accents and punctuation.
		{"PARAR!", true},
		{"parar", true},
		{"  Parar  ", true},
		{"Pare.", true},
		{"Sair.", true},
		{"SAIR", true},
		{"não quero mais", true},
		{"NÃO QUERO MAIS!!!", true},
		{"Nao quero", true},
		{"Descadastrar", true},
		{"remover", true},
		{"bloquear", true},
		{"cancelar", true},
		// Spanish.
		{"Baja", true},
		{"¡Baja!", true},
		{"darme de baja", true},
		{"No más", true},
		{"NO MÁS", true},
		// English.
		{"Stop", true},
		{"STOP.", true},
		{"stop!!!", true},
		{"Unsubscribe", true},
		{"opt-out", true},
		{"Opt out!", true},
		{"optout", true},
		// Other whitespace.
		{"PARAR\u00a0", true},
		{"\tsair\n", true},
		// Short phrases (at most MaxWords words) starting with a keyword.
		{"parar por favor", true},
		{"Stop please", true},
		{"sair, obrigado", true},
		{"pare de enviar isso", true}, // exactly MaxWords words
		{"não quero mais receber", true},
		// Too long: mentions or even starts with a keyword, but is a sentence.
		{"pare de me mandar essas mensagens", false},
		{"Quando chega meu pedido? Nao quero cancelar, so saber o prazo", false},
		{"I want to stop receiving these", false},
		{"Vou parar de comprar se o pedido nao chegar", false},
		// The keyword is not at the start.
		{"quero parar", false},
		{"please stop", false},
		// Not a keyword at all, or only a part of a word.
		{"stopp", false},
		{"parada", false},
		{"sairam", false},
		{"parar_promo", false}, // '_' is a word character
		{"olá", false},
		{"obrigado", false},
		// Empty and punctuation only.
		{"", false},
		{"   ", false},
		{"!!!", false},
		{"...?", false},
	}
	for _, c := range cases {
		if got := d.Text(c.body); got != c.want {
			t.Errorf("Text(%q) = %v, want %v (normalized %q)", c.body, got, c.want, Normalize(c.body))
		}
	}
}

func TestTextMaxWordsBoundary(t *testing.T) {
	d := New(nil, nil)
	words := []string{"parar"}
	for len(words) < MaxWords {
		words = append(words, "x")
	}
	if s := strings.Join(words, " "); !d.Text(s) {
		t.Errorf("Text(%q) with %d words = false, want true", s, MaxWords)
	}
	words = append(words, "x")
	if s := strings.Join(words, " "); d.Text(s) {
		t.Errorf("Text(%q) with %d words = true, want false", s, MaxWords+1)
	}
	// A long message that is exactly a (long) keyword is still an opt-out.
	long := New([]string{"please remove me from this list now"}, nil)
	if !long.Text("Please remove me from this list, now!") {
		t.Error("a whole-message keyword longer than MaxWords words is not detected")
	}
}

func TestTextCustomKeywords(t *testing.T) {
	d := New([]string{"CHEGA", "Não Mande Mais", "  basta!  "}, []string{})
	cases := []struct {
		body string
		want bool
	}{
		{"chega", true},
		{"Chega!", true},
		{"chega por favor", true},
		{"nao mande mais", true},
		{"NÃO MANDE MAIS.", true},
		{"basta", true},
		// The custom list replaces the defaults.
		{"parar", false},
		{"stop", false},
		{"sair", false},
		{"", false},
	}
	for _, c := range cases {
		if got := d.Text(c.body); got != c.want {
			t.Errorf("Text(%q) = %v, want %v", c.body, got, c.want)
		}
	}
	// An empty (non-nil) button list disables button detection.
	if d.Button("STOP", "stop_promotions") {
		t.Error("Button with an empty custom list = true")
	}
}

func TestTextEmptyKeywordList(t *testing.T) {
	d := New([]string{}, nil)
	for _, s := range []string{"parar", "stop", "", "x"} {
		if d.Text(s) {
			t.Errorf("Text(%q) = true with no keywords", s)
		}
	}
	if !d.Button("STOP") {
		t.Error("nil button list did not mean the defaults")
	}
}

func TestButtonDefaults(t *testing.T) {
	d := New(nil, nil)
	cases := []struct {
		name           string
		payload, title string
		want           bool
	}{
		{"payload upper", "STOP_PROMOTIONS", "Whatever", true},
		{"payload dash", "stop-promotions", "", true}, // '-' becomes a space: "stop promotions"
		{"payload opt_out", "opt_out", "", true},
		{"payload optout", "OPTOUT", "", true},
		{"payload stop", "Stop", "", true},
		{"title pt accents", "btn_7", "Parar promoções", true},
		{"title pt", "", "Não quero receber", true},
		{"title en", "x", "Stop promotions", true},
		{"title unsubscribe", "", "Unsubscribe!", true},
		{"neither", "confirm_order", "Confirmar", false},
		{"both empty", "", "", false},
		{"keyword is not a button", "sair", "parar", false},
		{"prefix only", "stop_promotions_now", "Parar promoções agora", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := d.Button(c.payload, c.title); got != c.want {
				t.Errorf("Button(%q, %q) = %v, want %v", c.payload, c.title, got, c.want)
			}
		})
	}
	if d.Button() {
		t.Error("Button() with no arguments = true")
	}
}

func TestButtonCustom(t *testing.T) {
	d := New(nil, []string{"UNSUB_ALL", "Não, obrigado"})
	cases := []struct {
		in   []string
		want bool
	}{
		{[]string{"unsub_all"}, true},
		{[]string{"x", "nao obrigado"}, true},
		{[]string{"NÃO, OBRIGADO!"}, true},
		{[]string{"STOP_PROMOTIONS"}, false}, // defaults replaced
		{[]string{"stop"}, false},
	}
	for _, c := range cases {
		if got := d.Button(c.in...); got != c.want {
			t.Errorf("Button(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	cases := map[string]string{
		"":                  "",
		"PARAR!!":           "parar",
		" parar ":           "parar",
		"Parar":             "parar",
		"Não Quero Mais":    "nao quero mais",
		"ÁÀÂÃÄ éèêë":        "aaaaa eeee",
		"íìîï óòôõö úùûü":   "iiii ooooo uuuu",
		"Ç ç Ñ ñ":           "c c n n",
		"a--b,,c":           "a b c",
		"stop_promotions":   "stop_promotions",
		"x\t\ny":            "x y",
		"123 go":            "123 go",
		"¿¡...!?":           "",
		"emoji 🛑 stop":      "emoji stop",
		"opt-out":           "opt out",
		"Descadastre-me já": "descadastre me ja",
	}
	for in, want := range cases {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every default keyword and button must be in normalized form already, or
// it could never match.
func TestDefaultsAreNormalized(t *testing.T) {
	for _, list := range [][]string{DefaultKeywords, DefaultButtonPayloads} {
		for _, k := range list {
			if n := Normalize(k); n != k {
				t.Errorf("default %q normalizes to %q", k, n)
			}
		}
	}
	d := New(nil, nil)
	for _, k := range DefaultKeywords {
		if !d.Text(k) {
			t.Errorf("default keyword %q is not detected", k)
		}
	}
	for _, b := range DefaultButtonPayloads {
		if !d.Button(b) {
			t.Errorf("default button %q is not detected", b)
		}
	}
}

func TestExactOnlyKeywordsAndDecomposedAccents(t *testing.T) {
	d := New(nil, nil)
	for text, want := range map[string]bool{
		"cancelar":                   true,
		"Cancelar!":                  true,
		"cancelar meu pedido":        false, // exact-only: a request about an order
		"não quero cancelar":         false,
		"nao quero":                  true,
		"na\u0303o quero mais":       true, // "não" typed as n, a, combining tilde
		"pare de enviar isso":        true,
		"remover o item do carrinho": false,
	} {
		if got := d.Text(text); got != want {
			t.Errorf("Text(%q) = %v, want %v", text, got, want)
		}
	}
	if !d.Button("opt-out") {
		t.Error(`Button("opt-out") not detected`)
	}
	custom := NewWithExact([]string{"chega"}, []string{"fim"}, nil)
	if !custom.Text("fim") || custom.Text("fim do mes") || !custom.Text("chega disso") {
		t.Error("custom exact-only list not honoured")
	}
}

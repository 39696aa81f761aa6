package attribution

import (
	"strings"
	"testing"

	"vigia/internal/event"
)

func attr(t, u, c string) *event.Attribution {
	return &event.Attribution{Template: t, UseCase: u, Campaign: c}
}

func TestParse(t *testing.T) {
	long := strings.Repeat("a", MaxValueLen+50)
	cases := []struct {
		name string
		in   string
		want *event.Attribution
	}{
		// JSON form.
		{"json", `{"template":"order_update","use_case":"billing","campaign":"bf2026"}`, attr("order_update", "billing", "bf2026")},
		{"json spaced", `  { "template" : "promo_bf" , "use_case":"sales" }  `, attr("promo_bf", "sales", "")},
		{"json short keys", `{"t":"a","u":"b","c":"c"}`, attr("a", "b", "c")},
		{"json key case", `{"Template":"a","USE_CASE":"b","Campaign":"c"}`, attr("a", "b", "c")},
		{"json usecase", `{"usecase":"b"}`, attr("", "b", "")},
		{"json unknown keys", `{"template":"a","order_id":"123","nested":{"x":1}}`, attr("a", "", "")},
		{"json non-string values ignored", `{"template":123,"use_case":null,"campaign":["x"]}`, nil},
		{"json only unknown", `{"foo":"bar"}`, nil},
		{"json invalid", `{"template":"a"`, nil},
		{"json array", `[{"template":"a"}]`, nil},
		{"json empty object", `{}`, nil},
		{"json escaped", `{"template":"a\u0062c"}`, attr("abc", "", "")},
		// Short-key form.
		{"short semicolon", "t=order_update;u=billing;c=bf2026", attr("order_update", "billing", "bf2026")},
		{"short ampersand", "t=order_update&u=billing&c=bf2026", attr("order_update", "billing", "bf2026")},
		{"short mixed separators", "t=a;u=b&c=c", attr("a", "b", "c")},
		{"short spaces", " t = a ; u = b ; c = c ", attr("a", "b", "c")},
		{"short order", "c=x;t=y", attr("y", "", "x")},
		{"short partial", "c=bf2026", attr("", "", "bf2026")},
		{"short empty pairs", ";;t=a;;&&", attr("a", "", "")},
		{"short last wins", "t=a;t=b", attr("b", "", "")},
		{"short upper keys", "T=a;U=b;C=c", attr("a", "b", "c")},
		// Long-key form.
		{"long keys", "template=order_update;use_case=billing;campaign=bf2026", attr("order_update", "billing", "bf2026")},
		{"long keys ampersand", "template=order_update&usecase=billing&campaign=bf2026", attr("order_update", "billing", "bf2026")},
		{"long and short", "template=a;u=b;campaign=c", attr("a", "b", "c")},
		// Unknown keys are ignored.
		{"unknown keys", "x=1;order=99;t=a", attr("a", "", "")},
		{"only unknown keys", "order=99;customer=42", nil},
		{"value with equals", "t=a=b", attr("ab", "", "")},
		{"empty value", "t=;u=b", attr("", "b", "")},
		{"all values empty", "t=;u=;c=", nil},
		// Garbage.
		{"garbage text", "hello world", nil},
		{"garbage opaque id", "ORDER-123456", nil},
		{"garbage no equals", "t;u;c", nil},
		{"garbage brace", "{", nil},
		{"garbage binary", "\x00\xff\xfe", nil},
		// Sanitization: only [A-Za-z0-9_.:/-] survive.
		{"sanitize spaces", "t=order update;c=black friday", attr("orderupdate", "", "blackfriday")},
		{"sanitize quotes and tags", `t=<script>"x"</script>`, attr("scriptx/script", "", "")},
		{"sanitize accents", "c=promoção", attr("", "", "promoo")},
		{"sanitize newlines", "t=a\nb;u=c\rd", attr("ab", "cd", "")},
		{"sanitize keeps safe", "t=A-z_0.9:x/y", attr("A-z_0.9:x/y", "", "")},
		{"sanitize json", `{"template":"order update!","campaign":"bf'2026;drop"}`, attr("orderupdate", "", "bf2026drop")},
		{"sanitize to empty", "t=!!!;u=   ", nil},
		{"sanitize emoji", "c=🔥sale🔥", attr("", "", "sale")},
		// Length cut.
		{"cut short form", "t=" + long, attr(long[:MaxValueLen], "", "")},
		{"cut json", `{"campaign":"` + long + `"}`, attr("", "", long[:MaxValueLen])},
		{"cut exact", "u=" + long[:MaxValueLen], attr("", long[:MaxValueLen], "")},
		{"cut counts kept chars", "t=" + strings.Repeat("a ", MaxValueLen+10), attr(strings.Repeat("a", MaxValueLen), "", "")},
		// Empty.
		{"empty", "", nil},
		{"blank", " \t\n ", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Parse(c.in)
			switch {
			case c.want == nil && got != nil:
				t.Errorf("Parse(%q) = %+v, want nil", c.in, *got)
			case c.want != nil && got == nil:
				t.Errorf("Parse(%q) = nil, want %+v", c.in, *c.want)
			case c.want != nil && *got != *c.want:
				t.Errorf("Parse(%q) = %+v, want %+v", c.in, *got, *c.want)
			}
		})
	}
}

func TestParseValueLengthBound(t *testing.T) {
	for _, in := range []string{
		"t=" + strings.Repeat("x", 10000),
		`{"template":"` + strings.Repeat("y", 10000) + `","use_case":"` + strings.Repeat("z", 500) + `"}`,
	} {
		a := Parse(in)
		if a == nil {
			t.Fatalf("Parse(%.20q...) = nil", in)
		}
		for _, v := range []string{a.Template, a.UseCase, a.Campaign} {
			if len(v) > MaxValueLen {
				t.Errorf("value of %d bytes, longer than MaxValueLen %d", len(v), MaxValueLen)
			}
		}
	}
}

func TestFromParts(t *testing.T) {
	cases := []struct {
		t, u, c string
		want    *event.Attribution
	}{
		{"order_update", "billing", "bf2026", attr("order_update", "billing", "bf2026")},
		{"promo_bf", "", "", attr("promo_bf", "", "")},
		{"", "", "c1", attr("", "", "c1")},
		{"", "", "", nil},
		{"  ", "!", "é", nil},
		{"order update", "bill\ning", "bf 2026", attr("orderupdate", "billing", "bf2026")},
		{strings.Repeat("q", 300), "", "", attr(strings.Repeat("q", MaxValueLen), "", "")},
	}
	for _, c := range cases {
		got := FromParts(c.t, c.u, c.c)
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("FromParts(%q, %q, %q) = %+v, want %+v", c.t, c.u, c.c, got, c.want)
		}
	}
}

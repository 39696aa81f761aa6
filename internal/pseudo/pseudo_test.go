package pseudo

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

var (
	key      = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
	hex32    = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func mustNew(t testing.TB, k []byte) *Pseudonymizer {
	t.Helper()
	p, err := New(k)
	if err != nil {
		t.Fatalf("New(%d bytes): %v", len(k), err)
	}
	return p
}

func TestNewKeyLength(t *testing.T) {
	cases := []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", []byte{}, false},
		{"one byte", []byte("x"), false},
		{"31 bytes", bytes.Repeat([]byte("k"), MinKeyBytes-1), false},
		{"32 bytes", bytes.Repeat([]byte("k"), MinKeyBytes), true},
		{"64 bytes", bytes.Repeat([]byte("k"), 64), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(c.key)
			if c.ok && (err != nil || p == nil) {
				t.Fatalf("New: p=%v err=%v, want a pseudonymizer", p, err)
			}
			if !c.ok && (err == nil || p != nil) {
				t.Fatalf("New: p=%v err=%v, want an error", p, err)
			}
		})
	}
}

// The key is copied: changing the caller's slice afterwards must not change
// the pseudonyms.
func TestNewCopiesKey(t *testing.T) {
	k := append([]byte(nil), key...)
	p := mustNew(t, k)
	before := p.Phone("5511987654321").Pseudonym
	k[0] ^= 0xff
	if after := p.Phone("5511987654321").Pseudonym; after != before {
		t.Errorf("pseudonym changed after the caller modified the key: %s -> %s", before, after)
	}
}

func TestDeterministic(t *testing.T) {
	p := mustNew(t, key)
	q := mustNew(t, append([]byte(nil), key...))
	fns := map[string]func(*Pseudonymizer, string) string{
		"phone": func(p *Pseudonymizer, s string) string { return p.Phone(s).Pseudonym },
		"bsuid": func(p *Pseudonymizer, s string) string { return p.BSUID(s).Pseudonym },
		"group": func(p *Pseudonymizer, s string) string { return p.Group(s).Pseudonym },
		"email": func(p *Pseudonymizer, s string) string { return p.Email(s).Pseudonym },
	}
	for name, f := range fns {
		for _, in := range []string{"5511987654321", "BR.1a2b3c4d5e6f", "a@b.example", ""} {
			a, b, c := f(p, in), f(p, in), f(q, in)
			if a != b || a != c {
				t.Errorf("%s(%q): %s, %s, %s; want one value for one key", name, in, a, b, c)
			}
		}
	}
}

func TestDifferentKeyDifferentPseudonym(t *testing.T) {
	p, q := mustNew(t, key), mustNew(t, otherKey)
	for _, in := range []string{"5511987654321", "14155550100", "1"} {
		if a, b := p.Phone(in).Pseudonym, q.Phone(in).Pseudonym; a == b {
			t.Errorf("Phone(%q) is %s under both keys", in, a)
		}
	}
	if p.BSUID("BR.x").Pseudonym == q.BSUID("BR.x").Pseudonym {
		t.Error("BSUID equal under both keys")
	}
}

func TestDifferentInputsDiffer(t *testing.T) {
	p := mustNew(t, key)
	seen := map[string]string{}
	for _, in := range []string{"5511987654321", "5511987654322", "551198765432", "15550100", "4915112345678"} {
		ps := p.Phone(in).Pseudonym
		if prev, dup := seen[ps]; dup {
			t.Errorf("Phone(%q) and Phone(%q) share pseudonym %s", in, prev, ps)
		}
		seen[ps] = in
	}
}

func TestPhoneFormatting(t *testing.T) {
	p := mustNew(t, key)
	want := p.Phone("5511987654321")
	for _, in := range []string{
		"+55 (11) 98765-4321",
		"+5511987654321",
		"55 11 98765 4321",
		"55.11.98765.4321",
		" 5511987654321 ",
		"+55-11-98765-4321",
	} {
		if got := p.Phone(in); got != want {
			t.Errorf("Phone(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestKindsSeparated(t *testing.T) {
	p := mustNew(t, key)
	ps := map[string]string{
		"phone": p.Phone("123").Pseudonym,
		"bsuid": p.BSUID("123").Pseudonym,
		"group": p.Group("123").Pseudonym,
		"email": p.Email("123").Pseudonym,
	}
	seen := map[string]string{}
	for kind, v := range ps {
		if other, dup := seen[v]; dup {
			t.Errorf("%s(\"123\") == %s(\"123\") == %s", kind, other, v)
		}
		seen[v] = kind
	}
}

func TestRecipientFields(t *testing.T) {
	p := mustNew(t, key)
	cases := []struct {
		name     string
		got      func() (pseudonym, cc, kind string)
		secret   string
		wantCC   string
		wantKind string
	}{
		{"phone", func() (string, string, string) {
			r := p.Phone("+55 (11) 98765-4321")
			return r.Pseudonym, r.CountryCode, r.IDKind
		}, "5511987654321", "55", "phone"},
		{"phone us", func() (string, string, string) {
			r := p.Phone("14155550100")
			return r.Pseudonym, r.CountryCode, r.IDKind
		}, "14155550100", "1", "phone"},
		{"bsuid", func() (string, string, string) {
			r := p.BSUID(" BR.1a2b3c4d5e6f ")
			return r.Pseudonym, r.CountryCode, r.IDKind
		}, "1a2b3c4d5e6f", "", "bsuid"},
		{"group", func() (string, string, string) {
			r := p.Group("120363043968520000")
			return r.Pseudonym, r.CountryCode, r.IDKind
		}, "120363043968520000", "", "group"},
		{"email", func() (string, string, string) {
			r := p.Email("Maria@Example.com")
			return r.Pseudonym, r.CountryCode, r.IDKind
		}, "maria", "", "email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps, cc, kind := c.got()
			if !hex32.MatchString(ps) {
				t.Errorf("pseudonym %q is not 32 lower-case hex chars", ps)
			}
			if strings.Contains(ps, c.secret) {
				t.Errorf("pseudonym %q contains the identity %q", ps, c.secret)
			}
			if cc != c.wantCC || kind != c.wantKind {
				t.Errorf("country %q kind %q, want %q %q", cc, kind, c.wantCC, c.wantKind)
			}
		})
	}
}

func TestBSUIDTrimAndEmailCase(t *testing.T) {
	p := mustNew(t, key)
	if p.BSUID(" BR.abc\t") != p.BSUID("BR.abc") {
		t.Error("BSUID not trimmed")
	}
	if p.Group(" 1203 ") != p.Group("1203") {
		t.Error("group id not trimmed")
	}
	if p.Email(" Maria@Example.COM ") != p.Email("maria@example.com") {
		t.Error("e-mail not lower-cased and trimmed")
	}
}

func TestDigits(t *testing.T) {
	cases := map[string]string{
		"":                    "",
		"5511987654321":       "5511987654321",
		"+55 (11) 98765-4321": "5511987654321",
		"abc":                 "",
		"1-800-FLOWERS":       "1800",
		"٣٤٥":                 "", // non-ASCII digits are dropped
	}
	for in, want := range cases {
		if got := Digits(in); got != want {
			t.Errorf("Digits(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCountryCode(t *testing.T) {
	cases := []struct{ digits, want string }{
		{"14155550100", "1"},     // NANP
		{"74951234567", "7"},     // Russia / Kazakhstan
		{"447911123456", "44"},   // UK
		{"5511987654321", "55"},  // Brazil
		{"351912345678", "351"},  // Portugal
		{"8801712345678", "880"}, // Bangladesh
		{"998901234567", "998"},  // Uzbekistan
		{"4915112345678", "49"},  // Germany
		{"5215512345678", "52"},  // Mexico
		{"0", ""},                // no code starts with 0
		{"0044123", ""},          // trunk/international prefix is not a code
		{"", ""},                 // empty
		{"8", ""},                // too short to be a code
		{"88", ""},               // prefix of 880 but not a code
		{"880", "880"},           // exactly a code
		{"2", ""},                // 2 is not a code
		{"2591234", ""},          // 259 is unassigned
		{"999123", ""},           // 999 is unassigned
		{"1", "1"},               // shortest code
		{"55", "55"},             // exact
	}
	for _, c := range cases {
		if got := CountryCode(c.digits); got != c.want {
			t.Errorf("CountryCode(%q) = %q, want %q", c.digits, got, c.want)
		}
	}
}

// The table must be prefix-free: otherwise the shortest match would hide a
// longer, correct one.
func TestCallingCodesPrefixFree(t *testing.T) {
	for c := range callingCodes {
		for n := 1; n < len(c); n++ {
			if callingCodes[c[:n]] {
				t.Errorf("code %s has code %s as prefix", c, c[:n])
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := mustNew(t, key)
	want := p.Phone("5511987654321").Pseudonym
	done := make(chan string)
	for i := 0; i < 8; i++ {
		go func() {
			var got string
			for j := 0; j < 200; j++ {
				p.BSUID("x")
				got = p.Phone("5511987654321").Pseudonym
			}
			done <- got
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; got != want {
			t.Errorf("concurrent Phone = %s, want %s", got, want)
		}
	}
}

func BenchmarkPhone(b *testing.B) {
	p := mustNew(b, key)
	numbers := []string{"5511987654321", "+55 (11) 98765-4321", "14155550100", "447911123456"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = p.Phone(numbers[i%len(numbers)])
	}
}

package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// checkDecode enforces Decode's contract on one input: when json.Unmarshal
// fails, Decode fails; when it succeeds, Decode succeeds and leaves an equal
// Event. It checks a zero Event and one already filled by an earlier
// decode, since encoding/json merges into what is there. It reports whether
// json.Unmarshal accepted the input.
func checkDecode(t testing.TB, data []byte) bool {
	t.Helper()
	var want, got Event
	errWant := json.Unmarshal(data, &want)
	errGot := Decode(data, &got)
	if errWant != nil {
		if errGot == nil {
			t.Fatalf("Decode accepted what json.Unmarshal refuses (%v):\n%q\ngot %+v", errWant, data, got)
		}
		return false
	}
	if errGot != nil {
		t.Fatalf("Decode: %v; json.Unmarshal accepts:\n%q", errGot, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode differs from json.Unmarshal on\n%q\ngot  %s\nwant %s", data, dump(&got), dump(&want))
	}
	want, got = filledEvent(), filledEvent()
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("json.Unmarshal into a filled event: %v", err)
	}
	if err := Decode(data, &got); err != nil {
		t.Fatalf("Decode into a filled event: %v on\n%q", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode into a filled event differs from json.Unmarshal on\n%q\ngot  %s\nwant %s", data, dump(&got), dump(&want))
	}
	return true
}

// dump shows an Event with its pointer blocks expanded.
func dump(ev *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+v", *ev)
	v := reflect.ValueOf(ev).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			fmt.Fprintf(&b, "\n  %s: %+v", v.Type().Field(i).Name, f.Elem().Interface())
		}
	}
	return b.String()
}

// filledJSON sets every field and block, so that decoding into the result
// shows whether fields are merged or replaced as encoding/json does.
const filledJSON = `{"schema_version":7,"id":"old-id","kind":"old","channel":"sms","source":"old",
"field":"old","event_time":"2001-02-03T04:05:06.7+01:00","receive_time":"2001-02-03T04:05:06Z",
"waba_id":"w","phone_number_id":"p","display_phone_number":"d","message_id":"m","status":"s",
"recipient":{"pseudonym":"p","country_code":"1","id_kind":"k","type":"t"},
"error":{"code":1,"class":"c","title":"t"},"pricing":{"billable":true,"model":"m","type":"t","category":"c"},
"conversation":{"id":"i","origin_type":"o","expiration_time":"2002-01-01T00:00:00Z"},
"attribution":{"template":"t","use_case":"u","campaign":"c"},"inbound":{"message_type":"m","context_message_id":"c"},
"opt_out":{"source":"s","category":"c","resumed":true},"quality":{"event":"e","current_limit":"c","old_limit":"o"},
"template":{"id":"i","name":"n","language":"l","event":"e","reason":"r","other_info_title":"o","previous_quality":"p","new_quality":"n"},
"account":{"event":"e","violation_type":"v","ban_state":"b","ban_date":"d","entity_type":"t","entity_id":"i","alert_severity":"s","alert_status":"st","alert_type":"ty"},
"capability":{"messaging_limit":"m","max_phone_numbers":3,"max_daily_conversation_per_phone":"x"}}`

func filledEvent() Event {
	var ev Event
	if err := json.Unmarshal([]byte(filledJSON), &ev); err != nil {
		panic(err)
	}
	return ev
}

func TestDecodeSample(t *testing.T) {
	data := sampleEventJSON()
	var ev Event
	if err := Decode(data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Recipient == nil || ev.Pricing == nil || ev.Attribution == nil || ev.Status != StatusDelivered {
		t.Fatalf("sample decoded to %s", dump(&ev))
	}
	checkDecode(t, data)
	if !checkDecode(t, []byte(filledJSON)) {
		t.Fatal("json.Unmarshal refuses filledJSON")
	}
}

// TestDecodeRandom compares Decode with json.Unmarshal on random events,
// as json.Marshal writes them and as rewritten by the emitter below with
// other whitespace, key order, key case, escapes, unknown members,
// duplicates and nulls.
func TestDecodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1000
	if testing.Short() {
		n = 200
	}
	accepted := 0
	for i := 0; i < n; i++ {
		ev := randEvent(r)
		data, err := json.Marshal(&ev)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		if !checkDecode(t, data) {
			t.Fatalf("json.Unmarshal refuses json.Marshal's output %q", data)
		}
		var got Event
		if err := Decode(data, &got); err != nil || !reflect.DeepEqual(normalized(got), normalized(ev)) {
			t.Fatalf("round trip of %s\ngave %s (%v)", dump(&ev), dump(&got), err)
		}
		for j := 0; j < 4; j++ {
			if checkDecode(t, rewrite(r, data)) {
				accepted++
			}
		}
	}
	t.Logf("%d of %d rewritten inputs valid", accepted, n*4)
	// Most rewrites must stay valid, or the success paths go untested.
	if accepted < n*4*3/4 {
		t.Errorf("only %d of %d rewritten inputs valid", accepted, n*4)
	}
}

// normalized makes a marshalled and decoded Event comparable with the
// original: times keep only what RFC 3339 carries (the instant and the
// offset), and invalid UTF-8 becomes U+FFFD as json.Marshal writes it.
func normalized(ev Event) Event {
	v := reflect.ValueOf(&ev).Elem()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			var b strings.Builder
			for _, c := range v.String() { // each invalid byte gives one U+FFFD
				b.WriteRune(c)
			}
			v.SetString(b.String())
		case reflect.Pointer:
			if !v.IsNil() {
				c := reflect.New(v.Type().Elem())
				c.Elem().Set(v.Elem())
				v.Set(c)
				walk(c.Elem())
			}
		case reflect.Struct:
			if t, ok := v.Interface().(time.Time); ok {
				_, off := t.Zone()
				v.Set(reflect.ValueOf(t.In(time.FixedZone("", off))))
				return
			}
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		}
	}
	walk(v)
	return ev
}

func TestDecodeHandWritten(t *testing.T) {
	valid := []string{
		`{}`,
		`null`,
		" \t\r\n null \n",
		` { } `,
		// Nulls for scalars and blocks.
		`{"schema_version":null,"id":null,"kind":null,"event_time":null,"recipient":null,"error":null,"pricing":null,
		 "conversation":null,"attribution":null,"inbound":null,"opt_out":null,"quality":null,"template":null,
		 "account":null,"capability":null}`,
		`{"recipient":{"pseudonym":null,"id_kind":null},"error":{"code":null,"class":null},"pricing":{"billable":null},
		 "conversation":{"expiration_time":null},"opt_out":{"resumed":null},"capability":{"max_phone_numbers":null}}`,
		// Empty blocks are allocated.
		`{"recipient":{},"error":{},"pricing":{},"conversation":{},"attribution":{},"inbound":{},"opt_out":{},
		 "quality":{},"template":{},"account":{},"capability":{}}`,
		// Unknown members of every type at every level.
		`{"x":1,"y":{"a":[1,2,{"b":null}],"c":"d"},"z":[],"w":true,"v":false,"u":null,"t":-1.5e+10,"id":"a",
		 "recipient":{"q":{"r":[{}]},"pseudonym":"p","n":0,"m":[true,false,null,"s",0.5]},
		 "error":{"extra":{},"code":131048,"more":[[]]},"pricing":{"billable":false,"x":"y"},
		 "conversation":{"a":1,"expiration_time":"2024-06-18T16:22:53.123+05:30","b":2},
		 "attribution":{"t":{}},"inbound":{"t":[]},"opt_out":{"resumed":true,"z":null},"quality":{"q":1e5},
		 "template":{"x":"\u00e9"},"account":{"entity_id":"1","q":-0},"capability":{"k":0.0,"max_phone_numbers":-0}}`,
		// Whitespace everywhere.
		" {\n\t\"id\" \r: \"a\" , \"recipient\" :\n{ \"pseudonym\" : \"p\" , \"x\" : [ 1 , { } , [ ] ] } ,\"schema_version\"\t:\t1\n}\n",
		// Key order and case; the Kelvin sign and long s fold to k and s.
		`{"STATUS":"read","Kind":"status","ID":"x","Schema_Version":2,"Recipient":{"ID_KIND":"phone","Pseudonym":"p"}}`,
		`{"\u212aind":"status","\u017fource":"meta","id":"a","ID":"b","iD":"c"}`,
		`{"\u006bind":"k","s\u0074atus":"s","\u0053OURCE":"x","recipient":{"pseudony\u006d":"p"}}`,
		`{"kind\u0000":"no","kind ":"no","kin":"no","kinds":"no","":"empty","\ud800":"x","k\u0131nd":"dotless"}`,
		// Duplicate members: the last wins, blocks merge, null resets.
		`{"id":"a","id":"b","recipient":{"pseudonym":"p"},"recipient":{"id_kind":"phone"}}`,
		`{"recipient":{"pseudonym":"p"},"recipient":null,"recipient":{"id_kind":"phone"}}`,
		`{"id":"a","id":null,"schema_version":3,"schema_version":null,"pricing":{"billable":true},"pricing":{"billable":null}}`,
		`{"conversation":{"expiration_time":"2024-01-01T00:00:00Z"},"conversation":{"expiration_time":null}}`,
		`{"conversation":{"expiration_time":"2024-01-01T00:00:00Z","expiration_time":"2025-01-01T00:00:00+01:00"}}`,
		// String escapes.
		`{"id":"\"\\\/\b\f\n\r\t","source":"\u0041\u00e9\u65e5\ud83d\ude00\uD83D\uDE00","status":"\ud800\udc00\udbff\udfff"}`,
		`{"id":"\ud800","source":"\udc00\ud800","status":"\ud800\u0041","field":"\ud83d\ud83d\ude00","message_id":"a\u0000b"}`,
		`{"id":"é日本😀","source":"` + "\u2028\u2029\x7f" + `"}`,
		// Invalid UTF-8 becomes U+FFFD.
		"{\"id\":\"a\xffb\",\"source\":\"\xed\xa0\x80\",\"status\":\"\xc3\",\"field\":\"\xe6\x97\",\"message_id\":\"\xf0\x9f\x98\",\"waba_id\":\"\\n\xff\"}",
		"{\"\xffid\":\"x\",\"id\xff\":\"y\",\"recipient\":{\"\xc5\xbfeudonym\":\"p\"}}",
		// Numbers.
		`{"schema_version":-0,"error":{"code":9223372036854775807},"capability":{"max_phone_numbers":-9223372036854775808}}`,
		`{"schema_version":123456789012345678,"error":{"code":-123456789012345678}}`,
		`{"schema_version":1234567890123456789,"error":{"code":-1234567890123456789}}`,
		// Times: offsets, fractions, the zero time, lower-case t and z.
		`{"event_time":"0001-01-01T00:00:00Z","receive_time":"9999-12-31T23:59:59.999999999-23:59"}`,
		`{"event_time":"2024-02-29T12:00:00.5+00:00","receive_time":"2024-02-29T12:00:00Z"}`,
		`{"event_time":"2024-06-18T16:22:53.000000000Z","receive_time":"2024-06-18T16:22:53,5Z"}`,
		`{"event_time":"2024-06-18T16:22:53.123456789123Z"}`,
		`{"event_time":"2024-06-18T16:22:53-00:00"}`,
	}
	for _, in := range valid {
		if !checkDecode(t, []byte(in)) {
			err := json.Unmarshal([]byte(in), new(Event))
			t.Errorf("json.Unmarshal refuses %q: %v", in, err)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	invalid := []string{
		``, ` `, `{`, `}`, `{"id"`, `{"id":`, `{"id":"a"`, `{"id":"a",}`, `{,"id":"a"}`, `{"id":"a" "kind":"b"}`,
		`{"id" "a"}`, `{id:"a"}`, `{'id':'a'}`, `{"id":"a"}}`, `{"id":"a"} x`, `{} {}`, `[]`, `"s"`, `1`, `true`,
		`nul`, `nulll`, `NULL`, "\ufeff{}", `{"id":"a\x"}`, `{"id":"\u12"}`, `{"id":"\u12G4"}`, `{"id":"\'"}`,
		"{\"id\":\"a\nb\"}", "{\"id\":\"a\x00b\"}", "{\"\t\":1}", `{"id":"a}`, `{"id":"\`,
		// Wrong types.
		`{"id":1}`, `{"id":true}`, `{"id":{}}`, `{"id":[]}`, `{"kind":false}`,
		`{"schema_version":"1"}`, `{"schema_version":1.0}`, `{"schema_version":1e2}`, `{"schema_version":true}`,
		`{"schema_version":9223372036854775808}`, `{"schema_version":-9223372036854775809}`,
		`{"schema_version":99999999999999999999}`, `{"schema_version":{}}`,
		`{"recipient":"p"}`, `{"recipient":[]}`, `{"recipient":1}`, `{"recipient":true}`,
		`{"pricing":{"billable":"true"}}`, `{"pricing":{"billable":1}}`, `{"opt_out":{"resumed":0}}`,
		`{"event_time":1}`, `{"event_time":true}`, `{"event_time":{}}`, `{"event_time":[]}`,
		`{"event_time":""}`, `{"event_time":"yesterday"}`, `{"event_time":"2024-06-18T16:22:53\u005a"}`,
		`{"event_time":"2024-06-18 16:22:53Z"}`, `{"event_time":"2024-02-29t12:00:00z"}`, `{"event_time":"2024-06-18T16:22:53"}`,
		`{"event_time":"2024-13-18T16:22:53Z"}`, `{"conversation":{"expiration_time":5}}`,
		`{"conversation":{"expiration_time":"x"}}`, `{"error":{"code":"131048"}}`,
		// Bad JSON inside ignored members.
		`{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":.5}`, `{"x":1e}`, `{"x":1e+}`, `{"x":+1}`, `{"x":0x10}`,
		`{"x":[1,]}`, `{"x":[,1]}`, `{"x":[1 2]}`, `{"x":{"a"}}`, `{"x":{"a":}}`, `{"x":{1:2}}`, `{"x":tru}`,
		`{"x":[}`, `{"x":{]}`, `{"x":"\q"}`, `{"x":NaN}`, `{"x":Infinity}`, `{"x":-Infinity}`,
		`{"recipient":{"x":[1,]}}`, `{"recipient":{"pseudonym":"p",}}`, `{"recipient":{"pseudonym":"p"}`,
		`{"schema_version":1.}`, `{"schema_version":-}`, `{"schema_version":01}`,
	}
	for _, in := range invalid {
		if err := json.Unmarshal([]byte(in), new(Event)); err == nil {
			t.Errorf("json.Unmarshal accepts %q", in)
			continue
		}
		if err := Decode([]byte(in), new(Event)); err == nil {
			t.Errorf("Decode accepts %q", in)
		}
	}
	if err := Decode([]byte(`{}`), nil); err == nil {
		t.Error("Decode into nil accepted")
	}
}

// TestDecodeCorrupted checks prefixes of some events, and the events with
// one byte replaced, deleted or doubled: at every position for the sample
// and filledJSON, at some for random events.
func TestDecodeCorrupted(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	docs := [][]byte{sampleEventJSON(), []byte(filledJSON)}
	for i := 0; i < 2; i++ {
		ev := randEvent(r)
		b, _ := json.Marshal(&ev)
		docs = append(docs, b, rewrite(r, b))
	}
	repl := []byte(" \"\\{}[],:0-.eEtnu\x00\x1f\xff")
	for k, doc := range docs {
		for i := range doc {
			if k >= 2 && r.IntN(len(doc)) >= 300 {
				// Some 300 positions of each random event.
				continue
			}
			checkDecode(t, doc[:i])
			b := append([]byte(nil), doc...)
			b[i] = repl[r.IntN(len(repl))]
			checkDecode(t, b)
			checkDecode(t, append(append([]byte(nil), doc[:i]...), doc[i+1:]...))
			checkDecode(t, append(append([]byte(nil), doc[:i+1]...), doc[i:]...))
		}
	}
}

// TestDecodeDepth checks that ignored values are refused beyond
// encoding/json's nesting limit and accepted up to it.
func TestDecodeDepth(t *testing.T) {
	for _, c := range []struct {
		prefix, open, inner, close, suffix string
		depth                              int // containers open around the nested ones
	}{
		{`{"x":`, "[", "", "]", `}`, 1},
		{`{"x":`, `{"a":`, "1", "}", `}`, 1},
		{`{"recipient":{"x":`, "[", "", "]", `}}`, 2},
		{`{"error":{"x":`, `{"a":`, "1", "}", `}}`, 2},
	} {
		for _, n := range []int{maxDepth - c.depth - 1, maxDepth - c.depth, maxDepth - c.depth + 1} {
			data := []byte(c.prefix + strings.Repeat(c.open, n) + c.inner + strings.Repeat(c.close, n) + c.suffix)
			ok := checkDecode(t, data)
			if ok != (n <= maxDepth-c.depth) {
				t.Errorf("%s nested %d deep in %d: json.Unmarshal accepted=%v", c.open, n, c.depth, ok)
			}
		}
	}
}

// TestFoldToASCII backs foldKey's shortcut: encoding/json folds a rune to
// the smallest rune of its case-folding orbit, and the only non-ASCII runes
// whose orbit holds an ASCII rune are U+017F (s) and U+212A (k).
func TestFoldToASCII(t *testing.T) {
	want := map[rune]rune{'\u017f': 'S', '\u212a': 'K'}
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		f := r
		for {
			f2 := unicode.SimpleFold(f)
			if f2 <= f {
				f = f2
				break
			}
			f = f2
		}
		if f < utf8.RuneSelf && want[r] != f {
			t.Errorf("%U folds to %q", r, f)
		}
	}
}

// TestKeyTables checks the hand-written key tables of decode.go, and
// keyIndex over them, against the struct tags: every member, in field order.
func TestKeyTables(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		keys []memberKey
	}{
		{reflect.TypeFor[Event](), eventKeys},
		{reflect.TypeFor[Recipient](), recipientKeys},
		{reflect.TypeFor[Error](), errorKeys},
		{reflect.TypeFor[Pricing](), pricingKeys},
		{reflect.TypeFor[Conversation](), conversationKeys},
		{reflect.TypeFor[Attribution](), attributionKeys},
		{reflect.TypeFor[Inbound](), inboundKeys},
		{reflect.TypeFor[OptOut](), optOutKeys},
		{reflect.TypeFor[Quality](), qualityKeys},
		{reflect.TypeFor[Template](), templateKeys},
		{reflect.TypeFor[Account](), accountKeys},
		{reflect.TypeFor[Capability](), capabilityKeys},
	} {
		if c.typ.NumField() != len(c.keys) {
			t.Errorf("%v has %d fields, %d keys", c.typ, c.typ.NumField(), len(c.keys))
			continue
		}
		for i := range c.keys {
			name, _, _ := strings.Cut(c.typ.Field(i).Tag.Get("json"), ",")
			if name == "" || len(name) > maxNameLen || strings.ToLower(name) != name {
				t.Errorf("%v.%s: name %q breaks foldKey's assumptions", c.typ, c.typ.Field(i).Name, name)
			}
			quoted := `"` + name + `":`
			data := []byte(quoted + "0" + strings.Repeat(" ", 16))
			if !c.keys[i].at(data, 0) || c.keys[i].n != len(quoted) {
				t.Errorf("%v key %d does not match %s", c.typ, i, quoted)
			}
			if c.keys[i].at([]byte(quoted[:len(quoted)-1]+"x0"+strings.Repeat(" ", 16)), 0) {
				t.Errorf("%v key %d matches a different key", c.typ, i)
			}
			if got := keyIndex(c.keys, []byte(name)); got != i {
				t.Errorf("%v index(%q) = %d, want %d", c.typ, name, got, i)
			}
		}
	}
}

// TestParseUTC compares the fast path for UTC times with
// time.Time.UnmarshalJSON, which it stands for.
func TestParseUTC(t *testing.T) {
	var inputs []string
	for _, s := range []string{
		"2024-06-18T16:22:53Z", "0000-01-01T00:00:00Z", "0000-02-29T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
		"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
		"2100-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z", "2024-04-30T00:00:00Z",
		"2024-12-31T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z",
		"2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:59:60Z", "2024-01-01T23:59:59.Z",
		"2024-01-01T23:59:59.1Z", "2024-01-01T23:59:59.123456789012Z", "2024-01-01T23:59:59,5Z",
		"2024-01-01T23:59:59z", "2024-01-01t23:59:59Z", "2024-01-01 23:59:59Z", "2024-01-01T23:59:59+00:00",
		"2024-01-01T23:59:59-01:30", "2024-01-01T23:59:59", "2024-1-01T23:59:59Z", "+024-01-01T23:59:59Z",
		"-024-01-01T23:59:59Z", "2024-01-01T23:59:59ZZ", "2024-01-01T23:59:5Z", "２024-01-01T23:59:59Z",
		"2024-01-01T23:59:59.-1Z", "2024-01-01T2:359:59Z", "2024/01/01T23:59:59Z", "2024-01-01T23:59:59\\u005a",
	} {
		inputs = append(inputs, s)
	}
	var canonical []string // as json.Marshal writes UTC times: the fast path must take them
	r := rand.New(rand.NewPCG(9, 10))
	for range 5000 {
		sec := -62135596800 + r.Int64N(253402300799+62135596800)
		s := time.Unix(sec, r.Int64N(1e9)*int64(r.IntN(2))).UTC().Format(time.RFC3339Nano)
		canonical = append(canonical, s)
		b := []byte(s)
		b[r.IntN(len(b))] = "0123456789:-.TZ/ x"[r.IntN(18)]
		inputs = append(inputs, string(b))
	}
	inputs = append(inputs, canonical...)
	for _, s := range inputs {
		checkDecode(t, []byte(`{"event_time":"`+s+`","conversation":{"expiration_time":"`+s+`"}}`))
	}
	// Every day of two 400-year cycles of the calendar from year 0, of the
	// years around now and of the last ones, for daysFromCivil.
	for _, years := range [][2]int{{0, 800}, {1900, 2200}, {9800, 10000}} {
		for d := time.Date(years[0], 1, 1, 23, 59, 59, 0, time.UTC); d.Year() < years[1]; d = d.AddDate(0, 0, 1) {
			canonical = append(canonical, d.Format(time.RFC3339))
		}
	}
	for i, s := range append(inputs, canonical...) {
		q := []byte(`"` + s + `"`)
		var want time.Time
		errWant := want.UnmarshalJSON(q)
		got, n, ok := parseUTC(q[1:])
		if ok && (errWant != nil || !reflect.DeepEqual(got, want) || n != len(q)) {
			t.Fatalf("parseUTC(%s) = %#v, %d; UnmarshalJSON: %#v, %v", q, got, n, want, errWant)
		}
		if !ok && i >= len(inputs) {
			t.Fatalf("parseUTC refused %s", q)
		}
	}
}

func TestDecodeConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var docs [][]byte
	var wants []Event
	for i := 0; i < 64; i++ {
		ev := randEvent(r)
		b, _ := json.Marshal(&ev)
		var want Event
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		docs, wants = append(docs, b), append(wants, want)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for k := 0; k < 200; k++ {
				i := (g*31 + k) % len(docs)
				var got Event
				if err := Decode(docs[i], &got); err != nil || !reflect.DeepEqual(got, wants[i]) {
					t.Errorf("concurrent Decode of %q: %v", docs[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDecodeAllocs(t *testing.T) {
	data := sampleEventJSON()
	var ev Event
	n := testing.AllocsPerRun(100, func() {
		ev = Event{}
		if err := Decode(data, &ev); err != nil {
			t.Fatal(err)
		}
	})
	// One for the copy of the input that holds the strings and one per
	// block (three); nothing for keys, numbers, times or the decoder.
	if n > 4 {
		t.Errorf("Decode of the sample allocates %v times", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleEventJSON())
	f.Add([]byte(filledJSON))
	f.Add([]byte(`{"x":[1,{"y":null}],"ID":"\ud83d\ude00","recipient":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}

func BenchmarkDecode(b *testing.B) {
	data := sampleEventJSON()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var ev Event
		if err := Decode(data, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// writeCorpus regenerates testdata/fuzz/FuzzDecode from the generators of
// this file: go test ./internal/event -run TestWriteFuzzCorpus -write-fuzz-corpus
var writeCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite the checked-in seed corpus of FuzzDecode")

func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("-write-fuzz-corpus not set")
	}
	r := rand.New(rand.NewPCG(7, 8))
	var seeds [][]byte
	for len(seeds) < 8 {
		ev := randEvent(r)
		b, err := json.Marshal(&ev)
		if err != nil {
			continue
		}
		if len(seeds)%2 == 1 {
			b = rewrite(r, b)
		}
		seeds = append(seeds, b)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		sum := sha256.Sum256(s)
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Random events.

func randEvent(r *rand.Rand) Event {
	ev := Event{
		SchemaVersion:      randInt(r),
		ID:                 randString(r),
		Kind:               Kind(randString(r)),
		Channel:            Channel(randString(r)),
		Source:             randString(r),
		Field:              randString(r),
		EventTime:          randTime(r),
		ReceiveTime:        randTime(r),
		WABAID:             randString(r),
		PhoneNumberID:      randString(r),
		DisplayPhoneNumber: randString(r),
		MessageID:          randString(r),
		Status:             randString(r),
	}
	if r.IntN(2) == 0 {
		ev.Recipient = &Recipient{Pseudonym: randString(r), CountryCode: randString(r), IDKind: randString(r), Type: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Error = &Error{Code: randInt(r), Class: randString(r), Title: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Pricing = &Pricing{Billable: r.IntN(2) == 0, Model: randString(r), Type: randString(r), Category: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Conversation = &Conversation{ID: randString(r), OriginType: randString(r)}
		if r.IntN(2) == 0 {
			t := randTime(r)
			ev.Conversation.ExpirationTime = &t
		}
	}
	if r.IntN(2) == 0 {
		ev.Attribution = &Attribution{Template: randString(r), UseCase: randString(r), Campaign: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Inbound = &Inbound{MessageType: randString(r), ContextMessageID: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.OptOut = &OptOut{Source: randString(r), Category: randString(r), Resumed: r.IntN(2) == 0}
	}
	if r.IntN(2) == 0 {
		ev.Quality = &Quality{Event: randString(r), CurrentLimit: randString(r), OldLimit: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Template = &Template{ID: randString(r), Name: randString(r), Language: randString(r), Event: randString(r),
			Reason: randString(r), OtherInfoTitle: randString(r), PreviousQuality: randString(r), NewQuality: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Account = &Account{Event: randString(r), ViolationType: randString(r), BanState: randString(r),
			BanDate: randString(r), EntityType: randString(r), EntityID: randString(r), AlertSeverity: randString(r),
			AlertStatus: randString(r), AlertType: randString(r)}
	}
	if r.IntN(2) == 0 {
		ev.Capability = &Capability{MessagingLimit: randString(r), MaxPhoneNumbers: randInt(r), MaxDailyConvLegacy: randString(r)}
	}
	return ev
}

// stringParts mixes plain text with what needs escaping or care: quotes,
// backslashes, control characters, HTML characters json.Marshal escapes,
// U+2028, multi-byte and astral runes, and invalid UTF-8.
var stringParts = []string{
	"a", "Z", "0", "_", "wamid.HBgLMTY1", "delivered", "TIER_2K", " ", "/", "\"", "\\", "\n", "\t", "\r", "\b", "\f",
	"\x00", "\x01", "\x1f", "\x7f", "<", ">", "&", "\u2028", "\u2029", "é", "日本", "😀", "\U0010ffff", "\ufffd",
	"\u212a", "\u017f", "\xff", "\xc3", "\xed\xa0\x80", "\xf0\x9f\x98",
}

func randString(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return ""
	case 1:
		return NewID(strconv.Itoa(r.IntN(1000)))
	}
	var b strings.Builder
	for n := r.IntN(12); n > 0; n-- {
		b.WriteString(stringParts[r.IntN(len(stringParts))])
	}
	return b.String()
}

func randInt(r *rand.Rand) int {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.MaxInt64
	case 2:
		return math.MinInt64
	case 3:
		return -r.IntN(1000)
	case 4:
		return int(r.Int64())
	}
	return r.IntN(200000)
}

func randTime(r *rand.Rand) time.Time {
	if r.IntN(5) == 0 {
		return time.Time{}
	}
	// Seconds from year 1 to year 9999, the range RFC 3339 can carry.
	sec := -62135596800 + r.Int64N(253402300799+62135596800)
	if r.IntN(2) == 0 {
		sec = 1_600_000_000 + r.Int64N(300_000_000)
	}
	var nsec int64
	switch r.IntN(4) {
	case 1:
		nsec = r.Int64N(1e9)
	case 2:
		nsec = r.Int64N(1000) * 1e6
	case 3:
		nsec = r.Int64N(1e6) * 1e3
	}
	t := time.Unix(sec, nsec)
	switch r.IntN(4) {
	case 0:
		return t.UTC()
	case 1:
		return t.Local()
	case 2:
		return t.In(time.FixedZone("", 0))
	}
	return t.In(time.FixedZone("", (r.IntN(48*60-1)-(24*60-1))*60))
}

// The rewriter: parse JSON into a tree that keeps member order, then write
// it back differently.

type jnode struct {
	kind byte // '{', '[', '"', '0' (number), 't' (true or false), 'n' (null)
	keys []string
	vals []*jnode
	text string // string value, number text, or "true"/"false"
}

func parseTree(dec *json.Decoder) *jnode {
	tok, err := dec.Token()
	if err != nil {
		panic(err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		n := &jnode{kind: byte(tok)}
		for dec.More() {
			if n.kind == '{' {
				k, _ := dec.Token()
				n.keys = append(n.keys, k.(string))
			}
			n.vals = append(n.vals, parseTree(dec))
		}
		dec.Token() // closing delimiter
		return n
	case string:
		return &jnode{kind: '"', text: tok}
	case json.Number:
		return &jnode{kind: '0', text: tok.String()}
	case bool:
		return &jnode{kind: 't', text: strconv.FormatBool(tok)}
	}
	return &jnode{kind: 'n'}
}

// rewrite writes the JSON in data again with random whitespace, member
// order, key case and escapes; adds unknown members and duplicates; and,
// rarely, nulls, invalid UTF-8 or values of the wrong type. A few of its
// outputs are therefore invalid for json.Unmarshal, which checkDecode
// accepts as long as Decode refuses them too.
func rewrite(r *rand.Rand, data []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := rewriter{r: r}
	w.node(parseTree(dec), 0)
	w.ws()
	return w.b
}

type rewriter struct {
	r *rand.Rand
	b []byte
}

func (w *rewriter) ws() {
	switch w.r.IntN(8) {
	case 0:
		w.b = append(w.b, ' ')
	case 1:
		w.b = append(w.b, "\n\t"...)
	case 2:
		w.b = append(w.b, " \r\n  "...)
	}
}

func (w *rewriter) node(n *jnode, depth int) {
	w.ws()
	r := w.r
	if depth > 0 && r.IntN(200) == 0 {
		// A value of another type, or null.
		w.value(depth)
		return
	}
	switch n.kind {
	case '{':
		w.b = append(w.b, '{')
		order := r.Perm(len(n.keys))
		if r.IntN(3) == 0 {
			for i := range order {
				order[i] = i
			}
		}
		first := true
		comma := func() {
			if !first {
				w.ws()
				w.b = append(w.b, ',')
			}
			first = false
		}
		for _, i := range order {
			if r.IntN(10) == 0 {
				comma()
				w.ws()
				w.str("zz_"+randString(r), 0.1)
				w.ws()
				w.b = append(w.b, ':')
				w.value(depth + 1)
			}
			if r.IntN(30) == 0 {
				// A duplicate before the real member: for a block it is
				// merged into, for a scalar it is replaced.
				comma()
				w.ws()
				w.key(n.keys[i])
				w.ws()
				w.b = append(w.b, ':')
				if n.vals[i].kind == '{' && r.IntN(2) == 0 {
					w.node(&jnode{kind: '{', keys: n.vals[i].keys[:r.IntN(len(n.vals[i].keys)+1)], vals: n.vals[i].vals}, depth+1)
				} else {
					w.node(n.vals[i], depth+1)
				}
			}
			comma()
			w.ws()
			w.key(n.keys[i])
			w.ws()
			w.b = append(w.b, ':')
			if r.IntN(40) == 0 {
				w.ws()
				w.b = append(w.b, "null"...)
			} else {
				w.node(n.vals[i], depth+1)
			}
		}
		w.ws()
		w.b = append(w.b, '}')
	case '[':
		w.b = append(w.b, '[')
		for i, v := range n.vals {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.node(v, depth+1)
		}
		w.ws()
		w.b = append(w.b, ']')
	case '"':
		p := 0.03
		if _, err := time.Parse(time.RFC3339, n.text); err == nil {
			// time.Time.UnmarshalJSON refuses escapes: keep most times valid.
			p = 0.001
		}
		w.str(n.text, p)
	case '0':
		switch r.IntN(100) {
		case 0:
			w.b = append(w.b, n.text+".0"...)
		case 1:
			w.b = append(w.b, n.text+"e0"...)
		default:
			w.b = append(w.b, n.text...)
		}
	case 't':
		w.b = append(w.b, n.text...)
	default:
		w.b = append(w.b, "null"...)
	}
}

// key writes a member name, sometimes in another case or with the runes
// that fold to k and s.
func (w *rewriter) key(k string) {
	r := w.r
	if r.IntN(8) == 0 {
		var b strings.Builder
		for _, c := range k {
			switch {
			case c == 'k' && r.IntN(3) == 0:
				b.WriteRune('\u212a')
			case c == 's' && r.IntN(3) == 0:
				b.WriteRune('\u017f')
			case r.IntN(2) == 0:
				b.WriteRune(unicode.ToUpper(c))
			default:
				b.WriteRune(c)
			}
		}
		k = b.String()
	}
	w.str(k, 0.05)
}

// str writes s as a JSON string, escaping each rune that needs no escape
// with probability p.
func (w *rewriter) str(s string, p float64) {
	r := w.r
	w.b = append(w.b, '"')
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			w.b = append(w.b, s[i])
			i++
			continue
		}
		i += size
		switch {
		case c == '"' || c == '\\':
			w.b = append(w.b, '\\', byte(c))
		case c < ' ':
			w.b = fmt.Appendf(w.b, `\u%04x`, c)
		case r.Float64() >= p:
			w.b = utf8.AppendRune(w.b, c)
		case c == '/' && r.IntN(2) == 0:
			w.b = append(w.b, `\/`...)
		case c >= 0x10000:
			c1, c2 := utf16.EncodeRune(c)
			w.b = fmt.Appendf(w.b, `\u%04x\u%04X`, c1, c2)
		default:
			w.b = fmt.Appendf(w.b, `\u%04X`, c)
		}
	}
	if r.IntN(300) == 0 {
		w.b = append(w.b, "\xff"...)
	}
	if r.IntN(300) == 0 {
		w.b = append(w.b, `\ud800`...)
	}
	w.b = append(w.b, '"')
}

// value writes a random JSON value, as an unknown member holds.
func (w *rewriter) value(depth int) {
	r := w.r
	w.ws()
	k := r.IntN(9)
	if depth > 6 && k >= 7 {
		k = 0
	}
	switch k {
	case 0:
		w.str(randString(r), 0.1)
	case 1:
		nums := []string{"0", "-0", "1", "-1", "1.5", "-0.0e+0", "1E10", "2e-3", "123456789012345678901234567890", "1.7976931348623157e309"}
		w.b = append(w.b, nums[r.IntN(len(nums))]...)
	case 2:
		w.b = append(w.b, "true"...)
	case 3:
		w.b = append(w.b, "false"...)
	case 4, 5, 6:
		w.b = append(w.b, "null"...)
	case 7:
		w.b = append(w.b, '[')
		for i := r.IntN(4); i > 0; i-- {
			w.value(depth + 1)
			if i > 1 {
				w.b = append(w.b, ',')
			}
		}
		w.ws()
		w.b = append(w.b, ']')
	default:
		w.b = append(w.b, '{')
		for i := r.IntN(4); i > 0; i-- {
			w.ws()
			keys := []string{"id", "kind", "x", "recipient", "\u212aind"}
			w.str(keys[r.IntN(len(keys))], 0.2)
			w.b = append(w.b, ':')
			w.value(depth + 1)
			if i > 1 {
				w.b = append(w.b, ',')
			}
		}
		w.ws()
		w.b = append(w.b, '}')
	}
}

// TestDecodeStringsAreValidUTF8: invalid UTF-8 in the input, raw or
// through escapes of lone surrogates, comes out as U+FFFD in every
// string, which the sink relies on when it skips its own check.
func TestDecodeStringsAreValidUTF8(t *testing.T) {
	in := "{\"id\":\"a\xffb\",\"source\":\"\xed\xa0\x80\",\"status\":\"\\ud800\",\"field\":\"\xe6\x97\"," +
		"\"message_id\":\"\xf0\x9f\x98\",\"waba_id\":\"\\n\xff\",\"recipient\":{\"pseudonym\":\"p\xc3\"}," +
		"\"attribution\":{\"template\":\"t\\udc00\"}}"
	var ev Event
	if err := Decode([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"id": ev.ID, "source": ev.Source, "status": ev.Status, "field": ev.Field,
		"message_id": ev.MessageID, "waba_id": ev.WABAID, "pseudonym": ev.Recipient.Pseudonym, "template": ev.Attribution.Template} {
		if !utf8.ValidString(s) || !strings.ContainsRune(s, utf8.RuneError) {
			t.Errorf("%s = %q: want valid UTF-8 with U+FFFD", name, s)
		}
	}
}

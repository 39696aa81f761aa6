package event

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode parses the JSON form of an Event into ev. It is a hand-written
// replacement for json.Unmarshal(data, ev) on the evaluator's hot path:
// encoding/json spends most of its time in reflection and in a first
// validation pass, which this decoder does in a single pass over the bytes.
//
// For every input json.Unmarshal accepts, Decode leaves ev exactly as
// json.Unmarshal would: fields absent from the input keep their values,
// a null leaves a scalar as it is and sets a pointer block to nil, a block
// that appears twice is merged into the same struct, unknown members are
// ignored at any level, keys match case-insensitively after an exact match
// failed, strings are unescaped and invalid UTF-8 replaced by U+FFFD, and
// times are read as time.Time.UnmarshalJSON reads them. For every input
// json.Unmarshal refuses, Decode returns an error; ev may then hold part of
// the input (json.Unmarshal leaves it untouched on syntax errors only).
//
// Decode does not keep data. The strings it sets share one copy of data,
// which costs one allocation instead of one per string, and which one kept
// string keeps alive: a caller that keeps a few strings of many events
// (as window's tables do) should copy them.
//
// Every string Decode sets is valid UTF-8: invalid bytes become U+FFFD,
// as with json.Unmarshal. The ClickHouse sink relies on it
// (store.Values.ValidStr).
//
// Decode keeps no state between calls and is safe for concurrent use.
func Decode(data []byte, ev *Event) error {
	if ev == nil {
		return errors.New("event: Decode into nil *Event")
	}
	d := decoder{data: data}
	d.skipWS()
	if d.pos >= len(d.data) {
		return d.errEOF()
	}
	switch d.data[d.pos] {
	case '{':
		d.pos++
		if err := d.event(ev); err != nil {
			return err
		}
	case 'n':
		// json.Unmarshal accepts a top-level null and leaves ev as it is.
		if err := d.literal("null"); err != nil {
			return err
		}
	default:
		// Anything else is a syntax error or, for a valid value, a type
		// error in json.Unmarshal.
		return d.errf("event is not a JSON object")
	}
	d.skipWS()
	if d.pos != len(d.data) {
		return d.errf("data after the event")
	}
	return nil
}

// maxDepth is encoding/json's nesting limit: it refuses input with more
// than this many arrays and objects open at once, even in ignored members.
const maxDepth = 10000

// maxNameLen is the length of the longest JSON member name of Event and its
// blocks ("max_daily_conversation_per_phone"); a key that folds to anything
// longer cannot name a field.
const maxNameLen = 32

type decoder struct {
	data []byte
	pos  int // next byte to read
	// key holds a key that had to be unescaped and fold a key lower-cased
	// for the case-insensitive match; both live in the decoder, on the
	// caller's stack, so that neither costs an allocation.
	key  [64]byte
	fold [maxNameLen]byte
	// text is a copy of data, made at the first string value that needs
	// no unescaping; such values are substrings of it. One copy of the
	// input costs less than an allocation per string.
	text string
}

// substr returns data[start:end] as a string, a substring of text.
func (d *decoder) substr(start, end int) string {
	if d.text == "" {
		d.text = string(d.data)
	}
	return d.text[start:end]
}

// decodeError reports where the input stopped making sense to Decode.
type decodeError struct {
	msg string
	off int
}

func (e *decodeError) Error() string {
	return "event: decode: " + e.msg + " at byte " + strconv.Itoa(e.off)
}

func (d *decoder) errf(msg string) error { return &decodeError{msg: msg, off: d.pos} }

func (d *decoder) errEOF() error { return d.errf("unexpected end of input") }

// errType is returned for a valid JSON value of the wrong type for a field;
// json.Unmarshal also fails then (after decoding the rest).
func (d *decoder) errType() error { return d.errf("value of the wrong type") }

func (d *decoder) skipWS() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// literal consumes lit (true, false or null) at d.pos. What follows it is
// checked by the caller, which expects a delimiter there.
func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	return d.errf("invalid literal")
}

// member moves to the next member of a struct's object, whose '{' (first)
// or previous member has been consumed. It returns the index in keys of the
// member's key (-1 for a key the struct does not have) with d.pos on the
// first byte of its value; or ok false after the closing '}'.
//
// json.Marshal writes the members in the order of keys, without spaces,
// omitting some: so the input is first compared with keys[*next], then
// with the keys after it, as raw bytes, quotes and colon included. That
// costs one comparison for most members instead of scanning the key and
// switching on it. Anything else (spaces, escapes, another order, another
// case, unknown keys) takes the general path, rawMember.
func (d *decoder) member(first bool, keys []memberKey, next *int) (f int, ok bool, err error) {
	// This is memberKey.at, written out: the call cost as much as the
	// comparison.
	if j := *next; j < len(keys) {
		k := &keys[j]
		i := d.pos
		if !first {
			i++
		}
		if len(d.data)-i >= k.need && (first || d.data[i-1] == ',') {
			b := d.data[i:]
			match := true
			for w := 0; w < k.last; w++ {
				if binary.LittleEndian.Uint64(b[8*w:]) != k.w[w] {
					match = false
					break
				}
			}
			if match && binary.LittleEndian.Uint64(b[8*k.last:])&k.mask == k.w[k.last] && !isSpace(b[k.n]) {
				d.pos = i + k.n
				*next = j + 1
				return j, true, nil
			}
		}
	}
	return d.memberSlow(first, keys, next)
}

// memberSlow is member past its first guess.
func (d *decoder) memberSlow(first bool, keys []memberKey, next *int) (f int, ok bool, err error) {
	data, i := d.data, d.pos
	if !first && i < len(data) && data[i] == ',' {
		i++
	}
	if first || i > d.pos {
		for j := *next + 1; j < len(keys); j++ {
			if keys[j].at(data, i) {
				d.pos = i + keys[j].n
				*next = j + 1
				return j, true, nil
			}
		}
	}
	key, ok, err := d.rawMember(first)
	if err != nil || !ok {
		return -1, ok, err
	}
	// encoding/json matches a key exactly, then case-insensitively.
	if f = keyIndex(keys, key); f < 0 {
		if k := d.foldKey(key); k != nil {
			f = keyIndex(keys, k)
		}
	}
	if f >= 0 {
		*next = f + 1
	}
	return f, true, nil
}

// keyIndex returns the index in keys of the member named key, or -1.
func keyIndex(keys []memberKey, key []byte) int {
	for i := range keys {
		if keys[i].name == string(key) {
			return i
		}
	}
	return -1
}

// memberKey is a member key as json.Marshal writes it, quotes and colon
// included, and as little-endian words for comparing it with the input
// eight bytes at a time: a call to memequal per member cost more.
type memberKey struct {
	w    [5]uint64 // the bytes, the last word padded with zeros
	last int       // index in w of the last word
	mask uint64    // the bytes of the last word that belong to the key
	n    int       // length in bytes
	name string    // the member's name, without quotes and colon
	need int       // bytes at needs to read: whole words, and one after the key
}

// maxKeyLen is the longest quoted key with its colon that fits in a
// memberKey.
const maxKeyLen = 5 * 8

func makeKeys(keys ...string) []memberKey {
	mk := make([]memberKey, len(keys))
	for i, k := range keys {
		if len(k) > maxKeyLen {
			panic("event: member key too long: " + k)
		}
		var b [maxKeyLen]byte
		copy(b[:], k)
		for j := range mk[i].w {
			mk[i].w[j] = binary.LittleEndian.Uint64(b[8*j:])
		}
		mk[i].last = (len(k) - 1) / 8
		mk[i].mask = ^uint64(0)
		if r := len(k) % 8; r != 0 {
			mk[i].mask = 1<<(8*r) - 1
		}
		mk[i].n = len(k)
		mk[i].name = k[1 : len(k)-2]
		mk[i].need = max(8*(mk[i].last+1), len(k)+1)
	}
	return mk
}

// at reports whether data[i:] starts with the key followed by a byte that is
// not a space (callers expect the value right after the colon). Near the end
// of data, where whole words cannot be read, it reports false and lets the
// general path decide.
func (k *memberKey) at(data []byte, i int) bool {
	if len(data)-i < k.need {
		return false
	}
	b := data[i:]
	for j := 0; j < k.last; j++ {
		if binary.LittleEndian.Uint64(b[8*j:]) != k.w[j] {
			return false
		}
	}
	return binary.LittleEndian.Uint64(b[8*k.last:])&k.mask == k.w[k.last] && !isSpace(b[k.n])
}

func isSpace(c byte) bool { return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r') }

// rawMember moves to the next member of an object whose '{' (first) or
// previous member has been consumed. It returns the member's key, with
// d.pos on the first byte of its value, or ok false after the closing '}'.
func (d *decoder) rawMember(first bool) (key []byte, ok bool, err error) {
	d.skipWS()
	if d.pos >= len(d.data) {
		return nil, false, d.errEOF()
	}
	c := d.data[d.pos]
	if c == '}' {
		d.pos++
		return nil, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, d.errf("expected ',' or '}' after object member")
		}
		d.pos++
		d.skipWS()
		if d.pos >= len(d.data) {
			return nil, false, d.errEOF()
		}
		c = d.data[d.pos]
	}
	if c != '"' {
		return nil, false, d.errf("expected object key")
	}
	if key, err = d.readKey(); err != nil {
		return nil, false, err
	}
	d.skipWS()
	if d.pos >= len(d.data) {
		return nil, false, d.errEOF()
	}
	if d.data[d.pos] != ':' {
		return nil, false, d.errf("expected ':' after object key")
	}
	d.pos++
	d.skipWS()
	if d.pos >= len(d.data) {
		return nil, false, d.errEOF()
	}
	return key, true, nil
}

// readKey reads the string at d.pos as a key. Keys are only compared with
// field names, so raw bytes are returned as they are unless they hold an
// escape: invalid UTF-8 can match no name either way.
func (d *decoder) readKey() ([]byte, error) {
	start := d.pos + 1
	i := plainEnd(d.data, start)
	for i < len(d.data) && keyByte[d.data[i]] {
		i++
	}
	if i < len(d.data) && d.data[i] == '"' {
		d.pos = i + 1
		return d.data[start:i], nil
	}
	end, err := d.stringEnd(i)
	if err != nil {
		return nil, err
	}
	d.pos = end + 1
	return unquote(d.key[:0], d.data[start:end]), nil
}

// readStringSlow finishes reading a string value whose bytes from start
// to i are plain (see plainEnd) but whose data[i] is not its closing quote.
func (d *decoder) readStringSlow(start, i int) (string, error) {
	for i < len(d.data) && plainByte[d.data[i]] {
		i++
	}
	end, err := d.stringEnd(i)
	if err != nil {
		return "", err
	}
	d.pos = end + 1
	raw := d.data[start:end]
	if !hasEscape(raw[i-start:]) && utf8.Valid(raw) {
		return d.substr(start, end), nil
	}
	var buf [128]byte
	return string(unquote(buf[:0], raw)), nil
}

// plainEnd returns an index j ≥ i such that data[i:j] holds only printable
// ASCII other than '"' and '\\', looking at eight bytes at a time: ids and
// message ids are long runs of such bytes. Callers go on byte by byte from j.
func plainEnd(data []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		// The has-zero-byte trick: (y-ones)&^y&highs flags the zero bytes
		// of y, and (x-n*ones)&^x&highs the bytes of x below n (< 0x80).
		// A borrow can only flag a byte above a truly flagged one, so the
		// lowest flag is exact.
		q := x ^ ('"' * ones)
		bs := x ^ ('\\' * ones)
		m := ((x-' '*ones)&^x | (q-ones)&^q | (bs-ones)&^bs | x) & highs
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	return i
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// stringEnd validates the rest of a string from i, inside its quotes, and
// returns the index of its closing quote. It refuses what encoding/json's
// scanner refuses: control characters, unknown escapes, short \u escapes.
// Bytes ≥ 0x80 are accepted whether or not they are valid UTF-8.
func (d *decoder) stringEnd(i int) (int, error) {
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			return i, nil
		case c == '\\':
			if i+1 >= len(d.data) {
				d.pos = i
				return 0, d.errEOF()
			}
			switch d.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d.data) {
					d.pos = i
					return 0, d.errEOF()
				}
				for _, h := range d.data[i+2 : i+6] {
					if hexVal(h) < 0 {
						d.pos = i
						return 0, d.errf("invalid \\u escape")
					}
				}
				i += 6
			default:
				d.pos = i
				return 0, d.errf("invalid escape in string")
			}
		case c < ' ':
			d.pos = i
			return 0, d.errf("control character in string")
		default:
			i++
		}
	}
	d.pos = i
	return 0, d.errEOF()
}

// skipString moves past the string at d.pos.
func (d *decoder) skipString() error {
	end, err := d.stringEnd(d.pos + 1)
	if err != nil {
		return err
	}
	d.pos = end + 1
	return nil
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the four hex digits of a \u escape that stringEnd validated.
func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// unquote appends the unescaped form of s, the validated inside of a JSON
// string, to b. It follows encoding/json's unquoteBytes exactly: a valid
// surrogate pair of \u escapes becomes one rune, any other surrogate
// becomes U+FFFD, and so does each byte of invalid UTF-8.
func unquote(b, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch s[r+1] {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				rr := hex4(s[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							r += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				c = s[r+1]
			}
			b = append(b, c)
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return b
}

// foldKey returns key lower-cased the way encoding/json's case-insensitive
// match sees it, or nil when key can match no field name that way or is
// already in that form (the exact match then failed already). Field names
// are lower-case ASCII, and the only non-ASCII runes that fold to ASCII are
// the Kelvin sign (k) and the long s (s); TestFoldToASCII checks that.
func (d *decoder) foldKey(key []byte) []byte {
	b := d.fold[:0]
	changed := false
	for i := 0; i < len(key); {
		if len(b) == cap(b) {
			return nil
		}
		c := key[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
				changed = true
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		switch r {
		case '\u212a': // KELVIN SIGN
			c = 'k'
		case '\u017f': // LATIN SMALL LETTER LONG S
			c = 's'
		default:
			return nil
		}
		b = append(b, c)
		changed = true
		i += n
	}
	if !changed {
		return nil
	}
	return b
}

// skipNumber moves past the number at d.pos and reports whether it is an
// integer (no fraction or exponent). The grammar is JSON's: no leading
// zeros, no '+', digits after '.' and after the exponent mark.
func (d *decoder) skipNumber() (isInt bool, err error) {
	data, i := d.data, d.pos
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return false, d.errEOF()
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		return false, d.errf("invalid number")
	}
	isInt = true
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			d.pos = i
			return false, d.errf("invalid number")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
		isInt = false
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			d.pos = i
			return false, d.errf("invalid number")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
		isInt = false
	}
	d.pos = i
	return isInt, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skip moves past the value at d.pos, validating it as encoding/json's
// scanner would. depth is the number of arrays and objects open around it.
func (d *decoder) skip(depth int) error {
	switch d.data[d.pos] {
	case '"':
		return d.skipString()
	case '{':
		if depth++; depth > maxDepth {
			return d.errf("nesting too deep")
		}
		d.pos++
		for first := true; ; first = false {
			_, ok, err := d.rawMember(first)
			if err != nil || !ok {
				return err
			}
			if err := d.skip(depth); err != nil {
				return err
			}
		}
	case '[':
		if depth++; depth > maxDepth {
			return d.errf("nesting too deep")
		}
		d.pos++
		d.skipWS()
		if d.pos >= len(d.data) {
			return d.errEOF()
		}
		if d.data[d.pos] == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skip(depth); err != nil {
				return err
			}
			d.skipWS()
			if d.pos >= len(d.data) {
				return d.errEOF()
			}
			switch d.data[d.pos] {
			case ']':
				d.pos++
				return nil
			case ',':
				d.pos++
				d.skipWS()
				if d.pos >= len(d.data) {
					return d.errEOF()
				}
			default:
				return d.errf("expected ',' or ']' in array")
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, err := d.skipNumber()
		return err
	}
	return d.errf("invalid value")
}

// The typed readers below start with d.pos on the first byte of a value.
// Like encoding/json, they leave the field as it is on null and fail on a
// value of another type.

func (d *decoder) readStr(dst *string) error {
	switch d.data[d.pos] {
	case '"':
		start := d.pos + 1
		i := plainEnd(d.data, start)
		if i < len(d.data) && d.data[i] == '"' {
			// The common case: printable ASCII, nothing to unescape.
			d.pos = i + 1
			*dst = d.substr(start, i)
			return nil
		}
		s, err := d.readStringSlow(start, i)
		if err != nil {
			return err
		}
		*dst = s
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.errType()
}

func (d *decoder) readInt(dst *int) error {
	c := d.data[d.pos]
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && !isDigit(c) {
		return d.errType()
	}
	start := d.pos
	isInt, err := d.skipNumber()
	if err != nil {
		return err
	}
	if !isInt {
		// strconv.ParseInt, which encoding/json uses, refuses 1.0 and 1e3.
		return d.errType()
	}
	b := d.data[start:d.pos]
	digits := b
	if b[0] == '-' {
		digits = b[1:]
	}
	if len(digits) > 18 {
		// May not fit in 64 bits: let strconv decide, as encoding/json does.
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return d.errType()
		}
		*dst = int(n)
		return nil
	}
	n := 0
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	if b[0] == '-' {
		n = -n
	}
	*dst = n
	return nil
}

func (d *decoder) readBool(dst *bool) error {
	switch d.data[d.pos] {
	case 't':
		if err := d.literal("true"); err != nil {
			return err
		}
		*dst = true
		return nil
	case 'f':
		if err := d.literal("false"); err != nil {
			return err
		}
		*dst = false
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.errType()
}

// readTime reads a time as encoding/json does, which hands the raw string,
// quotes and escapes included, to time.Time.UnmarshalJSON: so the accepted
// layouts, the location given to the result and the refusal of escaped
// times are the same. Times in UTC, the usual case, take parseUTC instead.
func (d *decoder) readTime(dst *time.Time) error {
	switch d.data[d.pos] {
	case '"':
		if t, n, ok := parseUTC(d.data[d.pos+1:]); ok {
			*dst = t
			d.pos += n
			return nil
		}
		start := d.pos
		if err := d.skipString(); err != nil {
			return err
		}
		return dst.UnmarshalJSON(d.data[start:d.pos])
	case 'n':
		return d.literal("null")
	}
	return d.errType()
}

// readTimePtr is readTime for a *time.Time: null sets it to nil, a string is
// decoded into the time it points to, allocated when nil.
func (d *decoder) readTimePtr(dst **time.Time) error {
	switch d.data[d.pos] {
	case '"':
		if *dst == nil {
			*dst = new(time.Time)
		}
		if t, n, ok := parseUTC(d.data[d.pos+1:]); ok {
			**dst = t
			d.pos += n
			return nil
		}
		start := d.pos
		if err := d.skipString(); err != nil {
			return err
		}
		return (*dst).UnmarshalJSON(d.data[start:d.pos])
	case 'n':
		*dst = nil
		return d.literal("null")
	}
	return d.errType()
}

// parseUTC is the fast path of time.Time.UnmarshalJSON for the times
// json.Marshal writes for UTC, 2006-01-02T15:04:05[.999999999]Z, which is
// what ingest writes: b starts after the opening quote. It returns the time
// and the length of the string with both quotes, or ok false for any other
// shape (offsets, escapes, ...), which then goes to UnmarshalJSON. It
// validates and computes exactly as the time package's parseRFC3339 does
// before its time.Date(..., time.UTC), without the general parsing.
func parseUTC(b []byte) (t time.Time, n int, ok bool) {
	if len(b) < len(`2006-01-02T15:04:05Z"`) ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	// Each of these is a digit's value, or above 9 for any other byte
	// (bytes below '0' wrap around).
	y0, y1, y2, y3 := b[0]-'0', b[1]-'0', b[2]-'0', b[3]-'0'
	m0, m1, d0, d1 := b[5]-'0', b[6]-'0', b[8]-'0', b[9]-'0'
	h0, h1, i0, i1, s0, s1 := b[11]-'0', b[12]-'0', b[14]-'0', b[15]-'0', b[17]-'0', b[18]-'0'
	if y0 > 9 || y1 > 9 || y2 > 9 || y3 > 9 || m0 > 9 || m1 > 9 || d0 > 9 || d1 > 9 ||
		h0 > 9 || h1 > 9 || i0 > 9 || i1 > 9 || s0 > 9 || s1 > 9 {
		return time.Time{}, 0, false
	}
	year := int(y0)*1000 + int(y1)*100 + int(y2)*10 + int(y3)
	month, day := int(m0)*10+int(m1), int(d0)*10+int(d1)
	hour, min, sec := int(h0)*10+int(h1), int(i0)*10+int(i1), int(s0)*10+int(s1)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, 0, false
	}
	i := 19
	nsec := 0
	if b[i] == '.' {
		// Like parseRFC3339: one digit or more, the first nine count.
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			if i-start < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return time.Time{}, 0, false
		}
		for k := i - start; k < 9; k++ {
			nsec *= 10
		}
	}
	if len(b) < i+2 || b[i] != 'Z' || b[i+1] != '"' {
		return time.Time{}, 0, false
	}
	days := daysFromCivil(year, month, day)
	return time.Unix(days*86400+int64(hour*3600+min*60+sec), int64(nsec)).UTC(), i + 3, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400                     // [0, 399]
	doy := (153*((m+9)%12)+2)/5 + d - 1    // [0, 365], from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return int64(era*146097 + doe - 719468)
}

// block opens the pointer block *p for decoding. On null it sets *p to nil
// and returns nil; on an object it consumes the '{' and returns *p,
// allocated when nil: encoding/json decodes a repeated block into the
// struct it already has, merging the two.
func block[T any](d *decoder, p **T) (*T, error) {
	switch d.data[d.pos] {
	case '{':
		d.pos++
		if *p == nil {
			*p = new(T)
		}
		return *p, nil
	case 'n':
		*p = nil
		return nil, d.literal("null")
	}
	return nil, d.errType()
}

// Each struct has a table of its member keys, a function from key to index
// in the table (the slow path of member) and a loop that decodes the value
// of each member by index. The tables and switches are written out by hand
// rather than built by reflection, which is what made encoding/json slow;
// TestKeyTables checks them against the struct tags.

// blockDepth is the nesting of a block's members: the event object and the
// block object are open around them.
const blockDepth = 2

// eventKeys are Event's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var eventKeys = makeKeys(
	`"schema_version":`,
	`"id":`,
	`"kind":`,
	`"channel":`,
	`"source":`,
	`"field":`,
	`"event_time":`,
	`"receive_time":`,
	`"waba_id":`,
	`"phone_number_id":`,
	`"display_phone_number":`,
	`"message_id":`,
	`"status":`,
	`"recipient":`,
	`"error":`,
	`"pricing":`,
	`"conversation":`,
	`"attribution":`,
	`"inbound":`,
	`"opt_out":`,
	`"quality":`,
	`"template":`,
	`"account":`,
	`"capability":`,
)

func (d *decoder) event(ev *Event) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, eventKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // schema_version
			err = d.readInt(&ev.SchemaVersion)
		case 1: // id
			err = d.readStr(&ev.ID)
		case 2: // kind
			err = d.readStr((*string)(&ev.Kind))
		case 3: // channel
			err = d.readStr((*string)(&ev.Channel))
		case 4: // source
			err = d.readStr(&ev.Source)
		case 5: // field
			err = d.readStr(&ev.Field)
		case 6: // event_time
			err = d.readTime(&ev.EventTime)
		case 7: // receive_time
			err = d.readTime(&ev.ReceiveTime)
		case 8: // waba_id
			err = d.readStr(&ev.WABAID)
		case 9: // phone_number_id
			err = d.readStr(&ev.PhoneNumberID)
		case 10: // display_phone_number
			err = d.readStr(&ev.DisplayPhoneNumber)
		case 11: // message_id
			err = d.readStr(&ev.MessageID)
		case 12: // status
			err = d.readStr(&ev.Status)
		case 13: // recipient
			var b *Recipient
			if b, err = block(d, &ev.Recipient); b != nil {
				err = d.recipient(b)
			}
		case 14: // error
			var b *Error
			if b, err = block(d, &ev.Error); b != nil {
				err = d.errorBlock(b)
			}
		case 15: // pricing
			var b *Pricing
			if b, err = block(d, &ev.Pricing); b != nil {
				err = d.pricing(b)
			}
		case 16: // conversation
			var b *Conversation
			if b, err = block(d, &ev.Conversation); b != nil {
				err = d.conversation(b)
			}
		case 17: // attribution
			var b *Attribution
			if b, err = block(d, &ev.Attribution); b != nil {
				err = d.attribution(b)
			}
		case 18: // inbound
			var b *Inbound
			if b, err = block(d, &ev.Inbound); b != nil {
				err = d.inbound(b)
			}
		case 19: // opt_out
			var b *OptOut
			if b, err = block(d, &ev.OptOut); b != nil {
				err = d.optOut(b)
			}
		case 20: // quality
			var b *Quality
			if b, err = block(d, &ev.Quality); b != nil {
				err = d.quality(b)
			}
		case 21: // template
			var b *Template
			if b, err = block(d, &ev.Template); b != nil {
				err = d.template(b)
			}
		case 22: // account
			var b *Account
			if b, err = block(d, &ev.Account); b != nil {
				err = d.account(b)
			}
		case 23: // capability
			var b *Capability
			if b, err = block(d, &ev.Capability); b != nil {
				err = d.capability(b)
			}
		default:
			err = d.skip(1)
		}
		if err != nil {
			return err
		}
	}
}

// recipientKeys are Recipient's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var recipientKeys = makeKeys(
	`"pseudonym":`,
	`"country_code":`,
	`"id_kind":`,
	`"type":`,
)

func (d *decoder) recipient(v *Recipient) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, recipientKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // pseudonym
			err = d.readStr(&v.Pseudonym)
		case 1: // country_code
			err = d.readStr(&v.CountryCode)
		case 2: // id_kind
			err = d.readStr(&v.IDKind)
		case 3: // type
			err = d.readStr(&v.Type)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// errorKeys are Error's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var errorKeys = makeKeys(
	`"code":`,
	`"class":`,
	`"title":`,
)

func (d *decoder) errorBlock(v *Error) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, errorKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // code
			err = d.readInt(&v.Code)
		case 1: // class
			err = d.readStr(&v.Class)
		case 2: // title
			err = d.readStr(&v.Title)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// pricingKeys are Pricing's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var pricingKeys = makeKeys(
	`"billable":`,
	`"model":`,
	`"type":`,
	`"category":`,
)

func (d *decoder) pricing(v *Pricing) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, pricingKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // billable
			err = d.readBool(&v.Billable)
		case 1: // model
			err = d.readStr(&v.Model)
		case 2: // type
			err = d.readStr(&v.Type)
		case 3: // category
			err = d.readStr(&v.Category)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// conversationKeys are Conversation's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var conversationKeys = makeKeys(
	`"id":`,
	`"origin_type":`,
	`"expiration_time":`,
)

func (d *decoder) conversation(v *Conversation) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, conversationKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // id
			err = d.readStr(&v.ID)
		case 1: // origin_type
			err = d.readStr(&v.OriginType)
		case 2: // expiration_time
			err = d.readTimePtr(&v.ExpirationTime)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// attributionKeys are Attribution's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var attributionKeys = makeKeys(
	`"template":`,
	`"use_case":`,
	`"campaign":`,
)

func (d *decoder) attribution(v *Attribution) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, attributionKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // template
			err = d.readStr(&v.Template)
		case 1: // use_case
			err = d.readStr(&v.UseCase)
		case 2: // campaign
			err = d.readStr(&v.Campaign)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// inboundKeys are Inbound's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var inboundKeys = makeKeys(
	`"message_type":`,
	`"context_message_id":`,
)

func (d *decoder) inbound(v *Inbound) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, inboundKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // message_type
			err = d.readStr(&v.MessageType)
		case 1: // context_message_id
			err = d.readStr(&v.ContextMessageID)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// optOutKeys are OptOut's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var optOutKeys = makeKeys(
	`"source":`,
	`"category":`,
	`"resumed":`,
)

func (d *decoder) optOut(v *OptOut) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, optOutKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // source
			err = d.readStr(&v.Source)
		case 1: // category
			err = d.readStr(&v.Category)
		case 2: // resumed
			err = d.readBool(&v.Resumed)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// qualityKeys are Quality's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var qualityKeys = makeKeys(
	`"event":`,
	`"current_limit":`,
	`"old_limit":`,
)

func (d *decoder) quality(v *Quality) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, qualityKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // event
			err = d.readStr(&v.Event)
		case 1: // current_limit
			err = d.readStr(&v.CurrentLimit)
		case 2: // old_limit
			err = d.readStr(&v.OldLimit)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// templateKeys are Template's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var templateKeys = makeKeys(
	`"id":`,
	`"name":`,
	`"language":`,
	`"event":`,
	`"reason":`,
	`"other_info_title":`,
	`"previous_quality":`,
	`"new_quality":`,
)

func (d *decoder) template(v *Template) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, templateKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // id
			err = d.readStr(&v.ID)
		case 1: // name
			err = d.readStr(&v.Name)
		case 2: // language
			err = d.readStr(&v.Language)
		case 3: // event
			err = d.readStr(&v.Event)
		case 4: // reason
			err = d.readStr(&v.Reason)
		case 5: // other_info_title
			err = d.readStr(&v.OtherInfoTitle)
		case 6: // previous_quality
			err = d.readStr(&v.PreviousQuality)
		case 7: // new_quality
			err = d.readStr(&v.NewQuality)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// accountKeys are Account's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var accountKeys = makeKeys(
	`"event":`,
	`"violation_type":`,
	`"ban_state":`,
	`"ban_date":`,
	`"entity_type":`,
	`"entity_id":`,
	`"alert_severity":`,
	`"alert_status":`,
	`"alert_type":`,
)

func (d *decoder) account(v *Account) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, accountKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // event
			err = d.readStr(&v.Event)
		case 1: // violation_type
			err = d.readStr(&v.ViolationType)
		case 2: // ban_state
			err = d.readStr(&v.BanState)
		case 3: // ban_date
			err = d.readStr(&v.BanDate)
		case 4: // entity_type
			err = d.readStr(&v.EntityType)
		case 5: // entity_id
			err = d.readStr(&v.EntityID)
		case 6: // alert_severity
			err = d.readStr(&v.AlertSeverity)
		case 7: // alert_status
			err = d.readStr(&v.AlertStatus)
		case 8: // alert_type
			err = d.readStr(&v.AlertType)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// capabilityKeys are Capability's members as json.Marshal writes them: quoted, with
// the colon, in field order.
var capabilityKeys = makeKeys(
	`"messaging_limit":`,
	`"max_phone_numbers":`,
	`"max_daily_conversation_per_phone":`,
)

func (d *decoder) capability(v *Capability) error {
	next := 0
	for first := true; ; first = false {
		f, ok, err := d.member(first, capabilityKeys, &next)
		if err != nil || !ok {
			return err
		}
		switch f {
		case 0: // messaging_limit
			err = d.readStr(&v.MessagingLimit)
		case 1: // max_phone_numbers
			err = d.readInt(&v.MaxPhoneNumbers)
		case 2: // max_daily_conversation_per_phone
			err = d.readStr(&v.MaxDailyConvLegacy)
		default:
			err = d.skip(blockDepth)
		}
		if err != nil {
			return err
		}
	}
}

// plainByte marks the bytes a string can hold that need no further look:
// printable ASCII other than '"' and '\\'. keyByte adds the bytes ≥ 0x80,
// which a key may keep raw.
var plainByte, keyByte = func() (plain, key [256]bool) {
	for c := ' '; c < 256; c++ {
		if c == '"' || c == '\\' {
			continue
		}
		plain[c] = c < utf8.RuneSelf
		key[c] = true
	}
	return
}()

package store

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Values builds the rows of an insert, row by row, with typed appends,
// column by column in ClickHouse's Native format: the sink formats
// hundreds of thousands of rows a second, so nothing here goes through
// reflection or fmt.
//
// Native, because chDB takes a Native block (through its streaming insert,
// binary-safe) about twice as fast as the same rows as TabSeparated text:
// it copies columns instead of parsing every field of a wide row
// (docs/BENCHMARKS.md). An engine without a binary-safe path (the
// ClickHouse server engine sends inline query text) gets the rows as
// TabSeparated from TSV.
//
// A column's type comes from its first value: String (Str), Int64 (Int),
// UInt64 (Uint), UInt8 (Bool), DateTime64(3, 'UTC') (Time),
// Nullable(DateTime64(3, 'UTC')) (NullTime) or Map(String, String) (Map).
// ClickHouse converts them to the table's column types on insert
// (Int64 to Int32, String to LowCardinality(String), ...).
//
//	v := NewValues("id", "n")
//	v.Begin().Str("a").Int(1).End()
type Values struct {
	cols []column
	rows int
	next int // the column the next value goes to
}

// kind is a column's wire type.
type kind uint8

const (
	kindUnset kind = iota
	kindString
	kindInt64
	kindUint64
	kindUint8
	kindTime
	kindNullTime
	kindMap
)

var kindTypes = [...]string{kindString: "String", kindInt64: "Int64", kindUint64: "UInt64", kindUint8: "UInt8",
	kindTime: "DateTime64(3, 'UTC')", kindNullTime: "Nullable(DateTime64(3, 'UTC'))", kindMap: "Map(String, String)"}

// column holds one column's values in Native encoding: data (strings as
// a varint length and bytes, numbers little-endian, a map's entry counts
// as cumulative UInt64 offsets), nulls (Nullable: 1 for NULL), and a
// map's keys and values.
type column struct {
	name       string
	kind       kind
	data       []byte
	nulls      []byte
	keys, vals []byte
	entries    uint64 // Map: entries so far (the last offset)
}

// NewValues returns an empty builder for the columns, in this order.
func NewValues(cols ...string) *Values {
	v := &Values{cols: make([]column, len(cols))}
	for i, c := range cols {
		v.cols[i].name = c
	}
	return v
}

// Reset empties v, keeping its buffers.
func (v *Values) Reset() {
	for i := range v.cols {
		c := &v.cols[i]
		c.data, c.nulls, c.keys, c.vals, c.entries = c.data[:0], c.nulls[:0], c.keys[:0], c.vals[:0], 0
	}
	v.rows, v.next = 0, 0
}

// Rows is the number of rows ended.
func (v *Values) Rows() int { return v.rows }

// Columns are the columns, in value order.
func (v *Values) Columns() []string {
	names := make([]string, len(v.cols))
	for i, c := range v.cols {
		names[i] = c.name
	}
	return names
}

// Begin starts a row.
func (v *Values) Begin() *Values {
	v.next = 0
	return v
}

// End ends the row. A row must have a value for every column: anything
// else is a bug in the caller, and would shift the columns.
func (v *Values) End() {
	if v.next != len(v.cols) {
		panic("store: a row of " + strconv.Itoa(v.next) + " values for " + strconv.Itoa(len(v.cols)) + " columns")
	}
	v.rows++
}

// col returns the column the next value goes to, checking its kind.
func (v *Values) col(k kind) *column {
	if v.next >= len(v.cols) {
		panic("store: more values than the " + strconv.Itoa(len(v.cols)) + " columns")
	}
	c := &v.cols[v.next]
	v.next++
	if c.kind != k {
		if c.kind != kindUnset {
			panic("store: column " + c.name + " is " + kindTypes[c.kind] + ", not " + kindTypes[k])
		}
		c.kind = k
	}
	return c
}

// Str appends a String value. Invalid UTF-8 becomes U+FFFD: ClickHouse
// stores bytes, but text columns must stay readable.
func (v *Values) Str(s string) *Values {
	c := v.col(kindString)
	c.data = appendString(c.data, s)
	return v
}

// ValidStr appends a String value that is known to be valid UTF-8 (a
// string event.Decode or json.Unmarshal set: both turn invalid bytes into
// U+FFFD), without the check Str makes, which is an eighth of the sink's
// time for a row of events.
func (v *Values) ValidStr(s string) *Values {
	c := v.col(kindString)
	c.data = appendValidString(c.data, s)
	return v
}

// str is ValidStr when valid, else Str.
func (v *Values) str(valid bool, s string) *Values {
	if valid {
		return v.ValidStr(s)
	}
	return v.Str(s)
}

// Int appends an integer.
func (v *Values) Int(n int64) *Values {
	c := v.col(kindInt64)
	c.data = binary.LittleEndian.AppendUint64(c.data, uint64(n))
	return v
}

// Uint appends an unsigned integer.
func (v *Values) Uint(n uint64) *Values {
	c := v.col(kindUint64)
	c.data = binary.LittleEndian.AppendUint64(c.data, n)
	return v
}

// Bool appends 1 or 0 (a UInt8 column).
func (v *Values) Bool(b bool) *Values {
	c := v.col(kindUint8)
	if b {
		c.data = append(c.data, 1)
	} else {
		c.data = append(c.data, 0)
	}
	return v
}

// Time appends a DateTime64(3, 'UTC') value.
func (v *Values) Time(t time.Time) *Values {
	c := v.col(kindTime)
	c.data = binary.LittleEndian.AppendUint64(c.data, uint64(t.UnixMilli()))
	return v
}

// NullTime appends a Nullable(DateTime64(3, 'UTC')) value.
func (v *Values) NullTime(t *time.Time) *Values {
	c := v.col(kindNullTime)
	var ms int64
	if t == nil {
		c.nulls = append(c.nulls, 1)
	} else {
		c.nulls = append(c.nulls, 0)
		ms = t.UnixMilli()
	}
	c.data = binary.LittleEndian.AppendUint64(c.data, uint64(ms))
	return v
}

// Map appends a Map(String, String) value, keys in the order given by
// keys (callers sort them, so that the same map gives the same row).
func (v *Values) Map(m map[string]string, keys []string) *Values {
	c := v.col(kindMap)
	for _, k := range keys {
		c.keys = appendString(c.keys, k)
		c.vals = appendString(c.vals, m[k])
	}
	c.entries += uint64(len(keys))
	c.data = binary.LittleEndian.AppendUint64(c.data, c.entries)
	return v
}

// appendString appends s in Native encoding, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
	}
	return appendValidString(b, s)
}

// appendValidString appends s, valid UTF-8, in Native encoding: its
// length as a varint, then its bytes.
func appendValidString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Native returns the rows as one block in ClickHouse's Native format,
// in pieces to be sent one after the other (not copied into one buffer:
// a batch of events is tens of megabytes): the column and row counts,
// then each column's name and type, and its values.
func (v *Values) Native() [][]byte {
	out := make([][]byte, 0, 1+5*len(v.cols))
	var head []byte
	head = binary.AppendUvarint(head, uint64(len(v.cols)))
	head = binary.AppendUvarint(head, uint64(v.rows))
	for _, c := range v.cols {
		head = appendString(head, c.name)
		head = appendString(head, kindTypes[c.kind])
		for _, part := range [][]byte{c.nulls, c.data, c.keys, c.vals} {
			if len(part) > 0 {
				out = append(out, head, part)
				head = nil
			}
		}
	}
	if len(head) > 0 {
		out = append(out, head)
	}
	return out
}

// TSV returns the rows as TabSeparated text, one line a row.
func (v *Values) TSV() []byte {
	var b []byte
	// A copy of the columns whose buffers are consumed value by value;
	// a map's entries count those read so far.
	cur := slices.Clone(v.cols)
	for i := range cur {
		cur[i].entries = 0
	}
	for range v.rows {
		for i := range cur {
			if i > 0 {
				b = append(b, '\t')
			}
			c := &cur[i]
			switch c.kind {
			case kindString:
				var s []byte
				s, c.data = nextString(c.data)
				b = appendEscaped(b, string(s))
			case kindInt64:
				b = strconv.AppendInt(b, int64(binary.LittleEndian.Uint64(c.data)), 10)
				c.data = c.data[8:]
			case kindUint64:
				b = strconv.AppendUint(b, binary.LittleEndian.Uint64(c.data), 10)
				c.data = c.data[8:]
			case kindUint8:
				b = strconv.AppendUint(b, uint64(c.data[0]), 10)
				c.data = c.data[1:]
			case kindTime, kindNullTime:
				ms := int64(binary.LittleEndian.Uint64(c.data))
				c.data = c.data[8:]
				if c.kind == kindNullTime {
					null := c.nulls[0] == 1
					c.nulls = c.nulls[1:]
					if null {
						b = append(b, Null...)
						break
					}
				}
				b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02 15:04:05.000")
			case kindMap:
				end := binary.LittleEndian.Uint64(c.data)
				c.data = c.data[8:]
				b = append(b, '{')
				for n := c.entries; n < end; n++ {
					if n > c.entries {
						b = append(b, ',')
					}
					var k, val []byte
					k, c.keys = nextString(c.keys)
					val, c.vals = nextString(c.vals)
					b = appendQuoted(b, string(k))
					b = append(b, ':')
					b = appendQuoted(b, string(val))
				}
				c.entries = end
				b = append(b, '}')
			}
		}
		b = append(b, '\n')
	}
	return b
}

// nextString reads one Native string off b.
func nextString(b []byte) (s, rest []byte) {
	n, w := binary.Uvarint(b)
	return b[w : w+int(n)], b[w+int(n):]
}

// appendTime writes 'YYYY-MM-DD hh:mm:ss.mmm' in UTC.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = append(b, '\'')
	b = t.AppendFormat(b, "2006-01-02 15:04:05.000")
	return append(b, '\'')
}

// appendEscaped writes s as a TabSeparated field: backslash, tab,
// newline, carriage return and zero escaped, invalid UTF-8 as U+FFFD
// (ClickHouse stores bytes, but text columns must stay readable).
func appendEscaped(b []byte, s string) []byte { return appendText(b, s, false) }

// appendQuoted writes s as a ClickHouse string literal: the escapes of
// appendEscaped, quotes escaped too, between quotes.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '\'')
	return append(appendText(b, s, true), '\'')
}

func appendText(b []byte, s string, quoted bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' || quoted && c == '\'':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == 0:
			b = append(b, '\\', '0')
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return b
}

// Null is how Select hands over a NULL field.
const Null = `\N`

func quote(s string) string { return string(appendQuoted(nil, s)) }

// Quote returns s as a ClickHouse string literal, for building queries
// with values that came from outside.
func Quote(s string) string { return quote(s) }

// unescapeTSV undoes TabSeparated escaping in place and returns the field.
// NULL stays \N (a string "\N" is written \\N, so the two cannot be
// confused): callers compare with Null.
func unescapeTSV(f []byte) []byte {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return f
	}
	j := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '\\' && i+1 < len(f) {
			i++
			switch f[i] {
			case 'n':
				c = '\n'
			case 't':
				c = '\t'
			case 'r':
				c = '\r'
			case '0':
				c = 0
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'a':
				c = '\a'
			case 'v':
				c = '\v'
			default:
				c = f[i] // \\ \' and anything else: the character itself
			}
		}
		f[j] = c
		j++
	}
	return f[:j]
}

// splitTSV calls fn with each line of buf split into unescaped fields,
// reusing fields between lines. It returns what follows the last newline
// (a partial line of a streamed result).
func splitTSV(buf []byte, fields [][]byte, fn func([][]byte) error) (rest []byte, _ [][]byte, err error) {
	for {
		nl := -1
		for i, c := range buf {
			if c == '\n' {
				nl = i
				break
			}
		}
		if nl < 0 {
			return buf, fields, nil
		}
		line := buf[:nl]
		buf = buf[nl+1:]
		fields = fields[:0]
		start := 0
		for i := 0; i <= len(line); i++ {
			if i == len(line) || line[i] == '\t' {
				fields = append(fields, unescapeTSV(line[start:i]))
				start = i + 1
			}
		}
		if err := fn(fields); err != nil {
			return nil, fields, err
		}
	}
}

// ForEachTSVRow calls fn with the unescaped fields of each line of a
// TabSeparated result; engines use it for Select.
func ForEachTSVRow(buf []byte, fn func([][]byte) error) error {
	rest, _, err := splitTSV(buf, nil, fn)
	if err == nil && len(rest) > 0 {
		_, _, err = splitTSV(append(rest, '\n'), nil, fn)
	}
	return err
}

// AppendTSVField writes a field as Select handed it over back in
// TabSeparated form (NULL stays \N).
func AppendTSVField(b, f []byte) []byte {
	if string(f) == Null {
		return append(b, f...)
	}
	return appendEscaped(b, string(f))
}

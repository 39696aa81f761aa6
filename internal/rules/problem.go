package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a rules file, at a position in it.
type Problem struct {
	File string
	Line int // 1-based; 0 when the problem is about the whole file
	Col  int // 1-based, in characters
	Msg  string

	// snippet is the file's line, shown with a caret under Col so that a
	// problem in a long CEL expression can be found without counting.
	snippet string
}

// Error formats the problem as path:line:col: message, then the source
// line and a caret, the way cel-go prints its own errors.
func (p *Problem) Error() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	s := fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
	if p.snippet == "" {
		return s
	}
	var b strings.Builder
	b.WriteString(s)
	// Tabs would make the caret line disagree with the terminal's rendering.
	line := strings.ReplaceAll(p.snippet, "\t", " ")
	b.WriteString("\n | ")
	b.WriteString(line)
	b.WriteString("\n | ")
	rest := line
	for i := 1; i < p.Col && rest != ""; i++ {
		_, sz := utf8.DecodeRuneInString(rest)
		rest = rest[sz:]
		if sz > 1 {
			b.WriteString("\uff0e") // wide characters get a wide dot, as in cel-go
		} else {
			b.WriteByte('.')
		}
	}
	if _, sz := utf8.DecodeRuneInString(rest); sz > 1 {
		b.WriteString("\uff3e")
	} else {
		b.WriteByte('^')
	}
	return b.String()
}

// Problems is every problem found by one Load, in file and position order.
// Load returns it as its error so that a reload reports everything at once.
type Problems []*Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// sortProblems orders problems by file (in load order) and position, so
// that output follows the files top to bottom whatever order checks ran in.
func sortProblems(ps Problems, files []string) {
	order := make(map[string]int, len(files))
	for i, f := range files {
		order[f] = i
	}
	slices.SortStableFunc(ps, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(order[a.File], order[b.File]),
			cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// source is one file being loaded: its path, its lines (for snippets and
// position mapping) and the problems found in it.
type source struct {
	path  string
	lines [][]rune
	probs Problems
}

func newSource(path string, data []byte) *source {
	// Lines break where YAML breaks them (\r\n, \r, \n, NEL, LS, PS), so
	// that line numbers agree with the parser's.
	var lines [][]rune
	var cur []rune
	runes := []rune(string(data))
	for i := 0; i < len(runes); i++ {
		switch r := runes[i]; r {
		case '\r':
			if i+1 < len(runes) && runes[i+1] == '\n' {
				i++
			}
			fallthrough
		case '\n', '\u0085', '\u2028', '\u2029':
			lines = append(lines, cur)
			cur = nil
		default:
			cur = append(cur, r)
		}
	}
	lines = append(lines, cur)
	return &source{path: path, lines: lines}
}

// at records a problem at a file position.
func (s *source) at(line, col int, format string, args ...any) {
	p := &Problem{File: s.path, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
	if line >= 1 && line <= len(s.lines) {
		p.snippet = string(s.lines[line-1])
	}
	s.probs = append(s.probs, p)
}

// errf records a problem at a YAML node.
func (s *source) errf(n *yaml.Node, format string, args ...any) {
	s.at(n.Line, n.Column, format, args...)
}

// pos is a file position, 1-based.
type pos struct{ line, col int }

// scalarPositions maps each character of a scalar's decoded value (and one
// past its end) to its position in the file, so that an error CEL or
// text/template reports at an offset in the value points at the right
// character of the YAML source.
//
// It aligns the decoded value with the raw text: characters that match
// advance both; whitespace matches whitespace (folding turns line breaks
// into spaces); indentation, quotes and backslashes in the raw text that
// have no counterpart in the value are skipped. This is exact for plain
// scalars, literal and folded blocks, single-quoted scalars (a doubled
// quote is one character) and double-quoted ones whose only escapes are
// \" and \\; after a rarer escape (\n, \t, \u00e9) positions stay close
// rather than exact.
func (s *source) scalarPositions(n *yaml.Node) []pos {
	value := []rune(n.Value)
	out := make([]pos, len(value)+1)
	line, col := n.Line, n.Column
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		col++ // past the opening quote
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		line, col = line+1, 1 // content starts on the line after | or >
	}
	// cur returns the raw character at (line, col): '\n' past the end of a
	// line, 0 past the end of the file.
	cur := func() rune {
		if line < 1 || line > len(s.lines) {
			return 0
		}
		l := s.lines[line-1]
		if col-1 < len(l) {
			return l[col-1]
		}
		if line == len(s.lines) {
			return 0
		}
		return '\n'
	}
	next := func() {
		if cur() == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	isSpace := func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }
	skippable := func(r rune) bool { return isSpace(r) || r == '\\' || r == '\'' || r == '"' }
	for i, d := range value {
		for {
			r := cur()
			if r == 0 {
				out[i] = pos{line, col}
				break
			}
			if r == d || (isSpace(d) && isSpace(r)) || !skippable(r) {
				// A non-skippable mismatch is the residue of an escape
				// sequence: take it as this character to bound any drift.
				out[i] = pos{line, col}
				next()
				break
			}
			next()
		}
	}
	out[len(value)] = pos{line, col}
	return out
}

// atOffset records a problem at a character offset inside a scalar's value.
func (s *source) atOffset(positions []pos, offset int, format string, args ...any) {
	offset = max(0, min(offset, len(positions)-1))
	p := positions[offset]
	s.at(p.line, p.col, format, args...)
}

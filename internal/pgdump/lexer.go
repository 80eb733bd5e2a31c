package pgdump

import (
	"bytes"
	"errors"
)

// tokenKind classifies the SQL tokens the seeder needs to tell statements apart and to read
// the literal values of INSERT statements.
type tokenKind int

const (
	tokWord   tokenKind = iota // keyword or unquoted identifier
	tokQIdent                  // "quoted identifier"
	tokString                  // 'string', E'string' or $tag$string$tag$
	tokNumber                  // 123, 1.5, 1e3
	tokPunct                   // one character: ( ) , . ; : - + etc.
)

type token struct {
	kind       tokenKind
	start, end int // byte offsets into the statement buffer
	escape     bool
	dollarTag  int // length of the $tag$ delimiter for dollar-quoted strings
}

// errNeedMore means the buffer ends inside a token (an open string or comment): the lexer
// must be given more input and resumed at the returned position.
var errNeedMore = errors.New("need more input")

// lexer walks SQL text by PostgreSQL's lexical rules, skipping white space and comments.
type lexer struct {
	buf []byte
	pos int
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next returns the next token. At the end of the buffer it returns errNeedMore, with pos left
// at the start of the unfinished token, or at the end when nothing is pending.
func (l *lexer) next() (token, error) {
	for {
		start := l.pos
		if start >= len(l.buf) {
			return token{}, errNeedMore
		}
		c := l.buf[start]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '-' && l.peek(1) == '-':
			nl := bytes.IndexByte(l.buf[start:], '\n')
			if nl < 0 {
				return token{}, errNeedMore
			}
			l.pos = start + nl + 1
		case c == '/' && l.peek(1) == '*':
			end, ok := blockCommentEnd(l.buf, start)
			if !ok {
				return token{}, errNeedMore
			}
			l.pos = end
		case c == '\'':
			return l.quoted(start, start+1, false)
		case (c == 'E' || c == 'e') && l.peek(1) == '\'':
			return l.quoted(start, start+2, true)
		case c == '"':
			end, ok := closeQuote(l.buf, start+1, '"', false)
			if !ok {
				return token{}, errNeedMore
			}
			l.pos = end
			return token{kind: tokQIdent, start: start, end: end}, nil
		case c == '$' && (l.peek(1) == '$' || isIdentStart(l.peek(1))):
			return l.dollar(start)
		case isIdentStart(c):
			end := start + 1
			for end < len(l.buf) && isIdentChar(l.buf[end]) {
				end++
			}
			if end == len(l.buf) {
				return token{}, errNeedMore // the word may go on in the next chunk
			}
			l.pos = end
			return token{kind: tokWord, start: start, end: end}, nil
		case isDigit(c) || c == '.' && isDigit(l.peek(1)):
			end := start
			for end < len(l.buf) && (isDigit(l.buf[end]) || l.buf[end] == '.' || l.buf[end] == 'e' || l.buf[end] == 'E' ||
				(l.buf[end] == '-' || l.buf[end] == '+') && (l.buf[end-1] == 'e' || l.buf[end-1] == 'E')) {
				end++
			}
			if end == len(l.buf) {
				return token{}, errNeedMore
			}
			l.pos = end
			return token{kind: tokNumber, start: start, end: end}, nil
		default:
			l.pos = start + 1
			return token{kind: tokPunct, start: start, end: start + 1}, nil
		}
	}
}

func (l *lexer) peek(off int) byte {
	if l.pos+off < len(l.buf) {
		return l.buf[l.pos+off]
	}
	return 0
}

func (l *lexer) quoted(start, bodyStart int, escape bool) (token, error) {
	end, ok := closeQuote(l.buf, bodyStart, '\'', escape)
	if !ok {
		return token{}, errNeedMore
	}
	// Adjacent string literals separated by white space that includes a newline are one
	// literal in SQL; pg_dump never writes them, so they are left to fail as unexpected tokens.
	l.pos = end
	return token{kind: tokString, start: start, end: end, escape: escape}, nil
}

func (l *lexer) dollar(start int) (token, error) {
	tagEnd := start + 1
	for tagEnd < len(l.buf) && l.buf[tagEnd] != '$' {
		if !isIdentChar(l.buf[tagEnd]) {
			l.pos = start + 1 // a lone '$' (e.g. a parameter $1) is punctuation
			return token{kind: tokPunct, start: start, end: start + 1}, nil
		}
		tagEnd++
	}
	if tagEnd >= len(l.buf) {
		return token{}, errNeedMore
	}
	tag := l.buf[start : tagEnd+1]
	closeAt := bytes.Index(l.buf[tagEnd+1:], tag)
	if closeAt < 0 {
		return token{}, errNeedMore
	}
	end := tagEnd + 1 + closeAt + len(tag)
	l.pos = end
	return token{kind: tokString, start: start, end: end, dollarTag: len(tag)}, nil
}

// closeQuote finds the end of a quoted run that opened before from: a doubled quote stands for
// itself, and in escape strings a backslash protects the next byte.
func closeQuote(buf []byte, from int, quote byte, escape bool) (int, bool) {
	for i := from; i < len(buf); i++ {
		switch buf[i] {
		case '\\':
			if escape {
				i++
			}
		case quote:
			if i+1 < len(buf) && buf[i+1] == quote {
				i++
				continue
			}
			if i+1 == len(buf) {
				return 0, false // a doubled quote may be split across chunks
			}
			return i + 1, true
		}
	}
	return 0, false
}

// blockCommentEnd finds the end of a /* */ comment, which nests in PostgreSQL.
func blockCommentEnd(buf []byte, start int) (int, bool) {
	depth := 0
	for i := start; i+1 < len(buf); i++ {
		switch {
		case buf[i] == '/' && buf[i+1] == '*':
			depth++
			i++
		case buf[i] == '*' && buf[i+1] == '/':
			depth--
			i++
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// stringValue decodes a string token to its value.
func stringValue(buf []byte, t token) ([]byte, error) {
	if t.dollarTag > 0 {
		return buf[t.start+t.dollarTag : t.end-t.dollarTag], nil
	}
	bodyStart := t.start + 1
	if t.escape {
		bodyStart++
	}
	body := buf[bodyStart : t.end-1]
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\'' { // doubled quote
			out = append(out, '\'')
			i++
			continue
		}
		if c != '\\' || !t.escape {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(body) {
			return nil, errors.New("string ends in a backslash")
		}
		switch e := body[i]; e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'x':
			v, n := hexValue(body[i+1:], 2)
			if n == 0 {
				return nil, errors.New(`\x without hex digits`)
			}
			out = append(out, v)
			i += n
		case 'u', 'U':
			return nil, errors.New(`unicode escapes in E'' strings are not supported`)
		default:
			if e >= '0' && e <= '7' {
				v, n := octalValue(body[i:], 3)
				out = append(out, v)
				i += n - 1
				continue
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func hexValue(b []byte, maxDigits int) (byte, int) {
	var v byte
	n := 0
	for n < maxDigits && n < len(b) {
		c := b[n]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return v, n
		}
		n++
	}
	return v, n
}

func octalValue(b []byte, maxDigits int) (byte, int) {
	var v byte
	n := 0
	for n < maxDigits && n < len(b) && b[n] >= '0' && b[n] <= '7' {
		v = v<<3 | (b[n] - '0')
		n++
	}
	return v, n
}

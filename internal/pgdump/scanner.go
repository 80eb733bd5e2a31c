// Package pgdump reads plain-format pg_dump files statement by statement: it tells the
// statements a loader needs (COPY blocks, INSERTs) from those it skips, and streams COPY rows
// without holding a file in memory.
package pgdump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"rates/internal/copystream"
)

// Kind is what the seeder does with a statement of the dump.
type Kind int

const (
	// KindSkip is a statement the seeder knowingly leaves out: session settings and the DDL
	// of the tables the migrations own.
	KindSkip Kind = iota
	// KindCopy starts a COPY ... FROM stdin block; its rows follow on the next lines.
	KindCopy
	// KindInsert is an INSERT whose rows were read into Rows.
	KindInsert
)

// Statement is one statement of the dump.
type Statement struct {
	Kind    Kind
	Line    int // line of the dump where the statement starts
	Table   string
	Columns []string
	// Rows holds, for KindInsert, each row as a line of COPY text format (fields escaped,
	// separated by tabs, ended by a newline), ready to stream to the server.
	Rows [][]byte
}

// tables lists the tables the seeder loads, with their columns in table order.
var tables = map[string][]string{
	"regions": {"slug", "name", "parent_slug"},
	"ports":   {"code", "name", "parent_slug"},
	"prices":  {"orig_code", "dest_code", "day", "price"},
}

// lineageColumns are columns a pg_dump of this service's own database carries after the
// public ones (prices.batch_id, the batch that wrote the row). They are accepted so that such
// a dump loads; the seeder gives the rows its own lineage.
var lineageColumns = map[string][]string{
	"prices": {"batch_id"},
}

const (
	maxLineBytes      = 16 << 20
	maxStatementBytes = 64 << 20
)

// LineError is a problem at a given line of the dump.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

func lineErr(line int, format string, args ...any) error {
	return &LineError{Line: line, Err: fmt.Errorf(format, args...)}
}

// Scanner reads a plain-format pg_dump file statement by statement, in constant memory apart
// from the statement at hand.
type Scanner struct {
	r       *bufio.Reader
	line    int    // lines read so far
	long    []byte // a line longer than the reader's buffer
	buf     []byte // text of the statement in progress
	bufLine int    // line at which buf starts
	eof     bool
	inCopy  bool
}

// NewScanner reads from r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine returns the next line including its newline (none at the end of the input); the
// slice is valid until the next call.
func (s *Scanner) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.long) > maxLineBytes {
				return nil, lineErr(s.line+1, "line longer than %d bytes", maxLineBytes)
			}
			line, err = s.r.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read line %d: %w", s.line+1, err)
	}
	if len(line) == 0 {
		return nil, io.EOF
	}
	s.line++
	return line, nil
}

// Next returns the next statement, or io.EOF at the end of the dump. After a KindCopy
// statement the caller must read its rows from CopyRows before calling Next again.
func (s *Scanner) Next() (*Statement, error) {
	if s.inCopy {
		return nil, errors.New("pgdump: Next called before the rows of the COPY statement were read")
	}
	lx := lexer{buf: s.buf}
	var toks []token
	for {
		for {
			t, err := lx.next()
			if err != nil { // errNeedMore: the buffer holds no further complete token
				break
			}
			toks = append(toks, t)
			if t.kind == tokPunct && s.buf[t.start] == ';' {
				return s.finish(toks, t.end)
			}
		}
		if len(toks) == 0 {
			// Only white space and comments so far: drop them, so the buffer only ever
			// holds the statement in progress.
			s.bufLine += bytes.Count(s.buf[:lx.pos], []byte{'\n'})
			s.buf = append(s.buf[:0], s.buf[lx.pos:]...)
			lx.pos = 0
		}
		if s.eof {
			if len(toks) > 0 || len(bytes.TrimSpace(s.buf)) > 0 {
				return nil, lineErr(s.lineOf(firstStart(toks)), "statement not terminated by ';' before the end of the file (truncated dump?)")
			}
			return nil, io.EOF
		}
		line, err := s.readLine()
		switch {
		case errors.Is(err, io.EOF):
			s.eof = true
			s.buf = append(s.buf, '\n') // ends a last line that has no newline
		case err != nil:
			return nil, err
		case len(toks) == 0 && len(bytes.TrimSpace(s.buf)) == 0 && line[0] == '\\':
			s.buf = s.buf[:0]
			if err := metaCommand(line, s.line); err != nil {
				return nil, err
			}
		default:
			if len(s.buf) == 0 {
				s.bufLine = s.line
			}
			if len(s.buf)+len(line) > maxStatementBytes {
				return nil, lineErr(s.lineOf(firstStart(toks)), "statement longer than %d bytes", maxStatementBytes)
			}
			s.buf = append(s.buf, line...)
		}
		lx.buf = s.buf
	}
}

func firstStart(toks []token) int {
	if len(toks) == 0 {
		return 0
	}
	return toks[0].start
}

// lineOf is the dump line of a byte offset in the statement buffer.
func (s *Scanner) lineOf(off int) int {
	return s.bufLine + bytes.Count(s.buf[:min(off, len(s.buf))], []byte{'\n'})
}

// finish classifies the statement that ends at buf[end] and drops it from the buffer.
func (s *Scanner) finish(toks []token, end int) (*Statement, error) {
	st, err := classify(s.buf, toks)
	line := s.lineOf(toks[0].start)
	if err != nil {
		return nil, &LineError{Line: line, Err: err}
	}
	st.Line = line
	if st.Kind == KindCopy {
		if rest := bytes.TrimSpace(s.buf[end:]); len(rest) > 0 {
			return nil, lineErr(line, "unexpected text after COPY ... FROM stdin;")
		}
		s.buf, s.inCopy = s.buf[:0], true
		return st, nil
	}
	s.bufLine += bytes.Count(s.buf[:end], []byte{'\n'})
	s.buf = append(s.buf[:0], s.buf[end:]...)
	return st, nil
}

// metaCommand accepts the psql meta-commands pg_dump writes: \restrict and \unrestrict guard
// the script against injected commands and mean nothing to the seeder.
func metaCommand(line []byte, lineNo int) error {
	fields := strings.Fields(string(line))
	switch fields[0] {
	case `\restrict`, `\unrestrict`:
		if len(fields) != 2 {
			return lineErr(lineNo, "%s takes exactly one key", fields[0])
		}
		return nil
	}
	return lineErr(lineNo, "unsupported psql meta-command %s", truncateText(fields[0], 40))
}

// CopyRows streams the rows of the COPY block that st started, in COPY text format, up to its
// end marker \. (not included). It checks that every row has as many fields as columns.
func (s *Scanner) CopyRows(st *Statement) *CopyRows {
	c := &CopyRows{s: s, table: st.Table, columns: len(st.Columns), startLine: st.Line, FirstLine: s.line + 1}
	c.Reader = copystream.NewReader(c.nextRow)
	return c
}

// CopyRows reads the data lines of one COPY block; see Scanner.CopyRows. Its Err is the first
// problem found in the data, which the server only sees as a failed COPY.
type CopyRows struct {
	*copystream.Reader
	s         *Scanner
	table     string
	columns   int
	startLine int
	// FirstLine is the dump line of the first row; the server counts COPY lines from 1.
	FirstLine int
	// Rows counts the rows read so far.
	Rows int64
}

// nextRow returns the next data line, or io.EOF after the end marker.
func (c *CopyRows) nextRow() ([]byte, error) {
	if !c.s.inCopy {
		return nil, io.EOF
	}
	line, err := c.s.readLine()
	if errors.Is(err, io.EOF) {
		return nil, lineErr(c.startLine, "COPY data for %s has no end marker \\. before the end of the file (truncated dump?)", c.table)
	}
	if err != nil {
		return nil, err
	}
	if isEndMarker(line) {
		c.s.inCopy = false
		c.s.bufLine = c.s.line + 1
		return nil, io.EOF
	}
	if line[len(line)-1] != '\n' {
		return nil, lineErr(c.s.line, "COPY data for %s has no end marker \\. before the end of the file (truncated dump?)", c.table)
	}
	if fields := bytes.Count(line, []byte{'\t'}) + 1; fields != c.columns {
		return nil, lineErr(c.s.line, "COPY row for %s has %d fields, expected %d", c.table, fields, c.columns)
	}
	c.Rows++
	return line, nil // copied out before the next readLine reuses the buffer
}

func isEndMarker(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	return len(line) == 2 && line[0] == '\\' && line[1] == '.'
}

func truncateText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

package csvbatch

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"rates/internal/copystream"
	"rates/internal/domain"
)

// Header is the exact first line of every batch.
const Header = "orig_code,dest_code,day,price"

var headerFields = []string{"orig_code", "dest_code", "day", "price"}

// RowError is one problem found in a batch. Line is the CSV line (the header is line 1), or 0
// when the problem concerns a whole part of a multi-part batch or its manifest; Column names
// the field, or is empty when the problem concerns the whole row or file.
type RowError struct {
	Line   int64  `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
	// Part is the key of the part of a multi-part batch the line is in.
	Part string `json:"part,omitempty"`
}

// ColumnOrder sorts errors of one line in field order.
func ColumnOrder(c string) int {
	for i, f := range headerFields {
		if f == c {
			return i + 1
		}
	}
	return 0
}

// Rules are the rules of a price row that are settings or depend on the time of the load.
type Rules struct {
	Days domain.DayWindow
	Now  time.Time
}

// checkRow validates one data record and appends its canonical form to dst: the fields as they
// go into the staging table, tab-separated (COPY text), \N for a field that failed, and a line
// break. Fields that fail are sent as NULL rather than dropped, so the set-based checks after
// COPY still see the row, and "any NULL" marks it bad without a separate flag column. The
// canonical form is also what the batch's RowDigest counts: a price is written in plain
// decimal, whatever leading zeros it came with. It reports each problem through bad and
// returns whether the row is good.
func checkRow(dst []byte, line int64, rec []string, rules Rules, bad func(RowError)) ([]byte, bool) {
	if len(rec) != len(headerFields) {
		bad(RowError{Line: line, Reason: fmt.Sprintf("expected %d fields, got %d", len(headerFields), len(rec))})
		return append(dst, "\\N\t\\N\t\\N\t\\N\n"...), false
	}
	var reasons [4]string
	for i, v := range rec[:2] {
		if !domain.IsPortCode(v) {
			reasons[i] = Quote(v) + " is not a port code (5 upper-case letters or digits)"
		}
	}
	if reasons[0] == "" && reasons[1] == "" && !domain.DistinctRoute(rec[0], rec[1]) {
		reasons[1] = Quote(rec[1]) + " is also the origin: a price goes from one port to another"
	}
	reasons[2] = checkDay(rec[2], rules)
	price, reason := checkPrice(rec[3])
	reasons[3] = reason
	ok := true
	for i, col := range headerFields {
		if i > 0 {
			dst = append(dst, '\t')
		}
		switch {
		case reasons[i] != "":
			ok = false
			bad(RowError{Line: line, Column: col, Reason: reasons[i]})
			dst = append(dst, `\N`...)
		case i == 3:
			dst = strconv.AppendInt(dst, price, 10)
		default:
			// Every accepted value is plain ASCII without tabs or backslashes: no COPY escaping.
			dst = append(dst, rec[i]...)
		}
	}
	return append(dst, '\n'), ok
}

// checkDay accepts a real calendar date written YYYY-MM-DD (the strict form: batch files are
// machine-written) inside the window of plausible days, and returns why not otherwise.
func checkDay(s string, rules Rules) string {
	if len(s) != len("YYYY-MM-DD") {
		return Quote(s) + " is not a date in YYYY-MM-DD form"
	}
	d, err := domain.ParseDay(s)
	switch {
	case errors.Is(err, domain.ErrNoSuchDay):
		return Quote(s) + " is not a real date"
	case err != nil:
		return Quote(s) + " is not a date in YYYY-MM-DD form"
	}
	switch err := rules.Days.Check(d, rules.Now); {
	case errors.Is(err, domain.ErrDayTooEarly):
		return fmt.Sprintf("%s is before %s, the earliest day a price may have (INGEST_EARLIEST_DAY)",
			Quote(s), rules.Days.Earliest.Format(time.DateOnly))
	case err != nil:
		return fmt.Sprintf("%s is after %s, %d days from today (INGEST_MAX_DAYS_AHEAD)",
			Quote(s), rules.Days.Latest(rules.Now).Format(time.DateOnly), rules.Days.DaysAhead)
	}
	return ""
}

// checkPrice reads a price (domain.ValidPrice) written in plain decimal digits, leading zeros
// allowed, and returns it, or why not.
func checkPrice(s string) (int64, string) {
	if s == "" {
		return 0, "price is empty"
	}
	if rest, neg := strings.CutPrefix(s, "-"); neg && strings.TrimLeft(rest, "0") != "" && allDigits(rest) {
		return 0, fmt.Sprintf("%s is negative: a price is at least %d", Quote(s), domain.MinPrice)
	}
	if !allDigits(s) {
		return 0, Quote(s) + " is not a whole number"
	}
	digits := strings.TrimLeft(s, "0")
	if len(digits) > len(strconv.Itoa(domain.MaxPrice)) {
		return 0, fmt.Sprintf("%s is too large (at most %d)", Quote(s), domain.MaxPrice)
	}
	n, _ := strconv.ParseInt("0"+digits, 10, 64) // at most 10 digits: fits
	switch {
	case n < domain.MinPrice:
		return 0, fmt.Sprintf("price must be at least %d, got %s", domain.MinPrice, Quote(s))
	case !domain.ValidPrice(n):
		return 0, fmt.Sprintf("%s is too large (at most %d)", Quote(s), domain.MaxPrice)
	}
	return n, ""
}

// allDigits reports a string of ASCII digits only.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Quote shows a value in a report: bounded, and ASCII-only so that control characters and
// invalid UTF-8 survive JSON and jsonb (which refuses \u0000).
func Quote(s string) string {
	const maxLen = 40
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.QuoteToASCII(s[:cut]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// Converter turns the batch's CSV into COPY text for the staging table, one record at a
// time, so memory stays flat whatever the batch size. It keeps the first maxErrors problems
// and counts every bad row.
type Converter struct {
	*copystream.Reader // COPY FROM STDIN reads the staging rows here

	csv       *csv.Reader
	maxErrors int
	rules     Rules
	// sourceErr reports whether an error came from reading the source (network, client),
	// which makes the load fail rather than the batch be rejected.
	sourceErr func() error

	buf     []byte
	header  bool
	Rows    int64
	BadRows int64
	Errs    []RowError
	Fatal   bool  // the batch cannot be read as rows past Errs' last entry
	line    int64 // of the last record read
	// TooLarge says the content went past Limits.MaxBytes (then Fatal is set too).
	TooLarge bool
	// Digest counts every data row, in canonical form.
	Digest RowDigest

	// codes holds the distinct well-formed port codes seen, so that they can be checked and
	// locked with one query instead of a pass over the staging table. Past maxDistinctCodes it
	// is dropped (codesOverflow) to keep memory flat, and the checks fall back to SQL.
	codes         map[string]struct{}
	codesOverflow bool

	// Known, when set, is every port code in the database: the checks of a part of a
	// multi-part batch, which run before its transaction, report unknown codes by line.
	Known map[string]struct{}
}

// checkKnown reports a well-formed code that is not a known port.
func (c *Converter) checkKnown(line int64, column, code string) bool {
	if _, ok := c.Known[code]; ok || !domain.IsPortCode(code) {
		return true
	}
	c.bad(RowError{Line: line, Column: column, Reason: "unknown port code " + Quote(code)})
	return false
}

// maxDistinctCodes bounds the code set: about 5 MB, far more ports than exist.
const maxDistinctCodes = 100_000

// NewConverter reads r, which must bound its records (a Reader does).
func NewConverter(r io.Reader, maxErrors int, rules Rules, sourceErr func() error) *Converter {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a wrong field count is reported per row, not fatal
	cr.ReuseRecord = true
	c := &Converter{csv: cr, maxErrors: maxErrors, rules: rules, sourceErr: sourceErr, buf: make([]byte, 0, 256),
		codes: map[string]struct{}{}}
	c.Reader = copystream.NewReader(c.next)
	return c
}

func (c *Converter) bad(e RowError) {
	if len(c.Errs) < c.maxErrors {
		c.Errs = append(c.Errs, e)
	}
}

// next reads one record and returns its staging row, or io.EOF when no row follows.
func (c *Converter) next() ([]byte, error) {
	rec, err := c.csv.Read()
	if err != nil {
		return c.readFailed(err)
	}
	line, _ := c.csv.FieldPos(0)
	c.line = int64(line)
	if !c.header {
		c.header = true
		rec[0] = strings.TrimPrefix(rec[0], "\uFEFF")
		if !slices.Equal(rec, headerFields) {
			c.bad(RowError{Line: int64(line), Reason: fmt.Sprintf("header must be %s, got %s", Header, Quote(strings.Join(rec, ",")))})
			c.Fatal = true
			return nil, io.EOF
		}
		return nil, nil
	}
	c.Rows++
	c.buf = append(strconv.AppendInt(c.buf[:0], int64(line), 10), '\t')
	canonical := len(c.buf)
	var ok bool
	c.buf, ok = checkRow(c.buf, int64(line), rec, c.rules, c.bad)
	c.Digest.Add(c.buf[canonical:])
	if c.Known != nil && len(rec) == len(headerFields) {
		ok = c.checkKnown(int64(line), "orig_code", rec[0]) && ok
		ok = c.checkKnown(int64(line), "dest_code", rec[1]) && ok
	}
	if !ok {
		c.BadRows++
	}
	if len(rec) == len(headerFields) && !c.codesOverflow {
		c.addCode(rec[0])
		c.addCode(rec[1])
	}
	return c.buf, nil
}

func (c *Converter) readFailed(err error) ([]byte, error) {
	if errors.Is(err, io.EOF) {
		switch {
		case !c.header:
			c.bad(RowError{Line: 1, Reason: "batch is empty: expected the header " + Header})
			c.Fatal = true
		case c.Rows == 0:
			c.bad(RowError{Line: 2, Reason: "batch has no rows: expected rows after the header " + Header})
			c.Fatal = true
		}
		return nil, io.EOF
	}
	if srcErr := c.sourceErr(); srcErr != nil {
		return nil, srcErr
	}
	if e, ok := LimitProblem(err); ok {
		c.bad(e)
		c.Fatal, c.TooLarge = true, e.Line == 0
		return nil, io.EOF
	}
	var perr *csv.ParseError
	if errors.As(err, &perr) && c.header {
		// An unreadable record is sent as a row of NULLs, so that the count of bad rows
		// taken after COPY includes it.
		c.Rows++
		c.BadRows++
		c.bad(RowError{Line: int64(perr.StartLine), Reason: "not valid CSV: " + perr.Err.Error()})
		c.buf = strconv.AppendInt(c.buf[:0], int64(perr.StartLine), 10)
		c.buf = append(c.buf, "\t\\N\t\\N\t\\N\t\\N\n"...)
		return c.buf, nil
	}
	// A decompression error, or an unreadable header: nothing after it can be trusted.
	line := c.line + 1
	if perr != nil {
		line = int64(max(perr.StartLine, 1))
	}
	c.bad(RowError{Line: line, Reason: "cannot read the batch: " + err.Error()})
	c.Fatal = true
	return nil, io.EOF
}

// LimitProblem turns a *LimitError into the report's entry: on the record's line, or on no
// line for the whole content.
func LimitProblem(err error) (RowError, bool) {
	var limit *LimitError
	if !errors.As(err, &limit) {
		return RowError{}, false
	}
	return RowError{Line: limit.Line, Reason: limit.Error()}, true
}

func (c *Converter) addCode(code string) {
	if _, ok := c.codes[code]; ok || !domain.IsPortCode(code) {
		return
	}
	if len(c.codes) == maxDistinctCodes {
		c.codes, c.codesOverflow = nil, true
		return
	}
	// A clone, so the map does not pin the whole record the code was sliced from.
	c.codes[strings.Clone(code)] = struct{}{}
}

// DistinctCodes returns the code set as a slice, or nil after an overflow.
func (c *Converter) DistinctCodes() []string {
	if c.codesOverflow {
		return nil
	}
	out := make([]string, 0, len(c.codes))
	for code := range c.codes {
		out = append(out, code)
	}
	slices.Sort(out)
	return out
}

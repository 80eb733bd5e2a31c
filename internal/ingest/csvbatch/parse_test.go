package csvbatch

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"rates/internal/domain"
)

func TestCheckRow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rec    []string
		copy   string
		errors []RowError
	}{
		{"valid", []string{"CNSGH", "NOOSL", "2024-02-29", "1200"}, "7\tCNSGH\tNOOSL\t2024-02-29\t1200\n", nil},
		{"digits in code", []string{"US2AB", "NL9ZZ", "2000-12-31", "2147483647"}, "7\tUS2AB\tNL9ZZ\t2000-12-31\t2147483647\n", nil},
		{"too few fields", []string{"CNSGH", "NOOSL", "2024-01-01"}, "7\t\\N\t\\N\t\\N\t\\N\n",
			[]RowError{{Line: 7, Column: "", Reason: "expected 4 fields, got 3"}}},
		{"too many fields", []string{"CNSGH", "NOOSL", "2024-01-01", "1", "x"}, "7\t\\N\t\\N\t\\N\t\\N\n",
			[]RowError{{Line: 7, Column: "", Reason: "expected 4 fields, got 5"}}},
		{"lower-case code", []string{"cnsgh", "NOOSL", "2024-01-01", "1"}, "7\t\\N\tNOOSL\t2024-01-01\t1\n",
			[]RowError{{Line: 7, Column: "orig_code", Reason: `"cnsgh" is not a port code (5 upper-case letters or digits)`}}},
		{"short code and tab", []string{"CNSGH", "NO\tSL", "2024-01-01", "1"}, "7\tCNSGH\t\\N\t2024-01-01\t1\n",
			[]RowError{{Line: 7, Column: "dest_code", Reason: `"NO\tSL" is not a port code (5 upper-case letters or digits)`}}},
		{"not a real date", []string{"CNSGH", "NOOSL", "2023-02-29", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"2023-02-29" is not a real date`}}},
		{"month 13", []string{"CNSGH", "NOOSL", "2023-13-01", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"2023-13-01" is not a real date`}}},
		{"year 0", []string{"CNSGH", "NOOSL", "0000-01-01", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"0000-01-01" is not a real date`}}},
		{"date form", []string{"CNSGH", "NOOSL", "01/02/2024", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"01/02/2024" is not a date in YYYY-MM-DD form`}}},
		{"date with sign", []string{"CNSGH", "NOOSL", "2024-+1-01", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"2024-+1-01" is not a date in YYYY-MM-DD form`}}},
		{"zero price", []string{"CNSGH", "NOOSL", "2024-01-01", "0"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `price must be at least 1, got "0"`}}},
		{"zeros", []string{"CNSGH", "NOOSL", "2024-01-01", "0000"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `price must be at least 1, got "0000"`}}},
		{"negative price", []string{"CNSGH", "NOOSL", "2024-01-01", "-5"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `"-5" is negative: a price is at least 1`}}},
		{"minus zero", []string{"CNSGH", "NOOSL", "2024-01-01", "-0"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `"-0" is not a whole number`}}},
		{"leading zeros", []string{"CNSGH", "NOOSL", "2024-01-01", "0100"}, "7\tCNSGH\tNOOSL\t2024-01-01\t100\n", nil},
		{"many leading zeros", []string{"CNSGH", "NOOSL", "2024-01-01", "00000000000000100"}, "7\tCNSGH\tNOOSL\t2024-01-01\t100\n", nil},
		{"leading zeros, largest", []string{"CNSGH", "NOOSL", "2024-01-01", "0002147483647"}, "7\tCNSGH\tNOOSL\t2024-01-01\t2147483647\n", nil},
		{"leading zeros, too large", []string{"CNSGH", "NOOSL", "2024-01-01", "0002147483648"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `"0002147483648" is too large (at most 2147483647)`}}},
		{"origin is destination", []string{"CNSGH", "CNSGH", "2024-01-01", "1"}, "7\tCNSGH\t\\N\t2024-01-01\t1\n",
			[]RowError{{Line: 7, Column: "dest_code", Reason: `"CNSGH" is also the origin: a price goes from one port to another`}}},
		{"before the window", []string{"CNSGH", "NOOSL", "1999-12-31", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"1999-12-31" is before 2000-01-01, the earliest day a price may have (INGEST_EARLIEST_DAY)`}}},
		{"first day of the window", []string{"CNSGH", "NOOSL", "2000-01-01", "1"}, "7\tCNSGH\tNOOSL\t2000-01-01\t1\n", nil},
		{"last day of the window", []string{"CNSGH", "NOOSL", "2027-07-14", "1"}, "7\tCNSGH\tNOOSL\t2027-07-14\t1\n", nil},
		{"after the window", []string{"CNSGH", "NOOSL", "2027-07-15", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"2027-07-15" is after 2027-07-14, 365 days from today (INGEST_MAX_DAYS_AHEAD)`}}},
		{"year 9999", []string{"CNSGH", "NOOSL", "9999-01-01", "1"}, "7\tCNSGH\tNOOSL\t\\N\t1\n",
			[]RowError{{Line: 7, Column: "day", Reason: `"9999-01-01" is after 2027-07-14, 365 days from today (INGEST_MAX_DAYS_AHEAD)`}}},
		{"decimal price", []string{"CNSGH", "NOOSL", "2024-01-01", "12.5"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `"12.5" is not a whole number`}}},
		{"price overflow", []string{"CNSGH", "NOOSL", "2024-01-01", "2147483648"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `"2147483648" is too large (at most 2147483647)`}}},
		{"long price", []string{"CNSGH", "NOOSL", "2024-01-01", "123456789012345678901234567890"}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: `"123456789012345678901234567890" is too large (at most 2147483647)`}}},
		{"empty price", []string{"CNSGH", "NOOSL", "2024-01-01", ""}, "7\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			[]RowError{{Line: 7, Column: "price", Reason: "price is empty"}}},
		{"everything wrong", []string{"", "x", "2024-1-1", "abc"}, "7\t\\N\t\\N\t\\N\t\\N\n", []RowError{
			{Line: 7, Column: "orig_code", Reason: `"" is not a port code (5 upper-case letters or digits)`},
			{Line: 7, Column: "dest_code", Reason: `"x" is not a port code (5 upper-case letters or digits)`},
			{Line: 7, Column: "day", Reason: `"2024-1-1" is not a date in YYYY-MM-DD form`},
			{Line: 7, Column: "price", Reason: `"abc" is not a whole number`},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []RowError
			out, ok := checkRow([]byte("7\t"), 7, tc.rec, testRules, func(e RowError) { got = append(got, e) })
			if string(out) != tc.copy {
				t.Errorf("COPY line = %q, want %q", out, tc.copy)
			}
			if ok != (len(tc.errors) == 0) {
				t.Errorf("ok = %t with errors %v", ok, got)
			}
			if !slices.Equal(got, tc.errors) {
				t.Errorf("errors = %+v, want %+v", got, tc.errors)
			}
		})
	}
}

func TestQuoteBoundsAndEscapes(t *testing.T) {
	long := strings.Repeat("é", 40)
	q := Quote(long)
	if !strings.HasSuffix(q, "...") || len(q) > 60*6 || !utf8.ValidString(q) {
		t.Errorf("Quote(long) = %q", q)
	}
	if got := Quote("a\x00\xffb"); got != `"a\x00\xffb"` {
		t.Errorf("quote = %s", got)
	}
}

// testRules are the row rules of the parsing tests: the default window, on 2026-07-14.
var testRules = Rules{Days: domain.DefaultDayWindow, Now: time.Date(2026, 7, 14, 15, 4, 5, 0, time.UTC)}

// convert runs the Converter over a whole input, read as every batch is.
func convert(t *testing.T, in string, maxErrors int) (*Converter, string) {
	t.Helper()
	return convertWithin(t, in, maxErrors, Limits{})
}

func convertWithin(t *testing.T, in string, maxErrors int, lim Limits) (*Converter, string) {
	t.Helper()
	b, err := Open(strings.NewReader(in), false, lim)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConverter(b, maxErrors, testRules, b.SourceErr)
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	return c, string(out)
}

func TestConverter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		out     string
		rows    int64
		badRows int64
		fatal   bool
		errors  []RowError
	}{
		{
			name: "valid with CRLF, blank line and BOM",
			in:   "\uFEFF" + Header + "\r\nCNSGH,NOOSL,2024-01-01,100\r\n\r\n\"DEHAM\",NOOSL,2024-01-02,200\r\n",
			out:  "2\tCNSGH\tNOOSL\t2024-01-01\t100\n4\tDEHAM\tNOOSL\t2024-01-02\t200\n",
			rows: 2,
		},
		{
			name: "no final newline",
			in:   Header + "\nCNSGH,NOOSL,2024-01-01,100",
			out:  "2\tCNSGH\tNOOSL\t2024-01-01\t100\n",
			rows: 1,
		},
		{
			name:   "header only",
			in:     Header + "\n",
			fatal:  true,
			errors: []RowError{{Line: 2, Reason: "batch has no rows: expected rows after the header " + Header}},
		},
		{
			name:   "header and blank lines",
			in:     Header + "\r\n\r\n\n",
			fatal:  true,
			errors: []RowError{{Line: 2, Reason: "batch has no rows: expected rows after the header " + Header}},
		},
		{
			name: "CR-only line breaks (old Mac, Excel CSV (Macintosh))",
			in:   Header + "\rCNSGH,NOOSL,2024-01-01,100\r\rDEHAM,NOOSL,2024-01-02,0200\r",
			out:  "2\tCNSGH\tNOOSL\t2024-01-01\t100\n4\tDEHAM\tNOOSL\t2024-01-02\t200\n",
			rows: 2,
		},
		{
			name: "CR-only line breaks, none at the end",
			in:   Header + "\rCNSGH,NOOSL,2024-01-01,100",
			out:  "2\tCNSGH\tNOOSL\t2024-01-01\t100\n",
			rows: 1,
		},
		{
			name:   "empty",
			in:     "",
			fatal:  true,
			errors: []RowError{{Line: 1, Reason: "batch is empty: expected the header " + Header}},
		},
		{
			name:   "wrong header",
			in:     "orig,dest,day,price\nCNSGH,NOOSL,2024-01-01,100\n",
			fatal:  true,
			errors: []RowError{{Line: 1, Column: "", Reason: `header must be orig_code,dest_code,day,price, got "orig,dest,day,price"`}},
		},
		{
			name:   "reordered header",
			in:     "dest_code,orig_code,day,price\n",
			fatal:  true,
			errors: []RowError{{Line: 1, Column: "", Reason: `header must be orig_code,dest_code,day,price, got "dest_code,orig_code,day,price"`}},
		},
		{
			name:    "bad rows keep their lines",
			in:      Header + "\nCNSGH,NOOSL,2024-01-01,100\nCNSGH,NOOSL,2024-01-01\n\"CN\"SGH,NOOSL,2024-01-01,1\nCNSGH,NOOSL,2024-01-01,0\n",
			out:     "2\tCNSGH\tNOOSL\t2024-01-01\t100\n3\t\\N\t\\N\t\\N\t\\N\n4\t\\N\t\\N\t\\N\t\\N\n5\tCNSGH\tNOOSL\t2024-01-01\t\\N\n",
			rows:    4,
			badRows: 3,
			errors: []RowError{
				{Line: 3, Column: "", Reason: "expected 4 fields, got 3"},
				{Line: 4, Column: "", Reason: `not valid CSV: extraneous or missing " in quoted-field`},
				{Line: 5, Column: "price", Reason: `price must be at least 1, got "0"`},
			},
		},
		{
			name:    "quoted field across lines is reported at its start",
			in:      Header + "\n\"CN\nSGH\",NOOSL,2024-01-01,1\nCNSGH,NOOSL,2024-01-01,1\n",
			out:     "2\t\\N\tNOOSL\t2024-01-01\t1\n4\tCNSGH\tNOOSL\t2024-01-01\t1\n",
			rows:    2,
			badRows: 1,
			errors:  []RowError{{Line: 2, Column: "orig_code", Reason: `"CN\nSGH" is not a port code (5 upper-case letters or digits)`}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, out := convert(t, tc.in, 10)
			if out != tc.out {
				t.Errorf("COPY text = %q, want %q", out, tc.out)
			}
			if c.Rows != tc.rows || c.BadRows != tc.badRows || c.Fatal != tc.fatal {
				t.Errorf("rows %d, bad %d, fatal %t; want %d, %d, %t", c.Rows, c.BadRows, c.Fatal, tc.rows, tc.badRows, tc.fatal)
			}
			if !slices.Equal(c.Errs, tc.errors) {
				t.Errorf("errors = %+v, want %+v", c.Errs, tc.errors)
			}
		})
	}
}

func TestConverterKeepsFirstErrorsAndCountsAll(t *testing.T) {
	var b strings.Builder
	b.WriteString(Header + "\n")
	for i := 0; i < 1000; i++ {
		b.WriteString("CNSGH,NOOSL,2024-01-01,0\n")
	}
	c, _ := convert(t, b.String(), 5)
	if c.BadRows != 1000 || len(c.Errs) != 5 || c.Errs[0].Line != 2 || c.Errs[4].Line != 6 {
		t.Fatalf("bad rows %d, errors %+v", c.BadRows, c.Errs)
	}
}

func TestConverterSourceErrorIsNotARejection(t *testing.T) {
	broken := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(Header+"\nCNSGH,NOOSL,2024-01-01,1\n"), errReader{broken})
	c := NewConverter(r, 10, testRules, func() error { return broken })
	_, err := io.ReadAll(c)
	if !errors.Is(err, broken) {
		t.Fatalf("err = %v, want the source's error", err)
	}
}

// FuzzParseCSV feeds arbitrary bytes through the Converter: it must never panic, every COPY
// line it emits must be one the staging table accepts (line number, then four fields that
// are \N or plain values), and every report entry must be storable as jsonb.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(Header + "\nCNSGH,NOOSL,2024-01-01,100\n"))
	f.Add([]byte(Header + "\r\n\"CN\"\"SGH\",NOOSL,2024-02-30,0\r\n"))
	f.Add([]byte(Header + "\na,b\n\"unterminated\n"))
	f.Add([]byte("\uFEFF" + Header + "\nCNSGH,NOOSL,2024-01-01,99999999999\n"))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Open(bytes.NewReader(data), false, Limits{MaxBytes: 1 << 20, MaxLineBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		c := NewConverter(b, 5, testRules, b.SourceErr)
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var lines int64
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if line == "" {
				continue
			}
			lines++
			fields := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
			if len(fields) != 5 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("COPY line %q does not have 5 fields", line)
			}
			if n, err := strconv.ParseInt(fields[0], 10, 64); err != nil || n < 2 {
				t.Fatalf("COPY line %q: bad line number", line)
			}
			for i, v := range fields[1:] {
				if v == `\N` {
					continue
				}
				var reason string
				switch i {
				case 0, 1:
					if !domain.IsPortCode(v) {
						reason = "code"
					}
				case 2:
					reason = checkDay(v, testRules)
				case 3:
					var n int64
					n, reason = checkPrice(v)
					if strconv.FormatInt(n, 10) != v {
						reason = "not canonical"
					}
				}
				if reason != "" || strings.ContainsAny(v, "\\\t\n\r") {
					t.Fatalf("COPY line %q sends an invalid value %q", line, v)
				}
			}
		}
		if lines != c.Rows {
			t.Fatalf("%d COPY lines for %d rows", lines, c.Rows)
		}
		if c.BadRows > c.Rows || len(c.Errs) > 5 || (c.BadRows > 0 || c.Fatal) != (len(c.Errs) > 0) {
			t.Fatalf("rows %d, bad rows %d, fatal %t, errors %v", c.Rows, c.BadRows, c.Fatal, c.Errs)
		}
		for _, e := range c.Errs {
			if !utf8.ValidString(e.Reason) || strings.ContainsRune(e.Reason, 0) || e.Line < 1 {
				t.Fatalf("report entry %+v cannot be stored as jsonb", e)
			}
		}
	})
}

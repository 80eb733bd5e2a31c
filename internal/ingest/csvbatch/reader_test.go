package csvbatch

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// A batch that goes past a limit is rejected at the limit, as a whole, with the line or the
// setting named: whatever the input, the Converter holds no more than a record's worth.
func TestConverterLimits(t *testing.T) {
	row := "CNSGH,NOOSL,2024-01-01,100\n"
	for _, tc := range []struct {
		name     string
		in       string
		lim      Limits
		rows     int64
		tooLarge bool
		want     RowError
	}{
		{"one long field on line 3", Header + "\n" + row + "CNSGH,NOOSL,2024-01-01," + strings.Repeat("9", 5000) + "\n" + row,
			Limits{}, 1, false, RowError{Line: 3, Reason: "line 3 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"}},
		{"a long header", strings.Repeat("x", 5000) + "\n" + row,
			Limits{}, 0, false, RowError{Line: 1, Reason: "line 1 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"}},
		{"a quoted field over many short lines", Header + "\n" + row + "\"" + strings.Repeat("a\n", 3000) + "\",NOOSL,2024-01-01,1\n",
			Limits{}, 1, false, RowError{Line: 3, Reason: "line 3 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"}},
		{"a CR-only file past the limit of its lines", Header + "\r" + strings.Repeat("CNSGH,NOOSL,2024-01-01,100\r", 10) + strings.Repeat("1", 100) + "\r",
			Limits{MaxLineBytes: 64}, 10, false, RowError{Line: 12, Reason: "line 12 is longer than 64 bytes (INGEST_MAX_LINE_BYTES)"}},
		{"the line limit counts the line break", Header + "\n" + row,
			Limits{MaxLineBytes: len(Header)}, 0, false, RowError{Line: 1, Reason: "line 1 is longer than 29 bytes (INGEST_MAX_LINE_BYTES)"}},
		{"larger than the unpacked limit", Header + "\n" + strings.Repeat(row, 100),
			Limits{MaxBytes: 1000}, 35, true, RowError{Line: 0, Reason: "batch is larger than 1000 bytes decompressed (INGEST_MAX_UNPACKED_BYTES)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := convertWithin(t, tc.in, 5, tc.lim)
			if !c.Fatal || c.TooLarge != tc.tooLarge || c.Rows != tc.rows {
				t.Fatalf("fatal %t, too large %t, rows %d; want fatal, %t, %d", c.Fatal, c.TooLarge, c.Rows, tc.tooLarge, tc.rows)
			}
			if got := c.Errs[len(c.Errs)-1]; got != tc.want {
				t.Fatalf("last error %+v, want %+v", got, tc.want)
			}
		})
	}
	// Exactly at the limits: accepted.
	in := Header + "\n" + row
	if c, _ := convertWithin(t, in, 5, Limits{MaxBytes: int64(len(in)), MaxLineBytes: len(Header) + 1}); c.Fatal || c.Rows != 1 {
		t.Fatalf("a batch at its limits: fatal %t, errors %v", c.Fatal, c.Errs)
	}
}

// A gzip bomb (a line of zeros that unpacks to 1 GiB) ends at the line limit: the reader does
// not unpack it further, not even to checksum it, and memory stays at the record's bound.
func TestGzipBombStopsAtTheLimit(t *testing.T) {
	bomb := gzipBomb(t, 1<<30)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := Open(bytes.NewReader(bomb), true, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewConverter(b, 5, testRules, b.SourceErr)
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	if err := b.Drain(); err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if !c.Fatal || c.Errs[0] != (RowError{Line: 2, Reason: "line 2 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"}) {
		t.Fatalf("fatal %t, errors %v", c.Fatal, c.Errs)
	}
	if n := b.decodedBytes(); n > 1<<20 {
		t.Fatalf("unpacked %d bytes of the bomb, want at most a few buffers", n)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 8<<20 {
		t.Fatalf("reading the bomb allocated %d bytes", grown)
	}
	// The same with the unpacked limit below the line: rejected as too large.
	b, _ = Open(bytes.NewReader(bomb), true, Limits{MaxBytes: 1 << 20, MaxLineBytes: 2 << 20})
	c = NewConverter(b, 5, testRules, b.SourceErr)
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	if !c.TooLarge || b.decodedBytes() > 1<<20+1 {
		t.Fatalf("too large %t after %d bytes, errors %v", c.TooLarge, b.decodedBytes(), c.Errs)
	}
}

// Bytes after the gzip stream that are not another gzip member make the batch unreadable,
// whatever its rows, and so do a broken checksum or a truncated stream.
func TestGzipTrailingGarbageIsUnreadable(t *testing.T) {
	good := Header + "\nCNSGH,NOOSL,2024-01-01,100\n"
	z := gzipOf(t, good)
	for _, tc := range []struct {
		name, data, reason string
	}{
		{"trailing garbage", string(z) + "garbage", "cannot read the batch: the gzip data is followed by bytes that are not gzip"},
		{"trailing zeros", string(z) + "\x00\x00\x00\x00", "cannot read the batch: the gzip data is followed by bytes that are not gzip"},
		{"truncated", string(z[:len(z)-4]), "cannot read the batch: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := convert(t, tc.data, 5)
			if !c.Fatal || c.Errs[len(c.Errs)-1].Reason != tc.reason {
				t.Fatalf("fatal %t, errors %+v; want %q", c.Fatal, c.Errs, tc.reason)
			}
		})
	}
	// Two gzip members one after the other (pigz, cat a.gz b.gz) are one stream.
	two := string(gzipOf(t, good)) + string(gzipOf(t, "DEHAM,NOOSL,2024-01-02,200\n"))
	if c, _ := convert(t, two, 5); c.Fatal || c.Rows != 2 {
		t.Fatalf("two gzip members: rows %d, errors %v", c.Rows, c.Errs)
	}
}

// The rows' digest is the batch's identity: the same rows re-exported (leading zeros, CRLF or
// CR-only line breaks, no final line break, a BOM, quotes, gzip, another order) give the same
// digest, and any change to a row, or a row more or less, another.
func TestRowDigestIdentifiesRows(t *testing.T) {
	base := Header + "\nCNSGH,NOOSL,2024-01-01,100\nDEHAM,NOOSL,2024-01-02,200\nDEHAM,NOOSL,2024-01-02,200\n"
	digest := func(in string) string {
		t.Helper()
		c, _ := convert(t, in, 5)
		if c.Fatal || c.BadRows > 0 {
			t.Fatalf("%q: errors %v", in, c.Errs)
		}
		return c.Digest.String()
	}
	want := digest(base)
	for name, in := range map[string]string{
		"leading zeros":  Header + "\nCNSGH,NOOSL,2024-01-01,0100\nDEHAM,NOOSL,2024-01-02,00200\nDEHAM,NOOSL,2024-01-02,200\n",
		"CRLF, no final": "\uFEFF" + Header + "\r\nCNSGH,NOOSL,2024-01-01,100\r\nDEHAM,NOOSL,2024-01-02,200\r\nDEHAM,NOOSL,2024-01-02,200",
		"CR only":        Header + "\rCNSGH,NOOSL,2024-01-01,100\rDEHAM,NOOSL,2024-01-02,200\rDEHAM,NOOSL,2024-01-02,200\r",
		"quoted, blanks": Header + "\n\"CNSGH\",NOOSL,2024-01-01,100\n\nDEHAM,\"NOOSL\",2024-01-02,200\nDEHAM,NOOSL,2024-01-02,200\n",
		"other order":    Header + "\nDEHAM,NOOSL,2024-01-02,200\nCNSGH,NOOSL,2024-01-01,100\nDEHAM,NOOSL,2024-01-02,200\n",
		"gzip":           string(gzipOf(t, base)),
	} {
		if got := digest(in); got != want {
			t.Errorf("%s: digest %s, want %s", name, got, want)
		}
	}
	for name, in := range map[string]string{
		"a price":        strings.Replace(base, ",100", ",101", 1),
		"a day":          strings.Replace(base, "2024-01-01", "2024-01-03", 1),
		"a row less":     strings.TrimSuffix(base, "DEHAM,NOOSL,2024-01-02,200\n"),
		"a row more":     base + "DEHAM,NOOSL,2024-01-02,200\n",
		"codes swapped":  strings.Replace(base, "CNSGH,NOOSL", "NOOSL,CNSGH", 1),
		"fields shifted": strings.Replace(base, "CNSGH,NOOSL,2024-01-01,100", "CNSGH,NOOSL,2024-01-10,10", 1),
	} {
		if got := digest(in); got == want {
			t.Errorf("%s: same digest as the original", name)
		}
	}
}

// Digests of parts combine into the digest of the whole, in any order and any split.
func TestRowDigestCombinesParts(t *testing.T) {
	rows := make([][]byte, 500)
	var whole RowDigest
	for i := range rows {
		rows[i] = []byte(strings.Repeat("x", i%37) + string(rune('a'+i%26)) + "\n")
		whole.Add(rows[i])
	}
	for _, cuts := range [][]int{{0, 500}, {0, 1, 500}, {0, 250, 251, 499, 500}, {0, 7, 100, 333, 500}} {
		var parts []RowDigest
		for i := 0; i+1 < len(cuts); i++ {
			var p RowDigest
			for _, r := range rows[cuts[i]:cuts[i+1]] {
				p.Add(r)
			}
			parts = append(parts, p)
		}
		var combined RowDigest
		for i := len(parts) - 1; i >= 0; i-- { // in reverse: order does not matter
			combined.Combine(parts[i])
		}
		if combined.String() != whole.String() || combined.Rows() != whole.Rows() {
			t.Fatalf("parts cut at %v: %s (%d rows), want %s (%d rows)", cuts, combined, combined.Rows(), whole, whole.Rows())
		}
	}
	// The sum carries between words: many rows whose hashes overflow the low word still agree.
	var a, b RowDigest
	for i := range 10_000 {
		a.Add([]byte{byte(i), byte(i >> 8)})
	}
	for i := 9_999; i >= 0; i-- {
		b.Add([]byte{byte(i), byte(i >> 8)})
	}
	if a.String() != b.String() {
		t.Fatal("the digest depends on the order of the rows")
	}
}

func TestLimitErrorIsTyped(t *testing.T) {
	b, _ := Open(strings.NewReader(strings.Repeat("x", 100)), false, Limits{MaxLineBytes: 10})
	_, err := io.ReadAll(b)
	var limit *LimitError
	if !errors.As(err, &limit) || limit.Line != 1 || limit.TooLarge() {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkConvert reads a 100,000-row batch through the bounded reader and the Converter
// (parse, checks, canonical row, digest): the Go side of a load's copy phase.
func BenchmarkConvert(b *testing.B) {
	data := batchBytes(100_000, nil)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		in, err := Open(bytes.NewReader(data), false, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		c := NewConverter(in, 5, testRules, in.SourceErr)
		if _, err := io.Copy(io.Discard, c); err != nil || c.Rows != 100_000 || c.BadRows != 0 {
			b.Fatalf("rows %d, bad %d, %v", c.Rows, c.BadRows, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100_000), "ns/row")
}

// BenchmarkRowDigestAdd is the digest's share of that: one row's SHA-256 and 256-bit sum.
func BenchmarkRowDigestAdd(b *testing.B) {
	row := []byte("PT001\tPT002\t2024-01-01\t1234\n")
	var d RowDigest
	for b.Loop() {
		d.Add(row)
	}
}

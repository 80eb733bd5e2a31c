// Package batchtest supports tests and benchmarks of multi-part batches (internal/batchstore):
// it reads a CSV part into the rows and checks batchstore.StagePart takes, computes a batch's
// identity from its parts' digests, and writes batches of parts with their manifest.
//
// Its CSV reading is a stand-in for the service's parser (internal/ingest), with the same row
// checks (internal/domain, the default day window) and the same digest (csvbatch.RowDigest: the
// sum modulo 2^256 of the SHA-256 of each row's canonical form, the staging row without its line
// number, with the number of rows), so that the store is tested and measured on rows and costs
// like the real ones.
package batchtest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"rates/internal/batchstore"
	"rates/internal/copystream"
	"rates/internal/domain"
)

// Header is the first line of every part.
const Header = "orig_code,dest_code,day,price"

// Part reads one CSV part as batchstore.PartRows.
type Part struct {
	*copystream.Reader

	src     io.ReadCloser
	counted *countingHash
	csv     *csv.Reader
	header  bool
	buf     []byte
	res     batchstore.Checked
	codes   map[string]bool
	sum     [4]uint64
	maxErrs int
}

// NewPart reads the part from src, keeping at most maxErrors problems.
func NewPart(src io.ReadCloser, maxErrors int) *Part {
	p := &Part{src: src, counted: &countingHash{h: sha256.New()}, codes: map[string]bool{}, maxErrs: maxErrors}
	p.csv = csv.NewReader(io.TeeReader(src, p.counted))
	p.csv.FieldsPerRecord = -1
	p.csv.ReuseRecord = true
	p.Reader = copystream.NewReader(p.next)
	return p
}

// Checked reports what the checks found; the error is the source's, if reading it failed.
func (p *Part) Checked() (batchstore.Checked, error) {
	if err := p.Err(); err != nil {
		return batchstore.Checked{}, err
	}
	c := p.res
	c.SHA256, c.Bytes = hex.EncodeToString(p.counted.h.Sum(nil)), p.counted.n
	c.Digest = batchstore.Digest{Sum: sumBytes(p.sum), Rows: c.Rows}
	c.Codes = make([]string, 0, len(p.codes))
	for code := range p.codes {
		c.Codes = append(c.Codes, code)
	}
	slices.Sort(c.Codes)
	return c, nil
}

// Close closes the source.
func (p *Part) Close() error { return p.src.Close() }

func (p *Part) bad(pr batchstore.Problem) {
	if len(p.res.Problems) < p.maxErrs {
		p.res.Problems = append(p.res.Problems, pr)
	}
}

// next returns the COPY text of the next row.
func (p *Part) next() ([]byte, error) {
	rec, err := p.csv.Read()
	if errors.Is(err, io.EOF) {
		if !p.header {
			p.bad(batchstore.Problem{Line: 1, Reason: "part is empty: expected the header " + Header})
			p.res.Unreadable = true
		}
		return nil, io.EOF
	}
	var perr *csv.ParseError
	if err != nil && !errors.As(err, &perr) {
		return nil, err
	}
	line, _ := p.csv.FieldPos(0)
	if err != nil {
		line = perr.StartLine
		rec = nil
	}
	if !p.header {
		p.header = true
		if !slices.Equal(rec, []string{"orig_code", "dest_code", "day", "price"}) {
			p.bad(batchstore.Problem{Line: int64(line), Reason: "header must be " + Header})
			p.res.Unreadable = true
			return nil, io.EOF
		}
		return nil, nil
	}
	p.res.Rows++
	return p.row(int64(line), rec), nil
}

// row checks one record and returns its staging row: the line number, then the canonical row
// the digest counts (a field that fails is \N, so that SQL counts the row bad too).
func (p *Part) row(line int64, rec []string) []byte {
	p.buf = append(strconv.AppendInt(p.buf[:0], line, 10), '\t')
	start := len(p.buf)
	if len(rec) != 4 {
		p.res.BadRows++
		p.bad(batchstore.Problem{Line: line, Reason: fmt.Sprintf("expected 4 fields, got %d", len(rec))})
		p.buf = append(p.buf, "\\N\t\\N\t\\N\t\\N\n"...)
		h := sha256.Sum256(p.buf[start:])
		addWords(&p.sum, h[:])
		return p.buf
	}
	var reasons [4]string
	for i := range rec {
		reasons[i] = check(i, rec[i])
	}
	if reasons[0] == "" && reasons[1] == "" && !domain.DistinctRoute(rec[0], rec[1]) {
		reasons[1] = strconv.Quote(rec[1]) + " is also the origin"
	}
	ok := true
	for i, col := range []string{"orig_code", "dest_code", "day", "price"} {
		if i > 0 {
			p.buf = append(p.buf, '\t')
		}
		if reasons[i] != "" {
			ok = false
			p.bad(batchstore.Problem{Line: line, Column: col, Reason: reasons[i]})
			p.buf = append(p.buf, `\N`...)
			continue
		}
		if i < 2 {
			p.codes[rec[i]] = true
		}
		p.buf = append(p.buf, rec[i]...)
	}
	if !ok {
		p.res.BadRows++
	}
	p.buf = append(p.buf, '\n')
	h := sha256.Sum256(p.buf[start:])
	addWords(&p.sum, h[:])
	return p.buf
}

func check(field int, v string) string {
	switch field {
	case 0, 1:
		if !domain.IsPortCode(v) {
			return strconv.Quote(v) + " is not a port code"
		}
	case 2:
		day, err := domain.ParseDay(v)
		if err != nil || len(v) != 10 {
			return strconv.Quote(v) + " is not a date in YYYY-MM-DD form"
		}
		if err := domain.DefaultDayWindow.Check(day, time.Now()); err != nil {
			return strconv.Quote(v) + ": " + err.Error()
		}
	case 3:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || !domain.ValidPrice(n) || strconv.FormatInt(n, 10) != v {
			return strconv.Quote(v) + " is not a valid price"
		}
	}
	return ""
}

// Identity is batchstore.Options.Identity for the digests Part computes: the SHA-256 of a tag,
// the sum of the parts' sums and the number of rows.
func Identity(parts []batchstore.Digest) string {
	var sum [4]uint64
	var rows int64
	for _, d := range parts {
		addWords(&sum, d.Sum)
		rows += d.Rows
	}
	b := append([]byte("rates.rows.v1"), sumBytes(sum)...)
	b = binary.BigEndian.AppendUint64(b, uint64(rows)) //nolint:gosec // G115: a count of rows is never negative
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func addWords(sum *[4]uint64, h []byte) {
	var carry uint64
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i], carry = bits.Add64(sum[i], binary.BigEndian.Uint64(h[i*8:]), carry)
	}
}

func sumBytes(sum [4]uint64) []byte {
	b := make([]byte, 0, 32)
	for _, w := range sum {
		b = binary.BigEndian.AppendUint64(b, w)
	}
	return b
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

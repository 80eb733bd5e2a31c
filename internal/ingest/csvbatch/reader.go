// Package csvbatch reads a price batch: the bounded reader (gzip or plain, within the byte and
// line limits, with the SHA-256 of the raw bytes), the converter that checks each row and turns
// it into COPY text for the staging table, and the row digest that identifies a batch by its
// content. It holds no database code: internal/ingest loads what it reads.
package csvbatch

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"rates/internal/config"
)

// Limits bound what one batch may make a process read and hold, whatever its bytes: the
// decompressed content, and one CSV record (a line, or the lines of a quoted field). The CSV
// reader holds at most one record, so a batch's memory follows these settings, not its input.
type Limits struct {
	// MaxBytes bounds the decompressed content; 0 means config.DefaultMaxUnpackedBytes.
	MaxBytes int64
	// MaxLineBytes bounds one record, its line break included; 0 means config.DefaultMaxLineBytes.
	MaxLineBytes int
}

// OrDefaults is l with the defaults in place of zeros.
func (l Limits) OrDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = config.DefaultMaxUnpackedBytes
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = config.DefaultMaxLineBytes
	}
	return l
}

// LimitError is a batch that went past one of its Limits: it is rejected, as a whole.
type LimitError struct {
	// Line is the line where the record that is too long starts; 0 when the whole content is
	// too large.
	Line  int64
	Limit int64
}

func (e *LimitError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("batch is larger than %d bytes decompressed (INGEST_MAX_UNPACKED_BYTES)", e.Limit)
	}
	return fmt.Sprintf("line %d is longer than %d bytes (INGEST_MAX_LINE_BYTES)", e.Line, e.Limit)
}

// TooLarge reports that the whole content was too large, rather than one line.
func (e *LimitError) TooLarge() bool { return e.Line == 0 }

// csvState follows encoding/csv's reading of quotes (Comma ',', no LazyQuotes), so that the
// batch reader knows where a record ends exactly as the CSV reader will: a quoted field may
// span lines, and only there does the CSV reader hold more than one line.
type csvState uint8

const (
	fieldStart csvState = iota // at the start of a field
	unquoted                   // in a field that did not start with a quote
	quoted                     // in a quoted field
	quoteSeen                  // a quote in a quoted field: its end, or the first of ""
	skipLine                   // after a quote error: the CSV reader drops the rest of the line
)

// Reader is the one reader of every batch's content, whatever its entry point (a file, an
// upload, an S3 object, a part of a multi-part batch). It decompresses, hashes the decompressed
// bytes as they came (the batch's byte checksum), and hands the CSV reader text it can hold:
// the content ends with a *LimitError past Limits.MaxBytes, and at the first record longer than
// Limits.MaxLineBytes. A line break of a lone CR (old Mac and Excel "CSV (Macintosh)" exports)
// is handed on as LF, so such a file reads as the lines it holds.
type Reader struct {
	raw     *sourceReader // the bytes as delivered, counted, with the source's first error
	dec     *bufio.Reader // over the decompressed bytes, counted and hashed (decodedReader)
	sha     hash.Hash
	decoded *decodedReader
	lim     Limits

	state    csvState
	line     int64 // of the byte being read, from 1
	recStart int64 // line the current record starts on
	recLen   int   // bytes of the current record so far
	err      error // sticky: a *LimitError, or the decoded stream's own
}

// Open opens a batch's content (see Reader). A source error is returned; a data
// problem (not gzip though declared so, a broken gzip stream) comes back from Read, so that it
// ends up in the batch's report.
func Open(r io.Reader, declaredGzip bool, lim Limits) (*Reader, error) {
	lim = lim.OrDefaults()
	raw := &sourceReader{r: r}
	decoded, err := decode(raw, declaredGzip)
	if err != nil {
		return nil, err
	}
	b := &Reader{raw: raw, sha: sha256.New(), lim: lim, line: 1, recStart: 1}
	b.decoded = &decodedReader{r: decoded, h: b.sha, max: lim.MaxBytes}
	b.dec = bufio.NewReaderSize(b.decoded, 64<<10)
	return b, nil
}

func (b *Reader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.dec.Read(p)
	for i := range n {
		c := p[i]
		if c == '\r' && b.loneCR(p[i+1:n]) {
			c, p[i] = '\n', '\n'
		}
		b.recLen++
		if b.recLen > b.lim.MaxLineBytes {
			b.err = &LimitError{Line: b.recStart, Limit: int64(b.lim.MaxLineBytes)}
			if i == 0 {
				return 0, b.err
			}
			return i, nil
		}
		b.step(c)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

// loneCR tells whether a CR, followed in this read by rest, is a line break of its own rather
// than the first half of CRLF (which the CSV reader handles).
func (b *Reader) loneCR(rest []byte) bool {
	if len(rest) > 0 {
		return rest[0] != '\n'
	}
	next, _ := b.dec.Peek(1) // an error comes back from the next Read
	return len(next) == 0 || next[0] != '\n'
}

// step moves the quote state over c and ends the record at a line break outside quotes.
func (b *Reader) step(c byte) {
	if c == '\n' {
		b.line++
	}
	switch b.state {
	case fieldStart, unquoted:
		switch {
		case c == '"' && b.state == fieldStart:
			b.state = quoted
		case c == '"':
			b.state = skipLine // a bare quote
		case c == ',':
			b.state = fieldStart
		case c == '\n':
			b.endRecord()
		default:
			b.state = unquoted
		}
	case quoted:
		if c == '"' {
			b.state = quoteSeen
		}
	case quoteSeen:
		switch c {
		case '"':
			b.state = quoted
		case ',':
			b.state = fieldStart
		case '\n':
			b.endRecord()
		default:
			b.state = skipLine
		}
	case skipLine:
		if c == '\n' {
			b.endRecord()
		}
	}
}

func (b *Reader) endRecord() {
	b.state, b.recStart, b.recLen = fieldStart, b.line, 0
}

// Sum is the hex SHA-256 of the decompressed bytes read so far.
func (b *Reader) Sum() string { return hex.EncodeToString(b.sha.Sum(nil)) }

// decodedBytes counts the decompressed bytes read.
func (b *Reader) decodedBytes() int64 { return b.decoded.n }

// RawBytes counts the bytes read as delivered.
func (b *Reader) RawBytes() int64 { return b.raw.bytes }

// SourceErr is the source's first error, other than EOF.
func (b *Reader) SourceErr() error { return b.raw.Err() }

// Drain reads what the checks left (nothing, unless they stopped early), so that the checksum
// covers the whole content, then the rest of the delivered bytes, which counts them. Content
// past a limit is not read: a gzip bomb is not unpacked to count it. Content undecodable past
// the point where the checks stopped is no error: the checksum covers what was read. The error
// returned is the source's.
func (b *Reader) Drain() error {
	if _, err := io.Copy(io.Discard, b); err != nil {
		if srcErr := b.raw.Err(); srcErr != nil {
			return srcErr
		}
		var limit *LimitError
		if errors.As(err, &limit) {
			return nil
		}
	}
	_, err := io.Copy(io.Discard, b.raw)
	return err
}

// decodedReader counts and hashes the decompressed bytes, and fails past max of them.
type decodedReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (d *decodedReader) Read(p []byte) (int, error) {
	if d.n > d.max {
		return 0, &LimitError{Limit: d.max}
	}
	if room := d.max + 1 - d.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	d.h.Write(p[:n])
	if d.n > d.max {
		return n, &LimitError{Limit: d.max}
	}
	return n, err
}

// gzipStream reads gzip members one after the other (pigz, cat a.gz b.gz) and fails on bytes
// after the last member that do not start another one: trailing garbage makes the batch
// unreadable, rather than be ignored when the rows before it were read.
type gzipStream struct {
	zr *gzip.Reader // with Multistream off: io.EOF at the end of each member
	br *bufio.Reader
}

func newGzipStream(br *bufio.Reader) (*gzipStream, error) {
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return &gzipStream{zr: zr, br: br}, nil
}

var errGzipTrailer = errors.New("the gzip data is followed by bytes that are not gzip")

func (g *gzipStream) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if !errors.Is(err, io.EOF) {
			return n, err
		}
		if _, err := g.br.Peek(1); err != nil {
			return n, err // io.EOF: the end of the last member
		}
		if err := g.zr.Reset(g.br); err != nil {
			return n, errGzipTrailer
		}
		g.zr.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}

// sourceReader counts the raw bytes and remembers the first read error. COPY reads
// it from another goroutine, which may still be blocked in Read when a failed COPY returns,
// hence the lock around err.
type sourceReader struct {
	r     io.Reader
	bytes int64

	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.bytes += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

// Err returns the first error the source returned, other than EOF.
func (s *sourceReader) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// errReader hands a decoding problem to the converter, which reports it as a rejection.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// decode returns the batch's CSV text: the bytes as they are, or gunzipped when they start
// with the gzip magic bytes. A source error is returned; a data problem comes back as a reader
// that fails, so it ends up in the batch's report.
func decode(src *sourceReader, declaredGzip bool) (io.Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := newGzipStream(br)
		if err != nil {
			if srcErr := src.Err(); srcErr != nil {
				return nil, srcErr
			}
			return errReader{err}, nil
		}
		return zr, nil
	}
	if declaredGzip {
		return errReader{errors.New("declared gzip-encoded, but the data is not gzip")}, nil
	}
	return br, nil
}

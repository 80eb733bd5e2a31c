package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/ingest/csvbatch"
)

// A multi-part batch is a manifest naming parts, each a price CSV with the usual header, and
// the SHA-256 of each part's decompressed bytes. It is one batch: validated part by part
// before its transaction, then loaded in one transaction with one commit, all or nothing,
// like a single file holding the header once and every part's rows in the manifest's order.
// That single file is also its identity: the same rows sent again as one file, or as another
// manifest, are a duplicate.

// Manifest is the JSON document of a multi-part batch.
type Manifest struct {
	// Mode is how the batch is applied (append when empty).
	Mode  Mode           `json:"mode,omitempty"`
	Parts []ManifestPart `json:"parts"`
}

// ManifestPart is one part: where it is (an S3 key, or a path relative to the manifest's
// folder) and the SHA-256 of its decompressed content.
type ManifestPart struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

// MaxManifestParts bounds the parts of one batch, and MaxManifestBytes its manifest.
const (
	MaxManifestParts = 10_000
	MaxManifestBytes = 4 << 20
)

// ParseManifest reads and checks a manifest: known fields only, 1 to MaxManifestParts parts,
// each with a key and a lowercase hex SHA-256, no key twice.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	if len(data) > MaxManifestBytes {
		return m, fmt.Errorf("manifest is %d bytes, more than %d", len(data), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest is not valid JSON of the form {\"mode\": ..., \"parts\": [{\"key\": ..., \"sha256\": ...}]}: %w", err)
	}
	if dec.More() {
		return Manifest{}, errors.New("manifest has data after its JSON object")
	}
	mode, err := ParseMode(string(m.Mode))
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	m.Mode = mode
	switch {
	case len(m.Parts) == 0:
		return Manifest{}, errors.New("manifest lists no parts")
	case len(m.Parts) > MaxManifestParts:
		return Manifest{}, fmt.Errorf("manifest lists %d parts, more than %d", len(m.Parts), MaxManifestParts)
	}
	seen := make(map[string]int, len(m.Parts))
	for i, p := range m.Parts {
		switch {
		case p.Key == "" || len(p.Key) > maxKeyLength:
			return Manifest{}, fmt.Errorf("manifest part %d: key must have 1 to %d characters", i+1, maxKeyLength)
		case !isSHA256Hex(p.SHA256):
			return Manifest{}, fmt.Errorf("manifest part %d (%s): sha256 must be 64 lowercase hex digits, got %s", i+1, csvbatch.Quote(p.Key), csvbatch.Quote(p.SHA256))
		}
		if j, ok := seen[p.Key]; ok {
			return Manifest{}, fmt.Errorf("manifest parts %d and %d are both %s", j+1, i+1, csvbatch.Quote(p.Key))
		}
		seen[p.Key] = i
	}
	return m, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Parts is where a manifest's parts are read from.
type Parts struct {
	// Open opens a part by the key the manifest gives.
	Open func(ctx context.Context, key string) (io.ReadCloser, error)
	// Allow, when set, refuses a key the manifest may not name, with the reason.
	Allow func(key string) error
}

// LoadManifest loads the multi-part batch whose manifest is data, delivered as src, as one
// batch; the manifest's mode applies, whatever src says. A manifest that cannot be parsed, or
// names a part that parts does not allow, rejects the batch. Otherwise every part is read and
// checked outside any transaction: its checksum against the manifest, its rows as a single
// batch's would be, its port codes against ports. A part that fails rejects the whole batch,
// recorded with a report that names the part and its lines, and nothing is written. Then the
// parts are read again, in order, into one Load: a part whose content changed in between fails
// the load (a *SourceError; nothing written) and the next attempt rejects it. The loader's
// deadline covers both passes.
func (l *Loader) LoadManifest(ctx context.Context, src Source, data []byte, parts Parts) (Result, error) {
	// The manifest gives the mode; one that cannot be read is recorded as an append.
	src.Data, src.Mode = DataPrices, ModeAppend
	res := Result{Source: src, StartedAt: time.Now(), Bytes: int64(len(data))}
	sum := sha256.Sum256(data)
	res.SHA256 = hex.EncodeToString(sum[:])
	if err := src.validate(); err != nil {
		return res, fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.maxDuration)
	defer cancel()

	m, err := ParseManifest(data)
	if err == nil && parts.Allow != nil {
		for _, p := range m.Parts {
			if err = parts.Allow(p.Key); err != nil {
				err = fmt.Errorf("manifest part %s: %w", csvbatch.Quote(p.Key), err)
				break
			}
		}
	}
	var report *Report
	if err != nil {
		report = &Report{BadRows: 0, Errors: []csvbatch.RowError{{Reason: err.Error()}}}
	} else {
		src.Mode, res.Source.Mode = m.Mode, m.Mode
		if report, res.Rows, err = l.checkParts(ctx, m, parts.Open); err != nil {
			err = fmt.Errorf("load batch %s: %w", src.Name, err)
			if l.observe != nil {
				l.observe(res, err)
			}
			return res, err
		}
	}
	if report != nil {
		res.Status, res.Report = StatusRejected, report
		res, err = l.recordRejected(ctx, src, res)
		if err != nil {
			err = fmt.Errorf("load batch %s: %w", src.Name, err)
		}
		if l.observe != nil {
			l.observe(res, err)
		}
		return res, err
	}
	pr := &partsReader{ctx: ctx, parts: m.Parts, open: parts.Open, lim: l.limits}
	defer pr.Close()
	return l.Load(ctx, src, pr)
}

// checkParts reads every part once and returns the report of the first problems, or nil when
// all parts are sound. rows counts the data rows read.
func (l *Loader) checkParts(ctx context.Context, m Manifest, open func(context.Context, string) (io.ReadCloser, error)) (*Report, int64, error) {
	known, err := l.portCodes(ctx)
	if err != nil {
		return nil, 0, err
	}
	report := &Report{}
	var rows int64
	for _, p := range m.Parts {
		conv, sum, err := l.checkPart(ctx, p, open, known)
		if err != nil {
			return nil, 0, err
		}
		rows += conv.Rows
		errs := conv.Errs
		if sum != p.SHA256 {
			errs = append([]csvbatch.RowError{{Reason: fmt.Sprintf("part content has sha256 %s, the manifest says %s", sum, p.SHA256)}}, errs...)
		}
		// A part that cannot be read as rows (a wrong header) adds no bad row, as a single
		// batch in the same state reports none: its error says why.
		report.BadRows += conv.BadRows
		for _, e := range errs {
			if len(report.Errors) < l.maxErrors {
				e.Part = p.Key
				report.Errors = append(report.Errors, e)
			}
		}
	}
	if len(report.Errors) == 0 {
		return nil, rows, nil
	}
	return report, rows, nil
}

// checkPart reads one part through the batch checks and returns them with the SHA-256 of its
// decompressed bytes.
func (l *Loader) checkPart(ctx context.Context, p ManifestPart, open func(context.Context, string) (io.ReadCloser, error), known map[string]struct{}) (*csvbatch.Converter, string, error) {
	rc, err := open(ctx, p.Key)
	if err != nil {
		return nil, "", &SourceError{Err: fmt.Errorf("open part %s: %w", p.Key, err)}
	}
	defer rc.Close()
	in, err := csvbatch.Open(rc, false, l.limits)
	if err != nil {
		return nil, "", &SourceError{Err: fmt.Errorf("read part %s: %w", p.Key, err)}
	}
	conv := csvbatch.NewConverter(in, l.maxErrors, l.rules(), in.SourceErr)
	conv.Known = known
	if _, err := io.Copy(io.Discard, conv); err != nil {
		return nil, "", &SourceError{Err: fmt.Errorf("read part %s: %w", p.Key, err)}
	}
	if err := in.Drain(); err != nil {
		return nil, "", &SourceError{Err: fmt.Errorf("read part %s: %w", p.Key, err)}
	}
	return conv, in.Sum(), nil
}

// portCodes returns every port code: few enough to hold (thousands), and what lets the parts
// be checked before the transaction.
func (l *Loader) portCodes(ctx context.Context) (map[string]struct{}, error) {
	rows, err := l.pool.Query(ctx, "SELECT code FROM ports")
	if err != nil {
		return nil, fmt.Errorf("read port codes: %w", err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read port codes: %w", err)
	}
	known := make(map[string]struct{}, len(codes))
	for _, c := range codes {
		known[c] = struct{}{}
	}
	return known, nil
}

// recordRejected records res, a batch rejected before its load, unless its delivery was
// recorded already; then it returns that record, as Load does.
func (l *Loader) recordRejected(ctx context.Context, src Source, res Result) (Result, error) {
	err := l.inTx(ctx, func(_ *pgxpool.Conn, tx pgx.Tx) error {
		first, ok, err := lockDelivery(ctx, tx, src)
		if err != nil {
			return err
		}
		if ok {
			res = first
			return nil
		}
		res, err = l.commitRejected(ctx, tx, src, res, map[string]int64{})
		return err
	})
	return res, err
}

// partsReader reads the parts one after the other as one batch: the first part whole, the
// others without their header line, each ending with a line break. Each part's checksum is
// checked again as it ends, so a part replaced since the checks fails the load.
type partsReader struct {
	ctx   context.Context
	parts []ManifestPart
	open  func(context.Context, string) (io.ReadCloser, error)

	lim  csvbatch.Limits
	i    int // part being read
	cur  io.ReadCloser
	br   *bufio.Reader
	in   *csvbatch.Reader
	last byte // last byte of the current part, to add a missing line break
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if r.i == len(r.parts) {
				return 0, io.EOF
			}
			if err := r.openPart(); err != nil {
				return 0, err
			}
		}
		n, err := r.br.Read(p)
		if n > 0 {
			r.last = p[n-1]
			return n, nil
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			if srcErr := r.in.SourceErr(); srcErr != nil {
				err = srcErr
			}
			return 0, fmt.Errorf("read part %s: %w", r.parts[r.i].Key, err)
		}
		if err := r.endPart(); err != nil {
			return 0, err
		}
		if r.last != '\n' && r.last != 0 {
			r.last = '\n'
			p[0] = '\n'
			return 1, nil
		}
	}
}

func (r *partsReader) openPart() error {
	key := r.parts[r.i].Key
	rc, err := r.open(r.ctx, key)
	if err != nil {
		return fmt.Errorf("open part %s: %w", key, err)
	}
	r.cur, r.last = rc, 0
	if r.in, err = csvbatch.Open(rc, false, r.lim); err != nil {
		return fmt.Errorf("read part %s: %w", key, err)
	}
	r.br = bufio.NewReaderSize(r.in, 64<<10)
	if r.i > 0 {
		// The header was checked with the part; the batch has it once, from the first part.
		if _, err := r.br.ReadSlice('\n'); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read part %s: %w", key, err)
		}
	}
	return nil
}

func (r *partsReader) endPart() error {
	p := r.parts[r.i]
	sum := r.in.Sum()
	_ = r.cur.Close()
	r.cur = nil
	r.i++
	if sum != p.SHA256 {
		return fmt.Errorf("part %s changed since it was checked: sha256 %s, the manifest says %s", p.Key, sum, p.SHA256)
	}
	return nil
}

// Close releases the part being read, if any.
func (r *partsReader) Close() error {
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		return err
	}
	return nil
}

// FileParts reads parts as paths relative to dir (absolute paths as they are): the parts of a
// manifest on disk, beside it.
func FileParts(dir string) Parts {
	return Parts{Open: func(_ context.Context, key string) (io.ReadCloser, error) {
		path := key
		if !filepath.IsAbs(key) {
			path = filepath.Join(dir, key)
		}
		return os.Open(path) //nolint:gosec // G304: the operator's manifest names the files to load
	}}
}

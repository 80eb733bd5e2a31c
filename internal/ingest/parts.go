package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"rates/internal/batchstore"
	"rates/internal/ingest/csvbatch"
)

// Multi-part batches staged side by side (internal/batchstore does their SQL): a manifest is
// registered, each part is read through the same reader, parser and row digest as a single
// batch and staged in a transaction of its own by any loader, and once every part is staged
// one short transaction publishes the batch.

// CombineDigests is the identity of a batch staged in parts (batchstore.Options.Identity): the
// RowDigest of all its rows, from its parts' digests. A part's sum that is not 32 bytes gives
// "", which the store refuses.
func CombineDigests(parts []batchstore.Digest) string {
	var d csvbatch.RowDigest
	for _, p := range parts {
		if len(p.Sum) != 32 {
			return ""
		}
		d.AddSum(p.Sum, p.Rows)
	}
	return d.String()
}

// partRows reads one part for batchstore.StagePart: the COPY text of its rows, then what the
// checks found.
type partRows struct {
	*csvbatch.Converter
	in  *csvbatch.Reader
	src io.Closer
}

// openPart returns the function batchstore.StagePart opens a part with, reading it through open.
func (l *Loader) openPart(open func(ctx context.Context, key string) (io.ReadCloser, error)) func(context.Context, string) (batchstore.PartRows, error) {
	return func(ctx context.Context, key string) (batchstore.PartRows, error) {
		rc, err := open(ctx, key)
		if err != nil {
			return nil, err
		}
		in, err := csvbatch.Open(rc, false, l.limits)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &partRows{Converter: csvbatch.NewConverter(in, l.maxErrors, l.rules(), in.SourceErr), in: in, src: rc}, nil
	}
}

// Checked reports what the checks found once the rows are read; an error is the source's.
func (p *partRows) Checked() (batchstore.Checked, error) {
	if err := p.in.SourceErr(); err != nil {
		return batchstore.Checked{}, err
	}
	if err := p.in.Drain(); err != nil {
		return batchstore.Checked{}, err
	}
	c := batchstore.Checked{Rows: p.Rows, BadRows: p.BadRows, Unreadable: p.Fatal, Codes: p.DistinctCodes(),
		Digest: batchstore.Digest{Sum: p.Digest.SumBytes(), Rows: p.Digest.Rows()}, SHA256: p.in.Sum(), Bytes: p.in.RawBytes()}
	for _, e := range p.Errs {
		c.Problems = append(c.Problems, batchstore.Problem{Line: e.Line, Column: e.Column, Reason: e.Reason})
	}
	return c, nil
}

// Close closes the part's source.
func (p *partRows) Close() error { return p.src.Close() }

// storeManifest is m, delivered as src with the bytes data, as the store registers it.
func storeManifest(src Source, data []byte, m Manifest) batchstore.Manifest {
	sum := sha256.Sum256(data)
	out := batchstore.Manifest{SourceKey: src.Key, SourceKind: string(src.Channel), SourceName: src.Name, Mode: string(m.Mode),
		SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data)), ReceivedAt: src.ReceivedAt}
	for _, p := range m.Parts {
		out.Parts = append(out.Parts, batchstore.PartSpec{Key: p.Key, SHA256: p.SHA256})
	}
	return out
}

// checkManifest parses the manifest data and checks every part's key with allow, when set: a
// manifest that cannot be read, or names a part it may not, gives the report of its rejection.
func checkManifest(data []byte, allow func(key string) error) (Manifest, *Report) {
	m, err := ParseManifest(data)
	if err == nil && allow != nil {
		for _, p := range m.Parts {
			if err = allow(p.Key); err != nil {
				err = fmt.Errorf("manifest part %s: %w", csvbatch.Quote(p.Key), err)
				break
			}
		}
	}
	if err != nil {
		return m, &Report{Errors: []csvbatch.RowError{{Reason: err.Error()}}}
	}
	return m, nil
}

// RegisterManifest records the multi-part batch whose manifest is data, delivered as src, as
// staging with every part pending, and returns it with StatusStaging and its parts' keys in
// order; a delivery or a rerun of the same manifest file finds the batch it registered
// (Replayed), whatever its status now. A manifest that cannot be read, or names a part allow
// refuses, is recorded rejected, with its report.
func (l *Loader) RegisterManifest(ctx context.Context, src Source, data []byte, allow func(key string) error) (Result, error) {
	src.Data, src.Mode = DataPrices, ModeAppend
	res := Result{Source: src, StartedAt: time.Now(), Bytes: int64(len(data))}
	sum := sha256.Sum256(data)
	res.SHA256 = hex.EncodeToString(sum[:])
	if err := src.validate(); err != nil {
		return res, fmt.Errorf("register batch %s: %w", src.Name, err)
	}
	m, report := checkManifest(data, allow)
	if report != nil {
		res.Status, res.Report = StatusRejected, report
		res, err := l.recordRejected(ctx, src, res)
		if err != nil {
			return res, fmt.Errorf("register batch %s: %w", src.Name, err)
		}
		l.observeBatch(res, nil)
		return res, nil
	}
	res.Source.Mode = m.Mode
	reg, err := l.parts.Register(ctx, storeManifest(src, data, m))
	if err != nil {
		return res, err
	}
	res.BatchID, res.RecordID, res.Status, res.Replayed = reg.BatchID, reg.BatchID, Status(reg.Status), reg.Resumed
	l.log.Info("multi-part batch registered", "source", src.Name, "key", src.Key, "batch_id", reg.BatchID,
		"status", reg.Status, "resumed", reg.Resumed, "parts", len(m.Parts))
	return res, nil
}

// StagePart settles part (from 1) of the staging batch batchID (batchstore.StagePart), reading
// it by its key through open with the limits, parser and row digest of a single batch.
func (l *Loader) StagePart(ctx context.Context, batchID int64, part int, open func(ctx context.Context, key string) (io.ReadCloser, error)) (batchstore.PartResult, error) {
	res, err := l.parts.StagePart(ctx, batchID, part, l.openPart(open))
	if err != nil {
		return res, err
	}
	l.partSettled(batchID, part, res)
	return res, nil
}

// partSettled observes and logs what StagePart did.
func (l *Loader) partSettled(batchID int64, part int, res batchstore.PartResult) {
	switch res.Outcome {
	case batchstore.PartStaged, batchstore.PartChecked, batchstore.PartBad:
		l.metrics.PartSettled(string(res.Outcome))
		l.log.Info("part settled", "batch_id", batchID, "part", part, "outcome", res.Outcome, "rows", res.Rows,
			"route_days", res.RouteDays, "pending", res.Pending, "bad", res.Bad, "batch_status", res.BatchStatus,
			"copy_ms", res.Timings["copy_ms"], "check_ms", res.Timings["check_ms"], "insert_ms", res.Timings["insert_ms"],
			"daily_ms", res.Timings["daily_ms"])
		if res.BatchStatus == batchstore.StatusRejected {
			l.observeBatch(Result{BatchID: batchID, Status: StatusRejected}, nil)
		}
	default:
		l.log.Info("part not settled here", "batch_id", batchID, "part", part, "outcome", res.Outcome, "batch_status", res.BatchStatus)
	}
}

// Ready tells whether StagePart's res leaves the batch to be published: staging, every part
// staged.
func Ready(res batchstore.PartResult) bool {
	return res.BatchStatus == batchstore.StatusStaging && res.Pending == 0 && res.Bad == 0
}

// Publish publishes the staged batch batchID (batchstore.Publish) and observes the outcome.
func (l *Loader) Publish(ctx context.Context, batchID int64) (batchstore.Published, error) {
	pub, err := l.parts.Publish(ctx, batchID)
	var notReady *batchstore.NotReadyError
	switch {
	case errors.As(err, &notReady):
		return pub, err
	case err != nil:
		l.metrics.Published("failed", 0, 0)
		return pub, err
	case pub.Already:
		return pub, nil
	}
	l.metrics.Published(string(pub.Status), pub.Duration, pub.PriceDailyHeld)
	info, err := l.Batch(ctx, batchID)
	if err == nil {
		l.observeBatch(Result{BatchID: batchID, Status: Status(pub.Status), Rows: pub.Rows, Bytes: info.Bytes,
			Duration: time.Duration(info.DurationMS) * time.Millisecond}, nil)
		if pub.Status == batchstore.StatusLoaded && info.ReceivedAt != nil {
			l.metrics.IngestLag(time.Since(*info.ReceivedAt))
		}
	}
	l.log.Info("multi-part batch published", "batch_id", batchID, "status", pub.Status, "duplicate_of", pub.DuplicateOf,
		"rows", pub.Rows, "route_days", pub.RouteDays, "displaced_rows", pub.DisplacedRows, "rows_digest", pub.RowsDigest,
		"publish_ms", pub.Duration.Milliseconds(), "price_daily_held_ms", pub.PriceDailyHeld.Milliseconds(), "recounted", pub.Recounted)
	return pub, nil
}

// Sweep ends the batches past their deadline (batchstore.Sweep) and records the age of the
// oldest batch still staging (rates_ingest_staged_batch_age_seconds).
func (l *Loader) Sweep(ctx context.Context) ([]batchstore.Ended, error) {
	ended, err := l.parts.Sweep(ctx)
	for _, e := range ended {
		l.log.Warn("multi-part batch failed: past its deadline (INGEST_MAX_BATCH_DURATION)", "batch_id", e.BatchID,
			"status", e.Status, "removed_rows", e.RemovedRows)
		l.observeBatch(Result{BatchID: e.BatchID, Status: StatusFailed}, nil)
	}
	if err != nil {
		return ended, err
	}
	age, err := l.parts.OldestStaging(ctx)
	if err != nil {
		return ended, err
	}
	l.metrics.StagedBatchAge(age)
	return ended, nil
}

// observeBatch tells the loader's observer of a batch's outcome.
func (l *Loader) observeBatch(res Result, err error) {
	if l.observe != nil {
		l.observe(res, err)
	}
}

// PartReport is the report of an ended multi-part batch, in the form of a single batch's.
func PartReport(r *batchstore.Report) *Report {
	if r == nil {
		return nil
	}
	out := &Report{BadRows: r.BadRows, Errors: make([]csvbatch.RowError, 0, len(r.Problems))}
	for _, p := range r.Problems {
		out.Errors = append(out.Errors, csvbatch.RowError(p))
	}
	return out
}

// Staged is the outcome of StageManifest.
type Staged struct {
	Result
	RouteDays int64
	// Resumed says the batch was registered by an earlier run of the same manifest, killed
	// before its end: the parts it staged stayed staged.
	Resumed bool
	// Stage is the time the parts took, Publish the publish transaction's, PriceDailyHeld the
	// time the publish held price_daily's rows.
	Stage, Publish, PriceDailyHeld time.Duration
}

// StageManifest loads the multi-part batch whose manifest is data, delivered as src, by
// staging its parts with parallel loaders at once, each part in a transaction of its own, and
// publishing it in one more. A rerun of a manifest whose run was killed resumes its batch from
// the parts staged. Batches past their deadline are failed first (Sweep). The outcome is a
// single batch's: loaded, duplicate (or displaced), rejected with the report of every part, or
// failed.
func (l *Loader) StageManifest(ctx context.Context, src Source, data []byte, parts Parts, parallel int) (Staged, error) {
	start := time.Now()
	if _, err := l.Sweep(ctx); err != nil {
		return Staged{}, fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	reg, err := l.RegisterManifest(ctx, src, data, parts.Allow)
	if err != nil || reg.Status != StatusStaging {
		return Staged{Result: reg}, err
	}
	out := Staged{Resumed: reg.Replayed}
	phase := time.Now()
	stagedParts, err := l.parts.StageParts(ctx, reg.BatchID, parallel, l.openPart(parts.Open))
	if err != nil {
		return out, fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	out.Stage = time.Since(phase)
	for _, outcome := range []batchstore.PartOutcome{batchstore.PartStaged, batchstore.PartChecked, batchstore.PartBad} {
		for range stagedParts.Outcomes[outcome] {
			l.metrics.PartSettled(string(outcome))
		}
	}
	if stagedParts.BatchStatus == batchstore.StatusStaging {
		pub, err := l.Publish(ctx, reg.BatchID)
		if err != nil {
			return out, fmt.Errorf("load batch %s: %w", src.Name, err)
		}
		out.RouteDays, out.Publish, out.PriceDailyHeld = pub.RouteDays, pub.Duration, pub.PriceDailyHeld
	}
	if out.Result, err = l.Ended(ctx, src, reg.BatchID); err != nil {
		return out, fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	out.Duration = time.Since(start)
	return out, nil
}

// Ended reads what multi-part batch id became, as a single batch's Result.
func (l *Loader) Ended(ctx context.Context, src Source, id int64) (Result, error) {
	b, err := l.Batch(ctx, id)
	if err != nil {
		return Result{}, err
	}
	res := Result{BatchID: id, RecordID: id, Source: src, Status: b.Status, Rows: b.Rows, Bytes: b.Bytes, SHA256: b.SHA256,
		RowsDigest: b.RowsDigest, DisplacedRows: b.DisplacedRows, StartedAt: b.StartedAt, Report: b.Report}
	res.Source.Mode = b.Mode
	if b.DuplicateOf != 0 {
		res.BatchID = b.DuplicateOf
		return markDisplaced(ctx, l.pool, res)
	}
	return res, nil
}

// ManifestStaging tells whether an earlier run of the manifest file data registered a batch
// that is still staging: a rerun resumes it.
func (l *Loader) ManifestStaging(ctx context.Context, data []byte) (bool, error) {
	sum := sha256.Sum256(data)
	_, ok, err := l.parts.StagingOf(ctx, hex.EncodeToString(sum[:]))
	return ok, err
}

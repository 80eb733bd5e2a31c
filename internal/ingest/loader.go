// Package ingest loads price batches into PostgreSQL, all or nothing: a CSV stream goes
// through COPY into a staging table, is checked with set-based SQL and then inserted into
// prices, all in one transaction. The same loader serves the operator command, POST /batches
// (package batchapi) and the SQS worker.
package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/config"
	"rates/internal/domain"
	"rates/internal/ingest/csvbatch"
	"rates/internal/metrics"
)

// Status is the outcome of a batch, or what became of it later.
type Status string

// The outcomes of a load.
const (
	StatusLoaded    Status = "loaded"
	StatusRejected  Status = "rejected"
	StatusDuplicate Status = "duplicate" // its content was already loaded: nothing written
	StatusReverted  Status = "reverted"  // loaded, then taken back out
	StatusDiscarded Status = "discarded" // loaded, then thrown away by rates seed --replace
	// StatusDisplaced answers a duplicate whose first batch is no longer all in prices: later
	// replaces took some of its rows out (Result.DisplacedBy). Nothing was written; it is
	// recorded as a duplicate.
	StatusDisplaced Status = "displaced"
	// StatusStaging is a multi-part batch whose parts are being staged: nothing of it is
	// visible yet. StatusFailed is one that ended before its publish for a reason other than its
	// content (its deadline passed, a seed replaced the data): nothing of it was loaded.
	StatusStaging Status = "staging"
	StatusFailed  Status = "failed"
)

// Report explains a rejected batch.
type Report struct {
	// BadRows counts every row with at least one problem, also beyond those listed.
	BadRows int64 `json:"bad_rows"`
	// Errors are the first problems by line, at most the loader's MaxErrors.
	Errors []csvbatch.RowError `json:"errors"`
	// TooLarge says the batch went past Limits.MaxBytes, decompressed.
	TooLarge bool `json:"too_large,omitempty"`
}

// Message summarises the rejection for people: its one problem when no row is to blame (a
// limit, an unreadable or empty batch), else the count of bad rows.
func (r *Report) Message() string {
	if r.BadRows == 0 && len(r.Errors) == 1 {
		return "batch rejected: " + r.Errors[0].Reason
	}
	return RejectionMessage(r.BadRows)
}

// RejectionMessage summarises a rejection for people.
func RejectionMessage(badRows int64) string {
	switch badRows {
	case 0: // the manifest of a multi-part batch, or a part's checksum: no row to blame
		return "batch rejected: see the errors"
	case 1:
		return "batch rejected: 1 bad row"
	}
	return "batch rejected: " + strconv.FormatInt(badRows, 10) + " bad rows"
}

// Result describes a batch: the one just loaded, rejected or found to be a duplicate, or,
// when Replayed, the outcome first recorded for the same source key.
type Result struct {
	// BatchID is the batch that holds the content: for a duplicate, the first batch.
	BatchID int64
	// RecordID is the record of this delivery: BatchID, or the duplicate's own record.
	RecordID      int64
	Source        Source
	Status        Status
	Rows          int64  // data rows in the batch
	Bytes         int64  // as received, before decompression
	SHA256        string // of the decompressed bytes
	RowsDigest    string // see csvbatch.RowDigest; the batch's identity
	DisplacedRows int64  // prices a replace took out
	// DisplacedBy, for StatusDisplaced, lists the batches that took rows of the first out.
	DisplacedBy []int64
	StartedAt   time.Time
	Duration    time.Duration
	Replayed    bool
	Report      *Report // set when Status is StatusRejected
}

// KeyConflictError is a source key (an Idempotency-Key) reused for another batch: different
// content, another kind or another mode.
type KeyConflictError struct {
	Key     string
	BatchID int64
	// Reason says how the first use differs: "for different content", "with mode append, not
	// replace".
	Reason string
}

// HTTPStatus is 409: the key is taken.
func (*KeyConflictError) HTTPStatus() int { return http.StatusConflict }

func (e *KeyConflictError) Error() string {
	return fmt.Sprintf("key %s was already used by batch %d %s", csvbatch.Quote(e.Key), e.BatchID, e.Reason)
}

// LoaderOptions tune a Loader.
type LoaderOptions struct {
	// MaxErrors bounds the problems listed in a report; 0 means config.DefaultMaxErrorsReported.
	MaxErrors int
	// MaxDuration is the deadline of one load (and of a revert), from the first statement
	// to the commit; statement_timeout and lock_timeout are derived from it. 0 means
	// config.DefaultMaxBatchDuration.
	MaxDuration time.Duration
	// Observe, when set, is told the outcome of every Load (metrics).
	Observe func(Result, error)
	// Metrics, when set, receives rates_ingest_lag_seconds for every committed batch whose
	// source has a ReceivedAt.
	Metrics *metrics.Metrics
	// Limits bound what one batch may make the process read; zero fields take the defaults.
	Limits csvbatch.Limits
	// Days is the window of plausible price days; the zero value means domain.DefaultDayWindow.
	Days domain.DayWindow
}

// Loader loads batches into one database.
type Loader struct {
	pool        *pgxpool.Pool
	log         *slog.Logger
	maxErrors   int
	maxDuration time.Duration
	observe     func(Result, error)
	metrics     *metrics.Metrics
	limits      csvbatch.Limits
	days        domain.DayWindow
	// parts stages and publishes multi-part batches.
	parts *batchstore.Store
	// beforeInsert, when set, runs between the checks and the insert; tests use it to act
	// while the batch's locks are held.
	beforeInsert func()
}

// NewLoader returns a Loader on pool.
func NewLoader(pool *pgxpool.Pool, opts LoaderOptions, log *slog.Logger) *Loader {
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = config.DefaultMaxErrorsReported
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = config.DefaultMaxBatchDuration
	}
	if opts.Days == (domain.DayWindow{}) {
		opts.Days = domain.DefaultDayWindow
	}
	l := &Loader{pool: pool, log: log, maxErrors: opts.MaxErrors, maxDuration: opts.MaxDuration,
		observe: opts.Observe, metrics: opts.Metrics, limits: opts.Limits.OrDefaults(), days: opts.Days}
	if pool != nil {
		// Every option is set above: New fails on a missing one only.
		l.parts, _ = batchstore.New(pool, batchstore.Options{MaxErrors: opts.MaxErrors, MaxBatchDuration: opts.MaxDuration, Identity: CombineDigests})
	}
	return l
}

// The staging table lives and dies with the transaction; the line column lets the set-based
// checks report where a bad row was. A field that failed the checks in Go arrives as NULL.
const (
	createStagingSQL = `CREATE TEMP TABLE ingest_rows (
		line      bigint NOT NULL,
		orig_code text,
		dest_code text,
		day       date,
		price     integer
	) ON COMMIT DROP`
	copyStagingSQL = `COPY ingest_rows (line, orig_code, dest_code, day, price) FROM STDIN`

	// countBadSQL counts the rows that cannot go into prices: a field that failed in Go, or a
	// port code absent from ports. ports is small, so this is one hashed pass over the batch.
	countBadSQL = `SELECT count(*) FROM ingest_rows t
		LEFT JOIN ports o ON o.code = t.orig_code
		LEFT JOIN ports d ON d.code = t.dest_code
		WHERE o.code IS NULL OR d.code IS NULL OR t.day IS NULL OR t.price IS NULL`

	// unknownCodesSQL lists the first unknown port codes by line. Codes that failed in Go are
	// NULL here and were reported already.
	unknownCodesSQL = `SELECT line, col, code FROM (
		SELECT t.line, 1 AS ord, 'orig_code' AS col, t.orig_code AS code FROM ingest_rows t
		WHERE t.orig_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.code = t.orig_code)
		UNION ALL
		SELECT t.line, 2, 'dest_code', t.dest_code FROM ingest_rows t
		WHERE t.dest_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.code = t.dest_code)
	) e ORDER BY line, ord LIMIT $1`

	// lockPortsSQL returns the codes of $1 that exist, locking those ports as a foreign key
	// check does.
	lockPortsSQL = `SELECT code FROM ports WHERE code = ANY($1::text[]) FOR KEY SHARE`

	// ownTriggersSQL finds triggers and rules on prices, other than the foreign keys' own,
	// whose firing depends on session_replication_role: enabled the default way (O) they are
	// silenced by replica mode, and ENABLE REPLICA ones (R) would fire only then. ENABLE ALWAYS
	// (A) and disabled (D) ones behave the same either way.
	ownTriggersSQL = `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'prices'::regclass
			AND NOT tgisinternal AND tgenabled IN ('O', 'R'))
		OR EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = 'prices'::regclass AND ev_enabled IN ('O', 'R'))`

	// insertPricesSQL feeds the rows in the order of prices_route_day_idx: each index insert
	// then lands next to the previous one, in pages already in memory, which costs less than
	// the sort (about a third less time for a million rows). $1 is the batch, their lineage.
	insertPricesSQL = `INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
		SELECT orig_code, dest_code, day, price, $1::bigint FROM ingest_rows ORDER BY orig_code, dest_code, day`

	// displaceSQL takes out every published price on the route-days of the batch (the rule of
	// the view published_prices) and keeps it, with the replacing batch's id, for a revert. The
	// rows of a batch still staging stay: they are not published yet, and their publish comes
	// after this replace, as an append that follows it would.
	displaceSQL = `WITH keys AS (SELECT DISTINCT orig_code, dest_code, day FROM ingest_rows),
		moved AS (DELETE FROM prices p USING keys k
			WHERE p.orig_code = k.orig_code AND p.dest_code = k.dest_code AND p.day = k.day
			  AND (p.batch_id IS NULL OR p.batch_id <> ALL (ARRAY(SELECT b.id FROM batches b WHERE b.status = 'staging')))
			RETURNING p.orig_code, p.dest_code, p.day, p.price, p.batch_id)
		INSERT INTO prices_displaced (displaced_by, orig_code, dest_code, day, price, batch_id)
		SELECT $1, orig_code, dest_code, day, price, batch_id FROM moved`

	recordColumns = `id, status, kind, mode, rows, bytes, sha256, coalesce(rows_key, '') AS rows_key, started_at, duration_ms,
		report, coalesce(duplicate_of, 0) AS duplicate_of, displaced_rows`
	findByKeySQL = `SELECT ` + recordColumns + ` FROM batches WHERE source_key = $1`
	// findByContentSQL finds the loaded batch with the same rows ($2) or the same bytes ($1):
	// one at most, as this release loads a content once and checks both keys first.
	findByContentSQL = `SELECT ` + recordColumns + ` FROM batches
		WHERE status = 'loaded' AND (content_key = $1 OR rows_key = $2) ORDER BY id LIMIT 1`

	// recordSQL records a batch; rows_key ($19) is set with content_key ($16), on a batch that
	// loads.
	recordSQL = `INSERT INTO batches (source_key, source_kind, source_name, status, rows, bad_rows,
		bytes, sha256, started_at, finished_at, duration_ms, timings, report, kind, mode, content_key,
		duplicate_of, received_at, rows_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
			CASE WHEN $16::text IS NOT NULL THEN $19::text END) RETURNING id`

	finishSQL = `UPDATE batches SET finished_at = $2, duration_ms = $3, timings = $4, displaced_rows = $5
		WHERE id = $1`
)

func lockTakeOuts(ctx context.Context, tx pgx.Tx) error { return batchstore.LockTakeOut(ctx, tx) }

// Load reads the batch from r and either applies all of it or nothing. A batch with bad data
// is not an error: it is recorded and returned with StatusRejected and a report. Content
// already loaded is recorded as a duplicate and returned with StatusDuplicate and the first
// batch's id. An error means nothing was recorded and the same source may be loaded again; a
// *SourceError says reading r failed, a *KeyConflictError that src.Key was used for other
// content. The load has the loader's deadline.
func (l *Loader) Load(ctx context.Context, src Source, r io.Reader) (Result, error) {
	if src.Data == "" {
		src.Data = DataPrices
	}
	if src.Mode == "" {
		src.Mode = ModeAppend
	}
	res := Result{Source: src, StartedAt: time.Now()}
	if err := src.validate(); err != nil {
		return res, fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.maxDuration)
	defer cancel()
	res, err := l.load(ctx, src, r, res)
	if err != nil {
		var pgErr *pgconn.PgError
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &pgErr) && pgErr.Code == "57014":
			err = fmt.Errorf("past the batch deadline of %s (INGEST_MAX_BATCH_DURATION), rolled back: %w", l.maxDuration, err)
		case errors.As(err, &pgErr) && pgErr.Code == "55P03":
			err = fmt.Errorf("waited for a lock longer than a quarter of the batch deadline of %s (INGEST_MAX_BATCH_DURATION), rolled back: %w", l.maxDuration, err)
		}
		err = fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	if l.observe != nil {
		l.observe(res, err)
	}
	return res, err
}

// begin opens the transaction of a load or revert: bounded by ctx's deadline in the database
// too, and kept out while a seed replaces the data.
func (l *Loader) begin(ctx context.Context, conn *pgxpool.Conn) (pgx.Tx, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	// No statement may outlast the batch's deadline, and a lock wait of a quarter of it means
	// something else (a seed, a revert, a concurrent replace) holds the data: give up and let
	// the caller retry later rather than queue behind it.
	budget := l.maxDuration
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	stmt := max(budget.Milliseconds(), 1)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d; SET LOCAL lock_timeout = %d",
		stmt, max(stmt/4, 1))); err != nil {
		l.rollback(ctx, tx)
		return nil, fmt.Errorf("set timeouts: %w", err)
	}
	if err := batchstore.LockBatchWriter(ctx, tx); err != nil {
		l.rollback(ctx, tx)
		return nil, err
	}
	return tx, nil
}

func (l *Loader) rollback(ctx context.Context, tx pgx.Tx) {
	// Bounded: on a dead connection the rollback must not hang the caller.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

// inTx runs fn in the transaction of a load or revert (see begin), on a connection of its own.
// fn commits; whatever it leaves uncommitted is rolled back.
func (l *Loader) inTx(ctx context.Context, fn func(conn *pgxpool.Conn, tx pgx.Tx) error) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	tx, err := l.begin(ctx, conn)
	if err != nil {
		return err
	}
	defer l.rollback(ctx, tx)
	return fn(conn, tx)
}

func (l *Loader) load(ctx context.Context, src Source, r io.Reader, res Result) (Result, error) {
	err := l.inTx(ctx, func(conn *pgxpool.Conn, tx pgx.Tx) error {
		var err error
		res, err = l.loadTx(ctx, conn, tx, src, r, res)
		return err
	})
	return res, err
}

func (l *Loader) loadTx(ctx context.Context, conn *pgxpool.Conn, tx pgx.Tx, src Source, r io.Reader, res Result) (Result, error) {
	timings := map[string]int64{}
	phase := time.Now()
	st, err := l.stage(ctx, conn, tx, src, r)
	if err != nil {
		return res, err
	}
	res.Rows, res.Bytes, res.SHA256, res.RowsDigest = st.rows, st.in.RawBytes(), st.in.Sum(), st.digest.String()
	timings["copy_ms"] = time.Since(phase).Milliseconds()

	// Identity: the delivery's key first (a retry), then the content (a re-send).
	if first, ok, err := lockDelivery(ctx, tx, src); err != nil {
		return res, err
	} else if ok {
		if reason := first.Conflict(src, res); reason != "" {
			return res, &KeyConflictError{Key: src.Key, BatchID: first.RecordID, Reason: reason}
		}
		l.log.Info("batch already recorded, nothing to do", "source", src.Name, "key", src.Key,
			"batch_id", first.BatchID, "status", first.Status)
		return markDisplaced(ctx, tx, first)
	}
	if report := st.unreadable(); report != nil {
		// Not rows that could be anyone's: no identity to look up.
		res.Status, res.Report = StatusRejected, report
		return l.commitRejected(ctx, tx, src, res, timings)
	}
	if dup, ok, err := l.commitDuplicate(ctx, tx, src, res, timings); err != nil || ok {
		return dup, err
	}

	phase = time.Now()
	var report *Report
	var portsLocked bool
	if src.Data == DataPrices {
		report, portsLocked, err = l.check(ctx, tx, st.conv)
	} else {
		report, err = l.checkReference(ctx, tx, src.Data, st.ref)
	}
	if err != nil {
		return res, err
	}
	timings["validate_ms"] = time.Since(phase).Milliseconds()
	if report != nil {
		res.Status, res.Report = StatusRejected, report
		return l.commitRejected(ctx, tx, src, res, timings)
	}
	return l.apply(ctx, tx, src, res, portsLocked, timings)
}

// Conflict says why a delivery of res by src cannot be a retry of first, the delivery recorded
// under the same key, or "" when it can: the same content (byte for byte), kind and mode.
func (first Result) Conflict(src Source, res Result) string {
	switch {
	case first.Source.Data != src.Data:
		return fmt.Sprintf("for a %s batch, not %s", first.Source.Data, src.Data)
	case first.Source.Mode != src.Mode:
		return fmt.Sprintf("with mode %s, not %s", first.Source.Mode, src.Mode)
	case first.SHA256 != res.SHA256:
		return "for different content"
	}
	return ""
}

// commitDuplicate looks for a loaded batch with the content of res, by its rows or by its bytes
// (the key the previous release gives), and records res as its duplicate when there is one.
// ok reports that res was a duplicate, recorded and committed.
func (l *Loader) commitDuplicate(ctx context.Context, tx pgx.Tx, src Source, res Result, timings map[string]int64) (Result, bool, error) {
	// Both keys, in this order, as a revert takes them: loads of the same rows, or of the same
	// bytes, and the revert of a batch that holds them, take turns.
	for _, key := range []string{contentKey(src.Data, res.SHA256), src.Data.rowsKey(res.RowsDigest)} {
		if err := batchstore.LockContent(ctx, tx, key); err != nil {
			return res, false, err
		}
	}
	first, ok, err := findContent(ctx, tx, src, res)
	if err != nil || !ok {
		return res, false, err
	}
	res.Status, res.BatchID = StatusDuplicate, first.BatchID
	res.Duration = time.Since(res.StartedAt)
	if res.RecordID, err = l.record(ctx, tx, src, res, "", first.BatchID, timings); err != nil {
		return res, false, err
	}
	if res, err = markDisplaced(ctx, tx, res); err != nil {
		return res, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return res, false, fmt.Errorf("commit: %w", err)
	}
	l.log.Info("batch content already loaded: nothing written", "source", src.Name, "key", src.Key,
		"batch_id", first.BatchID, "record_id", res.RecordID, "sha256", res.SHA256, "rows_digest", res.RowsDigest,
		"displaced_by", res.DisplacedBy)
	return res, true, nil
}

// apply writes a checked batch: records it, takes out what a replace replaces, inserts its
// rows, and commits.
func (l *Loader) apply(ctx context.Context, tx pgx.Tx, src Source, res Result, portsLocked bool, timings map[string]int64) (Result, error) {
	var err error
	res.Status = StatusLoaded
	if res.RecordID, err = l.record(ctx, tx, src, res, contentKey(src.Data, res.SHA256), 0, timings); err != nil {
		return res, err
	}
	res.BatchID = res.RecordID
	if l.beforeInsert != nil {
		l.beforeInsert()
	}
	phase := time.Now()
	if src.Data == DataPrices {
		err = l.applyPrices(ctx, tx, src, &res, portsLocked, timings)
	} else {
		err = l.applyReference(ctx, tx, src.Data, res.BatchID)
	}
	if err != nil {
		return res, err
	}
	timings["insert_ms"] = time.Since(phase).Milliseconds()

	finished := time.Now()
	res.Duration = finished.Sub(res.StartedAt)
	timingsJSON, _ := json.Marshal(timings)
	if _, err := tx.Exec(ctx, finishSQL, res.BatchID, finished, res.Duration.Milliseconds(), timingsJSON, res.DisplacedRows); err != nil {
		return res, fmt.Errorf("record batch: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	if !src.ReceivedAt.IsZero() {
		l.metrics.IngestLag(time.Since(src.ReceivedAt))
	}
	l.log.Info("batch loaded", "source", src.Name, "key", src.Key, "batch_id", res.BatchID,
		"kind", src.Data, "mode", src.Mode, "rows", res.Rows, "displaced_rows", res.DisplacedRows,
		"bytes", res.Bytes, "sha256", res.SHA256, "rows_digest", res.RowsDigest, "duration_ms", res.Duration.Milliseconds(),
		"copy_ms", timings["copy_ms"], "validate_ms", timings["validate_ms"], "insert_ms", timings["insert_ms"],
		"row_fk_checks", timings["row_fk_checks"])
	return res, nil
}

// applyPrices takes out the prices a replace replaces, and inserts the batch's.
func (l *Loader) applyPrices(ctx context.Context, tx pgx.Tx, src Source, res *Result, portsLocked bool, timings map[string]int64) error {
	if src.Mode == ModeReplace {
		phase := time.Now()
		if err := lockTakeOuts(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "ANALYZE ingest_rows"); err != nil {
			return fmt.Errorf("analyze staging table: %w", err)
		}
		tag, err := tx.Exec(ctx, displaceSQL, res.BatchID)
		if err != nil {
			return fmt.Errorf("take out the prices the batch replaces: %w", err)
		}
		res.DisplacedRows = tag.RowsAffected()
		timings["displace_ms"] = time.Since(phase).Milliseconds()
	}
	skipped, err := l.insert(ctx, tx, portsLocked, res.BatchID, res.Rows)
	if err != nil {
		return err
	}
	timings["row_fk_checks"] = 3 * res.Rows
	if skipped {
		timings["row_fk_checks"] = 0
	}
	return nil
}

// contentKey is the identity of a batch by its decompressed bytes (batches.content_key), which
// the previous release gives its loaded batches too (the trigger batches_fill_content_key).
func contentKey(kind DataKind, sha256 string) string { return string(kind) + ":" + sha256 }

// rowsKey is the identity of a batch of kind k by the digest of its rows (batches.rows_key).
func (k DataKind) rowsKey(digest string) string { return string(k) + ":" + digest }

// findContent returns the loaded batch that holds the content of res: the same rows, or the
// same bytes (a batch the previous release loaded has no rows key).
func findContent(ctx context.Context, q rowsQuerier, src Source, res Result) (Result, bool, error) {
	return findRecord(ctx, q, findByContentSQL, src, contentKey(src.Data, res.SHA256), src.Data.rowsKey(res.RowsDigest))
}

// displacedBySQL lists the batches that took some of a batch's rows out of prices, and keep them.
const displacedBySQL = `SELECT DISTINCT displaced_by FROM prices_displaced WHERE batch_id = $1 ORDER BY 1 LIMIT 20`

// markDisplaced turns res, a duplicate, into StatusDisplaced when replaces have since taken some
// of the first batch's rows out: its content is then no longer all in prices, and saying
// "duplicate" would tell the sender it is.
func markDisplaced(ctx context.Context, q rowsQuerier, res Result) (Result, error) {
	if res.Status != StatusDuplicate {
		return res, nil
	}
	rows, err := q.Query(ctx, displacedBySQL, res.BatchID)
	if err != nil {
		return res, fmt.Errorf("look for replaces of the batch's rows: %w", err)
	}
	by, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return res, fmt.Errorf("look for replaces of the batch's rows: %w", err)
	}
	if len(by) > 0 {
		res.Status, res.DisplacedBy = StatusDisplaced, by
	}
	return res, nil
}

// lockDelivery takes the lock of src's delivery key and returns the batch already recorded
// under it, if any; a source without a key (a file) has no delivery to find.
func lockDelivery(ctx context.Context, tx pgx.Tx, src Source) (Result, bool, error) {
	if src.Key == "" {
		return Result{}, false, nil
	}
	if err := batchstore.LockDelivery(ctx, tx, src.Key); err != nil {
		return Result{}, false, err
	}
	return findRecord(ctx, tx, findByKeySQL, src, src.Key)
}

// commitRejected records res, a rejected batch, and commits.
func (l *Loader) commitRejected(ctx context.Context, tx pgx.Tx, src Source, res Result, timings map[string]int64) (Result, error) {
	res.Duration = time.Since(res.StartedAt)
	id, err := l.record(ctx, tx, src, res, "", 0, timings)
	if err != nil {
		return res, err
	}
	res.BatchID, res.RecordID = id, id
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	l.log.Warn("batch rejected", "source", src.Name, "key", src.Key, "batch_id", id,
		"rows", res.Rows, "bad_rows", res.Report.BadRows, "sha256", res.SHA256)
	return res, nil
}

// staged is what staging left for the checks.
type staged struct {
	in     *csvbatch.Reader
	rows   int64
	digest csvbatch.RowDigest
	conv   *csvbatch.Converter // prices
	ref    *referenceSet       // ports, regions
}

// unreadable returns the report of a batch that could not be read as rows (no header, past a
// limit, undecodable): it is rejected whatever else holds the same bytes. Nil otherwise.
func (st staged) unreadable() *Report {
	switch {
	case st.conv != nil && st.conv.Fatal:
		return &Report{BadRows: st.conv.BadRows, Errors: st.conv.Errs, TooLarge: st.conv.TooLarge}
	case st.ref != nil && st.ref.fatal:
		return &Report{BadRows: st.ref.badRows, Errors: st.ref.errs, TooLarge: st.ref.tooLarge}
	}
	return nil
}

// stage reads the batch from r into its staging table, to its end.
func (l *Loader) stage(ctx context.Context, conn *pgxpool.Conn, tx pgx.Tx, src Source, r io.Reader) (staged, error) {
	in, err := csvbatch.Open(r, src.Gzip, l.limits)
	if err != nil {
		return staged{}, &SourceError{Err: err}
	}
	var st staged
	if src.Data == DataPrices {
		st, err = l.stagePrices(ctx, conn, in)
	} else {
		st, err = l.stageReference(ctx, tx, src.Data, in)
	}
	if err != nil {
		return st, err
	}
	if err := in.Drain(); err != nil {
		return st, &SourceError{Err: err}
	}
	st.in = in
	return st, nil
}

func (l *Loader) stagePrices(ctx context.Context, conn *pgxpool.Conn, in *csvbatch.Reader) (staged, error) {
	if _, err := conn.Exec(ctx, createStagingSQL); err != nil {
		return staged{}, fmt.Errorf("create staging table: %w", err)
	}
	conv := csvbatch.NewConverter(in, l.maxErrors, l.rules(), in.SourceErr)
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, conv, copyStagingSQL)
	if srcErr := in.SourceErr(); srcErr != nil {
		return staged{}, &SourceError{Err: srcErr}
	}
	if err != nil {
		return staged{}, fmt.Errorf("copy into staging table: %w", err)
	}
	if tag.RowsAffected() != conv.Rows {
		return staged{}, fmt.Errorf("staging table holds %d rows, the batch has %d", tag.RowsAffected(), conv.Rows)
	}
	return staged{rows: conv.Rows, digest: conv.Digest, conv: conv}, nil
}

// rules are the row rules of a load starting now.
func (l *Loader) rules() csvbatch.Rules { return csvbatch.Rules{Days: l.days, Now: time.Now()} }

// record writes the batch's row in batches and returns its id.
func (l *Loader) record(ctx context.Context, tx pgx.Tx, src Source, res Result, contentKey string, duplicateOf int64, timings map[string]int64) (int64, error) {
	var reportJSON []byte
	var badRows int64
	if res.Report != nil {
		badRows = res.Report.BadRows
		var err error
		if reportJSON, err = json.Marshal(res.Report); err != nil {
			return 0, fmt.Errorf("encode report: %w", err)
		}
	}
	timingsJSON, _ := json.Marshal(timings)
	var id int64
	err := tx.QueryRow(ctx, recordSQL, nullIfEmpty(src.Key), string(src.Channel), src.Name, string(res.Status), res.Rows, badRows,
		res.Bytes, res.SHA256, res.StartedAt, res.StartedAt.Add(res.Duration), res.Duration.Milliseconds(), timingsJSON, reportJSON,
		string(src.Data), string(src.Mode), nullIfEmpty(contentKey), nullIfZero(duplicateOf), nullIfZeroTime(src.ReceivedAt),
		src.Data.rowsKey(res.RowsDigest),
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record batch: %w", err)
	}
	return id, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullIfZero(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullIfZeroTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// check returns nil when every staged row can go into prices, or the report of a rejection.
// portsLocked reports that every port the batch references is locked against deletion until
// the transaction ends, which the foreign keys' per-row checks would otherwise ensure.
func (l *Loader) check(ctx context.Context, tx pgx.Tx, conv *csvbatch.Converter) (report *Report, portsLocked bool, err error) {
	if conv.Fatal {
		return &Report{BadRows: conv.BadRows, Errors: conv.Errs}, false, nil
	}
	if codes := conv.DistinctCodes(); codes != nil {
		// One statement checks which codes exist and locks those ports, as each row's foreign
		// key check would (FOR KEY SHARE): none can be deleted before this batch commits.
		rows, err := tx.Query(ctx, lockPortsSQL, codes)
		if err != nil {
			return nil, false, fmt.Errorf("lock referenced ports: %w", err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, false, fmt.Errorf("lock referenced ports: %w", err)
		}
		if conv.BadRows == 0 && len(found) == len(codes) {
			return nil, true, nil
		}
	}
	// Some row is bad, or the batch names too many distinct codes to check in memory: count
	// and list with set-based SQL over the staging table.
	var bad int64
	if err := tx.QueryRow(ctx, countBadSQL).Scan(&bad); err != nil {
		return nil, false, fmt.Errorf("check rows: %w", err)
	}
	if bad == 0 {
		return nil, false, nil
	}
	rows, err := tx.Query(ctx, unknownCodesSQL, l.maxErrors)
	if err != nil {
		return nil, false, fmt.Errorf("list unknown port codes: %w", err)
	}
	unknown, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (csvbatch.RowError, error) {
		var e csvbatch.RowError
		var code string
		err := r.Scan(&e.Line, &e.Column, &code)
		e.Reason = "unknown port code " + csvbatch.Quote(code)
		return e, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list unknown port codes: %w", err)
	}
	errs := append(slices.Clone(conv.Errs), unknown...)
	slices.SortStableFunc(errs, func(a, b csvbatch.RowError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(csvbatch.ColumnOrder(a.Column), csvbatch.ColumnOrder(b.Column)))
	})
	if len(errs) > l.maxErrors {
		errs = errs[:l.maxErrors]
	}
	return &Report{BadRows: bad, Errors: errs}, false, nil
}

// insert moves the staged rows into prices. The foreign keys' per-row checks cost more than
// the rest of the load together (two trigger queries per row); once check has verified and
// locked every referenced port they are redundant, so they are skipped when the database
// lets this session do so (session_replication_role is superuser-only unless granted with
// GRANT SET ON PARAMETER) and prices has no triggers or rules of its own that replica mode
// would silence (those marked ENABLE ALWAYS still fire). Otherwise the checks run as usual.
// skipped reports which way it went.
func (l *Loader) insert(ctx context.Context, tx pgx.Tx, portsLocked bool, batchID, want int64) (skipped bool, err error) {
	if portsLocked {
		if skipped, err = skipRowChecks(ctx, tx); err != nil {
			return false, err
		}
	}
	tag, err := tx.Exec(ctx, insertPricesSQL, batchID)
	if err != nil {
		return skipped, fmt.Errorf("insert into prices: %w", err)
	}
	if tag.RowsAffected() != want {
		return skipped, fmt.Errorf("inserted %d rows into prices, the batch has %d", tag.RowsAffected(), want)
	}
	if skipped {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = DEFAULT"); err != nil {
			return skipped, fmt.Errorf("restore session_replication_role: %w", err)
		}
	}
	return skipped, nil
}

// insufficientPrivilege is SQLSTATE 42501.
const insufficientPrivilege = "42501"

func skipRowChecks(ctx context.Context, tx pgx.Tx) (bool, error) {
	var own bool
	if err := tx.QueryRow(ctx, ownTriggersSQL).Scan(&own); err != nil {
		return false, fmt.Errorf("look for triggers on prices: %w", err)
	}
	if own {
		return false, nil
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT skip_row_checks"); err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != insufficientPrivilege {
			return false, fmt.Errorf("set session_replication_role: %w", err)
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT skip_row_checks"); err != nil {
			return false, fmt.Errorf("rollback to savepoint: %w", err)
		}
		return false, nil
	}
	if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT skip_row_checks"); err != nil {
		return false, fmt.Errorf("release savepoint: %w", err)
	}
	return true, nil
}

// loadPrivilegesSQL tells whether the session's role may load and revert batches: stage rows,
// record batches, write prices and what the triggers on prices write.
const loadPrivilegesSQL = `SELECT current_user,
	has_table_privilege('prices', 'INSERT, DELETE') AND has_table_privilege('batches', 'SELECT, INSERT, UPDATE')
	AND has_table_privilege('price_daily', 'UPDATE') AND has_table_privilege('prices_displaced', 'INSERT, DELETE')
	AND has_database_privilege(current_database(), 'TEMPORARY')`

// CheckPrivileges returns nil when the loader's database role may load and revert batches, and
// otherwise an error that names the role and what it needs: checked at start, it spares a
// client an upload that can only fail.
func (l *Loader) CheckPrivileges(ctx context.Context) error {
	var role string
	var ok bool
	if err := l.pool.QueryRow(ctx, loadPrivilegesSQL).Scan(&role, &ok); err != nil {
		return fmt.Errorf("check the database role's privileges: %w", err)
	}
	if !ok {
		return fmt.Errorf("database role %s may not load batches (it needs INSERT and DELETE on prices and prices_displaced, "+
			"SELECT, INSERT and UPDATE on batches, UPDATE on price_daily, TEMPORARY on the database: the rates_loader role has them)", role)
	}
	return nil
}

// Find returns the outcome recorded for src's key, if there is one. The worker asks before
// downloading an object, so a redelivered message costs one query.
func (l *Loader) Find(ctx context.Context, src Source) (Result, bool, error) {
	if src.Key == "" {
		return Result{}, false, nil
	}
	res, ok, err := findRecord(ctx, l.pool, findByKeySQL, src, src.Key)
	if err == nil && ok {
		res, err = markDisplaced(ctx, l.pool, res)
	}
	if err != nil {
		return res, false, fmt.Errorf("look up batch %s: %w", src.Name, err)
	}
	return res, ok, nil
}

// Replay answers a delivery whose key is recorded already (first, from Find): the recorded
// outcome when r holds the same content, byte for byte, or a *KeyConflictError. It reads r
// within the loader's limits and writes nothing: a retry costs a checksum, not a load.
func (l *Loader) Replay(ctx context.Context, src Source, first Result, r io.Reader) (Result, error) {
	if reason := first.Conflict(src, first); reason != "" {
		return first, &KeyConflictError{Key: src.Key, BatchID: first.RecordID, Reason: reason}
	}
	in, err := csvbatch.Open(r, src.Gzip, l.limits)
	if err == nil {
		err = in.Drain()
	}
	if err != nil {
		return first, fmt.Errorf("replay batch %s: %w", src.Name, &SourceError{Err: err})
	}
	if in.Sum() != first.SHA256 {
		return first, &KeyConflictError{Key: src.Key, BatchID: first.RecordID, Reason: "for different content"}
	}
	res, err := markDisplaced(ctx, l.pool, first)
	if err != nil {
		return res, fmt.Errorf("replay batch %s: %w", src.Name, err)
	}
	if l.observe != nil {
		l.observe(res, nil)
	}
	return res, nil
}

type rowsQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// findRecord reads the record that query selects by args, as a replayed Result.
func findRecord(ctx context.Context, q rowsQuerier, query string, src Source, args ...any) (Result, bool, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return Result{}, false, fmt.Errorf("find recorded batch: %w", err)
	}
	rec, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[batchRecord])
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("find recorded batch: %w", err)
	}
	res := Result{Source: src, Replayed: true, RecordID: rec.ID, BatchID: rec.ID, Status: rec.Status, Rows: rec.Rows,
		Bytes: rec.Bytes, SHA256: rec.SHA256, StartedAt: rec.StartedAt, Duration: time.Duration(rec.DurationMS) * time.Millisecond,
		Report: rec.Report, DisplacedRows: rec.DisplacedRows}
	res.Source.Data, res.Source.Mode = rec.Kind, rec.Mode
	_, res.RowsDigest, _ = strings.Cut(rec.RowsKey, ":")
	if rec.DuplicateOf != 0 {
		res.BatchID = rec.DuplicateOf
	}
	return res, true, nil
}

// batchRecord is a batch's record as recordColumns reads it.
type batchRecord struct {
	ID            int64     `db:"id"`
	Status        Status    `db:"status"`
	Kind          DataKind  `db:"kind"`
	Mode          Mode      `db:"mode"`
	Rows          int64     `db:"rows"`
	Bytes         int64     `db:"bytes"`
	SHA256        string    `db:"sha256"`
	RowsKey       string    `db:"rows_key"`
	StartedAt     time.Time `db:"started_at"`
	DurationMS    int64     `db:"duration_ms"`
	Report        *Report   `db:"report"`
	DuplicateOf   int64     `db:"duplicate_of"`
	DisplacedRows int64     `db:"displaced_rows"`
}

// Ping checks that the database answers.
func (l *Loader) Ping(ctx context.Context) error { return l.pool.Ping(ctx) }

// BatchDeadline is how long one batch may take (INGEST_MAX_BATCH_DURATION).
func (l *Loader) BatchDeadline() time.Duration { return l.maxDuration }

// PartStates lists the parts of multi-part batch id and how far each got.
func (l *Loader) PartStates(ctx context.Context, id int64) ([]batchstore.PartState, error) {
	return l.parts.Parts(ctx, id)
}

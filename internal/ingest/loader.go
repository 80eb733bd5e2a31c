// Package ingest loads price batches into PostgreSQL, all or nothing: a CSV stream goes
// through COPY into a staging table, is checked with set-based SQL and then inserted into
// prices, all in one transaction. The same loader serves the operator command, POST /batches
// and the SQS worker.
package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is the outcome of a batch.
type Status string

// The outcomes of a load.
const (
	StatusLoaded   Status = "loaded"
	StatusRejected Status = "rejected"
)

// Report explains a rejected batch.
type Report struct {
	// BadRows counts every row with at least one problem, also beyond those listed.
	BadRows int64 `json:"bad_rows"`
	// Errors are the first problems by line, at most the loader's MaxErrors.
	Errors []RowError `json:"errors"`
}

// Result describes a batch: the one just loaded or rejected, or, when Replayed, the first
// outcome recorded for the same source.
type Result struct {
	BatchID   int64
	Source    Source
	Status    Status
	Rows      int64 // data rows in the batch
	Bytes     int64 // as received, before decompression
	SHA256    string
	StartedAt time.Time
	Duration  time.Duration
	Replayed  bool
	Report    *Report // set when Status is StatusRejected
}

// DefaultMaxErrors is how many problems a report lists when no limit is configured.
const DefaultMaxErrors = 20

// LoaderOptions tune a Loader.
type LoaderOptions struct {
	// MaxErrors bounds the problems listed in a report; 0 means DefaultMaxErrors.
	MaxErrors int
	// Observe, when set, is told the outcome of every Load (metrics).
	Observe func(Result, error)
}

// Loader loads batches into one database.
type Loader struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	maxErrors int
	observe   func(Result, error)
	// beforeInsert, when set, runs between the checks and the insert; tests use it to act
	// while the batch's locks are held.
	beforeInsert func()
}

// NewLoader returns a Loader on pool.
func NewLoader(pool *pgxpool.Pool, opts LoaderOptions, log *slog.Logger) *Loader {
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	return &Loader{pool: pool, log: log, maxErrors: opts.MaxErrors, observe: opts.Observe}
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
	// the sort (about a third less time for a million rows).
	insertPricesSQL = `INSERT INTO prices (orig_code, dest_code, day, price)
		SELECT orig_code, dest_code, day, price FROM ingest_rows ORDER BY orig_code, dest_code, day`

	findSQL = `SELECT id, status, rows, bytes, sha256, started_at, duration_ms, report
		FROM batches WHERE source_key = $1`

	recordSQL = `INSERT INTO batches (source_key, source_kind, source_name, status, rows, bad_rows,
		bytes, sha256, started_at, finished_at, duration_ms, timings, report)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`
)

// lockNamespace keeps the per-source advisory locks apart from any other advisory lock user.
const lockNamespace = "rates.ingest:"

// Load reads the batch from r and either inserts all its rows into prices or none. A batch
// with bad data is not an error: it is recorded and returned with StatusRejected and a report.
// An error means nothing was recorded and the same source may be loaded again; a
// *SourceError says reading r failed. Loads of the same source are serialised, and a source
// already recorded returns its first result without reading r.
func (l *Loader) Load(ctx context.Context, src Source, r io.Reader) (Result, error) {
	res := Result{Source: src, StartedAt: time.Now()}
	if err := src.validate(); err != nil {
		return res, fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	res, err := l.load(ctx, src, r, res)
	if err != nil {
		err = fmt.Errorf("load batch %s: %w", src.Name, err)
	}
	if l.observe != nil {
		l.observe(res, err)
	}
	return res, err
}

func (l *Loader) load(ctx context.Context, src Source, r io.Reader, res Result) (Result, error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		// Bounded: on a dead connection the rollback must not hang the caller.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lockNamespace+src.Key); err != nil {
		return res, fmt.Errorf("wait for the batch lock: %w", err)
	}
	if first, ok, err := find(ctx, tx, src); err != nil || ok {
		if ok {
			l.log.Info("batch already recorded, nothing to do", "source", src.Name, "key", src.Key,
				"batch_id", first.BatchID, "status", first.Status)
		}
		return first, err
	}

	timings := map[string]int64{}
	phase := time.Now()
	if _, err := tx.Exec(ctx, createStagingSQL); err != nil {
		return res, fmt.Errorf("create staging table: %w", err)
	}
	raw := &sourceReader{r: r, h: sha256.New()}
	body, err := decode(raw, src.Gzip)
	if err != nil {
		return res, &SourceError{Err: err}
	}
	conv := newConverter(body, l.maxErrors, raw.Err)
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, conv, copyStagingSQL)
	if srcErr := raw.Err(); srcErr != nil {
		return res, &SourceError{Err: srcErr}
	}
	if err != nil {
		return res, fmt.Errorf("copy into staging table: %w", err)
	}
	// Read what the converter left (nothing, unless it stopped early) so the checksum covers
	// the whole batch and an HTTP client is not cut off mid-upload.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return res, &SourceError{Err: err}
	}
	res.Rows, res.Bytes, res.SHA256 = conv.rows, raw.bytes, hex.EncodeToString(raw.h.Sum(nil))
	if src.SHA256 != "" && src.SHA256 != res.SHA256 {
		return res, fmt.Errorf("content changed while it was read: sha256 %s, expected %s", res.SHA256, src.SHA256)
	}
	if tag.RowsAffected() != conv.rows {
		return res, fmt.Errorf("staging table holds %d rows, the batch has %d", tag.RowsAffected(), conv.rows)
	}
	timings["copy_ms"] = time.Since(phase).Milliseconds()

	phase = time.Now()
	report, portsLocked, err := l.check(ctx, tx, conv)
	if err != nil {
		return res, err
	}
	timings["validate_ms"] = time.Since(phase).Milliseconds()

	res.Status = StatusLoaded
	if report != nil {
		res.Status, res.Report = StatusRejected, report
	} else {
		if l.beforeInsert != nil {
			l.beforeInsert()
		}
		phase = time.Now()
		skipped, err := l.insert(ctx, tx, portsLocked, res.Rows)
		if err != nil {
			return res, err
		}
		timings["insert_ms"] = time.Since(phase).Milliseconds()
		if skipped {
			timings["row_fk_checks"] = 0
		} else {
			timings["row_fk_checks"] = 2 * res.Rows
		}
	}

	finished := time.Now()
	res.Duration = finished.Sub(res.StartedAt)
	var reportJSON []byte
	var badRows int64
	if res.Report != nil {
		badRows = res.Report.BadRows
		if reportJSON, err = json.Marshal(res.Report); err != nil {
			return res, fmt.Errorf("encode report: %w", err)
		}
	}
	timingsJSON, _ := json.Marshal(timings)
	if err := tx.QueryRow(ctx, recordSQL, src.Key, string(src.Kind), src.Name, string(res.Status), res.Rows, badRows,
		res.Bytes, res.SHA256, res.StartedAt, finished, res.Duration.Milliseconds(), timingsJSON, reportJSON,
	).Scan(&res.BatchID); err != nil {
		return res, fmt.Errorf("record batch: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	l.log.Info("batch "+string(res.Status), "source", src.Name, "key", src.Key, "batch_id", res.BatchID,
		"rows", res.Rows, "bad_rows", badRows, "bytes", res.Bytes, "sha256", res.SHA256,
		"duration_ms", res.Duration.Milliseconds(), "copy_ms", timings["copy_ms"],
		"validate_ms", timings["validate_ms"], "insert_ms", timings["insert_ms"], "row_fk_checks", timings["row_fk_checks"])
	return res, nil
}

// check returns nil when every staged row can go into prices, or the report of a rejection.
// portsLocked reports that every port the batch references is locked against deletion until
// the transaction ends, which the foreign keys' per-row checks would otherwise ensure.
func (l *Loader) check(ctx context.Context, tx pgx.Tx, conv *converter) (report *Report, portsLocked bool, err error) {
	if conv.fatal {
		return &Report{BadRows: conv.badRows, Errors: conv.errs}, false, nil
	}
	if codes := conv.distinctCodes(); codes != nil {
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
		if conv.badRows == 0 && len(found) == len(codes) {
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
	errs := slices.Clone(conv.errs)
	for rows.Next() {
		var e RowError
		var code string
		if err := rows.Scan(&e.Line, &e.Column, &code); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("list unknown port codes: %w", err)
		}
		e.Reason = "unknown port code " + quote(code)
		errs = append(errs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list unknown port codes: %w", err)
	}
	slices.SortStableFunc(errs, func(a, b RowError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(columnOrder(a.Column), columnOrder(b.Column)))
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
func (l *Loader) insert(ctx context.Context, tx pgx.Tx, portsLocked bool, want int64) (skipped bool, err error) {
	if portsLocked {
		if skipped, err = skipRowChecks(ctx, tx); err != nil {
			return false, err
		}
	}
	tag, err := tx.Exec(ctx, insertPricesSQL)
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

// Find returns the recorded outcome for src, if there is one. The worker asks before
// downloading an object, so a redelivered message costs one query.
func (l *Loader) Find(ctx context.Context, src Source) (Result, bool, error) {
	res, ok, err := find(ctx, l.pool, src)
	if err != nil {
		return res, false, fmt.Errorf("look up batch %s: %w", src.Name, err)
	}
	return res, ok, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func find(ctx context.Context, q querier, src Source) (Result, bool, error) {
	res := Result{Source: src, Replayed: true}
	var status string
	var durationMS int64
	var report []byte
	err := q.QueryRow(ctx, findSQL, src.Key).Scan(&res.BatchID, &status, &res.Rows, &res.Bytes, &res.SHA256,
		&res.StartedAt, &durationMS, &report)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("find recorded batch: %w", err)
	}
	res.Status, res.Duration = Status(status), time.Duration(durationMS)*time.Millisecond
	if report != nil {
		res.Report = &Report{}
		if err := json.Unmarshal(report, res.Report); err != nil {
			return Result{}, false, fmt.Errorf("decode recorded report: %w", err)
		}
	}
	return res, true, nil
}

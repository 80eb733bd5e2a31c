// Package seed imports plain-format pg_dump files into the rates tables: streamed, in one
// transaction, idempotent by the file's SHA-256, and serialised across instances.
package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/copystream"
	"rates/internal/domain"
	"rates/internal/pgdump"
	"rates/internal/store"
)

// LockKey is the advisory lock that serialises seeding across all instances sharing a
// database. The seeder holds it exclusively; batch loads and reverts hold it shared, so none
// runs while a seed replaces the data.
const LockKey int64 = 0x7261746573_01 // "rates" + 1

// ErrDataDiffers is returned when the database already holds data from another dump and
// Replace was not asked for.
var ErrDataDiffers = errors.New("database already holds different data")

// ErrBatchesPresent is returned when Replace would throw away ingested batches and
// DiscardBatches was not given.
var ErrBatchesPresent = errors.New("the database holds ingested batches")

// Options tune one seeding run.
type Options struct {
	// Replace swaps the current data for the dump's, atomically, even when data is present.
	Replace bool
	// DiscardBatches lets Replace throw away the data of ingested batches (prices, ports,
	// regions); they are then recorded as discarded. Without it, Replace refuses while any
	// ingested batch is loaded.
	DiscardBatches bool
}

// Result reports a run.
type Result struct {
	File     string
	SHA256   string
	Skipped  bool // the same dump was already applied
	Rows     map[string]int64
	Duration time.Duration
}

// Seeder applies dumps to one database.
type Seeder struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// New returns a Seeder on pool.
func New(pool *pgxpool.Pool, log *slog.Logger) *Seeder {
	return &Seeder{pool: pool, log: log}
}

// ApplyFile imports the dump at path. Several instances may call it at once: one imports while
// the others wait on an advisory lock, then find the dump applied and do nothing.
func (s *Seeder) ApplyFile(ctx context.Context, path string, opts Options) (Result, error) {
	start := time.Now()
	res := Result{File: path, Rows: map[string]int64{}}
	sum, err := domain.FileSHA256(path)
	if err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	res.SHA256 = sum

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("seed %s: acquire connection: %w", path, err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("seed %s: begin: %w", path, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", LockKey); err != nil {
		return res, fmt.Errorf("seed %s: wait for the seed lock: %w", path, err)
	}
	current, hasData, err := currentState(ctx, tx)
	if err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	switch {
	case current == sum && !opts.Replace:
		res.Skipped = true
		res.Duration = time.Since(start)
		s.log.Info("seed already applied, nothing to do", "file", path, "sha256", sum)
		return res, nil
	case hasData && !opts.Replace:
		was := "data not loaded by the seeder"
		if current != "" {
			was = "dump sha256 " + current
		}
		return res, fmt.Errorf("seed %s (sha256 %s): %w (%s); pass --replace to replace it", path, sum, ErrDataDiffers, was)
	}
	var discarded int64
	if hasData {
		if discarded, err = s.discardBatches(ctx, tx, path, sum, opts); err != nil {
			return res, err
		}
	}
	// Emptying the tables in this transaction lets COPY ... FREEZE write rows already frozen
	// and pages already all-visible, so reads are index-only from the first query on without
	// waiting for a VACUUM. TRUNCATE blocks readers until commit; a replace is an operator's
	// act, and a first seed runs before the instance serves.
	if _, err := tx.Exec(ctx, "TRUNCATE prices, price_daily, ports, regions, prices_displaced, reference_changes"); err != nil {
		return res, fmt.Errorf("seed %s: empty tables: %w", path, err)
	}
	// The seed's own batch record owns the rows it loads: the column default of
	// prices.batch_id reads rates.batch_id.
	var batchID int64
	mode := "append"
	if hasData {
		mode = "replace"
	}
	if err := tx.QueryRow(ctx, `INSERT INTO batches (source_kind, source_name, status, rows, bytes, sha256,
			started_at, finished_at, duration_ms, kind, mode, received_at)
		VALUES ('seed', $1, 'loaded', 0, 0, $2, $3, $3, 0, 'prices', $4, $3) RETURNING id`,
		path, sum, start, mode).Scan(&batchID); err != nil {
		return res, fmt.Errorf("seed %s: record the seed's batch: %w", path, err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('rates.batch_id', $1, true)", strconv.FormatInt(batchID, 10)); err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	restore, err := dropForLoad(ctx, tx)
	if err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}

	f, err := os.Open(path) //nolint:gosec // G304: the operator names the dump to load
	if err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	defer f.Close()
	h := &countingHash{h: sha256.New()}
	lineage := false
	if err := load(ctx, conn.Conn().PgConn(), io.TeeReader(f, h), res.Rows, &lineage); err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	if lineage {
		// A dump of this service's own database names the batches of its source database,
		// which do not exist here: the rows belong to this seed. (The foreign keys are off
		// until restore, so the values loaded are never checked.)
		if _, err := tx.Exec(ctx, "UPDATE prices SET batch_id = $1 WHERE batch_id IS DISTINCT FROM $1", batchID); err != nil {
			return res, fmt.Errorf("seed %s: set the lineage of the dump's prices: %w", path, err)
		}
	}
	if got := hex.EncodeToString(h.h.Sum(nil)); got != sum {
		return res, fmt.Errorf("seed %s: file changed while it was being imported", path)
	}
	for _, stmt := range restore {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return res, fmt.Errorf("seed %s: check loaded data: %w", path, describe(err))
		}
	}
	// Statistics for what GET /rates plans with, so its first queries use price_daily's key.
	// prices, the largest table and one no request reads, is left to autovacuum, which
	// analyzes a table that has just received this many rows within a minute: sampling it
	// here was a third of the seed's time.
	if _, err := tx.Exec(ctx, "ANALYZE regions, ports, price_daily"); err != nil {
		return res, fmt.Errorf("seed %s: analyze: %w", path, err)
	}
	res.Duration = time.Since(start)
	if _, err := tx.Exec(ctx, `UPDATE batches SET rows = $2, bytes = $3, finished_at = now(), duration_ms = $4 WHERE id = $1`,
		batchID, res.Rows["prices"], h.size, res.Duration.Milliseconds()); err != nil {
		return res, fmt.Errorf("seed %s: record the seed's batch: %w", path, err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('rates.batch_id', '', true)"); err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO seed_history (sha256, source, regions, ports, prices, duration_ms, replaced)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		sum, path, res.Rows["regions"], res.Rows["ports"], res.Rows["prices"], res.Duration.Milliseconds(), hasData); err != nil {
		return res, fmt.Errorf("seed %s: record: %w", path, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("seed %s: commit: %w", path, describe(err))
	}
	// price_daily was rebuilt by INSERT, so its pages are not yet known to be all-visible and
	// GET /rates's index-only scans would visit the heap for every row until autovacuum gets
	// to it; the new data is already committed and served, so a failure here only costs that.
	if _, err := conn.Exec(ctx, "VACUUM price_daily"); err != nil {
		s.log.Warn("seed: vacuum price_daily failed; autovacuum will do it", "error", err.Error())
	}
	res.Duration = time.Since(start)
	s.log.Info("seed applied", "file", path, "sha256", sum, "regions", res.Rows["regions"],
		"ports", res.Rows["ports"], "prices", res.Rows["prices"], "replaced", hasData, "discarded_batches", discarded,
		"duration_ms", res.Duration.Milliseconds())
	return res, nil
}

// countingHash hashes and counts what the dump's reader passes through.
type countingHash struct {
	h    hash.Hash
	size int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.size += int64(len(p))
	return c.h.Write(p)
}

// discardBatches applies the replace policy: ingested batches still loaded would lose their
// data to the replace, so it is refused unless opts.DiscardBatches, and then they (and the
// previous seed's record) are recorded as discarded. It returns how many ingested batches were.
func (s *Seeder) discardBatches(ctx context.Context, tx pgx.Tx, path, sum string, opts Options) (int64, error) {
	var batches, rows int64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(rows), 0) FROM batches
		WHERE status = 'loaded' AND source_kind <> 'seed'`).Scan(&batches, &rows); err != nil {
		return 0, fmt.Errorf("seed %s: count ingested batches: %w", path, err)
	}
	if batches > 0 && !opts.DiscardBatches {
		return 0, fmt.Errorf("seed %s: %w: replacing the data would discard %d loaded batches (%d rows); "+
			"revert them or pass --discard-batches to discard them", path, ErrBatchesPresent, batches, rows)
	}
	if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'discarded', reverted_at = now(), content_key = NULL,
		revert_reason = 'discarded by rates seed --replace of ' || $1 WHERE status = 'loaded'`, sum); err != nil {
		return 0, fmt.Errorf("seed %s: record discarded batches: %w", path, err)
	}
	if batches > 0 {
		s.log.Warn("seed replace discards ingested batches", "file", path, "batches", batches, "rows", rows)
	}
	return batches, nil
}

// dropForLoad removes, for the load, the foreign keys of the loaded tables, the secondary
// indexes of prices and the per-row maintenance of price_daily (its key and the triggers that
// add and subtract each statement's rows), and returns the statements that restore them, taken
// from the catalog so they are exactly what the migrations created. Checking a foreign key
// once, set-based, when it is added back is far cheaper than a deferred check per row, a
// sorted index build is faster than inserting every row into it, and price_daily is rebuilt
// with one GROUP BY over the loaded prices instead of an upsert per route and day; pg_dump
// orders its own output the same way. The seed holds prices' exclusive lock (TRUNCATE) until
// it commits, so no other writer can run while the triggers are off.
func dropForLoad(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid), 0 AS restore_order
		FROM pg_index
		WHERE indrelid = 'prices'::regclass AND NOT indisunique
		UNION ALL
		-- price_daily, emptied with prices (TRUNCATE), is filled again from every price the
		-- seed leaves before its key is added back and its triggers are on again.
		SELECT '', $1, 1
		UNION ALL
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
		       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)), 2
		FROM pg_constraint
		WHERE contype = 'p' AND conrelid = 'price_daily'::regclass
		UNION ALL
		SELECT format('ALTER TABLE prices DISABLE TRIGGER %I', tgname),
		       format('ALTER TABLE prices ENABLE %s TRIGGER %I',
		              CASE tgenabled WHEN 'A' THEN 'ALWAYS' WHEN 'R' THEN 'REPLICA' ELSE '' END, tgname), 3
		FROM pg_trigger
		WHERE tgrelid = 'prices'::regclass AND NOT tgisinternal AND tgenabled <> 'D'
		  AND tgfoid IN ('price_daily_add'::regproc, 'price_daily_remove'::regproc)
		UNION ALL
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
		       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)), 4
		FROM pg_constraint
		WHERE contype = 'f' AND conrelid = ANY (ARRAY['prices', 'ports', 'regions']::regclass[])
		ORDER BY 3, 1`, store.RebuildPriceDailySQL)
	if err != nil {
		return nil, fmt.Errorf("read constraints, indexes and triggers: %w", err)
	}
	type ddl struct{ drop, restore string }
	ddls, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ddl, error) {
		var d ddl
		return d, row.Scan(&d.drop, &d.restore, nil) // the third column only orders the rows
	})
	if err != nil {
		return nil, fmt.Errorf("read constraints, indexes and triggers: %w", err)
	}
	restore := make([]string, 0, len(ddls))
	for _, d := range ddls {
		if d.drop != "" {
			if _, err := tx.Exec(ctx, d.drop); err != nil {
				return nil, fmt.Errorf("prepare load: %w", err)
			}
		}
		restore = append(restore, d.restore)
	}
	return restore, nil
}

// currentState reports the SHA-256 of the newest applied dump ("" if none) and whether any of
// the tables holds rows.
func currentState(ctx context.Context, tx pgx.Tx) (string, bool, error) {
	var current string
	err := tx.QueryRow(ctx, "SELECT sha256 FROM seed_history ORDER BY id DESC LIMIT 1").Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("read seed history: %w", err)
	}
	var hasData bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM regions) OR EXISTS (SELECT 1 FROM ports)
		OR EXISTS (SELECT 1 FROM prices)`).Scan(&hasData)
	if err != nil {
		return "", false, fmt.Errorf("check for existing data: %w", err)
	}
	return current, hasData, nil
}

// load streams every statement of the dump into the open transaction on conn. lineage is set
// when the dump's prices carry their own batch_id.
func load(ctx context.Context, conn *pgconn.PgConn, r io.Reader, rows map[string]int64, lineage *bool) error {
	sc := pgdump.NewScanner(r)
	var pending *pgdump.Statement
	for {
		st := pending
		pending = nil
		if st == nil {
			var err error
			if st, err = sc.Next(); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
		}
		if st.Table == "prices" && slices.Contains(st.Columns, "batch_id") {
			*lineage = true
		}
		switch st.Kind {
		case pgdump.KindCopy:
			data := sc.CopyRows(st)
			tag, err := conn.CopyFrom(ctx, data, copySQL(st.Table, st.Columns))
			if err != nil {
				return copyError(errors.Join(data.Err(), err), st, func(n int) int { return data.FirstLine + n - 1 })
			}
			rows[st.Table] += tag.RowsAffected()
		case pgdump.KindInsert:
			// Consecutive INSERTs into the same columns go to the server as one COPY stream.
			ins := newInsertRows(sc, st)
			tag, err := conn.CopyFrom(ctx, ins, copySQL(st.Table, st.Columns))
			if err != nil {
				return copyError(errors.Join(ins.Err(), err), st, ins.lineOfRow)
			}
			rows[st.Table] += tag.RowsAffected()
			pending = ins.next
		}
	}
}

func copySQL(table string, columns []string) string {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FREEZE)", pgx.Identifier{table}.Sanitize(), strings.Join(quoted, ", "))
}

// insertRows feeds the rows of a run of INSERT statements into one COPY. It stops at the first
// statement that is not an INSERT into the same table and columns, and keeps it in next.
type insertRows struct {
	*copystream.Reader // Err is the first problem in the statements read
	sc                 *pgdump.Scanner
	first              *pgdump.Statement
	current            *pgdump.Statement
	row                int
	next               *pgdump.Statement
	// rowLines maps the n-th row sent (from 1) to the dump line of its statement, for errors.
	rowLines []int
}

func newInsertRows(sc *pgdump.Scanner, first *pgdump.Statement) *insertRows {
	r := &insertRows{sc: sc, first: first, current: first}
	r.Reader = copystream.NewReader(r.nextRow)
	return r
}

// maxRowsPerInsertCopy bounds one COPY stream, and with it the memory of rowLines.
const maxRowsPerInsertCopy = 50_000

// nextRow returns the next row of the run, reading the next statement when the current one is
// used up, or io.EOF at the end of the run.
func (r *insertRows) nextRow() ([]byte, error) {
	if r.row == len(r.current.Rows) {
		if len(r.rowLines) >= maxRowsPerInsertCopy {
			return nil, io.EOF
		}
		st, err := r.sc.Next()
		if err != nil {
			return nil, err // io.EOF ends the run with the dump
		}
		if st.Kind != pgdump.KindInsert || st.Table != r.first.Table || !slices.Equal(st.Columns, r.first.Columns) {
			r.next = st
			return nil, io.EOF
		}
		r.current, r.row = st, 0
		return nil, nil
	}
	r.row++
	r.rowLines = append(r.rowLines, r.current.Line)
	return r.current.Rows[r.row-1], nil
}

func (r *insertRows) lineOfRow(n int) int {
	if n >= 1 && n <= len(r.rowLines) {
		return r.rowLines[n-1]
	}
	return r.first.Line
}

var copyLineRE = regexp.MustCompile(`line (\d+)`)

// copyError points a failed COPY at the dump line the server rejected.
func copyError(err error, st *pgdump.Statement, lineOfRow func(int) int) error {
	var lineErr *pgdump.LineError
	if errors.As(err, &lineErr) {
		return lineErr
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if m := copyLineRE.FindStringSubmatch(pgErr.Where); m != nil {
			if n, convErr := strconv.Atoi(m[1]); convErr == nil {
				return &pgdump.LineError{Line: lineOfRow(n), Err: fmt.Errorf("%s: %w", st.Table, describe(err))}
			}
		}
	}
	return &pgdump.LineError{Line: st.Line, Err: fmt.Errorf("load %s: %w", st.Table, describe(err))}
}

// describe adds the server's detail (the offending key of a constraint, say) to its message.
func describe(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Detail != "" {
		return fmt.Errorf("%w (%s)", err, pgErr.Detail)
	}
	return err
}

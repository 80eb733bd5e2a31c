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

	"rates/internal/batchstore"
	"rates/internal/copystream"
	"rates/internal/domain"
	"rates/internal/pgdump"
	"rates/internal/store"
)

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
// the others wait on an advisory lock, then find the dump applied and do nothing. Every error
// starts with "seed PATH:"; ErrDataDiffers and ErrBatchesPresent are refusals that leave the
// database as it was, like every other failure.
func (s *Seeder) ApplyFile(ctx context.Context, path string, opts Options) (Result, error) {
	res, err := s.applyFile(ctx, path, opts)
	if err != nil {
		return res, fmt.Errorf("seed %s: %w", path, err)
	}
	return res, nil
}

// importRun is one import of a dump, in one transaction on one connection.
type importRun struct {
	conn    *pgxpool.Conn
	tx      pgx.Tx
	path    string
	sum     string // SHA-256 of the file, hashed before the import and checked after it
	start   time.Time
	replace bool  // the tables held data, which the dump replaces
	batchID int64 // the seed's own batch record, which owns the rows the dump loads
	bytes   int64 // bytes of the file read by the import
}

func (s *Seeder) applyFile(ctx context.Context, path string, opts Options) (Result, error) {
	res := Result{File: path, Rows: map[string]int64{}}
	run := &importRun{path: path, start: time.Now()}
	var err error
	if run.sum, err = domain.FileSHA256(path); err != nil {
		return res, err
	}
	res.SHA256 = run.sum
	if run.conn, err = s.pool.Acquire(ctx); err != nil {
		return res, fmt.Errorf("acquire connection: %w", err)
	}
	defer run.conn.Release()
	if run.tx, err = run.conn.Begin(ctx); err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = run.tx.Rollback(context.WithoutCancel(ctx)) }()

	if res.Skipped, err = s.lockAndCheck(ctx, run, opts); err != nil || res.Skipped {
		res.Duration = time.Since(run.start)
		return res, err
	}
	discarded, restore, err := s.prepare(ctx, run, opts)
	if err != nil {
		return res, err
	}
	if err := run.loadDump(ctx, res.Rows); err != nil {
		return res, err
	}
	if err := run.finish(ctx, restore, &res); err != nil {
		return res, err
	}
	if err := run.tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", describe(err))
	}
	s.vacuum(ctx, run.conn)
	res.Duration = time.Since(run.start)
	s.log.Info("seed applied", "file", path, "sha256", run.sum, "regions", res.Rows["regions"],
		"ports", res.Rows["ports"], "prices", res.Rows["prices"], "replaced", run.replace, "discarded_batches", discarded,
		"duration_ms", res.Duration.Milliseconds())
	return res, nil
}

// lockAndCheck waits for the seed lock, then decides from what the database holds: the dump
// applied last, asked again without Replace, is skipped; other data without Replace is refused
// with ErrDataDiffers.
func (s *Seeder) lockAndCheck(ctx context.Context, run *importRun, opts Options) (skip bool, err error) {
	if err := batchstore.LockSeed(ctx, run.tx); err != nil {
		return false, err
	}
	current, hasData, err := currentState(ctx, run.tx)
	if err != nil {
		return false, err
	}
	run.replace = hasData
	switch {
	case current == run.sum && !opts.Replace:
		s.log.Info("seed already applied, nothing to do", "file", run.path, "sha256", run.sum)
		return true, nil
	case hasData && !opts.Replace:
		was := "data not loaded by the seeder"
		if current != "" {
			was = "the dump with sha256 " + current
		}
		return false, fmt.Errorf("%w: it holds %s, this dump has sha256 %s", ErrDataDiffers, was, run.sum)
	}
	return false, nil
}

// prepare makes the tables ready for the dump: it applies the replace policy to the ingested
// batches, empties the tables, records the seed's batch and drops what the load rebuilds. It
// returns how many ingested batches a replace discarded and the statements that restore what
// was dropped.
func (s *Seeder) prepare(ctx context.Context, run *importRun, opts Options) (discarded int64, restore []string, err error) {
	if run.replace {
		if discarded, err = s.discardBatches(ctx, run.tx, run.path, run.sum, opts); err != nil {
			return 0, nil, err
		}
	}
	// Emptying the tables in this transaction lets COPY ... FREEZE write rows already frozen
	// and pages already all-visible, so reads are index-only from the first query on without
	// waiting for a VACUUM. TRUNCATE blocks readers until commit; a replace is an operator's
	// act, and a first seed runs before the instance serves.
	if _, err := run.tx.Exec(ctx, "TRUNCATE prices, price_daily, ports, regions, prices_displaced, reference_changes"); err != nil {
		return 0, nil, fmt.Errorf("empty tables: %w", err)
	}
	if err := run.recordBatch(ctx); err != nil {
		return 0, nil, err
	}
	restore, err = dropForLoad(ctx, run.tx)
	return discarded, restore, err
}

// recordBatch inserts the seed's own batch record and makes it the owner of the rows loaded
// next: the column default of prices.batch_id reads the setting rates.batch_id.
func (run *importRun) recordBatch(ctx context.Context) error {
	mode := "append"
	if run.replace {
		mode = "replace"
	}
	if err := run.tx.QueryRow(ctx, `INSERT INTO batches (source_kind, source_name, status, rows, bytes, sha256,
			started_at, finished_at, duration_ms, kind, mode, received_at)
		VALUES ('seed', $1, 'loaded', 0, 0, $2, $3, $3, 0, 'prices', $4, $3) RETURNING id`,
		run.path, run.sum, run.start, mode).Scan(&run.batchID); err != nil {
		return fmt.Errorf("record the seed's batch: %w", err)
	}
	if _, err := run.tx.Exec(ctx, "SELECT set_config('rates.batch_id', $1, true)", strconv.FormatInt(run.batchID, 10)); err != nil {
		return fmt.Errorf("set rates.batch_id: %w", err)
	}
	return nil
}

// loadDump streams the file into the emptied tables and checks that the bytes loaded are the
// bytes hashed before the import.
func (run *importRun) loadDump(ctx context.Context, rows map[string]int64) error {
	f, err := os.Open(run.path) //nolint:gosec // G304: the operator names the dump to load
	if err != nil {
		return err
	}
	defer f.Close()
	h := &countingHash{h: sha256.New()}
	lineage := false
	if err := load(ctx, run.conn.Conn().PgConn(), io.TeeReader(f, h), rows, &lineage); err != nil {
		return err
	}
	if lineage {
		// A dump of this service's own database names the batches of its source database,
		// which do not exist here: the rows belong to this seed. (The foreign keys are off
		// until restore, so the values loaded are never checked.)
		if _, err := run.tx.Exec(ctx, "UPDATE prices SET batch_id = $1 WHERE batch_id IS DISTINCT FROM $1", run.batchID); err != nil {
			return fmt.Errorf("set the lineage of the dump's prices: %w", err)
		}
	}
	if got := hex.EncodeToString(h.h.Sum(nil)); got != run.sum {
		return errors.New("file changed while it was being imported")
	}
	run.bytes = h.size
	return nil
}

// finish restores what prepare dropped, which checks the loaded data against every constraint,
// analyzes the tables reads plan with, and records the run in batches and seed_history.
func (run *importRun) finish(ctx context.Context, restore []string, res *Result) error {
	for _, stmt := range restore {
		if _, err := run.tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("check loaded data: %w", describe(err))
		}
	}
	// Statistics for what GET /rates plans with, so its first queries use price_daily's key.
	// prices, the largest table and one no request reads, is left to autovacuum, which
	// analyzes a table that has just received this many rows within a minute.
	if _, err := run.tx.Exec(ctx, "ANALYZE regions, ports, price_daily"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	res.Duration = time.Since(run.start)
	if _, err := run.tx.Exec(ctx, `UPDATE batches SET rows = $2, bytes = $3, finished_at = now(), duration_ms = $4 WHERE id = $1`,
		run.batchID, res.Rows["prices"], run.bytes, res.Duration.Milliseconds()); err != nil {
		return fmt.Errorf("record the seed's batch: %w", err)
	}
	if _, err := run.tx.Exec(ctx, "SELECT set_config('rates.batch_id', '', true)"); err != nil {
		return fmt.Errorf("clear rates.batch_id: %w", err)
	}
	if _, err := run.tx.Exec(ctx, `INSERT INTO seed_history (sha256, source, regions, ports, prices, duration_ms, replaced)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		run.sum, run.path, res.Rows["regions"], res.Rows["ports"], res.Rows["prices"], res.Duration.Milliseconds(), run.replace); err != nil {
		return fmt.Errorf("record the seed in seed_history: %w", err)
	}
	return nil
}

// vacuum marks price_daily's pages all-visible after the commit. price_daily was rebuilt by
// INSERT, so until then GET /rates's index-only scans would visit the heap for every row; the
// new data is already committed and served, so a failure here costs only that, until
// autovacuum gets to it.
func (s *Seeder) vacuum(ctx context.Context, conn *pgxpool.Conn) {
	if _, err := conn.Exec(ctx, "VACUUM price_daily"); err != nil {
		s.log.Warn("seed: vacuum price_daily failed; autovacuum will do it", "error", err.Error())
	}
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
	var batches, rows, staging int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'loaded'), coalesce(sum(rows) FILTER (WHERE status = 'loaded'), 0),
			count(*) FILTER (WHERE status = 'staging')
		FROM batches WHERE status IN ('loaded', 'staging') AND source_kind <> 'seed'`).Scan(&batches, &rows, &staging); err != nil {
		return 0, fmt.Errorf("count ingested batches: %w", err)
	}
	if (batches > 0 || staging > 0) && !opts.DiscardBatches {
		return 0, fmt.Errorf("%w: replacing the data would discard %d loaded batches (%d rows) and %d batches being staged",
			ErrBatchesPresent, batches, rows, staging)
	}
	// A batch being staged fails first: the TRUNCATE that follows takes its staged rows with
	// every other row, which the schema allows once no batch stages. The seed's exclusive lock
	// has waited for the parts in flight, and keeps new ones out until the seed commits.
	if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'failed', finished_at = now(),
			duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint,
			report = jsonb_build_object('bad_rows', 0, 'errors', jsonb_build_array(jsonb_build_object('line', 0,
				'reason', 'discarded while its parts were staged by rates seed --replace of ' || $1)))
		WHERE status = 'staging'`, sum); err != nil {
		return 0, fmt.Errorf("fail the batches being staged: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'discarded', reverted_at = now(), content_key = NULL,
		revert_reason = 'discarded by rates seed --replace of ' || $1 WHERE status = 'loaded'`, sum); err != nil {
		return 0, fmt.Errorf("record discarded batches: %w", err)
	}
	if batches > 0 || staging > 0 {
		s.log.Warn("seed replace discards ingested batches", "file", path, "batches", batches, "rows", rows, "staging_batches", staging)
	}
	return batches + staging, nil
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
				return nil, fmt.Errorf("prepare the load: %s: %w", d.drop, err)
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
		OR EXISTS (SELECT 1 FROM published_prices)`).Scan(&hasData)
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

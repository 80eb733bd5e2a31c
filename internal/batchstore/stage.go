package batchstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// PartRows is one part's rows as a parser hands them over.
type PartRows interface {
	// Read returns the rows as COPY text for the staging table: the CSV line number, orig_code,
	// dest_code, day and price, tab-separated, one row per line, and \N for a field that failed
	// the checks in Go (so that the row still counts as bad in SQL).
	io.Reader
	// Checked tells, once Read returned io.EOF, what the checks in Go found. An error means
	// that reading the part failed (the network, a client), not its content: the part stays
	// pending for another attempt.
	Checked() (Checked, error)
	Close() error
}

// Checked is what a parser's checks found in a part.
type Checked struct {
	Rows    int64
	BadRows int64 // rows with a problem found in Go
	// Problems are the first problems found in Go, by line.
	Problems []Problem
	// Unreadable says the part could not be read as rows past its last problem (a wrong
	// header, broken compression): it is bad whatever else holds.
	Unreadable bool
	// Codes are the distinct well-formed port codes of the rows; nil when there were too many
	// to hold, and they are checked over the staged rows instead.
	Codes  []string
	Digest Digest
	SHA256 string // of the part's decompressed bytes
	Bytes  int64  // as received
}

// PartOutcome is what StagePart did with a part.
type PartOutcome string

// The outcomes of StagePart.
const (
	PartStaged PartOutcome = "staged"
	// PartChecked: the part is sound, but another part is bad and the batch will be rejected:
	// its rows were checked, for the batch's report to cover every part, and not staged.
	PartChecked PartOutcome = "checked"
	PartBad     PartOutcome = "bad"
	// PartSettled: an earlier delivery settled the part (staged, checked or bad): nothing done.
	PartSettled PartOutcome = "settled already"
	// PartBusy: another loader is settling the part now: try again later.
	PartBusy PartOutcome = "busy"
	// PartBatchEnded: the batch no longer stages (published, rejected, failed): nothing to do.
	PartBatchEnded PartOutcome = "batch ended"
)

// PartResult is the outcome of StagePart.
type PartResult struct {
	Outcome PartOutcome
	// BatchStatus is the batch's status after the call.
	BatchStatus Status
	Rows        int64
	RouteDays   int64
	// Pending counts the parts of the batch not settled yet after the call, and Bad those
	// found bad: with BatchStatus staging, both 0 means the batch can be published.
	Pending int
	Bad     int
	// Report lists the part's problems when Outcome is PartBad.
	Report  *Report
	Timings map[string]int64
}

// StagePart settles part (from 1) of batch batchID in a transaction of its own that holds the
// part's row. Its rows are checked; when sound they go into prices under the batch's id,
// unpublished, and their aggregate into staged_daily; when not, the part is recorded bad with
// its report. Once a part is bad, the others are checked and not staged, and when the last one
// is settled the batch is rejected with the report of them all (Reject). open is called only
// for a part to settle. A part settled already, or of a batch no longer staging, is left as it
// is; a batch staging past its deadline fails (Fail). An error means nothing was recorded and
// the part may be staged again.
func (s *Store) StagePart(ctx context.Context, batchID int64, part int, open func(ctx context.Context, key string) (PartRows, error)) (PartResult, error) {
	res, err := s.stagePart(ctx, batchID, part, open)
	if err != nil {
		return res, fmt.Errorf("stage part %d of batch %d: %w", part, batchID, err)
	}
	return res, nil
}

func (s *Store) stagePart(ctx context.Context, batchID int64, part int, open func(ctx context.Context, key string) (PartRows, error)) (PartResult, error) {
	res, budget, claimed, err := s.claim(ctx, batchID, part)
	if err != nil || !claimed {
		return res, err
	}
	err = s.inTx(ctx, budget, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		res, err = s.stageTx(ctx, tx, batchID, part, open)
		return err
	})
	if err != nil || res.Outcome == PartBusy || res.Outcome == PartBatchEnded {
		return res, err
	}
	return s.settle(ctx, batchID, res)
}

// claim counts an attempt at the part, in a statement of its own so that an attempt that dies
// with its loader counts too, and returns the time left before the batch's deadline (by the
// database's clock). It claims nothing (and says why in res) when the part is not pending, is
// held by another loader, or the batch no longer stages; a batch past its deadline fails here.
func (s *Store) claim(ctx context.Context, batchID int64, part int) (res PartResult, left time.Duration, claimed bool, err error) {
	var partStatus string
	var leftMS int64
	err = s.pool.QueryRow(ctx, `SELECT b.status, p.status,
			(extract(epoch FROM b.started_at + $3 * interval '1 millisecond' - now()) * 1000)::bigint
		FROM batches b JOIN batch_parts p ON p.batch_id = b.id WHERE b.id = $1 AND p.part = $2`,
		batchID, part, s.maxDuration.Milliseconds()).Scan(&res.BatchStatus, &partStatus, &leftMS)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, 0, false, ErrNoBatch
	}
	if err != nil {
		return res, 0, false, fmt.Errorf("read the part: %w", err)
	}
	left = time.Duration(leftMS) * time.Millisecond
	switch {
	case res.BatchStatus != StatusStaging:
		res.Outcome = PartBatchEnded
		return res, left, false, nil
	case left <= 0:
		ended, err := s.Fail(ctx, batchID, s.deadlineReason(ctx, batchID))
		res.Outcome, res.BatchStatus = PartBatchEnded, ended.Status
		return res, left, false, err
	case partStatus != "pending":
		// Settled by an earlier delivery, which may have died before it rejected the batch.
		res.Outcome = PartSettled
		res, err = s.settle(ctx, batchID, res)
		return res, left, false, err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE batch_parts p SET attempts = p.attempts + 1, last_attempt_at = now()
		FROM (SELECT batch_id, part FROM batch_parts WHERE batch_id = $1 AND part = $2 AND status = 'pending'
		      FOR UPDATE SKIP LOCKED) c
		WHERE p.batch_id = c.batch_id AND p.part = c.part`, batchID, part)
	if err != nil {
		return res, left, false, fmt.Errorf("count the attempt: %w", err)
	}
	if tag.RowsAffected() == 0 {
		res.Outcome = PartBusy
		return res, left, false, nil
	}
	return res, left, true, nil
}

// settle reads how many parts are left, as committed now, and rejects the batch once every
// part is settled and one of them is bad. Each loader does so after its part commits, so the
// last of them sees every part settled; a rejection that runs twice does nothing the second
// time.
func (s *Store) settle(ctx context.Context, batchID int64, res PartResult) (PartResult, error) {
	err := s.pool.QueryRow(ctx, `SELECT b.status, count(*) FILTER (WHERE p.status = 'pending'), count(*) FILTER (WHERE p.status = 'bad')
		FROM batches b JOIN batch_parts p ON p.batch_id = b.id WHERE b.id = $1 GROUP BY b.status`, batchID).Scan(&res.BatchStatus, &res.Pending, &res.Bad)
	if err != nil {
		return res, fmt.Errorf("count the parts left: %w", err)
	}
	if res.BatchStatus == StatusStaging && res.Pending == 0 && res.Bad > 0 {
		ended, err := s.Reject(ctx, batchID)
		if err != nil {
			return res, err
		}
		res.BatchStatus = ended.Status
	}
	return res, nil
}

// stageTx settles the part in tx, which holds the batch's row (FOR KEY SHARE: a publish or a
// rejection waits for every part in flight) and the part's row.
func (s *Store) stageTx(ctx context.Context, tx pgx.Tx, batchID int64, part int, open func(ctx context.Context, key string) (PartRows, error)) (PartResult, error) {
	res := PartResult{Timings: map[string]int64{}}
	if err := tx.QueryRow(ctx, `SELECT status FROM batches WHERE id = $1 FOR KEY SHARE`, batchID).Scan(&res.BatchStatus); err != nil {
		return res, fmt.Errorf("lock the batch: %w", err)
	}
	if res.BatchStatus != StatusStaging {
		res.Outcome = PartBatchEnded
		return res, nil
	}
	var key, want string
	err := tx.QueryRow(ctx, `SELECT key, sha256 FROM batch_parts WHERE batch_id = $1 AND part = $2 AND status = 'pending'
		FOR UPDATE SKIP LOCKED`, batchID, part).Scan(&key, &want)
	if errors.Is(err, pgx.ErrNoRows) {
		// Settled, or being settled, since the claim.
		res.Outcome = PartBusy
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("lock the part: %w", err)
	}
	checked, err := s.copyPart(ctx, tx, key, open, res.Timings)
	if err != nil {
		return res, err
	}
	phase := time.Now()
	report, portsLocked, err := s.check(ctx, tx, key, want, checked)
	if err != nil {
		return res, err
	}
	res.Timings["check_ms"] = time.Since(phase).Milliseconds()
	res.Rows = checked.Rows
	if report != nil {
		res.Outcome, res.Report = PartBad, report
		return res, recordPart(ctx, tx, batchID, part, "bad", checked, report, res.Timings)
	}
	var doomed bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM batch_parts WHERE batch_id = $1 AND status = 'bad')`, batchID).Scan(&doomed); err != nil {
		return res, fmt.Errorf("look for bad parts: %w", err)
	}
	if doomed {
		res.Outcome = PartChecked
		return res, recordPart(ctx, tx, batchID, part, "checked", checked, nil, res.Timings)
	}
	res.RouteDays, err = insertPart(ctx, tx, batchID, part, checked, portsLocked, res.Timings)
	res.Outcome = PartStaged
	return res, err
}

// The staging table lives and dies with the part's transaction; line lets the set-based checks
// say where a bad row is.
const (
	createPartRowsSQL = `CREATE TEMP TABLE part_rows (
		line      bigint NOT NULL,
		orig_code text,
		dest_code text,
		day       date,
		price     integer
	) ON COMMIT DROP`
	copyPartRowsSQL = `COPY part_rows (line, orig_code, dest_code, day, price) FROM STDIN`
)

// copyPart opens the part and streams its rows into the staging table.
func (s *Store) copyPart(ctx context.Context, tx pgx.Tx, key string, open func(ctx context.Context, key string) (PartRows, error), timings map[string]int64) (Checked, error) {
	phase := time.Now()
	// The sorts of the part's rows (about 250,000 in a 2M-row batch of 8 parts) stay in memory.
	if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
		return Checked{}, fmt.Errorf("set work_mem: %w", err)
	}
	if _, err := tx.Exec(ctx, createPartRowsSQL); err != nil {
		return Checked{}, fmt.Errorf("create the staging table: %w", err)
	}
	rows, err := open(ctx, key)
	if err != nil {
		return Checked{}, fmt.Errorf("open part %s: %w", key, err)
	}
	defer rows.Close()
	tag, copyErr := tx.Conn().PgConn().CopyFrom(ctx, rows, copyPartRowsSQL)
	checked, err := rows.Checked()
	if err != nil {
		return Checked{}, fmt.Errorf("read part %s: %w", key, err)
	}
	if copyErr != nil {
		return Checked{}, fmt.Errorf("copy part %s into the staging table: %w", key, copyErr)
	}
	if tag.RowsAffected() != checked.Rows {
		return Checked{}, fmt.Errorf("the staging table holds %d rows of part %s, its parser read %d", tag.RowsAffected(), key, checked.Rows)
	}
	timings["copy_ms"] = time.Since(phase).Milliseconds()
	return checked, nil
}

// Set-based checks over the staging table, for a part with a problem or too many codes to
// check from Go: a field that failed in Go is NULL there.
const (
	countBadSQL = `SELECT count(*) FROM part_rows t
		LEFT JOIN ports o ON o.code = t.orig_code
		LEFT JOIN ports d ON d.code = t.dest_code
		WHERE o.code IS NULL OR d.code IS NULL OR t.day IS NULL OR t.price IS NULL`
	unknownCodesSQL = `SELECT line, col, code FROM (
		SELECT t.line, 1 AS ord, 'orig_code' AS col, t.orig_code AS code FROM part_rows t
		WHERE t.orig_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.code = t.orig_code)
		UNION ALL
		SELECT t.line, 2, 'dest_code', t.dest_code FROM part_rows t
		WHERE t.dest_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.code = t.dest_code)
	) e ORDER BY line, ord LIMIT $1`
)

// check returns nil when every row of the part can go into prices, or its report. portsLocked
// says every port the rows name is locked against deletion until the part commits, which the
// foreign keys' per-row checks would otherwise ensure.
func (s *Store) check(ctx context.Context, tx pgx.Tx, key, want string, c Checked) (report *Report, portsLocked bool, err error) {
	problems := slices.Clone(c.Problems)
	if c.SHA256 != want {
		problems = append(problems, Problem{Reason: fmt.Sprintf("part content has sha256 %s, the manifest says %s", c.SHA256, want)})
	}
	if c.Unreadable {
		return s.report(key, c.BadRows, problems), false, nil
	}
	if c.Codes != nil {
		rows, err := tx.Query(ctx, `SELECT code FROM ports WHERE code = ANY($1::text[]) FOR KEY SHARE`, c.Codes)
		if err != nil {
			return nil, false, fmt.Errorf("lock the ports of the part: %w", err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, false, fmt.Errorf("lock the ports of the part: %w", err)
		}
		if c.BadRows == 0 && len(found) == len(c.Codes) {
			if len(problems) > 0 {
				return s.report(key, 0, problems), false, nil
			}
			return nil, true, nil
		}
	}
	var bad int64
	if err := tx.QueryRow(ctx, countBadSQL).Scan(&bad); err != nil {
		return nil, false, fmt.Errorf("check the rows: %w", err)
	}
	if bad == 0 && len(problems) == 0 {
		return nil, false, nil
	}
	rows, err := tx.Query(ctx, unknownCodesSQL, s.maxErrors)
	if err != nil {
		return nil, false, fmt.Errorf("list unknown port codes: %w", err)
	}
	unknown, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Problem, error) {
		var p Problem
		var code string
		err := r.Scan(&p.Line, &p.Column, &code)
		p.Reason = fmt.Sprintf("unknown port code %q", code)
		return p, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list unknown port codes: %w", err)
	}
	return s.report(key, bad, append(problems, unknown...)), false, nil
}

// report orders a part's problems by line and field, keeps the first MaxErrors and names the
// part in each.
func (s *Store) report(key string, bad int64, problems []Problem) *Report {
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(columnOrder(a.Column), columnOrder(b.Column)))
	})
	problems = problems[:min(len(problems), s.maxErrors)]
	for i := range problems {
		problems[i].Part = key
	}
	return &Report{BadRows: bad, Problems: problems}
}

// columnOrder sorts the problems of one line in the order of the CSV's fields.
func columnOrder(c string) int {
	return slices.Index([]string{"", "orig_code", "dest_code", "day", "price"}, c)
}

// recordPart records the part as bad, with its report, or as checked; its rows never leave the
// staging table.
func recordPart(ctx context.Context, tx pgx.Tx, batchID int64, part int, status string, c Checked, report *Report, timings map[string]int64) error {
	var reportJSON []byte
	var bad int64
	if report != nil {
		var err error
		if reportJSON, err = json.Marshal(report); err != nil {
			return fmt.Errorf("encode the report: %w", err)
		}
		bad = report.BadRows
	}
	timingsJSON, _ := json.Marshal(timings)
	if _, err := tx.Exec(ctx, `UPDATE batch_parts SET status = $3, rows = $4, bad_rows = $5, bytes = $6, report = $7,
		timings = $8, finished_at = now() WHERE batch_id = $1 AND part = $2`,
		batchID, part, status, c.Rows, bad, c.Bytes, reportJSON, timingsJSON); err != nil {
		return fmt.Errorf("record the %s part: %w", status, err)
	}
	return nil
}

// The part's rows go into prices in the order of prices_route_day_idx (see the single-file
// loader), under the batch's id; the triggers of price_daily leave them out while the batch
// stages. Their aggregate goes to staged_daily, in the order of its index. Both start at the
// part's pivot, wrap around and end before it (see pivot): the loaders of a batch, which
// start their parts together, sweep different pages of the indexes rather than fight over
// the same ones.
const (
	stagePricesSQL = `INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
		SELECT orig_code, dest_code, day, price, $1::bigint FROM part_rows
		ORDER BY orig_code < $2::text, orig_code, dest_code, day`
	stageDailySQL = `INSERT INTO staged_daily (batch_id, part, orig_code, dest_code, day, prices, price_sum)
		SELECT $1::bigint, $2::integer, orig_code, dest_code, day, count(*), sum(price) FROM part_rows
		GROUP BY orig_code < $3::text, orig_code, dest_code, day ORDER BY orig_code < $3::text, orig_code, dest_code, day`
)

// pivot is the origin port at which part starts its sweep of the indexes: parts that follow
// each other start far apart (at the golden ratio's multiples of the part's origins), and ""
// starts at the first key when the origins are not known (too many codes to hold).
func pivot(part int, codes []string) string {
	if len(codes) == 0 {
		return ""
	}
	sorted := slices.Sorted(slices.Values(codes))
	frac := math.Mod(float64(part)*0.6180339887, 1)
	return sorted[int(frac*float64(len(sorted)))%len(sorted)]
}

// insertPart stages the part's checked rows and records the part as staged; it returns the
// number of route-days the part touches.
func insertPart(ctx context.Context, tx pgx.Tx, batchID int64, part int, c Checked, portsLocked bool, timings map[string]int64) (int64, error) {
	phase := time.Now()
	from := pivot(part, c.Codes)
	skipped, err := withoutRowChecks(ctx, tx, portsLocked, func() error {
		tag, err := tx.Exec(ctx, stagePricesSQL, batchID, from)
		if err != nil {
			return fmt.Errorf("stage the rows in prices: %w", err)
		}
		if tag.RowsAffected() != c.Rows {
			return fmt.Errorf("staged %d rows in prices, the part has %d", tag.RowsAffected(), c.Rows)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	timings["insert_ms"] = time.Since(phase).Milliseconds()
	timings["row_fk_checks"] = 3 * c.Rows
	if skipped {
		timings["row_fk_checks"] = 0
	}
	phase = time.Now()
	tag, err := tx.Exec(ctx, stageDailySQL, batchID, part, from)
	if err != nil {
		return 0, fmt.Errorf("stage the route-day aggregate: %w", err)
	}
	routeDays := tag.RowsAffected()
	timings["daily_ms"] = time.Since(phase).Milliseconds()
	timingsJSON, _ := json.Marshal(timings)
	if _, err := tx.Exec(ctx, `UPDATE batch_parts SET status = 'staged', rows = $3, bad_rows = 0, bytes = $4, route_days = $5,
		row_digest = $6, timings = $7, finished_at = now() WHERE batch_id = $1 AND part = $2`,
		batchID, part, c.Rows, c.Bytes, routeDays, c.Digest.Sum, timingsJSON); err != nil {
		return 0, fmt.Errorf("record the staged part: %w", err)
	}
	return routeDays, nil
}

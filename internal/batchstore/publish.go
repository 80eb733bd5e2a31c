package batchstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Published is the outcome of Publish.
type Published struct {
	BatchID int64
	// Status is loaded; or duplicate when its content was loaded already, by the batch
	// DuplicateOf (its staged rows are then removed); or, with Already, what the batch had
	// become before the call.
	Status      Status
	Already     bool
	DuplicateOf int64
	// RowsDigest is the digest of the batch's rows, combined from its parts' (Options.Identity):
	// its identity, batches.rows_key.
	RowsDigest    string
	Rows          int64
	RouteDays     int64 // rows of price_daily written
	DisplacedRows int64 // prices a replace took out
	// Recounted says some of the parts' aggregates were lost (a server start empties
	// staged_daily) and the staged rows were summed again.
	Recounted bool
	// Duration is the publish transaction's, commit included. PriceDailyHeld runs from the
	// first write to price_daily to the end of the commit: the longest another writer of the
	// batch's route-days may have waited for the publish.
	Duration       time.Duration
	PriceDailyHeld time.Duration
}

// Publish makes the staged batch batchID visible, in one transaction, once every part is
// staged: price_daily gains the batch's aggregate, summed from its parts' in key order and
// written last; a replace takes out the other published prices of its route-days (kept in
// prices_displaced for a revert); the batch becomes loaded; the data generation moves. Content
// loaded already makes the batch a duplicate instead, and its staged rows go. A batch that no
// longer stages is left as it is (Already). A *NotReadyError says parts are not all staged. A
// publish that fails changes nothing: the batch stays staged and Publish may be called again.
func (s *Store) Publish(ctx context.Context, batchID int64) (Published, error) {
	res, err := s.publish(ctx, batchID)
	if err != nil {
		return res, fmt.Errorf("publish batch %d: %w", batchID, err)
	}
	return res, nil
}

// publishPlan is what a publish needs to know before its transaction: parts that are staged do
// not change until their batch ends.
type publishPlan struct {
	status  Status
	mode    string
	digests []Digest
	rows    int64
	bytes   int64
	pending int
	bad     int
	digest  string
}

func (s *Store) publish(ctx context.Context, batchID int64) (Published, error) {
	start := time.Now()
	res := Published{BatchID: batchID}
	plan, err := s.readPlan(ctx, batchID)
	if err != nil {
		return res, err
	}
	if plan.status != StatusStaging {
		res.Status, res.Already = plan.status, true
		return res, nil
	}
	if plan.pending > 0 || plan.bad > 0 {
		return res, &NotReadyError{BatchID: batchID, Pending: plan.pending, Bad: plan.bad}
	}
	res.RowsDigest, res.Rows = plan.digest, plan.rows
	var heldFrom time.Time
	err = s.inTx(ctx, s.maxDuration, func(ctx context.Context, tx pgx.Tx) error {
		return s.publishTx(ctx, tx, plan, &res, &heldFrom)
	})
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	if !heldFrom.IsZero() {
		res.PriceDailyHeld = time.Since(heldFrom)
	}
	if res.Status == StatusLoaded && !res.Already {
		// Inert once the batch is loaded; Sweep removes them if this fails.
		_, _ = s.pool.Exec(ctx, `DELETE FROM staged_daily WHERE batch_id = $1`, batchID)
	}
	return res, nil
}

// partSums is what a publish reads of a part.
type partSums struct {
	Status    string `db:"status"`
	Rows      int64  `db:"rows"`
	Bytes     int64  `db:"bytes"`
	RowDigest []byte `db:"row_digest"`
}

// readPlan reads the batch and its parts, without locks.
func (s *Store) readPlan(ctx context.Context, batchID int64) (publishPlan, error) {
	var plan publishPlan
	err := s.pool.QueryRow(ctx, `SELECT status, mode, bytes FROM batches WHERE id = $1`, batchID).Scan(&plan.status, &plan.mode, &plan.bytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return plan, ErrNoBatch
	}
	if err != nil {
		return plan, fmt.Errorf("read the batch: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT status, coalesce(rows, 0) AS rows, coalesce(bytes, 0) AS bytes, row_digest
		FROM batch_parts WHERE batch_id = $1 ORDER BY part`, batchID)
	if err != nil {
		return plan, fmt.Errorf("read the parts: %w", err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByName[partSums])
	if err != nil {
		return plan, fmt.Errorf("read the parts: %w", err)
	}
	for _, p := range parts {
		switch p.Status {
		case "staged":
			plan.digests = append(plan.digests, Digest{Sum: p.RowDigest, Rows: p.Rows})
			plan.rows += p.Rows
			plan.bytes += p.Bytes
		case "pending":
			plan.pending++
		default: // bad, or checked beside a bad part
			plan.bad++
		}
	}
	if plan.pending == 0 && plan.bad == 0 {
		plan.digest = s.identity(plan.digests)
		if !sha256Hex.MatchString(plan.digest) {
			return plan, fmt.Errorf("the identity of the batch's parts is %q, not 64 lowercase hex digits", plan.digest)
		}
	}
	return plan, nil
}

// publishTx publishes in tx. The locks come in the order of the single-file loader's: the
// content (by its rows: a multi-part batch has no byte key, see 000035), the take-out lock of a
// replace, the batch's row, price_daily's rows in key order, the data generation's row.
func (s *Store) publishTx(ctx context.Context, tx pgx.Tx, plan publishPlan, res *Published, heldFrom *time.Time) error {
	rowsKey := "prices:" + plan.digest
	if err := lock(ctx, tx, contentLock+rowsKey); err != nil {
		return err
	}
	var first int64
	err := tx.QueryRow(ctx, `SELECT id FROM batches WHERE status = 'loaded' AND rows_key = $1`, rowsKey).Scan(&first)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look for the batch's rows: %w", err)
	}
	if first == 0 && plan.mode == "replace" {
		if err := lock(ctx, tx, takeOutLock); err != nil {
			return err
		}
	}
	// FOR UPDATE waits for parts in flight (a redelivery), which hold the row FOR KEY SHARE.
	if err := tx.QueryRow(ctx, `SELECT status FROM batches WHERE id = $1 FOR UPDATE`, res.BatchID).Scan(&res.Status); err != nil {
		return fmt.Errorf("lock the batch: %w", err)
	}
	if res.Status != StatusStaging {
		res.Already = true
		return nil
	}
	if first != 0 {
		return s.publishDuplicate(ctx, tx, plan, res, first)
	}
	return s.publishLoaded(ctx, tx, plan, res, heldFrom)
}

// publishDuplicate ends the batch as a duplicate of batch first: its staged rows go.
func (s *Store) publishDuplicate(ctx context.Context, tx pgx.Tx, plan publishPlan, res *Published, first int64) error {
	if _, err := removeStaged(ctx, tx, res.BatchID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'duplicate', duplicate_of = $2, rows = $3,
			bytes = $4, finished_at = now(), duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
		WHERE id = $1`, res.BatchID, first, plan.rows, plan.bytes); err != nil {
		return fmt.Errorf("record the duplicate: %w", err)
	}
	res.Status, res.DuplicateOf = StatusDuplicate, first
	return nil
}

const (
	// sumStagedSQL sums the parts' aggregates over the batch, in price_daily's key order, into a
	// table of the publish's own: the work that grows with the batch is done before the publish
	// locks a row of price_daily. The sums stream from staged_daily_key_idx (000039), which the
	// parts' loaders kept in that order as they staged: no sort of the batch's route-days.
	sumStagedSQL = `CREATE TEMP TABLE publish_daily ON COMMIT DROP AS
		SELECT orig_code, dest_code, day, sum(prices)::bigint AS prices, sum(price_sum)::bigint AS price_sum
		FROM staged_daily WHERE batch_id = $1 GROUP BY orig_code, dest_code, day ORDER BY orig_code, dest_code, day`

	// sortsOff makes sumStagedSQL read the index, whatever the planner thinks of staged_daily's
	// size (an unlogged table autovacuum may not have analysed yet); sortsOn restores the sorts.
	sortsOff = `SELECT set_config('enable_sort', 'off', true), set_config('enable_hashagg', 'off', true),
		set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)`
	sortsOn = `SELECT set_config('enable_sort', 'on', true), set_config('enable_hashagg', 'on', true),
		set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'on', true)`

	// recountSQL sums the batch's staged rows instead, when staged_daily has lost some of the
	// parts' aggregates.
	recountSQL = `INSERT INTO publish_daily (orig_code, dest_code, day, prices, price_sum)
		SELECT orig_code, dest_code, day, count(*), sum(price) FROM prices WHERE batch_id = $1
		GROUP BY orig_code, dest_code, day ORDER BY orig_code, dest_code, day`

	// publishDailySQL adds the batch's aggregate to price_daily. A table filled by one INSERT is
	// read back in the order it was written, so price_daily's rows are locked in key order, as
	// every other writer locks them; were it not, a deadlock would be possible (detected: the
	// publish fails and is tried again), never a wrong sum.
	publishDailySQL = `INSERT INTO price_daily AS d (orig_code, dest_code, day, prices, price_sum)
		SELECT orig_code, dest_code, day, prices, price_sum FROM publish_daily
		ON CONFLICT (orig_code, dest_code, day)
		DO UPDATE SET prices = d.prices + excluded.prices, price_sum = d.price_sum + excluded.price_sum`

	// displaceSQL takes out the published prices of other batches on the batch's route-days
	// (the rule of the view published_prices), keeping them for a revert. The triggers take
	// them out of price_daily.
	displaceSQL = `WITH moved AS (DELETE FROM prices p USING publish_daily k
			WHERE p.orig_code = k.orig_code AND p.dest_code = k.dest_code AND p.day = k.day
			  AND p.batch_id IS DISTINCT FROM $1
			  AND (p.batch_id IS NULL OR p.batch_id <> ALL (ARRAY(SELECT b.id FROM batches b WHERE b.status = 'staging')))
			RETURNING p.orig_code, p.dest_code, p.day, p.price, p.batch_id)
		INSERT INTO prices_displaced (displaced_by, orig_code, dest_code, day, price, batch_id)
		SELECT $1, orig_code, dest_code, day, price, batch_id FROM moved`
)

// publishLoaded adds the batch to price_daily and records it loaded. The batch's sums are
// ready before price_daily's first row is written, so that price_daily's rows stay locked for
// the upsert and the commit only; a replace takes out what it replaces after that, on the same
// route-days, whose rows it holds already.
func (s *Store) publishLoaded(ctx context.Context, tx pgx.Tx, plan publishPlan, res *Published, heldFrom *time.Time) error {
	timings := map[string]int64{}
	phase := time.Now()
	if err := s.sumBatch(ctx, tx, plan, res); err != nil {
		return err
	}
	timings["sum_ms"] = time.Since(phase).Milliseconds()
	// The batch's sums come from its parts alone, which the trigger guarding price_daily
	// against rebuilds from unpublished rows cannot tell by itself (000038).
	if _, err := tx.Exec(ctx, "SELECT set_config('rates.price_daily_source', 'published', true)"); err != nil {
		return fmt.Errorf("set rates.price_daily_source: %w", err)
	}
	*heldFrom = time.Now()
	if _, err := tx.Exec(ctx, publishDailySQL); err != nil {
		return fmt.Errorf("add the batch to price_daily: %w", err)
	}
	timings["price_daily_ms"] = time.Since(*heldFrom).Milliseconds()
	if plan.mode == "replace" {
		phase := time.Now()
		tag, err := tx.Exec(ctx, displaceSQL, res.BatchID)
		if err != nil {
			return fmt.Errorf("take out the prices the batch replaces: %w", err)
		}
		res.DisplacedRows = tag.RowsAffected()
		timings["displace_ms"] = time.Since(phase).Milliseconds()
	}
	timingsJSON, _ := json.Marshal(timings)
	// sha256 stays the manifest's: the batch has no bytes of its own to hash, nor a byte key.
	if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'loaded', rows_key = $2, rows = $3, bytes = $4,
			displaced_rows = $5, timings = timings || $6::jsonb, finished_at = now(),
			duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
		WHERE id = $1`, res.BatchID, "prices:"+plan.digest, plan.rows, plan.bytes, res.DisplacedRows, timingsJSON); err != nil {
		return fmt.Errorf("record the batch loaded: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE data_generation SET generation = generation + 1`); err != nil {
		return fmt.Errorf("move the data generation: %w", err)
	}
	res.Status = StatusLoaded
	return nil
}

// sumBatch fills publish_daily with the batch's sums per route-day and checks that they count
// every row of its parts. Sums short of them mean staged_daily lost some of the parts'
// aggregates (a server start empties it): the staged rows are summed again.
func (s *Store) sumBatch(ctx context.Context, tx pgx.Tx, plan publishPlan, res *Published) error {
	// The memory of price_daily_add's sorts (see the schema): a batch's sums sort in fewer passes.
	if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
		return fmt.Errorf("set work_mem: %w", err)
	}
	if _, err := tx.Exec(ctx, sortsOff); err != nil {
		return fmt.Errorf("read the sums in key order: %w", err)
	}
	tag, err := tx.Exec(ctx, sumStagedSQL, res.BatchID)
	if err != nil {
		return fmt.Errorf("sum the parts' aggregates: %w", err)
	}
	if _, err := tx.Exec(ctx, sortsOn); err != nil {
		return fmt.Errorf("restore the sorts: %w", err)
	}
	res.RouteDays = tag.RowsAffected()
	var counted int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(prices), 0)::bigint FROM publish_daily`).Scan(&counted); err != nil {
		return fmt.Errorf("count the summed rows: %w", err)
	}
	if counted == plan.rows {
		return nil
	}
	res.Recounted = true
	if _, err := tx.Exec(ctx, `TRUNCATE publish_daily`); err != nil {
		return fmt.Errorf("clear the sums: %w", err)
	}
	if tag, err = tx.Exec(ctx, recountSQL, res.BatchID); err != nil {
		return fmt.Errorf("sum the batch's staged rows: %w", err)
	}
	res.RouteDays = tag.RowsAffected()
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(prices), 0)::bigint FROM publish_daily`).Scan(&counted); err != nil {
		return fmt.Errorf("count the summed rows: %w", err)
	}
	if counted != plan.rows {
		return fmt.Errorf("prices holds %d staged rows of the batch, its parts %d", counted, plan.rows)
	}
	return nil
}

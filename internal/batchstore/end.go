package batchstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Ended is the outcome of ending a batch before its publish.
type Ended struct {
	BatchID int64
	// Status is what the batch is now: rejected or failed, or what it had become before.
	Status Status
	// RemovedRows counts the staged rows taken out of prices.
	RemovedRows int64
	Report      *Report
}

// Reject ends the staging batch batchID as rejected, with the report of its bad parts (bounded
// by MaxErrors, by part and line): its staged rows leave prices and staged_daily in the same
// transaction, which waits for the parts being staged. A batch that no longer stages is left as
// it is.
func (s *Store) Reject(ctx context.Context, batchID int64) (Ended, error) {
	res, err := s.end(ctx, batchID, StatusRejected, "")
	if err != nil {
		return res, fmt.Errorf("reject batch %d: %w", batchID, err)
	}
	return res, nil
}

// Fail ends the staging batch batchID as failed, with reason as its report, as Reject does.
func (s *Store) Fail(ctx context.Context, batchID int64, reason string) (Ended, error) {
	res, err := s.end(ctx, batchID, StatusFailed, reason)
	if err != nil {
		return res, fmt.Errorf("fail batch %d: %w", batchID, err)
	}
	return res, nil
}

// Sweep fails every batch still staging MaxBatchDuration after its registration, and removes
// the aggregates a publish left behind when it could not clean up after its commit. Any loader
// may run it at any time; each batch ends once.
func (s *Store) Sweep(ctx context.Context) ([]Ended, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM batches WHERE status = 'staging'
		AND started_at <= now() - $1 * interval '1 millisecond' ORDER BY id`, s.maxDuration.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("find expired batches: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("find expired batches: %w", err)
	}
	var ended []Ended
	for _, id := range ids {
		res, err := s.Fail(ctx, id, s.deadlineReason(ctx, id))
		if err != nil {
			return ended, err
		}
		ended = append(ended, res)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM staged_daily d WHERE NOT EXISTS (
		SELECT 1 FROM batches b WHERE b.id = d.batch_id AND b.status = 'staging')`); err != nil {
		return ended, fmt.Errorf("remove leftover aggregates: %w", err)
	}
	return ended, nil
}

// deadlineReason says which parts a batch past its deadline lacks.
func (s *Store) deadlineReason(ctx context.Context, batchID int64) string {
	var keys []string
	var pending, all int
	err := s.pool.QueryRow(ctx, `SELECT (ARRAY(SELECT key FROM batch_parts WHERE batch_id = $1 AND status = 'pending'
			ORDER BY part LIMIT 10)), count(*) FILTER (WHERE status = 'pending'), count(*)
		FROM batch_parts WHERE batch_id = $1`, batchID).Scan(&keys, &pending, &all)
	if err != nil || pending == 0 {
		return fmt.Sprintf("the batch was not published within its deadline of %s after its registration", s.maxDuration)
	}
	more := ""
	if pending > len(keys) {
		more = fmt.Sprintf(" and %d more", pending-len(keys))
	}
	return fmt.Sprintf("parts %s%s (%d of %d) were not settled within the batch's deadline of %s after its registration",
		strings.Join(keys, ", "), more, pending, all, s.maxDuration)
}

// end ends the batch as status, with reason as its report, or that of its bad parts when
// reason is empty.
func (s *Store) end(ctx context.Context, id int64, status Status, reason string) (Ended, error) {
	res := Ended{BatchID: id}
	err := s.inTx(ctx, s.maxDuration, func(ctx context.Context, tx pgx.Tx) error {
		// FOR UPDATE waits for the parts in flight, which hold the row FOR KEY SHARE.
		err := tx.QueryRow(ctx, `SELECT status FROM batches WHERE id = $1 FOR UPDATE`, id).Scan(&res.Status)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoBatch
		}
		if err != nil || res.Status != StatusStaging {
			return err
		}
		report, err := s.partsReport(ctx, tx, id, reason)
		if err != nil {
			return err
		}
		if res.RemovedRows, err = removeStaged(ctx, tx, id); err != nil {
			return err
		}
		if err := recordEnd(ctx, tx, id, status, report); err != nil {
			return err
		}
		res.Status, res.Report = status, report
		return nil
	})
	return res, err
}

// partsReport is the report of a batch that ends: reason first, when given, then the problems
// of its bad parts in part order, at most MaxErrors in all.
func (s *Store) partsReport(ctx context.Context, tx pgx.Tx, id int64, reason string) (*Report, error) {
	rows, err := tx.Query(ctx, `SELECT report FROM batch_parts WHERE batch_id = $1 AND status = 'bad' ORDER BY part`, id)
	if err != nil {
		return nil, fmt.Errorf("read the reports of the bad parts: %w", err)
	}
	reports, err := pgx.CollectRows(rows, pgx.RowTo[Report])
	if err != nil {
		return nil, fmt.Errorf("read the reports of the bad parts: %w", err)
	}
	all := &Report{Problems: []Problem{}}
	if reason != "" {
		all.Problems = append(all.Problems, Problem{Reason: reason})
	} else if len(reports) == 0 {
		return nil, errors.New("no part of the batch is bad")
	}
	for _, r := range reports {
		all.BadRows += r.BadRows
		all.Problems = append(all.Problems, r.Problems[:min(len(r.Problems), s.maxErrors-len(all.Problems))]...)
	}
	return all, nil
}

// removeStaged takes the batch's staged rows out of prices, naming the batch to the triggers
// that would otherwise refuse it (000038), and its aggregates out of staged_daily.
func removeStaged(ctx context.Context, tx pgx.Tx, id int64) (int64, error) {
	if _, err := tx.Exec(ctx, "SELECT set_config('rates.unstage_batch', $1::bigint::text, true)", id); err != nil {
		return 0, fmt.Errorf("name the batch whose rows go: %w", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM prices WHERE batch_id = $1`, id)
	if err != nil {
		return 0, fmt.Errorf("remove the staged rows: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('rates.unstage_batch', '', true)"); err != nil {
		return 0, fmt.Errorf("reset rates.unstage_batch: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM staged_daily WHERE batch_id = $1`, id); err != nil {
		return 0, fmt.Errorf("remove the staged aggregates: %w", err)
	}
	return tag.RowsAffected(), nil
}

// recordEnd records the end of the batch: its status and report, the rows and bytes its parts
// held, its duration from its registration.
func recordEnd(ctx context.Context, tx pgx.Tx, id int64, status Status, report *Report) error {
	reportJSON, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE batches b SET status = $2, report = $3, bad_rows = $4,
			rows = p.rows, bytes = b.bytes + p.bytes, finished_at = now(),
			duration_ms = (extract(epoch FROM now() - b.started_at) * 1000)::bigint
		FROM (SELECT coalesce(sum(rows), 0) AS rows, coalesce(sum(bytes), 0) AS bytes FROM batch_parts WHERE batch_id = $1) p
		WHERE b.id = $1`, id, string(status), reportJSON, report.BadRows); err != nil {
		return fmt.Errorf("record the end of the batch: %w", err)
	}
	return nil
}

package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
)

// BatchInfo is one batch as `rates batches show` and GET /batches/{id} present it, scanned by
// column name from batchInfoSQL.
type BatchInfo struct {
	ID         int64    `json:"batch_id" db:"id"`
	Kind       DataKind `json:"kind" db:"kind"`
	Mode       Mode     `json:"mode" db:"mode"`
	Status     Status   `json:"status" db:"status"`
	SourceKind Channel  `json:"source_kind" db:"source_kind"`
	Source     string   `json:"source" db:"source"`
	SourceKey  string   `json:"source_key,omitempty" db:"source_key"`
	SHA256     string   `json:"sha256" db:"sha256"`
	// RowsDigest is the digest of the rows (see RowDigest) of a batch that loaded.
	RowsDigest    string           `json:"rows_digest,omitempty" db:"rows_digest"`
	Rows          int64            `json:"rows" db:"rows"`
	BadRows       int64            `json:"bad_rows" db:"bad_rows"`
	Bytes         int64            `json:"bytes" db:"bytes"`
	DisplacedRows int64            `json:"displaced_rows" db:"displaced_rows"`
	DuplicateOf   int64            `json:"duplicate_of,omitempty" db:"duplicate_of"`
	ReceivedAt    *time.Time       `json:"received_at,omitempty" db:"received_at"`
	StartedAt     time.Time        `json:"started_at" db:"started_at"`
	FinishedAt    time.Time        `json:"finished_at" db:"finished_at"`
	DurationMS    int64            `json:"duration_ms" db:"duration_ms"`
	Timings       map[string]int64 `json:"timings" db:"timings"`
	RevertedAt    *time.Time       `json:"reverted_at,omitempty" db:"reverted_at"`
	RevertReason  string           `json:"revert_reason,omitempty" db:"revert_reason"`
	Report        *Report          `json:"report,omitempty" db:"report"`
	// Parts are the parts of a multi-part batch staged side by side, in the manifest's order.
	Parts []BatchPart `json:"parts,omitempty" db:"-"`
}

// BatchPart is one part of a multi-part batch: pending until a loader settles it, then staged,
// checked (sound, beside a bad part) or bad. Attempts counts the loaders that took it, those
// that died included.
type BatchPart struct {
	Part     int    `json:"part"`
	Key      string `json:"key"`
	Status   string `json:"status"`
	Rows     int64  `json:"rows"`
	Attempts int    `json:"attempts"`
}

// ErrBatchNotFound is returned for a batch id that does not exist.
var ErrBatchNotFound error = notFoundError("no such batch")

// notFoundError is answered 404 (httpjson.StatusOf).
type notFoundError string

func (e notFoundError) Error() string { return string(e) }

// HTTPStatus is 404.
func (notFoundError) HTTPStatus() int { return http.StatusNotFound }

const batchInfoSQL = `SELECT id, kind, mode, status, source_kind, source_name AS source, coalesce(source_key, '') AS source_key,
	sha256, coalesce(split_part(rows_key, ':', 2), '') AS rows_digest, rows, bad_rows, bytes, displaced_rows,
	coalesce(duplicate_of, 0) AS duplicate_of, received_at, started_at, finished_at, duration_ms, timings, reverted_at,
	coalesce(revert_reason, '') AS revert_reason, report FROM batches`

// Batch returns one batch.
func (l *Loader) Batch(ctx context.Context, id int64) (BatchInfo, error) {
	rows, err := l.pool.Query(ctx, batchInfoSQL+" WHERE id = $1", id)
	if err != nil {
		return BatchInfo{}, fmt.Errorf("read batch %d: %w", id, err)
	}
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[BatchInfo])
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("batch %d: %w", id, ErrBatchNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read batch %d: %w", id, err)
	}
	if l.parts == nil || b.Kind != DataPrices || b.SourceKind == ChannelAPI {
		return b, nil
	}
	parts, err := l.parts.Parts(ctx, id)
	if errors.Is(err, batchstore.ErrNoBatch) {
		return b, nil // a single file
	}
	if err != nil {
		return b, err
	}
	for _, p := range parts {
		b.Parts = append(b.Parts, BatchPart{Part: p.Part, Key: p.Key, Status: p.Status, Rows: p.Rows, Attempts: p.Attempts})
	}
	return b, nil
}

// Batches returns the latest limit batches, newest first.
func (l *Loader) Batches(ctx context.Context, limit int) ([]BatchInfo, error) {
	rows, err := l.pool.Query(ctx, batchInfoSQL+" ORDER BY id DESC LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[BatchInfo])
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	return out, nil
}

// RevertResult is the outcome of a revert.
type RevertResult struct {
	BatchID int64 `json:"batch_id"`
	// Status is "reverted", or "unchanged" when there was nothing to do (already reverted or
	// discarded).
	Status       string `json:"status"`
	RemovedRows  int64  `json:"removed_rows"`
	RestoredRows int64  `json:"restored_rows"`
	Message      string `json:"message"`
}

// RevertRefusedError explains why a batch cannot be reverted (now).
type RevertRefusedError struct {
	BatchID int64
	Reason  string
}

// HTTPStatus is 409: the batch is in a state that forbids the revert.
func (*RevertRefusedError) HTTPStatus() int { return http.StatusConflict }

func (e *RevertRefusedError) Error() string {
	return fmt.Sprintf("batch %d cannot be reverted: %s", e.BatchID, e.Reason)
}

// Revert takes the batch's effect back out, in one transaction: a price batch's rows leave
// prices, and the rows a replace displaced come back; a reference-data batch's ports or regions
// get their previous names and parents back, and those it created are removed. Reverting twice
// is a no-op. It is refused (a *RevertRefusedError) when a later batch builds on this one: a
// replace that displaced its rows, a reference-data batch that changed the same codes, prices
// on a port it created. The batch's content may then be loaded again.
func (l *Loader) Revert(ctx context.Context, id int64) (RevertResult, error) {
	ctx, cancel := context.WithTimeout(ctx, l.maxDuration)
	defer cancel()
	res, err := l.revert(ctx, id)
	if err != nil {
		return res, fmt.Errorf("revert batch %d: %w", id, err)
	}
	l.log.Info("batch revert", "batch_id", id, "status", res.Status, "removed_rows", res.RemovedRows,
		"restored_rows", res.RestoredRows)
	return res, nil
}

func (l *Loader) revert(ctx context.Context, id int64) (RevertResult, error) {
	res := RevertResult{BatchID: id}
	err := l.inTx(ctx, func(_ *pgxpool.Conn, tx pgx.Tx) error {
		var err error
		res, err = l.revertTx(ctx, tx, id, res)
		return err
	})
	return res, err
}

func (l *Loader) revertTx(ctx context.Context, tx pgx.Tx, id int64, res RevertResult) (RevertResult, error) {
	var kind, mode, status, sourceKind string
	var contentKey, rowsKey *string
	var revertedAt *time.Time
	var duplicateOf int64
	// A batch staging is refused before any lock: its row is held by the parts in flight, which
	// the row lock below would wait for.
	var before Status
	if err := tx.QueryRow(ctx, `SELECT status FROM batches WHERE id = $1`, id).Scan(&before); err == nil && before == StatusStaging {
		return res, &RevertRefusedError{BatchID: id, Reason: "its parts are being staged and nothing of it is visible yet; revert it once it is loaded"}
	}
	if err := lockReferenceRows(ctx, tx, id); err != nil {
		return res, err
	}
	// Before the batch's row lock: a replace takes the take-out lock first too, and then locks the
	// records of the batches it displaces (foreign keys of prices_displaced).
	if err := lockTakeOuts(ctx, tx); err != nil {
		return res, err
	}
	err := tx.QueryRow(ctx, `SELECT kind, mode, status, source_kind, content_key, rows_key, reverted_at, coalesce(duplicate_of, 0)
		FROM batches WHERE id = $1 FOR UPDATE`, id).Scan(&kind, &mode, &status, &sourceKind, &contentKey, &rowsKey, &revertedAt, &duplicateOf)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, ErrBatchNotFound
	}
	if err != nil {
		return res, fmt.Errorf("read batch: %w", err)
	}
	refuse := func(reason string) (RevertResult, error) {
		return res, &RevertRefusedError{BatchID: id, Reason: reason}
	}
	switch Status(status) {
	case StatusReverted, StatusDiscarded:
		res.Status = "unchanged"
		res.Message = fmt.Sprintf("batch %d was already %s at %s: nothing to do", id, status, revertedAt.UTC().Format(time.RFC3339))
		return res, nil
	case StatusRejected, StatusFailed:
		return refuse(fmt.Sprintf("it was %s and loaded nothing", status))
	case StatusStaging:
		return refuse("its parts are being staged and nothing of it is visible yet; revert it once it is loaded")
	case StatusDuplicate:
		return refuse(fmt.Sprintf("it is a duplicate of batch %d and loaded nothing; revert batch %d to take that content out", duplicateOf, duplicateOf))
	}
	if Channel(sourceKind) == "seed" {
		return refuse("it is the seed's own record; load another dump with rates seed --replace instead")
	}
	// The content locks a load of the same content takes, in the same order (commitDuplicate).
	for _, key := range []*string{contentKey, rowsKey} {
		if key == nil {
			continue
		}
		if err := batchstore.LockContent(ctx, tx, *key); err != nil {
			return res, err
		}
	}
	if DataKind(kind) == DataPrices {
		err = l.revertPrices(ctx, tx, id, Mode(mode), &res)
	} else {
		err = l.revertReference(ctx, tx, id, DataKind(kind), &res)
	}
	if err != nil {
		var refused *RevertRefusedError
		if errors.As(err, &refused) {
			refused.BatchID = id
		}
		return res, err
	}
	if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'reverted', reverted_at = now(), content_key = NULL,
		revert_reason = 'reverted' WHERE id = $1`, id); err != nil {
		return res, fmt.Errorf("record the revert: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	res.Status = "reverted"
	res.Message = fmt.Sprintf("batch %d reverted: %d rows removed, %d rows restored", id, res.RemovedRows, res.RestoredRows)
	return res, nil
}

// lockReferenceRowsSQL locks the ports and regions a reference-data batch changed, in one
// order. A load that uses one of the ports holds it FOR KEY SHARE from its checks to its commit,
// and on the way takes the data_generation row (its insert's trigger); so does a revert, by
// its first change to ports. Taken first, these locks make a revert wait for such loads before
// it holds anything they need, and a load that starts later wait for the revert, instead of
// the two waiting for each other (a deadlock). A price batch changed none: nothing to lock.
const lockReferenceRowsSQL = `SELECT 1 FROM (
		SELECT 'ports' AS kind, code AS key FROM ports WHERE code IN (SELECT key FROM reference_changes WHERE batch_id = $1 AND kind = 'ports')
		ORDER BY code FOR UPDATE) p
	UNION ALL SELECT 1 FROM (
		SELECT 'regions', slug FROM regions WHERE slug IN (SELECT key FROM reference_changes WHERE batch_id = $1 AND kind = 'regions')
		ORDER BY slug FOR UPDATE) r`

func lockReferenceRows(ctx context.Context, tx pgx.Tx, id int64) error {
	if _, err := tx.Exec(ctx, lockReferenceRowsSQL, id); err != nil {
		return fmt.Errorf("wait for the loads that use the batch's ports: %w", err)
	}
	return nil
}

func idList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

func (l *Loader) revertPrices(ctx context.Context, tx pgx.Tx, id int64, mode Mode, res *RevertResult) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT displaced_by FROM prices_displaced WHERE batch_id = $1 ORDER BY 1`, id)
	if err != nil {
		return fmt.Errorf("look for replaces of the batch's rows: %w", err)
	}
	later, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("look for replaces of the batch's rows: %w", err)
	}
	if len(later) > 0 {
		return &RevertRefusedError{Reason: fmt.Sprintf("some of its rows were replaced by batch %s; revert that first", idList(later))}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM prices WHERE batch_id = $1`, id)
	if err != nil {
		return fmt.Errorf("remove the batch's prices: %w", err)
	}
	res.RemovedRows = tag.RowsAffected()
	// A replace that committed while the DELETE waited for its row locks may have displaced
	// some of the rows; this statement's snapshot sees it.
	var raced int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(min(displaced_by), 0) FROM prices_displaced WHERE batch_id = $1`, id).Scan(&raced); err != nil {
		return fmt.Errorf("look for replaces of the batch's rows: %w", err)
	}
	if raced != 0 {
		return &RevertRefusedError{Reason: fmt.Sprintf("some of its rows were replaced by batch %d meanwhile; revert that first", raced)}
	}
	if mode == ModeReplace {
		tag, err := tx.Exec(ctx, `WITH back AS (DELETE FROM prices_displaced WHERE displaced_by = $1
				RETURNING orig_code, dest_code, day, price, batch_id)
			INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
			SELECT orig_code, dest_code, day, price, batch_id FROM back ORDER BY orig_code, dest_code, day`, id)
		if err != nil {
			return fmt.Errorf("restore the prices the batch replaced: %w", err)
		}
		res.RestoredRows = tag.RowsAffected()
	}
	return nil
}

func (l *Loader) revertReference(ctx context.Context, tx pgx.Tx, id int64, kind DataKind, res *RevertResult) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT c2.batch_id FROM reference_changes c
		JOIN reference_changes c2 ON c2.kind = c.kind AND c2.key = c.key AND c2.batch_id > c.batch_id
		JOIN batches b ON b.id = c2.batch_id AND b.status = 'loaded'
		WHERE c.batch_id = $1 ORDER BY 1`, id)
	if err != nil {
		return fmt.Errorf("look for later changes: %w", err)
	}
	later, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("look for later changes: %w", err)
	}
	if len(later) > 0 {
		return &RevertRefusedError{Reason: fmt.Sprintf("batch %s changed the same %s later; revert that first", idList(later), kind)}
	}
	usedSQL := `SELECT c.key FROM reference_changes c WHERE c.batch_id = $1 AND NOT c.existed
		AND (EXISTS (SELECT 1 FROM prices p WHERE p.orig_code = c.key) OR EXISTS (SELECT 1 FROM prices p WHERE p.dest_code = c.key)
		  OR EXISTS (SELECT 1 FROM prices_displaced p WHERE p.orig_code = c.key OR p.dest_code = c.key))
		ORDER BY 1 LIMIT 10`
	what := "prices still use port"
	if kind == DataRegions {
		usedSQL = `SELECT c.key FROM reference_changes c WHERE c.batch_id = $1 AND NOT c.existed
			AND (EXISTS (SELECT 1 FROM ports p WHERE p.parent_slug = c.key)
			  OR EXISTS (SELECT 1 FROM regions r WHERE r.parent_slug = c.key AND NOT EXISTS (
				SELECT 1 FROM reference_changes o WHERE o.batch_id = $1 AND o.key = r.slug)))
			ORDER BY 1 LIMIT 10`
		what = "ports or other regions still belong to region"
	}
	rows, err = tx.Query(ctx, usedSQL, id)
	if err != nil {
		return fmt.Errorf("look for uses of what the batch created: %w", err)
	}
	used, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for uses of what the batch created: %w", err)
	}
	if len(used) > 0 {
		return &RevertRefusedError{Reason: fmt.Sprintf("%s %s, which it created", what, strings.Join(used, ", "))}
	}
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
		return fmt.Errorf("defer constraints: %w", err)
	}
	table, key := "ports", "code"
	if kind == DataRegions {
		table, key = "regions", "slug"
	}
	tag, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %[1]s t SET name = c.old_name, parent_slug = c.old_parent_slug
		FROM reference_changes c WHERE c.batch_id = $1 AND c.existed AND t.%[2]s = c.key`, table, key), id)
	if err != nil {
		return fmt.Errorf("restore %s: %w", table, err)
	}
	res.RestoredRows = tag.RowsAffected()
	tag, err = tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %[1]s t USING reference_changes c
		WHERE c.batch_id = $1 AND NOT c.existed AND t.%[2]s = c.key`, table, key), id)
	if err != nil {
		return fmt.Errorf("remove the %s the batch created: %w", table, err)
	}
	res.RemovedRows = tag.RowsAffected()
	if kind == DataRegions {
		var cycle *string
		err := tx.QueryRow(ctx, `WITH RECURSIVE walk (start, slug, depth) AS (
				SELECT r.slug, r.parent_slug, 1 FROM regions r JOIN reference_changes c ON c.key = r.slug AND c.batch_id = $1
				WHERE r.parent_slug IS NOT NULL
				UNION ALL
				SELECT w.start, r.parent_slug, w.depth + 1 FROM walk w JOIN regions r ON r.slug = w.slug
				WHERE r.parent_slug IS NOT NULL AND w.slug <> w.start AND w.depth <= (SELECT count(*) FROM regions))
			SELECT start FROM walk WHERE slug = start LIMIT 1`, id).Scan(&cycle)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("check the region tree: %w", err)
		}
		if cycle != nil {
			return &RevertRefusedError{Reason: "restoring the previous parents would make region " + *cycle + " its own ancestor"}
		}
	}
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
		return fmt.Errorf("check references: %w", describeErr(err))
	}
	return nil
}

// describeErr adds the server's detail (the offending key of a constraint) to its message.
func describeErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Detail != "" {
		return fmt.Errorf("%w (%s)", err, pgErr.Detail)
	}
	return err
}

// DisplacedMessage tells people what became of a displaced batch's content, and what to do.
func DisplacedMessage(res Result) string {
	return fmt.Sprintf("this content is batch %d, but batch %s replaced some of its rows since: nothing written; "+
		"revert %s to put them back", res.BatchID, idList(res.DisplacedBy), idList(res.DisplacedBy))
}

package batchstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// Manifest is a multi-part batch as Register records it.
type Manifest struct {
	// SourceKey is the delivery's key (an S3 object version): a redelivery finds the batch it
	// registered. Empty for a manifest on disk, which is found again by its SHA256 while its
	// batch is staging.
	SourceKey  string
	SourceKind string // "s3", "api" or "file"
	SourceName string // where it came from, for people
	Mode       string // "append" or "replace"
	// SHA256 is of the manifest's bytes; the batch's checksum until its publish.
	SHA256 string
	Bytes  int64
	// ReceivedAt is when the manifest arrived; zero when unknown.
	ReceivedAt time.Time
	Parts      []PartSpec
}

// PartSpec is one part as the manifest names it.
type PartSpec struct {
	Key    string
	SHA256 string // of its decompressed bytes
}

// MaxParts bounds the parts of one batch (batch_parts.part).
const MaxParts = 10_000

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (m Manifest) validate() error {
	switch {
	case m.SourceKind != "s3" && m.SourceKind != "api" && m.SourceKind != "file":
		return fmt.Errorf("unknown source kind %q", m.SourceKind)
	case m.Mode != "append" && m.Mode != "replace":
		return fmt.Errorf("unknown mode %q", m.Mode)
	case !sha256Hex.MatchString(m.SHA256):
		return fmt.Errorf("manifest sha256 %q is not 64 lowercase hex digits", m.SHA256)
	case len(m.Parts) == 0 || len(m.Parts) > MaxParts:
		return fmt.Errorf("a batch has 1 to %d parts, got %d", MaxParts, len(m.Parts))
	}
	seen := make(map[string]bool, len(m.Parts))
	for i, p := range m.Parts {
		switch {
		case p.Key == "" || len(p.Key) > 1024:
			return fmt.Errorf("part %d: key must have 1 to 1024 bytes", i+1)
		case !sha256Hex.MatchString(p.SHA256):
			return fmt.Errorf("part %d: sha256 %q is not 64 lowercase hex digits", i+1, p.SHA256)
		case seen[p.Key]:
			return fmt.Errorf("part %d: key %q is named twice", i+1, p.Key)
		}
		seen[p.Key] = true
	}
	return nil
}

// Registration is the batch a manifest stands for.
type Registration struct {
	BatchID int64
	Status  Status
	// Resumed says the batch was registered before, by an earlier delivery of the same key or
	// an earlier run of the same manifest file: its staged parts stay staged.
	Resumed bool
}

// Register records the batch of m as staging with every part pending, in one transaction, or
// finds the batch an earlier delivery or run of m registered (see Manifest.SourceKey).
func (s *Store) Register(ctx context.Context, m Manifest) (Registration, error) {
	if err := m.validate(); err != nil {
		return Registration{}, fmt.Errorf("register batch %s: %w", m.SourceName, err)
	}
	var reg Registration
	err := s.inTx(ctx, s.maxDuration, func(ctx context.Context, tx pgx.Tx) error {
		found, ok, err := findRegistration(ctx, tx, m)
		if err != nil || ok {
			reg = found
			return err
		}
		reg, err = insertBatch(ctx, tx, m)
		return err
	})
	if err != nil {
		return Registration{}, fmt.Errorf("register batch %s: %w", m.SourceName, err)
	}
	return reg, nil
}

// findRegistration takes the lock of m's delivery (or of its manifest, for a file) and returns
// the batch already registered for it.
func findRegistration(ctx context.Context, tx pgx.Tx, m Manifest) (Registration, bool, error) {
	query, arg := `SELECT id, status FROM batches WHERE source_key = $1`, m.SourceKey
	key := deliveryLock + m.SourceKey
	if m.SourceKey == "" {
		query = `SELECT id, status FROM batches WHERE manifest_sha256 = $1 AND source_kind = 'file' AND status = 'staging'
			ORDER BY id DESC LIMIT 1`
		arg, key = m.SHA256, manifestLock+m.SHA256
	}
	if err := lock(ctx, tx, key); err != nil {
		return Registration{}, false, err
	}
	reg := Registration{Resumed: true}
	err := tx.QueryRow(ctx, query, arg).Scan(&reg.BatchID, &reg.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return Registration{}, false, nil
	}
	if err != nil {
		return Registration{}, false, fmt.Errorf("find the batch of the delivery: %w", err)
	}
	return reg, true, nil
}

// insertBatch records the batch and its parts.
func insertBatch(ctx context.Context, tx pgx.Tx, m Manifest) (Registration, error) {
	reg := Registration{Status: StatusStaging}
	var received any
	if !m.ReceivedAt.IsZero() {
		received = m.ReceivedAt
	}
	var sourceKey any
	if m.SourceKey != "" {
		sourceKey = m.SourceKey
	}
	// finished_at is the registration time until the batch ends.
	err := tx.QueryRow(ctx, `INSERT INTO batches (source_key, source_kind, source_name, status, rows, bytes, sha256,
			manifest_sha256, started_at, finished_at, duration_ms, kind, mode, received_at)
		VALUES ($1, $2, $3, 'staging', 0, $4, $5, $5, now(), now(), 0, 'prices', $6, $7) RETURNING id`,
		sourceKey, m.SourceKind, m.SourceName, m.Bytes, m.SHA256, m.Mode, received).Scan(&reg.BatchID)
	if err != nil {
		return reg, fmt.Errorf("record the batch: %w", err)
	}
	keys, sums := make([]string, len(m.Parts)), make([]string, len(m.Parts))
	for i, p := range m.Parts {
		keys[i], sums[i] = p.Key, p.SHA256
	}
	if _, err := tx.Exec(ctx, `INSERT INTO batch_parts (batch_id, part, key, sha256)
		SELECT $1, u.part, u.key, u.sha256 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(key, sha256, part)`,
		reg.BatchID, keys, sums); err != nil {
		return reg, fmt.Errorf("record the parts: %w", err)
	}
	return reg, nil
}

// PartState is one part of a batch as batch_parts holds it.
type PartState struct {
	Part     int    `db:"part"`
	Key      string `db:"key"`
	SHA256   string `db:"sha256"`
	Status   string `db:"status"` // pending, staged or bad
	Rows     int64  `db:"rows"`   // once staged or bad
	Attempts int    `db:"attempts"`
}

// Parts returns the parts of batch id in order.
func (s *Store) Parts(ctx context.Context, id int64) ([]PartState, error) {
	rows, err := s.pool.Query(ctx, `SELECT part, key, sha256, status, coalesce(rows, 0) AS rows, attempts
		FROM batch_parts WHERE batch_id = $1 ORDER BY part`, id)
	if err != nil {
		return nil, fmt.Errorf("read the parts of batch %d: %w", id, err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByName[PartState])
	if err != nil {
		return nil, fmt.Errorf("read the parts of batch %d: %w", id, err)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("batch %d: %w", id, ErrNoBatch)
	}
	return parts, nil
}

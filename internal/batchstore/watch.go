package batchstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// OldestStaging returns how long ago the oldest batch still staging was registered, by the
// database's clock, or 0 when no batch stages.
func (s *Store) OldestStaging(ctx context.Context) (time.Duration, error) {
	var ms int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce((extract(epoch FROM now() - min(started_at)) * 1000)::bigint, 0)
		FROM batches WHERE status = 'staging'`).Scan(&ms)
	if err != nil {
		return 0, fmt.Errorf("read the oldest staging batch: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// StagingOf returns the batch still staging that a run of the manifest file with SHA-256
// manifestSHA256 registered, if there is one: a rerun resumes it (Register finds it too).
func (s *Store) StagingOf(ctx context.Context, manifestSHA256 string) (int64, bool, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM batches WHERE manifest_sha256 = $1 AND source_kind = 'file' AND status = 'staging'
		ORDER BY id DESC LIMIT 1`, manifestSHA256).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look for the staging batch of manifest %s: %w", manifestSHA256, err)
	}
	return id, true, nil
}

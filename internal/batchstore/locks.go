package batchstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The advisory locks that order the writers of batches. Their keys are those the single-file
// loader (internal/ingest) and the seeder take, so that both kinds of batch wait for each other.
const (
	// SeedLock is held exclusively by a seed that replaces the data, shared by every
	// transaction that writes batches: none runs while a seed replaces the data.
	SeedLock int64 = 0x7261746573_01 // "rates" + 1
	// takeOutLock is taken by the writers that take rows out of prices by what they find there
	// (replaces and reverts), so that two of them on one route-day take turns.
	takeOutLock = "rates.ingest.take-out"
	// deliveryLock prefixes a delivery's key (an S3 object version): one registration each.
	deliveryLock = "rates.ingest:"
	// contentLock prefixes a content key: the same content is published once.
	contentLock = "rates.ingest.content:"
	// manifestLock prefixes the SHA-256 of a manifest without a delivery key (a file): a rerun
	// finds the batch of the run before it.
	manifestLock = "rates.ingest.manifest:"
)

// lock takes the transaction-scoped advisory lock named key.
func lock(ctx context.Context, tx pgx.Tx, key string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key); err != nil {
		return fmt.Errorf("wait for lock %s: %w", key, err)
	}
	return nil
}

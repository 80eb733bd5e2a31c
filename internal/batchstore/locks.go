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

// The writers of batches outside this package (the single-file loader and its reverts, the
// seeder) take the same locks through these, so that every key lives here.

// LockSeed waits for the batches being written and keeps new ones from starting until tx ends:
// a seed that replaces the data holds it.
func LockSeed(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", SeedLock); err != nil {
		return fmt.Errorf("wait for the seed lock: %w", err)
	}
	return nil
}

// LockBatchWriter waits for a seed replacing the data, and keeps one from starting until tx
// ends: every transaction that writes a batch holds it.
func LockBatchWriter(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", SeedLock); err != nil {
		return fmt.Errorf("wait for a running seed: %w", err)
	}
	return nil
}

// LockTakeOut waits for the replaces and reverts in progress (takeOutLock): under READ
// COMMITTED a DELETE that waits for another transaction's rows does not see the rows that
// transaction inserted, so two writers that take rows out of one route-day must take turns.
func LockTakeOut(ctx context.Context, tx pgx.Tx) error { return lock(ctx, tx, takeOutLock) }

// LockDelivery takes the lock of a delivery's key (an S3 object version, an Idempotency-Key):
// one batch is recorded per delivery.
func LockDelivery(ctx context.Context, tx pgx.Tx, key string) error {
	return lock(ctx, tx, deliveryLock+key)
}

// LockContent takes the lock of a content key (by bytes or by rows): the same content is loaded
// once, and a revert of it waits for its loads.
func LockContent(ctx context.Context, tx pgx.Tx, key string) error {
	return lock(ctx, tx, contentLock+key)
}

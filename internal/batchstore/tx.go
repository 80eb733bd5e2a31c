package batchstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// inTx runs fn in a transaction of its own and commits it when fn returns nil. The transaction
// is bounded by budget, in ctx and in the database (statement_timeout; lock_timeout a quarter of
// it, so that a writer holding the data gives up rather than queues), and waits for a seed that
// replaces the data.
func (s *Store) inTx(ctx context.Context, budget time.Duration, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer rollback(ctx, tx)
	ms := max(budget.Milliseconds(), 1)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d; SET LOCAL lock_timeout = %d", ms, max(ms/4, 1))); err != nil {
		return fmt.Errorf("set timeouts: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", SeedLock); err != nil {
		return fmt.Errorf("wait for a running seed: %w", err)
	}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rollback ends tx if it is still open; bounded, so that a dead connection does not hang the
// caller.
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

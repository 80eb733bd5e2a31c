package batchstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/batchstore"
)

// The publish sums the parts' aggregates from staged_daily's key index, in price_daily's key
// order, without sorting the batch's route-days (000039): the sort of a 2M-row batch's sums
// was the longest serial step of its publish.
func TestPublishSumsStreamFromTheKeyIndex(t *testing.T) {
	pool := seeded(t)
	s := newStore(t, pool, time.Hour)
	b := spread(t, pool, 3000, 3, 11)
	id := register(t, s, b)
	stageAll(t, s, id, b, 2)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, batchstore.SortsOff); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+batchstore.SumStagedSQL, id)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "staged_daily_key_idx") || strings.Contains(plan, "Sort") || strings.Contains(plan, "Hash") {
		t.Errorf("the sums are not read in key order from staged_daily_key_idx:\n%s", plan)
	}
}

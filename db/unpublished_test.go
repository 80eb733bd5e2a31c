package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

// The rows of a batch still staging are in prices and nowhere else (000037, 000038): not in
// price_daily, not in published_prices, not in the data generation; no other writer may take
// them out; the transaction that names the batch in rates.unstage_batch may, uncounted.
func TestRowsOfAStagingBatchAreUnpublished(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
	ctx := context.Background()
	state := func() (gen, daily, published int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT generation FROM data_generation),
			(SELECT sum(prices)::bigint FROM price_daily), (SELECT count(*) FROM published_prices)`).Scan(&gen, &daily, &published); err != nil {
			t.Fatal(err)
		}
		return gen, daily, published
	}
	exec := func(sql string, args ...any) error {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	gen0, daily0, published0 := state()

	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO batches (source_kind, source_name, status, rows, bytes, sha256, started_at,
		finished_at, duration_ms) VALUES ('file', 'parts.json', 'staging', 0, 0, repeat('a', 64), now(), now(), 0) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	stage := `INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
		SELECT orig_code, dest_code, day, price + 1, $1 FROM prices WHERE batch_id IS DISTINCT FROM $1 ORDER BY 1, 2, 3 LIMIT 500`
	if err := exec(stage, id); err != nil {
		t.Fatal(err)
	}
	if gen, daily, published := state(); gen != gen0 || daily != daily0 || published != published0 {
		t.Fatalf("staged rows moved the generation (%d → %d), price_daily (%d → %d) or published_prices (%d → %d)",
			gen0, gen, daily0, daily, published0, published)
	}

	retry := func(what string, err error) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
			t.Errorf("%s of staged rows: %v, want a serialisation failure", what, err)
		}
	}
	retry("DELETE", exec(`DELETE FROM prices WHERE batch_id = $1`, id))
	retry("DELETE of a route-day", exec(`DELETE FROM prices WHERE (orig_code, dest_code, day) IN
		(SELECT orig_code, dest_code, day FROM prices WHERE batch_id = $1 LIMIT 1)`, id))
	retry("UPDATE", exec(`UPDATE prices SET price = price + 1 WHERE batch_id = $1`, id))
	retry("TRUNCATE", exec(`TRUNCATE prices`))
	// Another batch naming itself does not free this one's rows.
	retry("DELETE naming another batch", inTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('rates.unstage_batch', '999999', true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM prices WHERE batch_id = $1`, id)
		return err
	}))

	// price_daily is rebuilt from the published prices only: the previous release's repair
	// (from every row of prices) fails; this release's counts the published rows.
	retry("the previous release's rates check --repair", inTx(ctx, pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{"LOCK TABLE prices IN SHARE ROW EXCLUSIVE MODE", "DELETE FROM price_daily",
			`INSERT INTO price_daily (orig_code, dest_code, day, prices, price_sum)
			 SELECT orig_code, dest_code, day, count(*), sum(price) FROM prices GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}))
	retry("a direct write of price_daily", exec(`UPDATE price_daily SET prices = prices WHERE day = '2026-01-02'`))
	if rows, err := store.Repair(ctx, pool); err != nil || rows == 0 {
		t.Fatalf("this release's rates check --repair beside a staging batch: %d rows, %v", rows, err)
	}
	if gen, daily, published := state(); daily != daily0 || published != published0 || gen == gen0 {
		t.Fatalf("after the repair: generation %d → %d, price_daily %d → %d, published %d", gen0, gen, daily0, daily, published)
	}
	gen0 = generation(t, pool)

	// Published rows beside them still move price_daily and the generation.
	if err := exec(`DELETE FROM prices WHERE batch_id IS DISTINCT FROM $1 AND (orig_code, dest_code, day) NOT IN
		(SELECT orig_code, dest_code, day FROM prices WHERE batch_id = $1) AND day = '2026-01-31'`, id); err != nil {
		t.Fatal(err)
	}
	gen1, daily1, published1 := state()
	if gen1 == gen0 || daily1 >= daily0 || daily1 != published1 {
		t.Fatalf("a published DELETE: generation %d → %d, price_daily %d → %d, published %d", gen0, gen1, daily0, daily1, published1)
	}
	if err := exec(`INSERT INTO prices (orig_code, dest_code, day, price)
		SELECT orig_code, dest_code, day, price FROM prices WHERE batch_id IS DISTINCT FROM $1 LIMIT 3`, id); err != nil {
		t.Fatal(err)
	}
	if gen, daily, published := state(); gen == gen1 || daily != daily1+3 || published != published1+3 {
		t.Fatalf("a published INSERT: generation %d → %d, price_daily %d → %d, published %d → %d", gen1, gen, daily1, daily, published1, published)
	}
	gen1, daily1, published1 = state()

	if err := inTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('rates.unstage_batch', $1::bigint::text, true)`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM prices WHERE batch_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE batches SET status = 'failed', report = '{}' WHERE id = $1`, id)
		return err
	}); err != nil {
		t.Fatalf("the batch's own removal of its rows: %v", err)
	}
	if gen, daily, published := state(); gen != gen1 || daily != daily1 || published != published1 {
		t.Fatalf("removing staged rows moved the generation (%d → %d), price_daily (%d → %d) or published_prices (%d → %d)",
			gen1, gen, daily1, daily, published1, published)
	}
	if n := publishedDiff(ctx, t, pool); n != 0 {
		t.Fatalf("%d route-days of price_daily differ from the published prices", n)
	}
}

func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// publishedDiff counts the route-days where price_daily differs from the published prices.
func publishedDiff(ctx context.Context, t *testing.T, pool *pgxpool.Pool) (n int64) {
	t.Helper()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (
			(SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM published_prices GROUP BY 1, 2, 3
			 EXCEPT SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily)
			UNION ALL
			(SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily
			 EXCEPT SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM published_prices GROUP BY 1, 2, 3)
		) d`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func generation(t *testing.T, pool *pgxpool.Pool) (g int64) {
	t.Helper()
	if err := pool.QueryRow(context.Background(), `SELECT generation FROM data_generation`).Scan(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

// Going down past 000037 ends a staging batch (its rows leave prices uncounted, it becomes
// rejected) and leaves price_daily exact; going up again restores the schema.
func TestStagingMigrationsGoDownAndUp(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "seed/rates.sql")
	ctx := context.Background()
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO batches (source_kind, source_name, status, rows, bytes, sha256, started_at,
		finished_at, duration_ms) VALUES ('file', 'parts.json', 'staging', 0, 0, repeat('a', 64), now(), now(), 0) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
		SELECT orig_code, dest_code, day, price + 1, $1 FROM prices ORDER BY 1, 2, 3 LIMIT 300`, id); err != nil {
		t.Fatal(err)
	}
	m, err := store.NewMigrator(ctx, pool, dbtest.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	version, _, err := m.Version()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Down(ctx, int(version)-36); err != nil {
		t.Fatalf("down past 000037: %v", err)
	}
	var status string
	var staged int64
	if err := pool.QueryRow(ctx, `SELECT status, (SELECT count(*) FROM prices WHERE batch_id = $1) FROM batches WHERE id = $1`, id).Scan(&status, &staged); err != nil {
		t.Fatal(err)
	}
	if status != "rejected" || staged != 0 {
		t.Errorf("after going down, the staging batch is %s with %d rows in prices; want rejected with none", status, staged)
	}
	var diff int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (
			(SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM prices GROUP BY 1, 2, 3
			 EXCEPT SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily)
			UNION ALL
			(SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily
			 EXCEPT SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM prices GROUP BY 1, 2, 3)) d`).Scan(&diff); err != nil || diff != 0 {
		t.Fatalf("after going down, price_daily differs from prices on %d route-days (%v)", diff, err)
	}
	if err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if n := publishedDiff(ctx, t, pool); n != 0 {
		t.Fatalf("after going up again, %d route-days of price_daily differ from the published prices", n)
	}
}

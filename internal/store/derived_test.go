package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

func mustExec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func routeDaily(t *testing.T, pool *pgxpool.Pool, day string) (prices int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT coalesce((SELECT prices FROM price_daily
		WHERE orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND day = $1::date), 0)`, day).Scan(&prices)
	if err != nil {
		t.Fatal(err)
	}
	return prices
}

// Repair rebuilds price_daily under a lock that keeps writers out: a batch in flight when it
// starts is waited for and counted, and rows no trigger counted are counted too.
func TestRepairCountsABatchCommittedMeanwhile(t *testing.T) {
	ctx := context.Background()
	pool, _ := dbtest.Migrated(t, srv)
	mustExec(t, pool, `INSERT INTO regions VALUES ('r', 'R', NULL)`)
	mustExec(t, pool, `INSERT INTO ports VALUES ('CNSHA', 'Shanghai', 'r'), ('NLRTM', 'Rotterdam', 'r')`)
	// Drift: 3 prices that no trigger counted.
	mustExec(t, pool, `ALTER TABLE prices DISABLE TRIGGER price_daily_insert`)
	mustExec(t, pool, `INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 100), ('CNSHA', 'NLRTM', '2026-01-01', 200), ('CNSHA', 'NLRTM', '2026-01-02', 300)`)
	mustExec(t, pool, `ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_insert`)
	if got := routeDaily(t, pool, "2026-01-01"); got != 0 {
		t.Fatalf("set-up: price_daily already counts %d prices", got)
	}

	// A batch in flight: its rows are written, not committed, when the repair starts.
	batch, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback(ctx) //nolint:errcheck // committed below; the rollback only runs when the test fails first
	if _, err := batch.Exec(ctx, `INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 400), ('CNSHA', 'NLRTM', '2026-01-03', 500)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := store.Repair(ctx, pool)
		done <- err
	}()

	// The repair waits for the batch's lock on prices.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE relation = 'prices'::regclass AND NOT granted AND mode = 'ShareRowExclusiveLock')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("repair finished (%v) while a batch held prices: it took no lock", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("repair never waited for the batch in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := batch.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("repair: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("repair did not finish after the batch committed")
	}
	for day, want := range map[string]int64{"2026-01-01": 3, "2026-01-02": 1, "2026-01-03": 1} {
		if got := routeDaily(t, pool, day); got != want {
			t.Errorf("price_daily on %s counts %d prices, want %d", day, got, want)
		}
	}
	rep, err := store.Check(ctx, pool, 10)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mismatches != 0 {
		t.Fatalf("after the repair, check finds %d mismatches: %v", rep.Mismatches, rep.First)
	}
}

func TestCheckAndRepair(t *testing.T) {
	ctx := context.Background()
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	rep, err := store.Check(ctx, pool, 10)
	if err != nil || rep.Mismatches != 0 {
		t.Fatalf("check on the seeded database = %+v, %v; want consistent", rep, err)
	}
	var genBefore int64
	if err := pool.QueryRow(ctx, "SELECT generation FROM data_generation").Scan(&genBefore); err != nil {
		t.Fatal(err)
	}

	// Drift: rows that no trigger counted, and a day price_daily invents.
	mustExec(t, pool, `ALTER TABLE prices DISABLE TRIGGER price_daily_insert`)
	mustExec(t, pool, `INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2026-01-01', 1000), ('CNSHA', 'NLRTM', '1999-01-01', 7)`)
	mustExec(t, pool, `ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_insert`)
	mustExec(t, pool, `INSERT INTO price_daily VALUES ('CNSHA', 'NLRTM', '1998-01-01', 1, 5)`)
	rep, err = store.Check(ctx, pool, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mismatches != 3 || len(rep.First) != 2 {
		t.Fatalf("check after drift = %d mismatches, %d listed; want 3 and 2 (the limit)", rep.Mismatches, len(rep.First))
	}
	if s := rep.First[0].String(); !strings.Contains(s, "CNSHA→NLRTM 1998-01-01: prices 1 (want no row)") {
		t.Fatalf("first mismatch = %q", s)
	}
	if s := rep.First[1].String(); !strings.Contains(s, "1999-01-01: prices no row (want 1)") {
		t.Fatalf("second mismatch = %q", s)
	}

	if _, err := store.Repair(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if rep, err := store.Check(ctx, pool, 10); err != nil || rep.Mismatches != 0 {
		t.Fatalf("check after repair = %+v, %v; want consistent", rep, err)
	}
	var genAfter int64
	if err := pool.QueryRow(ctx, "SELECT generation FROM data_generation").Scan(&genAfter); err != nil {
		t.Fatal(err)
	}
	if genAfter <= genBefore {
		t.Fatalf("repair left the data generation at %d (was %d): cached answers from the drift would survive", genAfter, genBefore)
	}
}

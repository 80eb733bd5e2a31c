package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var roleSerial atomic.Int64

// rowChecks returns how many per-row foreign key checks the batch's insert ran.
func rowChecks(t testing.TB, pool *pgxpool.Pool, batchID int64) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT (timings->>'row_fk_checks')::bigint FROM batches WHERE id = $1`, batchID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// addCountingTrigger installs a statement trigger on prices that counts its firings, enabled
// the given way (ENABLE or ENABLE ALWAYS), and marks every other trigger of prices ALWAYS.
func addCountingTrigger(t testing.TB, pool *pgxpool.Pool, enable string) func() int64 {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE TABLE trigger_calls (n bigint NOT NULL)`,
		`INSERT INTO trigger_calls VALUES (0)`,
		`CREATE FUNCTION count_call() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN UPDATE trigger_calls SET n = n + 1; RETURN NULL; END $$`,
		`CREATE TRIGGER prices_count AFTER INSERT ON prices FOR EACH STATEMENT EXECUTE FUNCTION count_call()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := pool.Query(ctx, `SELECT tgname FROM pg_trigger WHERE tgrelid = 'prices'::regclass AND NOT tgisinternal`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		mode := "ENABLE ALWAYS"
		if name == "prices_count" {
			mode = enable
		}
		if _, err := pool.Exec(ctx, "ALTER TABLE prices "+mode+" TRIGGER "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	return func() int64 {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT n FROM trigger_calls`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func TestLoadSkipsRowChecksWhenTriggersStillFire(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	calls := addCountingTrigger(t, pool, "ENABLE ALWAYS")
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	res, err := l.Load(context.Background(), apiSource("fast"), newGenBatch(1000, nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := rowChecks(t, pool, res.BatchID); n != 0 {
		t.Errorf("%d per-row checks, want the set-based check only", n)
	}
	if calls() != 1 {
		t.Errorf("the ALWAYS trigger fired %d times, want 1", calls())
	}
	if n := countPrices(t, pool); n != 1000 {
		t.Fatalf("prices holds %d rows", n)
	}
	// The foreign keys still hold on the referenced side.
	_, err = pool.Exec(context.Background(), `DELETE FROM ports WHERE code = $1`, portCode(1))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" {
		t.Fatalf("deleting a referenced port: %v, want a foreign key violation", err)
	}
}

func TestLoadKeepsRowChecksWhenATriggerWouldBeSilenced(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	calls := addCountingTrigger(t, pool, "ENABLE")
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	res, err := l.Load(context.Background(), apiSource("slow"), newGenBatch(1000, nil))
	if err != nil {
		t.Fatal(err)
	}
	// Three foreign keys per row: orig_code, dest_code, batch_id.
	if n := rowChecks(t, pool, res.BatchID); n != 3000 {
		t.Errorf("%d per-row checks, want 3000", n)
	}
	if calls() != 1 {
		t.Errorf("the trigger fired %d times, want 1", calls())
	}
}

func TestLoadAsOrdinaryRoleKeepsRowChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	addCountingTrigger(t, pool, "ENABLE ALWAYS")
	role := fmt.Sprintf("loader_%d", roleSerial.Add(1))
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(pool.Config().ConnString())
	u.User = url.User(role)
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	rolePool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rolePool.Close()
	res, err := NewLoader(rolePool, LoaderOptions{}, testLogger(t)).Load(ctx, apiSource("role"), newGenBatch(500, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusLoaded || rowChecks(t, pool, res.BatchID) != 1500 {
		t.Fatalf("result %+v, %d per-row checks; want loaded with 1500", res, rowChecks(t, pool, res.BatchID))
	}
}

// TestLoadLocksReferencedPorts shows the batch holding its ports as the foreign key checks
// would: while it is open, a referenced port cannot be deleted.
func TestLoadLocksReferencedPorts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	addCountingTrigger(t, pool, "ENABLE ALWAYS")
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	var deleteErr error
	l.beforeInsert = func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			deleteErr = err
			return
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '200ms'"); err != nil {
			deleteErr = err
			return
		}
		_, deleteErr = tx.Exec(ctx, `DELETE FROM ports WHERE code = $1`, portCode(3))
	}
	if _, err := l.Load(ctx, apiSource("locks"), newGenBatch(100, nil)); err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(deleteErr, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("deleting a port the open batch references: %v, want a lock timeout", deleteErr)
	}
}

package batchstore_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/testing/batchtest"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/ingesttest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

const maxErrors = 20

// seeded returns a database holding the project's default dump, checked when the test ends:
// price_daily must equal the GROUP BY over the published prices, and only batches still staging
// may have rows outside them.
func seeded(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, url := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	t.Cleanup(func() { checkInvariants(t, url) })
	return pool
}

func newStore(t *testing.T, pool *pgxpool.Pool, maxDuration time.Duration) *batchstore.Store {
	t.Helper()
	s, err := batchstore.New(pool, batchstore.Options{MaxErrors: maxErrors, MaxBatchDuration: maxDuration, Identity: batchtest.Identity})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedDays is the range of days of the default dump.
var seedDay0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const seedDays = 31

func ports(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT code FROM ports ORDER BY code`)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// spread is a batch of rows prices in parts parts over the dump's ports and days.
func spread(t *testing.T, pool *pgxpool.Pool, rows, parts int, seed uint64) batchtest.Batch {
	t.Helper()
	return batchtest.Spread(ports(t, pool), rows, parts, seed, seedDay0, seedDays)
}

func register(t *testing.T, s *batchstore.Store, b batchtest.Batch) int64 {
	t.Helper()
	reg, err := s.Register(context.Background(), b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Status != batchstore.StatusStaging {
		t.Fatalf("registered as %s", reg.Status)
	}
	return reg.BatchID
}

// stageAll stages every part of b, on n loaders at once, and fails the test unless each is
// staged.
func stageAll(t *testing.T, s *batchstore.Store, id int64, b batchtest.Batch, n int) {
	t.Helper()
	parts := make(chan int, len(b.Parts))
	for i := range b.Parts {
		parts <- i + 1
	}
	close(parts)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for p := range parts {
				res, err := s.StagePart(context.Background(), id, p, b.Open(maxErrors))
				if err != nil || res.Outcome != batchstore.PartStaged {
					t.Errorf("part %d: %+v, %v", p, res, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func publish(t *testing.T, s *batchstore.Store, id int64) batchstore.Published {
	t.Helper()
	res, err := s.Publish(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkInvariants fails the test unless price_daily equals the GROUP BY over published prices
// and every row outside them belongs to a batch still staging.
func checkInvariants(t *testing.T, url string) {
	t.Helper()
	ingesttest.CheckDaily(t, url)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("check invariants: %v", err)
		return
	}
	defer conn.Close(ctx)
	var stray int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM prices p JOIN batches b ON b.id = p.batch_id
		WHERE b.status NOT IN ('loaded', 'staging')`).Scan(&stray); err != nil {
		t.Errorf("check stray rows: %v", err)
		return
	}
	if stray != 0 {
		t.Errorf("%d prices belong to batches that are neither loaded nor staging", stray)
	}
}

// fingerprintSQL summarises prices (with lineage), prices_displaced and price_daily as one
// digest: equal digests mean the same rows.
const fingerprintSQL = `SELECT
	(SELECT coalesce(md5(string_agg(r, ',' ORDER BY r)), '') FROM
		(SELECT format('%s|%s|%s|%s|%s', orig_code, dest_code, day, price, batch_id) r FROM prices) p)
	|| '/' ||
	(SELECT coalesce(md5(string_agg(r, ',' ORDER BY r)), '') FROM
		(SELECT format('%s|%s|%s|%s|%s|%s', displaced_by, orig_code, dest_code, day, price, batch_id) r FROM prices_displaced) x)
	|| '/' ||
	(SELECT coalesce(md5(string_agg(r, ',' ORDER BY r)), '') FROM
		(SELECT format('%s|%s|%s|%s|%s', orig_code, dest_code, day, prices, price_sum) r FROM price_daily) d)`

func fingerprint(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var fp string
	if err := pool.QueryRow(context.Background(), fingerprintSQL).Scan(&fp); err != nil {
		t.Fatal(err)
	}
	return fp
}

// dailyFingerprint is fingerprint's price_daily part: what readers of GET /rates see.
func dailyFingerprint(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var fp string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(md5(string_agg(format('%s|%s|%s|%s|%s',
		orig_code, dest_code, day, prices, price_sum), ',' ORDER BY orig_code, dest_code, day)), '') FROM price_daily`).Scan(&fp); err != nil {
		t.Fatal(err)
	}
	return fp
}

func generation(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var g int64
	if err := pool.QueryRow(context.Background(), `SELECT generation FROM data_generation`).Scan(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/copystream"
	"rates/internal/store"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// testPorts is the number of ports newDB creates: PT000 .. PT099.
const testPorts = 100

func portCode(i int) string { return fmt.Sprintf("PT%03d", i%testPorts) }

func testLogger(_ testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newDB creates a migrated database with a region and testPorts ports.
func newDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return openDB(t, pgserver.NewDatabase(t, srv))
}

func openDB(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	defer func() {
		// Registered after the pool's Close, so it runs before it: after every test,
		// price_daily must hold exactly the GROUP BY over prices, whoever wrote them.
		t.Cleanup(func() { checkDaily(t, url) })
	}()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	m, err := store.NewMigrator(ctx, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO regions (slug, name) VALUES ('test_region', 'Test region')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO ports (code, name, parent_slug)
		SELECT 'PT' || lpad(i::text, 3, '0'), 'Port ' || i, 'test_region' FROM generate_series(0, $1 - 1) i`, testPorts); err != nil {
		t.Fatal(err)
	}
	return pool
}

// genBatch streams a valid batch of n rows; row i (from 1) is on line i+1. bad maps a line to
// the text to write there instead of a generated row.
type genBatch struct {
	*copystream.Reader
	n    int
	bad  map[int]string
	i    int
	buf  []byte
	head bool
}

func newGenBatch(n int, bad map[int]string) *genBatch {
	g := &genBatch{n: n, bad: bad}
	g.Reader = copystream.NewReader(g.next)
	return g
}

func (g *genBatch) next() ([]byte, error) {
	switch {
	case !g.head:
		g.head = true
		g.buf = append(g.buf[:0], Header+"\n"...)
	case g.i < g.n:
		g.i++
		g.buf = g.row(g.buf[:0], g.i)
	default:
		return nil, io.EOF
	}
	return g.buf, nil
}

var day0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (g *genBatch) row(b []byte, i int) []byte {
	if s, ok := g.bad[i+1]; ok {
		return append(append(b, s...), '\n')
	}
	return fmt.Appendf(b, "%s,%s,%s,%d\n", portCode(i), portCode(i*7+3), day0.AddDate(0, 0, i%365).Format(time.DateOnly), 100+i%5000)
}

func batchBytes(n int, bad map[int]string) []byte {
	b, err := io.ReadAll(newGenBatch(n, bad))
	if err != nil {
		panic(err)
	}
	return b
}

func countPrices(t testing.TB, pool *pgxpool.Pool) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM prices").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkDaily fails the test unless price_daily equals the GROUP BY over the published prices.
func checkDaily(t testing.TB, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("check price_daily: %v", err)
		return
	}
	defer conn.Close(ctx)
	var diff int64
	if err := conn.QueryRow(ctx, dailyDiffSQL).Scan(&diff); err != nil {
		t.Errorf("check price_daily: %v", err)
		return
	}
	if diff != 0 {
		t.Errorf("price_daily differs from the GROUP BY over prices on %d route-days", diff)
	}
}

// dailyDiffSQL counts the route-days where price_daily and the published prices disagree.
const dailyDiffSQL = `SELECT count(*) FROM (
	(SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily
	 EXCEPT ALL SELECT orig_code, dest_code, day, count(*), sum(price) FROM published_prices GROUP BY 1, 2, 3)
	UNION ALL
	(SELECT orig_code, dest_code, day, count(*), sum(price) FROM published_prices GROUP BY 1, 2, 3
	 EXCEPT ALL SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily)) d`

// fingerprintSQL summarises prices (with lineage) and price_daily as one digest: equal
// digests mean the same multiset of rows.
const fingerprintSQL = `SELECT
	(SELECT coalesce(md5(string_agg(r, ',' ORDER BY r)), '') FROM
		(SELECT format('%s|%s|%s|%s|%s', orig_code, dest_code, day, price, batch_id) r FROM prices) p)
	|| '/' ||
	(SELECT coalesce(md5(string_agg(r, ',' ORDER BY r)), '') FROM
		(SELECT format('%s|%s|%s|%s|%s', orig_code, dest_code, day, prices, price_sum) r FROM price_daily) d)`

func fingerprint(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var fp string
	if err := pool.QueryRow(context.Background(), fingerprintSQL).Scan(&fp); err != nil {
		t.Fatal(err)
	}
	return fp
}

// hold runs stmt in a transaction of its own and keeps it open (and whatever stmt locks held)
// until release is called or the test ends.
func hold(t testing.TB, pool *pgxpool.Pool, stmt string, args ...any) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release = func() { _ = tx.Rollback(ctx) }
	t.Cleanup(release)
	if _, err := tx.Exec(ctx, stmt, args...); err != nil {
		t.Fatal(err)
	}
	return release
}

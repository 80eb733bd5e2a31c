// Package ingesttest supports the tests of internal/ingest and the packages under it: a
// migrated database with ports, generated batches, and checks of the tables a load writes.
// It does not import internal/ingest, so that ingest's own tests can use it.
package ingesttest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/copystream"
	"rates/internal/store"
)

// header is the first line of a batch (csvbatch.Header).
const header = "orig_code,dest_code,day,price"

// TestPorts is the number of ports newDB creates: PT000 .. PT099.
const TestPorts = 100

// PortCode is the code of test port i (modulo TestPorts).
func PortCode(i int) string { return fmt.Sprintf("PT%03d", i%TestPorts) }

// Logger discards, or writes to stderr when the tests run verbose.
func Logger(_ testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// OpenDB migrates the database at url and adds a region and TestPorts ports; after the test
// it checks price_daily against the published prices.
func OpenDB(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	defer func() {
		// Registered after the pool's Close, so it runs before it: after every test,
		// price_daily must hold exactly the GROUP BY over prices, whoever wrote them.
		t.Cleanup(func() { CheckDaily(t, url) })
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
		SELECT 'PT' || lpad(i::text, 3, '0'), 'Port ' || i, 'test_region' FROM generate_series(0, $1 - 1) i`, TestPorts); err != nil {
		t.Fatal(err)
	}
	return pool
}

// GenBatch streams a valid batch of n rows; row i (from 1) is on line i+1. bad maps a line to
// the text to write there instead of a generated row.
type GenBatch struct {
	*copystream.Reader
	n    int
	bad  map[int]string
	i    int
	buf  []byte
	head bool
}

// NewGenBatch streams a valid batch of n rows, with bad's lines in place of the generated ones.
func NewGenBatch(n int, bad map[int]string) *GenBatch {
	g := &GenBatch{n: n, bad: bad}
	g.Reader = copystream.NewReader(g.next)
	return g
}

func (g *GenBatch) next() ([]byte, error) {
	switch {
	case !g.head:
		g.head = true
		g.buf = append(g.buf[:0], header+"\n"...)
	case g.i < g.n:
		g.i++
		g.buf = g.row(g.buf[:0], g.i)
	default:
		return nil, io.EOF
	}
	return g.buf, nil
}

// Day0 is the day of the first generated row.
var Day0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (g *GenBatch) row(b []byte, i int) []byte {
	if s, ok := g.bad[i+1]; ok {
		return append(append(b, s...), '\n')
	}
	return fmt.Appendf(b, "%s,%s,%s,%d\n", PortCode(i), PortCode(i*7+3), Day0.AddDate(0, 0, i%365).Format(time.DateOnly), 100+i%5000)
}

// BatchBytes is the content NewGenBatch streams.
func BatchBytes(n int, bad map[int]string) []byte {
	b, err := io.ReadAll(NewGenBatch(n, bad))
	if err != nil {
		panic(err)
	}
	return b
}

// CountPrices counts the rows of prices.
func CountPrices(t testing.TB, pool *pgxpool.Pool) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM prices").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// CheckDaily fails the test unless price_daily equals the GROUP BY over the published prices.
func CheckDaily(t testing.TB, url string) {
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

// Fingerprint is fingerprintSQL's digest of prices and price_daily.
func Fingerprint(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var fp string
	if err := pool.QueryRow(context.Background(), fingerprintSQL).Scan(&fp); err != nil {
		t.Fatal(err)
	}
	return fp
}

// Hold runs stmt in a transaction of its own and keeps it open (and whatever stmt locks held)
// until release is called or the test ends.
func Hold(t testing.TB, pool *pgxpool.Pool, stmt string, args ...any) (release func()) {
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

// CSVOf is a batch of the given header and rows.
func CSVOf(header string, rows ...string) []byte {
	return []byte(header + "\n" + strings.Join(rows, "\n") + "\n")
}

// zeros reads n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.n))
	clear(p[:n])
	z.n -= int64(n)
	return n, nil
}

// GzipBomb is a gzip stream of n zero bytes after a valid header line: one line of n bytes.
func GzipBomb(t testing.TB, n int64) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := io.WriteString(zw, header+"\nCNSGH,NOOSL,2024-01-01,"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, &zeros{n: n}); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// GzipOf is s gzip-compressed.
func GzipOf(t testing.TB, s string) []byte {
	t.Helper()
	return Gzipped([]byte(s))
}

// Gzipped is data gzip-compressed.
func Gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}

// Gunzip is the content of gzip stream b.
func Gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SHA is the hex SHA-256 of data, as a manifest names a part's checksum.
func SHA(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Eventually waits up to timeout for cond, and fails the test with what otherwise.
func Eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

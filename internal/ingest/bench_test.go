package ingest

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmarks load a generated batch per iteration into an emptied prices table and report
// rows/s and the process's peak RSS (the Go side; PostgreSQL's memory is its own). Each runs
// twice: with the schema as migrated, and with prices' own triggers marked ENABLE ALWAYS so
// that the loader may replace the per-row foreign key checks by its set-based one (see
// Loader.insert).

func BenchmarkLoad100k(b *testing.B) { benchmarkModes(b, 100_000) }

func BenchmarkLoad1M(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-row batch skipped in -short mode")
	}
	benchmarkModes(b, 1_000_000)
}

func benchmarkModes(b *testing.B, n int) {
	b.Run("row-fk-checks", func(b *testing.B) { benchmarkLoad(b, n, false) })
	b.Run("set-based-fk-check", func(b *testing.B) { benchmarkLoad(b, n, true) })
}

func benchmarkLoad(b *testing.B, n int, setBased bool) {
	ctx := context.Background()
	pool := newDB(b)
	if setBased {
		enableTriggersAlways(b, pool)
	}
	l := NewLoader(pool, LoaderOptions{}, testLogger(b))
	var total time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		if _, err := pool.Exec(ctx, "TRUNCATE prices"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := l.Load(ctx, apiSource(fmt.Sprintf("bench-%d", i)), newGenBatch(n, nil))
		total += time.Since(start)
		i++
		if err != nil {
			b.Fatal(err)
		}
		if res.Status != StatusLoaded || res.Rows != int64(n) {
			b.Fatalf("status %s, rows %d", res.Status, res.Rows)
		}
	}
	b.ReportMetric(float64(n)*float64(i)/total.Seconds(), "rows/s")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

func enableTriggersAlways(b *testing.B, pool *pgxpool.Pool) {
	ctx := context.Background()
	rows, _ := pool.Query(ctx, `SELECT tgname FROM pg_trigger WHERE tgrelid = 'prices'::regclass AND NOT tgisinternal`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range names {
		if _, err := pool.Exec(ctx, "ALTER TABLE prices ENABLE ALWAYS TRIGGER "+pgx.Identifier{name}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
}

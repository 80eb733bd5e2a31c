package ingest

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// The benchmarks load a generated batch per iteration into an emptied prices table and report
// rows/s and the process's peak RSS (the Go side; PostgreSQL's memory is its own). Each runs
// twice: with the schema as migrated, where the loader replaces the per-row foreign key checks
// by its set-based one (see Loader.insert), and with a trigger on prices of the default kind,
// which replica mode would silence, so the loader keeps the per-row checks, as it does for a
// role that may not set session_replication_role.

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
	if !setBased {
		addCountingTrigger(b, pool, "ENABLE") // of the default kind: the per-row checks stay
	}
	l := NewLoader(pool, LoaderOptions{}, testLogger(b))
	var total time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		// The batch's content is loaded again: its record lets go of it, as a discarded
		// batch's does, or the load would be a duplicate.
		if _, err := pool.Exec(ctx, `TRUNCATE prices;
			UPDATE batches SET status = 'discarded', reverted_at = now(), content_key = NULL WHERE status = 'loaded'`); err != nil {
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
		b.StopTimer()
		if n := rowChecks(b, pool, res.BatchID); (n == 0) != setBased {
			b.Fatalf("the load made %d per-row foreign key checks; set-based mode: %v", n, setBased)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(i)/total.Seconds(), "rows/s")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

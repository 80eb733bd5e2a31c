package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/config"
	"rates/internal/ingest/csvbatch"
	"rates/internal/testing/batchtest"
)

// stagingBatch registers a multi-part batch of rows spread over the test ports in parts parts
// and stages the first staged of them; the batch stays staging.
func stagingBatch(t *testing.T, pool *pgxpool.Pool, rows, parts, staged int, seed uint64) (*batchstore.Store, batchtest.Batch, int64) {
	t.Helper()
	ctx := context.Background()
	s, err := batchstore.New(pool, batchstore.Options{MaxErrors: config.DefaultMaxErrorsReported, MaxBatchDuration: time.Minute, Identity: batchtest.Identity})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]string, testPorts)
	for i := range codes {
		codes[i] = portCode(i)
	}
	b := batchtest.Spread(codes, rows, parts, seed, day0, 60)
	reg, err := s.Register(ctx, b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for p := 1; p <= staged; p++ {
		if res, err := s.StagePart(ctx, reg.BatchID, p, b.Open(config.DefaultMaxErrorsReported)); err != nil || res.Outcome != batchstore.PartStaged {
			t.Fatalf("stage part %d: %+v, %v", p, res, err)
		}
	}
	return s, b, reg.BatchID
}

// A single-file replace of a route-day that holds staged rows takes out the published prices
// there and leaves the staged ones, without a serialisation failure; the staged batch publishes
// afterwards on top of it, and price_daily stays exact (checked when the test ends).
func TestSingleFileReplaceBesideAStagingBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	s, _, id := stagingBatch(t, pool, 2_000, 2, 2, 41)
	var orig, dest string
	var day time.Time
	var stagedThere int64
	if err := pool.QueryRow(ctx, `SELECT orig_code, dest_code, day, count(*) FROM prices WHERE batch_id = $1
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT 1`, id).Scan(&orig, &dest, &day, &stagedThere); err != nil {
		t.Fatal(err)
	}
	rd := fmt.Sprintf("%s,%s,%s", orig, dest, day.Format(time.DateOnly))
	load(t, l, fileSource("before.csv"), csvOf(csvbatch.Header, rd+",100", rd+",200"))

	res := load(t, l, withMode(fileSource("fix.csv"), ModeReplace), csvOf(csvbatch.Header, rd+",777"))
	if res.Status != StatusLoaded || res.DisplacedRows != 2 {
		t.Fatalf("replace beside the staging batch: %+v; want loaded, 2 rows displaced", res)
	}
	if n := sqlCount(t, l, `SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != 2_000 {
		t.Fatalf("the staging batch holds %d rows after the replace, want 2000", n)
	}
	if _, err := s.Publish(ctx, id); err != nil {
		t.Fatal(err)
	}
	q := `SELECT count(*) FROM published_prices WHERE orig_code = $1 AND dest_code = $2 AND day = $3`
	if n := sqlCount(t, l, q, orig, dest, day); n != 1+stagedThere {
		t.Fatalf("%d published prices on the route-day after the publish, want the replace's 1 and the batch's %d", n, stagedThere)
	}
}

// A batch being staged, or one that failed, cannot be reverted: it loaded nothing (yet). The
// refusal does not wait for the parts in flight.
func TestRevertOfAStagingOrFailedBatchIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	s, _, id := stagingBatch(t, pool, 1_000, 2, 1, 42)
	// A part in flight holds the batch's row, as StagePart's transaction does.
	release := hold(t, pool, `SELECT 1 FROM batches WHERE id = $1 FOR KEY SHARE`, id)
	waitAtMost, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := l.Revert(waitAtMost, id)
	var refused *RevertRefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "being staged") {
		t.Fatalf("revert of a staging batch: %v, want a refusal at once", err)
	}
	release()
	if _, err := s.Fail(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revert(ctx, id); !errors.As(err, &refused) || !strings.Contains(err.Error(), "failed and loaded nothing") {
		t.Fatalf("revert of a failed batch: %v, want a refusal", err)
	}
}

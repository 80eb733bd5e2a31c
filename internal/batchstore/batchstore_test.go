package batchstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/batchstore"
	"rates/internal/store"
	"rates/internal/testing/batchtest"
	"rates/internal/testing/ingesttest"
)

// Staged parts change nothing a reader sees: price_daily, the data generation, the API's stats
// query, rates check; the publish then shows the whole batch at once.
func TestStagedRowsAreInvisibleUntilThePublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	all := ports(t, pool)
	// The API's query: the day stats with the generation they belong to.
	stats := func() (days int, prices, gen int64) {
		st, g, err := store.New(pool).DailyStats(ctx, all, all, seedDay0, seedDay0.AddDate(0, 0, seedDays-1))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range st {
			prices += d.Count
		}
		return len(st), prices, g.Data
	}
	daily, gen := dailyFingerprint(t, pool), generation(t, pool)
	days, before, statsGen := stats()
	published := count(t, pool, `SELECT count(*) FROM published_prices`)

	b := spread(t, pool, 20_000, 4, 1)
	id := register(t, s, b)
	stageAll(t, s, id, b, 2)
	if n := count(t, pool, `SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != 20_000 {
		t.Fatalf("%d staged rows in prices, want 20000", n)
	}
	if d, p, g := stats(); d != days || p != before || g != statsGen {
		t.Errorf("staged: the stats query sees %d days, %d prices at generation %d; before %d, %d at %d", d, p, g, days, before, statsGen)
	}
	if dailyFingerprint(t, pool) != daily || generation(t, pool) != gen {
		t.Errorf("staging changed price_daily or the data generation (%d → %d)", gen, generation(t, pool))
	}
	if n := count(t, pool, `SELECT count(*) FROM published_prices`); n != published {
		t.Errorf("published_prices shows %d rows while staged, %d before", n, published)
	}
	if rep, err := store.Check(ctx, pool, 5); err != nil || rep.Mismatches != 0 {
		t.Errorf("rates check while staged: %+v, %v", rep, err)
	}

	res := publish(t, s, id)
	routeDays := count(t, pool, `SELECT count(*) FROM (SELECT DISTINCT orig_code, dest_code, day FROM prices WHERE batch_id = $1) r`, id)
	if res.Status != batchstore.StatusLoaded || res.Rows != 20_000 || res.RouteDays != routeDays || res.RowsDigest == "" {
		t.Fatalf("publish: %+v; want loaded, 20000 rows, %d route-days", res, routeDays)
	}
	if _, p, g := stats(); p != before+20_000 || g == statsGen {
		t.Errorf("published: the stats query sees %d prices at generation %d, want %d at a generation after %d", p, g, before+20_000, statsGen)
	}
	if g := generation(t, pool); g <= gen {
		t.Errorf("the publish did not move the data generation (%d → %d)", gen, g)
	}
	if n := count(t, pool, `SELECT count(*) FROM staged_daily WHERE batch_id = $1`, id); n != 0 {
		t.Errorf("%d aggregates left in staged_daily after the publish", n)
	}
	var status, key string
	if err := pool.QueryRow(ctx, `SELECT status, rows_key FROM batches WHERE id = $1`, id).Scan(&status, &key); err != nil ||
		status != "loaded" || key != "prices:"+res.RowsDigest {
		t.Errorf("batch record: %s %s, %v", status, key, err)
	}
}

// Readers running while the parts are staged and the batch published see all of it or none of
// it, never some parts.
func TestPublishIsAllOrNothingForReaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	total := func() int64 { return count(t, pool, `SELECT coalesce(sum(prices), 0)::bigint FROM price_daily`) }
	before := total()

	b := spread(t, pool, 16_000, 8, 2)
	id := register(t, s, b)
	var seen sync.Map
	var reads atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int64
				if err := pool.QueryRow(ctx, `SELECT coalesce(sum(prices), 0)::bigint FROM price_daily`).Scan(&n); err != nil {
					t.Error(err)
					return
				}
				seen.Store(n, true)
				reads.Add(1)
			}
		})
	}
	stageAll(t, s, id, b, 3)
	publish(t, s, id)
	close(stop)
	wg.Wait()
	after := before + 16_000
	seen.Range(func(k, _ any) bool {
		if n := k.(int64); n != before && n != after {
			t.Errorf("a read saw %d prices: neither before (%d) nor after (%d) the batch", n, before, after)
		}
		return true
	})
	if n := total(); n != after {
		t.Fatalf("after the publish: %d prices, want %d", n, after)
	}
	if reads.Load() < 10 {
		t.Errorf("only %d reads ran beside the batch", reads.Load())
	}
}

// The publish of an append batch reads its parts' aggregates, not its rows: it goes through
// while another transaction holds every lock on prices, and writes one price_daily row per
// route-day, however many prices each holds.
func TestPublishCostsRouteDaysNotRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	// lock_timeout is a quarter of the deadline: 2 s.
	s := newStore(t, pool, 8*time.Second)
	all := ports(t, pool)
	var b batchtest.Batch
	b.Manifest = batchtest.Spread(all, 1, 1, 1, seedDay0, 1).Manifest
	b.Manifest.Parts = nil
	for p := range 3 {
		var csv strings.Builder
		csv.WriteString(batchtest.Header + "\n")
		for i := range 10_000 {
			// 3 routes x 4 days: 12 route-days, 2,500 prices each.
			fmt.Fprintf(&csv, "%s,%s,2026-02-%02d,%d\n", all[i%3], all[3+i%3], 1+(i/3)%4, 100+i%900+p)
		}
		b.AddPart(fmt.Sprintf("c%d.csv", p), []byte(csv.String()))
	}
	id := register(t, s, b)
	stageAll(t, s, id, b, 3)

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // only the lock matters
	if _, err := tx.Exec(ctx, `LOCK TABLE prices IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	dailyRows := count(t, pool, `SELECT count(*) FROM price_daily`)
	res, err := s.Publish(ctx, id)
	if err != nil {
		t.Fatalf("publish while prices is locked: %v", err)
	}
	if res.Status != batchstore.StatusLoaded || res.Rows != 30_000 || res.RouteDays != 12 {
		t.Fatalf("publish: %+v; want loaded, 30000 rows on 12 route-days", res)
	}
	if n := count(t, pool, `SELECT count(*) FROM price_daily`); n != dailyRows+12 {
		t.Errorf("price_daily has %d rows, want %d", n, dailyRows+12)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// withPart returns b with its part i (from 0) replaced by csv.
func withPart(b batchtest.Batch, i int, csv string) batchtest.Batch {
	var out batchtest.Batch
	out.Manifest = b.Manifest
	out.Manifest.Parts = nil
	for j, p := range b.Parts {
		if j == i {
			p = []byte(csv)
		}
		out.AddPart(b.Manifest.Parts[j].Key, p)
	}
	return out
}

// A bad row in the last part rejects the batch: every part is checked, the report names the
// part, line and column of each problem, and nothing of the batch is left.
func TestBadRowInTheLastPartRejectsTheWholeBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	fp, gen := fingerprint(t, pool), generation(t, pool)

	b := spread(t, pool, 9_000, 4, 3)
	all := ports(t, pool)
	second := batchtest.Header + "\n" + all[0] + "," + all[1] + ",2026-01-02,0\n" + all[0] + ",ZZZZZ,2026-01-02,100\n"
	b = withPart(b, 1, second)
	last := string(b.Parts[3]) + all[0] + "," + all[1] + ",2026-02-30,100\n"
	b = withPart(b, 3, last)
	lastLine := int64(strings.Count(last, "\n"))
	id := register(t, s, b)

	outcomes := map[int]batchstore.PartOutcome{}
	for p := 1; p <= 4; p++ {
		res, err := s.StagePart(ctx, id, p, b.Open(maxErrors))
		if err != nil {
			t.Fatal(err)
		}
		outcomes[p] = res.Outcome
		if p < 4 && res.BatchStatus != batchstore.StatusStaging {
			t.Fatalf("part %d: the batch is %s before its last part is checked", p, res.BatchStatus)
		}
		if p == 4 && res.BatchStatus != batchstore.StatusRejected {
			t.Fatalf("last part: the batch is %s, want rejected", res.BatchStatus)
		}
	}
	want := map[int]batchstore.PartOutcome{1: batchstore.PartStaged, 2: batchstore.PartBad, 3: batchstore.PartChecked, 4: batchstore.PartBad}
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
	if fingerprint(t, pool) != fp || generation(t, pool) != gen {
		t.Errorf("the rejected batch left rows behind or moved the generation")
	}
	if n := count(t, pool, `SELECT count(*) FROM staged_daily WHERE batch_id = $1`, id); n != 0 {
		t.Errorf("%d aggregates of the rejected batch left", n)
	}
	var rep batchstore.Report
	var status string
	if err := pool.QueryRow(ctx, `SELECT status, report FROM batches WHERE id = $1`, id).Scan(&status, &rep); err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(rep.Problems))
	for i, p := range rep.Problems {
		got[i] = fmt.Sprintf("%s:%d:%s", p.Part, p.Line, p.Column)
	}
	wantProblems := []string{"part-02.csv:2:price", "part-02.csv:3:dest_code", fmt.Sprintf("part-04.csv:%d:day", lastLine)}
	if status != "rejected" || rep.BadRows != 3 || !slices.Equal(got, wantProblems) {
		t.Errorf("record: %s, %d bad rows, problems %v; want rejected, 3, %v", status, rep.BadRows, got, wantProblems)
	}
	// A redelivered part finds the batch ended; so does a publish.
	if res, err := s.StagePart(ctx, id, 1, b.Open(maxErrors)); err != nil || res.Outcome != batchstore.PartBatchEnded {
		t.Errorf("redelivered part: %+v, %v", res, err)
	}
	if res, err := s.Publish(ctx, id); err != nil || !res.Already || res.Status != batchstore.StatusRejected {
		t.Errorf("publish of the rejected batch: %+v, %v", res, err)
	}
}

// A report lists at most MaxErrors problems over all parts, and counts every bad row.
func TestRejectionReportIsBounded(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	all := ports(t, pool)
	var b batchtest.Batch
	b.Manifest = batchtest.Spread(all, 1, 1, 4, seedDay0, 1).Manifest
	b.Manifest.Parts = nil
	for p := range 3 {
		csv := batchtest.Header + "\n" + strings.Repeat(all[0]+","+all[1]+",2026-01-02,-1\n", 15)
		b.AddPart(fmt.Sprintf("bad-%d.csv", p), []byte(csv))
	}
	id := register(t, s, b)
	for p := 1; p <= 3; p++ {
		if _, err := s.StagePart(context.Background(), id, p, b.Open(maxErrors)); err != nil {
			t.Fatal(err)
		}
	}
	var rep batchstore.Report
	if err := pool.QueryRow(context.Background(), `SELECT report FROM batches WHERE id = $1 AND status = 'rejected'`, id).Scan(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.BadRows != 45 || len(rep.Problems) != maxErrors {
		t.Errorf("report: %d bad rows, %d problems; want 45, %d", rep.BadRows, len(rep.Problems), maxErrors)
	}
}

// A part delivered twice, one after the other or at the same time, is staged once.
func TestRedeliveredPartIsStagedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	b := spread(t, pool, 6_000, 2, 5)
	id := register(t, s, b)

	results := make(chan batchstore.PartOutcome, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := s.StagePart(ctx, id, 1, b.Open(maxErrors))
			if err != nil {
				t.Error(err)
			}
			results <- res.Outcome
		})
	}
	wg.Wait()
	close(results)
	staged := 0
	for o := range results {
		switch o {
		case batchstore.PartStaged:
			staged++
		case batchstore.PartSettled, batchstore.PartBusy:
		default:
			t.Errorf("outcome %s", o)
		}
	}
	if staged != 1 {
		t.Errorf("part 1 staged %d times by 4 deliveries at once", staged)
	}
	if res, err := s.StagePart(ctx, id, 1, b.Open(maxErrors)); err != nil || res.Outcome != batchstore.PartSettled || res.Pending != 1 {
		t.Errorf("redelivery after the part is staged: %+v, %v", res, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != int64(strings.Count(string(b.Parts[0]), "\n")-1) {
		t.Errorf("%d rows staged for part 1", n)
	}
	stageRest(t, s, id, b, 2)
	if res := publish(t, s, id); res.Rows != 6_000 {
		t.Errorf("published %d rows, want 6000", res.Rows)
	}
}

func stageRest(t *testing.T, s *batchstore.Store, id int64, b batchtest.Batch, from int) {
	t.Helper()
	for p := from; p <= len(b.Parts); p++ {
		if res, err := s.StagePart(context.Background(), id, p, b.Open(maxErrors)); err != nil || res.Outcome != batchstore.PartStaged {
			t.Fatalf("part %d: %+v, %v", p, res, err)
		}
	}
}

// A loader that dies mid-part leaves nothing: its transaction rolls back with its connection,
// the part is pending again, and the next delivery stages it once.
func TestPartOfALoaderThatDiesComesBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	b := spread(t, pool, 40_000, 2, 6)
	id := register(t, s, b)

	// The first attempt's backend is terminated while its COPY waits for rows, as a killed
	// loader's connection would close.
	reached, release := make(chan struct{}), make(chan struct{})
	open := func(ctx context.Context, key string) (batchstore.PartRows, error) {
		rows, err := b.Open(maxErrors)(ctx, key)
		return &stallingRows{PartRows: rows, after: 200_000, reached: reached, release: release}, err
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.StagePart(ctx, id, 1, open)
		done <- err
	}()
	<-reached
	var pid int32
	if err := pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'COPY part_rows%'`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err == nil {
		t.Fatal("staging through a terminated connection succeeded")
	}
	// The terminated backend releases its locks as it exits, a moment after its client saw
	// the connection close; a new attempt before that finds the part busy.
	ingesttest.Eventually(t, 10*time.Second, "the terminated backend's exit", func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_locks WHERE pid = $1`, pid) == 0
	})
	var status string
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT status, attempts FROM batch_parts WHERE batch_id = $1 AND part = 1`, id).Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != "pending" || attempts != 1 || count(t, pool, `SELECT count(*) FROM prices WHERE batch_id = $1`, id) != 0 {
		t.Fatalf("after the killed attempt: part %s, %d attempts, rows in prices; want pending, 1, none", status, attempts)
	}
	stageRest(t, s, id, b, 1)
	if res := publish(t, s, id); res.Rows != 40_000 {
		t.Errorf("published %d rows, want 40000", res.Rows)
	}
}

// stallingRows stops its reader once after bytes, until release is closed, and then fails it.
type stallingRows struct {
	batchstore.PartRows
	after   int
	read    int
	reached chan struct{}
	release chan struct{}
}

func (r *stallingRows) Read(p []byte) (int, error) {
	left := r.after - r.read
	if left <= 0 {
		if r.reached != nil {
			close(r.reached)
			r.reached = nil
		}
		<-r.release
		return 0, errors.New("the loader died")
	}
	n, err := r.PartRows.Read(p[:min(len(p), left)])
	r.read += n
	return n, err
}

// A publish that fails leaves the batch staged and changes nothing; the next one publishes it.
func TestFailedPublishCanBeRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, 4*time.Second) // lock_timeout 1 s
	b := spread(t, pool, 5_000, 2, 7)
	id := register(t, s, b)
	stageAll(t, s, id, b, 2)
	fp, gen := fingerprint(t, pool), generation(t, pool)

	// Another writer holds a route-day of the batch in price_daily.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // rolled back below
	if _, err := tx.Exec(ctx, `SELECT 1 FROM price_daily d WHERE (orig_code, dest_code, day) IN
		(SELECT orig_code, dest_code, day FROM staged_daily WHERE batch_id = $1) FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	_, err = s.Publish(ctx, id)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("publish while a route-day is locked: %v, want a lock timeout", err)
	}
	if fingerprint(t, pool) != fp || generation(t, pool) != gen {
		t.Fatal("the failed publish changed the data")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if res := publish(t, s, id); res.Status != batchstore.StatusLoaded || res.Rows != 5_000 {
		t.Fatalf("retried publish: %+v", res)
	}
	if res := publish(t, s, id); !res.Already || res.Status != batchstore.StatusLoaded {
		t.Errorf("second publish: %+v, want already loaded", res)
	}
}

// Two loaders that staged the last parts at once both publish: the batch is published once.
func TestConcurrentPublishesPublishOnce(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	b := spread(t, pool, 6_000, 3, 8)
	id := register(t, s, b)
	stageAll(t, s, id, b, 3)
	results := make(chan batchstore.Published, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := s.Publish(context.Background(), id)
			if err != nil {
				t.Error(err)
			}
			results <- res
		})
	}
	wg.Wait()
	close(results)
	published := 0
	for res := range results {
		if res.Status != batchstore.StatusLoaded {
			t.Errorf("publish: %+v", res)
		}
		if !res.Already {
			published++
		}
	}
	if published != 1 {
		t.Errorf("%d of 4 concurrent publishes published the batch", published)
	}
}

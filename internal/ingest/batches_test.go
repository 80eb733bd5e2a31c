package ingest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"rates/internal/batchstore"
	"rates/internal/ingest/csvbatch"
	"rates/internal/metrics"
)

func load(t *testing.T, l *Loader, src Source, data []byte) Result {
	t.Helper()
	res, err := l.Load(context.Background(), src, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("load %s: %v", src.Name, err)
	}
	return res
}

func withMode(src Source, m Mode) Source      { src.Mode = m; return src }
func withKind(src Source, k DataKind) Source  { src.Data = k; return src }
func fileSource(name string) Source           { return FileSource(name) }
func s3Source(key, etag string) Source        { return S3Source("b", key, "", etag) }
func routeRows(t *testing.T, l *Loader) int64 { return countPrices(t, l.pool) }
func sqlCount(t *testing.T, l *Loader, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := l.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The same content loads once, whatever the entry point, key, name or encoding; the duplicate
// reports the first batch.
func TestSameContentLoadsOnceUnderAnyName(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	data := batchBytes(200, nil)
	first := load(t, l, apiSource("k1"), data)
	if first.Status != StatusLoaded {
		t.Fatalf("first load: %+v", first)
	}
	for name, src := range map[string]Source{
		"another Idempotency-Key": apiSource("k2"),
		"a file":                  fileSource("/tmp/other-name.csv"),
		"an S3 object":            s3Source("incoming/copy.csv", "e1"),
	} {
		for _, body := range [][]byte{data, gzipped(data)} {
			res := load(t, l, src, body)
			if res.Status != StatusDuplicate || res.BatchID != first.BatchID || res.Rows != 200 {
				t.Fatalf("%s: %+v, want a duplicate of batch %d", name, res, first.BatchID)
			}
		}
	}
	if n := routeRows(t, l); n != 200 {
		t.Fatalf("prices holds %d rows, want 200", n)
	}
	if n := sqlCount(t, l, `SELECT count(*) FROM prices WHERE batch_id = $1`, first.BatchID); n != 200 {
		t.Fatalf("%d rows carry the batch's id, want 200", n)
	}
}

// The same rows re-exported (a price written 0100, CRLF or CR-only line breaks, no final line
// break, another order) are the same batch: a duplicate, not a second load that counts every
// price twice.
func TestReexportedRowsLoadOnce(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	data := batchBytes(300, nil)
	first := load(t, l, fileSource("export.csv"), data)
	if first.Status != StatusLoaded {
		t.Fatalf("first load: %+v", first)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	header, rows := lines[0], lines[1:]
	zeros := make([]string, len(rows))
	for i, r := range rows {
		cut := strings.LastIndexByte(r, ',')
		zeros[i] = r[:cut+1] + "0" + r[cut+1:]
	}
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	for name, body := range map[string]string{
		"a price written 0100": header + "\n" + strings.Join(zeros, "\n") + "\n",
		"CRLF, no final":       header + "\r\n" + strings.Join(rows, "\r\n"),
		"CR only":              header + "\r" + strings.Join(rows, "\r") + "\r",
		"another order, gzip":  string(gzipped([]byte(header + "\n" + strings.Join(reversed, "\n") + "\n"))),
	} {
		res := load(t, l, fileSource(name), []byte(body))
		if res.Status != StatusDuplicate || res.BatchID != first.BatchID || res.RowsDigest != first.RowsDigest {
			t.Fatalf("%s: %+v, want a duplicate of batch %d", name, res, first.BatchID)
		}
	}
	if n := routeRows(t, l); n != 300 {
		t.Fatalf("prices holds %d rows, want 300", n)
	}
	// A row more is another batch.
	if res := load(t, l, fileSource("more.csv"), append(slices.Clone(data), "PT001,PT002,2024-03-01,7\n"...)); res.Status != StatusLoaded {
		t.Fatalf("a row more: %+v", res)
	}
}

// A rejected content is checked again when sent again: the database may have changed (a port
// was added) since.
func TestRejectedContentIsCheckedAgain(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	data := csvOf(csvbatch.Header, "PT001,NEWP1,2024-02-01,100", "PT001,NEWP1,2024-02-01,200")
	if res := load(t, l, fileSource("a.csv"), data); res.Status != StatusRejected {
		t.Fatalf("before the port exists: %+v", res)
	}
	if res := load(t, l, withKind(fileSource("ports.csv"), DataPorts), csvOf(PortsHeader, "NEWP1,New port,test_region")); res.Status != StatusLoaded {
		t.Fatalf("ports batch: %+v %+v", res, res.Report)
	}
	if res := load(t, l, fileSource("a.csv"), data); res.Status != StatusLoaded || res.Rows != 2 {
		t.Fatalf("after the port was added: %+v", res)
	}
}

func TestReplaceLeavesExactlyItsRowsOnItsRouteDaysAndRevertRestores(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	ctx := context.Background()
	load(t, l, apiSource("base"), csvOf(csvbatch.Header,
		"PT001,PT002,2024-03-01,100", "PT001,PT002,2024-03-01,110", "PT001,PT002,2024-03-01,120",
		"PT001,PT002,2024-03-02,200", "PT003,PT004,2024-03-01,300"))
	// Manual SQL writes too, without a batch.
	if _, err := pool.Exec(ctx, `INSERT INTO prices (orig_code, dest_code, day, price) VALUES ('PT001', 'PT002', '2024-03-01', 130)`); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, pool)

	corr := load(t, l, withMode(apiSource("corr"), ModeReplace), csvOf(csvbatch.Header,
		"PT001,PT002,2024-03-01,105", "PT001,PT002,2024-03-01,115", "PT005,PT006,2024-03-09,50"))
	if corr.Status != StatusLoaded || corr.DisplacedRows != 4 || corr.Rows != 3 {
		t.Fatalf("replace: %+v, want 3 rows loaded and 4 displaced", corr)
	}
	var got string
	if err := pool.QueryRow(ctx, `SELECT string_agg(price::text, ',' ORDER BY price) FROM prices
		WHERE orig_code = 'PT001' AND dest_code = 'PT002' AND day = '2024-03-01'`).Scan(&got); err != nil || got != "105,115" {
		t.Fatalf("route-day after the replace: %q (%v), want exactly the batch's rows 105,115", got, err)
	}
	// Route-days not in the batch are untouched.
	if n := sqlCount(t, l, `SELECT count(*) FROM prices WHERE (orig_code, day) IN (('PT001', '2024-03-02'), ('PT003', '2024-03-01'))`); n != 2 {
		t.Fatalf("route-days outside the batch hold %d rows, want 2", n)
	}

	res, err := l.Revert(ctx, corr.BatchID)
	if err != nil || res.Status != "reverted" || res.RemovedRows != 3 || res.RestoredRows != 4 {
		t.Fatalf("revert: %+v, %v", res, err)
	}
	if after := fingerprint(t, pool); after != before {
		t.Fatalf("after the revert prices and price_daily differ from before the replace")
	}
	again, err := l.Revert(ctx, corr.BatchID)
	if err != nil || again.Status != "unchanged" || !strings.Contains(again.Message, "already reverted") {
		t.Fatalf("second revert: %+v, %v; want a no-op that says so", again, err)
	}
	if after := fingerprint(t, pool); after != before {
		t.Fatalf("the second revert changed the data")
	}
	// The reverted content may be loaded again (under a new key).
	if res := load(t, l, withMode(apiSource("corr-again"), ModeReplace), csvOf(csvbatch.Header,
		"PT001,PT002,2024-03-01,105", "PT001,PT002,2024-03-01,115", "PT005,PT006,2024-03-09,50")); res.Status != StatusLoaded {
		t.Fatalf("reloading reverted content: %+v", res)
	}
	b, err := l.Batch(ctx, corr.BatchID)
	if err != nil || b.Status != StatusReverted || b.Mode != ModeReplace || b.DisplacedRows != 4 || b.RevertedAt == nil {
		t.Fatalf("batch record: %+v, %v", b, err)
	}
}

// Replaces and reverts that take rows out of the same route-day take turns: whatever order they
// commit in, the route-day ends as some serial order leaves it. An outside transaction holds the
// route-day's row locked until both are waiting, so that both start before either commits.
// Without the take-out lock the first case ends with both replaces' rows (200 and 300), the second
// with the row the revert put back beside the replace's (100 and 300).
func TestReplacesAndRevertsOfOneRouteDayTakeTurns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// first starts while the route-day is held; the replace of 300 starts after it.
		first func(l *Loader, r1 int64) error
		want  []string // what the route-day may hold afterwards, one per serial order
	}{
		{
			name: "replace and replace",
			first: func(l *Loader, _ int64) error {
				_, err := l.Load(context.Background(), withMode(apiSource("r-200"), ModeReplace), bytes.NewReader(csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,200")))
				return err
			},
			want: []string{"200", "300"},
		},
		{
			name: "revert of a replace and replace",
			first: func(l *Loader, r1 int64) error {
				_, err := l.Revert(context.Background(), r1)
				return err
			},
			// The revert first: 100 back, then replaced by 300. The replace first: the revert is
			// refused (the replace displaced r1's row) and 300 stays.
			want: []string{"300"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := newDB(t)
			l := NewLoader(pool, LoaderOptions{}, testLogger(t))
			load(t, l, apiSource("base"), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100"))
			r1 := load(t, l, withMode(apiSource("r1"), ModeReplace), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,150"))

			release := hold(t, pool, `SELECT 1 FROM prices WHERE orig_code = 'PT001' AND dest_code = 'PT002' AND day = '2024-03-01' FOR UPDATE`)
			errs := make(chan error, 2)
			go func() { errs <- tc.first(l, r1.BatchID) }()
			waitForLockWaiters(t, l, 1)
			go func() {
				_, err := l.Load(context.Background(), withMode(apiSource("r-300"), ModeReplace), bytes.NewReader(csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,300")))
				errs <- err
			}()
			waitForLockWaiters(t, l, 2)
			release()
			for range 2 {
				if err := <-errs; err != nil {
					var refused *RevertRefusedError
					if !errors.As(err, &refused) {
						t.Fatal(err)
					}
				}
			}
			var got string
			if err := pool.QueryRow(context.Background(), `SELECT string_agg(price::text, ',' ORDER BY price) FROM prices
				WHERE orig_code = 'PT001' AND dest_code = 'PT002' AND day = '2024-03-01'`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(tc.want, got) {
				t.Fatalf("the route-day holds prices %q, want one of %q", got, tc.want)
			}
		})
	}
}

// A revert of a ports batch while a price load that uses one of its ports runs: the two wait
// for each other in turn, never in a cycle. The revert waits for the load and is then refused
// (prices use the port it created); nothing fails with a deadlock.
func TestRevertOfPortsRacingALoadWaits(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	ports := load(t, l, withKind(fileSource("ports.csv"), DataPorts), csvOf(PortsHeader, "NEWP1,New port,test_region", "PT001,Renamed,test_region"))
	if ports.Status != StatusLoaded {
		t.Fatalf("ports batch: %+v", ports)
	}
	loading := NewLoader(pool, LoaderOptions{}, testLogger(t))
	inLoad, release := make(chan struct{}), make(chan struct{})
	loading.beforeInsert = func() { close(inLoad); <-release }
	loadDone := make(chan error, 1)
	go func() {
		_, err := loading.Load(context.Background(), apiSource("uses-newp1"), bytes.NewReader(csvOf(csvbatch.Header, "NEWP1,PT002,2024-03-01,100")))
		loadDone <- err
	}()
	<-inLoad // the load holds NEWP1 FOR KEY SHARE
	revertDone := make(chan error, 1)
	go func() {
		_, err := l.Revert(context.Background(), ports.BatchID)
		revertDone <- err
	}()
	waitForLockWaiters(t, l, 1)
	close(release)
	if err := <-loadDone; err != nil {
		t.Fatalf("the load: %v", err)
	}
	err := <-revertDone
	var refused *RevertRefusedError
	if !errors.As(err, &refused) || !strings.Contains(refused.Reason, "prices still use port NEWP1") {
		t.Fatalf("the revert: %v, want a refusal naming NEWP1", err)
	}
	if n := sqlCount(t, l, `SELECT count(*) FROM prices WHERE orig_code = 'NEWP1'`); n != 1 {
		t.Fatalf("%d prices from NEWP1, want 1", n)
	}
}

// waitForLockWaiters waits until n sessions of l's database wait for a row or advisory lock.
func waitForLockWaiters(t *testing.T, l *Loader, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sqlCount(t, l, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple', 'advisory')`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d sessions waiting for a lock", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRevertAppendRemovesExactlyTheBatch(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	load(t, l, apiSource("a"), batchBytes(500, nil))
	before := fingerprint(t, pool)
	b := load(t, l, apiSource("b"), batchBytes(700, nil)) // same route-days as a, other content
	res, err := l.Revert(context.Background(), b.BatchID)
	if err != nil || res.RemovedRows != 700 {
		t.Fatalf("revert: %+v, %v", res, err)
	}
	if fingerprint(t, pool) != before {
		t.Fatal("after the revert the data differ from before the batch")
	}
}

func TestRevertRefusals(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	ctx := context.Background()
	base := load(t, l, apiSource("base"), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100"))
	repl := load(t, l, withMode(apiSource("repl"), ModeReplace), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,90"))
	bad := load(t, l, apiSource("bad"), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,x"))
	dup := load(t, l, apiSource("dup"), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100"))
	var refused *RevertRefusedError
	for name, tc := range map[string]struct {
		id   int64
		want string
	}{
		"displaced by a later replace": {base.BatchID, "replaced by batch"},
		"rejected":                     {bad.BatchID, "rejected"},
		"duplicate":                    {dup.RecordID, "duplicate of batch"},
	} {
		if _, err := l.Revert(ctx, tc.id); !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal mentioning %q", name, err, tc.want)
		}
	}
	if _, err := l.Revert(ctx, 9999); !errors.Is(err, ErrBatchNotFound) {
		t.Errorf("unknown batch: %v", err)
	}
	// Reverting the replace first, then the base, works.
	if _, err := l.Revert(ctx, repl.BatchID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revert(ctx, base.BatchID); err != nil {
		t.Fatal(err)
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("%d prices left", n)
	}
}

func TestReferenceDataBatches(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	ctx := context.Background()
	// Regions: parents in the database or in the same batch, in any order.
	regions := load(t, l, withKind(apiSource("regions"), DataRegions), csvOf(RegionsHeader,
		"new_sub,New sub-region,new_top", "new_top,New top region,", "test_region,Test region renamed,new_top"))
	if regions.Status != StatusLoaded || regions.Rows != 3 {
		t.Fatalf("regions batch: %+v %+v", regions, regions.Report)
	}
	ports := load(t, l, withKind(apiSource("ports"), DataPorts), csvOf(PortsHeader,
		"NEWP1,New port 1,new_sub", "PT001,Port one renamed,new_sub"))
	if ports.Status != StatusLoaded {
		t.Fatalf("ports batch: %+v %+v", ports, ports.Report)
	}
	prices := load(t, l, apiSource("prices"), csvOf(csvbatch.Header, "NEWP1,PT002,2024-04-01,10"))
	if prices.Status != StatusLoaded {
		t.Fatalf("prices on the new port: %+v %+v", prices, prices.Report)
	}
	var parent string
	if err := pool.QueryRow(ctx, `SELECT parent_slug FROM regions WHERE slug = 'test_region'`).Scan(&parent); err != nil || parent != "new_top" {
		t.Fatalf("test_region's parent %q, %v", parent, err)
	}

	for name, tc := range map[string]struct {
		kind DataKind
		data []byte
		want string
	}{
		"cycle":          {DataRegions, csvOf(RegionsHeader, "new_top,Top,test_region"), "cycle"},
		"unknown parent": {DataPorts, csvOf(PortsHeader, "NEWP2,Port,atlantis"), `unknown region "atlantis"`},
		"code shape":     {DataPorts, csvOf(PortsHeader, "newp2,Port,new_sub"), "not a port code"},
		"slug shape":     {DataRegions, csvOf(RegionsHeader, "New-Top,Top,"), "not a region slug"},
		"duplicate code": {DataPorts, csvOf(PortsHeader, "NEWP3,A,new_sub", "NEWP3,B,new_sub"), "already on line 2"},
		"port parent":    {DataPorts, csvOf(PortsHeader, "NEWP4,A,"), "needs a parent region"},
		"header":         {DataPorts, csvOf(RegionsHeader, "x,y,z"), "header must be code,name,parent_slug"},
	} {
		res := load(t, l, withKind(apiSource("bad-"+name), tc.kind), tc.data)
		if res.Status != StatusRejected || !strings.Contains(res.Report.Errors[0].Reason, tc.want) {
			t.Errorf("%s: %+v %+v, want a rejection mentioning %q", name, res, res.Report, tc.want)
		}
	}

	// No port removed while prices use it: the ports batch cannot be reverted yet.
	var refused *RevertRefusedError
	if _, err := l.Revert(ctx, ports.BatchID); !errors.As(err, &refused) || !strings.Contains(err.Error(), "NEWP1") {
		t.Fatalf("revert of the ports batch with prices on its port: %v", err)
	}
	if _, err := l.Revert(ctx, prices.BatchID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revert(ctx, regions.BatchID); !errors.As(err, &refused) {
		t.Fatalf("revert of the regions batch before the ports batch on them: %v", err)
	}
	if _, err := l.Revert(ctx, ports.BatchID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revert(ctx, regions.BatchID); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := pool.QueryRow(ctx, `SELECT r.name || '/' || coalesce(r.parent_slug, '') || '/' || p.name
		FROM regions r, ports p WHERE r.slug = 'test_region' AND p.code = 'PT001'`).Scan(&name); err != nil || name != "Test region//Port 1" {
		t.Fatalf("after the reverts: %q, %v; want the original names and parents", name, err)
	}
	if n := sqlCount(t, l, `SELECT count(*) FROM regions WHERE slug LIKE 'new_%'`) + sqlCount(t, l, `SELECT count(*) FROM ports WHERE code = 'NEWP1'`); n != 0 {
		t.Fatalf("%d created regions or ports left after the reverts", n)
	}
}

// A load that cannot finish within its deadline (here: blocked on a lock) rolls back and
// leaves nothing recorded.
func TestLoadPastItsDeadlineRollsBack(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{MaxDuration: 2 * time.Second}, testLogger(t))
	ctx := context.Background()
	release := hold(t, pool, "LOCK TABLE prices IN EXCLUSIVE MODE")
	start := time.Now()
	_, err := l.Load(ctx, apiSource("late"), bytes.NewReader(batchBytes(100, nil)))
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("load under a held lock: %v after %s, want an error within the deadline", err, time.Since(start))
	}
	release()
	if n := sqlCount(t, l, `SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded", n)
	}
	if res := load(t, l, apiSource("late"), batchBytes(100, nil)); res.Status != StatusLoaded {
		t.Fatalf("retry: %+v", res)
	}
}

func TestLoaderObservesLagFromTheEventTime(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	l := NewLoader(newDB(t), LoaderOptions{Metrics: m}, testLogger(t))
	src := apiSource("lag")
	src.ReceivedAt = time.Now().Add(-90 * time.Second)
	load(t, l, src, batchBytes(10, nil))
	load(t, l, apiSource("no-time"), batchBytes(11, nil)) // no ReceivedAt: not observed
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var h *dto.Histogram
	for _, f := range families {
		if f.GetName() == "rates_ingest_lag_seconds" {
			h = f.GetMetric()[0].GetHistogram()
		}
	}
	if h == nil || h.GetSampleCount() != 1 || h.GetSampleSum() < 90 || h.GetSampleSum() > 150 {
		t.Fatalf("rates_ingest_lag_seconds = %v, want one sample of about 90s", h)
	}
}

// A seed in progress (its advisory lock held) keeps loads out: they wait, then give up at
// their lock timeout without writing anything.
func TestSeedLockKeepsLoadsOut(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{MaxDuration: 2 * time.Second}, testLogger(t))
	ctx := context.Background()
	release := hold(t, pool, "SELECT pg_advisory_xact_lock($1)", batchstore.SeedLock)
	if _, err := l.Load(ctx, apiSource("during-seed"), bytes.NewReader(batchBytes(10, nil))); err == nil || !strings.Contains(err.Error(), "running seed") {
		t.Fatalf("load during a seed: %v, want it kept out", err)
	}
	if _, err := l.Revert(ctx, 1); err == nil || !strings.Contains(err.Error(), "running seed") {
		t.Fatalf("revert during a seed: %v, want it kept out", err)
	}
	release()
	if res := load(t, l, apiSource("during-seed"), batchBytes(10, nil)); res.Status != StatusLoaded {
		t.Fatalf("after the seed: %+v", res)
	}
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/ingest/csvbatch"
)

func apiSource(key string) Source { return APISource(key, "test") }

func TestLoadValidBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	data := batchBytes(1000, nil)

	res, err := l.Load(ctx, apiSource("k1"), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusLoaded || res.Rows != 1000 || res.Bytes != int64(len(data)) ||
		res.SHA256 != sha(data) || res.Replayed || res.BatchID == 0 || res.Report != nil {
		t.Fatalf("result = %+v", res)
	}
	if n := countPrices(t, pool); n != 1000 {
		t.Fatalf("prices holds %d rows, want 1000", n)
	}
	// The rows are the batch's: spot-check one, and the total of prices.
	var price int
	if err := pool.QueryRow(ctx, `SELECT price FROM prices WHERE orig_code = $1 AND dest_code = $2 AND day = $3`,
		portCode(10), portCode(73), "2024-01-11").Scan(&price); err != nil || price != 110 {
		t.Fatalf("row 10: price %d, %v; want 110", price, err)
	}
	var status, source string
	var rows, bytes int64
	var timings map[string]int64
	if err := pool.QueryRow(ctx, `SELECT status, source_kind, rows, bytes, timings FROM batches WHERE id = $1`, res.BatchID).
		Scan(&status, &source, &rows, &bytes, &timings); err != nil {
		t.Fatal(err)
	}
	if status != "loaded" || source != "api" || rows != 1000 || bytes != int64(len(data)) {
		t.Errorf("batches row: %s %s %d %d", status, source, rows, bytes)
	}
	if _, ok := timings["insert_ms"]; !ok {
		t.Errorf("timings = %v, want copy, validate and insert phases", timings)
	}
}

func TestLoadGzip(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(batchBytes(500, nil)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	res, err := l.Load(context.Background(), apiSource("gz"), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusLoaded || res.Rows != 500 || res.Bytes != int64(buf.Len()) {
		t.Fatalf("result = %+v", res)
	}
	if n := countPrices(t, pool); n != 500 {
		t.Fatalf("prices holds %d rows, want 500", n)
	}
}

func TestLoadRejectsCorruptOrMislabelledGzip(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(batchBytes(2000, nil))
	zw.Close()
	truncated := buf.Bytes()[:buf.Len()/2]

	for name, tc := range map[string]struct {
		data   []byte
		gzip   bool
		reason string
	}{
		"truncated gzip":      {truncated, false, "cannot read the batch: unexpected EOF"},
		"bad gzip header":     {[]byte{0x1f, 0x8b, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false, "cannot read the batch: gzip: invalid header"},
		"declared gzip plain": {batchBytes(1, nil), true, "cannot read the batch: declared gzip-encoded, but the data is not gzip"},
	} {
		src := apiSource(name)
		src.Gzip = tc.gzip
		res, err := l.Load(context.Background(), src, bytes.NewReader(tc.data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Status != StatusRejected || len(res.Report.Errors) == 0 || res.Report.Errors[len(res.Report.Errors)-1].Reason != tc.reason {
			t.Errorf("%s: result %+v, report %+v; want rejected with %q", name, res, res.Report, tc.reason)
		}
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("prices holds %d rows after rejected batches", n)
	}
}

func TestLoadRejectsWholeBatchForOneBadRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	const badLine = 73_214
	data := newGenBatch(100_000, map[int]string{badLine: "PT001,ZZZZZ,2024-03-01,100"})

	res, err := l.Load(ctx, apiSource("one-bad"), data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusRejected || res.Rows != 100_000 {
		t.Fatalf("result = %+v, want rejected with 100000 rows", res)
	}
	want := Report{BadRows: 1, Errors: []csvbatch.RowError{{Line: badLine, Column: "dest_code", Reason: `unknown port code "ZZZZZ"`}}}
	if got := *res.Report; got.BadRows != want.BadRows || !slices.Equal(got.Errors, want.Errors) {
		t.Fatalf("report = %+v, want %+v", got, want)
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("prices holds %d rows of a rejected batch", n)
	}
	// The rejection is recorded with its report.
	var status string
	var report Report
	if err := pool.QueryRow(ctx, `SELECT status, report FROM batches WHERE id = $1`, res.BatchID).Scan(&status, &report); err != nil {
		t.Fatal(err)
	}
	if status != "rejected" || report.BadRows != 1 || !slices.Equal(report.Errors, want.Errors) {
		t.Errorf("recorded %s %+v", status, report)
	}
}

func TestLoadReportsFirstErrorsByLineAndCountsAllBadRows(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{MaxErrors: 4}, testLogger(t))
	bad := map[int]string{
		5:  "PT001,PT002,2024-02-30,100",     // checked in Go
		6:  "AAAAA,BBBBB,2024-02-01,100",     // two unknown codes, checked in SQL
		9:  "PT001,PT002,2024-02-01",         // field count
		12: "QQQQQ,PT002,2024-02-01,-1",      // unknown code and a bad price in one row
		40: "PT001,PT002,2024-02-01,1.5",     // beyond the listed errors, still counted
		41: "PT001,XXXXX,2024-02-01,1",       // beyond the listed errors, still counted
		42: "PT001,PT002,2024-02-01,1,extra", // beyond the listed errors, still counted
	}
	res, err := l.Load(context.Background(), apiSource("many"), newGenBatch(50, bad))
	if err != nil {
		t.Fatal(err)
	}
	want := []csvbatch.RowError{
		{Line: 5, Column: "day", Reason: `"2024-02-30" is not a real date`},
		{Line: 6, Column: "orig_code", Reason: `unknown port code "AAAAA"`},
		{Line: 6, Column: "dest_code", Reason: `unknown port code "BBBBB"`},
		{Line: 9, Column: "", Reason: "expected 4 fields, got 3"},
	}
	if res.Status != StatusRejected || res.Report.BadRows != int64(len(bad)) || !slices.Equal(res.Report.Errors, want) {
		t.Fatalf("result %+v, report %+v; want %d bad rows and errors %+v", res, res.Report, len(bad), want)
	}
}

func TestLoadRejectsBadHeader(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	res, err := l.Load(context.Background(), apiSource("header"), strings.NewReader("origin,destination,day,price\nPT001,PT002,2024-01-01,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	// No row was read as a row, so none is counted bad (a manifest part reports the same).
	if res.Status != StatusRejected || len(res.Report.Errors) != 1 || res.Report.Errors[0].Line != 1 || res.Report.BadRows != 0 ||
		!strings.HasPrefix(res.Report.Errors[0].Reason, "header must be orig_code,dest_code,day,price") {
		t.Fatalf("result %+v, report %+v", res, res.Report)
	}
}

func TestLoadIsIdempotentPerSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	first, err := l.Load(ctx, apiSource("same"), newGenBatch(300, nil))
	if err != nil {
		t.Fatal(err)
	}
	// The replay reads its body only to compare the content, and writes nothing.
	again, err := l.Load(ctx, apiSource("same"), newGenBatch(300, nil))
	if err != nil {
		t.Fatal(err)
	}
	// The same key with other content is a conflict naming the key and the first batch.
	_, err = l.Load(ctx, apiSource("same"), newGenBatch(301, nil))
	var conflict *KeyConflictError
	if !errors.As(err, &conflict) || conflict.Key != "api:same" || conflict.BatchID != first.BatchID {
		t.Fatalf("same key, other content: %v, want a KeyConflictError", err)
	}
	if !again.Replayed || again.BatchID != first.BatchID || again.Rows != 300 || again.Status != StatusLoaded || again.SHA256 != first.SHA256 {
		t.Fatalf("replay = %+v, want the first result %+v", again, first)
	}
	if n := countPrices(t, pool); n != 300 {
		t.Fatalf("prices holds %d rows, want 300", n)
	}
	found, ok, err := l.Find(ctx, apiSource("same"))
	if err != nil || !ok || found.BatchID != first.BatchID {
		t.Fatalf("Find = %+v, %t, %v", found, ok, err)
	}
	if _, ok, err := l.Find(ctx, apiSource("other")); err != nil || ok {
		t.Fatalf("Find of an unknown source = %t, %v", ok, err)
	}

	// A rejected batch replays as rejected, with its report.
	if _, err := l.Load(ctx, apiSource("bad"), newGenBatch(10, map[int]string{3: "x"})); err != nil {
		t.Fatal(err)
	}
	rejected, err := l.Load(ctx, apiSource("bad"), newGenBatch(10, map[int]string{3: "x"}))
	if err != nil || !rejected.Replayed || rejected.Status != StatusRejected || rejected.Report == nil || rejected.Report.BadRows != 1 {
		t.Fatalf("replay of a rejected batch = %+v (report %+v), %v", rejected, rejected.Report, err)
	}
}

func TestConcurrentLoadsOfOneSourceLoadOnce(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	const loaders = 4
	results := make([]Result, loaders)
	errs := make([]error, loaders)
	var wg sync.WaitGroup
	for i := range loaders {
		wg.Go(func() {
			results[i], errs[i] = l.Load(context.Background(), apiSource("race"), newGenBatch(20_000, nil))
		})
	}
	wg.Wait()
	loaded := 0
	for i := range loaders {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !results[i].Replayed {
			loaded++
		}
		if results[i].BatchID != results[0].BatchID {
			t.Errorf("loads returned batches %d and %d", results[i].BatchID, results[0].BatchID)
		}
	}
	if loaded != 1 {
		t.Errorf("%d loads did the work, want 1", loaded)
	}
	if n := countPrices(t, pool); n != 20_000 {
		t.Fatalf("prices holds %d rows, want 20000", n)
	}
}

// failingReader delivers its data, then fails instead of ending.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestLoadSourceFailureRecordsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	broken := errors.New("connection reset by peer")
	data := batchBytes(5000, nil)
	_, err := l.Load(ctx, apiSource("flaky"), &failingReader{r: bytes.NewReader(data[:len(data)/2]), err: broken})
	var srcErr *SourceError
	if !errors.As(err, &srcErr) || !errors.Is(err, broken) {
		t.Fatalf("err = %v, want a SourceError wrapping the read error", err)
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("prices holds %d rows after a failed load", n)
	}
	if _, ok, _ := l.Find(ctx, apiSource("flaky")); ok {
		t.Fatal("a failed load was recorded")
	}
	// A retry with the whole body loads it.
	res, err := l.Load(ctx, apiSource("flaky"), bytes.NewReader(data))
	if err != nil || res.Status != StatusLoaded || res.Replayed || res.Rows != 5000 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

func TestLoadCancelledMidwayRecordsNothing(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	g := newGatedReader(newGenBatch(50_000, nil), 200_000)
	done := make(chan error, 1)
	go func() {
		_, err := l.Load(ctx, apiSource("cancel"), g)
		done <- err
	}()
	<-g.reached
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	g.release()
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("prices holds %d rows after a cancelled load", n)
	}
	res, err := l.Load(context.Background(), apiSource("cancel"), newGenBatch(50_000, nil))
	if err != nil || res.Replayed || res.Rows != 50_000 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

// gatedReader passes the first `after` bytes, signals reached, then blocks until released.
type gatedReader struct {
	r       io.Reader
	left    int
	reached chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func newGatedReader(r io.Reader, after int) *gatedReader {
	return &gatedReader{r: r, left: after, reached: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedReader) release() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		select {
		case <-g.reached:
		default:
			close(g.reached)
		}
		<-g.gate
		return g.r.Read(p)
	}
	n, err := g.r.Read(p[:min(len(p), g.left)])
	g.left -= n
	return n, err
}

// TestReadsDuringALoadSeeNoneOrAll runs API-style aggregate reads in a loop while a batch
// loads: each must see either none of the batch or all of it.
func TestReadsDuringALoadSeeNoneOrAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	// Rows already in place stay visible throughout.
	if _, err := l.Load(ctx, apiSource("base"), newGenBatch(1000, nil)); err != nil {
		t.Fatal(err)
	}
	const n = 60_000
	before := routeCount(t, pool)

	g := newGatedReader(newGenBatch(n, nil), 500_000)
	done := make(chan error, 1)
	go func() {
		_, err := l.Load(ctx, apiSource("big"), g)
		done <- err
	}()

	var seen []int64
	var mu sync.Mutex
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
				c := routeCount(t, pool)
				mu.Lock()
				seen = append(seen, c)
				mu.Unlock()
			}
		})
	}
	<-g.reached
	// Mid-COPY: the batch is half sent and must not show.
	if c := routeCount(t, pool); c != before {
		t.Errorf("mid-load read saw %d rows, want %d", c, before)
	}
	g.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := routeCount(t, pool)
	close(stop)
	wg.Wait()

	expected := before + n/testPorts // the generator spreads rows evenly over origins
	if after != expected {
		t.Fatalf("after the load: %d rows, want %d", after, expected)
	}
	counts := map[int64]int{}
	for _, c := range seen {
		counts[c]++
	}
	for c := range counts {
		if c != before && c != after {
			t.Errorf("a read saw %d rows: neither before (%d) nor after (%d) the batch", c, before, after)
		}
	}
	if counts[before] == 0 || len(seen) < 10 {
		t.Errorf("reads: %v; want many, some of them during the load", counts)
	}
}

// TestReadsDuringAMultiPartLoadSeeNoneOrAll runs the API's reads (price_daily) and the readers'
// view of prices (published_prices) in a loop while a manifest's parts are staged by two loaders
// and the batch published: each read sees none of the batch or all of it, never some parts.
func TestReadsDuringAMultiPartLoadSeeNoneOrAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	if _, err := l.Load(ctx, apiSource("base"), newGenBatch(1000, nil)); err != nil {
		t.Fatal(err)
	}
	const n, parts = 80_000, 4
	lines := bytes.SplitAfter(batchBytes(n, nil), []byte("\n"))
	files := map[string][]byte{}
	var man Manifest
	for i := range parts {
		body := append([]byte(csvbatch.Header+"\n"), bytes.Join(lines[1+i*n/parts:1+(i+1)*n/parts], nil)...)
		key := fmt.Sprintf("part-%d.csv", i+1)
		files[key] = body
		man.Parts = append(man.Parts, ManifestPart{Key: key, SHA256: sha(body)})
	}
	data, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	read := func() [2]int64 {
		var r [2]int64
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM published_prices WHERE orig_code = $1),
			(SELECT coalesce(sum(prices), 0)::bigint FROM price_daily WHERE orig_code = $1)`, portCode(7)).Scan(&r[0], &r[1]); err != nil {
			t.Error(err)
		}
		return r
	}
	before := read()
	seen := map[[2]int64]int{}
	var mu sync.Mutex
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
				r := read()
				mu.Lock()
				seen[r]++
				mu.Unlock()
			}
		})
	}
	st, err := l.StageManifest(ctx, fileSource("many.json"), data, Parts{Open: func(_ context.Context, key string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files[key])), nil
	}}, 2)
	close(stop)
	wg.Wait()
	if err != nil || st.Status != StatusLoaded || st.Rows != n {
		t.Fatalf("staged manifest: %+v, %v", st, err)
	}
	after := read()
	if want := before[0] + n/testPorts; after[0] != want || after[1] != want {
		t.Fatalf("after the publish: %v, want %d published prices of the origin", after, want)
	}
	for r, c := range seen {
		if r != before && r != after {
			t.Errorf("%d reads saw %v: neither before (%v) nor after (%v) the batch", c, r, before, after)
		}
	}
	if seen[before] == 0 || len(seen) == 0 {
		t.Errorf("reads: %v; want many, some of them while the parts were staged", seen)
	}
}

// routeCount is an API-style read: the prices of one origin over a date range.
func routeCount(t *testing.T, pool *pgxpool.Pool) int64 {
	var n int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM prices WHERE orig_code = $1 AND day BETWEEN $2 AND $3`,
		portCode(7), "2024-01-01", "2024-12-31").Scan(&n); err != nil {
		t.Error(err)
	}
	return n
}

func TestLoadRejectsInvalidSource(t *testing.T) {
	t.Parallel()
	l := NewLoader(nil, LoaderOptions{}, testLogger(t))
	for _, src := range []Source{{Channel: "ftp", Key: "k"}, {Channel: ChannelAPI}, {Channel: ChannelAPI, Key: strings.Repeat("k", maxKeyLength+1)}} {
		if _, err := l.Load(context.Background(), src, strings.NewReader("")); err == nil {
			t.Errorf("Load(%+v) succeeded", src)
		}
	}
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(Report{BadRows: 2, Errors: []csvbatch.RowError{{Line: 3, Column: "day", Reason: "r"}, {Line: 4, Reason: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bad_rows":2,"errors":[{"line":3,"column":"day","reason":"r"},{"line":4,"reason":"x"}]}`
	if string(b) != want {
		t.Errorf("report JSON = %s, want %s", b, want)
	}
}

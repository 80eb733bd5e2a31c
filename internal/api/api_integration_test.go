package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/api"
	"rates/internal/metrics"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

var testConfig = api.Config{MaxRangeDays: 3660, QueryTimeout: 2 * time.Second, MaxQueryBytes: 4096}

func newHandler(t *testing.T, pool *pgxpool.Pool, ready bool) http.Handler {
	t.Helper()
	readiness := &api.Readiness{}
	readiness.SetReady(ready)
	return api.New(store.New(pool), testConfig, readiness, dbtest.Discard)
}

func do(t *testing.T, h http.Handler, method, target string) (int, http.Header, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Result().Header, string(body)
}

func TestEndpoints(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	h := newHandler(t, pool, true)
	const jan = "date_from=2021-01-01&date_to=2021-01-05"
	tests := []struct {
		name, method, target string
		status               int
		body                 string // exact, without the trailing newline
	}{
		{"hello", "GET", "/", 200, `{"message":"Hello world!"}`},
		{"port to port", "GET", "/rates?" + jan + "&orig_code=CNAAA&dest_code=DEAAA", 200, `{"rates":[` +
			`{"count":1,"day":"2021-01-05","price":null},` +
			`{"count":4,"day":"2021-01-04","price":1155.0},` +
			`{"count":null,"day":"2021-01-03","price":null},` +
			`{"count":2,"day":"2021-01-02","price":null},` +
			`{"count":3,"day":"2021-01-01","price":1154.3333333333333}]}`},
		{"port codes are case-insensitive", "GET", "/rates?date_from=2021-01-04&date_to=2021-01-04&orig_code=cnaaa&dest_code=DeAaA", 200,
			`{"rates":[{"count":4,"day":"2021-01-04","price":1155.0}]}`},
		{"region to region includes sub-regions", "GET", "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=china&dest_code=north_europe", 200,
			`{"rates":[{"count":5,"day":"2021-01-01","price":1492.6}]}`},
		{"root to root", "GET", "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=world&dest_code=world", 200,
			`{"rates":[{"count":6,"day":"2021-01-01","price":1743.8333333333333}]}`},
		{"port to region", "GET", "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=CNBBB&dest_code=europe", 200,
			`{"rates":[{"count":3,"day":"2021-01-01","price":2333.3333333333335}]}`},
		{"region without ports", "GET", "/rates?date_from=2021-01-01&date_to=2021-01-02&orig_code=empty_region&dest_code=DEAAA", 200,
			`{"rates":[{"count":null,"day":"2021-01-02","price":null},{"count":null,"day":"2021-01-01","price":null}]}`},
		{"days outside the data", "GET", "/rates?date_from=1999-12-31&date_to=2000-1-1&orig_code=CNAAA&dest_code=DEAAA", 200,
			`{"rates":[{"count":null,"day":"2000-01-01","price":null},{"count":null,"day":"1999-12-31","price":null}]}`},
		{"unknown origin", "GET", "/rates?" + jan + "&orig_code=XXXXX&dest_code=DEAAA", 400,
			`{"error":"unknown orig_code \"XXXXX\": not a port code or region slug"}`},
		{"unknown destination", "GET", "/rates?" + jan + "&orig_code=CNAAA&dest_code=nowhere", 400,
			`{"error":"unknown dest_code \"nowhere\": not a port code or region slug"}`},
		{"slugs are exact", "GET", "/rates?" + jan + "&orig_code=CHINA&dest_code=DEAAA", 400,
			`{"error":"unknown orig_code \"CHINA\": not a port code or region slug"}`},
		{"bad date", "GET", "/rates?date_from=2021-02-30&date_to=2021-03-01&orig_code=CNAAA&dest_code=DEAAA", 400,
			`{"error":"invalid date_from \"2021-02-30\": expected a calendar date as YYYY-MM-DD"}`},
		{"from after to", "GET", "/rates?date_from=2021-01-02&date_to=2021-01-01&orig_code=CNAAA&dest_code=DEAAA", 400,
			`{"error":"date_from (2021-01-02) is after date_to (2021-01-01)"}`},
		{"range too long", "GET", "/rates?date_from=2000-01-01&date_to=2021-01-01&orig_code=CNAAA&dest_code=DEAAA", 400,
			`{"error":"date range of 7672 days is longer than the maximum of 3660 days"}`},
		{"missing code", "GET", "/rates?" + jan + "&orig_code=CNAAA", 400,
			`{"error":"missing required parameter dest_code (a port code or region slug)"}`},
		{"query string too long", "GET", "/rates?x=" + strings.Repeat("a", 5000), 414,
			`{"error":"query string longer than 4096 bytes"}`},
		{"unknown path", "GET", "/prices", 404, `{"error":"not found"}`},
		{"wrong method", "POST", "/rates", 405, `{"error":"method not allowed"}`},
		{"liveness", "GET", "/healthz", 200, `{"status":"ok"}`},
		{"readiness", "GET", "/readyz", 200, `{"status":"ready"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := do(t, h, tt.method, tt.target)
			if status != tt.status || body != tt.body+"\n" {
				t.Fatalf("%s %s = %d %s\nwant %d %s", tt.method, tt.target, status, body, tt.status, tt.body)
			}
			if ct := header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q, want application/json", ct)
			}
		})
	}
}

func TestHeadAndRequestID(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	h := newHandler(t, pool, true)
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := http.Head(ts.URL + "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=CNAAA&dest_code=DEAAA")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HEAD /rates = %d %q, want 200 application/json like GET", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("X-Request-Id = %q, want the caller's abc-123", got)
	}
	req = httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Amzn-Trace-Id", "Root=1-67891233-abcdef012345678912345678")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got != "Root=1-67891233-abcdef012345678912345678" {
		t.Fatalf("X-Request-Id = %q, want the ALB trace id", got)
	}
}

func TestNotReady(t *testing.T) {
	pool, _ := dbtest.Migrated(t, srv)
	h := newHandler(t, pool, false)
	status, _, body := do(t, h, "GET", "/readyz")
	if status != 503 || !strings.Contains(body, `"reason"`) {
		t.Fatalf("readyz while not ready = %d %s, want 503 with a reason", status, body)
	}
	if status, _, _ := do(t, h, "GET", "/healthz"); status != 200 {
		t.Fatalf("healthz while not ready = %d, want 200 (liveness needs no database)", status)
	}
}

func TestDatabaseDown(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	h := newHandler(t, pool, true)
	status, _, body := do(t, h, "GET", "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=CNAAA&dest_code=DEAAA")
	if status != 503 || body != `{"error":"database unavailable, try again shortly"}`+"\n" {
		t.Fatalf("rates with the database down = %d %s, want 503 JSON", status, body)
	}
	if status, _, body := do(t, h, "GET", "/readyz"); status != 503 || !strings.Contains(body, "database unreachable") {
		t.Fatalf("readyz with the database down = %d %s, want 503", status, body)
	}
}

// Answers are cached, but never served after the data they came from changed.
func TestCacheIsNeverStale(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	m := metrics.New("test")
	cfg := testConfig
	cfg.CacheBytes, cfg.Metrics, cfg.ServeMetrics = 1<<20, m, true
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	const target = "/rates?date_from=2021-01-03&date_to=2021-01-03&orig_code=CNAAA&dest_code=DEAAA"
	ctx := context.Background()
	for i, tc := range []struct {
		change string // SQL committed before the request
		want   string
	}{
		{"", `{"rates":[{"count":null,"day":"2021-01-03","price":null}]}`},
		{"", `{"rates":[{"count":null,"day":"2021-01-03","price":null}]}`}, // asked again: admitted to the cache
		{"", `{"rates":[{"count":null,"day":"2021-01-03","price":null}]}`}, // served from the cache
		{"INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 100)", `{"rates":[{"count":1,"day":"2021-01-03","price":null}]}`},
		{"INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 200), ('CNAAA', 'DEAAA', '2021-01-03', 301)",
			`{"rates":[{"count":3,"day":"2021-01-03","price":200.33333333333334}]}`},
		{"UPDATE prices SET price = 400 WHERE price = 100 AND day = '2021-01-03'", `{"rates":[{"count":3,"day":"2021-01-03","price":300.3333333333333}]}`},
		{"DELETE FROM prices WHERE day = '2021-01-03'", `{"rates":[{"count":null,"day":"2021-01-03","price":null}]}`},
		{"UPDATE ports SET parent_slug = 'china' WHERE code = 'DEAAA'", `{"rates":[{"count":null,"day":"2021-01-03","price":null}]}`},
	} {
		if tc.change != "" {
			if _, err := pool.Exec(ctx, tc.change); err != nil {
				t.Fatal(err)
			}
		}
		if status, _, body := do(t, h, "GET", target); status != 200 || body != tc.want+"\n" {
			t.Fatalf("step %d after %q: %d %s, want %s", i, tc.change, status, body, tc.want)
		}
	}
	// A region answer must follow the tree when a port moves.
	const regionTarget = "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=CNAAA&dest_code=north_europe"
	_, _, before := do(t, h, "GET", regionTarget)
	if _, err := pool.Exec(ctx, "UPDATE ports SET parent_slug = 'north_europe' WHERE code = 'DEAAA'"); err != nil {
		t.Fatal(err)
	}
	if _, _, after := do(t, h, "GET", regionTarget); after == before {
		t.Fatalf("region answer unchanged after the region tree changed: %s", after)
	}
	_, _, text := do(t, h, "GET", "/metrics")
	for _, want := range []string{
		`rates_answer_cache_lookups_total{result="hit"} 1`,
		`rates_http_requests_total{method="GET",route="/rates",status="200"}`,
		`rates_http_request_duration_seconds_bucket{method="GET",route="/rates"`,
		`rates_build_info{version="test"} 1`,
		`rates_http_requests_in_flight 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func readyReadiness() *api.Readiness {
	r := &api.Readiness{}
	r.SetReady(true)
	return r
}

// A reset of the generation counter (a restore, a migrate down and up) starts it again at 1;
// even when it climbs back to the very number the cache holds, nothing computed before the
// reset may be served.
func TestCacheAcrossGenerationReset(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	cfg := testConfig
	cfg.CacheBytes = 1 << 20
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	ctx := context.Background()
	const target = "/rates?date_from=2021-01-03&date_to=2021-01-03&orig_code=CNAAA&dest_code=DEAAA"
	const regionTarget = "/rates?date_from=2021-01-03&date_to=2021-01-04&orig_code=china&dest_code=north_europe"
	const before = `{"rates":[{"count":null,"day":"2021-01-03","price":null}]}` + "\n"
	for range 2 { // the second answer comes from the cache
		if _, _, body := do(t, h, "GET", target); body != before {
			t.Fatalf("before the reset: %s", body)
		}
		do(t, h, "GET", regionTarget)
	}
	_, _, regionBefore := do(t, h, "GET", regionTarget)
	var held, heldTree int64
	if err := pool.QueryRow(ctx, "SELECT generation, tree_generation FROM data_generation").Scan(&held, &heldTree); err != nil {
		t.Fatal(err)
	}
	// The counter is created again, the data and the tree change, and the counters reach the
	// numbers the cache holds, all between two requests.
	for _, q := range []string{
		"DELETE FROM data_generation",
		"INSERT INTO data_generation (generation) VALUES (1)",
		"INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 100), ('CNAAA', 'DEAAA', '2021-01-03', 200), ('CNAAA', 'DEAAA', '2021-01-03', 300)",
		"UPDATE ports SET parent_slug = 'china' WHERE code = 'DEAAA'",
		fmt.Sprintf("UPDATE data_generation SET generation = %d, tree_generation = %d", held, heldTree),
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, _, body := do(t, h, "GET", target); body != `{"rates":[{"count":3,"day":"2021-01-03","price":200.0}]}`+"\n" {
		t.Fatalf("after the reset: %s, want the three new prices", body)
	}
	if _, _, body := do(t, h, "GET", regionTarget); body == regionBefore {
		t.Fatalf("region answer from before the reset (and the move of DEAAA): %s", body)
	}
}

// Every answer reflects every batch committed before the request arrived, while batches
// commit concurrently: the count of the route's day never falls below the number of batches
// whose commit returned before the request was sent. Requests overlap, so they share
// generation reads, hit the answer cache and build answers from cached days.
// Watched (Start with a listener), requests read no generation of their own: the promise is
// then the documented bound, every batch committed at least twice the poll interval before
// the request, and the floor counts those batches only.
func TestAnswersReflectCommittedBatches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		watched bool
		bound   time.Duration // how long before the request a batch must have committed
	}{
		{"a generation read per request", false, 0},
		{"watched", true, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, url := dbtest.Seeded(t, srv, "testdata/fixture.sql")
			var h http.Handler
			if tc.watched {
				h = startWatched(t, pool, connConfig(t, url), tc.bound/2)
			} else {
				cfg := testConfig
				cfg.CacheBytes = 1 << 20
				h = api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
			}
			reflectsCommittedBatches(t, pool, h, tc.bound)
		})
	}
}

func reflectsCommittedBatches(t *testing.T, pool *pgxpool.Pool, h http.Handler, bound time.Duration) {
	ctx := context.Background()
	targets := []struct {
		path string
		base int64 // count of the day before any batch
	}{
		{"/rates?date_from=2021-01-03&date_to=2021-01-03&orig_code=CNAAA&dest_code=DEAAA", 0},
		{"/rates?date_from=2021-01-01&date_to=2021-01-05&orig_code=CNAAA&dest_code=DEAAA", 0},
		{"/rates?date_from=2021-01-02&date_to=2021-01-03&orig_code=china&dest_code=DEAAA", 0},
		{"/rates?date_from=2020-12-25&date_to=2021-01-03&orig_code=china&dest_code=europe", 0},
	}
	for i := range targets { // the count of 2021-01-03 before the batches
		targets[i].base = dayCount(t, h, targets[i].path, "2021-01-03")
	}
	const batches = 60
	var (
		mu      sync.Mutex
		commits []time.Time // when each batch's commit returned
	)
	// committedBy counts the batches whose commit returned at least bound before at.
	committedBy := func(at time.Time) int64 {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for n < len(commits) && !commits[n].After(at.Add(-bound)) {
			n++
		}
		return int64(n)
	}
	writerErr, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		for i := range batches {
			// A batch of three statements in one transaction, as a load of several parts.
			tx, err := pool.Begin(ctx)
			if err != nil {
				writerErr <- err
				return
			}
			for _, q := range []string{
				"INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 100)",
				"INSERT INTO prices VALUES ('CNBBB', 'DEAAA', '2021-01-03', 100)",
				"INSERT INTO prices SELECT 'CNAAA', 'DEAAA', '2021-01-04', 1 WHERE false",
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					writerErr <- err
					return
				}
			}
			if err := tx.Commit(ctx); err != nil {
				writerErr <- err
				return
			}
			mu.Lock()
			commits = append(commits, time.Now())
			mu.Unlock()
			time.Sleep(bound/20 + time.Duration(i%4)*time.Millisecond)
		}
	}()
	perBatch := []int64{1, 1, 2, 2}
	var wg sync.WaitGroup
	var checked atomic.Int64
	errs := make(chan string, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := i % len(targets)
				floor := committedBy(time.Now())
				got := dayCount(t, h, targets[k].path, "2021-01-03")
				if want := targets[k].base + floor*perBatch[k]; got < want {
					select {
					case errs <- fmt.Sprintf("%s: count %d after %d batches committed %s before, want at least %d", targets[k].path, got, floor, bound, want):
					default:
					}
					return
				}
				checked.Add(1)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-writerErr:
		t.Fatal(err)
	default:
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if checked.Load() < batches {
		t.Fatalf("only %d answers checked during %d batches", checked.Load(), batches)
	}
	time.Sleep(bound)
	for k, tg := range targets { // and once everything has committed, the exact count
		if got, want := dayCount(t, h, tg.path, "2021-01-03"), tg.base+batches*perBatch[k]; got != want {
			t.Fatalf("%s after all batches: count %d, want %d", tg.path, got, want)
		}
	}
}

// commitBeforeRead commits a change (once) just before its next DailyStats: a batch that lands
// after a request's generation read and before its read of the days, as under traffic.
type commitBeforeRead struct {
	*store.Store
	before func()
}

func (s *commitBeforeRead) DailyStats(ctx context.Context, orig, dest []string, from, to time.Time) ([]store.DayStat, store.Generation, error) {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
	return s.Store.DailyStats(ctx, orig, dest, from, to)
}

// An answer is one view of the data: it shows all of a batch or none of it. Here the batch
// commits between the request's generation read and its read of the months the cache lacks;
// joined with the months cached before it, those would show the batch on 1 March and not on
// 1 February.
func TestAnswerNeverShowsPartOfABatch(t *testing.T) {
	const (
		warm   = "/rates?date_from=2021-01-10&date_to=2021-01-10&orig_code=CNAAA&dest_code=DEAAA" // caches December to February
		target = "/rates?date_from=2021-02-01&date_to=2021-03-01&orig_code=CNAAA&dest_code=DEAAA"
		batch  = `INSERT INTO prices VALUES ('CNAAA','DEAAA','2021-02-01',10), ('CNAAA','DEAAA','2021-02-01',20),
			('CNAAA','DEAAA','2021-02-01',30), ('CNAAA','DEAAA','2021-03-01',10), ('CNAAA','DEAAA','2021-03-01',20),
			('CNAAA','DEAAA','2021-03-01',30)`
	)
	for _, tc := range []struct {
		name       string
		cacheBytes int
		watched    bool
	}{
		{"no cache", 0, false},
		{"cache", 1 << 20, false},
		{"cache, watched", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, url := dbtest.Seeded(t, srv, "testdata/fixture.sql")
			st := &commitBeforeRead{Store: store.New(pool)}
			cfg := testConfig
			cfg.CacheBytes = tc.cacheBytes
			if tc.watched {
				// The poll is far off: the request that reads the batch moves the caches.
				cfg.PollInterval = time.Minute
				cfg.Listen = func(ctx context.Context) (api.Listener, error) { return store.Listen(ctx, connConfig(t, url)) }
			}
			h := api.New(st, cfg, readyReadiness(), dbtest.Discard)
			if tc.watched {
				stop, err := h.Start(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			}
			if status, _, body := do(t, h, "GET", warm); status != 200 {
				t.Fatalf("warm-up: %d %s", status, body)
			}
			st.before = func() {
				if _, err := pool.Exec(context.Background(), batch); err != nil {
					t.Error(err)
				}
			}
			counts, _ := dayCounts(t, h, target)
			if feb, mar := counts["2021-02-01"], counts["2021-03-01"]; feb != mar {
				t.Fatalf("the answer shows part of one batch: 2021-02-01 count %d, 2021-03-01 count %d", feb, mar)
			}
			// The next request arrives after the commit: all of the batch.
			counts, _ = dayCounts(t, h, target)
			if feb, mar := counts["2021-02-01"], counts["2021-03-01"]; feb != 3 || mar != 3 {
				t.Fatalf("after the batch: counts %d and %d, want 3 and 3", feb, mar)
			}
		})
	}
}

// dayCount returns the count of day in the answer to path (0 for null).
func dayCount(t *testing.T, h http.Handler, path, day string) int64 {
	counts, ok := dayCounts(t, h, path)
	if !ok {
		return -1
	}
	return counts[day]
}

// dayCounts returns the counts of the days of one answer to path (null days left out).
func dayCounts(t *testing.T, h http.Handler, path string) (map[string]int64, bool) {
	req := httptest.NewRequest("GET", path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got struct {
		Rates []struct {
			Count *int64
			Day   string
		}
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		return nil, false
	}
	counts := map[string]int64{}
	for _, r := range got.Rates {
		if r.Count != nil {
			counts[r.Day] = *r.Count
		}
	}
	return counts, true
}

package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"rates/internal/api"
	"rates/internal/metrics"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/ratesmix"
)

// lookups reads rates_answer_cache_lookups_total by result.
func lookups(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, `rates_answer_cache_lookups_total{result="`); ok {
			result, value, _ := strings.Cut(rest, `"} `)
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatal(err)
			}
			out[result] = v
		}
	}
	return out
}

// A started instance holds every day of the data before its first request: the realistic mix
// (ports and regions, ranges in and around the data) is answered without reading a day from
// PostgreSQL, byte for byte as without the cache. A batch then makes it read again.
func TestPreloadAnswersFromMemory(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	data, err := ratesmix.Load(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	plain := newHandler(t, pool, true) // no cache: every answer read from the database
	for _, tc := range []struct {
		name       string
		cacheBytes int
		preloaded  bool
	}{
		{"preloaded", 64 << 20, true},
		{"too large for the cache: dropped", 256 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New("test")
			cfg := testConfig
			cfg.CacheBytes, cfg.Preload, cfg.Metrics = tc.cacheBytes, 5*time.Second, m
			h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
			stop, err := h.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			paths := data.Draw(1500, 5)
			for _, p := range paths {
				_, _, want := do(t, plain, "GET", p)
				if _, _, got := do(t, h, "GET", p); got != want {
					t.Fatalf("%s:\n preloaded %s\n plain     %s", p, got, want)
				}
			}
			misses := lookups(t, m)["miss"]
			if tc.preloaded && misses != 0 {
				t.Fatalf("%v answers read days from PostgreSQL after the preload, want none", misses)
			}
			if !tc.preloaded && misses == 0 {
				t.Fatal("no answer read PostgreSQL: the preload that cannot fit was kept")
			}
			// A batch on a route of the mix: the caches start over, and the answers follow.
			rt := data.Routes[0]
			if _, err := pool.Exec(ctx, "INSERT INTO prices VALUES ($1, $2, $3, 123)", rt[0], rt[1], data.First); err != nil {
				t.Fatal(err)
			}
			p := ratesmix.Path(rt[0], rt[1], data.First, 3)
			_, _, want := do(t, plain, "GET", p)
			if _, _, got := do(t, h, "GET", p); got != want {
				t.Fatalf("after a batch, %s:\n cached %s\n plain  %s", p, got, want)
			}
			if _, err := pool.Exec(ctx, "DELETE FROM prices WHERE price = 123 AND day = $1", data.First); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The caches hold no more memory than CACHE_MAX_BYTES whatever clients ask: distinct ranges
// over every pair of the mix, and codes that name nothing (each a cached 400), far more than
// the budget, leave the heap within it.
func TestCacheMemoryBound(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	data, err := ratesmix.Load(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	const budget = 1 << 20
	paths := data.Draw(12000, 9)
	for i := range 6000 {
		code := strings.Repeat(strconv.Itoa(i), 100)[:100]
		paths = append(paths, "/rates?date_from=2026-01-01&date_to=2026-03-01&orig_code="+code+"&dest_code=CNSHA")
	}
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc) //nolint:gosec // G115: a heap size
	}
	flood := func(h http.Handler) (sent int) {
		for _, p := range paths {
			status, _, body := do(t, h, "GET", p)
			sent += len(body)
			if status != 200 && status != 400 {
				t.Fatalf("%s: %d %s", p, status, body)
			}
		}
		return sent
	}
	// First without the cache: what the pool's connections and a port tree take.
	uncached := newHandler(t, pool, true)
	flood(uncached)
	before := heap()
	cfg := testConfig
	cfg.CacheBytes = budget
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	sent := flood(h)
	// What the cached handler holds beyond the uncached one: its caches and its port tree.
	held := heap() - before
	runtime.KeepAlive(h)
	runtime.KeepAlive(uncached)
	runtime.KeepAlive(paths)
	t.Logf("answers of %d MB in all; the handler holds %.2f MB for a cache budget of %.0f MB", sent>>20, float64(held)/(1<<20), float64(budget)/(1<<20))
	if sent < 4*budget {
		t.Fatalf("the answers sent (%d bytes) do not exceed the budget by far: the test proves nothing", sent)
	}
	if held > budget*5/4 {
		t.Fatalf("the handler holds %d bytes, more than the cache budget of %d (and a quarter)", held, budget)
	}
}

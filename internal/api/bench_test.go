package api_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"rates/internal/api"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/ratesmix"
)

// BenchmarkRatesHandler measures GET /rates through the handler with its answer cache, on the
// default dump, with 32 concurrent callers per core: the same 20 routes over the
// same 31 days (what the cache holds), and the realistic mix of cmd/ratesbench (routes from the
// data, ports and regions, random ranges of 1-60 days: mostly answers the cache has not seen).
func BenchmarkRatesHandler(b *testing.B) {
	pool, _ := dbtest.Seeded(b, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	data, err := ratesmix.Load(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig
	cfg.CacheBytes = 64 << 20
	var repeated []string
	for i := range 20 {
		rt := data.Routes[i*len(data.Routes)/20]
		repeated = append(repeated, ratesmix.Path(rt[0], rt[1], data.First, 31))
	}
	for _, bc := range []struct {
		name  string
		paths []string
	}{
		{"repeated31Days", repeated},
		{"realistic", data.Draw(200_000, 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(32) // 64 callers on 2 cores, like wrk's 64 connections
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					path := bc.paths[int(next.Add(1))%len(bc.paths)]
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
					if rec.Code != 200 {
						b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
					}
				}
			})
		})
	}
}

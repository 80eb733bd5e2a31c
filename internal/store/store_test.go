package store_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// The rates query must be answered through the key of price_daily, never a sequential scan.
func TestDailyStatsUsesIndex(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 30)
	for _, ports := range [][2][]string{
		{{"CNSHA"}, {"NLRTM"}},
		{{"CNSHA", "CNYTN", "CNNGB"}, {"NLRTM", "DEHAM", "BEANR", "USLAX"}},
	} {
		rows, err := pool.Query(ctx, "EXPLAIN "+store.DailyStatsSQL, ports[0], ports[1], from, to)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
		text := strings.Join(lines, "\n")
		if !strings.Contains(text, "price_daily_pkey") || strings.Contains(text, "Seq Scan") {
			t.Fatalf("plan for %v does not go through price_daily_pkey:\n%s", ports, text)
		}
	}
}

func TestResolveAndStats(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	st := store.New(pool)
	ctx := context.Background()
	orig, dest, err := st.ResolvePair(ctx, "cnsha", "no_such_region")
	if err != nil {
		t.Fatal(err)
	}
	if !orig.Found || len(orig.Ports) != 1 || orig.Ports[0] != "CNSHA" {
		t.Fatalf("orig = %+v, want the single port CNSHA", orig)
	}
	if dest.Found || len(dest.Ports) != 0 {
		t.Fatalf("dest = %+v, want not found", dest)
	}
	stats, err := st.DailyStats(ctx, nil, []string{"NLRTM"}, time.Now(), time.Now())
	if err != nil || stats != nil {
		t.Fatalf("no origin ports: %v %v, want no stats and no query", stats, err)
	}
}

// price_daily must equal the aggregate of prices after every kind of write.
func TestPriceDailyFollowsPrices(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	const diff = `SELECT count(*) FROM (
		(SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM prices GROUP BY 1, 2, 3
		 EXCEPT SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily)
		UNION ALL
		(SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily
		 EXCEPT SELECT orig_code, dest_code, day, count(*)::bigint, sum(price)::bigint FROM prices GROUP BY 1, 2, 3)) d`
	for _, step := range []string{
		"",
		"INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2030-01-01', 10), ('CNSHA', 'NLRTM', '2030-01-01', 20), ('CNSHA', 'DEHAM', '2030-01-02', 5)",
		"UPDATE prices SET day = '2030-01-03' WHERE day = '2030-01-01' AND price = 10",
		"UPDATE prices SET price = price + 1 WHERE orig_code = 'CNSHA' AND day BETWEEN '2026-01-01' AND '2026-01-05'",
		"DELETE FROM prices WHERE day = '2030-01-02'",
		"DELETE FROM prices WHERE orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND day = '2026-01-07'",
		"TRUNCATE prices",
		"INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2030-01-01', 7)",
	} {
		if step != "" {
			if _, err := pool.Exec(ctx, step); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		var n int
		if err := pool.QueryRow(ctx, diff).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("after %q: price_daily differs from prices in %d rows", step, n)
		}
	}
	var zero int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM price_daily WHERE prices = 0").Scan(&zero); err != nil || zero != 0 {
		t.Fatalf("%d empty days kept in price_daily (%v)", zero, err)
	}
}

// The two queries of an uncached /rates answer, on the default dump's busiest route.
func BenchmarkQueries(b *testing.B) {
	pool, _ := dbtest.Seeded(b, srv, "../../db/seed/rates.sql")
	st := store.New(pool)
	ctx := context.Background()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 30)
	b.Run("ResolvePair", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := st.ResolvePair(ctx, "CNSHA", "north_continent"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DailyStats31Days", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.DailyStats(ctx, []string{"CNSHA"}, []string{"NLRTM"}, from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Generation", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.Generation(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

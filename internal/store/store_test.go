package store_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
		// data_generation is one row, read whole; price_daily must be read by its key.
		if !strings.Contains(text, "price_daily_pkey") || strings.Contains(text, "Seq Scan on price_daily") {
			t.Fatalf("plan for %v does not go through price_daily_pkey:\n%s", ports, text)
		}
	}
}

// The tree in memory must resolve every code as the SQL does, cycles included.
func TestTreeResolvesLikeSQL(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	st := store.New(pool)
	ctx := context.Background()
	// A port and a region that share a spelling (the port wins), and a cycle below a region.
	for _, q := range []string{
		"INSERT INTO regions VALUES ('loop_a', 'Loop A', 'china'), ('loop_b', 'Loop B', 'loop_a')",
		"UPDATE regions SET parent_slug = 'loop_b' WHERE slug = 'loop_a'",
		"INSERT INTO ports VALUES ('LOOPX', 'Loop port', 'loop_b'), ('CHINA', 'Port named like a region', 'loop_a')",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tree, err := st.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{"", "x", "CNSHA", "cnsha", "CnShA", "china", "CHINA", "loop_a", "loop_b", "world", "no_such_region", "cnsha ", "LOOPX"}
	rows, err := pool.Query(ctx, "SELECT code FROM ports UNION ALL SELECT lower(code) FROM ports UNION ALL SELECT slug FROM regions UNION ALL SELECT upper(slug) FROM regions")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for _, code := range codes {
		got, ok := tree.Resolve(code)
		if !ok {
			t.Fatalf("Resolve(%q) asks for the database on an ASCII code", code)
		}
		want, err := st.Resolve(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want.Ports)
		if got.Found != want.Found || got.Key != want.Key || !slices.Equal(got.Ports, want.Ports) {
			t.Fatalf("Resolve(%q) = %+v in memory, %+v in SQL", code, got, want)
		}
	}
	// Upper case beyond ASCII is the database's: the tree declines.
	if _, ok := tree.Resolve("cnſha"); ok {
		t.Fatal("Resolve of a non-ASCII code answered from memory")
	}
	if _, _, err := st.DailyStats(ctx, nil, []string{"NLRTM"}, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// DailyStats reads the generation from the snapshot of its days: the days of a read are those
// of the generation it returns, with ports or without.
func TestDailyStatsCarriesItsGeneration(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	st := store.New(pool)
	day := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		want, err := st.Generation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stats, got, err := st.DailyStats(ctx, []string{"CNSHA"}, []string{"NLRTM"}, day, day)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || len(stats) != min(i, 1) || i > 0 && stats[0].Count != int64(i) {
			t.Fatalf("round %d: DailyStats = %+v at %+v, want %d prices at %+v", i, stats, got, i, want)
		}
		if _, empty, err := st.DailyStats(ctx, nil, []string{"NLRTM"}, day, day); err != nil || empty != want {
			t.Fatalf("round %d: DailyStats without ports at %+v (%v), want %+v", i, empty, err, want)
		}
		if _, err := pool.Exec(ctx, "INSERT INTO prices (orig_code, dest_code, day, price) VALUES ('CNSHA', 'NLRTM', $1, 100)", day); err != nil {
			t.Fatal(err)
		}
	}
}

// The generation moves with every change; the tree generation only with ports and regions;
// the epoch when the counter is created again.
func TestGeneration(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	st := store.New(pool)
	ctx := context.Background()
	g0, err := st.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		sql              string
		data, tree, same bool // data and tree generation advance; epoch unchanged
	}{
		{"INSERT INTO prices VALUES ('CNSHA', 'NLRTM', '2030-01-01', 10)", true, false, true},
		{"UPDATE ports SET name = 'x' WHERE code = 'CNSHA'", true, true, true},
		{"UPDATE regions SET name = 'x' WHERE slug = 'china'", true, true, true},
		{"DELETE FROM data_generation; INSERT INTO data_generation (generation) VALUES (1)", false, false, false},
	}
	for _, step := range steps {
		if _, err := pool.Exec(ctx, step.sql); err != nil {
			t.Fatal(err)
		}
		g, err := st.Generation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if (g.Data > g0.Data) != step.data || (g.Tree > g0.Tree) != step.tree || (g.Epoch == g0.Epoch) != step.same {
			t.Fatalf("after %q: %+v, before %+v", step.sql, g, g0)
		}
		g0 = g
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

// A batch reaches price_daily_add in key order (the loader sorts it), so the trigger's
// aggregate must be a GroupAggregate over a sort that finds its input sorted, not a
// HashAggregate and a second sort (the settings of price_daily_add). auto_explain sends the plans of the
// statements inside the trigger to this connection.
func TestPriceDailyAddAggregatesInKeyOrder(t *testing.T) {
	_, url := dbtest.Seeded(t, srv, "../../db/seed/rates.sql")
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"LOAD 'auto_explain'",
		"SET auto_explain.log_min_duration = 0",
		"SET auto_explain.log_nested_statements = on",
		"SET auto_explain.log_level = notice",
		`INSERT INTO prices (orig_code, dest_code, day, price)
			SELECT 'CNSHA', 'NLRTM', DATE '2031-01-01' + i / 3, 100 + i FROM generate_series(0, 2999) i`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mu.Lock()
	seen := slices.Clone(plans)
	mu.Unlock()
	i := slices.IndexFunc(seen, func(p string) bool { return strings.Contains(p, "INSERT INTO price_daily") })
	if i < 0 {
		t.Fatalf("no plan of price_daily_add's INSERT among the %d plans seen", len(seen))
	}
	if !strings.Contains(seen[i], "GroupAggregate") || strings.Contains(seen[i], "HashAggregate") {
		t.Fatalf("price_daily_add does not aggregate in key order:\n%s", seen[i])
	}
	var days int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM price_daily
		WHERE orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND day >= '2031-01-01' AND prices = 3`).Scan(&days); err != nil || days != 1000 {
		t.Fatalf("price_daily holds %d days of 3 prices (%v), want 1000", days, err)
	}
}

// The queries behind /rates answers, on the default dump's busiest route.
func BenchmarkQueries(b *testing.B) {
	pool, _ := dbtest.Seeded(b, srv, "../../db/seed/rates.sql")
	st := store.New(pool)
	ctx := context.Background()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 30)
	b.Run("Tree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.Tree(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DailyStats31Days", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := st.DailyStats(ctx, []string{"CNSHA"}, []string{"NLRTM"}, from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	tree, err := st.Tree(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, pair := range [][2]string{{"china", "north_continent"}, {"asia", "europe"}} {
		orig, _ := tree.Resolve(pair[0])
		dest, _ := tree.Resolve(pair[1])
		b.Run("DailyStats31Days/"+pair[0]+"-"+pair[1], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := st.DailyStats(ctx, orig.Ports, dest.Ports, from, to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Generation", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.Generation(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

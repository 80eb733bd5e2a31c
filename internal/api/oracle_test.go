package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/api"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
	"rates/internal/testing/reference"
)

// oracleSQL answers a query the plain way, independently of the store: every day of the
// range, the matching prices by a join on expanded port lists, count and average per day.
const oracleSQL = `
WITH RECURSIVE
orig_regions(slug) AS (SELECT slug FROM regions WHERE slug = $1
                       UNION SELECT r.slug FROM regions r JOIN orig_regions o ON r.parent_slug = o.slug),
dest_regions(slug) AS (SELECT slug FROM regions WHERE slug = $2
                       UNION SELECT r.slug FROM regions r JOIN dest_regions d ON r.parent_slug = d.slug),
orig_ports(code) AS (SELECT code FROM ports WHERE code = upper($1)
                     UNION SELECT code FROM ports WHERE parent_slug IN (SELECT slug FROM orig_regions)
                       AND NOT EXISTS (SELECT 1 FROM ports WHERE code = upper($1))),
dest_ports(code) AS (SELECT code FROM ports WHERE code = upper($2)
                     UNION SELECT code FROM ports WHERE parent_slug IN (SELECT slug FROM dest_regions)
                       AND NOT EXISTS (SELECT 1 FROM ports WHERE code = upper($2)))
SELECT to_char(d, 'YYYY-MM-DD'), count(p.price), avg(p.price)::float8
FROM generate_series($4::date, $3::date, interval '-1 day') AS d
LEFT JOIN prices p ON p.day = d::date
  AND p.orig_code IN (SELECT code FROM orig_ports) AND p.dest_code IN (SELECT code FROM dest_ports)
GROUP BY d ORDER BY d DESC`

type rateItem struct {
	Count *int64   `json:"count"`
	Day   string   `json:"day"`
	Price *float64 `json:"price"`
}

func oracle(ctx context.Context, pool *pgxpool.Pool, orig, dest string, from, to time.Time) ([]rateItem, error) {
	rows, err := pool.Query(ctx, oracleSQL, orig, dest, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []rateItem
	for rows.Next() {
		var day string
		var count int64
		var avg *float64
		if err := rows.Scan(&day, &count, &avg); err != nil {
			return nil, err
		}
		item := rateItem{Day: day}
		if count > 0 {
			item.Count = &count
		}
		if count >= 3 {
			item.Price = avg
		}
		items = append(items, item)
	}
	return items, rows.Err()
}

var itemKeyOrder = regexp.MustCompile(`^\{"rates":\[(\{"count":[^,]+,"day":"[0-9-]+","price":[^}]+\},?)*\]\}\n$`)

// TestOracle compares the API with the oracle SQL for random routes (ports and regions) and
// random ranges in and around the days of the data: on the generated dump everywhere, and on
// the reference dump too when it is present beside the repository.
func TestOracle(t *testing.T) {
	dumps := map[string]string{"generated": "../../db/seed/rates.sql"}
	if p := reference.Find(); p != "" {
		dumps["reference"] = p
	}
	for name, dump := range dumps {
		t.Run(name, func(t *testing.T) { compareWithOracle(t, dump) })
	}
}

func compareWithOracle(t *testing.T, dump string) {
	pool, _ := dbtest.Seeded(t, srv, dump)
	h := newHandler(t, pool, true) // no cache: every answer is read from the database
	cfg := testConfig
	cfg.CacheBytes = 64 << 20
	cached := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	ctx := context.Background()
	var targets, bodies []string

	var routes [][2]string
	rows, err := pool.Query(ctx, "SELECT DISTINCT orig_code, dest_code FROM prices ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r [2]string
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	if err := rows.Err(); err != nil || len(routes) < 100 {
		t.Fatalf("routes: %d, %v", len(routes), err)
	}
	var slugs []string
	rows, err = pool.Query(ctx, "SELECT slug FROM regions ORDER BY slug")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		slugs = append(slugs, s)
	}

	var first, last time.Time
	if err := pool.QueryRow(ctx, "SELECT min(day), max(day) FROM prices").Scan(&first, &last); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2021, 1))
	base := first.AddDate(0, 0, -14) // ranges start up to two weeks early
	span := int(last.Sub(first).Hours()/24) + 28
	const queries = 400
	nonNullPrices := 0
	for i := range queries {
		route := routes[rng.IntN(len(routes))]
		orig, dest := route[0], route[1]
		switch i % 8 {
		case 5:
			orig = slugs[rng.IntN(len(slugs))]
		case 6:
			dest = slugs[rng.IntN(len(slugs))]
		case 7:
			orig, dest = slugs[rng.IntN(len(slugs))], slugs[rng.IntN(len(slugs))]
		}
		from := base.AddDate(0, 0, rng.IntN(span))
		to := from
		if i%4 != 0 { // a quarter are single days
			to = from.AddDate(0, 0, rng.IntN(40))
		}
		if i%3 == 0 {
			orig = lowerOrSame(rng, orig)
		}
		q := url.Values{
			"date_from": {from.Format("2006-1-2")}, "date_to": {to.Format(time.DateOnly)},
			"orig_code": {orig}, "dest_code": {dest},
		}
		status, _, body := do(t, h, "GET", "/rates?"+q.Encode())
		if _, _, cachedBody := do(t, cached, "GET", "/rates?"+q.Encode()); cachedBody != body {
			t.Fatalf("query %d %v: with the cache\n%s\nwithout\n%s", i, q, cachedBody, body)
		}
		targets, bodies = append(targets, "/rates?"+q.Encode()), append(bodies, body)
		if status != 200 {
			t.Fatalf("query %d %v: status %d %s", i, q, status, body)
		}
		if !itemKeyOrder.MatchString(body) {
			t.Fatalf("query %d: body does not have the keys count, day, price in order: %.200s", i, body)
		}
		var got struct{ Rates []rateItem }
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		want, err := oracle(ctx, pool, orig, dest, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := render(got.Rates), render(want); g != w {
			t.Fatalf("query %d %v:\n api    %s\n oracle %s", i, q, g, w)
		}
		for _, it := range got.Rates {
			if it.Price != nil {
				nonNullPrices++
			}
		}
	}
	// Again, now from the cached answers and days.
	for i, target := range targets {
		if _, _, body := do(t, cached, "GET", target); body != bodies[i] {
			t.Fatalf("query %d %s from the cache:\n%s\nwant\n%s", i, target, body, bodies[i])
		}
	}
	// The comparison means little if every answer were null.
	if nonNullPrices < queries {
		t.Fatalf("only %d non-null prices over %d queries: the random queries miss the data", nonNullPrices, queries)
	}
}

func lowerOrSame(rng *rand.Rand, code string) string {
	if len(code) == 5 && rng.IntN(2) == 0 {
		b := []byte(code)
		for i := range b {
			if b[i] >= 'A' && b[i] <= 'Z' {
				b[i] += 'a' - 'A'
			}
		}
		return string(b)
	}
	return code
}

func render(items []rateItem) string {
	s := ""
	for _, it := range items {
		c, p := "null", "null"
		if it.Count != nil {
			c = fmt.Sprint(*it.Count)
		}
		if it.Price != nil {
			p = fmt.Sprintf("%v", *it.Price)
		}
		s += fmt.Sprintf("[%s %s %s]", it.Day, c, p)
	}
	return s
}

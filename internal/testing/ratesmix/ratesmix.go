// Package ratesmix draws realistic GET /rates traffic from the data of a database: the routes
// that have prices, ports and regions on either side, and random date ranges of 1 to 60 days
// around the days with prices. The same description drives the Go benchmarks of the handler
// and the wrk scripts of cmd/ratesbench, so both measure the same traffic.
package ratesmix

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what Load needs: a pool or a connection.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Data is what traffic is drawn from.
type Data struct {
	Routes      [][2]string // port pairs with prices
	Regions     []string
	First, Last time.Time // first and last day with prices
}

// Load reads the routes, regions and the span of days from the database.
func Load(ctx context.Context, q Querier) (Data, error) {
	var d Data
	if err := q.QueryRow(ctx, "SELECT min(day), max(day) FROM prices").Scan(&d.First, &d.Last); err != nil {
		return d, fmt.Errorf("span of days: %w", err)
	}
	rows, err := q.Query(ctx, "SELECT DISTINCT orig_code, dest_code FROM price_daily ORDER BY 1, 2")
	if err != nil {
		return d, fmt.Errorf("routes: %w", err)
	}
	if d.Routes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var rt [2]string
		return rt, r.Scan(&rt[0], &rt[1])
	}); err != nil {
		return d, fmt.Errorf("routes: %w", err)
	}
	rows, err = q.Query(ctx, "SELECT slug FROM regions ORDER BY slug")
	if err != nil {
		return d, fmt.Errorf("regions: %w", err)
	}
	if d.Regions, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return d, fmt.Errorf("regions: %w", err)
	}
	if len(d.Routes) == 0 || len(d.Regions) == 0 {
		return d, fmt.Errorf("no routes or regions to draw traffic from (%d routes, %d regions)", len(d.Routes), len(d.Regions))
	}
	return d, nil
}

// Range is how date ranges are drawn: the first day uniformly from Earliest to Earliest +
// StartDays - 1, the length uniformly from 1 to MaxDays.
type Range struct {
	Earliest  time.Time
	StartDays int
	MaxDays   int
}

// Ranges around the data: starting up to 30 days before the first day with prices and up to
// its last, 1 to 60 days long, so some days fall outside the data as real queries do.
func (d Data) Ranges() Range {
	return Range{Earliest: d.First.AddDate(0, 0, -30), StartDays: int(d.Last.Sub(d.First).Hours()/24) + 31, MaxDays: 60}
}

// Pairs returns the origin/destination pairs of the realistic mix, repeated in proportion to
// how often they are asked: six in ten are routes with prices, one in ten a port to a region,
// one in ten a region to a port, two in ten a region to a region.
func (d Data) Pairs(seed uint64) [][2]string {
	rng := rand.New(rand.NewPCG(seed, 13))
	n := max(len(d.Routes), 100) * 10 / 6
	pairs := make([][2]string, 0, n)
	for i := range n {
		rt := d.Routes[rng.IntN(len(d.Routes))]
		region := func() string { return d.Regions[rng.IntN(len(d.Regions))] }
		switch i % 10 {
		case 6:
			pairs = append(pairs, [2]string{rt[0], region()})
		case 7:
			pairs = append(pairs, [2]string{region(), rt[1]})
		case 8, 9:
			pairs = append(pairs, [2]string{region(), region()})
		default:
			pairs = append(pairs, rt)
		}
	}
	return pairs
}

// Path formats one request.
func Path(orig, dest string, from time.Time, days int) string {
	q := url.Values{"date_from": {from.Format(time.DateOnly)}, "date_to": {from.AddDate(0, 0, days-1).Format(time.DateOnly)},
		"orig_code": {orig}, "dest_code": {dest}}
	return "/rates?" + q.Encode()
}

// Draw returns n request paths of the realistic mix.
func (d Data) Draw(n int, seed uint64) []string {
	pairs, r := d.Pairs(seed), d.Ranges()
	rng := rand.New(rand.NewPCG(seed, 17))
	paths := make([]string, n)
	for i := range paths {
		p := pairs[rng.IntN(len(pairs))]
		paths[i] = Path(p[0], p[1], r.Earliest.AddDate(0, 0, rng.IntN(r.StartDays)), 1+rng.IntN(r.MaxDays))
	}
	return paths
}

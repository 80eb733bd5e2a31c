// Package store reads prices and the port/region tree from PostgreSQL.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open creates a pool and waits until the database answers, retrying with capped exponential
// backoff for at most wait, so a service that starts before its database does not crash-loop.
func Open(ctx context.Context, cfg *pgxpool.Config, wait time.Duration, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	deadline := time.Now().Add(wait)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = pool.Ping(pingCtx)
		cancel()
		if err == nil {
			return pool, nil
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			pool.Close()
			return nil, fmt.Errorf("database %s:%d not reachable after %d attempts in %s: %w",
				cfg.ConnConfig.Host, cfg.ConnConfig.Port, attempt, wait, err)
		}
		log.Warn("database not reachable yet, retrying", "attempt", attempt, "retry_in", backoff.String(), "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// DayStat is the aggregate of one day's prices on a route.
type DayStat struct {
	Day   time.Time
	Count int64
	Sum   int64
}

// Store answers the API's questions with prepared statements (pgx caches and prepares each
// query text on every connection it runs on).
type Store struct {
	pool *pgxpool.Pool
}

// New wraps a pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping checks that a connection can be had and the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Generation identifies the state of the data behind GET /rates: an answer computed after a
// Generation was read reflects every change committed before that read.
type Generation struct {
	Epoch Epoch
	// Data advances in every transaction that changes prices, ports or regions (db/migrations).
	Data int64
	// Tree advances in every transaction that changes ports or regions (db/migrations).
	Tree int64
}

// Epoch identifies one incarnation of the generation counter. Counters of different epochs
// cannot be compared: a restore or a migrate down and up starts the counter again at 1.
// The random epoch column changes when the counter row is created, the table's OID when the
// table is recreated (a logical restore copies the column but not the OID), and the server's
// start time when the cluster is restored from a physical copy.
type Epoch struct {
	ID      [16]byte
	Table   int64
	Started int64 // Unix microseconds
}

const generationColumns = `d.generation, d.tree_generation, d.epoch, d.tableoid::bigint,
	(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint`

const generationSQL = `SELECT ` + generationColumns + ` FROM data_generation d`

// Generation reads the current generation.
func (s *Store) Generation(ctx context.Context) (Generation, error) {
	var g Generation
	if err := s.pool.QueryRow(ctx, generationSQL).Scan(&g.Data, &g.Tree, &g.Epoch.ID, &g.Epoch.Table, &g.Epoch.Started); err != nil {
		return g, fmt.Errorf("read data generation: %w", err)
	}
	return g, nil
}

// treeSQL reads the port and region tree with the generation it belongs to, in one snapshot.
const treeSQL = `SELECT ` + generationColumns + `,
	ARRAY(SELECT code FROM ports ORDER BY code), ARRAY(SELECT parent_slug FROM ports ORDER BY code),
	ARRAY(SELECT slug FROM regions ORDER BY slug), ARRAY(SELECT parent_slug FROM regions ORDER BY slug)
FROM data_generation d`

// Tree loads the port and region tree, to resolve codes in memory (see Tree.Resolve).
func (s *Store) Tree(ctx context.Context) (*Tree, error) {
	var (
		g                         Generation
		ports, portParents, slugs []string
		regionParents             []*string
	)
	if err := s.pool.QueryRow(ctx, treeSQL).Scan(&g.Data, &g.Tree, &g.Epoch.ID, &g.Epoch.Table, &g.Epoch.Started,
		&ports, &portParents, &slugs, &regionParents); err != nil {
		return nil, fmt.Errorf("load ports and regions: %w", err)
	}
	return newTree(g, ports, portParents, slugs, regionParents), nil
}

// resolveSQL turns a port code or region slug into the list of port codes it stands for. A
// region includes the ports of every region below it; UNION (not UNION ALL) ends the walk
// even if the tree has a cycle. found is false when the code is neither a port nor a region.
// Tree.Resolve does the same in memory; this query is the rule for codes that are not ASCII,
// whose upper case is the database's to decide.
const resolveSQL = `
WITH RECURSIVE subtree(slug) AS (
    SELECT slug FROM regions WHERE slug = $1
    UNION
    SELECT r.slug FROM regions r JOIN subtree t ON r.parent_slug = t.slug
)
SELECT CASE
         WHEN EXISTS (SELECT 1 FROM ports WHERE code = upper($1)) THEN ARRAY[upper($1)]
         ELSE ARRAY(SELECT p.code FROM ports p JOIN subtree t ON p.parent_slug = t.slug ORDER BY p.code)
       END,
       EXISTS (SELECT 1 FROM ports WHERE code = upper($1)),
       EXISTS (SELECT 1 FROM ports WHERE code = upper($1)) OR EXISTS (SELECT 1 FROM subtree)`

// Location is what a code or slug resolved to.
type Location struct {
	Ports []string
	Found bool
	// Key names the location whatever the spelling of the code: "p:" and the port code, or
	// "r:" and the region slug.
	Key string
}

// Resolve resolves one code with resolveSQL.
func (s *Store) Resolve(ctx context.Context, code string) (Location, error) {
	var loc Location
	var isPort bool
	if err := s.pool.QueryRow(ctx, resolveSQL, code).Scan(&loc.Ports, &isPort, &loc.Found); err != nil {
		return loc, fmt.Errorf("resolve %q: %w", code, err)
	}
	switch {
	case isPort:
		loc.Key = "p:" + loc.Ports[0]
	case loc.Found:
		loc.Key = "r:" + code
	}
	return loc, nil
}

// dailyStatsSQL reads the per-day counts and sums that triggers keep in price_daily (see the
// schema): at most one row per port pair and day, answered by an index-only scan of its key, so
// the cost does not grow with the number of prices per day.
const dailyStatsSQL = `
SELECT day, sum(prices)::bigint, sum(price_sum)::bigint
FROM price_daily
WHERE orig_code = ANY($1::text[]) AND dest_code = ANY($2::text[]) AND day BETWEEN $3 AND $4
GROUP BY day`

// DailyStats returns the count and sum of prices per day with at least one price, over all
// pairs of the given origin and destination ports, for days from..to inclusive.
func (s *Store) DailyStats(ctx context.Context, orig, dest []string, from, to time.Time) ([]DayStat, error) {
	if len(orig) == 0 || len(dest) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, dailyStatsSQL, orig, dest, from, to)
	if err != nil {
		return nil, fmt.Errorf("daily stats: %w", err)
	}
	stats, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DayStat, error) {
		var d DayStat
		err := row.Scan(&d.Day, &d.Count, &d.Sum)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("daily stats: %w", err)
	}
	return stats, nil
}

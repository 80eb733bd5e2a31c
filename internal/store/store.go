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
// the cost does not grow with the number of prices per day. The generation comes from the same
// statement, so from the same snapshot: the days are exactly those of that generation.
const dailyStatsSQL = `
SELECT ` + generationColumns + `, s.days, s.counts, s.sums
FROM data_generation d, LATERAL (
    SELECT array_agg(day) AS days, array_agg(c) AS counts, array_agg(t) AS sums FROM (
        SELECT day, sum(prices)::bigint AS c, sum(price_sum)::bigint AS t
        FROM price_daily
        WHERE orig_code = ANY($1::text[]) AND dest_code = ANY($2::text[]) AND day BETWEEN $3 AND $4
        GROUP BY day) x) s`

// DailyStats returns the count and sum of prices per day with at least one price, over all
// pairs of the given origin and destination ports, for days from..to inclusive, and the
// generation they belong to.
func (s *Store) DailyStats(ctx context.Context, orig, dest []string, from, to time.Time) ([]DayStat, Generation, error) {
	var (
		g            Generation
		days         []time.Time
		counts, sums []int64
	)
	if len(orig) == 0 || len(dest) == 0 {
		// Nothing to read, but the generation still says which data the empty answer is of.
		g, err := s.Generation(ctx)
		return nil, g, err
	}
	if err := s.pool.QueryRow(ctx, dailyStatsSQL, orig, dest, from, to).Scan(&g.Data, &g.Tree, &g.Epoch.ID, &g.Epoch.Table,
		&g.Epoch.Started, &days, &counts, &sums); err != nil {
		return nil, g, fmt.Errorf("daily stats: %w", err)
	}
	if len(counts) != len(days) || len(sums) != len(days) {
		return nil, g, fmt.Errorf("daily stats: %d days, %d counts and %d sums", len(days), len(counts), len(sums))
	}
	stats := make([]DayStat, len(days))
	for i, d := range days {
		stats[i] = DayStat{Day: d, Count: counts[i], Sum: sums[i]}
	}
	return stats, g, nil
}

// DailyRow is one row of price_daily.
type DailyRow struct {
	Orig, Dest string
	DayStat
}

// ScanDaily hands every row of price_daily to fn, in no particular order, from one snapshot,
// and returns the generation of that snapshot. It stops at the first error of fn, or when ctx
// ends.
func (s *Store) ScanDaily(ctx context.Context, fn func(DailyRow) error) (Generation, error) {
	var g Generation
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, generationSQL).Scan(&g.Data, &g.Tree, &g.Epoch.ID, &g.Epoch.Table, &g.Epoch.Started); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT orig_code, dest_code, day, prices, price_sum FROM price_daily")
		if err != nil {
			return err
		}
		defer rows.Close()
		var r DailyRow
		for rows.Next() {
			if err := rows.Scan(&r.Orig, &r.Dest, &r.Day, &r.Count, &r.Sum); err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return Generation{}, fmt.Errorf("scan price_daily: %w", err)
	}
	return g, nil
}

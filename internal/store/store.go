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

// Generation returns the data generation, which every change to prices, ports or regions
// advances in its own transaction (see migration 000005).
func (s *Store) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := s.pool.QueryRow(ctx, "SELECT generation FROM data_generation").Scan(&g); err != nil {
		return 0, fmt.Errorf("read data generation: %w", err)
	}
	return g, nil
}

// resolveSQL turns a port code or region slug into the list of port codes it stands for. A
// region includes the ports of every region below it; UNION (not UNION ALL) ends the walk
// even if the tree has a cycle. found is false when the code is neither a port nor a region.
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
       EXISTS (SELECT 1 FROM ports WHERE code = upper($1)) OR EXISTS (SELECT 1 FROM subtree)`

// Location is what a code or slug resolved to.
type Location struct {
	Ports []string
	Found bool
}

// ResolvePair resolves origin and destination in one round trip.
func (s *Store) ResolvePair(ctx context.Context, orig, dest string) (Location, Location, error) {
	batch := &pgx.Batch{}
	var o, d Location
	batch.Queue(resolveSQL, orig).QueryRow(func(row pgx.Row) error { return row.Scan(&o.Ports, &o.Found) })
	batch.Queue(resolveSQL, dest).QueryRow(func(row pgx.Row) error { return row.Scan(&d.Ports, &d.Found) })
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return o, d, fmt.Errorf("resolve %q and %q: %w", orig, dest, err)
	}
	return o, d, nil
}

// dailyStatsSQL reads the per-day counts and sums that triggers keep in price_daily (migration
// 000007): at most one row per port pair and day, answered by an index-only scan of its key, so
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

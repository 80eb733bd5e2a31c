package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Derived data is what the database keeps from other tables for speed: today price_daily, the
// per route-and-day count and sum of the published prices that triggers maintain (see the
// schema; the rows of a batch still staging are left out until its publish, see the view
// published_prices and migration 000038). Check compares it with what it is derived from;
// Repair rebuilds it.

// Mismatch is one route and day where price_daily differs from the GROUP BY over prices.
// Nil counts mean "no row".
type Mismatch struct {
	Table                 string
	OrigCode, DestCode    string
	Day                   time.Time
	WantPrices, GotPrices *int64
	WantSum, GotSum       *int64
}

func (m Mismatch) String() string {
	show := func(p *int64) string {
		if p == nil {
			return "no row"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s %s→%s %s: prices %s (want %s), price_sum %s (want %s)", m.Table, m.OrigCode, m.DestCode,
		m.Day.Format(time.DateOnly), show(m.GotPrices), show(m.WantPrices), show(m.GotSum), show(m.WantSum))
}

// CheckReport is the outcome of Check: the total number of mismatches and the first of them.
type CheckReport struct {
	Mismatches int64
	First      []Mismatch
}

const priceDailyDiffSQL = `
WITH want AS (
    SELECT orig_code, dest_code, day, count(*) AS prices, sum(price) AS price_sum FROM published_prices GROUP BY 1, 2, 3
), diff AS (
    SELECT coalesce(w.orig_code, d.orig_code) AS orig_code, coalesce(w.dest_code, d.dest_code) AS dest_code,
           coalesce(w.day, d.day) AS day, w.prices AS want_prices, d.prices AS got_prices,
           w.price_sum AS want_sum, d.price_sum AS got_sum
    FROM want w FULL JOIN price_daily d
      ON d.orig_code = w.orig_code AND d.dest_code = w.dest_code AND d.day = w.day
    WHERE w.prices IS DISTINCT FROM d.prices OR w.price_sum IS DISTINCT FROM d.price_sum
)
SELECT orig_code, dest_code, day, want_prices, got_prices, want_sum, got_sum, count(*) OVER ()
FROM diff ORDER BY orig_code, dest_code, day LIMIT $1`

// Check compares every derived table with its source in one consistent snapshot, listing at
// most limit mismatches (the count is always complete).
func Check(ctx context.Context, pool *pgxpool.Pool, limit int) (CheckReport, error) {
	var rep CheckReport
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, priceDailyDiffSQL, max(limit, 1))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m := Mismatch{Table: "price_daily"}
			if err := rows.Scan(&m.OrigCode, &m.DestCode, &m.Day, &m.WantPrices, &m.GotPrices, &m.WantSum, &m.GotSum, &rep.Mismatches); err != nil {
				return err
			}
			if len(rep.First) < limit {
				rep.First = append(rep.First, m)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return CheckReport{}, fmt.Errorf("check price_daily against prices: %w", err)
	}
	return rep, nil
}

// RebuildPriceDailySQL fills an empty price_daily from the published prices, in the order of
// its key.
const RebuildPriceDailySQL = `INSERT INTO price_daily (orig_code, dest_code, day, prices, price_sum)
	SELECT orig_code, dest_code, day, count(*), sum(price) FROM published_prices GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

// Repair rebuilds price_daily from prices in one transaction, holding writers of prices off
// (readers go on) so that nothing commits between the rebuild and its commit, and advances the
// data generation so that no answer cached from the drifted rows is served again. It returns
// the number of rows rebuilt.
func Repair(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var rows int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// SHARE ROW EXCLUSIVE keeps INSERT, UPDATE, DELETE and TRUNCATE of prices waiting, and
		// conflicts with itself.
		for _, stmt := range []string{
			"SET LOCAL lock_timeout = '5min'",
			"LOCK TABLE prices IN SHARE ROW EXCLUSIVE MODE",
			// The rebuild reads the published prices only, which lets it run while a batch
			// stages (000038).
			"SELECT set_config('rates.price_daily_source', 'published', true)",
			"DELETE FROM price_daily",
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, RebuildPriceDailySQL)
		if err != nil {
			return err
		}
		rows = tag.RowsAffected()
		_, err = tx.Exec(ctx, "UPDATE data_generation SET generation = generation + 1")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("repair price_daily: %w", err)
	}
	return rows, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/pgserver"
)

// batchFloors is what the database costs for the work of a batch by itself, on the same
// cluster and rows as the runs: (a) one backend inserting the batch's rows into a copy of
// prices with the same indexes, one batch id, and no trigger, against two backends inserting
// half each; (b) the upsert of the batch's route-day sums, sorted, into a copy of price_daily
// holding the seeded dump's: the floor of a publish's hold of price_daily.
type batchFloors struct {
	one, two  time.Duration
	routeDays int64
	upsert    time.Duration
}

const (
	floorSourceSQL = `CREATE UNLOGGED TABLE floor_src (orig_code text, dest_code text, day date, price integer)`
	floorHalvesSQL = `CREATE UNLOGGED TABLE floor_half1 AS SELECT * FROM floor_src WHERE (hashtext(orig_code || dest_code || day) & 1) = 0;
		CREATE UNLOGGED TABLE floor_half2 AS SELECT * FROM floor_src WHERE (hashtext(orig_code || dest_code || day) & 1) = 1;
		CREATE UNLOGGED TABLE floor_sums AS SELECT orig_code, dest_code, day, count(*)::bigint AS prices, sum(price)::bigint AS price_sum
			FROM floor_src GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
		CREATE TABLE floor_prices (LIKE prices INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
		CREATE TABLE floor_daily (LIKE price_daily INCLUDING ALL);
		INSERT INTO floor_daily SELECT * FROM price_daily`
	floorInsertSQL = `INSERT INTO floor_prices (orig_code, dest_code, day, price, batch_id)
		SELECT orig_code, dest_code, day, price, 1 FROM %s ORDER BY orig_code, dest_code, day`
	floorUpsertSQL = `INSERT INTO floor_daily AS d (orig_code, dest_code, day, prices, price_sum)
		SELECT orig_code, dest_code, day, prices, price_sum FROM floor_sums
		ON CONFLICT (orig_code, dest_code, day)
		DO UPDATE SET prices = d.prices + excluded.prices, price_sum = d.price_sum + excluded.price_sum`
)

// measureFloors seeds a database dbName and measures the floors of the batch in csv there.
func measureFloors(ctx context.Context, pg *pgserver.Server, o options, dbName, csv string) (batchFloors, error) {
	var f batchFloors
	dbURL, err := pg.CreateDatabase(ctx, dbName)
	if err != nil {
		return f, err
	}
	prep := ratesCmd(o, dbURL, "seed", "--file", o.defaultDump)
	prep.Env = append(prep.Env, "MIGRATE_ON_START=true")
	if out, err := prep.CombinedOutput(); err != nil {
		return f, fmt.Errorf("seed: %w: %s", err, out)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return f, err
	}
	defer conn.Close(ctx)
	if err := floorSources(ctx, conn, csv); err != nil {
		return f, err
	}
	// One backend, then two: each on an empty copy of prices after a checkpoint.
	if f.one, err = timedInserts(ctx, conn, dbURL, "(SELECT * FROM floor_half1 UNION ALL SELECT * FROM floor_half2) s"); err != nil {
		return f, err
	}
	if f.two, err = timedInserts(ctx, conn, dbURL, "floor_half1", "floor_half2"); err != nil {
		return f, err
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return f, fmt.Errorf("checkpoint: %w", err)
	}
	start := time.Now()
	tag, err := conn.Exec(ctx, floorUpsertSQL)
	if err != nil {
		return f, fmt.Errorf("upsert the sums: %w", err)
	}
	f.upsert, f.routeDays = time.Since(start), tag.RowsAffected()
	return f, nil
}

// floorSources copies the batch's CSV into the floors' source tables.
func floorSources(ctx context.Context, conn *pgx.Conn, csv string) error {
	if _, err := conn.Exec(ctx, floorSourceSQL); err != nil {
		return fmt.Errorf("create the floors' source: %w", err)
	}
	in, err := os.Open(csv) //nolint:gosec // G304: a file this program wrote
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := conn.PgConn().CopyFrom(ctx, in, `COPY floor_src FROM STDIN WITH (FORMAT csv, HEADER)`); err != nil {
		return fmt.Errorf("copy the batch into the floors' source: %w", err)
	}
	if _, err := conn.Exec(ctx, floorHalvesSQL); err != nil {
		return fmt.Errorf("prepare the floors: %w", err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE floor_half1, floor_half2, floor_sums, floor_daily"); err != nil {
		return fmt.Errorf("vacuum the floors' tables: %w", err)
	}
	return nil
}

// timedInserts empties floor_prices, checkpoints, then inserts the rows of each source at once,
// one backend per source, and returns the wall time until every backend committed.
func timedInserts(ctx context.Context, conn *pgx.Conn, dbURL string, sources ...string) (time.Duration, error) {
	if _, err := conn.Exec(ctx, "TRUNCATE floor_prices"); err != nil {
		return 0, fmt.Errorf("empty floor_prices: %w", err)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	conns := make([]*pgx.Conn, 0, len(sources))
	defer func() {
		for _, c := range conns {
			c.Close(ctx)
		}
	}()
	for range sources {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
	}
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	start := time.Now()
	for i, src := range sources {
		wg.Go(func() {
			_, errs[i] = conns[i].Exec(ctx, fmt.Sprintf(floorInsertSQL, src))
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("insert into floor_prices: %w", err)
		}
	}
	return took, nil
}

func (f batchFloors) write(w io.Writer) {
	fmt.Fprintf(w, "Floors of the database for this batch, same cluster, same run (a copy of prices with its indexes and one batch id, no trigger or foreign key; each INSERT sorted by route-day and committed):\n\n")
	fmt.Fprintf(w, "- (a) one backend inserting every row: %s; two backends inserting half each, at once: %s (%.2f×)\n", ms(f.one), ms(f.two), f.two.Seconds()/f.one.Seconds())
	fmt.Fprintf(w, "- (b) upsert of the batch's %d route-day sums, sorted, into a copy of price_daily, commit included: %s (%.2f µs per route-day)\n\n",
		f.routeDays, ms(f.upsert), float64(f.upsert.Microseconds())/float64(max(f.routeDays, 1)))
}

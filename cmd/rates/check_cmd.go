package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"rates/internal/config"
	"rates/internal/store"
)

// maxListed bounds the mismatches `rates check` prints; the count is always complete.
const maxListed = 50

// checkCmd runs `rates check [--repair]`: derived data against its source, non-zero with the
// mismatches listed when they differ; --repair rebuilds (and then checks again).
func checkCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repair := fs.Bool("repair", false, "rebuild price_daily from prices in one transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("usage: rates check [--repair]")
	}
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *repair {
		rows, err := store.Repair(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "price_daily rebuilt from prices: %d rows\n", rows)
	}
	rep, err := store.Check(ctx, pool, maxListed)
	if err != nil {
		return err
	}
	if rep.Mismatches == 0 {
		fmt.Fprintln(stdout, "derived data consistent: price_daily matches prices")
		return nil
	}
	for _, m := range rep.First {
		fmt.Fprintln(stdout, m)
	}
	if rep.Mismatches > int64(len(rep.First)) {
		fmt.Fprintf(stdout, "... and %d more\n", rep.Mismatches-int64(len(rep.First)))
	}
	return fmt.Errorf("derived data differs from its source in %d rows: run `rates check --repair` (see docs/operations.md)", rep.Mismatches)
}

// Command gendump writes a deterministic, synthetic plain-format pg_dump of the rates tables.
//
//	gendump [-seed N] [-prices N] [-start YYYY-MM-DD] [-days N] [-out FILE]
//
// With the defaults it writes the project's default dump:
//
//	go run ./cmd/gendump -out db/seed/rates.sql
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"rates/internal/testing/gendump"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendump:", err)
		os.Exit(1)
	}
}

func run() error {
	def := gendump.DefaultOptions()
	seed := flag.Uint64("seed", def.Seed, "seed of the routes and prices")
	prices := flag.Int("prices", def.Prices, "exact number of prices")
	start := flag.String("start", def.Start.Format(time.DateOnly), "first day of prices (YYYY-MM-DD)")
	days := flag.Int("days", def.Days, "number of days of prices")
	out := flag.String("out", "", "file to write (default: standard output)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *prices <= 0 || *days <= 0 {
		return errors.New("-prices and -days must be positive")
	}
	day, err := time.Parse(time.DateOnly, *start)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	opts := gendump.Options{Seed: *seed, Prices: *prices, Start: day, Days: *days}

	if *out == "" || *out == "-" {
		_, err := gendump.Write(os.Stdout, opts) // buffers on its own
		return err
	}
	st, err := writeFile(*out, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gendump: wrote %s (%d bytes): %d regions, %d ports, %d prices on %d routes "+
		"(route-days: %d without prices, %d with 1-2, at most %d prices)\n",
		*out, st.Bytes, st.Regions, st.Ports, st.Prices, st.Routes, st.RouteDaysEmpty, st.RouteDaysSparse, st.MaxRouteDay)
	return nil
}

// writeFile writes the dump to a temporary file beside path and renames it into place, so
// path holds either the old dump or the complete new one.
func writeFile(path string, opts gendump.Options) (st gendump.Stats, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if st, err = gendump.Write(f, opts); err != nil {
		return st, err
	}
	if err = f.Chmod(0o644); err != nil {
		return st, err
	}
	if err = f.Sync(); err != nil {
		return st, err
	}
	if err = f.Close(); err != nil {
		return st, err
	}
	return st, os.Rename(f.Name(), path)
}

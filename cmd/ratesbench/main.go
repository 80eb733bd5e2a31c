// Command ratesbench measures the service end to end on this machine: it starts a throwaway
// PostgreSQL, seeds it, runs the real `rates` binary and drives it with wrk over loopback, then
// prints the figures as Markdown tables (make bench).
//
//	ratesbench -rates bin/rates [-duration 10s] [-scale] [-out docs/benchmarks-latest.md]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/gendump"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/reference"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ratesbench:", err)
		os.Exit(1)
	}
}

type options struct {
	ratesBin    string
	defaultDump string
	duration    time.Duration
	scale       bool
	scalePrices int
	out         string
	sections    map[string]bool
}

func run() error {
	var o options
	flag.StringVar(&o.ratesBin, "rates", "bin/rates", "the rates binary to measure")
	flag.StringVar(&o.defaultDump, "default-dump", "db/seed/rates.sql", "the project's default dump")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load run")
	flag.BoolVar(&o.scale, "scale", false, "also run the scale test on a generated dump")
	flag.IntVar(&o.scalePrices, "scale-prices", 10_000_000, "prices in the scale test's dump")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	sections := flag.String("sections", "startup,seed,load,ingest", "comma-separated parts to run: startup, seed, load, ingest (load needs seed)")
	flag.Parse()
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		o.sections[strings.TrimSpace(s)] = true
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install wrk (make bench does it)")
	}
	ctx := context.Background()
	pg, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		return err
	}
	defer pg.Close()

	var report bytes.Buffer
	w := io.MultiWriter(os.Stdout, &report)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s, PostgreSQL from %s; load tool wrk over loopback, %s per run after a 2 s warm-up.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), pg.BinDir(), o.duration)

	if o.sections["startup"] {
		if err := startupRuns(ctx, w, pg, o); err != nil {
			return err
		}
	}
	var refP99 time.Duration
	if o.sections["seed"] {
		dump, label := reference.Find(), "reference dump"
		if dump == "" {
			dump, label = o.defaultDump, "default dump (reference dump not found)"
		}
		refDB, err := seedRun(ctx, w, pg, o, dump, label, true)
		if err != nil {
			return err
		}
		if o.sections["load"] {
			if refP99, err = loadRuns(ctx, w, pg, o, refDB, label); err != nil {
				return err
			}
		}
	}
	if o.sections["ingest"] {
		if err := ingestRuns(ctx, w, pg, o); err != nil {
			return err
		}
	}
	if o.scale && refP99 > 0 {
		if err := scaleRun(ctx, w, pg, o, refP99); err != nil {
			return err
		}
	}
	if o.out != "" {
		return os.WriteFile(o.out, report.Bytes(), 0o644)
	}
	return nil
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			_, v, _ := strings.Cut(line, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// service is a running `rates serve`.
type service struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

func startService(o options, dbURL string, env ...string) (*service, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logs, err := os.CreateTemp("", "ratesbench-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.ratesBin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "HTTP_ADDR="+addr, "MIGRATE_ON_START=true")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &service{cmd: cmd, addr: addr, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logs.Close(); os.Remove(logs.Name()) }()
	return s, nil
}

// waitReady polls /readyz until it answers 200.
func (s *service) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			return fmt.Errorf("rates serve exited during start-up: %v", err)
		default:
		}
		if resp, err := client.Get("http://" + s.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s", timeout)
}

func (s *service) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("rates serve did not stop within 30s of SIGTERM")
	}
}

func startupRuns(ctx context.Context, w io.Writer, pg *pgserver.Server, o options) error {
	fmt.Fprintln(w, "## Start-up (process start → /readyz 200)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| database | runs | median | max |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	var empty, seeded []time.Duration
	for i := range 5 {
		dbURL, err := pg.CreateDatabase(ctx, fmt.Sprintf("startup_%d", i))
		if err != nil {
			return err
		}
		for round := range 2 {
			start := time.Now()
			s, err := startService(o, dbURL, "SEED_FILE="+o.defaultDump, "LOG_LEVEL=warn")
			if err != nil {
				return err
			}
			if err := s.waitReady(60 * time.Second); err != nil {
				return err
			}
			d := time.Since(start)
			if err := s.stop(); err != nil {
				return err
			}
			if round == 0 {
				empty = append(empty, d)
			} else {
				seeded = append(seeded, d)
			}
		}
	}
	fmt.Fprintf(w, "| empty: migrations + default dump (50,000 prices) | %d | %s | %s |\n", len(empty), ms(median(empty)), ms(slices.Max(empty)))
	fmt.Fprintf(w, "| already migrated and seeded | %d | %s | %s |\n\n", len(seeded), ms(median(seeded)), ms(slices.Max(seeded)))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// seedRun imports dump into a fresh database with `rates seed`, reporting time and peak RSS,
// and with `psql -f` into another for comparison.
func seedRun(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, dump, label string, withPsql bool) (string, error) {
	dbURL, err := pg.CreateDatabase(ctx, fmt.Sprintf("seed_%d", time.Now().UnixNano()))
	if err != nil {
		return "", err
	}
	migrate := exec.Command(o.ratesBin, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := migrate.CombinedOutput(); err != nil {
		return "", fmt.Errorf("migrate: %v: %s", err, out)
	}
	info, err := os.Stat(dump)
	if err != nil {
		return "", err
	}
	seed := exec.Command(o.ratesBin, "seed", "--file", dump)
	seed.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	start := time.Now()
	out, err := seed.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("seed %s: %v: %s", dump, err, out)
	}
	elapsed := time.Since(start)
	rss := seed.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	var prices int64
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM prices").Scan(&prices); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "## Seeding: %s\n\n", label)
	fmt.Fprintln(w, "| importer | file | prices | wall time | prices/s | peak RSS |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(w, "| `rates seed` (one transaction, COPY FREEZE, ANALYZE) | %.1f MB | %d | %s | %.0f | %.1f MB |\n",
		float64(info.Size())/1e6, prices, ms(elapsed), float64(prices)/elapsed.Seconds(), float64(rss)/1024)
	if withPsql {
		psqlURL, err := pg.CreateDatabase(ctx, fmt.Sprintf("psql_%d", time.Now().UnixNano()))
		if err != nil {
			return "", err
		}
		psql := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", dump, psqlURL)
		start := time.Now()
		if out, err := psql.CombinedOutput(); err != nil {
			return "", fmt.Errorf("psql -f %s: %v: %s", dump, err, out)
		}
		d := time.Since(start)
		fmt.Fprintf(w, "| `psql -f` (no transaction; builds the tables itself, no index on prices) | %.1f MB | %d | %s | %.0f | %.1f MB |\n",
			float64(info.Size())/1e6, prices, ms(d), float64(prices)/d.Seconds(),
			float64(psql.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024)
	}
	fmt.Fprintln(w)
	return dbURL, nil
}

// scenario is one kind of request under load.
type scenario struct {
	name  string
	paths []string // several paths are drawn at random per request
}

func scenarios(ctx context.Context, dbURL string) ([]scenario, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var first time.Time
	var busyOrig, busyDest string
	if err := conn.QueryRow(ctx, "SELECT min(day) FROM prices").Scan(&first); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT orig_code, dest_code FROM prices GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1`).Scan(&busyOrig, &busyDest); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, "SELECT DISTINCT orig_code, dest_code FROM prices ORDER BY 1, 2")
	if err != nil {
		return nil, err
	}
	routes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var rt [2]string
		return rt, r.Scan(&rt[0], &rt[1])
	})
	if err != nil {
		return nil, err
	}
	// The two regions holding the most ports, wherever they are in the tree.
	rows, err = conn.Query(ctx, `
		WITH RECURSIVE tree(root, slug) AS (SELECT slug, slug FROM regions
		  UNION SELECT t.root, r.slug FROM regions r JOIN tree t ON r.parent_slug = t.slug)
		SELECT t.root FROM tree t JOIN ports p ON p.parent_slug = t.slug
		GROUP BY t.root ORDER BY count(*) DESC, t.root LIMIT 2`)
	if err != nil {
		return nil, err
	}
	regions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(regions) < 2 {
		return nil, fmt.Errorf("regions for the region scenario: %v", err)
	}
	path := func(orig, dest string, from time.Time, days int) string {
		q := url.Values{"date_from": {from.Format(time.DateOnly)}, "date_to": {from.AddDate(0, 0, days-1).Format(time.DateOnly)},
			"orig_code": {orig}, "dest_code": {dest}}
		return "/rates?" + q.Encode()
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var mix []string
	for range 20 {
		rt := routes[rng.IntN(len(routes))]
		mix = append(mix, path(rt[0], rt[1], first, 31))
	}
	return []scenario{
		{name: fmt.Sprintf("busy route %s→%s, 31 days", busyOrig, busyDest), paths: []string{path(busyOrig, busyDest, first, 31)}},
		{name: fmt.Sprintf("busy route %s→%s, 365 days", busyOrig, busyDest), paths: []string{path(busyOrig, busyDest, first.AddDate(0, 0, -334), 365)}},
		{name: "random mix of 20 routes, 31 days", paths: mix},
		{name: fmt.Sprintf("region %s → region %s, 31 days", regions[0], regions[1]), paths: []string{path(regions[0], regions[1], first, 31)}},
	}, nil
}

// wrkResult is what the Lua done() hook prints.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Errors     int64   `json:"errors"`
	Non2xx     int64   `json:"non2xx"`
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
}

func (r wrkResult) rps() float64 { return float64(r.Requests) / (float64(r.DurationUS) / 1e6) }

func runWrk(addr string, sc scenario, conns int, d time.Duration) (wrkResult, error) {
	script, err := os.CreateTemp("", "ratesbench-*.lua")
	if err != nil {
		return wrkResult{}, err
	}
	defer os.Remove(script.Name())
	var quoted []string
	for _, p := range sc.paths {
		quoted = append(quoted, fmt.Sprintf("%q", p))
	}
	fmt.Fprintf(script, `local paths = {%s}
local n = #paths
math.randomseed(42)
request = function()
  return wrk.format("GET", paths[math.random(n)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%%d,"duration_us":%%d,"errors":%%d,"non2xx":%%d,"p50_us":%%d,"p99_us":%%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
`, strings.Join(quoted, ", "))
	script.Close()
	threads := min(conns, 2)
	args := []string{"-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "5s", "-s", script.Name(), "http://" + addr}
	// Warm-up: fills the pool, the caches and the CPU's frequency.
	warm := exec.Command("wrk", append([]string{"-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", "2s", "-s", script.Name()}, "http://"+addr)...)
	if out, err := warm.CombinedOutput(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk warm-up: %v: %s", err, out)
	}
	out, err := exec.Command("wrk", args...).Output()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res wrkResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return wrkResult{}, fmt.Errorf("wrk output %q: %v", out, err)
	}
	return res, nil
}

// loadRuns drives every scenario at 16 and 64 connections, with the answer cache on (the
// default) and off (every request runs its queries), and returns the uncached busy-route p99
// at 64 connections for the scale comparison.
func loadRuns(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, dbURL, label string) (time.Duration, error) {
	scs, err := scenarios(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	var busyP99 time.Duration
	for _, mode := range []struct {
		name string
		env  []string
	}{
		{"answer cache on (default)", nil},
		{"answer cache off (CACHE_MAX_BYTES=0): every request queries PostgreSQL", []string{"CACHE_MAX_BYTES=0"}},
	} {
		s, err := startService(o, dbURL, append([]string{"LOG_LEVEL=info"}, mode.env...)...)
		if err != nil {
			return 0, err
		}
		if err := s.waitReady(60 * time.Second); err != nil {
			return 0, err
		}
		fmt.Fprintf(w, "## GET /rates on the %s: %s\n\n", label, mode.name)
		fmt.Fprintln(w, "| scenario | connections | requests/s | p50 | p99 | errors + non-2xx |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
		for i, sc := range scs {
			for _, conns := range []int{16, 64} {
				res, err := runWrk(s.addr, sc, conns, o.duration)
				if err != nil {
					return 0, err
				}
				fmt.Fprintf(w, "| %s | %d | %.0f | %.2f ms | %.2f ms | %d |\n", sc.name, conns, res.rps(), res.P50US/1000, res.P99US/1000, res.Errors+res.Non2xx)
				if mode.env != nil && conns == 64 && i == 0 {
					busyP99 = time.Duration(res.P99US) * time.Microsecond
				}
			}
		}
		fmt.Fprintln(w)
		if err := s.stop(); err != nil {
			return 0, err
		}
	}
	return busyP99, nil
}

// scaleRun seeds a generated dump of many prices, then compares the uncached busy-route p99
// with the one measured on the smaller data set.
func scaleRun(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, refP99 time.Duration) error {
	f, err := os.CreateTemp("", "ratesbench-scale-*.sql")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	opts := gendump.DefaultOptions()
	opts.Prices = o.scalePrices
	start := time.Now()
	if _, err := gendump.Write(f, opts); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "Generated a dump of %d prices in %s.\n\n", o.scalePrices, ms(time.Since(start)))
	dbURL, err := seedRun(ctx, w, pg, o, f.Name(), fmt.Sprintf("generated dump of %d prices", o.scalePrices), false)
	if err != nil {
		return err
	}
	scs, err := scenarios(ctx, dbURL)
	if err != nil {
		return err
	}
	s, err := startService(o, dbURL, "LOG_LEVEL=info", "CACHE_MAX_BYTES=0")
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.waitReady(60 * time.Second); err != nil {
		return err
	}
	fmt.Fprintf(w, "## GET /rates at %d prices, answer cache off\n\n", o.scalePrices)
	fmt.Fprintln(w, "| scenario | connections | requests/s | p50 | p99 | errors + non-2xx | p99 vs. smaller data set |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	res, err := runWrk(s.addr, scs[0], 64, o.duration)
	if err != nil {
		return err
	}
	ratio := res.P99US / float64(refP99.Microseconds())
	fmt.Fprintf(w, "| %s | 64 | %.0f | %.2f ms | %.2f ms | %d | %.2f× |\n\n", scs[0].name, res.rps(), res.P50US/1000, res.P99US/1000, res.Errors+res.Non2xx, ratio)
	return nil
}

// ingestRuns loads CSV batches of 100,000 and 1,000,000 prices with `rates ingest` into a
// seeded database, and the same files with psql's \copy straight into prices as the floor.
func ingestRuns(ctx context.Context, w io.Writer, pg *pgserver.Server, o options) error {
	_, ports := gendump.Geography()
	fmt.Fprintln(w, "## Batch ingestion (`rates ingest --file`: process start to exit, one transaction, all or nothing)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| batch | `rates ingest` wall time | rows/s | peak RSS | `psql \\copy` into a bare table (floor) | `psql \\copy` into prices |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	for _, rows := range []int{100_000, 1_000_000} {
		csv, err := os.CreateTemp("", "ratesbench-*.csv")
		if err != nil {
			return err
		}
		defer os.Remove(csv.Name())
		// A month of prices on 300 routes, as a carrier's monthly batch would be.
		rng := rand.New(rand.NewPCG(uint64(rows), 3))
		routes := make([][2]string, 300)
		for i := range routes {
			routes[i] = [2]string{ports[rng.IntN(len(ports))].Code, ports[rng.IntN(len(ports))].Code}
		}
		fmt.Fprintln(csv, "orig_code,dest_code,day,price")
		for range rows {
			r := routes[rng.IntN(len(routes))]
			fmt.Fprintf(csv, "%s,%s,2026-02-%02d,%d\n", r[0], r[1], 1+rng.IntN(28), 300+rng.IntN(3000))
		}
		if err := csv.Close(); err != nil {
			return err
		}
		var times [3]time.Duration
		var rss int64
		for i, tool := range []string{"rates", "floor", "psql"} {
			dbURL, err := pg.CreateDatabase(ctx, fmt.Sprintf("ingest_%s_%d", tool, rows))
			if err != nil {
				return err
			}
			seed := exec.Command(o.ratesBin, "seed", "--file", o.defaultDump)
			seed.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
			if out, err := seed.CombinedOutput(); err != nil {
				return fmt.Errorf("seed: %v: %s", err, out)
			}
			var cmd *exec.Cmd
			if tool == "rates" {
				cmd = exec.Command(o.ratesBin, "ingest", "--file", csv.Name())
				cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
			} else {
				table := "prices"
				if tool == "floor" {
					// No index, no constraint, no trigger: what COPY itself costs.
					table = "copy_floor"
					create := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-c",
						"CREATE TABLE copy_floor (orig_code text, dest_code text, day date, price integer)", dbURL)
					if out, err := create.CombinedOutput(); err != nil {
						return fmt.Errorf("create copy_floor: %v: %s", err, out)
					}
				}
				cmd = exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
					"-c", `\copy `+table+` (orig_code, dest_code, day, price) FROM '`+csv.Name()+`' WITH (FORMAT csv, HEADER)`, dbURL)
			}
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", tool, err, out)
			}
			times[i] = time.Since(start)
			if tool == "rates" {
				rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
			}
		}
		fmt.Fprintf(w, "| %d rows | %s | %.0f | %.1f MB | %s | %s |\n", rows, ms(times[0]), float64(rows)/times[0].Seconds(), float64(rss)/1024, ms(times[1]), ms(times[2]))
	}
	fmt.Fprintln(w)
	return nil
}

// Command ratesbench measures the service end to end on this machine: it starts a throwaway
// PostgreSQL (fsync on), seeds it, runs the real `rates` binary and drives it with wrk over
// loopback, then prints the figures as Markdown tables ending with the targets (make bench):
// seeding against `psql -f`; GET /rates with the realistic mix (internal/testing/ratesmix), the
// same 20 routes, and the realistic mix while a batch commits every second, each with the cache
// hit ratio from /metrics and the CPU time per request; with -scale, the realistic mix at 10M
// prices. Section batches (make bench-ingest) measures a multi-part batch staged in parallel.
//
//	ratesbench -rates bin/rates [-duration 10s] [-scale] [-sections startup,seed,load,ingest,batches] [-out FILE]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/ingest"
	"rates/internal/testing/gendump"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/ratesmix"
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
	batches     batchOptions
}

func run() error {
	o, err := parseOptions()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if o.batches.stageManifest != "" {
		return stageDriver(ctx, o.batches.stageManifest, o.batches.parallel)
	}
	// Durable: a batch committing under load is a write, and writes are measured with fsync on.
	pg, err := pgserver.Start(ctx, pgserver.Options{Durable: true})
	if err != nil {
		return err
	}
	defer pg.Close()

	var report bytes.Buffer
	w := io.MultiWriter(os.Stdout, &report)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s, PostgreSQL from %s with fsync and synchronous_commit on; load tool wrk over loopback on the same cores, %s per run after a 2 s warm-up (except the cold-start rows). Load on the machine when the run started: %s.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), pg.BinDir(), o.duration, loadAverage())
	sum, err := runSections(ctx, w, pg, o)
	if err != nil {
		return err
	}
	if len(o.sections) > 1 || !o.sections["batches"] {
		// The batches section prints its targets itself.
		sum.write(w, o)
	}
	if o.out != "" {
		return os.WriteFile(o.out, report.Bytes(), 0o644)
	}
	return nil
}

// parseOptions reads the flags and checks what the runs need before any of them starts.
func parseOptions() (options, error) {
	var o options
	flag.StringVar(&o.ratesBin, "rates", "bin/rates", "the rates binary to measure")
	flag.StringVar(&o.defaultDump, "default-dump", "db/seed/rates.sql", "the project's default dump")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load run")
	flag.BoolVar(&o.scale, "scale", false, "also run the scale test on a generated dump")
	flag.IntVar(&o.scalePrices, "scale-prices", 10_000_000, "prices in the scale test's dump")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	sections := flag.String("sections", "startup,seed,load,ingest", "comma-separated parts to run: startup, seed, load (the reads; seeds the default dump by itself without seed), ingest, batches (-scale needs load)")
	addBatchFlags(&o.batches)
	flag.Parse()
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		o.sections[strings.TrimSpace(s)] = true
	}
	if _, err := exec.LookPath("wrk"); err != nil && o.sections["load"] && o.batches.stageManifest == "" {
		return o, errors.New("wrk not found: apt-get install wrk (make bench does it)")
	}
	if o.out != "" {
		// Before the runs, so that a report folder that cannot be made fails now, not after them.
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil { //nolint:gosec // G301: a report anyone on the machine may read
			return o, fmt.Errorf("report folder: %w", err)
		}
	}
	return o, nil
}

// runSections runs the sections o asks for, in order, writing their tables to w, and returns
// the figures that have targets.
func runSections(ctx context.Context, w io.Writer, pg *pgserver.Server, o options) (summary, error) {
	var sum summary
	var err error
	if o.sections["startup"] {
		if err := startupRuns(ctx, w, pg, o); err != nil {
			return sum, err
		}
	}
	if o.sections["seed"] || o.sections["load"] {
		if err := seedAndLoadRuns(ctx, w, pg, o, &sum); err != nil {
			return sum, err
		}
	}
	if o.sections["ingest"] {
		if sum.ingest, err = ingestRuns(ctx, w, o); err != nil {
			return sum, err
		}
	}
	if o.sections["batches"] {
		if err := batchRuns(ctx, w, o); err != nil {
			return sum, err
		}
	}
	if o.scale && sum.load.realistic.Requests > 0 {
		if sum.scale, err = scaleRun(ctx, w, pg, o, sum.load.realistic); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// seedAndLoadRuns seeds the default dump (and the reference dump when it is beside the
// repository), then, with the load section, runs the load scenarios on what they seeded. The
// load section alone seeds the default dump once, without the comparison with psql.
func seedAndLoadRuns(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, sum *summary) error {
	reps, withPsql := 3, o.sections["seed"]
	if !withPsql {
		reps = 1
	}
	dbURL, ratio, err := seedRun(ctx, w, pg, o, o.defaultDump, "default dump", reps, withPsql)
	if err != nil {
		return err
	}
	sum.seedRatio = ratio
	refURL := ""
	if ref := reference.Find(); ref != "" && withPsql {
		if refURL, _, err = seedRun(ctx, w, pg, o, ref, "reference dump (an extra comparison; not in the repository)", 3, true); err != nil {
			return err
		}
	}
	if !o.sections["load"] {
		return nil
	}
	if sum.load, err = loadRuns(ctx, w, pg, o, dbURL, "default dump"); err != nil {
		return err
	}
	if refURL != "" {
		if sum.refRealistic, err = realisticRun(ctx, w, pg, o, refURL, "on the reference dump (an extra comparison)"); err != nil {
			return err
		}
	}
	return nil
}

// summary holds the figures that have targets.
type summary struct {
	seedRatio float64
	load      loadResults
	scale     wrkResult
	// refRealistic is the realistic mix on the reference dump, when it is beside the repository.
	refRealistic wrkResult
	ingest       ingestSummary
}

// ingestSummary holds the ingestion figures that have targets.
type ingestSummary struct {
	spreadRatio map[int]float64 // rows: time of rates ingest / time of psql \copy, medians
	peakRSS     int64           // KiB, the largest of every rates ingest run
}

func (s summary) write(w io.Writer, o options) {
	fmt.Fprintf(w, "## Targets (%d connections)\n", conns)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	line := func(target string, r wrkResult, minRPS float64, maxP99 time.Duration) {
		if r.Requests == 0 {
			return
		}
		ok := r.rps() >= minRPS && r.Errors+r.Non2xx == 0 && (maxP99 == 0 || r.p99() <= maxP99)
		fmt.Fprintf(w, "| %s | %.0f requests/s, p99 %.2f ms, %d errors | %s |\n", target, r.rps(), r.P99US/1000, r.Errors+r.Non2xx, met(ok))
	}
	limit := s.load.limit.rps()
	shareLine := func(target string, r wrkResult, minShare float64, maxP99 time.Duration) {
		if r.Requests == 0 || limit == 0 {
			return
		}
		ok := r.rps() >= minShare*limit && r.Errors+r.Non2xx == 0 && (maxP99 == 0 || r.p99() <= maxP99)
		fmt.Fprintf(w, "| %s | %.0f%% of %.0f requests/s (%.0f requests/s), p99 %.2f ms, %d errors | %s |\n", target, 100*r.rps()/limit, limit, r.rps(), r.P99US/1000, r.Errors+r.Non2xx, met(ok))
	}
	shareLine("the same 20 routes and 31 days: ≥ 80% of the limit, p99 ≤ 5 ms", s.load.repeated, 0.8, 5*time.Millisecond)
	shareLine("realistic mix: ≥ 60% of the limit, p99 ≤ 10 ms", s.load.realistic, 0.6, 10*time.Millisecond)
	shareLine("304 answers (If-None-Match): ≥ 90% of the limit", s.load.notModified, 0.9, 0)
	line("realistic mix from a cold start: p99 ≤ 20 ms", s.load.cold, 0, 20*time.Millisecond)
	line("realistic mix: ≥ 10,000 requests/s, p99 ≤ 20 ms", s.load.realistic, 10_000, 20*time.Millisecond)
	line("the same 20 routes and 31 days: ≥ 20,000 requests/s, p99 ≤ 10 ms", s.load.repeated, 20_000, 10*time.Millisecond)
	line("realistic mix with a batch every second: ≥ 8,000 requests/s", s.load.batches, 8_000, 0)
	if s.seedRatio > 0 {
		fmt.Fprintf(w, "| `rates seed` within 1.5× of `psql -f` (default dump, medians) | %.2f× | %s |\n", s.seedRatio, met(s.seedRatio <= 1.5))
	}
	for _, rows := range slices.Sorted(maps.Keys(s.ingest.spreadRatio)) {
		r := s.ingest.spreadRatio[rows]
		fmt.Fprintf(w, "| spread batch of %d rows within 1.5× of `psql \\copy` into `LIKE prices` | %.2f× | %s |\n", rows, r, met(r <= 1.5))
	}
	if s.ingest.peakRSS > 0 {
		mb := float64(s.ingest.peakRSS) / 1024
		fmt.Fprintf(w, "| peak RSS of a load < 100 MB | %.1f MB | %s |\n", mb, met(mb < 100))
	}
	if s.scale.Requests > 0 {
		ratio := s.scale.P99US / s.load.realistic.P99US
		fmt.Fprintf(w, "| realistic mix at %d prices: p99 within 2× of the default dump's | %.2f ms vs %.2f ms: %.2f× | %s |\n",
			o.scalePrices, s.scale.P99US/1000, s.load.realistic.P99US/1000, ratio, met(ratio <= 2))
		if s.refRealistic.Requests > 0 {
			ratio := s.scale.P99US / s.refRealistic.P99US
			fmt.Fprintf(w, "| realistic mix at %d prices: p99 within 2× of the reference dump's (when it is present) | %.2f ms vs %.2f ms: %.2f× | %s |\n",
				o.scalePrices, s.scale.P99US/1000, s.refRealistic.P99US/1000, ratio, met(ratio <= 2))
		}
	}
	fmt.Fprintln(w)
}

// loadAverage is the 1-, 5- and 15-minute load average, to tell a busy machine's figures apart.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
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

// ratesCmd is a one-off command of the rates binary on the database at dbURL, logging
// warnings only.
func ratesCmd(o options, dbURL string, args ...string) *exec.Cmd {
	cmd := exec.Command(o.ratesBin, args...) //nolint:gosec // G204: the binary under measurement
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	return cmd
}

// psqlCmd is psql of the cluster pg on the database at dbURL, stopping at the first error.
func psqlCmd(pg *pgserver.Server, dbURL string, args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(pg.BinDir(), "psql"), append(append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1"}, args...), dbURL)...) //nolint:gosec // G204: the cluster's own psql
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
			return fmt.Errorf("rates serve exited during start-up: %w", err)
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

// spread is the median of ds with their range, "median (min-max)".
func spread(ds []time.Duration) string {
	return fmt.Sprintf("%s (%s-%s)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// seedRun imports dump reps times into fresh databases with `rates seed`, and with `psql -f`
// into others in alternation when withPsql, reporting medians, and returns the URL of one
// database seeded by `rates seed` and the ratio of the medians.
func seedRun(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, dump, label string, reps int, withPsql bool) (string, float64, error) {
	info, err := os.Stat(dump)
	if err != nil {
		return "", 0, err
	}
	var (
		dbURL                string
		seedTimes, psqlTimes []time.Duration
		structTimes          []time.Duration // psql -f, then the structures rates seed also builds
		seedRSS, psqlRSS     int64
		prices               int64
	)
	for range reps {
		url, err := pg.CreateDatabase(ctx, fmt.Sprintf("seed_%d", time.Now().UnixNano()))
		if err != nil {
			return "", 0, err
		}
		migrate := ratesCmd(o, url, "migrate")
		if out, err := migrate.CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("migrate: %w: %s", err, out)
		}
		seed := ratesCmd(o, url, "seed", "--file", dump)
		start := time.Now()
		if out, err := seed.CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("seed %s: %w: %s", dump, err, out)
		}
		seedTimes = append(seedTimes, time.Since(start))
		seedRSS = max(seedRSS, seed.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB on Linux
		dbURL = url
		if !withPsql {
			continue
		}
		psqlURL, err := pg.CreateDatabase(ctx, fmt.Sprintf("psql_%d", time.Now().UnixNano()))
		if err != nil {
			return "", 0, err
		}
		psql := psqlCmd(pg, psqlURL, "-f", dump)
		start = time.Now()
		if out, err := psql.CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("psql -f %s: %w: %s", dump, err, out)
		}
		psqlTimes = append(psqlTimes, time.Since(start))
		psqlRSS = max(psqlRSS, psql.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		structures := psqlCmd(pg, psqlURL, "-c", seedStructuresSQL)
		if out, err := structures.CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("psql -c structures: %w: %s", err, out)
		}
		structTimes = append(structTimes, time.Since(start))
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM prices").Scan(&prices); err != nil {
		return "", 0, err
	}
	fmt.Fprintf(w, "## Seeding: %s\n\n", label)
	fmt.Fprintf(w, "%d runs each, alternating, each into a fresh database; median (min-max).\n\n", reps)
	fmt.Fprintln(w, "| importer | file | prices | wall time | prices/s | peak RSS |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(w, "| `rates seed` (process start to exit: one transaction, COPY FREEZE, indexes and checks, ANALYZE) | %.1f MB | %d | %s | %.0f | %.1f MB |\n",
		float64(info.Size())/1e6, prices, spread(seedTimes), float64(prices)/median(seedTimes).Seconds(), float64(seedRSS)/1024)
	ratio := 0.0
	if withPsql {
		ratio = float64(median(seedTimes)) / float64(median(psqlTimes))
		fmt.Fprintf(w, "| `psql -f` (no transaction; builds the tables itself, no index on prices) | %.1f MB | %d | %s | %.0f | %.1f MB |\n",
			float64(info.Size())/1e6, prices, spread(psqlTimes), float64(prices)/median(psqlTimes).Seconds(), float64(psqlRSS)/1024)
		fmt.Fprintf(w, "| for comparison: `psql -f`, then the route-day index, `price_daily` with its key and `ANALYZE` in one more psql | %.1f MB | %d | %s | %.0f | |\n",
			float64(info.Size())/1e6, prices, spread(structTimes), float64(prices)/median(structTimes).Seconds())
		fmt.Fprintf(w, "\n`rates seed` / `psql -f`: %.2f× (medians); against `psql -f` and the same structures: %.2f×.\n",
			ratio, float64(median(seedTimes))/float64(median(structTimes)))
	}
	fmt.Fprintln(w)
	return dbURL, ratio, nil
}

// seedStructuresSQL builds, after psql -f of a dump, what rates seed builds besides the dump's
// own tables: the index GET /rates reads prices through and price_daily with its key. Lineage
// (batch_id and its index) is left out, so this is the lighter of the two.
const seedStructuresSQL = `CREATE INDEX ON prices (orig_code, dest_code, day) INCLUDE (price);
CREATE TABLE price_daily AS SELECT orig_code, dest_code, day, count(*) AS prices, sum(price) AS price_sum FROM prices GROUP BY 1, 2, 3;
ALTER TABLE price_daily ADD PRIMARY KEY (orig_code, dest_code, day) INCLUDE (prices, price_sum);
ANALYZE regions, ports, prices, price_daily`

// scenario is one kind of request under load: fixed paths drawn at random, or the realistic
// mix, whose pairs and ranges wrk's script draws per request.
type scenario struct {
	name    string
	paths   []string
	mix     *ratesmix.Data
	batches bool // commit a price batch every second during the run
	cold    bool // no warm-up: the measured run starts with empty caches and pool
	// etags, when set, sends each path with If-None-Match naming its tag (etags[i] for paths[i]).
	etags []string
}

// wrkScript writes the Lua script of sc. Each wrk thread draws its own random sequence.
func wrkScript(sc scenario) (string, error) {
	f, err := os.CreateTemp("", "ratesbench-*.lua")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("local counter = 1\nfunction setup(thread) thread:set(\"id\", counter); counter = counter + 1 end\n")
	b.WriteString(`function init(args) if args[1] == "warm" then math.randomseed(104729 + id) else math.randomseed(7919 * id) end end` + "\n")
	switch {
	case sc.mix == nil && sc.etags != nil:
		var quoted, tags []string
		for i, p := range sc.paths {
			quoted, tags = append(quoted, fmt.Sprintf("%q", p)), append(tags, fmt.Sprintf("%q", sc.etags[i]))
		}
		fmt.Fprintf(&b, "local paths = {%s}\nlocal etags = {%s}\n", strings.Join(quoted, ", "), strings.Join(tags, ", "))
		b.WriteString("request = function() local i = math.random(#paths); return wrk.format(\"GET\", paths[i], {[\"If-None-Match\"] = etags[i]}) end\n")
	case sc.mix == nil:
		var quoted []string
		for _, p := range sc.paths {
			quoted = append(quoted, fmt.Sprintf("%q", p))
		}
		fmt.Fprintf(&b, "local paths = {%s}\nrequest = function() return wrk.format(\"GET\", paths[math.random(#paths)]) end\n", strings.Join(quoted, ", "))
	default:
		r := sc.mix.Ranges()
		var od []string
		for _, p := range sc.mix.Pairs(1) {
			od = append(od, fmt.Sprintf("{%q, %q}", url.QueryEscape(p[0]), url.QueryEscape(p[1])))
		}
		var days []string
		for i := range r.StartDays + r.MaxDays {
			days = append(days, fmt.Sprintf("%q", r.Earliest.AddDate(0, 0, i).Format(time.DateOnly)))
		}
		fmt.Fprintf(&b, "local od = {%s}\nlocal days = {%s}\n", strings.Join(od, ", "), strings.Join(days, ", "))
		fmt.Fprintf(&b, `request = function()
  local p = od[math.random(#od)]
  local from = math.random(%d)
  local to = from + math.random(%d) - 1
  return wrk.format("GET", "/rates?date_from=" .. days[from] .. "&date_to=" .. days[to] .. "&orig_code=" .. p[1] .. "&dest_code=" .. p[2])
end
`, r.StartDays, r.MaxDays)
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
`)
	if _, err := f.WriteString(b.String()); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// wrkResult is what the Lua done() hook prints, and what /metrics counted meanwhile.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Errors     int64   `json:"errors"`
	Non2xx     int64   `json:"non2xx"`
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
	lookups    map[string]float64
	batches    []time.Duration
	cpu        [3]time.Duration // CPU time of the service, PostgreSQL and wrk during the run
}

// cpuCell is the CPU time per request of the service, PostgreSQL and wrk. On a machine shared
// with other work, it moves far less than requests/s does; 2 cores divided by their sum
// estimates what the two cores would serve if nothing else ran.
func (r wrkResult) cpuCell() string {
	if r.Requests == 0 {
		return ""
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.Requests) }
	total := per(r.cpu[0]) + per(r.cpu[1]) + per(r.cpu[2])
	return fmt.Sprintf("%.0f / %.0f / %.0f µs (≈ %.0f requests/s on 2 idle cores)", per(r.cpu[0]), per(r.cpu[1]), per(r.cpu[2]), 2e6/total)
}

func (r wrkResult) rps() float64 { return float64(r.Requests) / (float64(r.DurationUS) / 1e6) }

func (r wrkResult) p99() time.Duration { return time.Duration(r.P99US) * time.Microsecond }

// cacheCell shows where the answers came from, as rates_answer_cache_lookups_total counted.
func (r wrkResult) cacheCell() string {
	total := r.lookups["hit"] + r.lookups["days"] + r.lookups["miss"]
	if total == 0 {
		return "cache off"
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v/total) }
	return fmt.Sprintf("%s / %s / %s", pct(r.lookups["hit"]), pct(r.lookups["days"]), pct(r.lookups["miss"]))
}

// row is r's line of a results table; limit, when measured, gives the share column.
func (r wrkResult) row(name string, conns int, limit wrkResult) string {
	share := ""
	if limit.Requests > 0 {
		share = fmt.Sprintf("%.0f%%", 100*r.rps()/limit.rps())
	}
	return fmt.Sprintf("| %s | %d | %.0f | %s | %.2f ms | %.2f ms | %d | %s | %s |", name, conns, r.rps(), share, r.P50US/1000, r.P99US/1000,
		r.Errors+r.Non2xx, r.cacheCell(), r.cpuCell())
}

const resultHeader = "| scenario | connections | requests/s | share of the limit | p50 | p99 | errors + non-2xx | answers: cached / from cached days / read from PostgreSQL | CPU per request: service / PostgreSQL / wrk |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- |"

// cacheLookups reads rates_answer_cache_lookups_total by result from the service.
func cacheLookups(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, `rates_answer_cache_lookups_total{result="`)
		if !ok {
			continue
		}
		result, value, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[result] = v
	}
	return out, nil
}

func runWrk(ctx context.Context, svc *service, pgPid int, dbURL string, sc scenario, conns int, d time.Duration) (wrkResult, error) {
	addr := svc.addr
	script, err := wrkScript(sc)
	if err != nil {
		return wrkResult{}, err
	}
	defer os.Remove(script)
	threads := min(conns, 2)
	args := []string{"-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "5s", "-s", script, "http://" + addr}
	// Warm-up: fills the pool, the caches and the CPU's frequency.
	// Its own random sequence ("warm"), so the measured run does not replay it from the cache.
	if !sc.cold {
		warm := exec.Command("wrk", "-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", "2s", "-s", script, "http://"+addr, "warm")
		if out, err := warm.CombinedOutput(); err != nil {
			return wrkResult{}, fmt.Errorf("wrk warm-up: %w: %s", err, out)
		}
	}
	// A service without a command is the limit server of this process: no metrics to read.
	pid, before := os.Getpid(), map[string]float64{}
	if svc.cmd != nil {
		pid = svc.cmd.Process.Pid
		if before, err = cacheLookups(addr); err != nil {
			return wrkResult{}, err
		}
	}
	var batches []time.Duration
	stop, batchErr := make(chan struct{}), make(chan error, 1)
	if sc.batches {
		go func() { batchErr <- commitBatches(ctx, dbURL, sc.mix, stop, &batches) }()
	} else {
		batchErr <- nil
	}
	svcCPU0, pgCPU0 := processCPU(pid, false), processCPU(pgPid, true)
	wrk := exec.Command("wrk", args...)
	out, err := wrk.Output()
	close(stop)
	svcCPU, pgCPU := processCPU(pid, false)-svcCPU0, processCPU(pgPid, true)-pgCPU0
	if bErr := <-batchErr; bErr != nil {
		return wrkResult{}, fmt.Errorf("batches during the run: %w", bErr)
	}
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res wrkResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return wrkResult{}, fmt.Errorf("wrk output %q: %w", out, err)
	}
	after := map[string]float64{}
	if svc.cmd != nil {
		if after, err = cacheLookups(addr); err != nil {
			return wrkResult{}, err
		}
	}
	res.lookups = map[string]float64{}
	for k, v := range after {
		res.lookups[k] = v - before[k]
	}
	res.batches = batches
	res.cpu = [3]time.Duration{svcCPU, pgCPU, wrk.ProcessState.UserTime() + wrk.ProcessState.SystemTime()}
	return res, nil
}

// commitBatches commits a batch of 1,000 prices on routes of the data every second until stop
// is closed, each in its own transaction, as an ingested batch commits. Every commit moves
// the data generation, so the service's cache starts over each second.
func commitBatches(ctx context.Context, dbURL string, mix *ratesmix.Data, stop <-chan struct{}, took *[]time.Duration) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(5, 5))
	span := int(mix.Last.Sub(mix.First).Hours()/24) + 1
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		const rows = 1000
		orig, dest, days, prices := make([]string, rows), make([]string, rows), make([]time.Time, rows), make([]int32, rows)
		for i := range rows {
			rt := mix.Routes[rng.IntN(len(mix.Routes))]
			orig[i], dest[i] = rt[0], rt[1]
			days[i] = mix.First.AddDate(0, 0, rng.IntN(span))
			prices[i] = int32(300 + rng.IntN(3000))
		}
		start := time.Now()
		if _, err := conn.Exec(ctx, `INSERT INTO prices (orig_code, dest_code, day, price)
			SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::int[])`, orig, dest, days, prices); err != nil {
			return err
		}
		*took = append(*took, time.Since(start))
	}
}

// loadRuns measures GET /rates on the database at dbURL: the limit (net/http answering one
// fixed 31-day answer of the same data), the realistic mix (cache on and off, and from a cold
// start), the same 20 routes over the same 31 days, the same with If-None-Match naming their
// current ETags (all 304), and the realistic mix while a batch commits every second (last,
// since it adds prices), in the order of loadResults.
func loadRuns(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, dbURL, label string) (loadResults, error) {
	mix, err := loadMix(ctx, dbURL)
	if err != nil {
		return loadResults{}, err
	}
	var repeated []string
	for i := range 20 {
		rt := mix.Routes[i*len(mix.Routes)/20]
		repeated = append(repeated, ratesmix.Path(rt[0], rt[1], mix.First, 31))
	}
	body, etags, err := answersOf(o, dbURL, repeated)
	if err != nil {
		return loadResults{}, err
	}
	realistic := realisticScenario(&mix)
	fmt.Fprintf(w, "## GET /rates on the %s\n\n", label)
	fmt.Fprintln(w, resultHeader)
	var results loadResults
	limitSc := scenario{name: fmt.Sprintf("**the limit**: net/http answering one fixed 31-day answer (%d bytes) of these data", len(body)), paths: repeated}
	before, err := limitRun(ctx, pg, o, dbURL, limitSc, body)
	if err != nil {
		return loadResults{}, err
	}
	runs := []struct {
		sc  scenario
		env []string
		res *wrkResult
	}{
		{scenario{name: realistic.name + ", answer cache off (`CACHE_MAX_BYTES=0`)", mix: &mix}, []string{"CACHE_MAX_BYTES=0"}, &results.uncached},
		{realistic, nil, &results.realistic},
		{scenario{name: realistic.name + ", from a cold start (no warm-up; `/readyz` turns ready once the preload ends)", mix: &mix, cold: true}, nil, &results.cold},
		{scenario{name: "the same 20 routes, the same 31 days", paths: repeated}, nil, &results.repeated},
		{scenario{name: "the same 20 routes, the same 31 days, If-None-Match with their current ETags (304)", paths: repeated, etags: etags}, nil, &results.notModified},
		{scenario{name: "realistic mix, a batch of 1,000 prices committing every second", mix: &mix, batches: true}, nil, &results.batches},
	}
	for _, run := range runs {
		if *run.res, err = measure(ctx, pg, o, dbURL, run.sc, run.env); err != nil {
			return loadResults{}, fmt.Errorf("%s: %w", run.sc.name, err)
		}
	}
	// The limit again after the runs: on a machine shared with other work it moves, and the
	// shares are of the faster of the two.
	after, err := limitRun(ctx, pg, o, dbURL, limitSc, body)
	if err != nil {
		return loadResults{}, err
	}
	results.limit = before
	if after.rps() > before.rps() {
		results.limit = after
	}
	fmt.Fprintln(w, before.row(limitSc.name+", before the runs below", conns, results.limit))
	fmt.Fprintln(w, after.row(limitSc.name+", after them", conns, results.limit))
	for _, run := range runs {
		fmt.Fprintln(w, run.res.row(run.sc.name, conns, results.limit))
	}
	if b := results.batches.batches; len(b) > 0 {
		fmt.Fprintf(w, "\nBatches committed during the last run: %d, median commit %s, max %s.\n", len(b), ms(median(b)), ms(slices.Max(b)))
	}
	fmt.Fprintln(w)
	return results, nil
}

// measure starts the service on dbURL with env, runs sc against it and stops it.
func measure(ctx context.Context, pg *pgserver.Server, o options, dbURL string, sc scenario, env []string) (wrkResult, error) {
	s, err := startService(o, dbURL, append([]string{"LOG_LEVEL=info"}, env...)...)
	if err != nil {
		return wrkResult{}, err
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		return wrkResult{}, err
	}
	res, err := runWrk(ctx, s, pg.Pid(), dbURL, sc, conns, o.duration)
	if stopErr := s.stop(); err == nil {
		err = stopErr
	}
	return res, err
}

// limitRun measures the limit server answering body.
func limitRun(ctx context.Context, pg *pgserver.Server, o options, dbURL string, sc scenario, body []byte) (wrkResult, error) {
	limit, stop, err := startLimit(body)
	if err != nil {
		return wrkResult{}, err
	}
	defer stop()
	res, err := runWrk(ctx, limit, pg.Pid(), dbURL, sc, conns, o.duration)
	if err != nil {
		return wrkResult{}, fmt.Errorf("limit: %w", err)
	}
	return res, nil
}

// answersOf starts the service once and returns the answer to paths[0] and the ETag of each
// path.
func answersOf(o options, dbURL string, paths []string) ([]byte, []string, error) {
	s, err := startService(o, dbURL, "LOG_LEVEL=warn")
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = s.stop() }()
	if err := s.waitReady(60 * time.Second); err != nil {
		return nil, nil, err
	}
	var (
		first []byte
		etags []string
	)
	for i, p := range paths {
		resp, err := http.Get("http://" + s.addr + p)
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: %w", p, err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
			return nil, nil, fmt.Errorf("GET %s: %d with ETag %q, want 200 with one", p, resp.StatusCode, resp.Header.Get("ETag"))
		}
		if i == 0 {
			first = b
		}
		etags = append(etags, resp.Header.Get("ETag"))
	}
	return first, etags, nil
}

// startLimit serves body to every request with net/http in this process: what the wire, the
// kernel and Go's HTTP server allow on this machine, against which the service is measured.
func startLimit(body []byte) (*service, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	return &service{addr: ln.Addr().String()}, func() { _ = srv.Close() }, nil
}

// conns is how many connections wrk keeps open in every load run.
const conns = 64

// realisticScenario is the realistic mix over the routes of mix.
func realisticScenario(mix *ratesmix.Data) scenario {
	return scenario{name: fmt.Sprintf("realistic mix (%d routes with prices, ports and regions, ranges of 1-60 days)", len(mix.Routes)), mix: mix}
}

// loadMix reads the routes of the realistic mix from the database at dbURL.
func loadMix(ctx context.Context, dbURL string) (ratesmix.Data, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return ratesmix.Data{}, err
	}
	defer conn.Close(ctx)
	return ratesmix.Load(ctx, conn)
}

// realisticRun runs the realistic mix alone on the database at dbURL and prints it under
// "GET /rates <where>".
func realisticRun(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, dbURL, where string) (wrkResult, error) {
	mix, err := loadMix(ctx, dbURL)
	if err != nil {
		return wrkResult{}, err
	}
	s, err := startService(o, dbURL, "LOG_LEVEL=info")
	if err != nil {
		return wrkResult{}, err
	}
	defer func() { _ = s.stop() }() // a measurement already failed if this runs early
	if err := s.waitReady(60 * time.Second); err != nil {
		return wrkResult{}, err
	}
	sc := realisticScenario(&mix)
	res, err := runWrk(ctx, s, pg.Pid(), dbURL, sc, conns, o.duration)
	if err != nil {
		return wrkResult{}, err
	}
	fmt.Fprintf(w, "## GET /rates %s\n\n", where)
	fmt.Fprintln(w, resultHeader)
	fmt.Fprintln(w, res.row(sc.name, conns, wrkResult{}))
	fmt.Fprintln(w)
	return res, nil
}

// loadResults are the runs of loadRuns.
type loadResults struct {
	limit, uncached, realistic, cold, repeated, notModified, batches wrkResult
}

// scaleRun seeds a generated dump of many prices and runs the realistic mix on it, comparing
// its p99 with the one measured on the default dump.
func scaleRun(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, small wrkResult) (wrkResult, error) {
	f, err := os.CreateTemp("", "ratesbench-scale-*.sql")
	if err != nil {
		return wrkResult{}, err
	}
	defer os.Remove(f.Name())
	opts := gendump.DefaultOptions()
	opts.Prices = o.scalePrices
	start := time.Now()
	if _, err := gendump.Write(f, opts); err != nil {
		return wrkResult{}, err
	}
	if err := f.Close(); err != nil {
		return wrkResult{}, err
	}
	fmt.Fprintf(w, "## Scale: %d prices\n\nGenerated a dump of %d prices in %s.\n\n", o.scalePrices, o.scalePrices, ms(time.Since(start)))
	dbURL, _, err := seedRun(ctx, w, pg, o, f.Name(), fmt.Sprintf("generated dump of %d prices", o.scalePrices), 1, false)
	if err != nil {
		return wrkResult{}, err
	}
	res, err := realisticRun(ctx, w, pg, o, dbURL, fmt.Sprintf("at %d prices", o.scalePrices))
	if err != nil {
		return wrkResult{}, err
	}
	fmt.Fprintf(w, "p99 at %d prices: %.2f ms, %.2f× the default dump's %.2f ms (target: within 2×).\n\n",
		o.scalePrices, res.P99US/1000, res.P99US/small.P99US, small.P99US/1000)
	return res, nil
}

// ingestRuns loads CSV batches of 100,000 and 1,000,000 prices with `rates ingest` into a
// seeded database on a cluster of its own with fsync and synchronous_commit on (as RDS runs),
// in two shapes: concentrated (300 routes x 28 days, many prices per route-day) and spread
// (random port pairs of the default dump over two years, about one new route-day per row).
// The reference is psql's \copy of the same CSV into CREATE TABLE x (LIKE prices INCLUDING ALL)
// of another seeded database in the same run: the same indexes, no triggers, no checks. A
// second one, for comparison only, gives x the statement trigger price_daily_add() of prices,
// so that the same \copy also writes the batch's price_daily rows: the same structures, without
// lineage, staging or checks.
func ingestRuns(ctx context.Context, w io.Writer, o options) (ingestSummary, error) {
	sum := ingestSummary{spreadRatio: map[int]float64{}}
	pg, err := pgserver.Start(ctx, pgserver.Options{Durable: true})
	if err != nil {
		return sum, err
	}
	defer pg.Close()
	_, ports := gendump.Geography()
	fmt.Fprintln(w, "## Batch ingestion (`rates ingest --file`, or `--manifest` for the parts: process start to exit, one transaction, all or nothing)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "PostgreSQL with fsync=on and synchronous_commit=on (its defaults). Reference: `psql \\copy` of the same CSV into")
	fmt.Fprintln(w, "`CREATE TABLE x (LIKE prices INCLUDING ALL)` (same indexes, no triggers, no checks) in a seeded database of the same run.")
	fmt.Fprintln(w, "For comparison, not a target: the same `psql \\copy` into a copy with `price_daily`'s statement trigger, so that it also writes the")
	fmt.Fprintln(w, "batch's `price_daily` rows (\"+ price_daily\"): the structures the loader writes, without lineage, staging or the loader's checks.")
	fmt.Fprintln(w, "Loader phases from the batch's record (copy = CSV parse and COPY into staging, insert = prices and price_daily).")
	fmt.Fprintln(w, "Each 100,000-row load runs three times, the tools alternating, and shows the median run (min-max); the 1,000,000-row loads run once.")
	fmt.Fprintln(w, "Every run starts after a CHECKPOINT, as a batch meets a database whose earlier writes are on disk.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "WAL is what each run wrote to the write-ahead log (pg_current_wal_lsn before and after): the write work, which CPU contention does not change.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| shape | batch | `rates ingest` | peak RSS | phases copy / validate / insert | WAL | `psql \\copy` | WAL | ratio (time) | ratio (WAL) | `psql \\copy` + price_daily | WAL | ratio (time) |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, shape := range []string{"concentrated", "spread"} {
		for _, rows := range []int{100_000, 1_000_000} {
			csv, err := writeBatch(shape, rows, ports)
			if err != nil {
				return sum, err
			}
			defer os.Remove(csv) //nolint:gocritic // deferInLoop: four files, removed when the runs end
			tools := []string{"rates", "psql", "same"}
			if shape == "spread" && rows == 1_000_000 {
				tools = append(tools, "manifest")
			}
			// The 100,000-row loads take seconds, and this disk's timing varies by a third from
			// one run to the next: three alternating runs each, reported by their median.
			reps := 1
			if rows <= 100_000 {
				reps = 3
			}
			all := map[string][]ingestRun{}
			for rep := range reps {
				for _, tool := range tools {
					run, err := ingestOnce(ctx, pg, o, tool, fmt.Sprintf("ingest_%s_%s_%d_%d", tool, shape, rows, rep), csv, rows)
					if err != nil {
						return sum, err
					}
					all[tool] = append(all[tool], run)
				}
			}
			runs := map[string]ingestRun{}
			for tool, rs := range all {
				runs[tool] = medianRun(rs)
			}
			runs["rates"].row(w, shape, rows, runs["psql"], runs["same"])
			if shape == "spread" {
				sum.spreadRatio[rows] = runs["rates"].took.Seconds() / runs["psql"].took.Seconds()
			}
			for _, tool := range []string{"rates", "manifest"} {
				for _, r := range all[tool] {
					sum.peakRSS = max(sum.peakRSS, r.rss)
				}
			}
			if m, ok := runs["manifest"]; ok {
				m.row(w, fmt.Sprintf("%s, %d parts by manifest (`rates ingest --manifest`)", shape, manifestParts), rows, runs["psql"], runs["same"])
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "The manifest row loads the same 1,000,000 rows as %d CSV parts of a temporary folder: the time includes the checks of every part before the transaction (a first read of all of them) and the load (a second read).\n\n", manifestParts)
	return sum, nil
}

// ingestOnce loads the CSV batch csv (rows of them) with tool into a new database dbName, seeded
// with the default dump: "rates" and "manifest" through rates ingest, "psql" into a copy of
// prices (the target's reference), "same" into that copy with price_daily's trigger.
func ingestOnce(ctx context.Context, pg *pgserver.Server, o options, tool, dbName, csv string, rows int) (ingestRun, error) {
	dbURL, err := pg.CreateDatabase(ctx, dbName)
	if err != nil {
		return ingestRun{}, err
	}
	prep := ratesCmd(o, dbURL, "seed", "--file", o.defaultDump)
	prep.Env = append(prep.Env, "MIGRATE_ON_START=true")
	if out, err := prep.CombinedOutput(); err != nil {
		return ingestRun{}, fmt.Errorf("seed: %w: %s", err, out)
	}
	var cmd *exec.Cmd
	switch tool {
	case "rates":
		cmd = ratesCmd(o, dbURL, "ingest", "--file", csv)
	case "manifest":
		manifest, err := splitBatch(csv, rows, manifestParts)
		if err != nil {
			return ingestRun{}, err
		}
		defer os.RemoveAll(filepath.Dir(manifest))
		cmd = ratesCmd(o, dbURL, "ingest", "--manifest", manifest)
	default:
		create := []string{"-c", "CREATE TABLE x (LIKE prices INCLUDING ALL)"}
		if tool == "same" {
			// prices' own trigger function, with its settings, on the rows the \copy adds.
			create = append(create, "-c", "CREATE TRIGGER x_price_daily AFTER INSERT ON x REFERENCING NEW TABLE AS new_rows"+
				" FOR EACH STATEMENT EXECUTE FUNCTION price_daily_add()")
		}
		if out, err := psqlCmd(pg, dbURL, create...).CombinedOutput(); err != nil {
			return ingestRun{}, fmt.Errorf("create x: %w: %s", err, out)
		}
		cmd = psqlCmd(pg, dbURL, "-c", `\copy x (orig_code, dest_code, day, price) FROM '`+csv+`' WITH (FORMAT csv, HEADER)`)
	}
	lsn, err := checkpoint(ctx, dbURL)
	if err != nil {
		return ingestRun{}, err
	}
	var run ingestRun
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return ingestRun{}, fmt.Errorf("%s: %w: %s", tool, err, out)
	}
	run.took = time.Since(start)
	if run.wal, err = walSince(ctx, dbURL, lsn); err != nil {
		return ingestRun{}, err
	}
	if tool == "rates" || tool == "manifest" {
		run.rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		if run.phases, err = loaderPhases(ctx, dbURL); err != nil {
			return ingestRun{}, err
		}
	}
	return run, nil
}

// medianRun is the run of median time among rs (see median), with the times of all of them.
func medianRun(rs []ingestRun) ingestRun {
	times := make([]time.Duration, len(rs))
	for i, r := range rs {
		times[i] = r.took
	}
	mid := median(times)
	m := rs[slices.IndexFunc(rs, func(r ingestRun) bool { return r.took == mid })]
	m.times = times
	return m
}

// ingestRun is one load of ingestRuns: its time, the WAL it wrote and, for the rates binary,
// its peak RSS (KiB) and the loader's phases.
type ingestRun struct {
	took   time.Duration
	wal    float64
	rss    int64
	phases string
	times  []time.Duration // set by medianRun: the times of the runs took is the median of
}

// timeCell is r's time for a table: with more than one run, the median and the range.
func (r ingestRun) timeCell() string {
	if len(r.times) <= 1 {
		return ms(r.took)
	}
	return spread(r.times)
}

// row prints r's line of the ingestion table, with its ratios to ref, psql's load of the
// same rows into a copy of prices, and its time ratio to same, that load writing the batch's
// price_daily rows too.
func (r ingestRun) row(w io.Writer, label string, rows int, ref, same ingestRun) {
	fmt.Fprintf(w, "| %s | %d rows | %s | %.1f MB | %s | %.0f MB | %s | %.0f MB | %.2f× | %.2f× | %s | %.0f MB | %.2f× |\n", label, rows, r.timeCell(),
		float64(r.rss)/1024, r.phases, r.wal/1e6, ref.timeCell(), ref.wal/1e6, r.took.Seconds()/ref.took.Seconds(), r.wal/ref.wal,
		same.timeCell(), same.wal/1e6, r.took.Seconds()/same.took.Seconds())
}

// manifestParts is how many parts the multi-part run splits its batch into.
const manifestParts = 10

// splitBatch writes the rows of the CSV batch at path (rows of them) as n parts, each with the
// header, and a manifest naming them with their checksums, in a new temporary folder; it
// returns the manifest's path. It streams, so that this process stays small: a child started
// now inherits its peak RSS as its own starting figure.
func splitBatch(path string, rows, n int) (string, error) {
	in, err := os.Open(path) //nolint:gosec // G304: a file this program wrote
	if err != nil {
		return "", err
	}
	defer in.Close()
	sc := bufio.NewScanner(in)
	if !sc.Scan() {
		return "", fmt.Errorf("%s: no header: %w", path, sc.Err())
	}
	header := sc.Text() + "\n"
	dir, err := os.MkdirTemp("", "ratesbench-manifest-")
	if err != nil {
		return "", err
	}
	var man ingest.Manifest
	per := (rows + n - 1) / n
	for i := range n {
		name := fmt.Sprintf("part-%02d.csv", i+1)
		f, err := os.Create(filepath.Join(dir, name)) //nolint:gosec // G304: a file in this program's temporary folder
		if err != nil {
			return "", err
		}
		h := sha256.New()
		bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		_, _ = bw.WriteString(header)
		for j := 0; j < per && sc.Scan(); j++ {
			_, _ = bw.Write(sc.Bytes())
			_ = bw.WriteByte('\n')
		}
		if err := errors.Join(bw.Flush(), f.Close(), sc.Err()); err != nil {
			return "", err
		}
		man.Parts = append(man.Parts, ingest.ManifestPart{Key: name, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	b, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	manifest := filepath.Join(dir, "batch.json")
	return manifest, os.WriteFile(manifest, b, 0o600)
}

// writeBatch writes a price batch of the given shape to a temporary file.
func writeBatch(shape string, rows int, ports []gendump.Port) (string, error) {
	f, err := os.CreateTemp("", "ratesbench-*.csv")
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(uint64(rows), 3))
	// A route joins two distinct ports (domain.DistinctRoute).
	route := func() [2]string {
		for {
			o, d := ports[rng.IntN(len(ports))].Code, ports[rng.IntN(len(ports))].Code
			if o != d {
				return [2]string{o, d}
			}
		}
	}
	routes := make([][2]string, 300)
	for i := range routes {
		routes[i] = route()
	}
	// Days before the dump's month and inside the window of plausible days whenever the bench
	// runs (from 2000-01-01 to a year after today).
	day0 := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintln(bw, "orig_code,dest_code,day,price")
	for range rows {
		if shape == "concentrated" {
			// A month of prices on 300 routes, as a carrier's monthly batch would be.
			r := routes[rng.IntN(len(routes))]
			fmt.Fprintf(bw, "%s,%s,2025-02-%02d,%d\n", r[0], r[1], 1+rng.IntN(28), 300+rng.IntN(3000))
		} else {
			// spread: two years of days; month: the 31 days of the month before the dump's.
			from, days := day0, 730
			if shape == "month" {
				from, days = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), 31
			}
			r := route()
			fmt.Fprintf(bw, "%s,%s,%s,%d\n", r[0], r[1], from.AddDate(0, 0, rng.IntN(days)).Format(time.DateOnly), 300+rng.IntN(3000))
		}
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// checkpoint flushes the cluster's dirty pages and returns the WAL position after it. A batch
// arrives at a database whose earlier writes a checkpoint flushed long ago; without this, the
// seed's pages would be written out during the measured load, or a checkpoint would start
// in the middle of it, in some runs and not in others.
func checkpoint(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return "", fmt.Errorf("read the WAL position: %w", err)
	}
	return lsn, nil
}

func walSince(ctx context.Context, dbURL, lsn string) (float64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var bytes float64
	if err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8", lsn).Scan(&bytes); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return bytes, nil
}

// loaderPhases reads the timings the loader recorded for the last batch.
func loaderPhases(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var c, v, i int64
	if err := conn.QueryRow(ctx, `SELECT coalesce((timings->>'copy_ms')::bigint, 0), coalesce((timings->>'validate_ms')::bigint, 0),
		coalesce((timings->>'insert_ms')::bigint, 0) FROM batches WHERE source_kind = 'file' ORDER BY id DESC LIMIT 1`).Scan(&c, &v, &i); err != nil {
		return "", fmt.Errorf("read the batch's timings: %w", err)
	}
	return fmt.Sprintf("%d / %d / %d ms", c, v, i), nil
}

// processCPU is the user and system time of a process so far, read from /proc; with children,
// also that of its live children and of those it has reaped (PostgreSQL's backends).
func processCPU(pid int, children bool) time.Duration {
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	fields := func(pid int) []string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		_, rest, ok := strings.Cut(string(b), ") ") // the command name may hold spaces
		if !ok {
			return nil
		}
		return strings.Fields(rest)
	}
	sum := func(f []string, idx ...int) time.Duration {
		var t time.Duration
		for _, i := range idx {
			if i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				t += time.Duration(v) * tick
			}
		}
		return t
	}
	// After "pid (comm) ": state 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14.
	f := fields(pid)
	if !children {
		return sum(f, 11, 12)
	}
	total := sum(f, 11, 12, 13, 14)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cf := fields(child); len(cf) > 1 && cf[1] == strconv.Itoa(pid) {
			total += sum(cf, 11, 12)
		}
	}
	return total
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/batchstore"
	"rates/internal/config"
	"rates/internal/ingest"
	"rates/internal/testing/batchtest"
	"rates/internal/testing/gendump"
	"rates/internal/testing/pgserver"
)

// batchOptions choose the multi-part batch runs (section batches, make bench-ingest).
type batchOptions struct {
	rows    int
	parts   int
	shapes  []string // month, spread or concentrated (see writeBatch)
	loaders []int
	// loader is what stages the parts: "driver" (this program with -stage-manifest, through
	// internal/batchstore) or "rates" (rates ingest --manifest M --parallel N --json).
	loader string
	// stageManifest, when set, makes this program the driver: it stages and publishes that
	// manifest on DATABASE_URL with parallel loaders, prints a loadOutcome and exits.
	stageManifest string
	parallel      int
	// settings are the bench cluster's server settings (rdsSettings unless -batch-settings).
	settings []string
	// references: today's loader, psql's \copy and the floors beside the staged loads.
	references bool
}

func addBatchFlags(o *batchOptions) {
	flag.IntVar(&o.rows, "batch-rows", 2_000_000, "section batches: rows of the multi-part batch")
	flag.IntVar(&o.parts, "batch-parts", 8, "section batches: parts of the multi-part batch")
	o.shapes = []string{"month", "spread", "concentrated"}
	flag.Func("batch-shape", "section batches: the batches to measure, comma-separated (default month,spread,concentrated): month (random port pairs over one month), spread (random port pairs over two years), concentrated (300 routes over 28 days)", func(s string) error {
		o.shapes = nil
		for f := range strings.SplitSeq(s, ",") {
			f = strings.TrimSpace(f)
			if f != "month" && f != "spread" && f != "concentrated" {
				return fmt.Errorf("%q: want month, spread or concentrated", f)
			}
			o.shapes = append(o.shapes, f)
		}
		return nil
	})
	flag.Func("batch-loaders", "section batches: loader counts to measure (default 1,2,4)", func(s string) error {
		o.loaders = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("%q is not a loader count", f)
			}
			o.loaders = append(o.loaders, n)
		}
		return nil
	})
	o.loaders = []int{1, 2, 4}
	flag.StringVar(&o.loader, "batch-loader", "rates",
		"section batches: rates (rates ingest --manifest M --parallel N --json, the product; --parallel 1 is its one-transaction load) or driver (this program staging through internal/batchstore, which stages with one loader too)")
	flag.StringVar(&o.stageManifest, "stage-manifest", "", "stage and publish this manifest on DATABASE_URL, print the outcome as JSON (the driver of section batches)")
	flag.IntVar(&o.parallel, "parallel", 1, "loaders of -stage-manifest")
	o.settings = rdsSettings
	flag.BoolVar(&o.references, "batch-references", true, "section batches: also run today's loader, psql's \\copy and the floors (false: the staged loads alone, to compare changes)")
	flag.Func("batch-settings", "section batches: the cluster's server settings, comma-separated name=value (default those of RDS's default parameter group: "+strings.Join(rdsSettings, ",")+"; \"\" for PostgreSQL's own)", func(s string) error {
		o.settings = nil
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				o.settings = append(o.settings, f)
			}
		}
		return nil
	})
}

// shapeLabels describe the shapes of writeBatch.
var shapeLabels = map[string]string{
	"month":        "random port pairs over one month",
	"spread":       "random port pairs over two years",
	"concentrated": "300 routes over 28 days",
}

// loadOutcome is what the loader of a run prints as JSON: the driver, or `rates ingest
// --manifest M --parallel N --json`, which prints these keys.
type loadOutcome struct {
	BatchID          int64  `json:"batch_id"`
	Status           string `json:"status"`
	Rows             int64  `json:"rows"`
	RouteDays        int64  `json:"route_days"`
	StageMS          int64  `json:"stage_ms"`
	PublishMS        int64  `json:"publish_ms"`
	PriceDailyHeldMS int64  `json:"price_daily_held_ms"`
}

// stageDriver stages the parts of the manifest at path, beside it on disk, with parallel
// loaders, publishes the batch and prints its loadOutcome: what `rates ingest --manifest
// --parallel` will do, from internal/batchstore and the CSV parts reader of batchtest.
func stageDriver(ctx context.Context, path string, parallel int) error {
	ing, err := config.LoadIngest(os.LookupEnv)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path) //nolint:gosec // G304: the manifest this program wrote
	if err != nil {
		return err
	}
	m, err := ingest.ParseManifest(data)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	man := batchstore.Manifest{SourceKind: "file", SourceName: path, Mode: string(m.Mode), SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data))}
	for _, p := range m.Parts {
		man.Parts = append(man.Parts, batchstore.PartSpec{Key: p.Key, SHA256: p.SHA256})
	}
	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(parallel) + 1 //nolint:gosec // G115: a handful of loaders
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := batchstore.New(pool, batchstore.Options{MaxErrors: ing.MaxErrorsReported, MaxBatchDuration: ing.MaxBatchDuration, Identity: batchtest.Identity})
	if err != nil {
		return err
	}
	return stageAndPublish(ctx, s, man, filepath.Dir(path), parallel, ing.MaxErrorsReported)
}

func stageAndPublish(ctx context.Context, s *batchstore.Store, man batchstore.Manifest, dir string, parallel, maxErrors int) error {
	reg, err := s.Register(ctx, man)
	if err != nil {
		return err
	}
	start := time.Now()
	staged, err := s.StageParts(ctx, reg.BatchID, parallel, func(_ context.Context, key string) (batchstore.PartRows, error) {
		f, err := os.Open(filepath.Join(dir, key)) //nolint:gosec // G304: a part this program wrote
		if err != nil {
			return nil, err
		}
		return batchtest.NewPart(f, maxErrors), nil
	})
	if err != nil {
		return err
	}
	out := loadOutcome{BatchID: reg.BatchID, Status: string(staged.BatchStatus), StageMS: time.Since(start).Milliseconds()}
	if staged.BatchStatus == batchstore.StatusStaging {
		pub, err := s.Publish(ctx, reg.BatchID)
		if err != nil {
			return err
		}
		out.Status, out.Rows, out.RouteDays = string(pub.Status), pub.Rows, pub.RouteDays
		out.PublishMS, out.PriceDailyHeldMS = pub.Duration.Milliseconds(), pub.PriceDailyHeld.Milliseconds()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// batchRun is one load of batchRuns.
type batchRun struct {
	took   time.Duration
	wal    float64
	rss    int64 // KiB
	out    loadOutcome
	phases string
	waits  string
	// singleTx: the loader loaded the parts in one transaction, without staging.
	singleTx bool
}

// batchRuns loads multi-part batches of each shape asked for (see writeBatch) into seeded
// databases on a cluster of its own with fsync and synchronous_commit on and RDS's default
// settings (rdsSettings): today's `rates ingest --manifest` (every part checked, then one
// transaction), the parts staged by 1, 2 and 4 loaders then published, and psql's \copy of
// the same rows into a copy of prices with the same indexes and price_daily's statement
// trigger; then the database's floors for the same rows (batchFloors). Each runs once: the
// machine's figures are indicative.
func batchRuns(ctx context.Context, w io.Writer, o options) error {
	pg, err := pgserver.Start(ctx, pgserver.Options{Durable: true, Settings: o.batches.settings})
	if err != nil {
		return err
	}
	defer pg.Close()
	for i, shape := range o.batches.shapes {
		if err := batchShape(ctx, w, pg, o, shape, fmt.Sprintf("batches_%d", i)); err != nil {
			return fmt.Errorf("%s: %w", shape, err)
		}
	}
	return nil
}

// batchShape measures the batch of one shape; its databases are named from prefix.
func batchShape(ctx context.Context, w io.Writer, pg *pgserver.Server, o options, shape, prefix string) error {
	_, ports := gendump.Geography()
	csv, err := writeBatch(shape, o.batches.rows, ports)
	if err != nil {
		return err
	}
	defer os.Remove(csv)
	manifest, err := splitBatch(csv, o.batches.rows, o.batches.parts)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(manifest))
	writeBatchHeader(w, o, shape)
	runs := map[string]batchRun{}
	var names []string
	for _, n := range o.batches.loaders {
		names = append(names, strconv.Itoa(n))
	}
	if o.batches.references {
		names = append(append([]string{"today"}, names...), "copy")
	}
	for i, name := range names {
		run, err := batchOnce(ctx, pg, o, name, fmt.Sprintf("%s_%d", prefix, i), csv, manifest)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		runs[name] = run
		run.row(w, name, o.batches.rows)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Wait events of the database's active backends, sampled every 10 ms during each load (average backends per event; CPU = waiting for nothing), and the checkpoints begun during it:")
	fmt.Fprintln(w)
	for _, name := range names {
		fmt.Fprintf(w, "- %s: %s\n", name, runs[name].waits)
	}
	fmt.Fprintln(w)
	var floors batchFloors
	if o.batches.references {
		if floors, err = measureFloors(ctx, pg, o, prefix+"_floors", csv); err != nil {
			return fmt.Errorf("floors: %w", err)
		}
		floors.write(w)
	}
	writeBatchTargets(w, runs, floors)
	return nil
}

func writeBatchHeader(w io.Writer, o options, shape string) {
	fmt.Fprintf(w, "## Multi-part batch staged in parallel (%d rows, %s, in %d parts)\n\n", o.batches.rows, shapeLabels[shape], o.batches.parts)
	fmt.Fprintf(w, "PostgreSQL with fsync=on and synchronous_commit=on, settings %q; each load into a fresh database seeded with the default dump, after a CHECKPOINT; one run each. Load average when the shape started: %s. ", o.batches.settings, loadAverage())
	fmt.Fprintf(w, "Loaders: %s. Wall time is process start to exit; publish is the publish transaction (commit included), and \"held\" the time from its first write to price_daily to the end of its commit. Phases are summed over the parts (copy = CSV parse and COPY into the part's staging table, check, insert into prices, daily = the part's route-day aggregate), then the publish's: the batch's sums, and the upsert of price_daily (without the commit).\n\n", o.batches.loader)
	fmt.Fprintln(w, "| load | wall | rows/s | WAL | publish (held) | route-days | peak RSS | phases copy / check / insert / daily |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
}

func (r batchRun) row(w io.Writer, name string, rows int) {
	label := map[string]string{"today": "`rates ingest --manifest` (today: parts checked, then one transaction)",
		"copy": "`psql \\copy` into a copy of prices + price_daily's trigger"}[name]
	switch {
	case label != "":
	case r.singleTx:
		label = name + " loader(s), parts loaded in one transaction"
	default:
		label = name + " loader(s), parts staged then published"
	}
	publish, rss := "-", "-"
	if r.out.PublishMS > 0 || r.out.PriceDailyHeldMS > 0 {
		publish = fmt.Sprintf("%d ms (%d ms)", r.out.PublishMS, r.out.PriceDailyHeldMS)
	}
	if r.rss > 0 {
		rss = fmt.Sprintf("%.1f MB", float64(r.rss)/1024)
	}
	routeDays := "-"
	if r.out.RouteDays > 0 {
		routeDays = strconv.FormatInt(r.out.RouteDays, 10)
	}
	fmt.Fprintf(w, "| %s | %s | %.0f | %.0f MB | %s | %s | %s | %s |\n", label, ms(r.took), float64(rows)/r.took.Seconds(),
		r.wal/1e6, publish, routeDays, rss, r.phases)
}

// writeBatchTargets compares the runs with the targets of parallel staging, each beside the
// database's floor for the same work when there is one.
func writeBatchTargets(w io.Writer, runs map[string]batchRun, floors batchFloors) {
	line := func(what string, got, target float64, unit string, ok bool) {
		verdict := "met"
		if !ok {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "- %s: %.2f%s (target %.2f%s): %s\n", what, got, unit, target, unit, verdict)
	}
	one, two, four, cp := runs["1"], runs["2"], runs["4"], runs["copy"]
	if one.took > 0 && two.took > 0 {
		line("2 loaders / 1 loader, wall time", two.took.Seconds()/one.took.Seconds(), 0.75, "×", two.took.Seconds() <= 0.75*one.took.Seconds())
		if floors.one > 0 {
			fmt.Fprintf(w, "  - floor (a): two backends / one inserting the same rows: %.2f×\n", floors.two.Seconds()/floors.one.Seconds())
		}
	}
	if two.took > 0 && cp.took > 0 {
		line("2 loaders / `psql \\copy` + price_daily, wall time", two.took.Seconds()/cp.took.Seconds(), 0.9, "×", two.took.Seconds() <= 0.9*cp.took.Seconds())
	}
	if two.took > 0 && four.took > 0 {
		line("4 loaders / 2 loaders, wall time", four.took.Seconds()/two.took.Seconds(), 1, "×", four.took <= two.took)
	}
	var rss int64
	var held int64
	for name := range runs {
		if name != "copy" {
			rss = max(rss, runs[name].rss)
		}
		held = max(held, runs[name].out.PriceDailyHeldMS)
	}
	line("peak RSS of a loader", float64(rss)/1024, 150, " MB", rss < 150*1024)
	line("longest hold of price_daily's rows by a publish", float64(held)/1000, 1, " s", held <= 1000)
	if floors.upsert > 0 {
		fmt.Fprintf(w, "  - floor (b): the upsert of the same %d route-days alone, commit included: %.2f s\n", floors.routeDays, floors.upsert.Seconds())
	}
	fmt.Fprintln(w)
}

// batchOnce seeds a new database dbName with the default dump and loads the batch into it with
// the tool name stands for (see batchRuns).
func batchOnce(ctx context.Context, pg *pgserver.Server, o options, name, dbName, csv, manifest string) (batchRun, error) {
	dbURL, err := pg.CreateDatabase(ctx, dbName)
	if err != nil {
		return batchRun{}, err
	}
	prep := ratesCmd(o, dbURL, "seed", "--file", o.defaultDump)
	prep.Env = append(prep.Env, "MIGRATE_ON_START=true")
	if out, err := prep.CombinedOutput(); err != nil {
		return batchRun{}, fmt.Errorf("seed: %w: %s", err, out)
	}
	cmd, err := batchCmd(pg, o, name, dbURL, csv, manifest)
	if err != nil {
		return batchRun{}, err
	}
	lsn, err := checkpoint(ctx, dbURL)
	if err != nil {
		return batchRun{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var run batchRun
	waits, err := sampleWaits(ctx, dbURL)
	if err != nil {
		return batchRun{}, err
	}
	start := time.Now()
	err = cmd.Run()
	run.took = time.Since(start)
	run.waits, _ = waits.finish(ctx, dbURL)
	if err != nil {
		return batchRun{}, fmt.Errorf("%w: %s%s", err, stdout.String(), stderr.String())
	}
	if run.wal, err = walSince(ctx, dbURL, lsn); err != nil {
		return batchRun{}, err
	}
	if name == "copy" {
		return run, nil
	}
	run.rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	if name == "today" {
		run.phases, err = loaderPhases(ctx, dbURL)
		return run, err
	}
	if err := json.Unmarshal(lastLine(stdout.Bytes()), &run.out); err != nil {
		return batchRun{}, fmt.Errorf("the loader's outcome %q: %w", stdout.String(), err)
	}
	if run.out.Status != string(batchstore.StatusLoaded) {
		return batchRun{}, fmt.Errorf("the batch ended %s: %s", run.out.Status, stdout.String())
	}
	if run.out.PublishMS == 0 && run.out.RouteDays == 0 {
		// `rates ingest --manifest M --parallel 1` loads in today's single transaction.
		run.singleTx = true
		run.phases, err = loaderPhases(ctx, dbURL)
		return run, err
	}
	run.phases, err = partPhases(ctx, dbURL, run.out.BatchID)
	return run, err
}

// batchCmd is the command of one run of batchRuns.
func batchCmd(pg *pgserver.Server, o options, name, dbURL, csv, manifest string) (*exec.Cmd, error) {
	switch name {
	case "today":
		return ratesCmd(o, dbURL, "ingest", "--manifest", manifest), nil
	case "copy":
		create := []string{"-c", "CREATE TABLE x (LIKE prices INCLUDING ALL)", "-c", "CREATE TRIGGER x_price_daily AFTER INSERT ON x" +
			" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_add()"}
		if out, err := psqlCmd(pg, dbURL, create...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("create x: %w: %s", err, out)
		}
		return psqlCmd(pg, dbURL, "-c", `\copy x (orig_code, dest_code, day, price) FROM '`+csv+`' WITH (FORMAT csv, HEADER)`), nil
	}
	if o.batches.loader == "rates" {
		return ratesCmd(o, dbURL, "ingest", "--manifest", manifest, "--parallel", name, "--json"), nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-stage-manifest", manifest, "-parallel", name) //nolint:gosec // G204: this program
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	return cmd, nil
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// partPhases sums the phases the parts of batch id recorded.
func partPhases(ctx context.Context, dbURL string, id int64) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var c, v, i, d, sum, daily int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum((timings->>'copy_ms')::bigint), 0), coalesce(sum((timings->>'check_ms')::bigint), 0),
		coalesce(sum((timings->>'insert_ms')::bigint), 0), coalesce(sum((timings->>'daily_ms')::bigint), 0),
		(SELECT coalesce((timings->>'sum_ms')::bigint, 0) FROM batches WHERE id = $1),
		(SELECT coalesce((timings->>'price_daily_ms')::bigint, 0) FROM batches WHERE id = $1)
		FROM batch_parts WHERE batch_id = $1`, id).Scan(&c, &v, &i, &d, &sum, &daily); err != nil {
		return "", fmt.Errorf("read the parts' timings: %w", err)
	}
	return fmt.Sprintf("%d / %d / %d / %d ms; publish: sums %d ms, price_daily %d ms", c, v, i, d, sum, daily), nil
}

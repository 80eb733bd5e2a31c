package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/config"
	"rates/internal/ingest"
	"rates/internal/ingest/batchapi"
	"rates/internal/ingest/csvbatch"
	"rates/internal/ingest/worker"
	"rates/internal/metrics"
)

// newLoader is the batch loader every entry point shares, reporting to m.
func newLoader(pool *pgxpool.Pool, ing config.Ingest, m *metrics.Metrics, log *slog.Logger) *ingest.Loader {
	return ingest.NewLoader(pool, ingest.LoaderOptions{
		MaxErrors:   ing.MaxErrorsReported,
		MaxDuration: ing.MaxBatchDuration,
		Metrics:     m,
		Limits:      csvbatch.Limits{MaxBytes: ing.MaxUnpackedBytes, MaxLineBytes: ing.MaxLineBytes},
		Days:        ing.DayWindow(),
		Observe: func(res ingest.Result, err error) {
			m.ObserveBatch(err != nil || res.Status == ingest.StatusFailed, res.Status == ingest.StatusDuplicate || res.Replayed,
				res.Status == ingest.StatusRejected, res.Rows, res.Bytes, res.Duration)
		},
	}, log)
}

// uploadPoolConns is the size of POST /batches' own pool: uploads queue for it instead of
// taking connections the read path needs.
const uploadPoolConns = 2

// batchHandler serves /batches on a small pool of its own; it answers 404 while
// INGEST_API_TOKEN is unset (and then opens no pool), and 501 when the database role may not
// load batches, which it logs at start. Uploads in progress when ctx ends get the drain delay
// and three quarters of SHUTDOWN_TIMEOUT to finish, then are rolled back and answered 503, before
// the server gives up on them.
func batchHandler(ctx context.Context, cfg config.Config, ing config.Ingest, m *metrics.Metrics, log *slog.Logger) (http.Handler, func(), error) {
	hcfg := batchapi.Config{Token: ing.APIToken, MaxBytes: ing.MaxBatchBytes, MaxConcurrent: ing.MaxConcurrentUploads,
		Stop: ctx.Done(), StopGrace: cfg.Shutdown.DrainDelay + cfg.Shutdown.Timeout*3/4}
	if ing.APIToken == "" {
		return batchapi.New(nil, hcfg, log), func() {}, nil
	}
	if n, err := batchapi.RemoveStaleSpool(""); err != nil {
		log.Warn("cannot remove every spool file left by an earlier run", "removed", n, "error", err.Error())
	} else if n > 0 {
		log.Info("removed spool files left by an earlier run", "removed", n)
	}
	db := cfg.DB
	db.MaxConns = min(db.MaxConns, uploadPoolConns)
	pool, err := openDB(ctx, db, log.With("pool", "batches"))
	if err != nil {
		return nil, nil, fmt.Errorf("open the pool of POST /batches: %w", err)
	}
	loader := newLoader(pool, ing, m, log)
	if err := loader.CheckPrivileges(ctx); err != nil {
		log.Error("POST /batches is off: INGEST_API_TOKEN is set, but the API cannot load batches", "error", err.Error())
		hcfg.Refused = err.Error()
	}
	return batchapi.New(loader, hcfg, log), pool.Close, nil
}

// workerCmd runs `rates worker`: it loads the batches announced on INGEST_QUEUE_URL until ctx
// ends, then lets the batch in hand finish within SHUTDOWN_TIMEOUT or rolls it back. With
// --check it proves the worker could start, and exits.
func workerCmd(ctx context.Context, cfg config.Config, ing config.Ingest, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "check settings, queue and database access, then exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: rates worker [--check]")
	}
	if ing.QueueURL == "" {
		return errors.New("INGEST_QUEUE_URL: required by rates worker")
	}
	sqsClient, s3Client, err := worker.NewAWSClients(ctx, ing.S3UsePathStyle)
	if err != nil {
		return err
	}
	if *check {
		return workerCheck(ctx, cfg, ing, sqsClient, stdout, log)
	}
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	m := metrics.New(version)
	m.WatchPool(pool)
	stopPublishing := publishMetrics(ctx, cfg.Metrics, m, stderr, log)
	defer stopPublishing()
	stopMetrics, err := serveMetrics(ctx, cfg, m, log)
	if err != nil {
		return err
	}
	defer func() { _ = stopMetrics() }() // the worker's own result is the one to report
	consumer := worker.New(newLoader(pool, ing, m, log), sqsClient, s3Client, worker.Config{
		QueueURL:          ing.QueueURL,
		WaitTime:          ing.WaitTime,
		VisibilityTimeout: ing.VisibilityTimeout,
		ReportsPrefix:     ing.ReportsPrefix,
		ShutdownGrace:     cfg.Shutdown.Timeout,
		RetryDelay:        ing.RetryDelay,
		ReadIdleTimeout:   ing.S3IdleTimeout,
	}, log)
	return consumer.Run(ctx)
}

// workerCheck is what the deploy runs as a one-off task in every environment, including those
// whose worker service runs no task: the image starts, its settings parse, the queue answers
// to the task's credentials, the schema suits this binary and the role may load batches.
func workerCheck(ctx context.Context, cfg config.Config, ing config.Ingest, queue *sqs.Client, stdout io.Writer, log *slog.Logger) error {
	out, err := queue.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(ing.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("worker check: queue %s: %w", ing.QueueURL, err)
	}
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("worker check: %w", err)
	}
	defer pool.Close()
	var user string
	if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
		return fmt.Errorf("worker check: database role: %w", err)
	}
	if err := newLoader(pool, ing, nil, log).CheckPrivileges(ctx); err != nil {
		return fmt.Errorf("worker check: %w: run the migration task, which grants them", err)
	}
	fmt.Fprintf(stdout, "worker check passed: queue %s, database role %s may load batches\n", out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], user)
	return nil
}

// ingestOutput is what `rates ingest --json` prints: one object.
type ingestOutput struct {
	BatchID       int64               `json:"batch_id"`
	Status        ingest.Status       `json:"status"`
	Kind          ingest.DataKind     `json:"kind"`
	Mode          ingest.Mode         `json:"mode"`
	Rows          int64               `json:"rows"`
	DisplacedRows int64               `json:"displaced_rows"`
	SHA256        string              `json:"sha256"`
	RowsDigest    string              `json:"rows_digest"`
	DurationMS    int64               `json:"duration_ms"`
	DisplacedBy   []int64             `json:"displaced_by,omitempty"`
	Error         string              `json:"error,omitempty"`
	BadRows       int64               `json:"bad_rows,omitempty"`
	Errors        []csvbatch.RowError `json:"errors,omitempty"`
	Source        string              `json:"file"`
	// A manifest: the loaders that staged its parts (1: one transaction, none staged), the
	// route-days the publish wrote, the time of the parts and of the publish, how long the
	// publish held price_daily's rows, and whether the run resumed a killed run's batch.
	Parallel         int   `json:"parallel,omitempty"`
	RouteDays        int64 `json:"route_days"`
	StageMS          int64 `json:"stage_ms"`
	PublishMS        int64 `json:"publish_ms"`
	PriceDailyHeldMS int64 `json:"price_daily_held_ms"`
	Resumed          bool  `json:"resumed,omitempty"`
}

// ingestArgs are the flags of `rates ingest`.
type ingestArgs struct {
	file, manifest string
	kind           ingest.DataKind
	mode           ingest.Mode
	asJSON         bool
	parallel       int
}

// maxParallel bounds --parallel: each loader holds a connection for a part at a time.
const maxParallel = 64

func parseIngestArgs(args []string, stderr io.Writer) (ingestArgs, error) {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a ingestArgs
	fs.StringVar(&a.file, "file", "", "CSV batch, plain or gzip")
	fs.StringVar(&a.manifest, "manifest", "", "JSON manifest of a multi-part price batch; its parts' paths are relative to its folder (instead of --file)")
	kindFlag := fs.String("kind", "prices", "what the batch holds: prices (orig_code,dest_code,day,price), ports (code,name,parent_slug) or regions (slug,name,parent_slug)")
	modeFlag := fs.String("mode", "append", "append adds the prices; replace replaces every price on the batch's route-days")
	fs.BoolVar(&a.asJSON, "json", false, "print one JSON object (batch_id, status, rows, ...) instead of a sentence")
	fs.IntVar(&a.parallel, "parallel", 1, "--manifest: stage the parts with this many loaders at once, then publish the batch (1: one transaction)")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if (a.file == "") == (a.manifest == "") || fs.NArg() > 0 {
		return a, errors.New("usage: rates ingest --file PATH [--kind prices|ports|regions] [--mode append|replace] [--json]\n" +
			"       rates ingest --manifest PATH [--parallel N] [--json]")
	}
	if a.manifest != "" && (set["kind"] || set["mode"]) {
		return a, errors.New("ingest --manifest: a multi-part batch holds prices, and its manifest gives its mode: drop --kind and --mode")
	}
	if a.manifest == "" && set["parallel"] {
		return a, errors.New("ingest --parallel: only the parts of a --manifest are staged in parallel")
	}
	if a.parallel < 1 || a.parallel > maxParallel {
		return a, fmt.Errorf("ingest --parallel: %d loaders, want 1 to %d", a.parallel, maxParallel)
	}
	var err error
	if a.kind, err = ingest.ParseDataKind(*kindFlag); err != nil {
		return a, fmt.Errorf("--kind: %w", err)
	}
	if a.mode, err = ingest.ParseMode(*modeFlag); err != nil {
		return a, fmt.Errorf("--mode: %w", err)
	}
	return a, nil
}

// ingestCmd runs `rates ingest --file PATH [--kind K] [--mode M] [--json]`: one batch from a
// local CSV file (gzip or not), or `rates ingest --manifest PATH [--parallel N] [--json]`: a
// multi-part batch whose parts sit beside its manifest. Its rows are its identity, so ingesting
// the same rows again does nothing. A rejected batch prints its report and fails, and so does
// content whose rows later replaces took out (displaced).
func ingestCmd(ctx context.Context, cfg config.Config, ing config.Ingest, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	a, err := parseIngestArgs(args, stderr)
	if err != nil {
		return err
	}
	started := time.Now()
	// path is the batch's file: the CSV, or the manifest of a multi-part batch.
	path := a.file
	if a.manifest != "" {
		path = a.manifest
	}
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the file to load
	if err != nil {
		return fmt.Errorf("ingest %s: %w", path, err)
	}
	defer f.Close()
	// A loader per part in flight, and one for the registration and the publish.
	cfg.DB.MaxConns = max(cfg.DB.MaxConns, int32(a.parallel)+1) //nolint:gosec // G115: bounded by maxParallel
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	src := ingest.FileSource(path)
	src.Data, src.Mode, src.ReceivedAt = a.kind, a.mode, started
	loader := newLoader(pool, ing, nil, log)
	if a.manifest != "" {
		out, err := ingestManifest(ctx, loader, src, f, a.parallel)
		if err != nil {
			return err
		}
		return printIngest(stdout, path, out, a.asJSON)
	}
	res, err := loader.Load(ctx, src, f)
	if err != nil {
		return err
	}
	return printIngest(stdout, path, outputOf(path, res), a.asJSON)
}

// ingestManifest loads the manifest read from f. One loader loads it in one transaction, as a
// single file of all its parts' rows: staging with one loader would add work (the route-day
// aggregate of each part, the publish's sums) and gain no concurrency. More loaders stage its
// parts side by side and publish it. A batch a killed run left staging is resumed either way,
// from the parts it staged.
func ingestManifest(ctx context.Context, loader *ingest.Loader, src ingest.Source, f *os.File, parallel int) (ingestOutput, error) {
	data, err := io.ReadAll(io.LimitReader(f, ingest.MaxManifestBytes+1))
	if err != nil {
		return ingestOutput{}, fmt.Errorf("ingest %s: %w", src.Name, err)
	}
	parts := ingest.FileParts(filepath.Dir(src.Name))
	resume, err := loader.ManifestStaging(ctx, data)
	if err != nil {
		return ingestOutput{}, err
	}
	if parallel == 1 && !resume {
		res, err := loader.LoadManifest(ctx, src, data, parts)
		out := outputOf(src.Name, res)
		out.Parallel, out.StageMS = 1, res.Duration.Milliseconds()
		return out, err
	}
	st, err := loader.StageManifest(ctx, src, data, parts, parallel)
	if err != nil {
		return ingestOutput{}, err
	}
	out := outputOf(src.Name, st.Result)
	out.Parallel, out.RouteDays, out.Resumed = parallel, st.RouteDays, st.Resumed
	out.StageMS, out.PublishMS, out.PriceDailyHeldMS = st.Stage.Milliseconds(), st.Publish.Milliseconds(), st.PriceDailyHeld.Milliseconds()
	return out, nil
}

// outputOf is what `rates ingest` tells of res.
func outputOf(path string, res ingest.Result) ingestOutput {
	out := ingestOutput{BatchID: res.BatchID, Status: res.Status, Kind: res.Source.Data, Mode: res.Source.Mode,
		Rows: res.Rows, DisplacedRows: res.DisplacedRows, SHA256: res.SHA256, RowsDigest: res.RowsDigest,
		DurationMS: res.Duration.Milliseconds(), Source: path, DisplacedBy: res.DisplacedBy}
	switch res.Status {
	case ingest.StatusRejected, ingest.StatusFailed:
		if res.Report != nil {
			out.Error, out.BadRows, out.Errors = res.Report.Message(), res.Report.BadRows, res.Report.Errors
		}
	case ingest.StatusDisplaced:
		out.Error = ingest.DisplacedMessage(res)
	}
	return out
}

// printIngest tells the outcome of `rates ingest`, and returns the error of a batch that did
// not end up in prices.
func printIngest(stdout io.Writer, path string, out ingestOutput, asJSON bool) error {
	var failed error
	switch out.Status {
	case ingest.StatusRejected, ingest.StatusFailed:
		failed = fmt.Errorf("ingest %s: batch %d %s: %s", path, out.BatchID, out.Status, out.Error)
	case ingest.StatusDisplaced:
		failed = fmt.Errorf("ingest %s: %s", path, out.Error)
	}
	switch {
	case asJSON:
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	case out.Status == ingest.StatusRejected || out.Status == ingest.StatusFailed:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(batchapi.BatchRejected{Error: out.Error, BatchID: out.BatchID, BadRows: out.BadRows, Errors: out.Errors}); err != nil {
			return err
		}
	case out.Status == ingest.StatusDisplaced:
		fmt.Fprintf(stdout, "%s: %s\n", path, out.Error)
	case out.Status == ingest.StatusDuplicate:
		fmt.Fprintf(stdout, "%s already loaded as batch %d (%d rows, rows digest %s): nothing to do\n", path, out.BatchID, out.Rows, out.RowsDigest)
	default:
		fmt.Fprintf(stdout, "%s loaded as batch %d (%s, %s): %d rows", path, out.BatchID, out.Kind, out.Mode, out.Rows)
		if out.Mode == ingest.ModeReplace {
			fmt.Fprintf(stdout, ", %d rows replaced", out.DisplacedRows)
		}
		fmt.Fprintf(stdout, " in %s", (time.Duration(out.DurationMS) * time.Millisecond).String())
		if out.Parallel > 1 {
			fmt.Fprintf(stdout, " (%d loaders: parts %d ms, publish %d ms)", out.Parallel, out.StageMS, out.PublishMS)
		}
		fmt.Fprintln(stdout)
	}
	return failed
}

// batchesArgs are the arguments of `rates batches`.
type batchesArgs struct {
	action string
	id     int64
	asJSON bool
	limit  int
}

func parseBatchesArgs(args []string, stderr io.Writer) (batchesArgs, error) {
	const usage = "usage: rates batches list [--limit N] [--json] | show ID [--json] | revert ID [--json]"
	if len(args) == 0 {
		return batchesArgs{}, errors.New(usage)
	}
	a := batchesArgs{action: args[0]}
	args = args[1:]
	fs := flag.NewFlagSet("batches "+a.action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&a.asJSON, "json", false, "print JSON")
	fs.IntVar(&a.limit, "limit", 50, "list: how many batches, newest first")
	// The ID may come before or after the flags.
	if len(args) > 0 && a.action != "list" {
		if n, err := strconv.ParseInt(args[0], 10, 64); err == nil {
			a.id, args = n, args[1:]
		}
	}
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if a.id == 0 && a.action != "list" && fs.NArg() == 1 {
		n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil || n <= 0 {
			return a, fmt.Errorf("batches %s: %q is not a batch id", a.action, fs.Arg(0))
		}
		a.id = n
	} else if fs.NArg() > 0 {
		return a, errors.New(usage)
	}
	switch a.action {
	case "list":
	case "show", "revert":
		if a.id <= 0 {
			return a, errors.New(usage)
		}
	default:
		return a, errors.New(usage)
	}
	return a, nil
}

// batchesCmd runs `rates batches list|show ID|revert ID [--json]`.
func batchesCmd(ctx context.Context, cfg config.Config, ing config.Ingest, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	a, err := parseBatchesArgs(args, stderr)
	if err != nil {
		return err
	}
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := newLoader(pool, ing, nil, log)
	printJSON := func(v any) error {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	switch a.action {
	case "list":
		list, err := l.Batches(ctx, max(a.limit, 1))
		if err != nil {
			return err
		}
		if a.asJSON {
			if list == nil {
				list = []ingest.BatchInfo{}
			}
			return printJSON(list)
		}
		return printBatchList(stdout, list)
	case "show":
		b, err := l.Batch(ctx, a.id)
		if err != nil {
			return err
		}
		if a.asJSON {
			return printJSON(b)
		}
		return printBatch(stdout, b)
	default:
		res, err := l.Revert(ctx, a.id)
		if err != nil {
			return err
		}
		if a.asJSON {
			return printJSON(res)
		}
		fmt.Fprintln(stdout, res.Message)
		return nil
	}
}

// printBatchList prints `rates batches list` as a table.
func printBatchList(stdout io.Writer, list []ingest.BatchInfo) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tMODE\tSTATUS\tROWS\tDISPLACED\tFINISHED\tSOURCE")
	for i := range list {
		b := &list[i]
		status := string(b.Status)
		if b.DuplicateOf != 0 {
			status += " of " + strconv.FormatInt(b.DuplicateOf, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", b.ID, b.Kind, b.Mode, status, b.Rows, b.DisplacedRows,
			b.FinishedAt.UTC().Format(time.RFC3339), b.Source)
	}
	return tw.Flush()
}

// printBatch prints `rates batches show` as a table.
func printBatch(stdout io.Writer, b ingest.BatchInfo) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "batch\t%d\nkind\t%s\nmode\t%s\nstatus\t%s\n", b.ID, b.Kind, b.Mode, b.Status)
	if b.DuplicateOf != 0 {
		fmt.Fprintf(tw, "duplicate of\t%d\n", b.DuplicateOf)
	}
	fmt.Fprintf(tw, "source\t%s (%s)\n", b.Source, b.SourceKind)
	if b.SourceKey != "" {
		fmt.Fprintf(tw, "source key\t%s\n", b.SourceKey)
	}
	if b.RowsDigest != "" {
		fmt.Fprintf(tw, "rows digest\t%s\n", b.RowsDigest)
	}
	fmt.Fprintf(tw, "sha256\t%s\nrows\t%d\nbad rows\t%d\nbytes\t%d\ndisplaced rows\t%d\n", b.SHA256, b.Rows, b.BadRows, b.Bytes, b.DisplacedRows)
	if b.ReceivedAt != nil {
		fmt.Fprintf(tw, "received\t%s\n", b.ReceivedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "started\t%s\nfinished\t%s\nduration\t%d ms\n", b.StartedAt.UTC().Format(time.RFC3339),
		b.FinishedAt.UTC().Format(time.RFC3339), b.DurationMS)
	if b.RevertedAt != nil {
		fmt.Fprintf(tw, "%s\t%s\n", b.Status, b.RevertedAt.UTC().Format(time.RFC3339))
	}
	for _, p := range b.Parts {
		fmt.Fprintf(tw, "part %d\t%s: %s, %d rows, %d attempts\n", p.Part, p.Key, p.Status, p.Rows, p.Attempts)
	}
	if b.Report != nil {
		for _, e := range b.Report.Errors {
			where := ""
			if e.Part != "" {
				where = e.Part + " "
			}
			fmt.Fprintf(tw, "error\t%sline %d %s: %s\n", where, e.Line, e.Column, e.Reason)
		}
	}
	return tw.Flush()
}

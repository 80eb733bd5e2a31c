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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/config"
	"rates/internal/domain"
	"rates/internal/ingest"
	"rates/internal/metrics"
)

// newLoader is the batch loader every entry point shares, reporting to m.
func newLoader(pool *pgxpool.Pool, ing config.Ingest, m *metrics.Metrics, log *slog.Logger) *ingest.Loader {
	return ingest.NewLoader(pool, ingest.LoaderOptions{
		MaxErrors: ing.MaxErrorsReported,
		Observe: func(res ingest.Result, err error) {
			m.ObserveBatch(err != nil, res.Replayed, res.Status == ingest.StatusRejected, res.Rows, res.Bytes, res.Duration)
		},
	}, log)
}

// batchHandler is POST /batches on pool; it answers 404 while INGEST_API_TOKEN is unset.
func batchHandler(pool *pgxpool.Pool, ing config.Ingest, m *metrics.Metrics, log *slog.Logger) http.Handler {
	return ingest.NewBatchHandler(newLoader(pool, ing, m, log), ingest.HandlerConfig{Token: ing.APIToken, MaxBytes: ing.MaxBatchBytes}, log)
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
	sqsClient, s3Client, err := ingest.NewAWSClients(ctx, ing.S3UsePathStyle)
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
	stopMetrics, err := serveMetrics(ctx, cfg, m, log)
	if err != nil {
		return err
	}
	defer func() { _ = stopMetrics() }() // the worker's own result is the one to report
	worker := ingest.NewWorker(newLoader(pool, ing, m, log), sqsClient, s3Client, ingest.WorkerConfig{
		QueueURL:          ing.QueueURL,
		WaitTime:          ing.WaitTime,
		VisibilityTimeout: ing.VisibilityTimeout,
		ReportsPrefix:     ing.ReportsPrefix,
		ShutdownGrace:     cfg.Shutdown.Timeout,
	}, log)
	return worker.Run(ctx)
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
	var canLoad bool
	if err := pool.QueryRow(ctx, `SELECT current_user, has_table_privilege('prices', 'INSERT')
		AND has_table_privilege('batches', 'INSERT') AND has_table_privilege('price_daily', 'UPDATE')`).Scan(&user, &canLoad); err != nil {
		return fmt.Errorf("worker check: database privileges: %w", err)
	}
	if !canLoad {
		return fmt.Errorf("worker check: database role %s may not load batches (INSERT on prices and batches, UPDATE on price_daily): run the migration task, which grants them", user)
	}
	fmt.Fprintf(stdout, "worker check passed: queue %s, database role %s may load batches\n", out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], user)
	return nil
}

// ingestCmd runs `rates ingest --file PATH`: one batch from a local CSV file (gzip or not).
// The file's SHA-256 is its identity, so ingesting the same content again does nothing.
// A rejected batch prints its report as JSON on stdout and fails.
func ingestCmd(ctx context.Context, cfg config.Config, ing config.Ingest, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "CSV batch (orig_code,dest_code,day,price), plain or gzip")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		return errors.New("usage: rates ingest --file PATH")
	}
	sum, err := domain.FileSHA256(*file)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", *file, err)
	}
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	f, err := os.Open(*file)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", *file, err)
	}
	defer f.Close()
	res, err := newLoader(pool, ing, nil, log).Load(ctx, ingest.FileSource(*file, sum), f)
	if err != nil {
		return err
	}
	switch {
	case res.Status == ingest.StatusRejected:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ingest.BatchRejected{
			Error:   ingest.RejectionMessage(res.Report.BadRows),
			BatchID: res.BatchID, BadRows: res.Report.BadRows, Errors: res.Report.Errors,
		}); err != nil {
			return err
		}
		return fmt.Errorf("ingest %s: batch %d: %s", *file, res.BatchID, ingest.RejectionMessage(res.Report.BadRows))
	case res.Replayed:
		fmt.Fprintf(stdout, "%s already loaded as batch %d (%d rows, sha256 %s): nothing to do\n", *file, res.BatchID, res.Rows, sum)
	default:
		fmt.Fprintf(stdout, "%s loaded as batch %d: %d rows in %s\n", *file, res.BatchID, res.Rows, res.Duration.Round(1e6))
	}
	return nil
}

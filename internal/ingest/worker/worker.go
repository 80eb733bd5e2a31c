// Package worker consumes the ingest queue: S3 event notifications of uploaded batches and
// manifests, and the part messages of multi-part batches, each loaded, staged or published
// through ingest.Loader, with a report written back to S3.
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"rates/internal/config"
	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
)

// SQSAPI is the part of the SQS client the worker uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	// SendMessageBatch announces the parts of a multi-part batch on the queue they came from.
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// S3API is the part of the S3 client the worker uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Config tunes a Consumer. Durations sent to SQS are whole seconds.
type Config struct {
	QueueURL string
	// WaitTime is the long-poll wait of each receive (at most 20s).
	WaitTime time.Duration
	// VisibilityTimeout hides a received message; it is renewed every third of it while the
	// batch loads, so only a worker that died leaves a message hidden this long.
	VisibilityTimeout time.Duration
	// ReportsPrefix is where rejected batches' reports go, in the batch's own bucket. Objects
	// under it are never loaded, so a notification rule that covers it cannot loop.
	ReportsPrefix string
	// ShutdownGrace is how long the batch in hand may keep loading once the worker is told to
	// stop; past it the load is rolled back and the message released for another worker.
	ShutdownGrace time.Duration
	// RetryDelay is how long a message that failed stays hidden after its first receive; it
	// doubles with each further receive, up to VisibilityTimeout (INGEST_RETRY_DELAY; 0 means
	// its default).
	RetryDelay time.Duration
	// ReadIdleTimeout fails an attempt whose S3 stream delivers nothing for this long
	// (INGEST_S3_IDLE_TIMEOUT; 0 means its default).
	ReadIdleTimeout time.Duration
}

// Consumer turns S3 event notifications from SQS into loaded batches, and the parts of
// multi-part batches, announced on the same queue, into staged parts and published batches.
type Consumer struct {
	loader *ingest.Loader
	sqs    SQSAPI
	s3     S3API
	cfg    Config
	log    *slog.Logger
}

// New returns a Consumer; call Run.
func New(loader *ingest.Loader, sqsClient SQSAPI, s3Client S3API, cfg Config, log *slog.Logger) *Consumer {
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = config.DefaultRetryDelay
	}
	if cfg.ReadIdleTimeout <= 0 {
		cfg.ReadIdleTimeout = config.DefaultS3IdleTimeout
	}
	if cfg.VisibilityTimeout < time.Second {
		cfg.VisibilityTimeout = time.Second
	}
	cfg.WaitTime = min(max(cfg.WaitTime, 0), 20*time.Second)
	return &Consumer{loader: loader, sqs: sqsClient, s3: s3Client, cfg: cfg, log: log.With("queue", cfg.QueueURL)}
}

// Run receives and processes messages until ctx ends, then returns nil once the message in
// hand is settled: loaded and deleted, or rolled back and released. Meanwhile it sweeps the
// multi-part batches past their deadline.
func (w *Consumer) Run(ctx context.Context) error {
	w.log.Info("worker started", "wait_time", w.cfg.WaitTime.String(), "visibility_timeout", w.cfg.VisibilityTimeout.String())
	var sweeping sync.WaitGroup
	sweeping.Go(func() { w.sweep(ctx) })
	defer sweeping.Wait()
	backoff := time.Second
	for ctx.Err() == nil {
		out, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.cfg.QueueURL),
			// One at a time: a batch keeps the database busy, and messages waiting in a
			// worker's hand would only age; more throughput comes from more workers.
			MaxNumberOfMessages:         1,
			WaitTimeSeconds:             int32(w.cfg.WaitTime / time.Second), //nolint:gosec // G115: config bounds it to 0-20 s
			VisibilityTimeout:           seconds(w.cfg.VisibilityTimeout),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.log.Warn("receive from queue failed, retrying", "retry_in", backoff.String(), "error", err.Error())
			sleep(ctx, backoff)
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		for i, m := range out.Messages {
			if ctx.Err() != nil {
				// Received as shutdown began: hand it straight back.
				for _, rest := range out.Messages[i:] {
					w.setVisibility(ctx, rest, 0)
				}
				break
			}
			if !w.handle(ctx, m) {
				w.waitForDatabase(ctx)
			}
		}
	}
	w.log.Info("worker stopped")
	return nil //nolint:nilerr // a receive error after shutdown began ends the loop cleanly
}

// handle processes one message and settles it; false means it failed and was left for retry.
func (w *Consumer) handle(ctx context.Context, m sqstypes.Message) bool {
	receives, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	log := w.log.With("message_id", aws.ToString(m.MessageId), "receive_count", receives)

	loadCtx, cancelLoad := graceContext(ctx, w.cfg.ShutdownGrace)
	defer cancelLoad()
	stopHeartbeat := w.heartbeat(loadCtx, m, log)
	err := w.process(loadCtx, m, log)
	stopHeartbeat()

	switch {
	case err == nil:
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := w.sqs.DeleteMessage(dctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(w.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			// The message comes back and finds its batches recorded: a no-op.
			log.Warn("delete message failed; it will be redelivered and skipped", "error", err.Error())
		}
		return true
	case errors.Is(err, errPartBusy):
		// Not a failure: the loader settling the part ends it, or dies and leaves it pending.
		log.Info("part busy in another loader; message left for a later delivery", "retry_in", w.cfg.RetryDelay.String())
		w.setVisibility(ctx, m, w.cfg.RetryDelay)
		return true
	case ctx.Err() != nil:
		log.Info("stopping: batch in hand rolled back, message released for another worker", "error", err.Error())
		w.setVisibility(ctx, m, 0)
		return true
	default:
		delay := w.retryDelay(receives)
		log.Error("message failed; left in the queue for retry", "retry_in", delay.String(), "error", err.Error())
		w.setVisibility(ctx, m, delay)
		return false
	}
}

// retryDelay backs off with the receive count, so a lasting fault does not spin through
// maxReceiveCount in seconds.
func (w *Consumer) retryDelay(receives int) time.Duration {
	d := w.cfg.RetryDelay
	for i := 1; i < receives && d < w.cfg.VisibilityTimeout; i++ {
		d *= 2
	}
	return min(d, w.cfg.VisibilityTimeout)
}

func (w *Consumer) setVisibility(ctx context.Context, m sqstypes.Message, d time.Duration) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := w.sqs.ChangeMessageVisibility(cctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(w.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds(d),
	}); err != nil {
		w.log.Warn("change message visibility failed; the message returns when its timeout ends",
			"message_id", aws.ToString(m.MessageId), "error", err.Error())
	}
}

// heartbeat keeps the message hidden while it is processed.
func (w *Consumer) heartbeat(ctx context.Context, m sqstypes.Message, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(w.cfg.VisibilityTimeout/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := w.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(w.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle,
				VisibilityTimeout: seconds(w.cfg.VisibilityTimeout),
			}); err != nil && ctx.Err() == nil {
				// Another worker may get the message; the batch lock makes it wait for this
				// load and then find it recorded.
				log.Warn("extending message visibility failed", "error", err.Error())
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// waitForDatabase holds off receiving after a failure until the database answers, so that an
// outage does not burn through every message's receive count into the dead-letter queue.
func (w *Consumer) waitForDatabase(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.loader.Ping(pctx)
		cancel()
		if err == nil {
			return
		}
		w.log.Warn("database not reachable, not receiving", "retry_in", backoff.String(), "error", err.Error())
		sleep(ctx, backoff)
		backoff = min(backoff*2, 30*time.Second)
	}
}

// process stages the part a part message announces, or loads every object an S3 event
// notification reports. An error leaves the whole message for retry; objects already
// recorded, and parts already settled, are skipped on the next attempt.
func (w *Consumer) process(ctx context.Context, m sqstypes.Message, log *slog.Logger) error {
	msg, isPart, err := parsePartMessage(aws.ToString(m.Body))
	if isPart {
		if err != nil {
			return err
		}
		return w.part(ctx, msg, log.With("batch_id", msg.BatchID, "part", msg.Part))
	}
	refs, err := ParseS3Event(aws.ToString(m.Body))
	if err != nil {
		// Left alone, it reaches the dead-letter queue after maxReceiveCount receives, where
		// someone can look at it.
		return err
	}
	if len(refs) == 0 {
		log.Info("message has no created objects (test event or other event type): deleted")
	}
	for _, ref := range refs {
		if err := w.object(ctx, ref, log); err != nil {
			return fmt.Errorf("s3://%s/%s: %w", ref.Bucket, ref.Key, err)
		}
	}
	return nil
}

func (w *Consumer) object(ctx context.Context, ref ObjectRef, log *slog.Logger) error {
	log = log.With("bucket", ref.Bucket, "key", ref.Key, "version_id", ref.VersionID)
	if strings.HasPrefix(ref.Key, w.cfg.ReportsPrefix) || strings.HasSuffix(ref.Key, "/") {
		log.Info("not a batch (report or folder marker): skipped")
		return nil
	}
	folder := folderOf(ref.Key)
	if folder == PartsFolder {
		log.Info("part of a multi-part batch: loaded with its manifest, not alone")
		return nil
	}
	src := ref.Source()
	res, found, err := w.loader.Find(ctx, src)
	if err != nil {
		return err
	}
	switch {
	case found && res.Status == ingest.StatusStaging:
		// Registered by a delivery that may have died before it announced every part.
		if err := w.announce(ctx, ref, res.RecordID, log); err != nil {
			return err
		}
	case !found && folder == ManifestsFolder:
		var ok bool
		if res, ok, err = w.manifest(ctx, ref, src, log); err != nil || !ok {
			return err
		}
	case !found:
		obj, missing, err := w.getObject(ctx, ref.Bucket, ref.Key, ref.VersionID)
		if err != nil {
			return err
		}
		if missing {
			// Deleted before the worker got to it: retrying cannot help. A report says so,
			// and the message is deleted. (Without s3:ListBucket S3 answers 403 instead,
			// which stays an error: the role grants it on the incoming prefix.)
			log.Warn("object no longer exists: nothing to load, report written")
			return w.writeMissingReport(ctx, ref)
		}
		defer obj.Body.Close()
		if ref.VersionID == "" && ref.ETag != "" && strings.Trim(aws.ToString(obj.ETag), `"`) != strings.Trim(ref.ETag, `"`) {
			// Overwritten since the event: the newer object has an event of its own.
			log.Warn("object was replaced since the event: skipped", "event_etag", ref.ETag, "etag", aws.ToString(obj.ETag))
			return nil
		}
		src.Gzip = strings.EqualFold(aws.ToString(obj.ContentEncoding), "gzip")
		res, err = w.loader.Load(ctx, src, obj.Body)
		if err != nil {
			return err
		}
	}
	switch res.Status {
	case ingest.StatusDuplicate:
		log.Info("batch content already loaded: nothing written", "batch_id", res.BatchID, "rows_digest", res.RowsDigest)
	case ingest.StatusDisplaced:
		// Retrying cannot help: the message is done, and the log says what to do.
		log.Warn("batch content already loaded, but later replaces took some of its rows out: nothing written",
			"batch_id", res.BatchID, "displaced_by", res.DisplacedBy, "advice", ingest.DisplacedMessage(res))
	}
	if res.Status == ingest.StatusRejected || res.Status == ingest.StatusFailed {
		// Written on every delivery, so a report lost to a crash after the commit is redone.
		if res.Report == nil {
			res.Report = &ingest.Report{Errors: []csvbatch.RowError{}}
		}
		if err := w.writeReport(ctx, ref, res); err != nil {
			return err
		}
		log.Warn("batch rejected", "batch_id", res.BatchID, "bad_rows", res.Report.BadRows,
			"report", "s3://"+ref.Bucket+"/"+w.reportKey(ref))
	}
	return nil
}

// getObject reads a version of an object (the newest without a version id). A missing object
// is reported with missing set and no error. The request is held to ReadIdleTimeout from the
// start (idleTimeoutReader): its body, which the caller must close, fails when S3 stops sending.
func (w *Consumer) getObject(ctx context.Context, bucket, key, versionID string) (obj *s3.GetObjectOutput, missing bool, err error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if versionID != "" && versionID != "null" {
		in.VersionId = aws.String(versionID)
	}
	ctx, cancel := context.WithCancel(ctx)
	body := newIdleTimeoutReader(w.cfg.ReadIdleTimeout, cancel)
	obj, err = w.s3.GetObject(ctx, in)
	if !body.answered() {
		if err == nil {
			_ = obj.Body.Close()
		}
		return nil, false, fmt.Errorf("get object: no answer from S3 for %s", w.cfg.ReadIdleTimeout)
	}
	if err != nil {
		cancel()
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NoSuchVersion") {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("get object: %w", err)
	}
	body.r = obj.Body
	obj.Body = body
	return obj, false, nil
}

func (w *Consumer) reportKey(ref ObjectRef) string { return w.cfg.ReportsPrefix + ref.Key + ".json" }

// S3Report is the report object written for a rejected batch.
type S3Report struct {
	BatchID   int64               `json:"batch_id"`
	Bucket    string              `json:"bucket"`
	Key       string              `json:"key"`
	VersionID string              `json:"version_id,omitempty"`
	ETag      string              `json:"etag,omitempty"`
	SHA256    string              `json:"sha256"`
	Status    ingest.Status       `json:"status"`
	Rows      int64               `json:"rows"`
	BadRows   int64               `json:"bad_rows"`
	Errors    []csvbatch.RowError `json:"errors"`
	CheckedAt time.Time           `json:"checked_at"`
}

func (w *Consumer) writeReport(ctx context.Context, ref ObjectRef, res ingest.Result) error {
	body, err := json.MarshalIndent(S3Report{
		BatchID: res.BatchID, Bucket: ref.Bucket, Key: ref.Key, VersionID: ref.VersionID,
		ETag: strings.Trim(ref.ETag, `"`), SHA256: res.SHA256, Status: res.Status, Rows: res.Rows,
		BadRows: res.Report.BadRows, Errors: res.Report.Errors, CheckedAt: res.StartedAt.UTC(),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return w.putReport(ctx, ref, append(body, '\n'))
}

// MissingReport is the report object written for an object that was gone when the worker
// went to read it.
type MissingReport struct {
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	VersionID string    `json:"version_id,omitempty"`
	Status    string    `json:"status"` // "missing"
	Reason    string    `json:"reason"`
	CheckedAt time.Time `json:"checked_at"`
}

func (w *Consumer) writeMissingReport(ctx context.Context, ref ObjectRef) error {
	body, err := json.MarshalIndent(MissingReport{Bucket: ref.Bucket, Key: ref.Key, VersionID: ref.VersionID,
		Status: "missing", Reason: "the object no longer exists: nothing was loaded", CheckedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return w.putReport(ctx, ref, append(body, '\n'))
}

func (w *Consumer) putReport(ctx context.Context, ref ObjectRef, body []byte) error {
	if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(ref.Bucket),
		Key:           aws.String(w.reportKey(ref)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("write report %s: %w", w.reportKey(ref), err)
	}
	return nil
}

// graceContext is cancelled grace after parent ends (at once for grace <= 0): the batch in
// hand gets that long to finish once shutdown begins.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var timer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(parent, func() {
		if grace <= 0 {
			cancel()
			return
		}
		timer.Store(time.AfterFunc(grace, cancel))
	})
	return ctx, func() {
		stop()
		if t := timer.Load(); t != nil {
			t.Stop()
		}
		cancel()
	}
}

// idleTimeoutReader cancels an S3 request that makes no progress for d: from the request until
// S3 starts answering (the SDK's HTTP client sets no deadline for that), then during each read
// of the body; the time between reads is the reader's own. A stalled S3 then fails the attempt
// instead of holding the message, whose visibility the heartbeat renews, for ever. Closing it
// releases the request.
type idleTimeoutReader struct {
	r        io.ReadCloser // the body, once S3 answered
	d        time.Duration
	cancel   context.CancelFunc // of the request
	timer    *time.Timer
	timedOut atomic.Bool
}

// newIdleTimeoutReader starts the clock of a request about to be sent; cancel is its context's.
func newIdleTimeoutReader(d time.Duration, cancel context.CancelFunc) *idleTimeoutReader {
	t := &idleTimeoutReader{d: d, cancel: cancel}
	t.timer = time.AfterFunc(d, func() { t.timedOut.Store(true); cancel() })
	return t
}

// answered stops the clock when S3's answer (or the request's error) is in; false means the
// request was cancelled for taking too long.
func (t *idleTimeoutReader) answered() bool {
	if t.timer.Stop() {
		return true
	}
	t.cancel()
	return false
}

func (t *idleTimeoutReader) Read(p []byte) (int, error) {
	t.timer.Reset(t.d)
	n, err := t.r.Read(p)
	t.timer.Stop()
	if err != nil && t.timedOut.Load() {
		err = fmt.Errorf("no data from S3 for %s: %w", t.d, err)
	}
	return n, err
}

func (t *idleTimeoutReader) Close() error {
	t.timer.Stop()
	defer t.cancel()
	return t.r.Close()
}

// seconds rounds d up to whole seconds; the SQS timeouts it feeds are bounded by config to hours.
func seconds(d time.Duration) int32 { return int32((d + time.Second - 1) / time.Second) } //nolint:gosec // G115: see above

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"rates/internal/batchstore"
	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
)

// A multi-part batch fans out on the queue it arrived on: the worker that receives its
// manifest's S3 event registers the batch and sends one message per part (PartMessage), so that
// the queue's depth, which scales the workers, counts the parts; any worker stages a part it
// receives, and the one that settles the last part publishes the batch before it deletes its
// message.

// PartMessageType and PartMessageVersion mark a part's message. A worker refuses a message of
// another type or version (it stays in the queue for a worker that reads it, and reaches the
// dead-letter queue if none does): a message is never half understood.
const (
	PartMessageType    = "rates.batch-part"
	PartMessageVersion = 1
)

// PartMessage announces one part of a registered multi-part batch to stage.
type PartMessage struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
	BatchID int64  `json:"batch_id"`
	Part    int    `json:"part"`
	// Bucket holds the part (its key is the batch's, by part number) and the manifest, whose
	// key and version name the batch's report.
	Bucket          string `json:"bucket"`
	Manifest        string `json:"manifest"`
	ManifestVersion string `json:"manifest_version,omitempty"`
}

// parsePartMessage reads body as a PartMessage when it is one of this service's messages (it
// has a "type"); ok is false for anything else, an S3 event notification included.
func parsePartMessage(body string) (msg PartMessage, ok bool, err error) {
	var probe struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil || probe.Type == nil {
		return msg, false, nil //nolint:nilerr // not this service's message: the S3 event parser judges it
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		return msg, true, fmt.Errorf("message of type %s: %w", csvbatch.Quote(*probe.Type), err)
	}
	switch {
	case msg.Type != PartMessageType:
		return msg, true, fmt.Errorf("message of unknown type %s: this worker reads %s messages and S3 event notifications",
			csvbatch.Quote(msg.Type), PartMessageType)
	case msg.Version != PartMessageVersion:
		return msg, true, fmt.Errorf("%s message of version %d: this worker reads version %d only; left for a worker that reads it",
			PartMessageType, msg.Version, PartMessageVersion)
	case msg.BatchID <= 0 || msg.Part < 1 || msg.Part > batchstore.MaxParts || msg.Bucket == "" || msg.Manifest == "":
		return msg, true, fmt.Errorf("%s message without a batch, a part from 1 to %d, a bucket or a manifest: %s",
			PartMessageType, batchstore.MaxParts, csvbatch.Quote(body))
	}
	return msg, true, nil
}

// errPartBusy says another loader is settling the part: the message is left for a later
// delivery, which finds it settled (or stages it, if that loader died).
var errPartBusy = errors.New("another loader is settling the part")

// manifest registers the multi-part batch of the manifest at ref and announces its pending
// parts. A manifest delivered again announces the parts still pending again: the worker that
// registered the batch may have died before it sent them all. The result is the batch's
// registration (staging), or the rejection of a manifest that cannot be read; ok is false when
// the object is gone or was replaced since its event (a report or a log line says so).
func (w *Consumer) manifest(ctx context.Context, ref ObjectRef, src ingest.Source, log *slog.Logger) (res ingest.Result, ok bool, err error) {
	obj, missing, err := w.getObject(ctx, ref.Bucket, ref.Key, ref.VersionID)
	if err != nil {
		return ingest.Result{}, false, err
	}
	if missing {
		log.Warn("manifest no longer exists: nothing to load, report written")
		return ingest.Result{}, false, w.writeMissingReport(ctx, ref)
	}
	defer obj.Body.Close()
	if ref.VersionID == "" && ref.ETag != "" && strings.Trim(aws.ToString(obj.ETag), `"`) != strings.Trim(ref.ETag, `"`) {
		log.Warn("manifest was replaced since the event: skipped", "event_etag", ref.ETag, "etag", aws.ToString(obj.ETag))
		return ingest.Result{}, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(obj.Body, ingest.MaxManifestBytes+1))
	if err != nil {
		return ingest.Result{}, false, fmt.Errorf("read manifest: %w", err)
	}
	partsPrefix := partsPrefixOf(ref.Key)
	res, err = w.loader.RegisterManifest(ctx, src, data, func(key string) error {
		if !strings.HasPrefix(key, partsPrefix) || strings.HasSuffix(key, "/") {
			return fmt.Errorf("parts must be objects below %s in the same bucket (any other object there is a batch of its own)", partsPrefix)
		}
		return nil
	})
	if err != nil || res.Status != ingest.StatusStaging {
		return res, err == nil, err
	}
	return res, true, w.announce(ctx, ref, res.BatchID, log)
}

// announce sends a message for every part of batch id still pending, ten to a request.
func (w *Consumer) announce(ctx context.Context, ref ObjectRef, id int64, log *slog.Logger) error {
	parts, err := w.loader.PartStates(ctx, id)
	if err != nil {
		return err
	}
	var pending []int
	for _, p := range parts {
		if p.Status == "pending" {
			pending = append(pending, p.Part)
		}
	}
	for start := 0; start < len(pending); start += 10 {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, 0, 10)
		for _, part := range pending[start:min(start+10, len(pending))] {
			body, err := json.Marshal(PartMessage{Type: PartMessageType, Version: PartMessageVersion, BatchID: id, Part: part,
				Bucket: ref.Bucket, Manifest: ref.Key, ManifestVersion: ref.VersionID})
			if err != nil {
				return fmt.Errorf("encode the message of part %d: %w", part, err)
			}
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String("part-" + strconv.Itoa(part)), MessageBody: aws.String(string(body))})
		}
		out, err := w.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(w.cfg.QueueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("announce the parts of batch %d: %w", id, err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return fmt.Errorf("announce the parts of batch %d: %d of %d messages refused, first %s: %s %s", id, len(out.Failed),
				len(entries), aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	log.Info("multi-part batch announced: one message per pending part", "batch_id", id, "parts", len(pending))
	return nil
}

// part stages the part msg announces and publishes its batch when it was the last one. A
// rejected or failed batch gets its report, on every delivery that finds it so (a report lost
// to a crash is written again).
func (w *Consumer) part(ctx context.Context, msg PartMessage, log *slog.Logger) error {
	open := func(ctx context.Context, key string) (io.ReadCloser, error) {
		obj, missing, err := w.getObject(ctx, msg.Bucket, key, "")
		if missing {
			return nil, fmt.Errorf("no object s3://%s/%s", msg.Bucket, key)
		}
		if err != nil {
			return nil, err
		}
		return obj.Body, nil
	}
	res, err := w.loader.StagePart(ctx, msg.BatchID, msg.Part, open)
	switch {
	case err != nil:
		return err
	case res.Outcome == batchstore.PartBusy:
		return errPartBusy
	case ingest.Ready(res):
		_, err := w.loader.Publish(ctx, msg.BatchID)
		return err
	case res.BatchStatus == batchstore.StatusRejected || res.BatchStatus == batchstore.StatusFailed:
		return w.reportEnded(ctx, ObjectRef{Bucket: msg.Bucket, Key: msg.Manifest, VersionID: msg.ManifestVersion}, msg.BatchID, log)
	}
	return nil
}

// reportEnded writes the report of multi-part batch id, which ended rejected or failed, for
// its manifest at ref.
func (w *Consumer) reportEnded(ctx context.Context, ref ObjectRef, id int64, log *slog.Logger) error {
	res, err := w.loader.Ended(ctx, ingest.Source{}, id)
	if err != nil {
		return err
	}
	if res.Report == nil {
		res.Report = &ingest.Report{Errors: []csvbatch.RowError{}}
	}
	if err := w.writeReport(ctx, ref, res); err != nil {
		return err
	}
	log.Warn("multi-part batch "+string(res.Status), "batch_id", id, "bad_rows", res.Report.BadRows,
		"report", "s3://"+ref.Bucket+"/"+w.reportKey(ref))
	return nil
}

// sweepEvery is how often the worker sweeps: a tenth of the batch deadline, within 1 s and
// 1 min, so that a batch past its deadline ends soon after it.
func sweepEvery(deadline time.Duration) time.Duration {
	return min(max(deadline/10, time.Second), time.Minute)
}

// sweep fails the multi-part batches past their deadline (every worker does, any of them may
// end a batch first), writes the report of those it ended that came from S3, and records the
// age of the oldest batch still staging, until ctx ends.
func (w *Consumer) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery(w.loader.BatchDeadline()))
	defer t.Stop()
	for {
		ended, err := w.loader.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("sweep of the staging batches failed; it runs again", "error", err.Error())
		}
		for _, e := range ended {
			if e.Report == nil {
				continue // another worker ended it
			}
			w.log.Error("multi-part batch failed: parts were not all settled within INGEST_MAX_BATCH_DURATION",
				"batch_id", e.BatchID, "removed_rows", e.RemovedRows, "reason", e.Report.Problems[0].Reason)
			if ref, ok := w.manifestOf(ctx, e.BatchID); ok {
				if err := w.reportEnded(ctx, ref, e.BatchID, w.log); err != nil {
					w.log.Warn("report of a failed batch not written", "batch_id", e.BatchID, "error", err.Error())
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// manifestOf returns the S3 object of the manifest of batch id, when it came from S3.
func (w *Consumer) manifestOf(ctx context.Context, id int64) (ObjectRef, bool) {
	b, err := w.loader.Batch(ctx, id)
	if err != nil || b.SourceKind != ingest.ChannelS3 {
		return ObjectRef{}, false
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(b.Source, "s3://"), "/")
	if !ok {
		return ObjectRef{}, false
	}
	ref := ObjectRef{Bucket: bucket, Key: key}
	if _, query, ok := strings.Cut(b.SourceKey, "?"); ok {
		if v, err := url.ParseQuery(query); err == nil {
			ref.VersionID = v.Get("versionId")
		}
	}
	return ref, true
}

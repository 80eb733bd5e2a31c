package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
)

func manifestOfParts(t *testing.T, parts ...ingest.ManifestPart) []byte {
	t.Helper()
	b, err := json.Marshal(ingest.Manifest{Parts: parts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A worker that registered a multi-part batch died before it announced the parts: the
// manifest's event, delivered again, finds the batch staging and announces its pending parts,
// and the batch is published, once.
func TestWorkerRedeliveredManifestAnnouncesPendingParts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPipeline(t, newDB(t), false)
	part1 := csvOf(csvbatch.Header, "PT001,PT002,2024-07-01,100", "PT001,PT002,2024-07-01,200")
	part2 := csvOf(csvbatch.Header, "PT003,PT004,2024-07-02,40")
	p.upload("incoming/parts/r/a.csv", part1)
	p.upload("incoming/parts/r/b.csv", part2)
	rec := p.upload("incoming/manifests/r.json", manifestOfParts(t,
		ingest.ManifestPart{Key: "incoming/parts/r/a.csv", SHA256: sha(part1)}, ingest.ManifestPart{Key: "incoming/parts/r/b.csv", SHA256: sha(part2)}))
	refs, err := ParseS3Event(event(rec))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := p.read("incoming/manifests/r.json")
	reg, err := p.loader.RegisterManifest(ctx, refs[0].Source(), data, nil)
	if err != nil || reg.Status != ingest.StatusStaging {
		t.Fatalf("register: %+v, %v", reg, err)
	}

	p.start(p.sqs, p.config())
	p.send(event(rec))
	eventually(t, 60*time.Second, "the manifest and its parts processed", p.drained)
	if n := p.count(`SELECT count(*) FROM batches WHERE status = 'loaded' AND id = $1 AND rows = 3`, reg.BatchID); n != 1 {
		t.Fatalf("batch %d is not loaded with its 3 rows: %d", reg.BatchID, p.count(`SELECT count(*) FROM batches`))
	}
	if n := p.count(`SELECT count(*) FROM batches`); n != 1 {
		t.Fatalf("%d batches, want the one registered", n)
	}
}

// A message of this service's type but of a version this worker does not read is never half
// understood: it is left in the queue and lands in the dead-letter queue, and the part it names
// stays pending.
func TestWorkerRefusesPartMessagesOfAnotherVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPipeline(t, newDB(t), false)
	part := csvOf(csvbatch.Header, "PT001,PT002,2024-07-01,100")
	p.upload("incoming/parts/v/a.csv", part)
	rec := p.upload("incoming/manifests/v.json", manifestOfParts(t, ingest.ManifestPart{Key: "incoming/parts/v/a.csv", SHA256: sha(part)}))
	refs, err := ParseS3Event(event(rec))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := p.read("incoming/manifests/v.json")
	reg, err := p.loader.RegisterManifest(ctx, refs[0].Source(), data, nil)
	if err != nil || reg.Status != ingest.StatusStaging {
		t.Fatalf("register: %+v, %v", reg, err)
	}
	p.start(p.sqs, p.config())
	body := fmt.Sprintf(`{"type":"rates.batch-part","version":2,"batch_id":%d,"part":1,"bucket":%q,"manifest":"incoming/manifests/v.json"}`,
		reg.BatchID, p.bucket)
	p.send(body)
	eventually(t, 60*time.Second, "redrive to the dead-letter queue", func() bool { return len(p.fake.Messages(p.dlq)) == 1 })
	if got := p.fake.Messages(p.dlq)[0]; got.Body != body {
		t.Fatalf("dead-letter queue holds %+v, want the message as sent", got)
	}
	if n := p.count(`SELECT count(*) FROM batch_parts WHERE batch_id = $1 AND status = 'pending' AND attempts = 0`, reg.BatchID); n != 1 {
		t.Fatal("the part named by a message of another version was attempted")
	}
}

// Parts whose messages never come (the worker that registered the batch died before it sent
// them, and the manifest is not delivered again): once INGEST_MAX_BATCH_DURATION has passed, a
// worker's sweep fails the batch, removes what was staged and writes its report, naming the
// parts missing.
func TestWorkerSweepFailsABatchPastItsDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPipeline(t, newDB(t), false)
	p.loader = ingest.NewLoader(p.pool, ingest.LoaderOptions{MaxDuration: 2 * time.Second}, testLogger(t))
	part1 := csvOf(csvbatch.Header, "PT001,PT002,2024-08-01,100")
	part2 := csvOf(csvbatch.Header, "PT003,PT004,2024-08-02,40")
	p.upload("incoming/parts/late/a.csv", part1)
	p.upload("incoming/parts/late/b.csv", part2)
	rec := p.upload("incoming/manifests/late.json", manifestOfParts(t,
		ingest.ManifestPart{Key: "incoming/parts/late/a.csv", SHA256: sha(part1)}, ingest.ManifestPart{Key: "incoming/parts/late/b.csv", SHA256: sha(part2)}))
	refs, err := ParseS3Event(event(rec))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := p.read("incoming/manifests/late.json")
	reg, err := p.loader.RegisterManifest(ctx, refs[0].Source(), data, nil)
	if err != nil || reg.Status != ingest.StatusStaging {
		t.Fatalf("register: %+v, %v", reg, err)
	}
	res, err := p.loader.StagePart(ctx, reg.BatchID, 1, func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(part1)), nil
	})
	if err != nil || res.Outcome != "staged" {
		t.Fatalf("stage part 1: %+v, %v", res, err)
	}
	p.start(p.sqs, p.config())
	eventually(t, 60*time.Second, "the batch failed and its report", func() bool {
		return p.count(`SELECT count(*) FROM batches WHERE status = 'failed'`) == 1 && reportExists(p, "reports/incoming/manifests/late.json.json")
	})
	body, _ := p.read("reports/incoming/manifests/late.json.json")
	if !strings.Contains(string(body), `"status": "failed"`) || !strings.Contains(string(body), "incoming/parts/late/b.csv") {
		t.Fatalf("report:\n%s\nwant the batch failed, naming the missing part", body)
	}
	if n := p.count(`SELECT count(*) FROM prices WHERE day = '2024-08-01'`); n != 0 {
		t.Fatalf("%d staged rows left by the failed batch, want none", n)
	}
	if n := p.count(`SELECT count(*) FROM staged_daily`); n != 0 {
		t.Fatalf("%d staged aggregates left by the failed batch, want none", n)
	}
}

func reportExists(p *pipeline, key string) bool {
	_, err := p.s3.HeadObject(context.Background(), headInput(p.bucket, key))
	return err == nil
}

func headInput(bucket, key string) *s3.HeadObjectInput {
	return &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}

package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
)

// The worker path end to end (gofakes3, sqsfake, PostgreSQL): a ports batch under
// incoming/ports/, prices on the new port, the same content re-sent under another key, and a
// correction under incoming/replace/.
func TestWorkerDuplicateReplaceAndReferenceUploads(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), false)
	p.start(p.sqs, p.config())
	p.step("incoming/ports/2026-05-new.csv", csvOf(ingest.PortsHeader, "NEWP1,New port,test_region"))
	prices := csvOf(csvbatch.Header, "NEWP1,PT002,2024-05-01,100", "NEWP1,PT002,2024-05-01,200", "NEWP1,PT002,2024-05-02,300")
	p.step("incoming/daily.csv", prices)
	p.step("incoming/daily-resent.csv", prices)
	p.step("incoming/replace/daily-fix.csv", csvOf(csvbatch.Header, "NEWP1,PT002,2024-05-01,150"))

	type rec struct {
		kind, mode, status string
		rows, displaced    int64
		duplicateOf        *int64
	}
	rows, err := p.pool.Query(context.Background(), `SELECT kind, mode, status, rows, displaced_rows, duplicate_of FROM batches ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.kind, &r.mode, &r.status, &r.rows, &r.displaced, &r.duplicateOf); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if rows.Err() != nil || len(got) != 4 ||
		got[0].kind != "ports" || got[0].status != "loaded" ||
		got[1].kind != "prices" || got[1].status != "loaded" || got[1].rows != 3 ||
		got[2].status != "duplicate" || got[2].duplicateOf == nil || *got[2].duplicateOf != 2 ||
		got[3].mode != "replace" || got[3].status != "loaded" || got[3].displaced != 2 {
		t.Fatalf("batches: %+v (%v)", got, rows.Err())
	}
	if n := p.count(`SELECT count(*) FROM prices WHERE orig_code = 'NEWP1'`); n != 2 {
		t.Fatalf("%d prices on the new port, want 2 (150 on the corrected day, 300 on the other)", n)
	}
	if n := p.count(`SELECT sum(price) FROM prices WHERE orig_code = 'NEWP1' AND day = '2024-05-01'`); n != 150 {
		t.Fatalf("the corrected day sums to %d, want 150", n)
	}
	// The first prices again, after the correction took some of their rows out: nothing is
	// written, the message is done (a retry cannot help), and the answer is displaced, naming
	// the correction, rather than a duplicate as if all of it were in place.
	p.step("incoming/daily-third.csv", prices)
	if n := p.count(`SELECT count(*) FROM batches WHERE status = 'duplicate' AND duplicate_of = 2`); n != 2 {
		t.Fatalf("%d duplicate records of batch 2, want 2", n)
	}
	res, err := p.loader.Load(context.Background(), ingest.FileSource("daily-again.csv"), bytes.NewReader(prices))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ingest.StatusDisplaced || res.BatchID != 2 || len(res.DisplacedBy) != 1 || res.DisplacedBy[0] != 4 {
		t.Fatalf("the first prices re-sent after the correction: %+v, want displaced by batch 4", res)
	}
	if n := p.count(`SELECT count(*) FROM prices WHERE orig_code = 'NEWP1'`); n != 2 {
		t.Fatalf("%d prices on the new port after the re-sends, want 2", n)
	}
	if !p.drained() {
		t.Fatalf("queue %+v, want empty", p.fake.Stats(p.queue))
	}
}

// A load past INGEST_MAX_BATCH_DURATION rolls back; its message becomes visible again, is
// received again, and after maxReceiveCount receives lands in the dead-letter queue.
func TestWorkerLoadPastDeadlineIsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.loader = ingest.NewLoader(p.pool, ingest.LoaderOptions{MaxDuration: time.Second}, testLogger(t))
	release := hold(t, p.pool, "LOCK TABLE prices IN EXCLUSIVE MODE")
	p.send(event(p.upload("incoming/blocked.csv", batchBytes(100, nil))))
	p.start(p.sqs, p.config())
	eventually(t, 60*time.Second, "redrive to the dead-letter queue", func() bool { return len(p.fake.Messages(p.dlq)) == 1 })
	if got := p.fake.Messages(p.dlq)[0]; got.Receives != 3 {
		t.Errorf("dead-letter queue holds %+v, want the message after 3 receives", got)
	}
	release()
	if n := p.count(`SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded, want none", n)
	}
}

// A multi-part batch through the worker (gofakes3, sqsfake, PostgreSQL): the parts' own events
// load nothing; the manifest registers the batch and announces one message per part on the
// queue, whose deliveries stage the parts and publish the batch; a manifest naming an object
// outside the parts folder, or a bad part, is rejected with a report and writes nothing.
func TestWorkerMultiPartBatch(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), false)
	p.start(p.sqs, p.config())
	part1 := csvOf(csvbatch.Header, "PT001,PT002,2024-06-01,100", "PT001,PT002,2024-06-01,200")
	part2 := gzipped(csvOf(csvbatch.Header, "PT001,PT002,2024-06-01,300", "PT003,PT004,2024-06-02,40"))
	p.step("incoming/parts/2024-06-01/a.csv", part1)
	p.step("incoming/parts/2024-06-01/b.csv.gz", part2)
	if n := p.count(`SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded for parts alone, want none", n)
	}
	manifest := func(parts ...ingest.ManifestPart) []byte {
		b, err := json.Marshal(ingest.Manifest{Parts: parts})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := ingest.ManifestPart{Key: "incoming/parts/2024-06-01/a.csv", SHA256: sha(part1)}
	b := ingest.ManifestPart{Key: "incoming/parts/2024-06-01/b.csv.gz", SHA256: sha(gunzip(t, part2))}
	deleted := len(p.fake.Deleted(p.queue))
	p.stepAll("incoming/manifests/2024-06-01.json", manifest(a, b))
	if n := p.count(`SELECT count(*) FROM batches WHERE status = 'loaded' AND rows = 4 AND source_name LIKE '%/incoming/manifests/2024-06-01.json'`); n != 1 {
		t.Fatalf("%d loaded manifest batches of 4 rows, want 1", n)
	}
	if n := p.count(`SELECT count(*) FROM batch_parts p JOIN batches b ON b.id = p.batch_id WHERE b.status = 'loaded' AND p.status = 'staged'`); n != 2 {
		t.Fatalf("%d staged parts of the loaded batch, want 2", n)
	}
	if n := len(p.fake.Deleted(p.queue)) - deleted; n != 3 {
		t.Fatalf("%d messages handled for the manifest, want 3 (its event and one per part)", n)
	}
	if n := p.count(`SELECT sum(price) FROM prices`); n != 640 {
		t.Fatalf("prices sum to %d, want 640", n)
	}

	outside := ingest.ManifestPart{Key: "incoming/daily.csv", SHA256: sha(part1)}
	p.stepAll("incoming/manifests/outside.json", manifest(a, outside))
	bad := csvOf(csvbatch.Header, "PT001,NOPE1,2024-06-03,1")
	p.step("incoming/parts/2024-06-03/bad.csv", bad)
	p.stepAll("incoming/manifests/bad.json", manifest(ingest.ManifestPart{Key: "incoming/parts/2024-06-03/bad.csv", SHA256: sha(bad)}))
	for key, want := range map[string]string{
		"reports/incoming/manifests/outside.json.json": "parts must be objects below incoming/parts/",
		"reports/incoming/manifests/bad.json.json":     `unknown port code \"NOPE1\"`,
	} {
		body, _ := p.read(key)
		if !strings.Contains(string(body), want) || !strings.Contains(string(body), `"status": "rejected"`) {
			t.Fatalf("report %s:\n%s\nwant it to say %s", key, body, want)
		}
	}
	if n := p.count(`SELECT sum(price) FROM prices`); n != 640 {
		t.Fatalf("prices sum to %d after the rejected manifests, want 640", n)
	}
	if !p.drained() {
		t.Fatalf("queue %+v, want empty", p.fake.Stats(p.queue))
	}
}

package ingest

import (
	"context"
	"testing"
	"time"
)

// The worker path end to end (gofakes3, sqsfake, PostgreSQL): a ports batch under
// incoming/ports/, prices on the new port, the same content re-sent under another key, and a
// correction under incoming/replace/.
func TestWorkerDuplicateReplaceAndReferenceUploads(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), false)
	p.start(p.sqs, p.config())
	step := func(key string, data []byte) {
		t.Helper()
		n := len(p.fake.Deleted(p.queue))
		p.send(event(p.upload(key, data)))
		eventually(t, 30*time.Second, key+" processed", func() bool { return len(p.fake.Deleted(p.queue)) == n+1 })
	}
	step("incoming/ports/2026-05-new.csv", csvOf(PortsHeader, "NEWP1,New port,test_region"))
	prices := csvOf(Header, "NEWP1,PT002,2024-05-01,100", "NEWP1,PT002,2024-05-01,200", "NEWP1,PT002,2024-05-02,300")
	step("incoming/daily.csv", prices)
	step("incoming/daily-resent.csv", prices)
	step("incoming/replace/daily-fix.csv", csvOf(Header, "NEWP1,PT002,2024-05-01,150"))

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
	if !p.drained() {
		t.Fatalf("queue %+v, want empty", p.fake.Stats(p.queue))
	}
}

// A load past INGEST_MAX_BATCH_DURATION rolls back; its message becomes visible again, is
// received again, and after maxReceiveCount receives lands in the dead-letter queue.
func TestWorkerLoadPastDeadlineIsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.loader = NewLoader(p.pool, LoaderOptions{MaxDuration: time.Second}, testLogger(t))
	ctx := context.Background()
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE prices IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	p.send(event(p.upload("incoming/blocked.csv", batchBytes(100, nil))))
	p.start(p.sqs, p.config())
	eventually(t, 60*time.Second, "redrive to the dead-letter queue", func() bool { return len(p.fake.Messages(p.dlq)) == 1 })
	if got := p.fake.Messages(p.dlq)[0]; got.Receives != 3 {
		t.Errorf("dead-letter queue holds %+v, want the message after 3 receives", got)
	}
	_ = tx.Rollback(ctx)
	if n := p.count(`SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded, want none", n)
	}
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"rates/internal/ingest"
	"rates/internal/testing/batchtest"
	"rates/internal/testing/pgserver"
)

var (
	e2eRows  = flag.Int("e2e-rows", 200_000, "BenchmarkManifestEndToEnd: rows of the manifest (2000000 for the issue's size)")
	e2eParts = flag.Int("e2e-parts", 8, "BenchmarkManifestEndToEnd: parts of the manifest")
)

// BenchmarkManifestEndToEnd measures a multi-part batch from its manifest's upload to its rows
// in GET /rates of a running API, through the S3 and SQS stand-ins and two `rates worker`
// processes: the parts (rows over random port pairs, as a carrier's tariff) are uploaded first,
// outside the timing; the clock runs from the manifest's upload and event to the first answer
// of GET /rates, polled every 20 ms, that shows a route-day of the batch. Reports rows/s and the
// publish's own figures as the batch recorded them.
func BenchmarkManifestEndToEnd(b *testing.B) {
	ctx := context.Background()
	rows := *e2eRows
	if testing.Short() {
		rows = min(rows, 20_000) // make test runs every benchmark once, to see that it works
	}
	url := pgserver.NewDatabase(b, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	if out, err := ratesCmd(b, env, "seed", "--file", defaultDump); err != nil {
		b.Fatalf("seed: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	ports, err := conn.Query(ctx, `SELECT code FROM ports ORDER BY code`)
	if err != nil {
		b.Fatal(err)
	}
	codes, err := pgx.CollectRows(ports, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	st := newStandIns(b)
	apiEnv := serveEnv(b, url, nil)
	api := startProc(b, apiEnv, "serve")
	api.waitReady(b)
	for range 2 {
		workerEnv := st.workerEnv(url)
		workerEnv["LOG_LEVEL"], workerEnv["INGEST_VISIBILITY_TIMEOUT"] = "warn", "60s"
		startProc(b, workerEnv, "worker")
	}
	day0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var total time.Duration
	b.StopTimer()
	for i := range b.N {
		batch := batchtest.Spread(codes, rows, *e2eParts, uint64(i+1), day0, 365)
		man := ingest.Manifest{}
		for p, data := range batch.Parts {
			key := fmt.Sprintf("incoming/parts/e2e-%d/%s", i, batch.Manifest.Parts[p].Key)
			st.put(ctx, key, data)
			man.Parts = append(man.Parts, ingest.ManifestPart{Key: key, SHA256: batch.Manifest.Parts[p].SHA256})
		}
		data, err := json.Marshal(man)
		if err != nil {
			b.Fatal(err)
		}
		// A route-day of the batch, as GET /rates answers it before the batch.
		first := strings.Split(strings.SplitN(string(batch.Parts[0]), "\n", 3)[1], ",")
		route := fmt.Sprintf("/rates?date_from=%s&date_to=%s&orig_code=%s&dest_code=%s", first[2], first[2], first[0], first[1])
		_, before := get(b, "http://"+apiEnv["HTTP_ADDR"]+route)

		b.StartTimer()
		start := time.Now()
		st.send(ctx, st.event(st.put(ctx, fmt.Sprintf("incoming/manifests/e2e-%d.json", i), data)))
		deadline := start.Add(30 * time.Minute)
		for {
			if status, body := get(b, "http://"+apiEnv["HTTP_ADDR"]+route); status == 200 && body != before {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the batch never showed in GET /rates: queue %+v", st.fake.Stats(st.queue))
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		b.StopTimer()
		total += took
		var sumMS, heldMS, routeDays int64
		var status string
		if err := conn.QueryRow(ctx, `SELECT status, coalesce((timings->>'sum_ms')::bigint, 0),
				coalesce((timings->>'price_daily_ms')::bigint, 0),
				(SELECT coalesce(sum(route_days), 0)::bigint FROM batch_parts p WHERE p.batch_id = b.id)
			FROM batches b WHERE source_name LIKE $1`, fmt.Sprintf("%%/incoming/manifests/e2e-%d.json", i)).Scan(&status, &sumMS, &heldMS, &routeDays); err != nil {
			b.Fatal(err)
		}
		if status != "loaded" {
			b.Fatalf("batch %d ended %s", i, status)
		}
		b.Logf("%d rows in %d parts, 2 workers: %s from the manifest's upload to GET /rates (%.0f rows/s); publish: sums %d ms, price_daily held %d ms; %d route-days staged",
			rows, *e2eParts, took.Round(time.Millisecond), float64(rows)/took.Seconds(), sumMS, heldMS, routeDays)
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
}

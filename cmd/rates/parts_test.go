package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"rates/internal/ingest"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/sqsfake"
)

// partCSV is a part of rows prices on CNSHA -> NLRTM in March 2026, priced from base: parts
// with different bases hold different rows.
func partCSV(rows, base int) []byte {
	var b bytes.Buffer
	b.WriteString("orig_code,dest_code,day,price\n")
	for i := range rows {
		fmt.Fprintf(&b, "CNSHA,NLRTM,2026-03-%02d,%d\n", 1+i%28, base+i%500)
	}
	return b.Bytes()
}

// writeManifest writes parts beside a manifest of mode in dir and returns the manifest's path.
func writeManifest(t *testing.T, dir string, mode ingest.Mode, parts ...[]byte) string {
	t.Helper()
	man := ingest.Manifest{Mode: mode}
	for i, p := range parts {
		name := fmt.Sprintf("part-%d.csv", i+1)
		if err := os.WriteFile(filepath.Join(dir, name), p, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(p)
		man.Parts = append(man.Parts, ingest.ManifestPart{Key: name, SHA256: hex.EncodeToString(sum[:])})
	}
	data, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ingestRun is what `rates ingest --json` printed.
type ingestRun struct {
	BatchID   int64  `json:"batch_id"`
	Status    string `json:"status"`
	Rows      int64  `json:"rows"`
	RouteDays int64  `json:"route_days"`
	Parallel  int    `json:"parallel"`
	Resumed   bool   `json:"resumed"`
	BadRows   int64  `json:"bad_rows"`
	Errors    []struct {
		Line   int64  `json:"line"`
		Column string `json:"column"`
		Reason string `json:"reason"`
		Part   string `json:"part"`
	} `json:"errors"`
}

func ingestInProcess(t *testing.T, env func(string) (string, bool), args ...string) (ingestRun, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"ingest", "--json"}, args...), env, &out, io.Discard)
	var got ingestRun
	if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
		t.Fatalf("rates ingest %v printed %q (%v): %v", args, out.String(), err, jerr)
	}
	return got, err
}

// A bad row in the last part of a manifest staged by two loaders rejects the whole batch: the
// report names the part, the line and the column, and no row of any part is left in prices.
func TestParallelIngestBadRowInLastPartRejectsAll(t *testing.T) {
	url, env := seededDatabase(t)
	db := newDBCheck(t, url)
	before := db.fingerprint()
	bad := append(partCSV(1000, 3000), "CNSHA,NLRTM,2026-03-05,12x\n"...)
	manifest := writeManifest(t, t.TempDir(), ingest.ModeAppend, partCSV(1000, 1000), partCSV(1000, 2000), bad)
	got, err := ingestInProcess(t, env, "--manifest", manifest, "--parallel", "2")
	if err == nil || got.Status != "rejected" || got.BadRows != 1 || len(got.Errors) != 1 ||
		got.Errors[0].Part != "part-3.csv" || got.Errors[0].Line != 1002 || got.Errors[0].Column != "price" {
		t.Fatalf("a bad row in the last part: %+v (%v), want the batch rejected naming part-3.csv line 1002 column price", got, err)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, got.BatchID); n != 0 {
		t.Fatalf("%d rows of the rejected batch left in prices, want none", n)
	}
	if n := db.int(`SELECT count(*) FROM staged_daily WHERE batch_id = $1`, got.BatchID); n != 0 {
		t.Fatalf("%d staged aggregates of the rejected batch left, want none", n)
	}
	if after := db.fingerprint(); after != before {
		t.Fatal("prices or price_daily changed by a rejected batch")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"batches", "show", fmt.Sprint(got.BatchID), "--json"}, env, &out, io.Discard); err != nil {
		t.Fatalf("batches show: %v", err)
	}
	var shown ingest.BatchInfo
	if err := json.Unmarshal(out.Bytes(), &shown); err != nil || len(shown.Parts) != 3 || shown.Parts[2].Status != "bad" ||
		shown.Parts[2].Key != "part-3.csv" || shown.Parts[0].Status != "checked" && shown.Parts[0].Status != "staged" {
		t.Fatalf("batches show of the rejected batch: %+v (%v), want its 3 parts, the last bad", shown.Parts, err)
	}
}

// A replace staged in parts by two loaders, then reverted: the tables are exactly as before.
func TestParallelIngestReplaceThenRevert(t *testing.T) {
	url, env := seededDatabase(t)
	db := newDBCheck(t, url)
	first := writeManifest(t, t.TempDir(), ingest.ModeAppend, partCSV(600, 1000), partCSV(600, 2000))
	if got, err := ingestInProcess(t, env, "--manifest", first, "--parallel", "2"); err != nil || got.Status != "loaded" || got.Rows != 1200 {
		t.Fatalf("first manifest: %+v (%v), want 1200 rows loaded", got, err)
	}
	before := db.fingerprint()
	replace := writeManifest(t, t.TempDir(), ingest.ModeReplace, partCSV(300, 5000), partCSV(300, 6000), partCSV(300, 7000))
	got, err := ingestInProcess(t, env, "--manifest", replace, "--parallel", "3")
	if err != nil || got.Status != "loaded" || got.Rows != 900 || got.Parallel != 3 || got.RouteDays != 28 {
		t.Fatalf("replace manifest: %+v (%v), want 900 rows on 28 route-days loaded by 3 loaders", got, err)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND day BETWEEN '2026-03-01' AND '2026-03-28'`); n != 900 {
		t.Fatalf("%d prices on the replaced route-days, want the replace's 900 only", n)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"batches", "revert", fmt.Sprint(got.BatchID), "--json"}, env, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), `"status": "reverted"`) {
		t.Fatalf("revert of the multi-part replace: %v\n%s", err, out.String())
	}
	if after := db.fingerprint(); after != before {
		t.Fatal("after the revert of a multi-part replace, prices or price_daily differ from before it")
	}
}

// activeWrite reports whether another session is writing rows (COPY or INSERT into prices).
func activeWrite(t *testing.T, conn *pgx.Conn) bool {
	t.Helper()
	var busy bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
		  AND query ~* '^\s*(COPY|INSERT\s+INTO\s+prices)\M')`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	return busy
}

// checkClientsOften makes a backend working for a killed client notice it within 100 ms.
func checkClientsOften(t *testing.T, conn *pgx.Conn, url string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{dbName(url)}.Sanitize()+
		" SET client_connection_check_interval = '100ms'"); err != nil {
		t.Fatal(err)
	}
}

// ratesBody is GET path's body from a freshly started API on url, which has no cached answer.
func ratesBody(t *testing.T, url, path string) string {
	t.Helper()
	env := serveEnv(t, url, nil)
	api := startProc(t, env, "serve")
	api.waitReady(t)
	status, body := get(t, "http://"+env["HTTP_ADDR"]+path)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	_ = api.cmd.Process.Signal(os.Interrupt)
	if err := api.wait(t, 30*time.Second); err != nil {
		t.Fatalf("serve: %v\n%s", err, api.output)
	}
	return body
}

// kill -9 of `rates ingest --manifest --parallel 2` while it stages a part leaves the batch
// staging: its staged rows are invisible through GET /rates of a running API. The next run
// resumes the batch from the parts staged and loads it exactly once.
func TestKilledParallelIngestResumesAndLoadsOnce(t *testing.T) {
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	if out, err := ratesCmd(t, env, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	db := newDBCheck(t, url)
	checkClientsOften(t, db.conn, url)
	const parts, rows = 4, 150_000
	var data [][]byte
	for i := range parts {
		data = append(data, partCSV(rows, 1000*(i+1)))
	}
	manifest := writeManifest(t, t.TempDir(), ingest.ModeAppend, data...)
	const route = "/rates?date_from=2026-03-01&date_to=2026-03-28&orig_code=CNSHA&dest_code=NLRTM"
	before := ratesBody(t, url, route)

	killed := startProc(t, env, "ingest", "--manifest", manifest, "--parallel", "2")
	deadline := time.Now().Add(90 * time.Second)
	for db.int(`SELECT count(*) FROM batch_parts WHERE status = 'staged'`) == 0 || !activeWrite(t, db.conn) {
		if time.Now().After(deadline) {
			t.Fatalf("no part staged while another stages\n%s", killed.output)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := killed.wait(t, 10*time.Second); !errors.As(err, &exitErr) {
		t.Fatalf("killed ingest exited with %v", err)
	}
	waitNoOtherSessions(t, db.conn)
	id := db.int(`SELECT id FROM batches WHERE status = 'staging'`)
	staged := db.int(`SELECT count(*) FROM batch_parts WHERE batch_id = $1 AND status = 'staged'`, id)
	if staged == 0 || staged == parts || db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id) != staged*rows {
		t.Fatalf("after kill -9: %d parts staged, %d rows in prices, want some parts staged, whole",
			staged, db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id))
	}
	if during := ratesBody(t, url, route); during != before {
		t.Fatalf("GET /rates shows staged rows:\nbefore %s\nwith parts staged %s", before, during)
	}

	got, err := ingestJSON(t, env, "--manifest", manifest, "--parallel", "2")
	if err != nil || got["status"] != "loaded" || got["rows"] != float64(parts*rows) || got["batch_id"] != float64(id) || got["resumed"] != true {
		t.Fatalf("the run after the kill: %v (%v), want batch %d resumed and loaded with %d rows", got, err, id, parts*rows)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != parts*rows {
		t.Fatalf("%d rows of the batch in prices, want %d (each part once)", n, parts*rows)
	}
	if n := db.int(`SELECT count(*) FROM batches WHERE source_kind = 'file'`); n != 1 {
		t.Fatalf("%d file batches recorded, want 1", n)
	}
	if after := ratesBody(t, url, route); after == before {
		t.Fatalf("GET /rates does not show the published batch: %s", after)
	}
	again, err := ingestJSON(t, env, "--manifest", manifest)
	if err != nil || again["status"] != "duplicate" || again["batch_id"] != float64(id) {
		t.Fatalf("the manifest once more: %v (%v), want a duplicate of batch %d", again, err, id)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE day BETWEEN '2026-03-01' AND '2026-03-28' AND orig_code = 'CNSHA' AND dest_code = 'NLRTM' AND batch_id = $1`, id); n != parts*rows {
		t.Fatalf("%d rows of the batch after the duplicate, want %d", n, parts*rows)
	}
}

// Worker processes (`rates worker`) share the parts of one multi-part batch through the S3 and
// SQS stand-ins: the first registers the batch from its manifest's event and announces its parts,
// and is killed (kill -9) while it stages one; two more workers take the other parts and the
// dead worker's, which comes back once its visibility ends. The batch is published once, with
// every part staged once.
func TestWorkerProcessesShareThePartsOfABatch(t *testing.T) {
	ctx := context.Background()
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	if out, err := ratesCmd(t, env, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	db := newDBCheck(t, url)
	checkClientsOften(t, db.conn, url)
	st := newStandIns(t)
	const parts, rows = 6, 100_000
	man := ingest.Manifest{}
	for i := range parts {
		data := partCSV(rows, 1000*(i+1))
		key := fmt.Sprintf("incoming/parts/b/part-%d.csv", i+1)
		st.put(ctx, key, data)
		sum := sha256.Sum256(data)
		man.Parts = append(man.Parts, ingest.ManifestPart{Key: key, SHA256: hex.EncodeToString(sum[:])})
	}
	data, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	st.send(ctx, st.event(st.put(ctx, "incoming/manifests/b.json", data)))

	first := startProc(t, st.workerEnv(url), "worker")
	deadline := time.Now().Add(90 * time.Second)
	for !activeWrite(t, db.conn) {
		if time.Now().After(deadline) {
			t.Fatalf("the first worker never staged a part\n%s", first.output)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.wait(t, 10*time.Second)
	if n := db.int(`SELECT count(*) FROM batches WHERE status = 'staging'`); n != 1 {
		t.Fatalf("%d staging batches after the first worker's death, want 1", n)
	}
	others := []*proc{startProc(t, st.workerEnv(url), "worker"), startProc(t, st.workerEnv(url), "worker")}
	deadline = time.Now().Add(180 * time.Second)
	for db.int(`SELECT count(*) FROM batches WHERE status = 'loaded' AND source_kind = 's3'`) != 1 || !st.drained() {
		if time.Now().After(deadline) {
			t.Fatalf("the batch was not published by the other workers: queue %+v\n%s\n%s", st.fake.Stats(st.queue), others[0].output, others[1].output)
		}
		time.Sleep(50 * time.Millisecond)
	}
	id := db.int(`SELECT id FROM batches WHERE status = 'loaded' AND source_kind = 's3'`)
	if n := db.int(`SELECT count(*) FROM prices WHERE batch_id = $1`, id); n != parts*rows {
		t.Fatalf("%d rows of the batch in prices, want %d (each part once)", n, parts*rows)
	}
	if n := db.int(`SELECT count(*) FROM batch_parts WHERE batch_id = $1 AND status = 'staged' AND rows = $2`, id, rows); n != parts {
		t.Fatalf("%d parts staged whole, want %d", n, parts)
	}
	if n := db.int(`SELECT count(*) FROM batch_parts WHERE batch_id = $1 AND attempts > 1`, id); n == 0 {
		t.Fatal("no part was attempted twice: the first worker died between parts, not in one")
	}
	for i, w := range others {
		if !strings.Contains(w.output.String(), `"msg":"part settled"`) {
			t.Errorf("worker %d staged no part:\n%s", i+2, w.output)
		}
		_ = w.cmd.Process.Signal(os.Interrupt)
		if err := w.wait(t, 30*time.Second); err != nil {
			t.Errorf("worker %d exit: %v\n%s", i+2, err, w.output)
		}
	}
	if dead := st.fake.Messages(st.dlq); len(dead) != 0 {
		t.Fatalf("dead-letter queue holds %+v, want nothing", dead)
	}
}

// standIns are the S3 (gofakes3) and SQS (sqsfake) stand-ins `rates worker` talks to.
type standIns struct {
	t          testing.TB
	s3url      string
	fake       *sqsfake.Server
	queue, dlq string
	s3         *s3.Client
	sqs        *sqs.Client
}

const standInBucket = "rates-ingest"

func newStandIns(t testing.TB) *standIns {
	t.Helper()
	s3srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3srv.Close)
	fake := sqsfake.New()
	t.Cleanup(fake.Close)
	dlq, err := fake.CreateQueue("ingest-dlq", sqsfake.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	queue, err := fake.CreateQueue("ingest", sqsfake.QueueOptions{VisibilityTimeout: 3 * time.Second, DeadLetterQueue: "ingest-dlq", MaxReceiveCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	st := &standIns{t: t, s3url: s3srv.URL, fake: fake, queue: queue, dlq: dlq,
		s3:  s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(s3srv.URL), true }),
		sqs: sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(fake.URL()) })}
	if _, err := st.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(standInBucket)}); err != nil {
		t.Fatal(err)
	}
	return st
}

// put uploads an object and returns the event record S3 would send for it.
func (st *standIns) put(ctx context.Context, key string, data []byte) string {
	st.t.Helper()
	out, err := st.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(standInBucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		st.t.Fatal(err)
	}
	return fmt.Sprintf(`{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"%s","eventName":"ObjectCreated:Put",`+
		`"s3":{"bucket":{"name":%q},"object":{"key":%q,"size":%d,"eTag":%q}}}`,
		time.Now().UTC().Format(time.RFC3339Nano), standInBucket, key, len(data), strings.Trim(aws.ToString(out.ETag), `"`))
}

func (st *standIns) event(records ...string) string {
	return `{"Records":[` + strings.Join(records, ",") + `]}`
}

func (st *standIns) send(ctx context.Context, body string) {
	st.t.Helper()
	if _, err := st.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(st.queue), MessageBody: aws.String(body)}); err != nil {
		st.t.Fatal(err)
	}
}

func (st *standIns) drained() bool { return st.fake.Stats(st.queue) == sqsfake.Stats{} }

// workerEnv is the environment of a `rates worker` on url and the stand-ins.
func (st *standIns) workerEnv(url string) map[string]string {
	return map[string]string{
		"DATABASE_URL": url, "LOG_LEVEL": "info", "INGEST_QUEUE_URL": st.queue, "INGEST_WAIT_TIME": "1",
		"INGEST_VISIBILITY_TIMEOUT": "3s", "INGEST_S3_PATH_STYLE": "true",
		"AWS_ENDPOINT_URL_SQS": st.fake.URL(), "AWS_ENDPOINT_URL_S3": st.s3url, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	}
}

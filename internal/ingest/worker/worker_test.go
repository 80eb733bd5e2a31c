package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
	"rates/internal/testing/pgserver"
	"rates/internal/testing/sqsfake"
)

// s3Gate holds back one download of one object: it passes the first `after` bytes, signals
// reached, and then blocks until released (or the client goes away). Later downloads pass.
type s3Gate struct {
	mu      sync.Mutex
	path    string
	after   int
	reached chan struct{}
	open    chan struct{}
	gets    atomic.Int64
}

func (g *s3Gate) arm(bucket, key string, after int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.path, g.after = "/"+bucket+"/"+key, after
	g.reached, g.open = make(chan struct{}), make(chan struct{})
}

func (g *s3Gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		select {
		case <-g.open:
		default:
			close(g.open)
		}
	}
}

func (g *s3Gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("versioning") == "" {
			g.gets.Add(1)
		}
		g.mu.Lock()
		hit := r.Method == http.MethodGet && g.path != "" && r.URL.Path == g.path
		var gw *gatedWriter
		if hit {
			gw = &gatedWriter{ResponseWriter: w, left: g.after, reached: g.reached, open: g.open, done: r.Context().Done()}
			g.path = "" // only the first download is held
		}
		g.mu.Unlock()
		if gw != nil {
			w = gw
		}
		next.ServeHTTP(w, r)
	})
}

type gatedWriter struct {
	http.ResponseWriter
	left    int
	reached chan struct{}
	open    chan struct{}
	done    <-chan struct{}
	held    bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.held || g.left >= len(p) {
		g.left -= len(p)
		return g.ResponseWriter.Write(p)
	}
	n, err := g.ResponseWriter.Write(p[:g.left])
	if err != nil {
		return n, err
	}
	g.ResponseWriter.(http.Flusher).Flush()
	g.held = true
	close(g.reached)
	select {
	case <-g.open:
	case <-g.done:
		return n, errors.New("client went away")
	}
	m, err := g.ResponseWriter.Write(p[g.left:])
	return n + m, err
}

// recordingSQS remembers the visibility changes the worker asks for, and can cut the worker
// off from SQS as a killed process would be.
type recordingSQS struct {
	SQSAPI
	mu      sync.Mutex
	changes []int32
	dead    atomic.Bool
}

var errKilled = errors.New("process killed")

func (r *recordingSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if r.dead.Load() {
		return nil, errKilled
	}
	return r.SQSAPI.ReceiveMessage(ctx, in, opts...)
}

func (r *recordingSQS) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if r.dead.Load() {
		return nil, errKilled
	}
	return r.SQSAPI.DeleteMessage(ctx, in, opts...)
}

func (r *recordingSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if r.dead.Load() {
		return nil, errKilled
	}
	out, err := r.SQSAPI.ChangeMessageVisibility(ctx, in, opts...)
	if err == nil {
		r.mu.Lock()
		r.changes = append(r.changes, in.VisibilityTimeout)
		r.mu.Unlock()
	}
	return out, err
}

func (r *recordingSQS) count(visibility int32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.changes {
		if v == visibility {
			n++
		}
	}
	return n
}

// pipeline is S3 (gofakes3), SQS (sqsfake) and a database, wired as in production but local.
type pipeline struct {
	t      *testing.T
	pool   *pgxpool.Pool
	loader *ingest.Loader
	s3     *s3.Client
	sqs    *sqs.Client
	fake   *sqsfake.Server
	queue  string
	dlq    string
	bucket string
	gate   *s3Gate
}

const testVisibility = 3 * time.Second

func newPipeline(t *testing.T, pool *pgxpool.Pool, versioned bool) *pipeline {
	t.Helper()
	gate := &s3Gate{}
	s3srv := httptest.NewServer(gate.wrap(gofakes3.New(s3mem.New()).Server()))
	t.Cleanup(s3srv.Close)
	fake := sqsfake.New()
	t.Cleanup(fake.Close)
	dlq, err := fake.CreateQueue("ingest-dlq", sqsfake.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	queue, err := fake.CreateQueue("ingest", sqsfake.QueueOptions{VisibilityTimeout: testVisibility, DeadLetterQueue: "ingest-dlq", MaxReceiveCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	p := &pipeline{
		t: t, pool: pool, loader: ingest.NewLoader(pool, ingest.LoaderOptions{}, testLogger(t)),
		s3: s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			o.BaseEndpoint, o.UsePathStyle = aws.String(s3srv.URL), true
		}),
		sqs:  sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(fake.URL()) }),
		fake: fake, queue: queue, dlq: dlq, bucket: "rates-ingest", gate: gate,
	}
	ctx := context.Background()
	if _, err := p.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(p.bucket)}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if _, err := p.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(p.bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// upload puts an object and returns the event record S3 would send for it.
func (p *pipeline) upload(key string, data []byte) string {
	p.t.Helper()
	out, err := p.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(p.bucket), Key: aws.String(key), Body: bytes.NewReader(data),
	})
	if err != nil {
		p.t.Fatal(err)
	}
	// S3 form-encodes keys in events but leaves the slashes.
	encoded := strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
	return record("ObjectCreated:Put", p.bucket, encoded, aws.ToString(out.VersionId), strings.Trim(aws.ToString(out.ETag), `"`), len(data))
}

// read returns the object at key (a report) and its Content-Type, failing the test when there
// is none.
func (p *pipeline) read(key string) (body []byte, contentType string) {
	p.t.Helper()
	obj, err := p.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(key)})
	if err != nil {
		p.t.Fatalf("object %s: %v", key, err)
	}
	defer obj.Body.Close()
	if body, err = io.ReadAll(obj.Body); err != nil {
		p.t.Fatalf("object %s: %v", key, err)
	}
	return body, aws.ToString(obj.ContentType)
}

// step uploads key and sends its event, then waits until the worker has deleted the message.
func (p *pipeline) step(key string, data []byte) {
	p.t.Helper()
	n := len(p.fake.Deleted(p.queue))
	p.send(event(p.upload(key, data)))
	eventually(p.t, 30*time.Second, key+" processed", func() bool { return len(p.fake.Deleted(p.queue)) == n+1 })
}

// stepAll uploads key and sends its event, then waits until the queue is empty: the messages
// the event led to (a manifest's parts) are handled too.
func (p *pipeline) stepAll(key string, data []byte) {
	p.t.Helper()
	p.send(event(p.upload(key, data)))
	eventually(p.t, 60*time.Second, key+" and its parts processed", p.drained)
}

func (p *pipeline) send(body string) {
	p.t.Helper()
	if _, err := p.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(p.queue), MessageBody: aws.String(body)}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pipeline) config() Config {
	return Config{QueueURL: p.queue, WaitTime: time.Second, VisibilityTimeout: testVisibility,
		ReportsPrefix: "reports/", RetryDelay: time.Second}
}

// start runs a worker until the returned stop is called; stop waits for Run to return.
func (p *pipeline) start(sqsClient SQSAPI, cfg Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	w := New(p.loader, sqsClient, p.s3, cfg, testLogger(p.t))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				p.t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			p.t.Error("worker did not stop within 30s")
		}
	}
	p.t.Cleanup(stop)
	return stop
}

// waitForCopy waits until the batch is streaming into the staging table.
func (p *pipeline) waitForCopy() {
	p.t.Helper()
	eventually(p.t, 10*time.Second, "COPY in progress", func() bool {
		return p.count(`SELECT count(*) FROM pg_stat_progress_copy WHERE datname = current_database()`) == 1
	})
}

// drained reports whether the queue holds nothing, visible or in flight.
func (p *pipeline) drained() bool { return p.fake.Stats(p.queue) == sqsfake.Stats{} }

func (p *pipeline) count(sql string, args ...any) int64 {
	p.t.Helper()
	var n int64
	if err := p.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

func TestWorkerLoadsUploadedBatchesOnce(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	recA := p.upload("incoming/May prices.csv", batchBytes(3000, nil))
	recB := p.upload("incoming/2024/b+c.csv.gz", gzipped(batchBytes(2000, nil)))
	p.send(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-01T10:00:00.000Z","Bucket":"rates-ingest"}`)
	p.send(event(recA, recB))

	p.start(p.sqs, p.config())
	eventually(t, 30*time.Second, "both messages deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 2 })
	if n := countPrices(t, p.pool); n != 5000 {
		t.Fatalf("prices holds %d rows, want 5000", n)
	}
	if n := p.count(`SELECT count(*) FROM batches WHERE status = 'loaded' AND source_kind = 's3'
		AND source_name IN ('s3://rates-ingest/incoming/May prices.csv', 's3://rates-ingest/incoming/2024/b+c.csv.gz')`); n != 2 {
		t.Fatalf("%d batches recorded for the two objects, want 2", n)
	}

	// S3 may deliver an event twice: the second delivery adds nothing and downloads nothing.
	gets := p.gate.gets.Load()
	p.send(event(recA, recB))
	eventually(t, 30*time.Second, "the redelivered message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 3 })
	if n := countPrices(t, p.pool); n != 5000 {
		t.Fatalf("prices holds %d rows after a redelivery, want 5000", n)
	}
	if got := p.gate.gets.Load(); got != gets {
		t.Errorf("the redelivery downloaded %d objects again", got-gets)
	}
	if !p.drained() || len(p.fake.Messages(p.dlq)) != 0 {
		t.Errorf("queue %+v, dead-letter queue %d messages; want both empty", p.fake.Stats(p.queue), len(p.fake.Messages(p.dlq)))
	}
}

func TestWorkerOverwrittenObjectInUnversionedBucketIsANewBatch(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), false)
	p.start(p.sqs, p.config())
	p.send(event(p.upload("incoming/daily.csv", batchBytes(100, nil))))
	eventually(t, 30*time.Second, "first message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	p.send(event(p.upload("incoming/daily.csv", batchBytes(150, nil))))
	eventually(t, 30*time.Second, "second message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 2 })
	if n := countPrices(t, p.pool); n != 250 {
		t.Fatalf("prices holds %d rows, want 250 (both versions)", n)
	}
}

func TestWorkerRejectsBadBatchAndWritesReport(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	const badLine = 12_345
	p.send(event(p.upload("incoming/bad batch.csv", batchBytes(20_000, map[int]string{badLine: "PT001,PT002,2024-13-01,100"}))))
	p.start(p.sqs, p.config())
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })

	if n := countPrices(t, p.pool); n != 0 {
		t.Fatalf("prices holds %d rows of a rejected batch", n)
	}
	if n := p.count(`SELECT count(*) FROM batches WHERE status = 'rejected' AND bad_rows = 1`); n != 1 {
		t.Fatalf("%d rejected batches recorded, want 1", n)
	}
	var report S3Report
	body, contentType := p.read("reports/incoming/bad batch.csv.json")
	if err := json.Unmarshal(body, &report); err != nil {
		t.Fatal(err)
	}
	want := csvbatch.RowError{Line: badLine, Column: "day", Reason: `"2024-13-01" is not a real date`}
	if report.Status != ingest.StatusRejected || report.BadRows != 1 || report.Rows != 20_000 || len(report.Errors) != 1 ||
		report.Errors[0] != want || report.Key != "incoming/bad batch.csv" || report.VersionID == "" || len(report.SHA256) != 64 {
		t.Fatalf("report = %+v, want the bad line %+v", report, want)
	}
	if contentType != "application/json" {
		t.Errorf("report Content-Type = %q", contentType)
	}
}

func TestWorkerKilledMidBatchLeavesNothingAndRetryLoadsOnce(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	const rows = 100_000
	p.gate.arm(p.bucket, "incoming/big.csv", 1<<20)
	p.send(event(p.upload("incoming/big.csv", batchBytes(rows, nil))))

	// The first worker dies mid-COPY: its context ends and nothing it does reaches SQS any
	// more, as if the process had been killed.
	killed := &recordingSQS{SQSAPI: p.sqs}
	stop := p.start(killed, p.config())
	<-p.gate.reached
	p.waitForCopy()
	killed.dead.Store(true)
	stop()
	p.gate.release()
	if n := countPrices(t, p.pool); n != 0 {
		t.Fatalf("prices holds %d rows after the worker died mid-batch", n)
	}
	if n := p.count(`SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded by the dead worker", n)
	}
	if st := p.fake.Stats(p.queue); st.InFlight != 1 {
		t.Fatalf("queue %+v: the message should be in flight until its visibility timeout ends", st)
	}

	// A new worker gets the message once its visibility timeout runs out, and loads it once.
	p.start(p.sqs, p.config())
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if d := p.fake.Deleted(p.queue); d[0].Receives != 2 {
		t.Errorf("message deleted after %d receives, want 2", d[0].Receives)
	}
	if n := countPrices(t, p.pool); n != rows {
		t.Fatalf("prices holds %d rows, want %d", n, rows)
	}
	if n := p.count(`SELECT count(*) FROM batches`); n != 1 {
		t.Fatalf("%d batches recorded, want 1", n)
	}
}

func TestWorkerShutdownRollsBackAndReleasesMessage(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.gate.arm(p.bucket, "incoming/big.csv", 256<<10)
	p.send(event(p.upload("incoming/big.csv", batchBytes(30_000, nil))))

	cfg := p.config()
	cfg.VisibilityTimeout = time.Hour // only an explicit release brings it back quickly
	rec := &recordingSQS{SQSAPI: p.sqs}
	stop := p.start(rec, cfg)
	<-p.gate.reached
	p.waitForCopy()
	stop() // SIGTERM with no grace: roll back, hand the message back
	p.gate.release()
	if n := countPrices(t, p.pool); n != 0 {
		t.Fatalf("prices holds %d rows after shutdown mid-batch", n)
	}
	if rec.count(0) != 1 {
		t.Fatalf("visibility changes %v: the message was not released", rec.changes)
	}
	p.start(p.sqs, cfg)
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if n := countPrices(t, p.pool); n != 30_000 {
		t.Fatalf("prices holds %d rows, want 30000", n)
	}
}

func TestWorkerShutdownGraceLetsTheBatchFinish(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.gate.arm(p.bucket, "incoming/big.csv", 256<<10)
	p.send(event(p.upload("incoming/big.csv", batchBytes(30_000, nil))))
	cfg := p.config()
	cfg.ShutdownGrace = time.Minute
	stop := p.start(p.sqs, cfg)
	<-p.gate.reached
	p.waitForCopy()
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	p.gate.release()
	<-stopped
	if n := countPrices(t, p.pool); n != 30_000 {
		t.Fatalf("prices holds %d rows, want the batch finished during the grace period", n)
	}
	if d := p.fake.Deleted(p.queue); len(d) != 1 {
		t.Fatalf("deleted %+v, want the message deleted", d)
	}
}

func TestWorkerExtendsVisibilityWhileLoading(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.gate.arm(p.bucket, "incoming/slow.csv", 64<<10)
	p.send(event(p.upload("incoming/slow.csv", batchBytes(20_000, nil))))
	cfg := p.config()
	cfg.VisibilityTimeout = time.Second
	rec := &recordingSQS{SQSAPI: p.sqs}
	p.start(rec, cfg)
	<-p.gate.reached
	// Held well past the 1s visibility timeout, the message stays hidden from other consumers.
	eventually(t, 20*time.Second, "heartbeats", func() bool { return rec.count(1) >= 6 })
	if st := p.fake.Stats(p.queue); st != (sqsfake.Stats{InFlight: 1}) {
		t.Fatalf("queue %+v while the batch loads, want the message in flight", st)
	}
	p.gate.release()
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if d := p.fake.Deleted(p.queue); d[0].Receives != 1 {
		t.Errorf("message received %d times, want once", d[0].Receives)
	}
	if n := countPrices(t, p.pool); n != 20_000 {
		t.Fatalf("prices holds %d rows, want 20000", n)
	}
}

func TestWorkerRetriesStalledDownload(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.gate.arm(p.bucket, "incoming/stall.csv", 64<<10) // never released: the download stalls
	p.send(event(p.upload("incoming/stall.csv", batchBytes(10_000, nil))))
	cfg := p.config()
	cfg.ReadIdleTimeout = 300 * time.Millisecond
	p.start(p.sqs, cfg)
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if d := p.fake.Deleted(p.queue); d[0].Receives != 2 {
		t.Errorf("message deleted after %d receives, want 2 (a stall, then success)", d[0].Receives)
	}
	if n := countPrices(t, p.pool); n != 10_000 {
		t.Fatalf("prices holds %d rows, want 10000", n)
	}
}

// S3 accepts the worker's first GET of the object and never answers it. The SDK's HTTP client
// sets no deadline for the response headers, so without one of the worker's own it would wait
// for ever, its heartbeat keeping the message from every other worker. The attempt fails after
// ReadIdleTimeout and is retried, as a stalled download is (TestWorkerRetriesStalledDownload).
func TestWorkerRetriesGetObjectThatNeverAnswers(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.loader = ingest.NewLoader(p.pool, ingest.LoaderOptions{MaxDuration: 2 * time.Second}, testLogger(t))
	const key = "incoming/stall-headers.csv"
	p.send(event(p.upload(key, batchBytes(100, nil))))

	target, err := url.Parse(aws.ToString(p.s3.Options().BaseEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	unblock := make(chan struct{})
	var stalled atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/"+p.bucket+"/"+key && stalled.CompareAndSwap(false, true) {
			select { // the first GET of the object gets no answer at all
			case <-r.Context().Done():
			case <-unblock:
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Cleanup(func() { close(unblock) })
	p.s3 = s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
		func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(front.URL), true })

	cfg := p.config()
	cfg.ReadIdleTimeout = 300 * time.Millisecond
	p.start(p.sqs, cfg)
	eventually(t, 20*time.Second, "message deleted after a retry", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if n := countPrices(t, p.pool); n != 100 {
		t.Fatalf("prices holds %d rows, want 100", n)
	}
}

func TestWorkerSendsUnreadableMessageToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), true)
	p.send("this is not an S3 event")
	p.start(p.sqs, p.config())
	eventually(t, 30*time.Second, "redrive to the dead-letter queue", func() bool { return len(p.fake.Messages(p.dlq)) == 1 })
	if got := p.fake.Messages(p.dlq)[0]; got.Body != "this is not an S3 event" || got.Receives != 3 {
		t.Errorf("dead-letter queue holds %+v, want the message after 3 receives", got)
	}
	if !p.drained() {
		t.Errorf("queue %+v, want empty", p.fake.Stats(p.queue))
	}
}

func TestWorkerSkipsReportsAndMissingObjects(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, newDB(t), false)
	p.send(event(
		record("ObjectCreated:Put", p.bucket, "reports/incoming/x.csv.json", "", "e", 10),
		record("ObjectCreated:Put", p.bucket, "incoming/", "", "e", 0),
		record("ObjectCreated:Put", p.bucket, "incoming/deleted-before-processing.csv", "", "e", 10),
	))
	p.start(p.sqs, p.config())
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if n := p.count(`SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded, want none", n)
	}
	// The missing object gets a report saying so; the message was deleted, not retried.
	var rep MissingReport
	body, _ := p.read("reports/incoming/deleted-before-processing.csv.json")
	if err := json.Unmarshal(body, &rep); err != nil || rep.Status != "missing" || rep.Key != "incoming/deleted-before-processing.csv" {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if p.fake.Stats(p.dlq) != (sqsfake.Stats{}) {
		t.Fatalf("dead-letter queue %+v, want empty", p.fake.Stats(p.dlq))
	}
}

// TestWorkerDatabaseDownDuringBatch stops PostgreSQL while a batch is being copied. The
// attempt fails, the worker stops receiving until the database is back, and the retry loads
// the batch once. It has a cluster of its own, since stopping the shared one would break the
// other tests.
func TestWorkerDatabaseDownDuringBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	own, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Close() })
	url, err := own.CreateDatabase(ctx, "down")
	if err != nil {
		t.Fatal(err)
	}
	p := newPipeline(t, openDB(t, url), true)
	const rows = 50_000
	p.gate.arm(p.bucket, "incoming/during-outage.csv", 512<<10)
	p.send(event(p.upload("incoming/during-outage.csv", batchBytes(rows, nil))))
	rec := &recordingSQS{SQSAPI: p.sqs}
	p.start(rec, p.config())

	<-p.gate.reached
	p.waitForCopy()
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	p.gate.release()
	// The failed attempt hides the message for the retry delay (1s).
	eventually(t, 20*time.Second, "the failed attempt", func() bool { return rec.count(1) >= 1 })
	if err := own.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if d := p.fake.Deleted(p.queue); d[0].Receives != 2 {
		t.Errorf("message deleted after %d receives, want 2", d[0].Receives)
	}
	if n := countPrices(t, p.pool); n != rows {
		t.Fatalf("prices holds %d rows, want %d", n, rows)
	}
	if n := p.count(`SELECT count(*) FROM batches`); n != 1 {
		t.Fatalf("%d batches recorded, want 1", n)
	}
}

// TestAWSClientsFromEnvironment selects the stand-ins the way a deployment selects real
// endpoints: through the SDK's environment variables.
func TestAWSClientsFromEnvironment(t *testing.T) {
	p := newPipeline(t, newDB(t), false)
	s3Endpoint := strings.TrimSuffix(aws.ToString(p.s3.Options().BaseEndpoint), "/")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_S3", s3Endpoint)
	t.Setenv("AWS_ENDPOINT_URL_SQS", p.fake.URL())
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	sqsClient, s3Client, err := NewAWSClients(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	p.s3, p.sqs = s3Client, sqsClient
	p.send(event(p.upload("incoming/env.csv", batchBytes(10, nil))))
	p.start(sqsClient, p.config())
	eventually(t, 30*time.Second, "message deleted", func() bool { return len(p.fake.Deleted(p.queue)) == 1 })
	if n := countPrices(t, p.pool); n != 10 {
		t.Fatalf("prices holds %d rows, want 10", n)
	}
}

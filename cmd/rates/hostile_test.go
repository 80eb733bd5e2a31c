package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"rates/internal/testing/pgserver"
	"rates/internal/testing/sqsfake"
)

// maxBatchRSS is the bound of the issue: each process, through a gzip bomb and a one-line
// file, stays under it. The process itself idles at about 25 MB.
const maxBatchRSS = 150 << 20

// zeroReader reads n zero bytes without holding them.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.n))
	clear(p[:n])
	z.n -= int64(n)
	return n, nil
}

// hostileFiles writes a gzip bomb (a header, then a row whose price is 1 GiB of zeros: one
// line) and a plain file whose second line is one 64 MB field.
func hostileFiles(t *testing.T, dir string) (bomb, oneLine string) {
	t.Helper()
	bomb, oneLine = filepath.Join(dir, "bomb.csv.gz"), filepath.Join(dir, "one-line.csv")
	f, err := os.Create(bomb)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	_, _ = io.WriteString(zw, "orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-05-01,")
	if _, err := io.Copy(zw, &zeroReader{n: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := errorsJoin(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	g, err := os.Create(oneLine)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = g.WriteString("orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-05-01,")
	if _, err := io.Copy(g, io.LimitReader(repeatReader('9'), 64<<20)); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	return bomb, oneLine
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// peakRSS is the largest resident set of an exited process (getrusage). Linux counts in it the
// parent's peak at the time of the exec as well, so it is an upper bound, close while the test
// process is small.
func peakRSS(t *testing.T, p *proc) int64 {
	t.Helper()
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no resource usage for the process")
	}
	return ru.Maxrss << 10 // KiB on Linux
}

// liveHWM is the largest resident set of a running process so far (VmHWM): its own, whatever
// the test process holds.
func liveHWM(t *testing.T, p *proc) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read the process's status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

func postFile(t *testing.T, addr, token, key, path string, gz bool) (int, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/batches", f)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Idempotency-Key", key)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The API, the worker and `rates ingest` each stay under 150 MB of memory through a gzip bomb
// and a one-line file, rejecting both with the line named; measured as each process's peak
// resident set: VmHWM of the API and the worker before they stop, getrusage of each command.
func TestHostileBatchesStayWithinMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 1 GiB gzip bomb and a 64 MB file")
	}
	dir := t.TempDir()
	bomb, oneLine := hostileFiles(t, dir)
	url := pgserver.NewDatabase(t, srv)
	const token = "test-token-0123456789abcdef"
	const reason = "line 2 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"

	api := startProc(t, serveEnv(t, url, map[string]string{"INGEST_API_TOKEN": token}), "serve")
	api.waitReady(t)
	for _, f := range []struct {
		key, path string
		gz        bool
	}{{"bomb", bomb, true}, {"one-line", oneLine, false}} {
		if status, body := postFile(t, api.addr, token, f.key, f.path, f.gz); status != http.StatusUnprocessableEntity || !strings.Contains(body, reason) {
			t.Fatalf("POST %s: %d %s", f.key, status, body)
		}
	}
	rss := map[string]int64{"API": liveHWM(t, api)}
	_ = api.cmd.Process.Signal(syscall.SIGTERM)
	if err := api.wait(t, 60*time.Second); err != nil {
		t.Fatalf("serve: %v\n%s", err, api.output)
	}

	// The commands first, while this process is small (see peakRSS).
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn"}
	for _, path := range []string{bomb, oneLine} {
		cli := startProc(t, env, "ingest", "--file", path)
		if err := cli.wait(t, 120*time.Second); err == nil || !strings.Contains(cli.output.String(), reason) {
			t.Fatalf("ingest %s: %v, want a rejection naming line 2\n%s", path, err, cli.output)
		}
		rss["CLI "+filepath.Base(path)] = peakRSS(t, cli)
	}

	rss["worker"] = workerThroughHostileObjects(t, url, bomb, oneLine)
	for who, n := range rss {
		t.Logf("peak RSS of the %s: %.1f MB", who, float64(n)/(1<<20))
		if n > maxBatchRSS {
			t.Errorf("peak RSS of the %s: %d bytes, over %d", who, n, maxBatchRSS)
		}
	}
	if n := newDBCheck(t, url).int(`SELECT count(*) FROM batches WHERE status = 'rejected'`); n != 6 {
		t.Fatalf("%d rejected batches, want 6 (two per process)", n)
	}
}

// workerThroughHostileObjects runs `rates worker` over the two files as S3 objects, waits until
// it rejected both (report written, message deleted), stops it and returns its peak RSS.
func workerThroughHostileObjects(t *testing.T, url, bomb, oneLine string) int64 {
	t.Helper()
	ctx := context.Background()
	s3srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3srv.Close)
	fake := sqsfake.New()
	t.Cleanup(fake.Close)
	queue, err := fake.CreateQueue("ingest", sqsfake.QueueOptions{VisibilityTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(s3srv.URL), true })
	sqsc := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(fake.URL()) })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("rates-ingest")}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bomb, oneLine} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		key := "incoming/" + filepath.Base(path)
		put, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rates-ingest"), Key: aws.String(key), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		event := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"%s","eventName":"ObjectCreated:Put",`+
			`"s3":{"bucket":{"name":"rates-ingest"},"object":{"key":%q,"size":%d,"eTag":%q}}}]}`,
			time.Now().UTC().Format(time.RFC3339Nano), key, len(data), strings.Trim(aws.ToString(put.ETag), `"`))
		if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(event)}); err != nil {
			t.Fatal(err)
		}
	}
	worker := startProc(t, map[string]string{
		"DATABASE_URL": url, "LOG_LEVEL": "warn", "INGEST_QUEUE_URL": queue, "INGEST_WAIT_TIME": "1",
		"INGEST_S3_PATH_STYLE": "true", "AWS_ENDPOINT_URL_SQS": fake.URL(), "AWS_ENDPOINT_URL_S3": s3srv.URL,
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	}, "worker")
	deadline := time.Now().Add(120 * time.Second)
	for len(fake.Deleted(queue)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not settle both messages\n%s", worker.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, path := range []string{bomb, oneLine} {
		key := "reports/incoming/" + filepath.Base(path) + ".json"
		if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("rates-ingest"), Key: aws.String(key)}); err != nil {
			t.Fatalf("report %s: %v\n%s", key, err, worker.output)
		}
	}
	hwm := liveHWM(t, worker)
	_ = worker.cmd.Process.Signal(os.Interrupt)
	if err := worker.wait(t, 30*time.Second); err != nil {
		t.Fatalf("worker exit: %v\n%s", err, worker.output)
	}
	return hwm
}

// SIGTERM during an upload that outlasts SHUTDOWN_TIMEOUT: the upload is rolled back and
// answered 503 with Retry-After before the server gives up on it, and the log says the server
// stopped it, not that the client went away. A spool file that a crash left is removed at start.
func TestUploadCutOffBySIGTERMAnswers503(t *testing.T) {
	const token = "test-token-0123456789abcdef"
	spool := t.TempDir()
	stale := filepath.Join(spool, "rates-batch-4242")
	if err := os.WriteFile(stale, []byte("orig_code,dest_code,day,price\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := pgserver.NewDatabase(t, srv)
	metricsAddr := freeAddr(t)
	s := startProc(t, serveEnv(t, url, map[string]string{"INGEST_API_TOKEN": token, "TMPDIR": spool,
		"SHUTDOWN_TIMEOUT": "2s", "LOG_LEVEL": "info", "METRICS_ADDR": metricsAddr}), "serve")
	s.waitReady(t)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale spool file is still there: %v\n%s", err, s.output)
	}
	r, w := io.Pipe()
	defer w.Close()
	type answer struct {
		status int
		retry  string
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/batches", r)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Idempotency-Key", "cut-off")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		resp.Body.Close()
		got <- answer{status: resp.StatusCode, retry: resp.Header.Get("Retry-After")}
	}()
	if _, err := w.Write([]byte("orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-05-01,100\n")); err != nil {
		t.Fatal(err)
	}
	// The signal must find the upload in its handler: one sent while the request still waits in
	// the listener's queue, or before its headers are read, cuts the connection instead, as for
	// any request that reaches a server stopping. The in-flight gauge counts it once its handler
	// runs.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, body := get(t, "http://"+metricsAddr+"/metrics"); strings.Contains(body, "\nrates_http_requests_in_flight 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upload never reached its handler\n%s", s.output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if entries, _ := os.ReadDir(spool); len(entries) != 0 {
		t.Fatalf("the upload's spool file has a name: %v", entries)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case a := <-got:
		if a.err != nil || a.status != http.StatusServiceUnavailable || a.retry == "" {
			t.Fatalf("the upload cut off by SIGTERM: %+v, want 503 with Retry-After\n%s", a, s.output)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no answer to the upload after SIGTERM\n%s", s.output)
	}
	if err := s.wait(t, 30*time.Second); err != nil {
		t.Fatalf("serve: %v\n%s", err, s.output)
	}
	logs := s.output.String()
	if !strings.Contains(logs, "batch request rolled back: the server is stopping") || strings.Contains(logs, "abandoned by the client") {
		t.Fatalf("the log does not say the server stopped the upload:\n%s", logs)
	}
	if n := newDBCheck(t, url).int(`SELECT count(*) FROM batches WHERE source_kind = 'api'`); n != 0 {
		t.Fatalf("%d batches recorded by the cut-off upload", n)
	}
}

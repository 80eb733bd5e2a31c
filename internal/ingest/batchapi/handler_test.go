package batchapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/httpjson"
	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
)

const testToken = "s3cret-token-0123456789"

// newBatchAPI serves the endpoints on a new database, which it returns with their URL.
func newBatchAPI(t *testing.T, cfg Config) (string, *pgxpool.Pool) {
	t.Helper()
	return newLimitedBatchAPI(t, cfg, csvbatch.Limits{})
}

type post struct {
	body        io.Reader
	contentType string
	encoding    string
	auth        string
	key         string
	method      string
}

func (p post) do(t *testing.T, url string) (int, http.Header, map[string]any) {
	t.Helper()
	method := p.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, p.body)
	if err != nil {
		t.Fatal(err)
	}
	if p.contentType != "" {
		req.Header.Set("Content-Type", p.contentType)
	}
	if p.encoding != "" {
		req.Header.Set("Content-Encoding", p.encoding)
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	if p.key != "" {
		req.Header.Set("Idempotency-Key", p.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: response is not JSON: %v", method, url, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return resp.StatusCode, resp.Header, body
}

func (p post) withBody(r io.Reader) post { p.body = r; return p }

func csvPost(body []byte, key string) post {
	return post{body: bytes.NewReader(body), contentType: "text/csv", auth: "Bearer " + testToken, key: key}
}

func TestPostBatchCreatedThenReplayed(t *testing.T) {
	t.Parallel()
	url, pool := newBatchAPI(t, Config{Token: testToken, MaxBytes: 1 << 20})
	status, _, body := csvPost(batchBytes(250, nil), "batch-2024-05-01").do(t, url)
	if status != http.StatusCreated || body["rows"] != 250.0 || body["batch_id"] == nil || body["duration_ms"] == nil ||
		body["status"] != "loaded" || body["kind"] != "prices" || body["mode"] != "append" || len(body) != 7 {
		t.Fatalf("first POST: %d %v", status, body)
	}
	// The retry answers 200 with the first result and loads nothing.
	status, hdr, again := csvPost(batchBytes(250, nil), "batch-2024-05-01").do(t, url)
	if status != http.StatusOK || again["batch_id"] != body["batch_id"] || again["rows"] != 250.0 || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v %v", status, again, hdr)
	}
	// The same key with another body is a conflict that names the key.
	status, _, conflict := csvPost(batchBytes(999, nil), "batch-2024-05-01").do(t, url)
	if msg, _ := conflict["error"].(string); status != http.StatusConflict || !strings.Contains(msg, `"batch-2024-05-01"`) {
		t.Fatalf("reused key, other body: %d %v, want 409 naming the key", status, conflict)
	}
	// The same body under another key is a duplicate of the first batch: 200, nothing loaded.
	status, _, dup := csvPost(batchBytes(250, nil), "batch-2024-05-01-resent").do(t, url)
	if status != http.StatusOK || dup["status"] != "duplicate" || dup["batch_id"] != body["batch_id"] {
		t.Fatalf("same body, other key: %d %v, want 200 duplicate of the first batch", status, dup)
	}
	if n := countPrices(t, pool); n != 250 {
		t.Fatalf("prices holds %d rows, want 250", n)
	}
}

func TestPostBatchGzip(t *testing.T) {
	t.Parallel()
	url, _ := newBatchAPI(t, Config{Token: testToken, MaxBytes: 1 << 20})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(batchBytes(100, nil))
	zw.Close()
	p := csvPost(buf.Bytes(), "gz-1")
	p.encoding = "gzip"
	p.contentType = "text/csv; charset=utf-8"
	if status, _, body := p.do(t, url); status != http.StatusCreated || body["rows"] != 100.0 {
		t.Fatalf("gzip POST: %d %v", status, body)
	}
}

func TestPostBatchRejected(t *testing.T) {
	t.Parallel()
	url, pool := newBatchAPI(t, Config{Token: testToken, MaxBytes: 1 << 20})
	bad := batchBytes(100, map[int]string{10: "PT001,PT002,2024-01-01,0", 20: "PT001,NOPE1,2024-01-01,5"})
	status, _, body := csvPost(bad, "bad-1").do(t, url)
	if status != http.StatusUnprocessableEntity || body["bad_rows"] != 2.0 || body["error"] != "batch rejected: 2 bad rows" {
		t.Fatalf("POST: %d %v", status, body)
	}
	errs, _ := body["errors"].([]any)
	if len(errs) != 2 {
		t.Fatalf("errors = %v", body["errors"])
	}
	first := errs[0].(map[string]any)
	if first["line"] != 10.0 || first["column"] != "price" || first["reason"] != `price must be at least 1, got "0"` {
		t.Errorf("first error = %v", first)
	}
	if second := errs[1].(map[string]any); second["line"] != 20.0 || second["reason"] != `unknown port code "NOPE1"` {
		t.Errorf("second error = %v", second)
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("prices holds %d rows of a rejected batch", n)
	}
	// Replaying the key returns the same rejection.
	if status, _, again := csvPost(bad, "bad-1").do(t, url); status != http.StatusUnprocessableEntity || again["batch_id"] != body["batch_id"] {
		t.Fatalf("replay: %d %v", status, again)
	}
}

func TestPostBatchRefusals(t *testing.T) {
	t.Parallel()
	url, pool := newBatchAPI(t, Config{Token: testToken, MaxBytes: 4096})
	valid := batchBytes(10, nil)
	for _, tc := range []struct {
		name   string
		req    post
		status int
		auth   string // expected WWW-Authenticate
	}{
		{"no token", post{body: bytes.NewReader(valid), contentType: "text/csv", key: "k"}, 401, `Bearer realm="rates"`},
		{"wrong token", post{body: bytes.NewReader(valid), contentType: "text/csv", key: "k", auth: "Bearer nope"}, 401,
			`Bearer realm="rates", error="invalid_token"`},
		{"basic auth", post{body: bytes.NewReader(valid), contentType: "text/csv", key: "k", auth: "Basic " + testToken}, 401,
			`Bearer realm="rates", error="invalid_token"`},
		{"JSON body", post{body: strings.NewReader("{}"), contentType: "application/json", key: "k", auth: "Bearer " + testToken}, 415, ""},
		{"no content type", post{body: bytes.NewReader(valid), key: "k", auth: "Bearer " + testToken}, 415, ""},
		{"latin-1", post{body: bytes.NewReader(valid), contentType: "text/csv; charset=iso-8859-1", key: "k", auth: "Bearer " + testToken}, 415, ""},
		{"brotli", post{body: bytes.NewReader(valid), contentType: "text/csv", encoding: "br", key: "k", auth: "Bearer " + testToken}, 415, ""},
		{"no idempotency key", post{body: bytes.NewReader(valid), contentType: "text/csv", auth: "Bearer " + testToken}, 400, ""},
		{"key with spaces", post{body: bytes.NewReader(valid), contentType: "text/csv", key: "a b", auth: "Bearer " + testToken}, 400, ""},
		{"too large, declared", csvPost(batchBytes(1000, nil), "big-1"), 413, ""},
		// No Content-Length: the limit is enforced while streaming, after COPY has begun.
		{"too large, streamed", post{body: io.MultiReader(newGenBatch(1000, nil)), contentType: "text/csv", key: "big-2",
			auth: "Bearer " + testToken}, 413, ""},
		{"GET", post{method: http.MethodGet, auth: "Bearer " + testToken}, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := tc.req.do(t, url)
			if status != tc.status || body["error"] == nil {
				t.Fatalf("%d %v, want %d with an error message", status, body, tc.status)
			}
			if got := hdr.Get("WWW-Authenticate"); got != tc.auth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.auth)
			}
		})
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("prices holds %d rows after refused requests", n)
	}
	// Nothing refused was recorded: the oversized key can be used again with a smaller batch.
	if status, _, body := csvPost(valid, "big-2").do(t, url); status != http.StatusCreated {
		t.Fatalf("POST after a 413 with the same key: %d %v", status, body)
	}
}

func TestPostBatchDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	url, _ := newBatchAPI(t, Config{MaxBytes: 1 << 20})
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		p := csvPost(batchBytes(1, nil), "k")
		p.auth = auth
		if status, _, body := p.do(t, url); status != http.StatusNotFound {
			t.Fatalf("auth %q: %d %v, want 404 while disabled", auth, status, body)
		}
	}
}

func TestPostBatchDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := ingest.NewLoader(pool, ingest.LoaderOptions{}, testLogger(t))
	srv := httptest.NewServer(routed(New(l, Config{Token: testToken, MaxBytes: 1 << 20}, testLogger(t))))
	t.Cleanup(srv.Close)
	pool.Close() // every connection attempt now fails, as during an outage
	status, hdr, body := csvPost(batchBytes(10, nil), "outage-1").do(t, srv.URL+"/batches")
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || body["error"] == nil {
		t.Fatalf("%d %v %v, want 503 with Retry-After", status, body, hdr)
	}
}

// routed mounts h as the API's router does (internal/api): the batch's id comes from the
// pattern /batches/{id}.
func routed(h http.Handler) http.Handler {
	r := chi.NewRouter()
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	r.Method(http.MethodPost, "/batches", h)
	r.Method(http.MethodGet, "/batches/{id}", h)
	r.Method(http.MethodDelete, "/batches/{id}", h)
	return r
}

func TestBatchEndpointsShowRevertAndRefuseBeyondTheUploadLimit(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	l := ingest.NewLoader(pool, ingest.LoaderOptions{}, testLogger(t))
	h := New(l, Config{Token: testToken, MaxBytes: 1 << 20, MaxConcurrent: 1}, testLogger(t))
	srv := httptest.NewServer(routed(h))
	t.Cleanup(srv.Close)
	url := srv.URL + "/batches"
	status, _, created := csvPost(batchBytes(20, nil), "show-1").do(t, url)
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %v", status, created)
	}
	id := url + "/" + strconv.Itoa(int(created["batch_id"].(float64)))
	get := post{auth: "Bearer " + testToken, method: http.MethodGet}
	if status, _, b := get.do(t, id); status != http.StatusOK || b["status"] != "loaded" || b["rows"] != 20.0 || b["sha256"] == nil || len(b["rows_digest"].(string)) != 64 {
		t.Fatalf("GET: %d %v", status, b)
	}
	del := post{auth: "Bearer " + testToken, method: http.MethodDelete}
	if status, _, b := del.do(t, id); status != http.StatusOK || b["status"] != "reverted" || b["removed_rows"] != 20.0 {
		t.Fatalf("DELETE: %d %v", status, b)
	}
	if status, _, b := del.do(t, id); status != http.StatusOK || b["status"] != "unchanged" {
		t.Fatalf("second DELETE: %d %v", status, b)
	}
	for _, unknown := range []string{"/999", "/abc", "/-1"} {
		if status, _, _ := get.do(t, url+unknown); status != http.StatusNotFound {
			t.Fatalf("GET of batch %s: %d, want 404", unknown, status)
		}
	}
	if status, _, _ := (post{method: http.MethodGet}).do(t, id); status != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %d", status)
	}
	if n := countPrices(t, pool); n != 0 {
		t.Fatalf("%d prices after the revert", n)
	}

	// One upload in progress (its body still arriving) fills the limit of 1: the next gets 429.
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		status, _, _ := csvPost(nil, "slow").withBody(r).do(t, url)
		done <- status
	}()
	_, _ = w.Write([]byte(csvbatch.Header + "\n"))
	eventually(t, 10*time.Second, "the slow upload in progress", func() bool { return len(h.slots) == 1 })
	status, hdr, b := csvPost(batchBytes(5, nil), "next").do(t, url)
	if msg, _ := b["error"].(string); status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "INGEST_MAX_CONCURRENT_UPLOADS") {
		t.Fatalf("second upload: %d %v %v, want 429 with Retry-After", status, hdr, b)
	}
	_, _ = w.Write([]byte("PT001,PT002,2024-01-01,5\n"))
	_ = w.Close()
	if status := <-done; status != http.StatusCreated {
		t.Fatalf("the slow upload: %d", status)
	}
}

// newLimitedBatchAPI is newBatchAPI with the loader's limits set.
func newLimitedBatchAPI(t *testing.T, cfg Config, lim csvbatch.Limits) (string, *pgxpool.Pool) {
	t.Helper()
	pool := newDB(t)
	l := ingest.NewLoader(pool, ingest.LoaderOptions{MaxErrors: 3, Limits: lim}, testLogger(t))
	srv := httptest.NewServer(routed(New(l, cfg, testLogger(t))))
	t.Cleanup(srv.Close)
	return srv.URL + "/batches", pool
}

// Bodies a hostile client sends get a clear 413 or 422 and a rejected batch, whatever they
// unpack to, and never a second life as a duplicate.
func TestPostBatchHostileBodies(t *testing.T) {
	t.Parallel()
	url, pool := newLimitedBatchAPI(t, Config{Token: testToken, MaxBytes: 64 << 20}, csvbatch.Limits{MaxBytes: 8 << 20})
	gz := func(p post) post { p.encoding = "gzip"; return p }
	good := batchBytes(50, nil)
	if status, _, body := csvPost(good, "good").do(t, url); status != http.StatusCreated {
		t.Fatalf("a good batch: %d %v", status, body)
	}
	oneLine := append([]byte(csvbatch.Header+"\nPT001,PT002,2024-01-01,"), bytes.Repeat([]byte("9"), 1<<20)...)
	rows := bytes.Repeat([]byte("PT001,PT002,2024-01-01,100\n"), 400_000) // 10.8 MB unpacked
	for _, tc := range []struct {
		name   string
		req    post
		status int
		reason string
	}{
		{"gzip bomb: 1 GiB of zeros on one line", gz(csvPost(gzipBomb(t, 1<<30), "bomb")), 422,
			"line 2 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"},
		{"one huge field", csvPost(oneLine, "one-line"), 422, "line 2 is longer than 4096 bytes (INGEST_MAX_LINE_BYTES)"},
		{"larger than the unpacked limit", gz(csvPost(gzipOf(t, csvbatch.Header+"\n"+string(rows)), "unpacked")), 413,
			"batch is larger than 8388608 bytes decompressed (INGEST_MAX_UNPACKED_BYTES)"},
		{"gzip with trailing garbage, rows already loaded", gz(csvPost(append(gzipOf(t, string(good)), "garbage!!!"...), "garbage")), 422,
			"cannot read the batch: the gzip data is followed by bytes that are not gzip"},
		{"header only", csvPost([]byte(csvbatch.Header+"\n"), "header-only"), 422, "batch has no rows: expected rows after the header " + csvbatch.Header},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, attempt := range []string{"first", "replay"} {
				status, _, body := tc.req.do(t, url)
				errs, _ := body["errors"].([]any)
				if status != tc.status || body["batch_id"] == nil || len(errs) == 0 {
					t.Fatalf("%s: %d %v, want %d with a rejected batch", attempt, status, body, tc.status)
				}
				if got := errs[len(errs)-1].(map[string]any)["reason"]; got != tc.reason {
					t.Fatalf("%s: reason %q, want %q", attempt, got, tc.reason)
				}
				if tc.req.body != nil {
					tc.req.body.(*bytes.Reader).Seek(0, io.SeekStart) //nolint:errcheck // a bytes.Reader seeks
				}
			}
		})
	}
	if n := countPrices(t, pool); n != 50 {
		t.Fatalf("prices holds %d rows, want the good batch's 50", n)
	}
	// CR-only line breaks load.
	cr := bytes.ReplaceAll(batchBytes(30, nil), []byte("\n"), []byte("\r"))
	if status, _, body := csvPost(cr, "cr-only").do(t, url); status != http.StatusCreated || body["rows"] != 30.0 {
		t.Fatalf("CR-only batch: %d %v", status, body)
	}
}

// A re-send of a batch whose rows a replace took out since is not answered as if all of it
// were in place: 409, status displaced, naming the replacing batch; after that batch's revert,
// a plain duplicate again.
func TestPostBatchDisplacedResend(t *testing.T) {
	t.Parallel()
	url, _ := newBatchAPI(t, Config{Token: testToken, MaxBytes: 1 << 20})
	a := csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100", "PT001,PT003,2024-03-01,100")
	if status, _, body := csvPost(a, "a").do(t, url+"?mode=replace"); status != http.StatusCreated {
		t.Fatalf("A: %d %v", status, body)
	}
	status, _, b := csvPost(csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,150"), "b").do(t, url+"?mode=replace")
	if status != http.StatusCreated || b["displaced_rows"] != 1.0 {
		t.Fatalf("B: %d %v", status, b)
	}
	for _, mode := range []string{"replace", "append"} {
		status, _, body := csvPost(a, "a-again-"+mode).do(t, url+"?mode="+mode)
		by, _ := body["displaced_by"].([]any)
		if msg, _ := body["error"].(string); status != http.StatusConflict || body["status"] != "displaced" || len(by) != 1 ||
			by[0] != b["batch_id"] || !strings.Contains(msg, "revert") {
			t.Fatalf("A re-sent (%s) after B: %d %v, want 409 displaced by B", mode, status, body)
		}
	}
	revert := post{auth: "Bearer " + testToken, method: http.MethodDelete}
	if status, _, body := revert.do(t, url+"/"+strconv.Itoa(int(b["batch_id"].(float64)))); status != http.StatusOK {
		t.Fatalf("revert B: %d %v", status, body)
	}
	if status, _, body := csvPost(a, "a-after-revert").do(t, url+"?mode=replace"); status != http.StatusOK || body["status"] != "duplicate" {
		t.Fatalf("A re-sent after B's revert: %d %v, want 200 duplicate", status, body)
	}
}

// blockingBody is a request body that never ends: an answer that needs it never comes.
type blockingBody struct{ first []byte }

func (b *blockingBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	select {} //nolint:staticcheck // blocks for ever, as a client that never finishes
}

// The Idempotency-Key is looked up before the body is read: a key used with another mode or
// kind is a 409 that needs none of the body; a replay is checked against the recorded checksum
// without a load; an empty body burns no key.
func TestPostBatchKeyFirst(t *testing.T) {
	t.Parallel()
	url, pool := newBatchAPI(t, Config{Token: testToken, MaxBytes: 1 << 20})
	data := batchBytes(40, nil)
	if status, _, body := csvPost(data, "k1").do(t, url); status != http.StatusCreated {
		t.Fatalf("first: %d %v", status, body)
	}
	for _, tc := range []struct{ query, reason string }{
		{"?mode=replace", "with mode append, not replace"},
		{"?kind=ports", "for a prices batch, not ports"},
	} {
		done := make(chan struct{})
		var status int
		var body map[string]any
		go func() {
			defer close(done)
			status, _, body = csvPost(nil, "k1").withBody(&blockingBody{first: data[:100]}).do(t, url+tc.query)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no answer before the body ended", tc.query)
		}
		if msg, _ := body["error"].(string); status != http.StatusConflict || !strings.Contains(msg, tc.reason) {
			t.Fatalf("%s: %d %v, want 409 %q", tc.query, status, body, tc.reason)
		}
	}
	if status, hdr, body := csvPost(data, "k1").do(t, url); status != http.StatusOK || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v", status, body)
	}
	if status, _, body := csvPost(batchBytes(41, nil), "k1").do(t, url); status != http.StatusConflict {
		t.Fatalf("other content: %d %v", status, body)
	}
	if n := sqlCount(t, pool, `SELECT count(*) FROM batches`); n != 1 {
		t.Fatalf("%d batches recorded, want 1: a replay or a conflict records nothing", n)
	}
	// An empty body is refused, and its key stays free.
	if status, _, body := csvPost(nil, "k2").do(t, url); status != http.StatusBadRequest {
		t.Fatalf("empty body: %d %v, want 400", status, body)
	}
	if status, _, body := csvPost(batchBytes(5, nil), "k2").do(t, url); status != http.StatusCreated {
		t.Fatalf("the key of an empty body, with a batch: %d %v", status, body)
	}
}

// An upload still arriving when the server stops is rolled back and answered 503 with
// Retry-After before the server closes its connection, and the key stays free.
func TestPostBatchStoppingAnswers503(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	url, pool := newBatchAPI(t, Config{Token: testToken, MaxBytes: 1 << 20, Stop: stop, StopGrace: 200 * time.Millisecond})
	type answer struct {
		status int
		hdr    http.Header
		body   map[string]any
	}
	got := make(chan answer, 1)
	go func() {
		status, hdr, body := csvPost(nil, "slow").withBody(&blockingBody{first: []byte(csvbatch.Header + "\n")}).do(t, url)
		got <- answer{status, hdr, body}
	}()
	time.Sleep(200 * time.Millisecond) // the upload is in progress
	close(stop)
	select {
	case a := <-got:
		if a.status != http.StatusServiceUnavailable || a.hdr.Get("Retry-After") == "" {
			t.Fatalf("%d %v %v, want 503 with Retry-After", a.status, a.hdr, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the stop")
	}
	if n := sqlCount(t, pool, `SELECT count(*) FROM batches`); n != 0 {
		t.Fatalf("%d batches recorded", n)
	}
}

// A role that may not load batches is found at start: every request to the endpoints is
// answered 501, naming the role, and nothing is read.
func TestPostBatchRefusedForARoleThatMayNotLoad(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	ctx := context.Background()
	role := fmt.Sprintf("reader_%d_%d", time.Now().UnixNano(), roleSerial.Add(1))
	if _, err := pool.Exec(ctx, `CREATE ROLE `+role+` LOGIN IN ROLE rates_reader`); err != nil {
		t.Fatal(err)
	}
	u, _ := neturl.Parse(pool.Config().ConnString())
	u.User = neturl.User(role)
	reader, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	l := ingest.NewLoader(reader, ingest.LoaderOptions{}, testLogger(t))
	err = l.CheckPrivileges(ctx)
	if err == nil || !strings.Contains(err.Error(), "database role "+role+" may not load batches") {
		t.Fatalf("CheckPrivileges as a reader: %v", err)
	}
	if err := ingest.NewLoader(pool, ingest.LoaderOptions{}, testLogger(t)).CheckPrivileges(ctx); err != nil {
		t.Fatalf("CheckPrivileges as the owner: %v", err)
	}
	srv := httptest.NewServer(routed(New(l, Config{Token: testToken, Refused: err.Error()}, testLogger(t))))
	t.Cleanup(srv.Close)
	status, _, body := csvPost(nil, "k").withBody(&blockingBody{}).do(t, srv.URL+"/batches")
	if msg, _ := body["error"].(string); status != http.StatusNotImplemented || !strings.Contains(msg, role) {
		t.Fatalf("%d %v, want 501 naming the role", status, body)
	}
}

func TestRemoveStaleSpool(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"rates-batch-123", "rates-batch-456", "other-file"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("left by a crash"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveStaleSpool(dir)
	if err != nil || n != 2 {
		t.Fatalf("removed %d, %v; want 2", n, err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 || left[0].Name() != "other-file" {
		t.Fatalf("left %v, want only other-file", left)
	}
}

// A deadlock is a bug in the order of locks, not an outage: 500, not 503 with Retry-After.
func TestBatchFailureDeadlockIsNotAnOutage(t *testing.T) {
	h := New(nil, Config{Token: testToken}, testLogger(t))
	for _, tc := range []struct {
		code   string
		status int
	}{{"40P01", http.StatusInternalServerError}, {"57P01", http.StatusServiceUnavailable}} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/batches", nil)
		h.fail(r.Context(), w, r, fmt.Errorf("load batch: %w", &pgconn.PgError{Code: tc.code}))
		if w.Code != tc.status || (w.Header().Get("Retry-After") != "") != (tc.status == http.StatusServiceUnavailable) {
			t.Errorf("SQLSTATE %s: %d %v, want %d", tc.code, w.Code, w.Header(), tc.status)
		}
	}
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testToken = "s3cret-token-0123456789"

func newBatchAPI(t *testing.T, cfg HandlerConfig) (string, *Loader) {
	t.Helper()
	pool := newDB(t)
	l := NewLoader(pool, LoaderOptions{MaxErrors: 3}, testLogger(t))
	srv := httptest.NewServer(NewBatchHandler(l, cfg, testLogger(t)))
	t.Cleanup(srv.Close)
	return srv.URL + "/batches", l
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
	url, l := newBatchAPI(t, HandlerConfig{Token: testToken, MaxBytes: 1 << 20})
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
	if n := countPrices(t, l.pool); n != 250 {
		t.Fatalf("prices holds %d rows, want 250", n)
	}
}

func TestPostBatchGzip(t *testing.T) {
	t.Parallel()
	url, _ := newBatchAPI(t, HandlerConfig{Token: testToken, MaxBytes: 1 << 20})
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
	url, l := newBatchAPI(t, HandlerConfig{Token: testToken, MaxBytes: 1 << 20})
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
	if n := countPrices(t, l.pool); n != 0 {
		t.Fatalf("prices holds %d rows of a rejected batch", n)
	}
	// Replaying the key returns the same rejection.
	if status, _, again := csvPost(bad, "bad-1").do(t, url); status != http.StatusUnprocessableEntity || again["batch_id"] != body["batch_id"] {
		t.Fatalf("replay: %d %v", status, again)
	}
}

func TestPostBatchRefusals(t *testing.T) {
	t.Parallel()
	url, l := newBatchAPI(t, HandlerConfig{Token: testToken, MaxBytes: 4096})
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
	if n := countPrices(t, l.pool); n != 0 {
		t.Fatalf("prices holds %d rows after refused requests", n)
	}
	// Nothing refused was recorded: the oversized key can be used again with a smaller batch.
	if status, _, body := csvPost(valid, "big-2").do(t, url); status != http.StatusCreated {
		t.Fatalf("POST after a 413 with the same key: %d %v", status, body)
	}
}

func TestPostBatchDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	url, _ := newBatchAPI(t, HandlerConfig{MaxBytes: 1 << 20})
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
	l := NewLoader(pool, LoaderOptions{}, testLogger(t))
	srv := httptest.NewServer(NewBatchHandler(l, HandlerConfig{Token: testToken, MaxBytes: 1 << 20}, testLogger(t)))
	t.Cleanup(srv.Close)
	pool.Close() // every connection attempt now fails, as during an outage
	status, hdr, body := csvPost(batchBytes(10, nil), "outage-1").do(t, srv.URL+"/batches")
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || body["error"] == nil {
		t.Fatalf("%d %v %v, want 503 with Retry-After", status, body, hdr)
	}
}

func TestBatchEndpointsShowRevertAndRefuseBeyondTheUploadLimit(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	h := NewBatchHandler(l, HandlerConfig{Token: testToken, MaxBytes: 1 << 20, MaxConcurrent: 1}, testLogger(t))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/batches"
	status, _, created := csvPost(batchBytes(20, nil), "show-1").do(t, url)
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %v", status, created)
	}
	id := url + "/" + strconv.Itoa(int(created["batch_id"].(float64)))
	get := post{auth: "Bearer " + testToken, method: http.MethodGet}
	if status, _, b := get.do(t, id); status != http.StatusOK || b["status"] != "loaded" || b["rows"] != 20.0 || b["sha256"] == nil {
		t.Fatalf("GET: %d %v", status, b)
	}
	del := post{auth: "Bearer " + testToken, method: http.MethodDelete}
	if status, _, b := del.do(t, id); status != http.StatusOK || b["status"] != "reverted" || b["removed_rows"] != 20.0 {
		t.Fatalf("DELETE: %d %v", status, b)
	}
	if status, _, b := del.do(t, id); status != http.StatusOK || b["status"] != "unchanged" {
		t.Fatalf("second DELETE: %d %v", status, b)
	}
	if status, _, _ := get.do(t, url+"/999"); status != http.StatusNotFound {
		t.Fatalf("GET of an unknown batch: %d", status)
	}
	if status, _, _ := (post{method: http.MethodGet}).do(t, id); status != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %d", status)
	}
	if n := countPrices(t, l.pool); n != 0 {
		t.Fatalf("%d prices after the revert", n)
	}

	// One upload in progress (its body still arriving) fills the limit of 1: the next gets 429.
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		status, _, _ := csvPost(nil, "slow").withBody(r).do(t, url)
		done <- status
	}()
	_, _ = w.Write([]byte(Header + "\n"))
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

package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/api"
	"rates/internal/metrics"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

// get sends GET (or HEAD) target with the given If-None-Match fields (none when empty).
func get(t *testing.T, h http.Handler, method, target string, ifNoneMatch ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for _, v := range ifNoneMatch {
		req.Header.Add("If-None-Match", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The ETag names the answer's bytes: it changes when a batch on the route and range commits,
// and only then; a request naming the current tag gets 304 with the validator and caching
// headers and no body, by GET or HEAD.
func TestETagAndNotModified(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	for _, cacheBytes := range []int{0, 1 << 20} {
		cfg := testConfig
		cfg.CacheBytes = cacheBytes
		h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
		const target = "/rates?date_from=2021-01-01&date_to=2021-01-05&orig_code=CNAAA&dest_code=DEAAA"
		first := get(t, h, "GET", target)
		etag := first.Header().Get("ETag")
		if first.Code != 200 || len(etag) < 20 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
			t.Fatalf("GET = %d with ETag %q, want 200 with a strong tag", first.Code, etag)
		}
		for name, want := range map[string]string{"Cache-Control": "no-cache", "Vary": "Accept-Encoding",
			"Content-Type": "application/json", "Content-Length": strconv.Itoa(first.Body.Len())} {
			if got := first.Header().Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		for _, inm := range [][]string{{etag}, {"W/" + etag}, {`"other", ` + etag}, {`"other"`, etag}, {"*"}} {
			rec := get(t, h, "GET", target, inm...)
			if rec.Code != 304 || rec.Body.Len() != 0 {
				t.Fatalf("If-None-Match %q: %d with %d bytes, want 304 without a body", inm, rec.Code, rec.Body.Len())
			}
			for _, name := range []string{"ETag", "Cache-Control", "Vary"} {
				if rec.Header().Get(name) != first.Header().Get(name) {
					t.Errorf("304 %s = %q, want the 200's %q", name, rec.Header().Get(name), first.Header().Get(name))
				}
			}
			if ct := rec.Header().Get("Content-Type"); ct != "" {
				t.Errorf("304 carries Content-Type %q", ct)
			}
		}
		for _, inm := range []string{`"other"`, etag[:len(etag)-2] + `"`, strings.Trim(etag, `"`), `W/"x", "y`} {
			if rec := get(t, h, "GET", target, inm); rec.Code != 200 || rec.Body.String() != first.Body.String() {
				t.Fatalf("If-None-Match %q: %d, want the full 200", inm, rec.Code)
			}
		}
		// HEAD: the headers of GET, no body; 304 alike.
		srv := httptest.NewServer(h)
		req, _ := http.NewRequest("HEAD", srv.URL+target, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("ETag") != etag || resp.Header.Get("Content-Length") != strconv.Itoa(first.Body.Len()) {
			t.Fatalf("HEAD = %d, ETag %q, Content-Length %q", resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Content-Length"))
		}
		req.Header.Set("If-None-Match", etag)
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != 304 {
			t.Fatalf("HEAD with the current tag = %d, want 304", resp.StatusCode)
		}

		// A batch on another route: the same bytes, the same tag.
		exec(t, pool, "INSERT INTO prices VALUES ('CNBBB', 'DEAAA', '2021-01-03', 100)")
		if rec := get(t, h, "GET", target, etag); rec.Code != 304 {
			t.Fatalf("after a batch on another route: %d, want 304 (the answer did not change)", rec.Code)
		}
		// A batch on the route and range: a new tag, and the old one gets the full answer.
		exec(t, pool, "INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 100)")
		rec := get(t, h, "GET", target, etag)
		if rec.Code != 200 || rec.Header().Get("ETag") == etag || !strings.Contains(rec.Body.String(), `{"count":1,"day":"2021-01-03"`) {
			t.Fatalf("after a batch on the route: %d, ETag %q (was %q), %s", rec.Code, rec.Header().Get("ETag"), etag, rec.Body)
		}
		if again := get(t, h, "GET", target, rec.Header().Get("ETag")); again.Code != 304 {
			t.Fatalf("the new tag: %d, want 304", again.Code)
		}
		exec(t, pool, "DELETE FROM prices WHERE day = '2021-01-03'")
	}
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Errors carry no validator and must not be stored by any cache, If-None-Match or not.
func TestErrorsAreNotCacheable(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	cfg := testConfig
	cfg.CacheBytes = 1 << 20
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	down, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	unreachable := api.New(store.New(down), cfg, readyReadiness(), dbtest.Discard)
	const jan = "/rates?date_from=2021-01-01&date_to=2021-01-05"
	for _, tc := range []struct {
		name   string
		h      http.Handler
		method string
		target string
		status int
	}{
		{"bad parameter", h, "GET", "/rates?date_from=2021-02-30&date_to=2021-03-01&orig_code=CNAAA&dest_code=DEAAA", 400},
		{"unknown code", h, "GET", jan + "&orig_code=XXXXX&dest_code=DEAAA", 400},
		{"unknown code again (from the answer cache)", h, "GET", jan + "&orig_code=XXXXX&dest_code=DEAAA", 400},
		{"unknown code by HEAD", h, "HEAD", jan + "&orig_code=XXXXX&dest_code=DEAAA", 400},
		{"not found", h, "GET", "/prices", 404},
		{"method not allowed", h, "POST", "/rates", 405},
		{"query too long", h, "GET", "/rates?x=" + strings.Repeat("a", 5000), 414},
		{"database unreachable", unreachable, "GET", jan + "&orig_code=CNAAA&dest_code=DEAAA", 503},
		{"not ready", h, "GET", "/readyz", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "not ready" {
				tc.h = newHandler(t, pool, false)
			}
			for _, inm := range [][]string{nil, {"*"}} {
				rec := get(t, tc.h, tc.method, tc.target, inm...)
				if rec.Code != tc.status {
					t.Fatalf("%s %s (If-None-Match %q) = %d, want %d", tc.method, tc.target, inm, rec.Code, tc.status)
				}
				if etag, cc := rec.Header().Get("ETag"), rec.Header().Get("Cache-Control"); etag != "" || cc != "no-store" {
					t.Fatalf("%d carries ETag %q and Cache-Control %q, want none and no-store", rec.Code, etag, cc)
				}
			}
		})
	}
}

// CACHE_CONTROL_MAX_AGE turns no-cache into a max-age.
func TestCacheControlMaxAge(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	cfg := testConfig
	cfg.MaxAge = 30 * time.Second
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	rec := get(t, h, "GET", "/rates?date_from=2021-01-01&date_to=2021-01-05&orig_code=CNAAA&dest_code=DEAAA")
	if cc := rec.Header().Get("Cache-Control"); rec.Code != 200 || cc != "public, max-age=30" {
		t.Fatalf("%d with Cache-Control %q, want public, max-age=30", rec.Code, cc)
	}
	if rec := get(t, h, "GET", "/rates?date_from=2021-01-01"); rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("an error with max-age set: Cache-Control %q, want no-store", rec.Header().Get("Cache-Control"))
	}
}

// Requests are counted under the route they matched, whether the router served them or not.
func TestRouteLabels(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	m := metrics.New("test")
	cfg := testConfig
	cfg.Metrics = m
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	for _, target := range []string{"/healthz", "/nowhere", "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=CNAAA&dest_code=DEAAA", "/rates"} {
		get(t, h, "GET", target)
	}
	get(t, h, "HEAD", "/rates?date_from=2021-01-01&date_to=2021-01-01&orig_code=CNAAA&dest_code=DEAAA")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`rates_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`rates_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`rates_http_requests_total{method="GET",route="/rates",status="200"} 1`,
		`rates_http_requests_total{method="GET",route="/rates",status="400"} 1`,
		`rates_http_requests_total{method="HEAD",route="/rates",status="200"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

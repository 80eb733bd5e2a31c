package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/api"
	"rates/internal/metrics"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

// lockedBuffer collects the handler's logs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// injectReadFailures puts price_daily behind a view whose first failures reads raise SQLSTATE
// code (or sleep, for code "sleep"), and returns how many reads were attempted so far. The
// server raises the error exactly as it would raise a real deadlock or a real bug.
func injectReadFailures(t *testing.T, pool *pgxpool.Pool, failures int, code string) (reads func() int) {
	t.Helper()
	fail := fmt.Sprintf("RAISE EXCEPTION 'injected' USING ERRCODE = '%s'", code)
	if code == "sleep" {
		fail = "PERFORM pg_sleep(30)"
	}
	ctx := context.Background()
	_, err := pool.Exec(ctx, fmt.Sprintf(`
		ALTER TABLE price_daily RENAME TO price_daily_real;
		CREATE SEQUENCE price_daily_reads;
		CREATE FUNCTION price_daily_flaky() RETURNS SETOF price_daily_real LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('price_daily_reads') <= %d THEN %s; END IF;
			RETURN QUERY SELECT * FROM price_daily_real;
		END $$;
		CREATE VIEW price_daily AS SELECT * FROM price_daily_flaky();`, failures, fail))
	if err != nil {
		t.Fatal(err)
	}
	return func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM price_daily_reads").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// Deadlocks and serialisation failures are retried once, then answered 503; any other
// database error is a bug: 500 and an error log line.
func TestErrorClassification(t *testing.T) {
	const target = "/rates?date_from=2021-01-01&date_to=2021-01-05&orig_code=CNAAA&dest_code=DEAAA"
	tests := []struct {
		name      string
		failures  int
		code      string
		status    int
		wantReads int
		wantLog   string
	}{
		{"deadlock once", 1, "40P01", 200, 2, ""},
		{"serialization failure once", 1, "40001", 200, 2, ""},
		{"deadlock twice", 2, "40P01", 503, 2, `level=WARN msg="database unavailable"`},
		{"serialization failure twice", 2, "40001", 503, 2, `level=WARN msg="database unavailable"`},
		{"undefined column: a bug", 1, "42703", 500, 1, `level=ERROR msg="query failed"`},
		{"division by zero: a bug", 1, "22012", 500, 1, `level=ERROR msg="query failed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
			want, _, wantBody := do(t, newHandler(t, pool, true), "GET", target)
			if want != 200 {
				t.Fatalf("before the injection: %d %s", want, wantBody)
			}
			reads := injectReadFailures(t, pool, tt.failures, tt.code)
			var logs lockedBuffer
			readiness := &api.Readiness{}
			readiness.SetReady(true)
			h := api.New(store.New(pool), testConfig, readiness, slog.New(slog.NewTextHandler(&logs, nil)))
			status, _, body := do(t, h, "GET", target)
			if status != tt.status {
				t.Fatalf("status = %d %s, want %d", status, body, tt.status)
			}
			if status == 200 && body != wantBody {
				t.Fatalf("answer after the retry = %s, want %s", body, wantBody)
			}
			if got := reads(); got != tt.wantReads {
				t.Fatalf("reads of price_daily = %d, want %d", got, tt.wantReads)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Fatalf("logs lack %s:\n%s", tt.wantLog, logs.String())
			}
			if status == 500 && !strings.Contains(logs.String(), "SQLSTATE "+tt.code) {
				t.Fatalf("the error log does not carry the cause:\n%s", logs.String())
			}
		})
	}
}

// A client that goes away before its answer is logged as 499 and not counted as a success.
func TestClientGoneIs499(t *testing.T) {
	pool, _ := dbtest.Seeded(t, srv, "testdata/fixture.sql")
	injectReadFailures(t, pool, 1, "sleep")
	var logs lockedBuffer
	m := metrics.New("test")
	readiness := &api.Readiness{}
	readiness.SetReady(true)
	cfg := testConfig
	cfg.Metrics = m
	cfg.QueryTimeout = 20 * time.Second
	h := api.New(store.New(pool), cfg, readiness, slog.New(slog.NewTextHandler(&logs, nil)))

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/rates?date_from=2021-01-01&date_to=2021-01-05&orig_code=CNAAA&dest_code=DEAAA", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(rec, req); close(done) }()
	time.Sleep(200 * time.Millisecond) // the query is sleeping in the server
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after the client went away")
	}
	if !strings.Contains(logs.String(), "status=499") {
		t.Fatalf("access log lacks status=499:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "status=200") {
		t.Fatalf("a client that went away is logged as an error or a success:\n%s", logs.String())
	}
	mrec := httptest.NewRecorder()
	m.Handler().ServeHTTP(mrec, httptest.NewRequest("GET", "/metrics", nil))
	scrape, _ := io.ReadAll(mrec.Result().Body)
	if !strings.Contains(string(scrape), `rates_http_requests_total{method="GET",route="/rates",status="499"} 1`) ||
		strings.Contains(string(scrape), `route="/rates",status="200"`) {
		t.Fatalf("request metrics do not count one 499 and no 200:\n%s", grepLines(string(scrape), "rates_http_requests_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

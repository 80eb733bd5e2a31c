package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	if err != nil || rec.Code != 200 {
		t.Fatalf("scrape: %d %v", rec.Code, err)
	}
	return string(b)
}

func TestRecords(t *testing.T) {
	m := New("v1.2.3")
	m.RequestDone("/rates", "GET", 200, 3*time.Millisecond)
	m.RequestDone("/rates", "GET", 200, 3*time.Millisecond)
	m.RequestDone("/rates", "GET", 499, time.Second)
	m.CacheLookup("hit")
	m.CacheLookup("days")
	m.CacheLookup("miss")
	m.SeedDone(false, map[string]int64{"prices": 50}, time.Second, nil)
	m.SeedDone(true, nil, 0, nil)
	m.SeedDone(false, nil, 0, errors.New("broken dump"))
	m.ObserveBatch(false, false, false, 10, 100, time.Second)
	m.ObserveBatch(false, false, true, 10, 100, time.Second)
	m.StagedBatchAge(90 * time.Second)
	m.PartSettled("staged")
	m.PartSettled("staged")
	m.PartSettled("bad")
	m.Published("loaded", 2*time.Second, 500*time.Millisecond)
	m.Published("failed", 0, 0)
	body := scrape(t, m)
	for _, want := range []string{
		`rates_build_info{version="v1.2.3"} 1`,
		`rates_http_requests_total{method="GET",route="/rates",status="200"} 2`,
		`rates_http_requests_total{method="GET",route="/rates",status="499"} 1`,
		`rates_answer_cache_lookups_total{result="hit"} 1`,
		`rates_answer_cache_lookups_total{result="days"} 1`,
		`rates_answer_cache_lookups_total{result="miss"} 1`,
		`rates_seed_runs_total{result="applied"} 1`,
		`rates_seed_runs_total{result="skipped"} 1`,
		`rates_seed_runs_total{result="failed"} 1`,
		`rates_seed_rows_total{table="prices"} 50`,
		`rates_ingest_rows_total 10`,
		`rates_ingest_staged_batch_age_seconds 90`,
		`rates_ingest_parts_total{result="staged"} 2`,
		`rates_ingest_parts_total{result="bad"} 1`,
		`rates_ingest_publishes_total{result="loaded"} 1`,
		`rates_ingest_publishes_total{result="failed"} 1`,
		`rates_ingest_publish_duration_seconds_count 1`,
		`rates_ingest_publish_price_daily_held_seconds_sum 0.5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// Clients choose the method; only HTTP's standard methods become label values of their own.
func TestRequestMethodLabelsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name, method, want string
	}{
		{"standard", "DELETE", "DELETE"},
		{"made up", "PROBE1", "OTHER"},
		{"lower case", "get", "OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New("test")
			m.RequestDone("unmatched", tc.method, 405, time.Millisecond)
			body := scrape(t, m)
			if want := `rates_http_requests_total{method="` + tc.want + `",route="unmatched",status="405"} 1`; !strings.Contains(body, want) {
				t.Errorf("scrape lacks %s", want)
			}
		})
	}
	m := New("test")
	for i := range 100 {
		m.RequestDone("unmatched", fmt.Sprintf("X%d", i), 405, time.Millisecond)
	}
	if n := strings.Count(scrape(t, m), "rates_http_requests_total{"); n != 1 {
		t.Errorf("100 made-up methods made %d series, want 1", n)
	}
}

// A nil *Metrics records nothing and does not panic, so code under test may pass none.
func TestNilRecordsNothing(_ *testing.T) { // fails by panicking
	var m *Metrics
	m.RequestStarted()()
	m.RequestDone("/", "GET", 200, time.Millisecond)
	m.CacheLookup("hit")
	m.SeedDone(false, nil, 0, nil)
	m.ObserveBatch(false, false, false, 1, 1, time.Millisecond)
	m.StagedBatchAge(time.Second)
	m.PartSettled("staged")
	m.Published("loaded", time.Second, time.Second)
}

package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logged serves the requests (status, delay) through observe and returns the statuses of the
// requests that got a log line, with the reason each line gives.
func logged(t *testing.T, cfg RequestLog, requests [][2]int) []string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	h := observe(log, nil, newRequestLogPolicy(cfg))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		delay, _ := strconv.Atoi(r.URL.Query().Get("delay_ms"))
		time.Sleep(time.Duration(delay) * time.Millisecond)
		w.WriteHeader(status)
	}))
	for _, rq := range requests {
		req := httptest.NewRequest(http.MethodGet, "/rates?status="+strconv.Itoa(rq[0])+"&delay_ms="+strconv.Itoa(rq[1]), nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec struct {
			Status int    `json:"status"`
			Logged string `json:"logged"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		got = append(got, strconv.Itoa(rec.Status)+":"+rec.Logged)
	}
	return got
}

func TestRequestLogPolicyKeepsErrorsAndSlowRequests(t *testing.T) {
	const slow = 30 // ms; a request sleeping this long is slow whatever the machine's load
	traffic := [][2]int{
		{200, 0}, {200, 0}, {500, 0}, {200, 0}, {404, 0}, {200, slow}, {200, 0}, {503, 0}, {200, 0}, {200, 0}, {400, 0},
	}
	tests := []struct {
		name string
		cfg  RequestLog
		want []string
	}{
		{"all", RequestLog{SampleEvery: 1, Slow: slow * time.Millisecond},
			[]string{"200:all", "200:all", "500:error", "200:all", "404:error", "200:slow", "200:all", "503:error", "200:all", "200:all", "400:error"}},
		{"errors", RequestLog{SampleEvery: 0, Slow: slow * time.Millisecond},
			[]string{"500:error", "404:error", "200:slow", "503:error", "400:error"}},
		// Six fast successes: the 1st and the 4th are kept.
		{"sample:3", RequestLog{SampleEvery: 3, Slow: slow * time.Millisecond},
			[]string{"200:sample", "500:error", "404:error", "200:slow", "200:sample", "503:error", "400:error"}},
		{"sample:1000", RequestLog{SampleEvery: 1000, Slow: slow * time.Millisecond},
			[]string{"200:sample", "500:error", "404:error", "200:slow", "503:error", "400:error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logged(t, tt.cfg, traffic)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("logged %v\nwant   %v", got, tt.want)
			}
		})
	}
}

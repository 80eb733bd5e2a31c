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

// The policy, on (status, duration) pairs: no clock involved, so the load of the machine cannot
// turn a fast request into a slow one.
func TestRequestLogPolicyKeepsErrorsAndSlowRequests(t *testing.T) {
	const slow = 500 * time.Millisecond
	type req struct {
		status int
		d      time.Duration
	}
	traffic := []req{
		{200, time.Millisecond}, {200, time.Millisecond}, {500, time.Millisecond}, {200, time.Millisecond},
		{404, time.Millisecond}, {200, slow}, {200, time.Millisecond}, {503, 2 * time.Second},
		{200, time.Millisecond}, {200, time.Millisecond}, {400, time.Millisecond}, {499, time.Millisecond},
		{201, slow - time.Nanosecond},
	}
	tests := []struct {
		name  string
		every int
		want  string // status:reason of each request logged
	}{
		{"all", 1, "200:all 200:all 500:error 200:all 404:error 200:slow 200:all 503:error 200:all 200:all 400:error 499:error 201:all"},
		{"errors", 0, "500:error 404:error 200:slow 503:error 400:error 499:error"},
		// Seven fast successes: the 1st, 4th and 7th are kept.
		{"sample:3", 3, "200:sample 500:error 404:error 200:slow 200:sample 503:error 400:error 499:error 201:sample"},
		{"sample:1000", 1000, "200:sample 500:error 404:error 200:slow 503:error 400:error 499:error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRequestLogPolicy(RequestLog{SampleEvery: tt.every, Slow: slow})
			var got []string
			for _, r := range traffic {
				if why, ok := p.keep(r.status, r.d); ok {
					got = append(got, strconv.Itoa(r.status)+":"+why)
				}
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("logged %s\nwant   %s", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// observe applies the policy: the lines it writes, and the fields that say why.
func TestObserveLogsWhatThePolicyKeeps(t *testing.T) {
	tests := []struct {
		name string
		cfg  RequestLog
		want string
	}{
		{"sample:2", RequestLog{SampleEvery: 2, Slow: time.Hour}, "200:sample:2 500:error:2 200:sample:2"},
		// Every request takes at least a nanosecond: all of them are slow.
		{"errors, all slow", RequestLog{SampleEvery: 0, Slow: time.Nanosecond}, "200:slow:0 200:slow:0 500:error:0 200:slow:0 200:slow:0"},
		{"errors", RequestLog{SampleEvery: 0, Slow: time.Hour}, "500:error:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			h := observe(log, nil, newRequestLogPolicy(tt.cfg))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				status, _ := strconv.Atoi(r.URL.Query().Get("status"))
				w.WriteHeader(status)
			}))
			for _, status := range []int{200, 200, 500, 200, 200} {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/rates?status="+strconv.Itoa(status), nil))
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var rec struct {
					Msg         string `json:"msg"`
					Status      int    `json:"status"`
					Logged      string `json:"logged"`
					SampleEvery int    `json:"sample_every"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg != "request" {
					t.Fatalf("log line %q: %v", line, err)
				}
				got = append(got, strconv.Itoa(rec.Status)+":"+rec.Logged+":"+strconv.Itoa(rec.SampleEvery))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("logged %s\nwant   %s", strings.Join(got, " "), tt.want)
			}
		})
	}
}

package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"rates/internal/httpjson"
	"rates/internal/metrics"
)

type requestIDKey struct{}

// RequestIDFrom returns the request id that requestID stored in ctx.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

const maxRequestIDLength = 128

// ids makes request ids: a random prefix drawn once per process and a counter, unique across
// instances without a random draw (a system call) per request.
type ids struct {
	prefix [12]byte
	next   atomic.Uint64
}

func newIDs() *ids {
	g := &ids{}
	var b [6]byte
	_, _ = rand.Read(b[:])
	hex.Encode(g.prefix[:], b[:])
	return g
}

// id is the prefix, a dash and the counter in 8 or more hex digits.
func (g *ids) id() string {
	n := g.next.Add(1)
	var b [12 + 1 + 16]byte
	copy(b[:], g.prefix[:])
	b[12] = '-'
	i := len(b)
	for d := 0; d < 8 || n > 0; d++ {
		i--
		b[i] = "0123456789abcdef"[n&15]
		n >>= 4
	}
	return string(append(b[:13:13], b[i:]...))
}

// requestID takes the caller's id from X-Request-Id, else the ALB's X-Amzn-Trace-Id, else
// makes one, and echoes it in the response so a client can quote it.
func requestID(g *ids) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := cleanID(r.Header.Get("X-Request-Id"))
			if id == "" {
				id = cleanID(r.Header.Get("X-Amzn-Trace-Id"))
			}
			if id == "" {
				id = g.id()
			}
			w.Header()["X-Request-Id"] = []string{id}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		})
	}
}

// cleanID drops ids that are too long or carry characters that do not belong in a log field.
func cleanID(id string) string {
	if len(id) > maxRequestIDLength {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return ""
		}
	}
	return id
}

// statusClientClosedRequest is logged and counted for a request whose client disconnected
// before it was answered (nginx's 499; nothing is sent).
const statusClientClosedRequest = 499

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
	route  string // set by dispatch for the routes it serves without the router
}

// noStore is the Cache-Control of every error.
var noStore = []string{"no-store"}

// WriteHeader makes every error uncacheable: RFC 9111 lets caches keep 404, 405 and 414 by
// default, and an error says nothing about the data an ETag would name.
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	if code >= http.StatusBadRequest {
		h := s.Header()
		delete(h, "Etag")
		h["Cache-Control"] = noStore
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (POST /batches lifts deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// RequestLog chooses which requests get an access log line. Errors (status 400 and above) and
// requests taking at least Slow always do; of the others, one in SampleEvery (1: every request,
// 0: none). The metrics count every request either way.
type RequestLog struct {
	SampleEvery int
	Slow        time.Duration
}

type requestLogPolicy struct {
	RequestLog
	seen atomic.Uint64 // requests that were neither errors nor slow
}

func newRequestLogPolicy(cfg RequestLog) *requestLogPolicy {
	return &requestLogPolicy{RequestLog: cfg}
}

// keep says whether a request gets a log line, and why: "error", "slow" or "sample" (one in
// SampleEvery, which the line carries so that counts from the logs can be scaled back).
func (p *requestLogPolicy) keep(status int, d time.Duration) (string, bool) {
	switch {
	case status >= 400:
		return "error", true
	case p.Slow > 0 && d >= p.Slow:
		return "slow", true
	case p.SampleEvery <= 0:
		return "", false
	case p.SampleEvery == 1:
		return "all", true
	}
	// A counter rather than a random draw: exact one-in-N, and the first request is kept.
	return "sample", (p.seen.Add(1)-1)%uint64(p.SampleEvery) == 0
}

// observe writes the request's log line (as the policy decides) and records it in the metrics,
// from one response wrapper and one clock reading. It runs before routing, so the route pattern
// is what dispatch recorded once the request was served.
func observe(log *slog.Logger, m *metrics.Metrics, policy *requestLogPolicy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			done := m.RequestStarted()
			defer done()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			switch {
			case rec.status == 0 && r.Context().Err() != nil:
				// Nothing was written because the client went away: not a success.
				rec.status = statusClientClosedRequest
			case rec.status == 0:
				rec.status = http.StatusOK
			}
			elapsed := time.Since(start)
			route := rec.route
			if route == "" {
				route = "unmatched"
			}
			m.RequestDone(route, r.Method, rec.status, elapsed)
			why, ok := policy.keep(rec.status, elapsed)
			if !ok {
				return
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("query", truncateLog(r.URL.RawQuery)),
				slog.Int("status", rec.status),
				slog.Int("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("request_id", RequestIDFrom(r.Context())),
				slog.String("logged", why),
				slog.Int("sample_every", policy.SampleEvery),
			)
		})
	}
}

func truncateLog(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

// recoverPanics turns a panic in a handler into a JSON 500 and a log line with the stack.
func recoverPanics(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() { //nolint:contextcheck // a deferred recover has no parameters; it logs with r.Context()
				if v := recover(); v != nil {
					if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
						panic(v) // net/http's way to abort a response: not a fault
					}
					log.ErrorContext(r.Context(), "panic in handler", "panic", v, "stack", string(debug.Stack()),
						"request_id", RequestIDFrom(r.Context()))
					httpjson.Error(w, http.StatusInternalServerError, "internal error")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// limitQuery answers 414 to query strings longer than maxBytes before any parsing.
func limitQuery(maxBytes int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if maxBytes > 0 && len(r.URL.RawQuery) > maxBytes {
				httpjson.Error(w, http.StatusRequestURITooLong, "query string longer than "+strconv.Itoa(maxBytes)+" bytes")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

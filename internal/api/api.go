// Package api serves the rates HTTP API: GET /rates, the health endpoints and JSON errors.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"rates/internal/httpjson"
	"rates/internal/metrics"
	"rates/internal/store"
)

// Store is what the API needs from the database.
type Store interface {
	ResolvePair(ctx context.Context, orig, dest string) (store.Location, store.Location, error)
	DailyStats(ctx context.Context, orig, dest []string, from, to time.Time) ([]store.DayStat, error)
	Generation(ctx context.Context) (int64, error)
	Ping(ctx context.Context) error
}

// Config tunes the API.
type Config struct {
	// MaxRangeDays bounds date_to - date_from + 1, so no request can make the server build
	// millions of items.
	MaxRangeDays int
	// QueryTimeout bounds each request's database work, including the wait for a pooled
	// connection; past it the client gets 503 instead of a hanging request.
	QueryTimeout time.Duration
	// MaxQueryBytes rejects longer query strings with 414.
	MaxQueryBytes int
	// CacheBytes bounds the cache of computed answers; 0 turns it off.
	CacheBytes int
	// Metrics records requests and cache lookups; nil records nothing.
	Metrics *metrics.Metrics
	// ServeMetrics adds GET /metrics to this router (when metrics have no listener of their own).
	ServeMetrics bool
	// Batches, when set, serves POST /batches (price batch uploads).
	Batches http.Handler
}

// Readiness reports whether the instance should receive traffic: start-up work (migrations,
// seed) has finished and shutdown has not begun.
type Readiness struct {
	ready atomic.Bool
}

// SetReady marks start-up as finished (true) or the instance as draining (false).
func (r *Readiness) SetReady(v bool) { r.ready.Store(v) }

// Ready reports the current state.
func (r *Readiness) Ready() bool { return r.ready.Load() }

// Handler serves the API.
type Handler struct {
	store     Store
	cfg       Config
	log       *slog.Logger
	readiness *Readiness
	router    chi.Router
	cache     *answerCache
}

// New builds the router with its middleware.
func New(st Store, cfg Config, readiness *Readiness, log *slog.Logger) *Handler {
	h := &Handler{store: st, cfg: cfg, log: log, readiness: readiness}
	if cfg.CacheBytes > 0 {
		h.cache = newAnswerCache(cfg.CacheBytes)
	}

	r := chi.NewRouter()
	r.Use(requestID, observe(log, cfg.Metrics), recoverPanics(log), limitQuery(cfg.MaxQueryBytes), middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "not found")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	r.Get("/", h.root)
	r.Get("/rates", h.rates)
	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	if cfg.Batches != nil {
		r.Method(http.MethodPost, "/batches", cfg.Batches)
	}
	if cfg.ServeMetrics && cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics.Handler())
	}
	h.router = r
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

func (h *Handler) root(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"message": "Hello world!"})
}

func (h *Handler) rates(w http.ResponseWriter, r *http.Request) {
	q, err := ParseRatesQuery(r.URL.RawQuery, h.cfg.MaxRangeDays)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()

	var (
		key        string
		generation int64
		answer     cachedAnswer
		hit        bool
	)
	if h.cache != nil {
		// One cheap round trip tells whether a cached answer still reflects the data.
		if generation, err = store.RetryOnce(ctx, h.store.Generation); err != nil {
			h.storeFailed(w, r, err)
			return
		}
		key = q.cacheKey()
		answer, hit = h.cache.get(key, generation)
		h.cfg.Metrics.CacheLookup(hit)
	}
	if !hit {
		answer, err = store.RetryOnce(ctx, func(ctx context.Context) (cachedAnswer, error) { return h.answer(ctx, q) })
		if err != nil {
			h.storeFailed(w, r, err)
			return
		}
		h.cache.put(key, generation, answer)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(answer.status)
	_, _ = w.Write(answer.body)
}

// answer computes the response to a valid query: the days, or 400 for an unknown code.
func (h *Handler) answer(ctx context.Context, q RatesQuery) (cachedAnswer, error) {
	orig, dest, err := h.store.ResolvePair(ctx, q.Orig, q.Dest)
	if err != nil {
		return cachedAnswer{}, err
	}
	for _, loc := range []struct {
		param, code string
		found       bool
	}{{"orig_code", q.Orig, orig.Found}, {"dest_code", q.Dest, dest.Found}} {
		if !loc.found {
			return cachedAnswer{status: http.StatusBadRequest,
				body: httpjson.ErrorBody("unknown " + loc.param + " " + quote(loc.code) + ": not a port code or region slug")}, nil
		}
	}
	stats, err := h.store.DailyStats(ctx, orig.Ports, dest.Ports, q.From, q.To)
	if err != nil {
		return cachedAnswer{}, err
	}
	// About 50 bytes a day; sized once so the cached slice is not copied again.
	body := appendRates(make([]byte, 0, 16+q.Days()*56), q, stats)
	return cachedAnswer{status: http.StatusOK, body: body}, nil
}

func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away; nobody reads an answer, and observe logs a 499
	}
	if store.IsUnavailable(err) {
		h.log.WarnContext(r.Context(), "database unavailable", "error", err.Error(), "request_id", RequestIDFrom(r.Context()))
		httpjson.Error(w, http.StatusServiceUnavailable, "database unavailable, try again shortly")
		return
	}
	h.log.ErrorContext(r.Context(), "query failed", "error", err.Error(), "request_id", RequestIDFrom(r.Context()))
	httpjson.Error(w, http.StatusInternalServerError, "internal error")
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if !h.readiness.Ready() {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "starting up or shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database unreachable"})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ready"})
}

func quote(s string) string { return strconv.Quote(truncate(s)) }

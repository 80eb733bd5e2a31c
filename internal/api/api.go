// Package api serves the rates HTTP API: GET /rates, the health endpoints and JSON errors.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"rates/internal/store"
)

// Store is what the API needs from the database.
type Store interface {
	ResolvePair(ctx context.Context, orig, dest string) (store.Location, store.Location, error)
	DailyStats(ctx context.Context, orig, dest []string, from, to time.Time) ([]store.DayStat, error)
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
	buffers   sync.Pool
}

// New builds the router with its middleware.
func New(st Store, cfg Config, readiness *Readiness, log *slog.Logger) *Handler {
	h := &Handler{store: st, cfg: cfg, log: log, readiness: readiness}
	h.buffers.New = func() any { b := make([]byte, 0, 4096); return &b }

	r := chi.NewRouter()
	r.Use(requestID, accessLog(log), recoverPanics(log), limitQuery(cfg.MaxQueryBytes), middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	r.Get("/", h.root)
	r.Get("/rates", h.rates)
	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	h.router = r
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

func (h *Handler) root(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"message": "Hello world!"})
}

func (h *Handler) rates(w http.ResponseWriter, r *http.Request) {
	q, err := ParseRatesQuery(r.URL.RawQuery, h.cfg.MaxRangeDays)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()

	orig, dest, err := h.store.ResolvePair(ctx, q.Orig, q.Dest)
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	if !orig.Found {
		writeError(w, http.StatusBadRequest, "unknown orig_code "+quote(q.Orig)+": not a port code or region slug")
		return
	}
	if !dest.Found {
		writeError(w, http.StatusBadRequest, "unknown dest_code "+quote(q.Dest)+": not a port code or region slug")
		return
	}
	stats, err := h.store.DailyStats(ctx, orig.Ports, dest.Ports, q.From, q.To)
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}

	bp := h.buffers.Get().(*[]byte)
	body := appendRates((*bp)[:0], q, stats)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	if cap(body) <= 1<<20 { // keep pooled buffers from pinning huge responses
		*bp = body
		h.buffers.Put(bp)
	}
}

func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away; nobody reads an answer
	}
	if store.IsUnavailable(err) {
		h.log.WarnContext(r.Context(), "database unavailable", "error", err.Error(), "request_id", RequestIDFrom(r.Context()))
		writeError(w, http.StatusServiceUnavailable, "database unavailable, try again shortly")
		return
	}
	h.log.ErrorContext(r.Context(), "query failed", "error", err.Error(), "request_id", RequestIDFrom(r.Context()))
	writeError(w, http.StatusInternalServerError, "internal error")
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if !h.readiness.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "starting up or shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func quote(s string) string { return strconv.Quote(truncate(s)) }

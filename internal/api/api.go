// Package api serves the rates HTTP API: GET /rates, the health endpoints and JSON errors.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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
	Generation(ctx context.Context) (store.Generation, error)
	Tree(ctx context.Context) (*store.Tree, error)
	Resolve(ctx context.Context, code string) (store.Location, error)
	DailyStats(ctx context.Context, orig, dest []string, from, to time.Time) ([]store.DayStat, store.Generation, error)
	ScanDaily(ctx context.Context, fn func(store.DailyRow) error) (store.Generation, error)
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
	// Listen, when set, opens connections that hear of committed changes of the data (on the
	// primary). Once Start has run, requests use the generation the watcher keeps instead of
	// reading it (see watcher).
	Listen func(ctx context.Context) (Listener, error)
	// PollInterval is how often the watcher reads the generation whatever it hears; a
	// generation is trusted for twice that (0: 500 ms).
	PollInterval time.Duration
	// MaxAge is the max-age of Cache-Control on GET /rates answers; 0 sends no-cache (every
	// reuse revalidates with If-None-Match).
	MaxAge time.Duration
	// Preload bounds the time Start spends loading every day of price_daily into the cache
	// before the instance turns ready; 0 loads nothing.
	Preload time.Duration
	// Metrics records requests and cache lookups; nil records nothing.
	Metrics *metrics.Metrics
	// ServeMetrics adds GET /metrics to this router (when metrics have no listener of their own).
	ServeMetrics bool
	// Batches, when set, serves POST /batches (price batch uploads).
	Batches http.Handler
	// RequestLog chooses which requests get an access log line.
	RequestLog RequestLog
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
	// serve is the middleware around dispatch.
	serve http.Handler
	// answers and months are the two caches (newCaches); both nil when caching is off.
	answers *answerCache
	months  *answerCache
	gens    *generationReader
	watch   *watcher
	treeMu  sync.Mutex
	tree    atomic.Pointer[store.Tree]
	// cacheControl is the Cache-Control value of successful answers.
	cacheControl []string
}

// New builds the router with its middleware.
func New(st Store, cfg Config, readiness *Readiness, log *slog.Logger) *Handler {
	h := &Handler{store: st, cfg: cfg, log: log, readiness: readiness, cacheControl: cacheControl(cfg.MaxAge)}
	if cfg.CacheBytes > 0 {
		h.answers, h.months = newCaches(cfg.CacheBytes)
	}
	readGen := func(ctx context.Context) (store.Generation, error) { return store.RetryOnce(ctx, st.Generation) }
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	h.watch = &watcher{read: readGen, listen: cfg.Listen, poll: poll, trust: 2 * poll, timeout: cfg.QueryTimeout, log: log,
		observe: func(gen store.Generation) {
			h.answers.advance(gen)
			h.months.advance(gen)
		}}
	h.gens = newGenerationReader(readGen, cfg.QueryTimeout, h.watch.offer)

	r := chi.NewRouter()
	r.Use(middleware.GetHead)
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
		r.Method(http.MethodGet, "/batches/{id}", cfg.Batches)
		r.Method(http.MethodDelete, "/batches/{id}", cfg.Batches)
	}
	if cfg.ServeMetrics && cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics.Handler())
	}
	h.router = r
	h.serve = requestID(newIDs())(observe(log, cfg.Metrics, newRequestLogPolicy(cfg.RequestLog))(
		recoverPanics(log)(limitQuery(cfg.MaxQueryBytes)(http.HandlerFunc(h.dispatch)))))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve.ServeHTTP(w, r) }

// dispatch sends GET and HEAD /rates straight to their handler, and everything else through
// the router: most requests are for /rates, and the router's context costs each of them two
// allocations.
func (h *Handler) dispatch(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/rates" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if rec, ok := w.(*statusRecorder); ok {
			rec.route = "/rates"
		}
		h.rates(w, r)
		return
	}
	// The router's context, made here so that the route it matched can be read afterwards.
	rctx := chi.NewRouteContext()
	h.router.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)))
	if rec, ok := w.(*statusRecorder); ok && rctx.RoutePattern() != "" {
		rec.route = rctx.RoutePattern()
	}
}

func (h *Handler) root(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"message": "Hello world!"})
}

// currentTree returns the port and region tree of gen or newer, loading it when ports or
// regions have changed (or the generation counter was reset) since it was last loaded.
func (h *Handler) currentTree(ctx context.Context, deadline time.Time, gen store.Generation) (*store.Tree, error) {
	fresh := func(t *store.Tree) bool {
		return t != nil && t.Generation().Epoch == gen.Epoch && t.Generation().Tree >= gen.Tree
	}
	if t := h.tree.Load(); fresh(t) {
		return t, nil
	}
	h.treeMu.Lock()
	defer h.treeMu.Unlock()
	if t := h.tree.Load(); fresh(t) {
		return t, nil
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	start := time.Now()
	t, err := h.store.Tree(ctx)
	if err != nil {
		return nil, err
	}
	h.tree.Store(t)
	h.watch.offer(t.Generation(), start)
	return t, nil
}

func retryOnce(ctx context.Context, op func(context.Context) error) error {
	_, err := store.RetryOnce(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
	return err
}

func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away; nobody reads an answer, and observe logs a 499
	}
	if httpjson.StatusOf(err) == http.StatusServiceUnavailable {
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

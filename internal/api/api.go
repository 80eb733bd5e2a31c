// Package api serves the rates HTTP API: GET /rates, the health endpoints and JSON errors.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
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
	// CacheBytes bounds the cache of computed answers; 0 turns it off.
	CacheBytes int
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
	// answers and months are the two caches (newCaches); both nil when caching is off.
	answers *answerCache
	months  *answerCache
	gens    *generationReader
	treeMu  sync.Mutex
	tree    atomic.Pointer[store.Tree]
}

// New builds the router with its middleware.
func New(st Store, cfg Config, readiness *Readiness, log *slog.Logger) *Handler {
	h := &Handler{store: st, cfg: cfg, log: log, readiness: readiness}
	if cfg.CacheBytes > 0 {
		h.answers, h.months = newCaches(cfg.CacheBytes)
	}
	h.gens = newGenerationReader(func(ctx context.Context) (store.Generation, error) {
		return store.RetryOnce(ctx, st.Generation)
	}, cfg.QueryTimeout, func(gen store.Generation) {
		h.answers.advance(gen)
		h.months.advance(gen)
	})

	r := chi.NewRouter()
	r.Use(requestID, observe(log, cfg.Metrics, newRequestLogPolicy(cfg.RequestLog)), recoverPanics(log), limitQuery(cfg.MaxQueryBytes), middleware.GetHead)
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

	// One generation read, shared with the requests that arrived at about the same time, tells
	// which cached answers, days and port tree still reflect the data.
	gen, err := h.gens.get(ctx)
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	key := q.cacheKey()
	answer, hit := h.answers.get(key, gen)
	result := "hit"
	if !hit {
		// A deadlock or serialization failure of the read (40P01, 40001) is retried once.
		err = retryOnce(ctx, func(ctx context.Context) error {
			var e error
			answer, result, e = h.answer(ctx, q, gen)
			return e
		})
		if err != nil {
			h.storeFailed(w, r, err)
			return
		}
		h.answers.put(key, gen, answer)
	}
	if h.answers != nil {
		h.cfg.Metrics.CacheLookup(result)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(answer.status)
	_, _ = w.Write(answer.body)
}

// answer computes the response to a valid query: the days, or 400 for an unknown code. result
// tells whether the days came from the cache ("days") or the database ("miss").
func (h *Handler) answer(ctx context.Context, q RatesQuery, gen store.Generation) (cacheEntry, string, error) {
	tree, err := h.currentTree(ctx, gen)
	if err != nil {
		return cacheEntry{}, "", err
	}
	var locs [2]store.Location
	for i, loc := range []struct{ param, code string }{{"orig_code", q.Orig}, {"dest_code", q.Dest}} {
		l, ok := tree.Resolve(loc.code)
		if !ok {
			if l, err = h.store.Resolve(ctx, loc.code); err != nil {
				return cacheEntry{}, "", err
			}
		}
		if !l.Found {
			return cacheEntry{status: http.StatusBadRequest,
				body: httpjson.ErrorBody("unknown " + loc.param + " " + quote(loc.code) + ": not a port code or region slug")}, "miss", nil
		}
		locs[i] = l
	}
	stats, result, err := h.dailyStats(ctx, q, gen, locs[0], locs[1])
	if err != nil {
		return cacheEntry{}, "", err
	}
	// About 50 bytes a day; sized once so the cached slice is not copied again.
	body := appendRates(make([]byte, 0, 16+q.Days()*56), q, stats)
	return cacheEntry{status: http.StatusOK, body: body}, result, nil
}

// dailyStats returns the stats of the days of q. With the cache on, it works in whole calendar
// months, each cached under the resolved pair, so that other ranges over the same pair are
// answered from memory; the months not cached are read in one query.
// A batch that committed after this request's generation read would show in the months read
// and not in the ones cached at gen: an answer joining them would show part of it, and months
// cached under gen would tear later answers. So a generation read that began after the months'
// read (shared with other requests, as the first) must still find gen; if it does not, the
// request's whole range is read in one query instead. Nothing of it is cached: that read moved
// the caches to the newer generation, and they refuse entries of gen.
func (h *Handler) dailyStats(ctx context.Context, q RatesQuery, gen store.Generation, orig, dest store.Location) ([]store.DayStat, string, error) {
	if h.months == nil {
		stats, err := h.store.DailyStats(ctx, orig.Ports, dest.Ports, q.From, q.To)
		return stats, "miss", err
	}
	var (
		months       []time.Time
		cached       [][]store.DayStat
		firstMissing = -1
		lastMissing  = -1
		pairKey      = orig.Key + "\x00" + dest.Key + "\x00"
		monthKey     = func(m time.Time) string {
			var b strings.Builder
			b.Grow(len(pairKey) + dayKeyLen)
			b.WriteString(pairKey)
			writeDayKey(&b, m)
			return b.String()
		}
	)
	for m := time.Date(q.From.Year(), q.From.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(q.To); m = m.AddDate(0, 1, 0) {
		e, ok := h.months.get(monthKey(m), gen)
		if !ok {
			if firstMissing < 0 {
				firstMissing = len(months)
			}
			lastMissing = len(months)
		}
		months = append(months, m)
		cached = append(cached, e.days)
	}
	result := "days"
	if firstMissing >= 0 {
		result = "miss"
		// The month before and the one after come along when not held: the query costs one
		// index descent per port pair whatever its range, and the next request over the pair
		// is likely to ask for a neighbouring range.
		from, to := months[firstMissing], months[lastMissing].AddDate(0, 1, 0)
		if before := from.AddDate(0, -1, 0); before.Year() >= 1 {
			if _, ok := h.months.get(monthKey(before), gen); !ok {
				from = before
			}
		}
		if to.Year() > 9999 {
			to = months[lastMissing]
		} else if _, ok := h.months.get(monthKey(to), gen); ok {
			to = months[lastMissing]
		}
		stats, err := h.store.DailyStats(ctx, orig.Ports, dest.Ports, from, to.AddDate(0, 1, -1))
		if err != nil {
			return nil, "", err
		}
		if now, err := h.gens.get(ctx); err != nil {
			return nil, "", err
		} else if now != gen {
			stats, err = h.store.DailyStats(ctx, orig.Ports, dest.Ports, q.From, q.To)
			return stats, result, err
		}
		byMonth := make([][]store.DayStat, (to.Year()-from.Year())*12+int(to.Month()-from.Month())+1)
		for _, s := range stats {
			i := (s.Day.Year()-from.Year())*12 + int(s.Day.Month()-from.Month())
			byMonth[i] = append(byMonth[i], s)
		}
		for i, days := range byMonth {
			m := from.AddDate(0, i, 0)
			if j := (m.Year()-months[0].Year())*12 + int(m.Month()-months[0].Month()); j >= 0 && j < len(months) {
				cached[j] = days
			}
			h.months.put(monthKey(m), gen, cacheEntry{days: days})
		}
	}
	stats := make([]store.DayStat, 0, q.Days())
	for _, days := range cached {
		for _, s := range days {
			if !s.Day.Before(q.From) && !s.Day.After(q.To) {
				stats = append(stats, s)
			}
		}
	}
	return stats, result, nil
}

// currentTree returns the port and region tree of gen or newer, loading it when ports or
// regions have changed (or the generation counter was reset) since it was last loaded.
func (h *Handler) currentTree(ctx context.Context, gen store.Generation) (*store.Tree, error) {
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
	t, err := h.store.Tree(ctx)
	if err != nil {
		return nil, err
	}
	h.tree.Store(t)
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

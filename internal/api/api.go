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
	// The generation the watcher keeps, or, when it has none to trust, one read shared with the
	// requests that arrived at about the same time, tells which cached answers, days and port
	// tree still reflect the data. The database work of a request, if any, ends by deadline.
	now := time.Now()
	deadline := now.Add(h.cfg.QueryTimeout)
	gen, fresh := h.watch.current(now)
	if !fresh {
		if gen, err = h.sharedGeneration(r.Context(), deadline); err != nil {
			h.storeFailed(w, r, err)
			return
		}
	}
	key := q.cacheKey()
	answer, hit := h.answers.get(key, gen)
	result := "hit"
	if !hit {
		if answer, result, err = h.compute(r.Context(), deadline, q, key, gen); err != nil {
			h.storeFailed(w, r, err)
			return
		}
	}
	if h.answers != nil {
		h.cfg.Metrics.CacheLookup(result)
	}
	h.send(w, r, answer)
}

func (h *Handler) sharedGeneration(ctx context.Context, deadline time.Time) (store.Generation, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return h.gens.get(ctx)
}

// compute answers a query the answer cache does not hold, and caches the answer under the
// generation of its data.
func (h *Handler) compute(ctx context.Context, deadline time.Time, q RatesQuery, key string, gen store.Generation) (cacheEntry, string, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var (
		answer  cacheEntry
		dataGen store.Generation
		result  string
	)
	// A deadlock or serialization failure of the read (40P01, 40001) is retried once.
	err := retryOnce(ctx, func(ctx context.Context) error {
		var e error
		answer, dataGen, result, e = h.answer(ctx, q, gen)
		return e
	})
	if err != nil {
		return cacheEntry{}, "", err
	}
	h.answers.put(key, dataGen, answer)
	return answer, result, nil
}

// Header values shared by every answer; net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
	// A proxy in front that compresses (CloudFront, nginx) keeps one copy per encoding.
	varyEncoding = []string{"Accept-Encoding"}
)

// cacheControl is the Cache-Control of successful answers: no-cache (store, but revalidate on
// every reuse) or a max-age of whole seconds.
func cacheControl(maxAge time.Duration) []string {
	if s := int64(maxAge / time.Second); s > 0 {
		return []string{"public, max-age=" + strconv.FormatInt(s, 10)}
	}
	return []string{"no-cache"}
}

// send writes an answer: an error as it is (observe makes it uncacheable), a success with its
// validator and caching headers, as 304 without a body when If-None-Match names its ETag
// (RFC 9110 13.1.2; HEAD too: chi routes it here and net/http drops the body).
func (h *Handler) send(w http.ResponseWriter, r *http.Request, e cacheEntry) {
	hdr := w.Header()
	if e.status != http.StatusOK {
		hdr["Content-Type"] = jsonContentType
		w.WriteHeader(e.status)
		_, _ = w.Write(e.body)
		return
	}
	hdr["Etag"] = e.etag
	hdr["Cache-Control"] = h.cacheControl
	hdr["Vary"] = varyEncoding
	if inm, ok := r.Header["If-None-Match"]; ok && etagMatches(inm, e.etag[0]) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr["Content-Type"] = jsonContentType
	hdr["Content-Length"] = e.length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// answer computes the response to a valid query: the days, or 400 for an unknown code, and the
// generation of the data it was computed from. result tells whether the days came from the
// cache ("days") or the database ("miss").
func (h *Handler) answer(ctx context.Context, q RatesQuery, gen store.Generation) (cacheEntry, store.Generation, string, error) {
	tree, err := h.currentTree(ctx, gen)
	if err != nil {
		return cacheEntry{}, gen, "", err
	}
	if tg := tree.Generation(); tg.Tree > gen.Tree {
		// A tree loaded after gen: the answer is of the tree's generation, which is newer.
		gen = tg
	}
	var locs [2]store.Location
	for i, loc := range []struct{ param, code string }{{"orig_code", q.Orig}, {"dest_code", q.Dest}} {
		l, ok := tree.Resolve(loc.code)
		if !ok {
			if l, err = h.store.Resolve(ctx, loc.code); err != nil {
				return cacheEntry{}, gen, "", err
			}
		}
		if !l.Found {
			return cacheEntry{status: http.StatusBadRequest,
				body: httpjson.ErrorBody("unknown " + loc.param + " " + quote(loc.code) + ": not a port code or region slug")}, gen, "miss", nil
		}
		locs[i] = l
	}
	stats, gen, result, err := h.dailyStats(ctx, q, gen, locs[0], locs[1])
	if err != nil {
		return cacheEntry{}, gen, "", err
	}
	// About 50 bytes a day; sized once so the cached slice is not copied again.
	return okEntry(appendRates(make([]byte, 0, 16+q.Days()*56), q, stats)), gen, result, nil
}

// dailyStats returns the stats of the days of q and the generation they are of. With the cache
// on, it works in whole calendar months, each cached under the resolved pair, so that other
// ranges over the same pair are answered from memory; the months not cached are read in one
// query, which also reads the generation of its snapshot.
// A batch that committed after gen would show in the months read and not in the ones cached at
// gen: an answer joining them would show part of it, and months cached under gen would tear
// later answers. So when the read finds another generation, the request's whole range is read
// in one query instead, and the answer is of that query's generation; the caches moved to it
// (watcher.offer) and keep nothing of gen.
func (h *Handler) dailyStats(ctx context.Context, q RatesQuery, gen store.Generation, orig, dest store.Location) ([]store.DayStat, store.Generation, string, error) {
	if h.months == nil {
		stats, g, err := h.readDays(ctx, orig, dest, q.From, q.To)
		return stats, g, "miss", err
	}
	var (
		months       []time.Time
		cached       [][]store.DayStat
		firstMissing = -1
		lastMissing  = -1
		pairKey      = orig.Key + "\x00" + dest.Key + "\x00"
	)
	for m := time.Date(q.From.Year(), q.From.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(q.To); m = m.AddDate(0, 1, 0) {
		e, ok := h.months.get(monthKey(pairKey, m), gen)
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
			if _, ok := h.months.get(monthKey(pairKey, before), gen); !ok {
				from = before
			}
		}
		if to.Year() > 9999 {
			to = months[lastMissing]
		} else if _, ok := h.months.get(monthKey(pairKey, to), gen); ok {
			to = months[lastMissing]
		}
		stats, read, err := h.readDays(ctx, orig, dest, from, to.AddDate(0, 1, -1))
		if err != nil {
			return nil, gen, "", err
		}
		if read != gen {
			stats, read, err = h.readDays(ctx, orig, dest, q.From, q.To)
			return stats, read, result, err
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
			h.months.put(monthKey(pairKey, m), gen, cacheEntry{days: days})
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
	return stats, gen, result, nil
}

// readDays reads the days of a pair from the database and hands the generation of the read to
// the watcher: a newer one moves the caches at once.
func (h *Handler) readDays(ctx context.Context, orig, dest store.Location, from, to time.Time) ([]store.DayStat, store.Generation, error) {
	start := time.Now()
	stats, gen, err := h.store.DailyStats(ctx, orig.Ports, dest.Ports, from, to)
	if err == nil {
		h.watch.offer(gen, start)
	}
	return stats, gen, err
}

// monthKey is the cache key of the days of month m (a first of the month) of a resolved pair.
func monthKey(pairKey string, m time.Time) string {
	var b strings.Builder
	b.Grow(len(pairKey) + dayKeyLen)
	b.WriteString(pairKey)
	writeDayKey(&b, m)
	return b.String()
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

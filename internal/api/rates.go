package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"rates/internal/httpjson"
	"rates/internal/store"
)

// maxKeyLen bounds the cache keys of an answer and of a month: two codes of at most
// maxCodeLength bytes, their prefixes and separators, and two days.
const maxKeyLen = 2*(maxCodeLength+2) + 2 + 2*dayKeyLen

func (h *Handler) rates(w http.ResponseWriter, r *http.Request) {
	q, err := ParseRatesQuery(r.URL.RawQuery, h.cfg.MaxRangeDays)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	// The generation the watcher keeps, or, when it has none to trust, one read shared with the
	// requests that arrived at about the same time, tells which cached answers, days and port
	// tree still reflect the data.
	// A request's database work ends QueryTimeout after its arrival. Answers from memory never
	// make the context with that deadline (a timer each): it is made where the database is asked.
	now := time.Now()
	ctx, deadline := r.Context(), now.Add(h.cfg.QueryTimeout)
	gen, fresh := h.watch.current(now)
	if !fresh {
		if gen, err = h.sharedGeneration(ctx, deadline); err != nil {
			h.storeFailed(w, r, err)
			return
		}
	}
	var buf [maxKeyLen]byte
	key := q.appendKey(buf[:0])
	answer, hit := h.answers.get(key, gen)
	result := "hit"
	if !hit {
		if answer, result, err = h.compute(ctx, deadline, q, key, gen); err != nil {
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

// compute answers a query the answer cache does not hold. The answer is cached, under the
// generation of its data, the second time it is asked: most queries of clients that range over
// many routes and dates are asked once, and filing each of them would cost every request a
// store and an eviction for answers nobody asks again.
func (h *Handler) compute(ctx context.Context, deadline time.Time, q RatesQuery, key []byte, gen store.Generation) (cacheEntry, string, error) {
	var (
		answer  cacheEntry
		dataGen store.Generation
		result  string
	)
	// A deadlock or serialization failure of the read (40P01, 40001) is retried once.
	err := retryOnce(ctx, func(ctx context.Context) error {
		var e error
		answer, dataGen, result, e = h.answer(ctx, deadline, q, gen)
		return e
	})
	if err != nil {
		return cacheEntry{}, "", err
	}
	if h.answers.admit(key) {
		h.answers.put(key, dataGen, answer)
	}
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
// (RFC 9110 13.1.2; HEAD too: net/http drops the body of a HEAD).
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
func (h *Handler) answer(ctx context.Context, deadline time.Time, q RatesQuery, gen store.Generation) (cacheEntry, store.Generation, string, error) {
	tree, err := h.currentTree(ctx, deadline, gen)
	if err != nil {
		return cacheEntry{}, gen, "", err
	}
	if tg := tree.Generation(); tg.Tree > gen.Tree {
		// A tree loaded after gen: the answer is of the tree's generation, which is newer.
		gen = tg
	}
	var locs [2]store.Location
	for i, loc := range [2]struct{ param, code string }{{"orig_code", q.Orig}, {"dest_code", q.Dest}} {
		l, ok := tree.Resolve(loc.code)
		if !ok {
			rctx, cancel := context.WithDeadline(ctx, deadline)
			l, err = h.store.Resolve(rctx, loc.code)
			cancel()
			if err != nil {
				return cacheEntry{}, gen, "", err
			}
		}
		if !l.Found {
			return cacheEntry{status: http.StatusBadRequest,
				body: httpjson.ErrorBody("unknown " + loc.param + " " + quote(loc.code) + ": not a port code or region slug")}, gen, "miss", nil
		}
		locs[i] = l
	}
	days, gen, result, err := h.dailyStats(ctx, deadline, q, gen, locs[0], locs[1])
	if err != nil {
		return cacheEntry{}, gen, "", err
	}
	// About 50 bytes a day; sized once so the cached slice is not copied again.
	return okEntry(appendRates(make([]byte, 0, 16+q.Days()*56), q, days...)), gen, result, nil
}

// dailyStats returns the stats of the days of q, in chunks that may hold days outside the
// range, and the generation they are of. With the cache on, it works in whole calendar months,
// each cached under the resolved pair, so that other ranges over the same pair are answered
// from memory; the months not cached are read in one query, which also reads the generation of
// its snapshot.
// A batch that committed after gen would show in the months read and not in the ones cached at
// gen: an answer joining them would show part of it, and months cached under gen would tear
// later answers. So when the read finds another generation, the request's whole range is read
// in one query instead, and the answer is of that query's generation; the caches moved to it
// (watcher.offer) and keep nothing of gen.
func (h *Handler) dailyStats(ctx context.Context, deadline time.Time, q RatesQuery, gen store.Generation, orig, dest store.Location) ([][]store.DayStat, store.Generation, string, error) {
	if h.months == nil {
		stats, g, err := h.readDays(ctx, deadline, orig, dest, q.From, q.To)
		return [][]store.DayStat{stats}, g, "miss", err
	}
	var buf [maxKeyLen]byte
	pair := append(append(append(append(buf[:0], orig.Key...), 0), dest.Key...), 0)
	monthKey := func(m time.Time) []byte { return appendDayKey(pair, m) }
	first := time.Date(q.From.Year(), q.From.Month(), 1, 0, 0, 0, 0, time.UTC)
	n := (q.To.Year()-first.Year())*12 + int(q.To.Month()-first.Month()) + 1
	cached := make([][]store.DayStat, n)
	firstMissing, lastMissing := -1, -1
	for i := range n {
		e, ok := h.months.get(monthKey(first.AddDate(0, i, 0)), gen)
		if !ok {
			if firstMissing < 0 {
				firstMissing = i
			}
			lastMissing = i
		}
		cached[i] = e.days
	}
	if firstMissing < 0 {
		return cached, gen, "days", nil
	}
	// The month before and the one after come along when not held: the query costs one index
	// descent per port pair whatever its range, and the next request over the pair is likely to
	// ask for a neighbouring range.
	from, to := first.AddDate(0, firstMissing, 0), first.AddDate(0, lastMissing+1, 0)
	if before := from.AddDate(0, -1, 0); before.Year() >= 1 {
		if _, ok := h.months.get(monthKey(before), gen); !ok {
			from = before
		}
	}
	if to.Year() > 9999 {
		to = first.AddDate(0, lastMissing, 0)
	} else if _, ok := h.months.get(monthKey(to), gen); ok {
		to = first.AddDate(0, lastMissing, 0)
	}
	stats, read, err := h.readDays(ctx, deadline, orig, dest, from, to.AddDate(0, 1, -1))
	if err != nil {
		return nil, gen, "", err
	}
	if read != gen {
		stats, read, err = h.readDays(ctx, deadline, orig, dest, q.From, q.To)
		return [][]store.DayStat{stats}, read, "miss", err
	}
	byMonth := make([][]store.DayStat, (to.Year()-from.Year())*12+int(to.Month()-from.Month())+1)
	for _, s := range stats {
		i := (s.Day.Year()-from.Year())*12 + int(s.Day.Month()-from.Month())
		byMonth[i] = append(byMonth[i], s)
	}
	for i, days := range byMonth {
		m := from.AddDate(0, i, 0)
		if j := (m.Year()-first.Year())*12 + int(m.Month()-first.Month()); j >= 0 && j < n {
			cached[j] = days
		}
		h.months.put(monthKey(m), gen, cacheEntry{days: days})
	}
	return cached, gen, "miss", nil
}

// readDays reads the days of a pair from the database and hands the generation of the read to
// the watcher: a newer one moves the caches at once.
func (h *Handler) readDays(ctx context.Context, deadline time.Time, orig, dest store.Location, from, to time.Time) ([]store.DayStat, store.Generation, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	start := time.Now()
	stats, gen, err := h.store.DailyStats(ctx, orig.Ports, dest.Ports, from, to)
	if err == nil {
		h.watch.offer(gen, start)
	}
	return stats, gen, err
}

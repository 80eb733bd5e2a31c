package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"rates/internal/store"
)

// Start gets the instance ready before it takes traffic, and starts the watcher (when Listen
// is set). It loads the port and region tree and, within cfg.Preload, every day of price_daily
// into the months cache, so that a fresh instance answers from memory from its first request.
// A preload that does not fit the time or the cache is dropped whole (the cache fills as
// requests come, as without it). stop ends the watcher.
func (h *Handler) Start(ctx context.Context) (stop func(), err error) {
	deadline := time.Now().Add(h.cfg.QueryTimeout)
	gen, err := h.sharedGeneration(ctx, deadline)
	if err != nil {
		return nil, fmt.Errorf("read the data generation: %w", err)
	}
	if _, err = h.currentTree(ctx, deadline, gen); err != nil {
		return nil, fmt.Errorf("load ports and regions: %w", err)
	}
	if h.months != nil && h.cfg.Preload > 0 {
		start := time.Now()
		n, err := h.preload(ctx, h.cfg.Preload)
		switch {
		case err != nil:
			h.log.Warn("cache not preloaded: answers fill it as they come", "error", err.Error(), "took", time.Since(start).String())
		default:
			h.log.Info("cache preloaded", "months", n, "took", time.Since(start).String())
		}
	}
	stop = func() {}
	if h.cfg.Listen != nil {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		h.watch.running.Store(true) // trusted from now on: the reads above are fresh
		go func() { defer close(done); h.watch.run(wctx) }()
		stop = func() { cancel(); <-done }
	}
	return stop, nil
}

// errPreloadTooLarge stops a preload whose months would not fit the months cache.
var errPreloadTooLarge = errors.New("price_daily does not fit the cache")

// preload reads price_daily in one snapshot and files, for every pair of locations with prices
// (port or region on either side), each month with prices under that snapshot's generation;
// then it marks the months cache complete for that generation, so that a pair and month it
// lacks is known to have no prices. It returns the number of months filed.
func (h *Handler) preload(ctx context.Context, budget time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	tree, err := h.store.Tree(ctx)
	if err != nil {
		return 0, err
	}
	// Every location a port's prices count for: the port, and each region it is in.
	keys := map[string][]string{}
	tree.EachRegion(func(slug string, ports []string) {
		for _, p := range ports {
			keys[p] = append(keys[p], "r:"+slug)
		}
	})
	days := map[string]map[int64]dayTotal{} // pair key → epoch day → totals
	size, limit := 0, h.months.maxBytes
	keysOf := func(port string) []string {
		k, ok := keys[port]
		if !ok || k[0] != "p:"+port {
			k = append([]string{"p:" + port}, k...)
			keys[port] = k
		}
		return k
	}
	scanned := time.Now()
	gen, err := h.store.ScanDaily(ctx, func(r store.DailyRow) error {
		day := epochDay(r.Day)
		for _, o := range keysOf(r.Orig) {
			for _, d := range keysOf(r.Dest) {
				pair := o + "\x00" + d + "\x00"
				m := days[pair]
				if m == nil {
					m = map[int64]dayTotal{}
					days[pair] = m
					size += len(pair) + 128
				}
				t, seen := m[day]
				if !seen {
					size += 40
				}
				m[day] = dayTotal{t.count + r.Count, t.sum + r.Sum}
			}
		}
		if size > limit {
			return errPreloadTooLarge
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if tg := tree.Generation(); tg.Epoch != gen.Epoch || tg.Tree != gen.Tree {
		return 0, errors.New("ports or regions changed during the preload")
	}
	h.watch.offer(gen, scanned)
	months, err := h.fileMonths(days, gen)
	if err != nil {
		return months, err
	}
	if !h.months.markComplete(gen) {
		return months, errors.New("the data changed or outgrew the cache during the preload")
	}
	return months, nil
}

// dayTotal is the count and sum of one day's prices of a pair of locations.
type dayTotal struct{ count, sum int64 }

// fileMonths files the days of each pair month by month under gen, and returns how many months
// it filed.
func (h *Handler) fileMonths(days map[string]map[int64]dayTotal, gen store.Generation) (int, error) {
	months := 0
	for pair, m := range days {
		stats := make([]store.DayStat, 0, len(m))
		for d, t := range m {
			stats = append(stats, store.DayStat{Day: time.Unix(d*86400, 0).UTC(), Count: t.count, Sum: t.sum})
		}
		slices.SortFunc(stats, func(a, b store.DayStat) int { return a.Day.Compare(b.Day) })
		for len(stats) > 0 {
			first := stats[0].Day
			n := 1
			for n < len(stats) && stats[n].Day.Year() == first.Year() && stats[n].Day.Month() == first.Month() {
				n++
			}
			month := time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, time.UTC)
			if !h.months.put(appendDayKey([]byte(pair), month), gen, cacheEntry{days: stats[:n:n]}) {
				return months, errors.New("the data changed or outgrew the cache during the preload")
			}
			stats = stats[n:]
			months++
		}
	}
	return months, nil
}

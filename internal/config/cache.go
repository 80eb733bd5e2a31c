package config

import (
	"errors"
	"strings"
	"time"
)

// Cache configures how GET /rates answers stay fresh: in the service's memory and in the caches
// of clients and proxies. It is loaded apart from Config, as Ingest is.
type Cache struct {
	// MaxAge (CACHE_CONTROL_MAX_AGE, default 0, whole seconds up to 1h) is the max-age of the
	// Cache-Control header of GET /rates answers. 0 sends "no-cache": clients and proxies may
	// keep an answer but revalidate it (If-None-Match) on every reuse, so they see a batch as
	// soon as the service does. N sends "public, max-age=N": a reused answer may miss the
	// batches of its last N seconds, on top of the service's own bound (2 × PollInterval).
	MaxAge time.Duration
	// PollInterval (GENERATION_POLL_INTERVAL, default 500ms, 10ms to 5s) is how often each
	// instance reads the data generation whatever its listening connection hears. A generation
	// is trusted for twice this: every answer reflects every batch committed at least
	// 2 × PollInterval before the request (1 s by default), and a notified batch much sooner.
	PollInterval time.Duration
	// Preload (CACHE_PRELOAD_TIMEOUT, default 500ms, 0 to 10s) bounds the time an instance
	// spends at start, before /readyz turns ready, loading price_daily into its cache; a
	// preload that does not finish in time, or does not fit CACHE_MAX_BYTES, is dropped. 0
	// turns it off.
	Preload time.Duration
}

// LoadCache reads the cache settings, returning every invalid setting in one error.
func LoadCache(lookup Lookup) (Cache, error) {
	r := reader{lookup: lookup}
	c := Cache{
		MaxAge:       r.seconds("CACHE_CONTROL_MAX_AGE", 0, 0, time.Hour),
		PollInterval: r.durationRange("GENERATION_POLL_INTERVAL", 500*time.Millisecond, 10*time.Millisecond, 5*time.Second),
		Preload:      r.durationRange("CACHE_PRELOAD_TIMEOUT", 500*time.Millisecond, 0, 10*time.Second),
	}
	return c, errors.Join(r.errs...)
}

// durationRange reads a duration from lo to hi.
func (r *reader) durationRange(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if v = strings.TrimSpace(v); !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		r.fail(name, "\""+v+"\" is not a duration from "+lo.String()+" to "+hi.String()+", such as 500ms")
		return def
	}
	return d
}

package api

import (
	"strings"
	"sync"

	"rates/internal/store"
)

// answerCache keeps, for the current data generation only, computed /rates answers (by query)
// and the per-day counts and sums of origin/destination pairs month by month (by resolved
// pair and month), so a query for a range it has not seen is answered from months it holds.
// Nothing of another generation is ever served: the generation reader moves the cache to each
// generation it reads (advance), which empties it, and lookups and stores name the
// generation they belong to and must match it exactly. Exact matching, not ordering, is what
// makes a reset of the counter (a new epoch) safe.
// A byte budget bounds memory, split between the two kinds of entry: answers get a quarter and
// months the rest, so that answers to ranges asked once (most of them, when clients ask for
// many routes and ranges) cannot push out the months every later query over the same pair is
// built from. Past its share, arbitrary entries of the same kind are dropped (Go's map order is
// random), which is enough for entries that are all cheap to recompute.
type answerCache struct {
	mu    sync.RWMutex
	gen   store.Generation
	kinds [2]cacheShare // answers, months
}

// cacheShare is the entries of one kind and their share of the budget.
type cacheShare struct {
	entries  map[string]cacheEntry
	bytes    int
	maxBytes int
}

// The kinds of entry, told apart by their keys: month keys start with monthKeyPrefix, answer
// keys with a date.
const (
	answerKind = iota
	monthKind
)

const monthKeyPrefix = "m\x00"

func kindOf(key string) int {
	if strings.HasPrefix(key, monthKeyPrefix) {
		return monthKind
	}
	return answerKind
}

// cacheEntry is an answer (status and body) or a month of day stats (days).
type cacheEntry struct {
	status int
	body   []byte
	days   []store.DayStat
}

// size approximates the memory an entry and its key hold.
func (e cacheEntry) size(key string) int { return len(key) + len(e.body) + len(e.days)*40 + 64 }

func newAnswerCache(maxBytes int) *answerCache {
	c := &answerCache{}
	c.kinds[answerKind] = cacheShare{entries: map[string]cacheEntry{}, maxBytes: maxBytes / 4}
	c.kinds[monthKind] = cacheShare{entries: map[string]cacheEntry{}, maxBytes: maxBytes - maxBytes/4}
	return c
}

// advance moves the cache to the generation just read, emptying it when that differs from the
// one it holds. Reads are sequential (generationReader), so this never moves backwards in time
// even when the counter itself was reset.
func (c *answerCache) advance(gen store.Generation) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		for i := range c.kinds {
			clear(c.kinds[i].entries)
			c.kinds[i].bytes = 0
		}
		c.gen = gen
	}
}

func (c *answerCache) get(key string, gen store.Generation) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if gen != c.gen {
		return cacheEntry{}, false
	}
	e, ok := c.kinds[kindOf(key)].entries[key]
	return e, ok
}

// put stores an entry computed after gen was read. Its contents must not be modified
// afterwards.
func (c *answerCache) put(key string, gen store.Generation, e cacheEntry) {
	if c == nil {
		return
	}
	size := e.size(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	share := &c.kinds[kindOf(key)]
	if size > share.maxBytes/16 {
		return
	}
	if gen != c.gen {
		return // the data has changed since (or the cache has not seen this generation yet)
	}
	if old, ok := share.entries[key]; ok {
		share.bytes -= old.size(key)
	}
	for k, v := range share.entries {
		if share.bytes+size <= share.maxBytes {
			break
		}
		delete(share.entries, k)
		share.bytes -= v.size(k)
	}
	share.entries[key] = e
	share.bytes += size
}

package api

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"rates/internal/store"
)

// answerCache keeps, for the current data generation only, entries of one kind: computed
// /rates answers (by query), or the per-day counts and sums of origin/destination pairs month
// by month (by resolved pair and month), so a query for a range it has not seen is answered
// from months it holds.
// Nothing of another generation is ever served: the generation reader moves the cache to each
// generation it reads (advance), which empties it, and lookups and stores name the
// generation they belong to and must match it exactly. Exact matching, not ordering, is what
// makes a reset of the counter (a new epoch) safe.
// A byte budget bounds memory; past it, arbitrary entries are dropped (Go's map order is
// random), which is enough for entries that are all cheap to recompute.
type answerCache struct {
	mu       sync.RWMutex
	gen      store.Generation
	entries  map[string]cacheEntry
	bytes    int
	maxBytes int
	// evicted tells that an entry of gen was dropped or refused; complete, that every entry
	// of gen with data is held (a preload filed all of them), so a key it lacks has no data.
	evicted, complete bool
	// door (doorSlots long) and seed are the doorkeeper of admit; nil door admits every entry.
	door []atomic.Uint64
	seed maphash.Seed
}

// cacheEntry is an answer (status and body; a 200 with its ETag and Content-Length, ready to
// be sent) or a month of day stats (days).
type cacheEntry struct {
	status int
	body   []byte
	etag   []string
	length []string
	days   []store.DayStat
}

// okEntry is the 200 answer body.
func okEntry(body []byte) cacheEntry {
	return cacheEntry{status: http.StatusOK, body: body, etag: []string{etagOf(body)}, length: []string{strconv.Itoa(len(body))}}
}

// size approximates the memory an entry and its key hold: the bytes of key, body and days, and
// 256 for the map's slot (a 120-byte key and value in a table that may be half empty after it
// grew) and the rounding of each allocation to its size class (TestCacheMemoryBound measures
// the heap against the budget).
func (e cacheEntry) size(key string) int {
	n := len(key) + cap(e.body) + cap(e.days)*40 + 256
	if e.etag != nil {
		n += 2*16 + len(e.etag[0]) + len(e.length[0]) + 32
	}
	return n
}

// newCaches splits the budget between a cache of answers (a quarter) and one of months (the
// rest): answers to ranges asked once (most of them, when clients ask for many routes and
// ranges) must not push out the months every later query over the same pair is built from.
// Answers are admitted on their second request (doorSlots remembered keys), months at once.
func newCaches(maxBytes int) (answers, months *answerCache) {
	answers = newAnswerCache(maxBytes / 4)
	answers.door, answers.seed = make([]atomic.Uint64, doorSlots), maphash.MakeSeed()
	return answers, newAnswerCache(maxBytes - maxBytes/4)
}

// doorSlots is the size of the answers' doorkeeper (a power of two): 8,192 keys, 64 KiB.
const doorSlots = 1 << 13

func newAnswerCache(maxBytes int) *answerCache {
	return &answerCache{entries: map[string]cacheEntry{}, maxBytes: maxBytes}
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
		clear(c.entries)
		c.gen, c.bytes = gen, 0
		c.evicted, c.complete = false, false
	}
}

// markComplete declares that the cache holds every entry of gen that has data, and reports
// whether it could: nothing of gen may have been dropped, and gen must still be current.
func (c *answerCache) markComplete(gen store.Generation) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.complete = gen == c.gen && !c.evicted
	return c.complete
}

func (c *answerCache) get(key []byte, gen store.Generation) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if gen != c.gen {
		return cacheEntry{}, false
	}
	e, ok := c.entries[string(key)]
	return e, ok || c.complete
}

// admit tells whether key was asked for recently (a doorkeeper: one hash per slot of a small
// table), and remembers it. A cache without a doorkeeper admits everything.
func (c *answerCache) admit(key []byte) bool {
	if c == nil || c.door == nil {
		return c != nil
	}
	h := maphash.Bytes(c.seed, key) | 1 // never 0, the empty slot
	slot := &c.door[h&(doorSlots-1)]
	if slot.Load() == h {
		return true
	}
	slot.Store(h)
	return false
}

// put stores an entry of the data of gen, and reports whether it did. Its contents must not be
// modified afterwards.
func (c *answerCache) put(keyBytes []byte, gen store.Generation, e cacheEntry) bool {
	if c == nil {
		return false
	}
	key := string(keyBytes)
	size := e.size(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return false // the data has changed since (or the cache has not seen this generation yet)
	}
	if size > c.maxBytes/16 {
		c.evicted, c.complete = true, false
		return false
	}
	if old, ok := c.entries[key]; ok {
		c.bytes -= old.size(key)
	}
	for k, v := range c.entries {
		if c.bytes+size <= c.maxBytes {
			break
		}
		delete(c.entries, k)
		c.bytes -= v.size(k)
		c.evicted, c.complete = true, false
	}
	c.entries[key] = e
	c.bytes += size
	return true
}

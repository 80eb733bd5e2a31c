package api

import (
	"sync"
)

// answerCache keeps computed /rates answers for one data generation. Entries of an older
// generation are never served: the first request that sees a new generation empties the cache.
// A byte budget bounds memory; past it, arbitrary entries are dropped (Go's map order is
// random), which is enough for a cache whose entries are all equally cheap to recompute.
type answerCache struct {
	mu         sync.RWMutex
	generation int64
	entries    map[string]cachedAnswer
	bytes      int
	maxBytes   int
}

type cachedAnswer struct {
	status int
	body   []byte
}

func newAnswerCache(maxBytes int) *answerCache {
	return &answerCache{entries: map[string]cachedAnswer{}, maxBytes: maxBytes}
}

func (c *answerCache) get(key string, generation int64) (cachedAnswer, bool) {
	if c == nil {
		return cachedAnswer{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if generation != c.generation {
		return cachedAnswer{}, false
	}
	a, ok := c.entries[key]
	return a, ok
}

// put stores an answer computed from data of the given generation. body must not be
// modified afterwards.
func (c *answerCache) put(key string, generation int64, a cachedAnswer) {
	if c == nil || len(a.body) > c.maxBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case generation > c.generation:
		clear(c.entries)
		c.generation, c.bytes = generation, 0
	case generation < c.generation:
		return // computed from data that has changed since
	}
	if old, ok := c.entries[key]; ok {
		c.bytes -= len(key) + len(old.body)
	}
	for k, v := range c.entries {
		if c.bytes+len(key)+len(a.body) <= c.maxBytes {
			break
		}
		delete(c.entries, k)
		c.bytes -= len(k) + len(v.body)
	}
	c.entries[key] = a
	c.bytes += len(key) + len(a.body)
}

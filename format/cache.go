package format

import (
	"container/list"
	"sync"
)

// chunkCache holds decompressed chunks under a byte bound, least recently
// used first out. Evicted buffers are dropped, never reused, so a Sample
// that still references one stays valid; the bound is on what the cache
// keeps alive, not on what callers keep.
type chunkCache struct {
	mu    sync.Mutex
	limit int64
	used  int64
	lru   *list.List // of *cacheEntry, front = most recent
	m     map[uint32]*cacheEntry
	// Counters for tests and benchmarks.
	hits, misses int64
}

type cacheEntry struct {
	chunk uint32
	data  []byte
	err   error
	ready chan struct{} // closed once data or err is set
	elem  *list.Element
}

func newChunkCache(limit int64) *chunkCache {
	return &chunkCache{limit: limit, lru: list.New(), m: make(map[uint32]*cacheEntry)}
}

// get returns chunk c, calling load at most once per residency even when
// many goroutines ask for it at the same time.
func (cc *chunkCache) get(c uint32, load func() ([]byte, error)) ([]byte, error) {
	cc.mu.Lock()
	if e, ok := cc.m[c]; ok {
		cc.hits++
		if e.elem != nil {
			cc.lru.MoveToFront(e.elem)
		}
		cc.mu.Unlock()
		<-e.ready
		return e.data, e.err
	}
	cc.misses++
	e := &cacheEntry{chunk: c, ready: make(chan struct{})}
	cc.m[c] = e
	cc.mu.Unlock()

	e.data, e.err = load()
	close(e.ready)

	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e.err != nil || int64(len(e.data)) > cc.limit {
		// Errors are not cached, so a transient failure can be retried, and
		// a chunk larger than the whole cache is handed out uncached.
		delete(cc.m, c)
		return e.data, e.err
	}
	e.elem = cc.lru.PushFront(e)
	cc.used += int64(len(e.data))
	for cc.used > cc.limit {
		old := cc.lru.Back().Value.(*cacheEntry)
		cc.lru.Remove(old.elem)
		delete(cc.m, old.chunk)
		cc.used -= int64(len(old.data))
	}
	return e.data, nil
}

// stats returns the bytes held, hits and misses.
func (cc *chunkCache) stats() (used, hits, misses int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.used, cc.hits, cc.misses
}

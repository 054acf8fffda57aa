package loader

import "sync"

// Prefetcher is a Chunked source that can fetch a chunk into memory ahead
// of use (a packed file: format.Reader.Prefetch into the page cache).
// Sequential and QuasiRandom epochs over such a source read ahead.
type Prefetcher interface {
	Chunked
	// ChunkOf returns the chunk holding dataset index i.
	ChunkOf(i int) int
	// ChunkBytes returns chunk c's stored size.
	ChunkBytes(c int) int
	// Prefetch fetches chunk c; buf is scratch the caller reuses.
	Prefetch(c int, buf []byte) ([]byte, error)
}

// DefaultReadahead is how many stored bytes an epoch fetches ahead of the
// images being handed out, when Options.Readahead is 0: enough reads in
// flight to keep a disk streaming (a few hundred 128 KiB chunks), little
// next to the decompressed-chunk cache.
const DefaultReadahead = 64 << 20

// readaheadWorkers is the number of concurrent prefetch reads: a single
// reader waits out each request's latency, several keep the device's queue
// full, which is what a quasi-random order of whole chunks needs to read
// as fast as a sequential pass.
const readaheadWorkers = 8

func (f fileSource) ChunkOf(i int) int    { return f.r.ChunkOf(i) }
func (f fileSource) ChunkBytes(c int) int { return f.r.Chunk(c).Stored }
func (f fileSource) Prefetch(c int, buf []byte) ([]byte, error) {
	return f.r.Prefetch(c, buf)
}

// readahead fetches the chunks of the epoch's order in the order of their
// first use, staying up to budget stored bytes ahead of the dispatcher's
// position (it.handed). It stops when the epoch ends. Errors are ignored:
// the worker that reads the sample reports them.
func (it *Iter) readahead(pf Prefetcher, budget int) {
	defer it.wg.Done()
	type ahead struct{ c, pos int }
	seen := make([]bool, pf.NumChunks())
	var seq []ahead // ascending pos
	for p, i := range it.order {
		c := pf.ChunkOf(int(i))
		if c >= 0 && c < len(seen) && !seen[c] {
			seen[c] = true
			seq = append(seq, ahead{c, p})
		}
	}
	jobs := make(chan int, readaheadWorkers)
	var wg sync.WaitGroup
	for range readaheadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for c := range jobs {
				buf, _ = pf.Prefetch(c, buf)
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	// seq[k:next] are the chunks fetched (or being fetched) whose first use
	// has not been handed out yet; window is their stored size.
	window, k := 0, 0
	for next := 0; next < len(seq); {
		pos := int(it.handed.Load())
		for k < next && seq[k].pos < pos {
			window -= pf.ChunkBytes(seq[k].c)
			k++
		}
		e := seq[next]
		if e.pos < pos { // the workers are there already (so k == next)
			k, next = next+1, next+1
			continue
		}
		size := pf.ChunkBytes(e.c)
		if k < next && window+size > budget {
			select { // wait for the dispatcher to move on
			case <-it.moved:
			case <-it.done:
				return
			}
			continue
		}
		select {
		case jobs <- e.c:
		case <-it.done:
			return
		}
		window += size
		next++
	}
}

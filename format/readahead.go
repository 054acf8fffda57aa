package format

import "fmt"

// Prefetch reads the stored bytes of chunk c from the file with pread into
// buf (grown as needed; the caller reuses it) and discards them: the point
// is the side effect, the bytes land in the page cache, so that the
// memory-mapped read that follows does not wait for the disk. A loader
// visiting chunks in an order it knows (quasi-random) prefetches the next
// ones from a few goroutines, which keeps several reads in flight and the
// disk near its sequential rate even when the page cache starts cold.
func (r *Reader) Prefetch(c int, buf []byte) ([]byte, error) {
	if c < 0 || c >= r.chunks {
		return buf, fmt.Errorf("%s: chunk %d of %d: out of range", r.path, c, r.chunks)
	}
	if r.f == nil {
		return buf, nil // not backed by a file: nothing to fetch
	}
	e := r.chunk(c)
	n := int(e.Stored)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	if _, err := r.f.ReadAt(buf[:n], int64(e.Off)); err != nil {
		return buf, fmt.Errorf("%s: prefetching chunk %d: %w", r.path, c, err)
	}
	return buf, nil
}

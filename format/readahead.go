package format

import "fmt"

// Prefetch asks for the stored bytes of chunk c to be brought into the
// page cache, so that the memory-mapped read that follows does not wait for
// the disk. A loader visiting chunks in an order it knows (quasi-random)
// prefetches the next ones from a few goroutines, which keeps several reads
// in flight and the disk near its sequential rate even when the page cache
// starts cold.
//
// On Linux and the other Unix systems it is posix_fadvise(WILLNEED): the
// kernel starts the reads and returns, and no bytes are copied (a pread
// into a scratch buffer, the fallback elsewhere, costs a memory copy of the
// whole file, which a CPU-bound loader feels). buf is scratch for that
// fallback; it is returned for reuse.
func (r *Reader) Prefetch(c int, buf []byte) ([]byte, error) {
	if c < 0 || c >= r.chunks {
		return buf, fmt.Errorf("format: %s: chunk %d of %d: out of range", r.path, c, r.chunks)
	}
	if r.f == nil {
		return buf, nil // not backed by a file: nothing to fetch
	}
	e := r.chunk(c)
	if err := willNeed(r.f, int64(e.Off), int64(e.Stored)); err == nil {
		return buf, nil
	}
	n := int(e.Stored)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	if _, err := r.f.ReadAt(buf[:n], int64(e.Off)); err != nil {
		return buf, fmt.Errorf("format: %s: prefetching chunk %d: %w", r.path, c, err)
	}
	return buf, nil
}

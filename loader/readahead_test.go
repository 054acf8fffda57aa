package loader

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/format"
)

// countingPrefetcher records the chunks prefetched.
type countingPrefetcher struct {
	fileSource
	mu   sync.Mutex
	seen map[int]int
}

func (c *countingPrefetcher) Prefetch(ch int, buf []byte) ([]byte, error) {
	c.mu.Lock()
	c.seen[ch]++
	c.mu.Unlock()
	return c.fileSource.Prefetch(ch, buf)
}

// TestReadahead: QuasiRandom and Sequential epochs over a packed file
// prefetch chunks (each at most once), and give the same batches as without
// readahead.
func TestReadahead(t *testing.T) {
	src := &MemorySource{}
	for i := 0; i < 3000; i++ {
		pix := make([]byte, 8*8*3)
		for k := range pix {
			pix[k] = byte(i*13 + k)
		}
		src.Samples = append(src.Samples, Sample{Label: int32(i % 5), Height: 8, Width: 8, Channels: 3, Data: pix})
	}
	p := filepath.Join(t.TempDir(), "r.tscn")
	writePacked(t, p, src, 4096) // 21 samples a chunk, ~143 chunks
	r, err := format.Open(p, &format.ReaderOptions{CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, mode := range []Mode{QuasiRandom, Sequential} {
		epoch := func(readahead int, s Source) [][]byte {
			l, err := New(s, Options{BatchSize: 100, Workers: 2, Order: mode, Seed: 3, Output: Crops8,
				Augment: augment.DefaultConfig(8, 8), Readahead: readahead})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var out [][]byte
			eachBatch(t, l, 1, func(b *Batch) { out = append(out, append([]byte(nil), b.X8...)) })
			return out
		}
		cp := &countingPrefetcher{fileSource: fileSource{r}, seen: map[int]int{}}
		// A small budget (8 KiB: two chunks) makes the prefetcher wait for
		// the dispatcher again and again.
		with := epoch(8<<10, cp)
		without := epoch(-1, cp)
		if len(with) != len(without) {
			t.Fatalf("%v: %d vs %d batches", mode, len(with), len(without))
		}
		for k := range with {
			if string(with[k]) != string(without[k]) {
				t.Fatalf("%v: batch %d differs with readahead", mode, k)
			}
		}
		// Chunks the workers reach before the prefetcher are skipped, so
		// how many are fetched depends on timing; some must be.
		if len(cp.seen) == 0 {
			t.Errorf("%v: nothing prefetched", mode)
		}
		for c, n := range cp.seen {
			if n != 1 {
				t.Errorf("%v: chunk %d prefetched %d times", mode, c, n)
			}
		}
		t.Logf("%v: %d of %d chunks prefetched", mode, len(cp.seen), r.NumChunks())
	}
}

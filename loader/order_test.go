package loader

import (
	"slices"
	"testing"
)

func chunksOf(n, size int) [][]uint32 {
	var out [][]uint32
	for lo := 0; lo < n; lo += size {
		var c []uint32
		for i := lo; i < min(lo+size, n); i++ {
			c = append(c, uint32(i))
		}
		out = append(out, c)
	}
	return out
}

// TestOrderCoversOncePerEpoch: for every mode and world size, the ranks'
// orders are disjoint and together hold every sample exactly once.
func TestOrderCoversOncePerEpoch(t *testing.T) {
	const n = 1003
	chunks := chunksOf(n, 37)
	for _, mode := range []Mode{Shuffle, QuasiRandom, Sequential} {
		for _, world := range []int{1, 2, 3, 8} {
			for epoch := 0; epoch < 3; epoch++ {
				seen := make([]int, n)
				sizes := []int{}
				for r := 0; r < world; r++ {
					o, err := Order(n, chunks, OrderOptions{Seed: 5, Epoch: epoch, Rank: r, World: world, Mode: mode, Window: 4})
					if err != nil {
						t.Fatal(err)
					}
					sizes = append(sizes, len(o))
					for _, i := range o {
						seen[i]++
					}
				}
				for i, c := range seen {
					if c != 1 {
						t.Fatalf("%v world %d epoch %d: sample %d seen %d times", mode, world, epoch, i, c)
					}
				}
				if mode != QuasiRandom && slices.Max(sizes)-slices.Min(sizes) > 1 {
					t.Fatalf("%v world %d: shard sizes %v", mode, world, sizes)
				}
			}
		}
	}
}

func TestOrderDeterministicAndEpochsDiffer(t *testing.T) {
	const n = 500
	chunks := chunksOf(n, 16)
	for _, mode := range []Mode{Shuffle, QuasiRandom} {
		a, _ := Order(n, chunks, OrderOptions{Seed: 1, Epoch: 0, Mode: mode})
		b, _ := Order(n, chunks, OrderOptions{Seed: 1, Epoch: 0, Mode: mode})
		c, _ := Order(n, chunks, OrderOptions{Seed: 1, Epoch: 1, Mode: mode})
		d, _ := Order(n, chunks, OrderOptions{Seed: 2, Epoch: 0, Mode: mode})
		if !slices.Equal(a, b) {
			t.Fatalf("%v: same inputs, different orders", mode)
		}
		if slices.Equal(a, c) || slices.Equal(a, d) {
			t.Fatalf("%v: epoch or seed does not change the order", mode)
		}
		if slices.IsSorted(a) {
			t.Fatalf("%v: order is not shuffled", mode)
		}
	}
	s, _ := Order(n, nil, OrderOptions{Mode: Sequential, Rank: 1, World: 2})
	if s[0] != 250 || !slices.IsSorted(s) || len(s) != 250 {
		t.Fatalf("sequential rank 1 of 2: starts at %d, %d samples", s[0], len(s))
	}
}

// TestQuasiRandomWindow: at every position of the order at most Window
// chunks are partly visited — the property that bounds the reader's memory.
func TestQuasiRandomWindow(t *testing.T) {
	const n, size = 5000, 50
	chunks := chunksOf(n, size)
	for _, w := range []int{1, 3, 8} {
		o, err := Order(n, chunks, OrderOptions{Seed: 3, Epoch: 2, Mode: QuasiRandom, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		left := map[int]int{}
		maxOpen := 0
		for _, i := range o {
			c := int(i) / size
			if _, ok := left[c]; !ok {
				left[c] = size
			}
			left[c]--
			maxOpen = max(maxOpen, len(left))
			if left[c] == 0 {
				delete(left, c)
			}
		}
		if maxOpen > w {
			t.Fatalf("window %d: %d chunks open at once", w, maxOpen)
		}
		// Mixing: consecutive samples should not come from one chunk in runs.
		same := 0
		for k := 1; k < len(o); k++ {
			if o[k]/size == o[k-1]/size {
				same++
			}
		}
		if w > 1 && float64(same)/float64(len(o)) > 2.0/float64(w) {
			t.Fatalf("window %d: %d of %d consecutive pairs from one chunk", w, same, len(o))
		}
	}
}

func TestOrderErrors(t *testing.T) {
	if _, err := Order(10, nil, OrderOptions{Rank: 2, World: 2}); err == nil {
		t.Error("rank 2 of 2 accepted")
	}
	if _, err := Order(10, chunksOf(9, 3), OrderOptions{Mode: QuasiRandom}); err == nil {
		t.Error("chunks missing a sample accepted")
	}
	if _, err := Order(4, [][]uint32{{0, 1}, {1, 2, 3}}, OrderOptions{Mode: QuasiRandom}); err == nil {
		t.Error("duplicate sample accepted")
	}
	if _, err := Order(4, nil, OrderOptions{Mode: Mode(9)}); err == nil {
		t.Error("unknown mode accepted")
	}
	if o, err := Order(0, nil, OrderOptions{}); err != nil || len(o) != 0 {
		t.Errorf("empty dataset: %v, %v", o, err)
	}
}

// TestBatchShards checks that the ranks' k-th batches together are the
// one-process k-th batch at the global batch size, in rank order.
func TestBatchShards(t *testing.T) {
	order := make([]int32, 23)
	for i := range order {
		order[i] = int32(100 + i)
	}
	const b, world = 3, 2 // global batches of 6: 6, 6, 6, 5
	var got [world][]int32
	for r := 0; r < world; r++ {
		got[r] = batchShard(order, b, r, world)
	}
	var joined []int32
	for k := 0; k*b < len(got[0]); k++ {
		for r := 0; r < world; r++ {
			joined = append(joined, got[r][k*b:min((k+1)*b, len(got[r]))]...)
		}
	}
	if len(joined) != len(order) {
		t.Fatalf("shards hold %d of %d images", len(joined), len(order))
	}
	for i := range order {
		if joined[i] != order[i] {
			t.Fatalf("position %d: %d, want %d", i, joined[i], order[i])
		}
	}
	// The last global batch of 5 splits 2 + 3.
	if len(got[0]) != 11 || len(got[1]) != 12 {
		t.Fatalf("shard sizes %d, %d; want 11, 12", len(got[0]), len(got[1]))
	}
	// A last batch smaller than the world is dropped by every rank alike.
	if s := batchShard(order[:13], 3, 1, 4); len(s) != 3 {
		t.Fatalf("13 images, batch 3×4 ranks: rank 1 has %d, want 3 (last image dropped)", len(s))
	}
}

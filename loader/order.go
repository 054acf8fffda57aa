package loader

import (
	"fmt"

	"github.com/tsimcne/tsimcne-go/augment"
)

// Mode is the visiting order of an epoch.
type Mode uint8

const (
	// Shuffle visits a fresh uniform permutation of the dataset every epoch.
	Shuffle Mode = iota
	// QuasiRandom shuffles the chunks, then draws samples uniformly from a
	// sliding window of Window chunks: a chunk enters the window when one
	// leaves, and leaves when its last sample is drawn. At most Window chunks
	// are ever partly visited, so a reader needs to keep only about Window
	// decompressed chunks in memory, for files larger than RAM.
	QuasiRandom
	// Sequential visits the dataset in order 0..n-1 (embedding, evaluation).
	Sequential
)

// String names the mode as the CLI and logs spell it.
func (m Mode) String() string {
	switch m {
	case Shuffle:
		return "shuffle"
	case QuasiRandom:
		return "quasi-random"
	case Sequential:
		return "sequential"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// DefaultWindow is the quasi-random window in chunks when OrderOptions.Window is 0.
const DefaultWindow = 8

// OrderOptions are the inputs of the visiting order besides the dataset shape.
type OrderOptions struct {
	Seed        uint64
	Epoch       int
	Rank, World int // this process's rank among World (0 and 0 mean a single process)
	Mode        Mode
	Window      int // quasi-random window in chunks; 0 means DefaultWindow
}

// Domain tags separate the order streams from each other and from the
// augmentation streams derived from the same seed.
const (
	tagShuffle = 0x5348_5546 // "SHUF"
	tagChunks  = 0x4348_4E4B // "CHNK"
	tagWindow  = 0x57_494E44 // "WIND"
)

// Order returns the dataset indices this rank visits in the given epoch, in
// order. It is a pure function of its arguments: the same inputs give the same
// order on every machine, so a run resumes mid-epoch by recomputing the order
// and skipping to a position.
//
// Sharding comes first: the epoch's global arrangement (a permutation of the
// samples, or of the chunks in quasi-random mode) is cut into World
// contiguous, disjoint blocks and rank r takes block r. Together the ranks
// cover the dataset exactly once; block sizes differ by at most one sample
// (by at most one chunk in quasi-random mode, so ranks may get different
// numbers of samples there). Shuffles are Fisher–Yates driven by the same
// counter-based generator as the augmentations (augment.U64), keyed by
// (seed, epoch) for the global arrangement and (seed, epoch, rank) for the
// quasi-random window draws.
//
// chunks lists, for QuasiRandom, the dataset indices stored in each chunk
// (every index 0..n-1 exactly once); other modes ignore it.
func Order(n int, chunks [][]uint32, o OrderOptions) ([]int32, error) {
	world := max(o.World, 1)
	if o.Rank < 0 || o.Rank >= world {
		return nil, fmt.Errorf("loader: rank %d outside a world of %d", o.Rank, world)
	}
	if n < 0 || int64(n) > 1<<31-1 {
		return nil, fmt.Errorf("loader: %d samples (want 0..2³¹-1)", n)
	}
	if o.Epoch < 0 {
		return nil, fmt.Errorf("loader: epoch %d", o.Epoch)
	}
	lo, hi := o.Rank*n/world, (o.Rank+1)*n/world
	switch o.Mode {
	case Sequential:
		out := make([]int32, hi-lo)
		for i := range out {
			out[i] = int32(lo + i)
		}
		return out, nil
	case Shuffle:
		perm := make([]int32, n)
		for i := range perm {
			perm[i] = int32(i)
		}
		shuffle(perm, augment.Key(o.Seed, tagShuffle, uint64(o.Epoch)))
		return perm[lo:hi:hi], nil
	case QuasiRandom:
		return quasiRandom(n, chunks, o, world)
	}
	return nil, fmt.Errorf("loader: unknown order mode %d", o.Mode)
}

// shuffle is Fisher–Yates with the i-th swap partner drawn from counter i.
func shuffle(s []int32, key uint64) {
	for i := len(s) - 1; i > 0; i-- {
		j := augment.IntN(key, uint64(i), i+1)
		s[i], s[j] = s[j], s[i]
	}
}

func quasiRandom(n int, chunks [][]uint32, o OrderOptions, world int) ([]int32, error) {
	// Check that the chunks partition 0..n-1, so the order is a permutation.
	seen := make([]bool, n)
	total := 0
	for c, ch := range chunks {
		for _, i := range ch {
			if int(i) >= n || seen[i] {
				return nil, fmt.Errorf("loader: chunk %d lists sample %d twice or outside 0..%d", c, i, n-1)
			}
			seen[i] = true
		}
		total += len(ch)
	}
	if total != n {
		return nil, fmt.Errorf("loader: chunks hold %d samples, the dataset has %d", total, n)
	}
	w := o.Window
	if w <= 0 {
		w = DefaultWindow
	}
	cperm := make([]int32, len(chunks))
	for i := range cperm {
		cperm[i] = int32(i)
	}
	shuffle(cperm, augment.Key(o.Seed, tagChunks, uint64(o.Epoch)))
	nc := len(chunks)
	mine := cperm[o.Rank*nc/world : (o.Rank+1)*nc/world]
	count := 0
	for _, c := range mine {
		count += len(chunks[c])
	}
	out := make([]int32, 0, count)
	// The pool holds the not yet drawn samples of the open chunks; left
	// counts them per open chunk (indexed by position in mine).
	type entry struct{ idx, slot int32 }
	pool := make([]entry, 0, 64)
	left := make([]int, len(mine))
	next := 0
	open := func() {
		for next < len(mine) {
			k := next
			next++
			left[k] = len(chunks[mine[k]])
			for _, i := range chunks[mine[k]] {
				pool = append(pool, entry{int32(i), int32(k)})
			}
			if left[k] > 0 {
				return
			}
		}
	}
	for range w {
		open()
	}
	key := augment.Key(o.Seed, tagWindow, uint64(o.Epoch), uint64(o.Rank))
	for t := uint64(0); len(pool) > 0; t++ {
		k := augment.IntN(key, t, len(pool))
		e := pool[k]
		pool[k] = pool[len(pool)-1]
		pool = pool[:len(pool)-1]
		out = append(out, e.idx)
		if left[e.slot]--; left[e.slot] == 0 {
			open()
		}
	}
	return out, nil
}

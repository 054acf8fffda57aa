package augment

import (
	"math"
	"testing"
)

// TestViewIndependentOfHistory: a view depends only on its image and its
// parameters, not on what the Augmenter processed before (its scratch
// buffers are reused from view to view; a read of stale scratch would make
// the views depend on the order images reach a worker, which differs
// between worker counts and between one process and MPI ranks).
func TestViewIndependentOfHistory(t *testing.T) {
	for _, c := range []int{1, 3} {
		cfg := DefaultConfig(16, 16)
		fresh := func() *Augmenter {
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a.Prepare(32, 32)
			return a
		}
		used := fresh()
		other := testImage(32, 32, c, 99)
		for i := 0; i < 300; i++ {
			img := testImage(32, 32, c, uint64(i))
			p := Draw(&cfg, ViewKey(5, 0, i, i&1), 32, 32)
			want := make([]float32, 16*16*3)
			if err := fresh().Apply(want, img, &p); err != nil {
				t.Fatal(err)
			}
			// The used augmenter first makes a view of another image.
			q := Draw(&cfg, ViewKey(6, 0, i, 0), 32, 32)
			scratch := make([]float32, 16*16*3)
			if err := used.Apply(scratch, other, &q); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, 16*16*3)
			if err := used.Apply(got, img, &p); err != nil {
				t.Fatal(err)
			}
			for j := range want {
				if math.Float32bits(want[j]) != math.Float32bits(got[j]) {
					t.Fatalf("%d channel(s), view %d: value %d is %v after another view, %v from a fresh augmenter (params %+v)", c, i, j, got[j], want[j], p)
				}
			}
		}
	}
}

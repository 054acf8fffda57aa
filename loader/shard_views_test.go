package loader

import (
	"math"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
)

// TestRankViewsMatchOneProcess: an image's views are the same whether one
// process loads the whole batch or MPI ranks load its shards.
func TestRankViewsMatchOneProcess(t *testing.T) {
	src := synth(192, 32, 32, 3)
	views := func(o Options) map[[2]int][]float32 {
		l, err := New(src, o)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		m := map[[2]int][]float32{}
		eachBatch(t, l, 0, func(b *Batch) {
			vl := b.H * b.W * 3
			for v := 0; v < b.Views; v++ {
				for i := 0; i < b.N; i++ {
					r := v*b.N + i
					m[[2]int{int(b.Indices[i]), v}] = append([]float32(nil), b.X[r*vl:(r+1)*vl]...)
				}
			}
		})
		return m
	}
	base := Options{BatchSize: 64, Views: 2, Workers: 1, Seed: 3, Augment: augment.DefaultConfig(16, 16)}
	want := views(base)
	for r := 0; r < 2; r++ {
		o := base
		o.BatchSize, o.Rank, o.World, o.BatchShards = 32, r, 2, true
		for k, got := range views(o) {
			w, ok := want[k]
			if !ok {
				t.Fatalf("rank %d: image %d view %d not in the one-process epoch", r, k[0], k[1])
			}
			for j := range w {
				if math.Float32bits(w[j]) != math.Float32bits(got[j]) {
					t.Fatalf("rank %d: image %d view %d value %d: %v, one process %v", r, k[0], k[1], j, got[j], w[j])
				}
			}
		}
	}
}

package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// partialComm is a Collective whose reductions do nothing, so each
// simulated rank's share of the loss can be summed by the test.
type partialComm struct{ rank, size int }

func (c partialComm) Rank() int                       { return c.rank }
func (c partialComm) Size() int                       { return c.size }
func (partialComm) AllreduceSumF32([]float32)         {}
func (partialComm) AllreduceSumF64([]float64)         {}
func (partialComm) AllgatherF32(send, recv []float32) { copy(recv, send) }

// TestCauchyShareSumsToTheLoss: the shares of three ranks (3, 5 and 4
// images) add up to the one-process loss and gradient.
func TestCauchyShareSumsToTheLoss(t *testing.T) {
	counts := []int{3, 5, 4}
	total := 12
	N, d := 2*total, 7
	rng := rand.New(rand.NewPCG(1, 2))
	z := make([]float32, N*d)
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	want := make([]float32, N*d)
	wl, err := CauchyInfoNCE(z, N, d, want)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, N*d)
	var gl float64
	off := 0
	for r, b := range counts {
		var ds distState
		dz := make([]float32, N*d)
		gl += ds.cauchyShare(z, N, d, [2]int{off, total + off}, b, partialComm{r, len(counts)}, dz)
		for i, v := range dz {
			got[i] += float64(v)
		}
		off += b
	}
	if math.Abs(gl-wl) > 1e-12*math.Abs(wl) {
		t.Fatalf("loss %v, one process %v", gl, wl)
	}
	for i := range want {
		if math.Abs(got[i]-float64(want[i])) > 1e-6*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("dz[%d] = %v, one process %v", i, got[i], want[i])
		}
	}
}

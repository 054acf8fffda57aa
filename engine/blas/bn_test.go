package blas

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBNKernelsMatchGo checks the assembly BatchNorm kernels against the
// engine's Go loops (restated here) bit for bit, with and without the
// residual, ReLU and mask, for several widths. Zeros may differ in sign
// only (max(−0, 0)).
func TestBNKernelsMatchGo(t *testing.T) {
	if !avx512Supported() {
		t.Skip("no AVX-512: the engine runs its Go loops")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []int{16, 32, 48, 512} {
		rows := 37
		x, dy, res := randv(rng, rows*c), randv(rng, rows*c), randv(rng, rows*c)
		mask := randv(rng, rows*c)
		mask[0], mask[1] = float32(math.Copysign(0, -1)), 0
		sc, sh, mean, inv := randv(rng, c), randv(rng, c), randv(rng, c), randv(rng, c)
		k1, k2, k3 := randv(rng, c), randv(rng, c), randv(rng, c)
		// Sums start from non-zero partials, as the per-worker ones do.
		s0 := make([]float64, 2*c)
		for i := range s0 {
			s0[i] = rng.NormFloat64()
		}
		got, want := append([]float64(nil), s0...), append([]float64(nil), s0...)
		if !BNSums(x, c, got[:c], got[c:]) {
			t.Fatal("BNSums declined")
		}
		for r := 0; r < rows; r++ {
			for j := 0; j < c; j++ {
				f := float64(x[r*c+j])
				want[j] += f
				want[c+j] += f * f
			}
		}
		eq64(t, "BNSums", got, want)
		for _, withRes := range []bool{false, true} {
			for _, relu := range []bool{false, true} {
				var rr []float32
				if withRes {
					rr = res
				}
				out := make([]float32, rows*c)
				BNAffine(x, out, rr, c, sc, sh, relu)
				for i, v := range x {
					j := i % c
					w := v*sc[j] + sh[j]
					if withRes {
						w += res[i]
					}
					if relu {
						w = max(w, 0)
					}
					if out[i] != w {
						t.Fatalf("BNAffine c=%d res=%v relu=%v [%d] = %g, want %g", c, withRes, relu, i, out[i], w)
					}
				}
			}
		}
		for _, mk := range [][]float32{nil, mask} {
			got, want := append([]float64(nil), s0...), append([]float64(nil), s0...)
			BNBackSums(x, dy, mk, c, mean, inv, got[:c], got[c:])
			dx := make([]float32, rows*c)
			BNBackDX(x, dy, mk, dx, c, mean, inv, k1, k2, k3)
			for i, v := range x {
				j := i % c
				d := dy[i]
				if mk != nil && !(mk[i] > 0) {
					d = 0
				}
				want[j] += float64(d)
				want[c+j] += float64(d * ((v - mean[j]) * inv[j]))
				w := k1[j] * (d - k2[j] - (v-mean[j])*inv[j]*k3[j])
				if dx[i] != w {
					t.Fatalf("BNBackDX c=%d mask=%v [%d] = %g, want %g", c, mk != nil, i, dx[i], w)
				}
			}
			eq64(t, "BNBackSums", got, want)
		}
	}
	if BNSums(make([]float32, 24), 12, make([]float64, 12), make([]float64, 12)) {
		t.Fatal("BNSums took 12 channels")
	}
}

func eq64(t *testing.T, what string, got, want []float64) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

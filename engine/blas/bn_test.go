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

// TestLossKernelsMatchGo checks SqDist64 and DiffAxpy64 bit for bit
// against the scalar loops of the engine's Cauchy loss.
func TestLossKernelsMatchGo(t *testing.T) {
	if !avx512Supported() {
		t.Skip("no AVX-512: the engine runs its Go loops")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, nd := range [][2]int{{16, 16}, {48, 32}, {256, 128}} {
		n, d := nd[0], nd[1]
		z := randv(rng, n*d)
		zt := make([]float32, d*n)
		for k := 0; k < n; k++ {
			for t := 0; t < d; t++ {
				zt[t*n+k] = z[k*d+t]
			}
		}
		out := make([]float64, n)
		coef := make([]float64, n)
		for k := range coef {
			if k%5 != 0 {
				coef[k] = rng.NormFloat64()
			}
		}
		for i := 0; i < n; i += 7 {
			zi := z[i*d : (i+1)*d]
			if !SqDist64(zi, zt, n, out) {
				t.Fatal("SqDist64 declined")
			}
			for k := 0; k < n; k++ {
				var d2 float64
				for t, v := range zi {
					u := float64(v - z[k*d+t])
					d2 += u * u
				}
				if out[k] != d2 {
					t.Fatalf("SqDist64 n=%d d=%d [%d][%d] = %v, want %v", n, d, i, k, out[k], d2)
				}
			}
			g, want := make([]float64, d), make([]float64, d)
			DiffAxpy64(zi, z, n, coef, g)
			for k := 0; k < n; k++ {
				if coef[k] == 0 {
					continue
				}
				for t, v := range zi {
					want[t] += coef[k] * float64(v-z[k*d+t])
				}
			}
			eq64(t, "DiffAxpy64", g, want)
		}
	}
}

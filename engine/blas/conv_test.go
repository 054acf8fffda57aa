package blas

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvTileAsmMatchesGo runs every assembly tile kernel on random
// operands with three-level k loops and odd strides and compares it with
// the pure-Go version, both writing and accumulating.
func TestConvTileAsmMatchesGo(t *testing.T) {
	if !avx512Supported() {
		t.Skip("no AVX-512 on this CPU: ConvTile runs the pure-Go version only")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for nb := 1; nb <= 2; nb++ {
		maxR := ConvMaxRows
		if nb == 2 {
			maxR = ConvMaxRows32
		}
		for rows := 1; rows <= maxR; rows++ {
			n1, n2, n3 := 1+rng.IntN(7), 1+rng.IntN(3), 1+rng.IntN(3)
			s1 := 1 + rng.IntN(3)
			s2 := n1*s1 + rng.IntN(5)
			s3 := n2*s2 + rng.IntN(5)
			rs := 1 + rng.IntN(9)
			bks := 16*nb + rng.IntN(3)
			ldc := 16*nb + rng.IntN(5)
			a := randv(rng, (rows-1)*rs+(n1-1)*s1+(n2-1)*s2+(n3-1)*s3+1)
			b := randv(rng, (n1*n2*n3-1)*bks+16*nb)
			c0 := randv(rng, (rows-1)*ldc+16*nb)
			for _, acc := range []bool{false, true} {
				want := append([]float32(nil), c0...)
				got := append([]float32(nil), c0...)
				convTileGo(rows, nb, a, rs, n1, s1, n2, s2, n3, s3, b, bks, want, ldc, acc)
				ConvTile(rows, nb, a, rs, n1, s1, n2, s2, n3, s3, b, bks, got, ldc, acc)
				for i := range want {
					if d := math.Abs(float64(want[i] - got[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("nb=%d rows=%d acc=%v: c[%d] = %g, want %g", nb, rows, acc, i, got[i], want[i])
					}
				}
			}
		}
	}
}

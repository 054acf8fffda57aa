package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func naive(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*ldc+j] = alpha*float32(s) + beta*c[i*ldc+j]
		}
	}
}

func impls(t *testing.T) []Gemm {
	gs := []Gemm{NewGo(1), NewGo(3)}
	ob, err := OpenBLAS(2)
	if err != nil {
		t.Logf("OpenBLAS not available, testing pure Go only: %v", err)
	} else {
		gs = append(gs, ob)
	}
	for _, threads := range []int{1, 2, 3} {
		if g, err := AVX512(threads); err == nil {
			gs = append(gs, g)
		} else if threads == 1 {
			t.Logf("AVX-512 GEMM not available: %v", err)
		}
	}
	return gs
}

func TestSgemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {5, 7, 3}, {17, 9, 300}, {130, 70, 513}, {64, 1030, 20}, {3, 200, 700},
		// Shapes that reach every row count of the AVX-512 kernels, narrow
		// column blocks, several k and column blocks, and both thread splits.
		{13, 33, 257}, {95, 64, 600}, {64, 576, 700}, {300, 40, 70}, {11, 1100, 9}, {200, 2, 1024}}
	for _, g := range impls(t) {
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					lda, ldb, ldc := k+1, n+2, n+3
					if ta {
						lda = m + 1
					}
					if tb {
						ldb = k + 2
					}
					ar, br := m, k
					if ta {
						ar = k
					}
					if tb {
						br = n
					}
					a := randv(rng, ar*lda)
					b := randv(rng, br*ldb)
					c := randv(rng, m*ldc)
					want := append([]float32(nil), c...)
					naive(ta, tb, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, ldc)
					g.Sgemm(ta, tb, m, n, k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
					// The whole of c, padding columns included, which must stay untouched.
					for idx := range c {
						i, j := idx/ldc, idx%ldc
						w, got := want[idx], c[idx]
						if math.Abs(float64(w-got)) > 1e-4*math.Sqrt(float64(k))+1e-5 {
							t.Fatalf("%s %v ta=%v tb=%v: C[%d,%d]=%g want %g", g.Name(), s, ta, tb, i, j, got, w)
						}
					}
				}
			}
		}
	}
}

func TestNewReportsImplementation(t *testing.T) {
	t.Setenv(EnvGEMM, "go")
	g, reason, err := New("auto", 2)
	if err != nil || g.Threads() != 2 || reason == "" {
		t.Fatalf("New(auto) with %s=go: %v %q %v", EnvGEMM, g, reason, err)
	}
	if _, _, err := New("bogus", 1); err == nil {
		t.Fatal("New(bogus) should fail")
	}
}

func randv(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func benchGemm(b *testing.B, g Gemm) {
	m, n, k := 8192, 64, 576
	a, bb, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Sgemm(false, true, m, n, k, 1, a, k, bb, k, 0, c, n)
	}
	b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkSgemm measures the implementations on a layer1 im2col shape.
func BenchmarkSgemm(b *testing.B) {
	b.Run("go", func(b *testing.B) { benchGemm(b, NewGo(2)) })
	if ob, err := OpenBLAS(2); err == nil {
		b.Run("openblas", func(b *testing.B) { benchGemm(b, ob) })
	}
	if g, err := AVX512(2); err == nil {
		b.Run("avx512", func(b *testing.B) { benchGemm(b, g) })
	}
}

// TestFallbackWithoutOpenBLAS re-runs this test binary with OpenBLAS made
// unloadable and checks that "auto" falls back to pure Go and says why.
func TestFallbackWithoutOpenBLAS(t *testing.T) {
	if os.Getenv("BLAS_FALLBACK_CHILD") == "1" {
		g, why, err := New("auto", 2)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("GEMM=%s REASON=%s\n", g.Name(), why)
		if _, _, err := New("openblas", 2); err == nil {
			t.Fatal("explicit openblas succeeded without the library")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFallbackWithoutOpenBLAS$", "-test.v")
	// GODEBUG hides AVX-512 from golang.org/x/sys/cpu, so "auto" has
	// neither of its fast GEMMs.
	cmd.Env = append(os.Environ(), "BLAS_FALLBACK_CHILD=1", EnvLib+"=/nonexistent/libopenblas.so.0", EnvGEMM+"=",
		"GODEBUG=cpu.avx512f=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "GEMM=pure-Go") || !strings.Contains(string(out), "OpenBLAS unavailable") {
		t.Fatalf("fallback not reported:\n%s", out)
	}
}

// Package blas provides the single-precision matrix product (SGEMM) that the
// engine's convolutions and linear layers are built on.
//
// Two implementations exist behind one interface: OpenBLAS's cblas_sgemm,
// loaded at run time with purego (so the binary stays cgo-free and builds
// without OpenBLAS installed), and a pure-Go blocked, goroutine-parallel
// kernel used when the library is absent or when the caller forces it.
// All matrices are row-major, as in CBLAS with CblasRowMajor.
package blas

import (
	"fmt"
	"os"
	"strings"
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ. op(A) is m×k, op(B) is k×n, C is m×n; lda, ldb and ldc are
// the row strides of A, B and C as stored.
type Gemm interface {
	// Sgemm performs the product; slices start at the first element of each
	// matrix. It panics on slices too short for the given shapes, which is
	// a programming error in the caller.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int)
	// Name says which implementation runs, for logs and reports.
	Name() string
	// Threads is the number of threads the implementation uses.
	Threads() int
}

// EnvGEMM is the environment variable that selects the GEMM implementation
// when the caller asks for "auto": "go" forces the pure-Go kernel (so tests
// can cover the fallback on machines that have the faster ones), "avx512"
// requires this package's AVX-512 kernels, "openblas" requires OpenBLAS.
const EnvGEMM = "TSIMCNE_GEMM"

// New returns the GEMM named by kind ("auto", "avx512", "openblas" or "go")
// running on the given number of threads (≤ 0 means 1). "auto" consults
// EnvGEMM, then takes the AVX-512 kernels when the CPU has AVX-512F (they
// match OpenBLAS's best kernels on the engine's shapes and do not depend on
// OpenBLAS's CPU detection, which this environment overrides with
// OPENBLAS_CORETYPE), then OpenBLAS, then pure Go. The second value says why
// a slower GEMM than the CPU allows was chosen (empty when none was).
func New(kind string, threads int) (Gemm, string, error) {
	if threads <= 0 {
		threads = 1
	}
	k := strings.ToLower(strings.TrimSpace(kind))
	if k == "" || k == "auto" {
		if env := strings.ToLower(strings.TrimSpace(os.Getenv(EnvGEMM))); env != "" && env != "auto" {
			k = env
		} else {
			k = "auto"
		}
	}
	switch k {
	case "go", "pure-go", "purego":
		return NewGo(threads), "pure-Go GEMM requested", nil
	case "avx512", "avx-512":
		g, err := AVX512(threads)
		if err != nil {
			return nil, "", fmt.Errorf("blas: AVX-512 GEMM requested: %w", err)
		}
		return g, "", nil
	case "openblas":
		g, err := OpenBLAS(threads)
		if err != nil {
			return nil, "", fmt.Errorf("blas: OpenBLAS requested: %w", err)
		}
		return g, "", nil
	case "auto":
		if g, err := AVX512(threads); err == nil {
			return g, "", nil
		}
		g, err := OpenBLAS(threads)
		if err != nil {
			return NewGo(threads), fmt.Sprintf("no AVX-512 and OpenBLAS unavailable (%v); using pure-Go GEMM", err), nil
		}
		return g, "", nil
	default:
		return nil, "", fmt.Errorf("blas: unknown GEMM %q (want auto, avx512, openblas or go)", kind)
	}
}

// product is the GEMM being computed, C += alpha·op(A)·op(B) after the
// beta scaling, shared by the caller and the workers of one Sgemm call.
type product struct {
	transA, transB bool
	k              int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
}

// begin is the common start of an Sgemm: it checks the operands, scales C by
// beta (beta = 0 clears it, NaNs included, as BLAS does) and reports whether
// alpha·op(A)·op(B) remains to be added.
func begin(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	if m == 0 || n == 0 {
		return false
	}
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if beta != 1 {
		scaleC(m, n, beta, c, ldc)
	}
	return k != 0 && alpha != 0
}

// checkLen panics when a matrix slice is too short; callers pass shapes they
// computed themselves, so a short slice is a bug, not bad input.
func checkLen(name string, s []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("blas: %s leading dimension %d < %d columns", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("blas: %s has %d elements, needs %d (%d×%d, ld %d)", name, len(s), need, rows, cols, ld))
	}
}

func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if transA {
		checkLen("A", a, k, m, lda)
	} else {
		checkLen("A", a, m, k, lda)
	}
	if transB {
		checkLen("B", b, n, k, ldb)
	} else {
		checkLen("B", b, k, n, ldb)
	}
	checkLen("C", c, m, n, ldc)
}

package blas

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/internal/workpool"
)

// Blocking of the AVX-512 GEMM. A micro-kernel computes avxMR×avxNR of C
// (24 zmm accumulators); a k block of avxKC keeps the kernel's rows of A in
// L1 while it walks the columns of a B block, and a B block of avxKC×avxNC
// (512 KiB) stays in L2 while the kernel walks the rows of A.
const (
	avxMR = 12
	avxNR = 32
	avxKC = 256
	avxNC = 512
)

// avxMinWork is the product size (2·m·n·k) below which one thread does the
// whole GEMM: waking a worker costs more than such a product.
const avxMinWork = 1 << 21

// avxGemm is the SGEMM built on the AVX-512 micro-kernels. It reads A in
// place, transposed or not, so it packs only op(B) when B is transposed —
// the small weight matrices of the engine's layers — and never the large
// im2col matrices; that saves a copy of the largest operand on every call.
type avxGemm struct {
	mu   sync.Mutex // one product at a time: workers share cur and bufs
	cur  product
	pool *workpool.Pool[avxJob, *avxBufs]
}

// avxJob hands a worker its block of the current product.
type avxJob struct {
	cl *product
	r  avxRegion
}

// avxRegion is the block of C one worker computes.
type avxRegion struct{ i0, i1, j0, j1 int }

// avxBufs is one worker's packing space, allocated once.
type avxBufs struct {
	b    []float32              // packed op(B) block: panels of avxNR columns, k-major
	edge []float32              // one zero-padded panel for a last, narrow column block
	tile [avxMR * avxNR]float32 // C tile for a narrow column block
}

// AVX512 returns the SGEMM built on this package's AVX-512 assembly kernels,
// running on the given number of threads, or an error when the CPU (or the
// build) lacks AVX-512. It needs no library and does not depend on how
// OpenBLAS identifies the CPU.
func AVX512(threads int) (Gemm, error) {
	if !avx512Supported() {
		return nil, fmt.Errorf("blas: this CPU (or build) has no AVX-512F")
	}
	if threads <= 0 {
		threads = 1
	}
	bufs := make([]*avxBufs, threads)
	for w := range bufs {
		bufs[w] = &avxBufs{b: make([]float32, avxKC*avxNC), edge: make([]float32, avxKC*avxNR)}
	}
	return &avxGemm{pool: workpool.New(bufs, runAVXJob)}, nil
}

// Name implements Gemm.
func (g *avxGemm) Name() string {
	return fmt.Sprintf("AVX-512 assembly GEMM, %d threads", g.pool.Threads())
}

// Threads implements Gemm.
func (g *avxGemm) Threads() int { return g.pool.Threads() }

// Sgemm implements Gemm: it scales C by beta once, then splits C into one
// block of rows (or, for short wide products, of columns) per thread.
func (g *avxGemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !begin(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cur = product{transA: transA, transB: transB, k: k, alpha: alpha,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc}
	t := g.pool.Threads()
	var buf [16]avxJob
	parts := buf[:0]
	cl := &g.cur
	switch {
	case t == 1 || 2*m*n*k < avxMinWork:
		parts = append(parts, avxJob{cl, avxRegion{0, m, 0, n}})
	case m >= t*4*avxMR:
		// Each thread then packs the same transposed B, which costs a few
		// percent on the engine's shapes; splitting the columns instead
		// (disjoint packing, less reuse of A) measured no better.
		step := ceilTo((m+t-1)/t, avxMR)
		for i0 := 0; i0 < m; i0 += step {
			parts = append(parts, avxJob{cl, avxRegion{i0, min(i0+step, m), 0, n}})
		}
	case n >= t*avxNR:
		step := ceilTo((n+t-1)/t, avxNR)
		for j0 := 0; j0 < n; j0 += step {
			parts = append(parts, avxJob{cl, avxRegion{0, m, j0, min(j0+step, n)}})
		}
	default:
		parts = append(parts, avxJob{cl, avxRegion{0, m, 0, n}})
	}
	g.pool.Do(parts)
	g.cur = product{} // drop the caller's slices
}

func ceilTo(x, q int) int { return (x + q - 1) / q * q }

func runAVXJob(j avxJob, bufs *avxBufs) { avxRegionRun(j.cl, j.r, bufs) }

// avxRegionRun computes C[i0:i1, j0:j1] += alpha·op(A)·op(B) for call cl.
func avxRegionRun(cl *product, r avxRegion, bufs *avxBufs) {
	k := cl.k
	// Even k blocks: a last block of a few k steps would run the kernels
	// with little work per load of C.
	nkb := (k + avxKC - 1) / avxKC
	kcb := (k + nkb - 1) / nkb
	const f = 4 // bytes per float32
	for jc := r.j0; jc < r.j1; jc += avxNC {
		nb := min(avxNC, r.j1-jc)
		for pc := 0; pc < k; pc += kcb {
			kb := min(kcb, k-pc)
			full := nb / avxNR * avxNR
			if cl.transB {
				packBT(cl.b, cl.ldb, pc, kb, jc, nb, bufs.b)
			} else if full < nb {
				packBEdge(cl.b, cl.ldb, pc, kb, jc+full, nb-full, bufs.edge)
			}
			for ic := r.i0; ic < r.i1; ic += avxMR {
				rows := min(avxMR, r.i1-ic)
				var ap unsafe.Pointer
				var rs, ks int
				if cl.transA {
					ap, rs, ks = unsafe.Pointer(&cl.a[pc*cl.lda+ic]), f, cl.lda*f
				} else {
					ap, rs, ks = unsafe.Pointer(&cl.a[ic*cl.lda+pc]), cl.lda*f, f
				}
				for jr := 0; jr < nb; jr += avxNR {
					var bp unsafe.Pointer
					var bks int
					switch {
					case cl.transB:
						bp, bks = unsafe.Pointer(&bufs.b[jr*kb]), avxNR*f
					case jr < full:
						bp, bks = unsafe.Pointer(&cl.b[pc*cl.ldb+jc+jr]), cl.ldb*f
					default:
						bp, bks = unsafe.Pointer(&bufs.edge[0]), avxNR*f
					}
					if jr < full {
						microKernel(rows, kb, ap, rs, ks, bp, bks, unsafe.Pointer(&cl.c[ic*cl.ldc+jc+jr]), cl.ldc*f, cl.alpha)
						continue
					}
					// A narrow last block: the kernel writes a zeroed tile,
					// whose valid columns are added into C.
					cols := nb - jr
					tile := bufs.tile[:rows*avxNR]
					clear(tile)
					microKernel(rows, kb, ap, rs, ks, bp, bks, unsafe.Pointer(&tile[0]), avxNR*f, cl.alpha)
					for i := 0; i < rows; i++ {
						dst := cl.c[(ic+i)*cl.ldc+jc+jr:][:cols]
						for j, v := range tile[i*avxNR : i*avxNR+cols] {
							dst[j] += v
						}
					}
				}
			}
		}
	}
}

// packBT stores op(B)[p0:p0+kb, j0:j0+nb] = B[j0:j0+nb, p0:p0+kb]ᵀ as
// panels of avxNR columns, k-major, zero-padding the last panel.
func packBT(b []float32, ldb, p0, kb, j0, nb int, dst []float32) {
	for jp := 0; jp < nb; jp += avxNR {
		cols := min(avxNR, nb-jp)
		pan := dst[jp*kb : jp*kb+kb*avxNR]
		if cols < avxNR {
			clear(pan)
		}
		for q := 0; q < cols; q++ {
			src := b[(j0+jp+q)*ldb+p0:][:kb]
			for p, v := range src {
				pan[p*avxNR+q] = v
			}
		}
	}
}

// packBEdge stores the narrow last column block B[p0:p0+kb, j0:j0+cols]
// (cols < avxNR) as one zero-padded k-major panel.
func packBEdge(b []float32, ldb, p0, kb, j0, cols int, dst []float32) {
	pan := dst[:kb*avxNR]
	clear(pan)
	for p := 0; p < kb; p++ {
		copy(pan[p*avxNR:p*avxNR+cols], b[(p0+p)*ldb+j0:][:cols])
	}
}

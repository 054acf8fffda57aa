package blas

import (
	"fmt"
	"sync"

	"github.com/tsimcne/tsimcne-go/internal/workpool"
)

// Blocking parameters of the pure-Go kernel: a kc×nc panel of B and an mc×kc
// panel of A are packed so the 4×4 micro-kernel streams through contiguous
// memory that stays in cache.
const (
	mr = 4
	nr = 4
	kc = 256
	mc = 64
	nc = 1024
)

type goGemm struct {
	mu   sync.Mutex // one product at a time: workers share cur
	cur  product
	pool *workpool.Pool[goJob, *packBufs] // thread w packs into pool.State(w)
}

// goJob hands a worker its block of C: rows [i0,i1), columns [j0,j1).
type goJob struct {
	cl             *product
	i0, i1, j0, j1 int
}

func runGoJob(j goJob, bufs *packBufs) {
	cl := j.cl
	serial(cl.transA, cl.transB, j.i0, j.i1, j.j0, j.j1, cl.k, cl.alpha, cl.a, cl.lda, cl.b, cl.ldb, cl.c, cl.ldc, bufs)
}

// NewGo returns the pure-Go SGEMM running on the given number of goroutines.
// It is a blocked, packed, register-tiled kernel: several times slower than
// OpenBLAS (Go emits no SIMD for it) but far faster than a naive triple loop.
func NewGo(threads int) Gemm {
	if threads <= 0 {
		threads = 1
	}
	bufs := make([]*packBufs, threads)
	for w := range bufs {
		bufs[w] = &packBufs{a: make([]float32, mc*kc), b: make([]float32, kc*nc)}
	}
	return &goGemm{pool: workpool.New(bufs, runGoJob)}
}

type packBufs struct{ a, b []float32 }

// Name implements Gemm.
func (g *goGemm) Name() string { return fmt.Sprintf("pure-Go GEMM, %d threads", g.pool.Threads()) }

// Threads implements Gemm.
func (g *goGemm) Threads() int { return g.pool.Threads() }

// Sgemm implements Gemm: it scales C by beta once, then splits the rows
// (or, for wide products, the columns) of C across goroutines.
func (g *goGemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !begin(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	work := 2 * m * n * k
	t := g.pool.Threads()
	if work < 1<<20 || t == 1 {
		serial(transA, transB, 0, m, 0, n, k, alpha, a, lda, b, ldb, c, ldc, g.pool.State(0))
		return
	}
	g.cur = product{transA: transA, transB: transB, k: k, alpha: alpha,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc}
	var buf [16]goJob
	parts := buf[:0]
	if m >= n {
		step := (m + t - 1) / t
		step = (step + mr - 1) / mr * mr
		for i0 := 0; i0 < m; i0 += step {
			parts = append(parts, goJob{&g.cur, i0, min(i0+step, m), 0, n})
		}
	} else {
		step := (n + t - 1) / t
		step = (step + nr - 1) / nr * nr
		for j0 := 0; j0 < n; j0 += step {
			parts = append(parts, goJob{&g.cur, 0, m, j0, min(j0+step, n)})
		}
	}
	g.pool.Do(parts)
	g.cur = product{} // drop the caller's slices
}

// serial computes rows [i0,i1) and columns [j0,j1) of C += alpha·op(A)·op(B).
// bufs is the calling thread's packing space.
func serial(transA, transB bool, i0, i1, j0, j1, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, c []float32, ldc int, bufs *packBufs) {
	for jc := j0; jc < j1; jc += nc {
		nb := min(nc, j1-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			packB(transB, b, ldb, pc, kb, jc, nb, bufs.b)
			for ic := i0; ic < i1; ic += mc {
				mb := min(mc, i1-ic)
				packA(transA, a, lda, ic, mb, pc, kb, bufs.a)
				macro(mb, nb, kb, alpha, bufs.a, bufs.b, c[ic*ldc+jc:], ldc)
			}
		}
	}
}

// packA stores op(A)[i0:i0+mb, p0:p0+kb] as panels of mr rows, k-major,
// zero-padding the last panel.
func packA(trans bool, a []float32, lda, i0, mb, p0, kb int, dst []float32) {
	idx := 0
	for ip := 0; ip < mb; ip += mr {
		rows := min(mr, mb-ip)
		for p := 0; p < kb; p++ {
			for r := 0; r < mr; r++ {
				var v float32
				if r < rows {
					if trans {
						v = a[(p0+p)*lda+i0+ip+r]
					} else {
						v = a[(i0+ip+r)*lda+p0+p]
					}
				}
				dst[idx] = v
				idx++
			}
		}
	}
}

// packB stores op(B)[p0:p0+kb, j0:j0+nb] as panels of nr columns, k-major,
// zero-padding the last panel.
func packB(trans bool, b []float32, ldb, p0, kb, j0, nb int, dst []float32) {
	idx := 0
	for jp := 0; jp < nb; jp += nr {
		cols := min(nr, nb-jp)
		for p := 0; p < kb; p++ {
			if !trans && cols == nr {
				row := b[(p0+p)*ldb+j0+jp:]
				dst[idx], dst[idx+1], dst[idx+2], dst[idx+3] = row[0], row[1], row[2], row[3]
				idx += nr
				continue
			}
			for q := 0; q < nr; q++ {
				var v float32
				if q < cols {
					if trans {
						v = b[(j0+jp+q)*ldb+p0+p]
					} else {
						v = b[(p0+p)*ldb+j0+jp+q]
					}
				}
				dst[idx] = v
				idx++
			}
		}
	}
}

func macro(mb, nb, kb int, alpha float32, ap, bp []float32, c []float32, ldc int) {
	var tmp [mr * nr]float32
	for jp := 0; jp < nb; jp += nr {
		cols := min(nr, nb-jp)
		bpan := bp[jp*kb : jp*kb+kb*nr]
		for ip := 0; ip < mb; ip += mr {
			rows := min(mr, mb-ip)
			apan := ap[ip*kb : ip*kb+kb*mr]
			if rows == mr && cols == nr {
				kernel4x4(kb, alpha, apan, bpan, c[ip*ldc+jp:], ldc)
				continue
			}
			tmp = [mr * nr]float32{}
			kernel4x4(kb, alpha, apan, bpan, tmp[:], nr)
			for r := 0; r < rows; r++ {
				for q := 0; q < cols; q++ {
					c[(ip+r)*ldc+jp+q] += tmp[r*nr+q]
				}
			}
		}
	}
}

// kernel4x4 adds alpha·(4×kb panel)·(kb×4 panel) into a 4×4 block of C; the
// sixteen accumulators live in registers.
func kernel4x4(kb int, alpha float32, ap, bp []float32, c []float32, ldc int) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	ap = ap[:4*kb]
	bp = bp[:4*kb]
	for p := 0; p+3 < len(ap) && p+3 < len(bp); p += 4 {
		a0, a1, a2, a3 := ap[p], ap[p+1], ap[p+2], ap[p+3]
		b0, b1, b2, b3 := bp[p], bp[p+1], bp[p+2], bp[p+3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r0 := c[0:4:4]
	r0[0] += alpha * c00
	r0[1] += alpha * c01
	r0[2] += alpha * c02
	r0[3] += alpha * c03
	r1 := c[ldc : ldc+4 : ldc+4]
	r1[0] += alpha * c10
	r1[1] += alpha * c11
	r1[2] += alpha * c12
	r1[3] += alpha * c13
	r2 := c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r2[0] += alpha * c20
	r2[1] += alpha * c21
	r2[2] += alpha * c22
	r2[3] += alpha * c23
	r3 := c[3*ldc : 3*ldc+4 : 3*ldc+4]
	r3[0] += alpha * c30
	r3[1] += alpha * c31
	r3[2] += alpha * c32
	r3[3] += alpha * c33
}

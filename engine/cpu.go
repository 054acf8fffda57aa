package engine

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tsimcne/tsimcne-go/engine/blas"
)

// CPUOptions configure the CPU backend.
type CPUOptions struct {
	// Threads for GEMM and element-wise kernels; ≤ 0 means 1.
	Threads int
	// GEMM selects "auto" (the AVX-512 assembly kernels on CPUs that have
	// AVX-512F, else OpenBLAS if loadable, else pure Go; the TSIMCNE_GEMM
	// environment variable can force one), "avx512", "openblas" or "go".
	GEMM string
}

// CPU is the host-memory backend.
type CPU struct {
	gemm    blas.Gemm
	threads int
	// Fallback explains why the pure-Go GEMM is in use when a faster one
	// was wanted; empty otherwise.
	Fallback string
	// Per-worker float64 partial sums for the BatchNorm reductions,
	// allocated once and grown to the widest layer.
	partial [][]float64
	small   []float32
	mu      sync.Mutex
	// gemmTime and gemmFlops accumulate over all Gemm calls (see GEMMStats).
	gemmTime  time.Duration
	gemmFlops float64
	pool      workerPool
}

// NewCPU builds the CPU backend. It fails only when OpenBLAS is explicitly
// requested and cannot be loaded, or GEMM names an unknown implementation.
func NewCPU(o CPUOptions) (*CPU, error) {
	t := o.Threads
	if t <= 0 {
		t = 1
	}
	g, why, err := blas.New(o.GEMM, t)
	if err != nil {
		return nil, fmt.Errorf("engine: CPU backend: %w", err)
	}
	c := &CPU{gemm: g, threads: t, Fallback: why, partial: make([][]float64, t), pool: newWorkerPool(t - 1)}
	// The workers hold only their channels, so an unreachable backend can
	// be collected; closing the channels then ends the workers.
	runtime.AddCleanup(c, func(jobs []chan job) {
		for _, ch := range jobs {
			close(ch)
		}
	}, c.pool.jobs)
	return c, nil
}

// Name says "cpu" and which GEMM runs.
func (c *CPU) Name() string { return "cpu: " + c.gemm.Name() }

// Describe is the line a program should log at start-up: the backend, its
// GEMM and, when the pure-Go fallback runs, why.
func (c *CPU) Describe() string {
	if c.Fallback != "" {
		return c.Name() + " (" + c.Fallback + ")"
	}
	return c.Name()
}

// GEMMStats returns the wall time spent in Gemm and the floating-point
// operations it performed since the last reset, and resets them if asked;
// the benchmark uses them to separate GEMM time from everything else.
func (c *CPU) GEMMStats(reset bool) (time.Duration, float64) {
	t, f := c.gemmTime, c.gemmFlops
	if reset {
		c.gemmTime, c.gemmFlops = 0, 0
	}
	return t, f
}

// UsingOpenBLAS reports whether GEMMs run on OpenBLAS.
func (c *CPU) UsingOpenBLAS() bool { return strings.HasPrefix(c.gemm.Name(), "OpenBLAS") }

// GEMMName is the GEMM implementation alone, e.g. "pure-Go GEMM, 2 threads".
func (c *CPU) GEMMName() string { return c.gemm.Name() }

// Threads returns the thread count.
func (c *CPU) Threads() int { return c.threads }

// Alloc returns a zeroed host buffer.
func (c *CPU) Alloc(n int) Buf { return Buf{host: make([]float32, n), n: n} }

// Upload copies src into dst.
func (c *CPU) Upload(dst Buf, src []float32) { copy(dst.host[:len(src)], src) }

// Download copies src into dst.
func (c *CPU) Download(dst []float32, src Buf) { copy(dst, src.host[:len(dst)]) }

// Zero clears the first n elements.
func (c *CPU) Zero(b Buf, n int) { clear(b.host[:n]) }

// Gemm runs on the configured SGEMM.
func (c *CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a Buf, aOff, lda int,
	b Buf, bOff, ldb int, beta float32, cc Buf, cOff, ldc int) {
	t0 := time.Now()
	c.gemm.Sgemm(transA, transB, m, n, k, alpha, a.host[aOff:], lda, b.host[bOff:], ldb, beta, cc.host[cOff:], ldc)
	c.gemmTime += time.Since(t0)
	c.gemmFlops += 2 * float64(m) * float64(n) * float64(k)
}

// parallel splits [0,n) into one contiguous range per thread; small jobs
// run inline because a goroutine costs more than they do.
func (c *CPU) parallel(n, grain int, fn func(w, lo, hi int)) {
	t := c.threads
	if t > n {
		t = n
	}
	if t <= 1 || n < grain {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	step := (n + t - 1) / t
	for w := 1; w < t; w++ {
		lo, hi := w*step, min((w+1)*step, n)
		if lo >= hi {
			continue
		}
		c.pool.wg.Add(1)
		c.pool.jobs[w-1] <- job{fn: fn, w: w, lo: lo, hi: hi}
	}
	fn(0, 0, min(step, n))
	c.pool.wg.Wait()
}

// job is one range of a parallel loop.
type job struct {
	fn        func(w, lo, hi int)
	w, lo, hi int
}

// workerPool keeps threads−1 goroutines for the element-wise kernels, so a
// kernel costs no goroutine start or WaitGroup allocation; one channel per
// worker pins range w to worker w. The backend is not safe for concurrent
// use, like the model that drives it.
type workerPool struct {
	jobs []chan job
	wg   *sync.WaitGroup
}

func newWorkerPool(n int) workerPool {
	p := workerPool{jobs: make([]chan job, n), wg: new(sync.WaitGroup)}
	for i := range p.jobs {
		ch := make(chan job, 1)
		p.jobs[i] = ch
		wg := p.wg
		go func() {
			for j := range ch {
				j.fn(j.w, j.lo, j.hi)
				wg.Done()
			}
		}()
	}
	return p
}

// Im2col gathers patches; rows of padding are written as zeros.
func (c *CPU) Im2col(x Buf, g ConvGeom, n0, n1 int, cols Buf) {
	kw := g.ColWidth()
	rows := (n1 - n0) * g.OH * g.OW
	xs, cs := x.host, cols.host
	c.parallel(rows, 64, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			ow := r % g.OW
			oh := (r / g.OW) % g.OH
			n := n0 + r/(g.OW*g.OH)
			dst := cs[r*kw : r*kw+kw]
			for kh := 0; kh < g.K; kh++ {
				ih := oh*g.Stride - g.Pad + kh
				seg := dst[kh*g.K*g.C : (kh+1)*g.K*g.C]
				if ih < 0 || ih >= g.H {
					clear(seg)
					continue
				}
				base := (n*g.H + ih) * g.W
				for kx := 0; kx < g.K; kx++ {
					iw := ow*g.Stride - g.Pad + kx
					d := seg[kx*g.C : kx*g.C+g.C]
					if iw < 0 || iw >= g.W {
						clear(d)
						continue
					}
					copy(d, xs[(base+iw)*g.C:(base+iw)*g.C+g.C])
				}
			}
		}
	})
}

// Col2im gathers, for every input pixel, the column entries that read it,
// so each dx element is written once and threads never collide.
func (c *CPU) Col2im(cols Buf, g ConvGeom, n0, n1 int, dx Buf, accumulate bool) {
	kw := g.ColWidth()
	pix := (n1 - n0) * g.H * g.W
	xs, cs := dx.host, cols.host
	c.parallel(pix, 64, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			iw := p % g.W
			ih := (p / g.W) % g.H
			nl := p / (g.W * g.H)
			d := xs[((n0+nl)*g.H*g.W+ih*g.W+iw)*g.C:][:g.C]
			if !accumulate {
				clear(d)
			}
			for kh := 0; kh < g.K; kh++ {
				t := ih + g.Pad - kh
				if t < 0 || t%g.Stride != 0 {
					continue
				}
				oh := t / g.Stride
				if oh >= g.OH {
					continue
				}
				for kx := 0; kx < g.K; kx++ {
					u := iw + g.Pad - kx
					if u < 0 || u%g.Stride != 0 {
						continue
					}
					ow := u / g.Stride
					if ow >= g.OW {
						continue
					}
					r := (nl*g.OH+oh)*g.OW + ow
					src := cs[r*kw+(kh*g.K+kx)*g.C:][:g.C]
					for i := range d {
						d[i] += src[i]
					}
				}
			}
		}
	})
}

// partials returns per-worker float64 scratch of at least n entries, cleared.
func (c *CPU) partials(n int) [][]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.partial {
		if len(c.partial[w]) < n {
			c.partial[w] = make([]float64, n)
		}
		clear(c.partial[w][:n])
	}
	return c.partial
}

// BatchNormTrain: one pass of float64 sums gives mean and biased variance,
// a second pass applies the fused affine (+residual, +ReLU).
func (c *CPU) BatchNormTrain(a *BNArgs) {
	C, rows := a.C, a.Rows
	x := a.X.host
	parts := c.partials(2 * C)
	c.parallel(rows, 256, func(w, lo, hi int) {
		s, ss := parts[w][:C], parts[w][C:2*C]
		for r := lo; r < hi; r++ {
			row := x[r*C : r*C+C]
			s1, s2 := s[:len(row)], ss[:len(row)]
			for j, v := range row {
				f := float64(v)
				s1[j] += f
				s2[j] += f * f
			}
		}
	})
	mean, inv := a.Mean.host[:C], a.InvStd.host[:C]
	rm, rv := a.RunMean.host[:C], a.RunVar.host[:C]
	gamma, beta := a.Gamma.host[:C], a.Beta.host[:C]
	scale := c.scratch(2 * C)
	shift := scale[C:]
	m := float64(rows)
	mom := float64(a.Momentum)
	for j := 0; j < C; j++ {
		var s, ss float64
		for w := range parts {
			s += parts[w][j]
			ss += parts[w][C+j]
		}
		mu := s / m
		v := ss/m - mu*mu
		if v < 0 {
			v = 0
		}
		is := 1 / math.Sqrt(v+float64(a.Eps))
		mean[j] = float32(mu)
		inv[j] = float32(is)
		unb := v
		if rows > 1 {
			unb = v * m / (m - 1)
		}
		rm[j] = float32((1-mom)*float64(rm[j]) + mom*mu)
		rv[j] = float32((1-mom)*float64(rv[j]) + mom*unb)
		sc := float64(gamma[j]) * is
		scale[j] = float32(sc)
		shift[j] = float32(float64(beta[j]) - mu*sc)
	}
	c.affine(a, scale[:C], shift)
}

// BatchNormEval applies the running statistics.
func (c *CPU) BatchNormEval(a *BNArgs) {
	C := a.C
	scale := c.scratch(2 * C)
	shift := scale[C:]
	for j := 0; j < C; j++ {
		is := 1 / math.Sqrt(float64(a.RunVar.host[j])+float64(a.Eps))
		sc := float64(a.Gamma.host[j]) * is
		scale[j] = float32(sc)
		shift[j] = float32(float64(a.Beta.host[j]) - float64(a.RunMean.host[j])*sc)
	}
	c.affine(a, scale[:C], shift)
}

// affine is the element-wise half of BatchNorm: out = x·scale + shift
// (+ res) (then ReLU). The inner loops are branch-free: with ReLU inputs
// negative half the time, an if-statement mispredicts constantly and was 9×
// slower than max(). Re-slicing to the row length lets the compiler drop
// bounds checks.
func (c *CPU) affine(a *BNArgs, scale, shift []float32) {
	C := a.C
	x, out := a.X.host, a.Out.host
	var res []float32
	if a.Res.Valid() {
		res = a.Res.host
	}
	relu := a.ReLU
	c.parallel(a.Rows, 256, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*C : r*C+C]
			or := out[r*C : r*C+C][:len(xr)]
			sc, sh := scale[:len(xr)], shift[:len(xr)]
			switch {
			case res != nil && relu:
				rr := res[r*C : r*C+C][:len(xr)]
				for j, v := range xr {
					or[j] = max(v*sc[j]+sh[j]+rr[j], 0)
				}
			case res != nil:
				rr := res[r*C : r*C+C][:len(xr)]
				for j, v := range xr {
					or[j] = v*sc[j] + sh[j] + rr[j]
				}
			case relu:
				for j, v := range xr {
					or[j] = max(v*sc[j]+sh[j], 0)
				}
			default:
				for j, v := range xr {
					or[j] = v*sc[j] + sh[j]
				}
			}
		}
	})
}

// keepMask is all ones when the ReLU output m is positive, else zero,
// without a branch: for m ≥ 0 its bit pattern is non-zero exactly when
// m > 0 (ReLU outputs are never −0: max(−0, 0) = +0).
func keepMask(m float32) uint32 {
	b := math.Float32bits(m)
	return uint32(int32(b|-b) >> 31)
}

// masked returns d where m > 0, else 0, branch-free.
func masked(d, m float32) float32 {
	return math.Float32frombits(math.Float32bits(d) & keepMask(m))
}

// BatchNormBackward: dβ = Σdy, dγ = Σdy·x̂, dx = γ·σ⁻¹·(dy − dβ/M − x̂·dγ/M),
// where dy is DOut masked by the following ReLU's output when Mask is valid.
func (c *CPU) BatchNormBackward(a *BNArgs) {
	C, rows := a.C, a.Rows
	x, dy := a.X.host, a.DOut.host
	var mask []float32
	if a.Mask.Valid() {
		mask = a.Mask.host
	}
	mean, inv := a.Mean.host[:C], a.InvStd.host[:C]
	parts := c.partials(2 * C)
	c.parallel(rows, 256, func(w, lo, hi int) {
		sdy, sdx := parts[w][:C], parts[w][C:2*C]
		for r := lo; r < hi; r++ {
			xr := x[r*C : r*C+C]
			dr := dy[r*C : r*C+C][:len(xr)]
			mn, iv := mean[:len(xr)], inv[:len(xr)]
			s1, s2 := sdy[:len(xr)], sdx[:len(xr)]
			if mask != nil {
				mr := mask[r*C : r*C+C][:len(xr)]
				for j, v := range xr {
					d := masked(dr[j], mr[j])
					s1[j] += float64(d)
					s2[j] += float64(d * ((v - mn[j]) * iv[j]))
				}
				continue
			}
			for j, v := range xr {
				d := dr[j]
				s1[j] += float64(d)
				s2[j] += float64(d * ((v - mn[j]) * iv[j]))
			}
		}
	})
	sc := c.scratch(3 * C)
	k1, k2, k3 := sc[:C], sc[C:2*C], sc[2*C:3*C] // γσ⁻¹, Σdy/M, Σdy·x̂/M
	dg, db := a.DGamma.host[:C], a.DBeta.host[:C]
	m := float64(rows)
	for j := 0; j < C; j++ {
		var s, sx float64
		for w := range parts {
			s += parts[w][j]
			sx += parts[w][C+j]
		}
		db[j] = float32(s)
		dg[j] = float32(sx)
		k1[j] = a.Gamma.host[j] * inv[j]
		k2[j] = float32(s / m)
		k3[j] = float32(sx / m)
	}
	if !a.DX.Valid() {
		return
	}
	dx := a.DX.host
	c.parallel(rows, 256, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*C : r*C+C]
			dr := dy[r*C : r*C+C][:len(xr)]
			or := dx[r*C : r*C+C][:len(xr)]
			mn, iv := mean[:len(xr)], inv[:len(xr)]
			a1, a2, a3 := k1[:len(xr)], k2[:len(xr)], k3[:len(xr)]
			if mask != nil {
				mr := mask[r*C : r*C+C][:len(xr)]
				for j, v := range xr {
					or[j] = a1[j] * (masked(dr[j], mr[j]) - a2[j] - (v-mn[j])*iv[j]*a3[j])
				}
				continue
			}
			for j, v := range xr {
				or[j] = a1[j] * (dr[j] - a2[j] - (v-mn[j])*iv[j]*a3[j])
			}
		}
	})
}

// scratch returns a float32 buffer of n elements owned by the backend, for
// per-channel constants; it is reused by the next call.
func (c *CPU) scratch(n int) []float32 {
	if len(c.small) < n {
		c.small = make([]float32, n)
	}
	return c.small[:n]
}

// ReLUMask zeroes gradients where the ReLU output was not positive.
func (c *CPU) ReLUMask(d, out Buf, n int) {
	ds, os := d.host[:n], out.host[:n]
	c.parallel(n, 1<<14, func(_, lo, hi int) {
		dd, oo := ds[lo:hi], os[lo:hi]
		oo = oo[:len(dd)]
		for i, d := range dd {
			dd[i] = masked(d, oo[i])
		}
	})
}

// AddMasked accumulates src into dst where mask is positive.
func (c *CPU) AddMasked(dst, src, mask Buf, n int) {
	ds, ss := dst.host[:n], src.host[:n]
	var ms []float32
	if mask.Valid() {
		ms = mask.host[:n]
	}
	c.parallel(n, 1<<14, func(_, lo, hi int) {
		dd, s := ds[lo:hi], ss[lo:hi]
		if ms == nil {
			for i, v := range s {
				dd[i] += v
			}
			return
		}
		mm := ms[lo:hi]
		mm = mm[:len(s)]
		dd = dd[:len(s)]
		for i, v := range s {
			dd[i] += masked(v, mm[i])
		}
	})
}

// FlipConvWeight rotates the kernel by 180° and swaps in/out channels.
// Each output row (one input channel of the original) is written
// contiguously; rows are split across threads.
func (c *CPU) FlipConvWeight(w Buf, oc, k, ch int, out Buf) {
	ws, os := w.host, out.host
	kk := k * k
	c.parallel(ch, 8, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			for t := 0; t < kk; t++ {
				dst := os[(i*kk+(kk-1-t))*oc:][:oc]
				for o := range dst {
					dst[o] = ws[(o*kk+t)*ch+i]
				}
			}
		}
	})
}

// AvgPool averages over pixels, accumulating in float64.
func (c *CPU) AvgPool(x Buf, n, hw, ch int, out Buf) {
	xs, os := x.host, out.host
	c.parallel(n, 2, func(_, lo, hi int) {
		acc := make([]float64, ch)
		for i := lo; i < hi; i++ {
			clear(acc)
			for p := 0; p < hw; p++ {
				row := xs[(i*hw+p)*ch:][:ch]
				for j, v := range row {
					acc[j] += float64(v)
				}
			}
			o := os[i*ch:][:ch]
			for j := range o {
				o[j] = float32(acc[j] / float64(hw))
			}
		}
	})
}

// AvgPoolBackward spreads the pooled gradient back, through the ReLU mask.
func (c *CPU) AvgPoolBackward(dout Buf, n, hw, ch int, mask, dx Buf) {
	ds, ms, xs := dout.host, mask.host, dx.host
	inv := 1 / float32(hw)
	c.parallel(n, 2, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			d := ds[i*ch:][:ch]
			for p := 0; p < hw; p++ {
				o := (i*hw + p) * ch
				mr, xr := ms[o:o+ch], xs[o:o+ch]
				xr = xr[:len(mr)]
				dd := d[:len(mr)]
				for j, v := range mr {
					xr[j] = masked(dd[j]*inv, v)
				}
			}
		}
	})
}

// BiasAct adds the bias row-wise, then the optional ReLU.
func (c *CPU) BiasAct(y Buf, rows, cols int, bias Buf, relu bool) {
	ys, bs := y.host, bias.host[:cols]
	c.parallel(rows, 16, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			row := ys[r*cols:][:len(bs)]
			if relu {
				for j, b := range bs {
					row[j] = max(row[j]+b, 0)
				}
				continue
			}
			for j, b := range bs {
				row[j] += b
			}
		}
	})
}

// ColSum sums rows in float64.
func (c *CPU) ColSum(y Buf, rows, cols int, out Buf) {
	ys, os := y.host, out.host[:cols]
	acc := make([]float64, cols)
	for r := 0; r < rows; r++ {
		for j, v := range ys[r*cols:][:cols] {
			acc[j] += float64(v)
		}
	}
	for j := range os {
		os[j] = float32(acc[j])
	}
}

// SGD is PyTorch's SGD with the spec's element-wise clamp before weight decay.
func (c *CPU) SGD(p, g, m Buf, n int, s SGDArgs) {
	ps, gs, ms := p.host[:n], g.host[:n], m.host[:n]
	c.parallel(n, 1<<15, func(_, lo, hi int) {
		pp, gg, mm := ps[lo:hi], gs[lo:hi], ms[lo:hi]
		pp = pp[:len(gg)]
		gg, mm = gg[:len(pp)], mm[:len(pp)]
		for i, gv := range gg {
			d := min(max(gv, -s.Clip), s.Clip) + s.WeightDecay*pp[i]
			if s.First {
				mm[i] = d
			} else {
				mm[i] = s.Momentum*mm[i] + d
			}
			pp[i] -= s.LR * mm[i]
		}
	})
}

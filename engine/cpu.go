package engine

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/tsimcne/tsimcne-go/engine/blas"
	"github.com/tsimcne/tsimcne-go/internal/workpool"
)

// CPUOptions configure the CPU backend.
type CPUOptions struct {
	// Threads for GEMM and element-wise kernels; ≤ 0 means 1.
	Threads int
	// GEMM selects the matrix multiplication; the zero GEMM is GEMMAuto
	// (the AVX-512 assembly kernels on CPUs that have AVX-512F, else
	// OpenBLAS if loadable, else pure Go; the TSIMCNE_GEMM environment
	// variable can force one).
	GEMM GEMM
}

// CPU is the host-memory backend.
type CPU struct {
	gemm blas.Gemm
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
	pool      *workpool.Pool[job, int] // element-wise kernels; thread w is worker w
	// k holds the operands of the element-wise kernel being run (see
	// kernelArgs).
	k kernelArgs
	// conv is the state of the direct convolutions (cpuconv.go).
	conv cpuConv
}

// NewCPU builds the CPU backend. It fails only when OpenBLAS is explicitly
// requested and cannot be loaded, or GEMM names an unknown implementation.
func NewCPU(o CPUOptions) (*CPU, error) {
	t := o.Threads
	if t <= 0 {
		t = 1
	}
	kind, err := ParseGEMM(string(o.GEMM))
	if err != nil {
		return nil, err
	}
	g, why, err := blas.New(string(kind), t)
	if err != nil {
		return nil, fmt.Errorf("engine: CPU backend: %w", err)
	}
	ids := make([]int, t)
	for i := range ids {
		ids[i] = i
	}
	return &CPU{gemm: g, Fallback: why, partial: make([][]float64, t), pool: workpool.New(ids, runJob)}, nil
}

// Name says "cpu" and which GEMM runs.
func (c *CPU) Name() string { return "cpu: " + c.gemm.Name() }

// DefaultColsLimit is the CPU's im2col workspace (Options.ColsLimit, in
// float32 elements): 2M, 8 MB. A workspace that stays in the last-level
// cache measured 10–15% faster per step than 64 MB on the 2-core reference
// machine.
const DefaultColsLimit = 2 << 20

// ColsLimit is DefaultColsLimit: convolutions in cache-sized chunks.
func (c *CPU) ColsLimit() int { return DefaultColsLimit }

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
func (c *CPU) Threads() int { return c.pool.Threads() }

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

// rangeFn is one element-wise kernel's loop over rows [lo,hi) for worker w.
// Kernels are top-level functions that read their operands from c.k, so
// passing one to parallel allocates nothing: a closure that captured the
// operands would escape to the workers and cost a heap allocation per call,
// about a thousand per training step.
type rangeFn func(c *CPU, w, lo, hi int)

// kernelArgs holds the operands of the element-wise kernel being run: one
// struct per kernel, its fields named after the parameters of the Backend
// method that runs it. The backend runs one kernel at a time (it is not safe
// for concurrent use), so one record serves them all.
type kernelArgs struct {
	im2col      im2colArgs
	col2im      col2imArgs
	bnStats     bnStatsArgs
	affine      affineArgs
	bnBackward  bnBackwardArgs
	reluMask    reluMaskArgs
	addMasked   addMaskedArgs
	flip        flipArgs
	avgPool     avgPoolArgs
	avgPoolBack avgPoolBackArgs
	biasAct     biasActArgs
	sgd         sgdArgs
}

// im2colArgs: Im2col of images [n0, …) of x into cols.
type im2colArgs struct {
	x, cols []float32
	g       ConvGeom
	n0      int
}

// col2imArgs: Col2im of cols into images [n0, …) of dx.
type col2imArgs struct {
	cols, dx   []float32
	g          ConvGeom
	n0         int
	accumulate bool
}

// bnStatsArgs: the per-worker sums of x and x² of BatchNormTrain (rows×c).
type bnStatsArgs struct {
	x     []float32
	c     int
	parts [][]float64 // per worker: Σx[0:c], Σx²[c:2c]
}

// affineArgs: BatchNorm's out = x·scale + shift (+ res) (then ReLU).
type affineArgs struct {
	x, res, out  []float32 // res nil: no residual
	c            int
	relu         bool
	scale, shift []float32 // c each
}

// bnBackwardArgs: BatchNormBackward's sums and input gradient.
type bnBackwardArgs struct {
	x, dout, mask []float32 // mask nil: dout is not masked
	dx            []float32
	c             int
	mean, invStd  []float32
	parts         [][]float64 // per worker: Σdy[0:c], Σdy·x̂[c:2c]
	// gammaInvStd = γσ⁻¹, meanDy = Σdy/M, meanDyXhat = Σdy·x̂/M.
	gammaInvStd, meanDy, meanDyXhat []float32
}

// reluMaskArgs: ReLUMask(d, out).
type reluMaskArgs struct{ d, out []float32 }

// addMaskedArgs: AddMasked(dst, src, mask); mask nil: every element.
type addMaskedArgs struct{ dst, src, mask []float32 }

// flipArgs: FlipConvWeight of w (oc×k·k×c) into out; kk = k·k.
type flipArgs struct {
	w, out    []float32
	oc, kk, c int
}

// avgPoolArgs: AvgPool of x (n×hw×c) into out (n×c).
type avgPoolArgs struct {
	x, out []float32
	hw, c  int
	parts  [][]float64 // per worker: c float64 accumulators
}

// avgPoolBackArgs: AvgPoolBackward of dout (n×c) into dx (n×hw×c) through
// mask; inv = 1/hw.
type avgPoolBackArgs struct {
	dout, mask, dx []float32
	hw, c          int
	inv            float32
}

// biasActArgs: BiasAct of y (rows×cols) with bias (cols).
type biasActArgs struct {
	y, bias []float32
	cols    int
	relu    bool
}

// sgdArgs: SGD of p with gradient g and momentum buffer m.
type sgdArgs struct {
	p, g, m []float32
	s       SGDArgs
}

// parallel splits [0,n) into one contiguous range per thread; small jobs
// run inline because waking a worker costs more than they do. The operands
// must be in c.k; they are cleared afterwards so the backend keeps no
// reference to the caller's memory.
func (c *CPU) parallel(n, grain int, fn rangeFn) {
	defer func() { c.k = kernelArgs{} }()
	t := c.pool.Threads()
	if t > n {
		t = n
	}
	if t <= 1 || n < grain {
		if n > 0 {
			fn(c, 0, 0, n)
		}
		return
	}
	step := (n + t - 1) / t
	var buf [16]job
	parts := buf[:0]
	for w := 0; w < t; w++ {
		lo, hi := w*step, min((w+1)*step, n)
		if lo >= hi {
			break
		}
		parts = append(parts, job{fn: fn, c: c, lo: lo, hi: hi})
	}
	c.pool.Do(parts)
}

// job is one range of a parallel loop; the thread that runs it passes its
// index as the kernel's worker number.
type job struct {
	fn     rangeFn
	c      *CPU
	lo, hi int
}

func runJob(j job, w int) { j.fn(j.c, w, j.lo, j.hi) }

// Im2col gathers patches; rows of padding are written as zeros.
func (c *CPU) Im2col(x Buf, g ConvGeom, n0, n1 int, cols Buf) {
	c.k.im2col = im2colArgs{x: x.host, cols: cols.host, g: g, n0: n0}
	c.parallel((n1-n0)*g.OH*g.OW, 64, im2colRange)
}

func im2colRange(c *CPU, _, lo, hi int) {
	a := &c.k.im2col
	g, n0, xs, cs := a.g, a.n0, a.x, a.cols
	kw := g.ColWidth()
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
}

// Col2im gathers, for every input pixel, the column entries that read it,
// so each dx element is written once and threads never collide.
func (c *CPU) Col2im(cols Buf, g ConvGeom, n0, n1 int, dx Buf, accumulate bool) {
	c.k.col2im = col2imArgs{cols: cols.host, dx: dx.host, g: g, n0: n0, accumulate: accumulate}
	c.parallel((n1-n0)*g.H*g.W, 64, col2imRange)
}

func col2imRange(c *CPU, _, lo, hi int) {
	a := &c.k.col2im
	g, n0, xs, cs, accumulate := a.g, a.n0, a.dx, a.cols, a.accumulate
	kw := g.ColWidth()
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
	parts := c.partials(2 * C)
	c.k.bnStats = bnStatsArgs{x: a.X.host, c: C, parts: parts}
	c.parallel(rows, 256, bnStatsRange)
	mean, inv := a.Mean.host[:C], a.InvStd.host[:C]
	rm, rv := a.RunMean.host[:C], a.RunVar.host[:C]
	gamma, beta := a.Gamma.host[:C], a.Beta.host[:C]
	scale := c.scratch(2 * C)
	shift := scale[C:]
	m := float64(rows)
	mom := float64(a.Momentum)
	var glob []float64
	if a.Sync != nil {
		glob, m = syncSums(parts, C, rows, a.Sync)
	}
	for j := 0; j < C; j++ {
		var s, ss float64
		if glob != nil {
			s, ss = glob[j], glob[C+j]
		} else {
			for w := range parts {
				s += parts[w][j]
				ss += parts[w][C+j]
			}
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
		if m > 1 {
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

// bnStatsRange sums x and x² per channel in float64, per worker.
func bnStatsRange(c *CPU, w, lo, hi int) {
	a := &c.k.bnStats
	C, x := a.c, a.x
	s, ss := a.parts[w][:C], a.parts[w][C:2*C]
	if blas.BNSums(x[lo*C:hi*C], C, s, ss) {
		return
	}
	for r := lo; r < hi; r++ {
		row := x[r*C : r*C+C]
		s1, s2 := s[:len(row)], ss[:len(row)]
		for j, v := range row {
			f := float64(v)
			s1[j] += f
			s2[j] += f * f
		}
	}
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
	c.k.affine = affineArgs{x: a.X.host, out: a.Out.host, c: a.C, relu: a.ReLU, scale: scale, shift: shift}
	if a.Res.Valid() {
		c.k.affine.res = a.Res.host
	}
	c.parallel(a.Rows, 256, affineRange)
}

func affineRange(c *CPU, _, lo, hi int) {
	a := &c.k.affine
	C, x, out, res, relu, scale, shift := a.c, a.x, a.out, a.res, a.relu, a.scale, a.shift
	if blas.BNAffine(x[lo*C:hi*C], out[lo*C:hi*C], rowsOf(res, lo, hi, C), C, scale, shift, relu) {
		return
	}
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
}

// keepMask is all ones when m > 0, else zero (the Backend contract:
// "where mask > 0"), without a branch. As an int32, the bit pattern of a
// float is positive exactly for the floats above +0 (and positive NaNs);
// x > 0 ⇔ the sign bits of −x and ^x are both set. Negative masks (never
// a ReLU output, but allowed by the contract) and −0 give zero, as in the
// CUDA kernels' keep.
func keepMask(m float32) uint32 {
	x := int32(math.Float32bits(m))
	return uint32((-x & ^x) >> 31)
}

// masked returns d where m > 0, else 0, branch-free.
func masked(d, m float32) float32 {
	return math.Float32frombits(math.Float32bits(d) & keepMask(m))
}

// BatchNormBackward: dβ = Σdy, dγ = Σdy·x̂, dx = γ·σ⁻¹·(dy − dβ/M − x̂·dγ/M),
// where dy is DOut masked by the following ReLU's output when Mask is valid.
func (c *CPU) BatchNormBackward(a *BNArgs) {
	C, rows := a.C, a.Rows
	var mask []float32
	if a.Mask.Valid() {
		mask = a.Mask.host
	}
	inv := a.InvStd.host[:C]
	parts := c.partials(2 * C)
	c.k.bnBackward = bnBackwardArgs{x: a.X.host, dout: a.DOut.host, mask: mask, c: C, mean: a.Mean.host[:C], invStd: inv, parts: parts}
	c.parallel(rows, 256, bnBackSumsRange)
	sc := c.scratch(3 * C)
	k1, k2, k3 := sc[:C], sc[C:2*C], sc[2*C:3*C] // γσ⁻¹, Σdy/M, Σdy·x̂/M
	dg, db := a.DGamma.host[:C], a.DBeta.host[:C]
	m := float64(rows)
	var glob []float64
	if a.Sync != nil {
		glob, m = syncSums(parts, C, rows, a.Sync)
	}
	for j := 0; j < C; j++ {
		var s, sx float64
		for w := range parts {
			s += parts[w][j]
			sx += parts[w][C+j]
		}
		db[j] = float32(s)
		dg[j] = float32(sx)
		if glob != nil {
			s, sx = glob[j], glob[C+j]
		}
		k1[j] = a.Gamma.host[j] * inv[j]
		k2[j] = float32(s / m)
		k3[j] = float32(sx / m)
	}
	if !a.DX.Valid() {
		return
	}
	c.k.bnBackward = bnBackwardArgs{x: a.X.host, dout: a.DOut.host, dx: a.DX.host, mask: mask, c: C,
		mean: a.Mean.host[:C], invStd: inv, gammaInvStd: k1, meanDy: k2, meanDyXhat: k3}
	c.parallel(rows, 256, bnBackDXRange)
}

// bnBackSumsRange sums dy and dy·x̂ per channel in float64, per worker.
func bnBackSumsRange(c *CPU, w, lo, hi int) {
	a := &c.k.bnBackward
	C, x, dy, mask, mean, inv := a.c, a.x, a.dout, a.mask, a.mean, a.invStd
	sdy, sdx := a.parts[w][:C], a.parts[w][C:2*C]
	if blas.BNBackSums(x[lo*C:hi*C], dy[lo*C:hi*C], rowsOf(mask, lo, hi, C), C, mean, inv, sdy, sdx) {
		return
	}
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
}

// bnBackDXRange writes dx = γσ⁻¹·(dy − Σdy/M − x̂·Σdy·x̂/M).
func bnBackDXRange(c *CPU, _, lo, hi int) {
	a := &c.k.bnBackward
	C, x, dy, dx, mask, mean, inv := a.c, a.x, a.dout, a.dx, a.mask, a.mean, a.invStd
	k1, k2, k3 := a.gammaInvStd, a.meanDy, a.meanDyXhat
	if blas.BNBackDX(x[lo*C:hi*C], dy[lo*C:hi*C], rowsOf(mask, lo, hi, C), dx[lo*C:hi*C], C, mean, inv, k1, k2, k3) {
		return
	}
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
	c.k.reluMask = reluMaskArgs{d: d.host[:n], out: out.host[:n]}
	c.parallel(n, 1<<14, reluMaskRange)
}

func reluMaskRange(c *CPU, _, lo, hi int) {
	dd, oo := c.k.reluMask.d[lo:hi], c.k.reluMask.out[lo:hi]
	oo = oo[:len(dd)]
	for i, d := range dd {
		dd[i] = masked(d, oo[i])
	}
}

// AddMasked accumulates src into dst where mask is positive.
func (c *CPU) AddMasked(dst, src, mask Buf, n int) {
	c.k.addMasked = addMaskedArgs{dst: dst.host[:n], src: src.host[:n]}
	if mask.Valid() {
		c.k.addMasked.mask = mask.host[:n]
	}
	c.parallel(n, 1<<14, addMaskedRange)
}

func addMaskedRange(c *CPU, _, lo, hi int) {
	a := &c.k.addMasked
	dd, s := a.dst[lo:hi], a.src[lo:hi]
	if a.mask == nil {
		dd = dd[:len(s)]
		for i, v := range s {
			dd[i] += v
		}
		return
	}
	mm := a.mask[lo:hi]
	mm = mm[:len(s)]
	dd = dd[:len(s)]
	for i, v := range s {
		dd[i] += masked(v, mm[i])
	}
}

// FlipConvWeight rotates the kernel by 180° and swaps in/out channels.
// Each output row (one input channel of the original) is written
// contiguously; rows are split across threads.
func (c *CPU) FlipConvWeight(w Buf, oc, k, ch int, out Buf) {
	c.k.flip = flipArgs{w: w.host, out: out.host, oc: oc, kk: k * k, c: ch}
	c.parallel(ch, 8, flipRange)
}

func flipRange(c *CPU, _, lo, hi int) {
	a := &c.k.flip
	ws, os, oc, kk, ch := a.w, a.out, a.oc, a.kk, a.c
	for i := lo; i < hi; i++ {
		for t := 0; t < kk; t++ {
			dst := os[(i*kk+(kk-1-t))*oc:][:oc]
			for o := range dst {
				dst[o] = ws[(o*kk+t)*ch+i]
			}
		}
	}
}

// AvgPool averages over pixels, accumulating in float64.
func (c *CPU) AvgPool(x Buf, n, hw, ch int, out Buf) {
	c.k.avgPool = avgPoolArgs{x: x.host, out: out.host, hw: hw, c: ch, parts: c.partials(ch)}
	c.parallel(n, 2, avgPoolRange)
}

func avgPoolRange(c *CPU, w, lo, hi int) {
	a := &c.k.avgPool
	xs, os, hw, ch := a.x, a.out, a.hw, a.c
	acc := a.parts[w][:ch]
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
}

// AvgPoolBackward spreads the pooled gradient back, through the ReLU mask.
func (c *CPU) AvgPoolBackward(dout Buf, n, hw, ch int, mask, dx Buf) {
	c.k.avgPoolBack = avgPoolBackArgs{dout: dout.host, mask: mask.host, dx: dx.host, hw: hw, c: ch, inv: 1 / float32(hw)}
	c.parallel(n, 2, avgPoolBackRange)
}

func avgPoolBackRange(c *CPU, _, lo, hi int) {
	a := &c.k.avgPoolBack
	ds, ms, xs, hw, ch, inv := a.dout, a.mask, a.dx, a.hw, a.c, a.inv
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
}

// BiasAct adds the bias row-wise, then the optional ReLU.
func (c *CPU) BiasAct(y Buf, rows, cols int, bias Buf, relu bool) {
	c.k.biasAct = biasActArgs{y: y.host, bias: bias.host[:cols], cols: cols, relu: relu}
	c.parallel(rows, 16, biasActRange)
}

func biasActRange(c *CPU, _, lo, hi int) {
	a := &c.k.biasAct
	ys, bs, cols, relu := a.y, a.bias, a.cols, a.relu
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
}

// ColSum sums rows in float64.
func (c *CPU) ColSum(y Buf, rows, cols int, out Buf) {
	ys, os := y.host, out.host[:cols]
	acc := c.partials(cols)[0][:cols]
	for r := 0; r < rows; r++ {
		for j, v := range ys[r*cols:][:cols] {
			acc[j] += float64(v)
		}
	}
	for j := range os {
		os[j] = float32(acc[j])
	}
}

// SGD is PyTorch's SGD with t-SimCNE's element-wise clamp before weight decay
// (docs/ALGORITHM.md, "Optimiser").
func (c *CPU) SGD(p, g, m Buf, n int, s SGDArgs) {
	c.k.sgd = sgdArgs{p: p.host[:n], g: g.host[:n], m: m.host[:n], s: s}
	c.parallel(n, 1<<15, sgdRange)
}

func sgdRange(c *CPU, _, lo, hi int) {
	a := &c.k.sgd
	s := &a.s
	pp, gg, mm := a.p[lo:hi], a.g[lo:hi], a.m[lo:hi]
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
}

// syncSums adds the per-worker partial sums (two per channel) into one
// vector with the row count last, sums it across the ranks with sync and
// returns it and the global row count.
func syncSums(parts [][]float64, C, rows int, sync func([]float64)) ([]float64, float64) {
	v := make([]float64, 2*C+1)
	for w := range parts {
		for j := 0; j < 2*C; j++ {
			v[j] += parts[w][j]
		}
	}
	v[2*C] = float64(rows)
	sync(v)
	return v, v[2*C]
}

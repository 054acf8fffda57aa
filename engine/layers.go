package engine

import (
	"math"
	"math/rand/v2"
)

// Param is a learnable tensor together with its gradient.
type Param struct {
	// Name is the PyTorch state_dict key, e.g. "backbone.layer1.0.conv1.weight".
	Name string
	// Shape is the PyTorch shape, e.g. (out, in, kh, kw) for convolutions.
	Shape []int
	// Data and Grad live on the model's backend: Size() elements each, in
	// Shape's order except for convolution weights, stored OC×K×K×C
	// (conv).
	Data, Grad Buf
	// Trainable is false for frozen parameters (stage 2): no gradient, no update.
	Trainable bool
	// conv marks a convolution weight stored (out, kh, kw, in) internally.
	conv bool
}

// Size is the element count.
func (p *Param) Size() int { return p.Data.Len() }

// convLayer is a bias-free convolution (3×3 or 1×1, any stride).
type convLayer struct {
	name string
	g    ConvGeom
	w    *Param // OC×K×K×C (PyTorch's OC×C×K×K, stored kernel-position major)
	t    timer
}

// batchNorm is a BatchNorm2d with its running statistics.
type batchNorm struct {
	name        string
	c           int
	gamma, beta *Param // C each
	runMean     Buf    // C, running mean (eval mode's statistics)
	runVar      Buf    // C, running unbiased variance
	mean        Buf    // C, the last training forward's batch mean
	invStd      Buf    // C, its 1/√(biased variance + ε), for the backward pass
	// tracked mirrors PyTorch's num_batches_tracked.
	tracked int64
	// sync, when set, synchronises the batch statistics across ranks
	// (BNArgs.Sync).
	sync func(v []float64)
	// a is the kernel argument block, kept here so passing it to the
	// backend does not allocate every call.
	a BNArgs
	t timer
}

// linear is a fully connected layer y = x·Wᵀ + b, W of shape (out, in).
type linear struct {
	name    string
	in, out int
	w       *Param // out×in
	b       *Param // out
	t       timer
}

// avgPool is the global average pool after the last block: n images of
// hw pixels × c channels to n×c features.
type avgPool struct {
	hw, c int
	t     timer
}

func newParam(be Backend, name string, shape []int, conv bool) *Param {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return &Param{Name: name, Shape: shape, Data: be.Alloc(n), Grad: be.Alloc(n), Trainable: true, conv: conv}
}

// kaimingConv draws N(0, 2/(out·k·k)): Kaiming normal, fan_out, ReLU gain —
// torchvision's ResNet initialisation.
func kaimingConv(rng *rand.Rand, oc, k int, host []float32) {
	std := math.Sqrt(2 / float64(oc*k*k))
	for i := range host {
		host[i] = float32(rng.NormFloat64() * std)
	}
}

// uniformInit draws U(−bound, bound): PyTorch's default Linear init has
// bound 1/√fan_in for both weight and bias.
func uniformInit(rng *rand.Rand, bound float64, host []float32) {
	for i := range host {
		host[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

func (l *convLayer) forward(be Backend, x Buf, n int, y Buf, ws *workspace) {
	defer l.t.stop(l.t.start())
	g := l.g
	if dc, ok := be.(directConv); ok && dc.ConvForward(x, g, n, l.w.Data, y) {
		return
	}
	if g.Direct() {
		be.Gemm(false, true, n*g.H*g.W, g.OC, g.C, 1, x, 0, g.C, l.w.Data, 0, g.C, 0, y, 0, g.OC)
		return
	}
	kw := g.ColWidth()
	pix := g.OH * g.OW
	step := ws.chunk(g)
	for n0 := 0; n0 < n; n0 += step {
		n1 := min(n0+step, n)
		be.Im2col(x, g, n0, n1, ws.cols)
		be.Gemm(false, true, (n1-n0)*pix, g.OC, kw, 1, ws.cols, 0, kw, l.w.Data, 0, kw, 0, y, n0*pix*g.OC, g.OC)
	}
}

// backward computes the weight gradient (overwriting it) and, if dx is
// valid, the input gradient, overwriting dx or adding to it.
func (l *convLayer) backward(be Backend, x, dy Buf, n int, dx Buf, accumulate bool, ws *workspace) {
	defer l.t.stop(l.t.start())
	g := l.g
	if dc, ok := be.(directConv); ok && dc.ConvBackward(x, dy, g, n, l.w.Data, l.w.Grad, dx, accumulate) {
		return
	}
	kw := g.ColWidth()
	if g.Direct() {
		m := n * g.H * g.W
		be.Gemm(true, false, g.OC, g.C, m, 1, dy, 0, g.OC, x, 0, g.C, 0, l.w.Grad, 0, g.C)
		if dx.Valid() {
			beta := float32(0)
			if accumulate {
				beta = 1
			}
			be.Gemm(false, false, m, g.C, g.OC, 1, dy, 0, g.OC, l.w.Data, 0, g.C, beta, dx, 0, g.C)
		}
		return
	}
	pix := g.OH * g.OW
	step := ws.chunk(g)
	for n0 := 0; n0 < n; n0 += step {
		n1 := min(n0+step, n)
		rows := (n1 - n0) * pix
		// The forward's im2col is recomputed rather than kept: it is 9× the
		// activation size, and copying is cheap next to the GEMMs.
		be.Im2col(x, g, n0, n1, ws.cols)
		beta := float32(1)
		if n0 == 0 {
			beta = 0
		}
		be.Gemm(true, false, g.OC, kw, rows, 1, dy, n0*pix*g.OC, g.OC, ws.cols, 0, kw, beta, l.w.Grad, 0, kw)
		if dx.Valid() && !l.flipped() {
			be.Gemm(false, false, rows, kw, g.OC, 1, dy, n0*pix*g.OC, g.OC, l.w.Data, 0, kw, 0, ws.cols, 0, kw)
			be.Col2im(ws.cols, g, n0, n1, dx, accumulate)
		}
	}
	if dx.Valid() && l.flipped() {
		l.backwardDataFlipped(be, dy, n, dx, accumulate, ws)
	}
}

// flipped reports whether the input gradient is computed as a convolution
// of dy with the flipped kernel: possible for stride 1 with "same" padding.
// It replaces a GEMM with a 9×-wide output plus a scatter-add (col2im) by
// an im2col copy plus a GEMM shaped like the forward one, which is faster.
func (l *convLayer) flipped() bool {
	g := l.g
	return g.Stride == 1 && 2*g.Pad == g.K-1 && g.K > 1
}

// transposeGeom is the geometry of the input-gradient convolution.
func (l *convLayer) transposeGeom() ConvGeom {
	g := l.g
	return NewConvGeom(g.OH, g.OW, g.OC, g.C, g.K, 1, g.K-1-g.Pad)
}

func (l *convLayer) backwardDataFlipped(be Backend, dy Buf, n int, dx Buf, accumulate bool, ws *workspace) {
	gt := l.transposeGeom()
	be.FlipConvWeight(l.w.Data, l.g.OC, l.g.K, l.g.C, ws.wflip)
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	kw := gt.ColWidth()
	pix := gt.OH * gt.OW
	step := ws.chunk(gt)
	for n0 := 0; n0 < n; n0 += step {
		n1 := min(n0+step, n)
		be.Im2col(dy, gt, n0, n1, ws.cols)
		be.Gemm(false, true, (n1-n0)*pix, gt.OC, kw, 1, ws.cols, 0, kw, ws.wflip, 0, kw, beta, dx, n0*pix*gt.OC, gt.OC)
	}
}

func (l *batchNorm) args(x Buf, rows int) BNArgs {
	return BNArgs{X: x, Rows: rows, C: l.c, Gamma: l.gamma.Data, Beta: l.beta.Data,
		Mean: l.mean, InvStd: l.invStd, RunMean: l.runMean, RunVar: l.runVar,
		Momentum: 0.1, Eps: 1e-5, DGamma: l.gamma.Grad, DBeta: l.beta.Grad, Sync: l.sync}
}

func (l *batchNorm) forward(be Backend, x Buf, rows int, res Buf, relu, train bool, out Buf) {
	defer l.t.stop(l.t.start())
	l.a = l.args(x, rows)
	l.a.Res, l.a.ReLU, l.a.Out = res, relu, out
	if train {
		be.BatchNormTrain(&l.a)
		l.tracked++
		return
	}
	be.BatchNormEval(&l.a)
}

func (l *batchNorm) backward(be Backend, x Buf, rows int, dout, mask, dx Buf) {
	defer l.t.stop(l.t.start())
	l.a = l.args(x, rows)
	l.a.DOut, l.a.DX, l.a.Mask = dout, dx, mask
	be.BatchNormBackward(&l.a)
}

func (l *linear) forward(be Backend, x Buf, n int, y Buf, relu bool) {
	defer l.t.stop(l.t.start())
	be.Gemm(false, true, n, l.out, l.in, 1, x, 0, l.in, l.w.Data, 0, l.in, 0, y, 0, l.out)
	be.BiasAct(y, n, l.out, l.b.Data, relu)
}

// backward computes the weight and bias gradients and, if dx is valid, the
// input gradient. A valid reluOut is the output of the ReLU that followed
// this layer in the forward pass: dy is first zeroed where it is not
// positive.
func (l *linear) backward(be Backend, x, dy Buf, n int, dx, reluOut Buf) {
	defer l.t.stop(l.t.start())
	if reluOut.Valid() {
		be.ReLUMask(dy, reluOut, n*l.out)
	}
	be.Gemm(true, false, l.out, l.in, n, 1, dy, 0, l.out, x, 0, l.in, 0, l.w.Grad, 0, l.in)
	be.ColSum(dy, n, l.out, l.b.Grad)
	if dx.Valid() {
		be.Gemm(false, false, n, l.in, l.out, 1, dy, 0, l.out, l.w.Data, 0, l.in, 0, dx, 0, l.in)
	}
}

func (l *avgPool) forward(be Backend, x Buf, n int, out Buf) {
	defer l.t.stop(l.t.start())
	be.AvgPool(x, n, l.hw, l.c, out)
}

// backward spreads dout over the pixels of dx, through the mask of the
// ReLU output x that the pool read.
func (l *avgPool) backward(be Backend, dout Buf, n int, x, dx Buf) {
	defer l.t.stop(l.t.start())
	be.AvgPoolBackward(dout, n, l.hw, l.c, x, dx)
}

// workspace holds the shared im2col buffer; convolutions process as many
// images at a time as fit in it.
type workspace struct {
	cols  Buf // (images per chunk·OH·OW)×K·K·C, the largest over the convolutions and their transposes
	wflip Buf // C×K×K×OC, the largest flipped weight (backwardDataFlipped)
	limit int
	// minRows is the smallest number of GEMM rows per chunk (minChunkRows
	// in models; tests lower it to exercise chunking).
	minRows int
}

// minChunkRows keeps the GEMMs of deep layers (few pixels, wide kernels)
// from being cut so thin that packing the weight matrix — done once per
// GEMM call — costs a noticeable share of the multiply.
const minChunkRows = 1024

func (w *workspace) chunk(g ConvGeom) int {
	pix := g.OH * g.OW
	per := pix * g.ColWidth()
	return max(1, w.limit/per, (w.minRows+pix-1)/pix)
}

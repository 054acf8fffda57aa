// Package engine is t-SimCNE's training engine: a ResNet backbone with a
// projection head, the Cauchy and cosine InfoNCE losses, and SGD, written
// llm.c-style — every layer has a readable hand-written forward and backward
// pass, activations are NHWC float32, convolutions are im2col + SGEMM, and
// every buffer for a batch shape is allocated once and reused.
//
// Layers never touch memory or arithmetic directly: they call a Backend,
// which owns the buffers and implements the handful of kernels the model
// needs (GEMM, im2col, BatchNorm, element-wise ops, reductions, the SGD
// update). The CPU backend in this package runs GEMMs on engine/blas: its
// AVX-512 assembly kernels on CPUs that have AVX-512F (the first choice),
// else OpenBLAS (loaded at run time, no cgo), else a pure-Go fallback
// (CPUOptions.GEMM). The GPU backend, engine/cuda, implements the same
// interface, so the layers do not change with the device.
//
// docs/ALGORITHM.md describes the model, the losses and the optimiser that
// this package implements; docs/ARCHITECTURE.md places it in the program.
package engine

// Buf is a flat float32 buffer owned by a Backend. Host-memory backends keep
// the data in host; device backends keep a handle in Dev. The zero Buf means
// "absent" for optional arguments.
type Buf struct {
	host []float32
	// Dev is an opaque device handle for non-host backends.
	Dev any
	n   int
}

// Len is the number of float32 elements in the buffer.
func (b Buf) Len() int { return b.n }

// Valid reports whether the buffer is present (non-zero length).
func (b Buf) Valid() bool { return b.n > 0 }

// HostBuf wraps host memory as a Buf, for host backends and tests.
func HostBuf(d []float32) Buf { return Buf{host: d, n: len(d)} }

// ConvGeom describes a 2-D convolution on NHWC images: input H×W×C, output
// OH×OW×OC, a K×K kernel with the given stride and zero padding.
type ConvGeom struct {
	H, W, C     int
	OC, K       int
	Stride, Pad int
	OH, OW      int
}

// NewConvGeom fills in the output size of a convolution.
func NewConvGeom(h, w, c, oc, k, stride, pad int) ConvGeom {
	return ConvGeom{H: h, W: w, C: c, OC: oc, K: k, Stride: stride, Pad: pad,
		OH: (h+2*pad-k)/stride + 1, OW: (w+2*pad-k)/stride + 1}
}

// ColWidth is the length of one im2col row: K·K·C, ordered (kh, kw, c) to
// match the engine's (OC, KH, KW, C) weight layout.
func (g ConvGeom) ColWidth() int { return g.K * g.K * g.C }

// Direct reports whether the convolution is a plain matrix product on the
// input (1×1, stride 1, no padding), needing no im2col.
func (g ConvGeom) Direct() bool { return g.K == 1 && g.Stride == 1 && g.Pad == 0 }

// BNArgs carries the operands of the BatchNorm kernels. X is the layer input
// (a conv output) viewed as Rows×C; Mean and InvStd hold the batch statistics
// saved by the training forward pass for the backward pass.
type BNArgs struct {
	X               Buf
	Rows, C         int
	Gamma, Beta     Buf
	Mean, InvStd    Buf
	RunMean, RunVar Buf
	Momentum, Eps   float32
	// Res, if valid, is added after the affine transform (the residual of a
	// BasicBlock); ReLU applies max(0, ·) last. Out receives the result and
	// may alias Res.
	Res  Buf
	ReLU bool
	Out  Buf
	// Backward: DOut is the gradient at the BN output (any ReLU mask already
	// applied); DX receives the input gradient when valid; DGamma and DBeta
	// are overwritten.
	DOut, DX      Buf
	DGamma, DBeta Buf
	// Mask, if valid, is the output of the ReLU that follows this BN (or
	// the residual add): DOut counts only where Mask > 0. Fusing the ReLU
	// backward here saves a pass over the activations.
	Mask Buf
	// Sync, when set, makes the statistics span every data-parallel rank
	// (synchronised BatchNorm): it sums a float64 vector element-wise across
	// the ranks in place. The training forward passes it the per-channel
	// sums of x and x² followed by the row count; the backward pass the sums
	// of dy and dy·x̂ followed by the row count. DGamma and DBeta stay this
	// rank's sums: the gradient all-reduce adds the other ranks' parts.
	// Nil (a single process) leaves the kernels exactly as they were.
	Sync func(v []float64)
}

// SGDArgs are the hyper-parameters of one SGD update.
type SGDArgs struct {
	LR, Momentum, WeightDecay, Clip float32
	// First is true on the first step after a (re)start, where PyTorch sets
	// the momentum buffer to the update itself.
	First bool
}

// Backend owns buffers and the arithmetic of the engine. All sizes are in
// elements; offsets select a sub-matrix start. Matrices are row-major.
// Implementations may panic on inconsistent sizes: those are programming
// errors in the layers, never user input.
type Backend interface {
	// Name describes the backend and its GEMM, e.g. "cpu: OpenBLAS, 2 threads".
	Name() string
	// Describe is the line a program logs at start-up to say which GEMM
	// runs and why: Name, plus the reason for a fallback or the libraries
	// loaded.
	Describe() string
	// ColsLimit is the im2col workspace, in float32 elements, the backend
	// prefers (for Options.ColsLimit): a CPU wants chunks that stay in its
	// cache, a GPU few large GEMMs.
	ColsLimit() int
	// Threads is the degree of parallelism the backend uses.
	Threads() int
	// Alloc returns a zeroed buffer of n elements.
	Alloc(n int) Buf
	// Upload copies host data into dst[0:len(src)].
	Upload(dst Buf, src []float32)
	// Download copies src[0:len(dst)] to host memory.
	Download(dst []float32, src Buf)
	// Zero sets the first n elements to 0.
	Zero(b Buf, n int)
	// Gemm: C = alpha·op(A)·op(B) + beta·C on sub-matrices starting at the offsets.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buf, aOff, lda int,
		b Buf, bOff, ldb int, beta float32, c Buf, cOff, ldc int)
	// Im2col writes, for images [n0,n1) of x, one row of g.ColWidth() per
	// output pixel into cols (rows ordered image, oh, ow).
	Im2col(x Buf, g ConvGeom, n0, n1 int, cols Buf)
	// Col2im is the adjoint of Im2col: it sums cols back into images [n0,n1)
	// of dx, overwriting them, or adding to them when accumulate is true.
	Col2im(cols Buf, g ConvGeom, n0, n1 int, dx Buf, accumulate bool)
	// BatchNormTrain normalises with batch statistics (biased variance),
	// saves Mean/InvStd, and updates the running statistics (unbiased variance).
	BatchNormTrain(a *BNArgs)
	// BatchNormEval normalises with the running statistics.
	BatchNormEval(a *BNArgs)
	// BatchNormBackward computes DX (if valid), DGamma and DBeta.
	BatchNormBackward(a *BNArgs)
	// ReLUMask sets d[i] = 0 where out[i] ≤ 0, for i < n.
	ReLUMask(d, out Buf, n int)
	// AddMasked sets dst[i] += src[i] where mask[i] > 0 (every i when mask
	// is not valid), for i < n.
	AddMasked(dst, src, mask Buf, n int)
	// FlipConvWeight writes the weights of the convolution that computes
	// this one's input gradient (stride 1): out[c][K−1−kh][K−1−kw][oc] =
	// w[oc][kh][kw][c], both in (out, kh, kw, in) layout.
	FlipConvWeight(w Buf, oc, k, c int, out Buf)
	// AvgPool averages each of n images of hw pixels × c channels into out[n×c].
	AvgPool(x Buf, n, hw, c int, out Buf)
	// AvgPoolBackward spreads dout[n×c]/hw over the pixels of dx, zeroing
	// pixels where mask ≤ 0 (the ReLU that precedes the pool).
	AvgPoolBackward(dout Buf, n, hw, c int, mask, dx Buf)
	// BiasAct adds bias[cols] to every row of y and optionally applies ReLU.
	BiasAct(y Buf, rows, cols int, bias Buf, relu bool)
	// ColSum overwrites out[cols] with the column sums of y[rows×cols].
	ColSum(y Buf, rows, cols int, out Buf)
	// SGD updates p in place from gradient g and momentum buffer m (n elements):
	// g is clamped to ±Clip, weight decay added, momentum applied.
	SGD(p, g, m Buf, n int, s SGDArgs)
}

package engine

import (
	"os"
	"strings"

	"github.com/tsimcne/tsimcne-go/engine/blas"
)

// directConv is the optional capability of a backend that computes
// convolutions directly on the (zero-padded) images instead of through
// Im2col and Gemm. The layers try it first; a backend without it, or one
// that declines a geometry by returning false, gets the im2col + GEMM path.
type directConv interface {
	// ConvForward writes y = conv(x, w) for n images (NHWC, w in the
	// engine's (OC, KH, KW, C) layout) and reports true, or does nothing
	// and reports false.
	ConvForward(x Buf, g ConvGeom, n int, w, y Buf) bool
	// ConvBackward overwrites dw with the weight gradient and, if dx is
	// valid, writes the input gradient into dx (adding to it when
	// accumulate), and reports true; or does nothing and reports false.
	ConvBackward(x, dy Buf, g ConvGeom, n int, w, dw, dx Buf, accumulate bool) bool
}

// convMaxWeights bounds the weights of a convolution the CPU computes
// directly: its weight gradient keeps convChunks partial copies.
const convMaxWeights = 1 << 16

// convChunks is the number of image groups whose weight gradients are
// summed separately and then added in a fixed order. It depends on nothing
// but the batch, so the result is the same for every thread count.
const convChunks = 16

// convDisabled lets TSIMCNE_CONV=gemm force the im2col + GEMM path, to
// compare the two on one machine.
var convDisabled = os.Getenv("TSIMCNE_CONV") == "gemm"

// cpuConv is the CPU backend's state for direct convolutions, all of it
// scratch grown on first use so that steps allocate nothing.
type cpuConv struct {
	// off disables the direct path (tests compare it with im2col + GEMM);
	// force takes it for every geometry the kernels can do, however small
	// the maps or large the weights (tests cover all the archs' shapes).
	off, force bool
	// kernels is 1 once the backend is known to run on the AVX-512 GEMM
	// (whose CPUs have the tile kernels), −1 when not, 0 before the first
	// look: Name formats a string, too costly for every layer.
	kernels int
	// pad holds one zero-padded image (or gradient) per worker.
	pad [][]float32
	// pack is the weights rearranged into the kernels' B panels.
	pack []float32
	// parts are the per-chunk weight gradients.
	parts []float32
	// op holds the operands of the running parallel loop.
	op convOp
}

// convOp are the operands of one direct-convolution loop.
type convOp struct {
	x, dy, y, pack, parts []float32
	g                     ConvGeom
	n, nch, nb            int
	acc                   bool
}

// convDirect reports whether the CPU computes convolution g directly: with
// the AVX-512 kernels, when the output channels fill whole vectors, the
// output rows are long enough to make tiles of several pixels (smaller maps
// are wide, and the GEMM keeps its registers busy on them), and the weights
// are small enough for the per-chunk gradients.
func (c *CPU) convDirect(g ConvGeom) bool {
	if c.conv.kernels == 0 {
		c.conv.kernels = -1
		if blas.ConvTileAvailable() && strings.HasPrefix(c.gemm.Name(), "AVX-512") {
			c.conv.kernels = 1
		}
	}
	return !c.conv.off && !convDisabled && c.conv.kernels > 0 &&
		g.OC%16 == 0 && !g.Direct() && (c.conv.force || g.OW >= 8 && g.K*g.K*g.C*g.OC <= convMaxWeights)
}

// convNB is the number of 16-float vectors a tile spans for ch channels.
func convNB(ch int) int {
	if ch%32 == 0 {
		return 2
	}
	return 1
}

// convMaxR is the most rows of a tile with nb vectors.
func convMaxR(nb int) int {
	if nb == 2 {
		return blas.ConvMaxRows32
	}
	return blas.ConvMaxRows
}

// convTiles splits n rows into near-equal tiles of at most maxR; tile t
// starts at start and has rows rows.
func convTile(n, maxR, t int) (start, rows int) {
	nt := (n + maxR - 1) / maxR
	base, rem := n/nt, n%nt
	start = t*base + min(t, rem)
	rows = base
	if t < rem {
		rows++
	}
	return start, rows
}

func convNumTiles(n, maxR int) int { return (n + maxR - 1) / maxR }

// padBufs makes every worker's padded-image buffer hold n floats.
func (c *CPU) padBufs(n int) {
	if len(c.conv.pad) < c.Threads() {
		c.conv.pad = make([][]float32, c.Threads())
	}
	for w := range c.conv.pad {
		if len(c.conv.pad[w]) < n {
			c.conv.pad[w] = make([]float32, n)
		}
	}
}

// padImage copies the h×w×ch image src into dst with p rows and columns
// of zeros around it and returns the padded image; with p = 0 it returns
// src itself.
func padImage(dst, src []float32, h, w, ch, p int) []float32 {
	if p == 0 {
		return src[:h*w*ch]
	}
	wp := w + 2*p
	row := wp * ch
	dst = dst[:(h+2*p)*row]
	clear(dst[:p*row])
	clear(dst[(h+p)*row:])
	for i := 0; i < h; i++ {
		d := dst[(i+p)*row:][:row]
		clear(d[:p*ch])
		copy(d[p*ch:], src[i*w*ch:][:w*ch])
		clear(d[(p+w)*ch:])
	}
	return dst
}

// ConvForward implements directConv: each thread takes whole images, pads
// one at a time into its own buffer, and runs one kernel call per tile of
// output pixels of a row and block of output channels, with the whole
// K·K·C sum in registers.
func (c *CPU) ConvForward(x Buf, g ConvGeom, n int, w, y Buf) bool {
	if !c.convDirect(g) {
		return false
	}
	nb := convNB(g.OC)
	vw := 16 * nb
	kkc := g.K * g.K * g.C
	c.conv.pack = grow(c.conv.pack, kkc*g.OC)
	pack := c.conv.pack
	ws := w.host[:g.OC*kkc]
	for ob := 0; ob < g.OC/vw; ob++ {
		dst := pack[ob*kkc*vw:][:kkc*vw]
		for j := 0; j < vw; j++ {
			for q, v := range ws[(ob*vw+j)*kkc:][:kkc] {
				dst[q*vw+j] = v
			}
		}
	}
	c.padBufs((g.H + 2*g.Pad) * (g.W + 2*g.Pad) * g.C)
	c.conv.op = convOp{x: x.host, y: y.host, pack: pack, g: g, nb: nb}
	c.parallel(n, 1, convFwdRange)
	c.conv.op = convOp{}
	return true
}

func convFwdRange(c *CPU, wk, lo, hi int) {
	op := &c.conv.op
	g, nb := op.g, op.nb
	vw := 16 * nb
	kkc := g.K * g.K * g.C
	wp := g.W + 2*g.Pad
	maxR := convMaxR(nb)
	nt := convNumTiles(g.OW, maxR)
	for img := lo; img < hi; img++ {
		p := padImage(c.conv.pad[wk], op.x[img*g.H*g.W*g.C:], g.H, g.W, g.C, g.Pad)
		yi := op.y[img*g.OH*g.OW*g.OC:][:g.OH*g.OW*g.OC]
		for oh := 0; oh < g.OH; oh++ {
			for t := 0; t < nt; t++ {
				ow0, r := convTile(g.OW, maxR, t)
				a := p[(oh*g.Stride*wp+ow0*g.Stride)*g.C:]
				for ob := 0; ob < g.OC/vw; ob++ {
					blas.ConvTile(r, nb, a, g.Stride*g.C, g.K*g.C, 1, g.K, wp*g.C, 1, 0,
						op.pack[ob*kkc*vw:], vw, yi[(oh*g.OW+ow0)*g.OC+ob*vw:], g.OC, false)
				}
			}
		}
	}
}

// ConvBackward implements directConv. The weight gradient is summed per
// fixed chunk of images (threads take whole chunks) and the chunks are
// added in order; the input gradient is, for stride 1 and "same" padding,
// the forward kernel run on the padded dy with the flipped weights, and
// otherwise a scatter of each tile into a padded gradient image.
func (c *CPU) ConvBackward(x, dy Buf, g ConvGeom, n int, w, dw, dx Buf, accumulate bool) bool {
	if !c.convDirect(g) || (dx.Valid() && g.C%16 != 0) {
		return false
	}
	kkc := g.K * g.K * g.C
	hp, wp := g.H+2*g.Pad, g.W+2*g.Pad
	pk := g.K - 1 - g.Pad // padding of dy for the flipped convolution
	c.padBufs(max(hp*wp*g.C, (g.OH+2*pk)*(g.OW+2*pk)*g.OC))
	nch := min(n, convChunks)
	c.conv.parts = grow(c.conv.parts, nch*kkc*g.OC)
	c.conv.op = convOp{x: x.host, dy: dy.host, parts: c.conv.parts, g: g, n: n, nch: nch, nb: convNB(g.OC)}
	c.parallel(nch, 1, convWGradRange)
	c.conv.op = convOp{}
	// dw[oc][q] = Σ_chunk parts[chunk][q][oc], chunks in order.
	parts, dws, size := c.conv.parts, dw.host[:g.OC*kkc], kkc*g.OC
	for oc := 0; oc < g.OC; oc++ {
		row := dws[oc*kkc:][:kkc]
		for q := range row {
			s := parts[q*g.OC+oc]
			for ch := 1; ch < nch; ch++ {
				s += parts[ch*size+q*g.OC+oc]
			}
			row[q] = s
		}
	}
	if !dx.Valid() {
		return true
	}
	nb := convNB(g.C)
	vw := 16 * nb
	flipped := g.Stride == 1 && 2*g.Pad == g.K-1
	c.conv.pack = grow(c.conv.pack, kkc*g.OC)
	pack := c.conv.pack
	ws := w.host[:g.OC*kkc]
	kk := g.K * g.K
	// pack[cb][t][oc][j] = w[oc][t'][cb·vw+j], t' = t or, flipped, kk−1−t.
	for cb := 0; cb < g.C/vw; cb++ {
		for t := 0; t < kk; t++ {
			src := t
			if flipped {
				src = kk - 1 - t
			}
			dst := pack[(cb*kk+t)*g.OC*vw:][:g.OC*vw]
			for oc := 0; oc < g.OC; oc++ {
				copy(dst[oc*vw:][:vw], ws[oc*kkc+src*g.C+cb*vw:][:vw])
			}
		}
	}
	c.conv.op = convOp{dy: dy.host, y: dx.host, pack: pack, g: g, nb: nb, acc: accumulate}
	if flipped {
		c.parallel(n, 1, convDataFlippedRange)
	} else {
		c.parallel(n, 1, convDataScatterRange)
	}
	c.conv.op = convOp{}
	return true
}

// convWGradRange sums the weight gradient of chunks [lo,hi): for each
// image and kernel row kh, the rows (kw, c) of the padded input are
// contiguous, so one kernel call covers a tile of them over every output
// pixel.
func convWGradRange(c *CPU, wk, lo, hi int) {
	op := &c.conv.op
	g, nb := op.g, op.nb
	vw := 16 * nb
	kc := g.K * g.C
	size := g.K * kc * g.OC
	wp := g.W + 2*g.Pad
	maxR := convMaxR(nb)
	nt := convNumTiles(kc, maxR)
	for ch := lo; ch < hi; ch++ {
		part := op.parts[ch*size:][:size]
		clear(part)
		for img := ch * op.n / op.nch; img < (ch+1)*op.n/op.nch; img++ {
			p := padImage(c.conv.pad[wk], op.x[img*g.H*g.W*g.C:], g.H, g.W, g.C, g.Pad)
			dyi := op.dy[img*g.OH*g.OW*g.OC:][:g.OH*g.OW*g.OC]
			for kh := 0; kh < g.K; kh++ {
				for t := 0; t < nt; t++ {
					r0, r := convTile(kc, maxR, t)
					a := p[kh*wp*g.C+r0:]
					for ob := 0; ob < g.OC/vw; ob++ {
						blas.ConvTile(r, nb, a, 1, g.OW, g.Stride*g.C, g.OH, g.Stride*wp*g.C, 1, 0,
							dyi[ob*vw:], g.OC, part[(kh*kc+r0)*g.OC+ob*vw:], g.OC, true)
					}
				}
			}
		}
	}
}

// convDataFlippedRange writes dx for images [lo,hi) as the convolution of
// dy, padded by K−1−Pad, with the flipped weights (stride 1).
func convDataFlippedRange(c *CPU, wk, lo, hi int) {
	op := &c.conv.op
	g, nb := op.g, op.nb
	vw := 16 * nb
	pk := g.K - 1 - g.Pad
	wpd := g.OW + 2*pk
	maxR := convMaxR(nb)
	nt := convNumTiles(g.W, maxR)
	kko := g.K * g.K * g.OC
	for img := lo; img < hi; img++ {
		p := padImage(c.conv.pad[wk], op.dy[img*g.OH*g.OW*g.OC:], g.OH, g.OW, g.OC, pk)
		dxi := op.y[img*g.H*g.W*g.C:][:g.H*g.W*g.C]
		for ih := 0; ih < g.H; ih++ {
			for t := 0; t < nt; t++ {
				iw0, r := convTile(g.W, maxR, t)
				a := p[(ih*wpd+iw0)*g.OC:]
				for cb := 0; cb < g.C/vw; cb++ {
					blas.ConvTile(r, nb, a, g.OC, g.K*g.OC, 1, g.K, wpd*g.OC, 1, 0,
						op.pack[cb*kko*vw:], vw, dxi[(ih*g.W+iw0)*g.C+cb*vw:], g.C, op.acc)
				}
			}
		}
	}
}

// convDataScatterRange writes dx for images [lo,hi) of a strided
// convolution: each tile of dy times one kernel tap is added into a
// zero-padded gradient image, whose interior is then copied (or added) to dx.
func convDataScatterRange(c *CPU, wk, lo, hi int) {
	op := &c.conv.op
	g, nb := op.g, op.nb
	vw := 16 * nb
	wp := g.W + 2*g.Pad
	maxR := convMaxR(nb)
	nt := convNumTiles(g.OW, maxR)
	p := c.conv.pad[wk][:(g.H+2*g.Pad)*wp*g.C]
	for img := lo; img < hi; img++ {
		clear(p)
		dyi := op.dy[img*g.OH*g.OW*g.OC:][:g.OH*g.OW*g.OC]
		for oh := 0; oh < g.OH; oh++ {
			for t := 0; t < nt; t++ {
				ow0, r := convTile(g.OW, maxR, t)
				a := dyi[(oh*g.OW+ow0)*g.OC:]
				for kh := 0; kh < g.K; kh++ {
					for kw := 0; kw < g.K; kw++ {
						base := ((oh*g.Stride+kh)*wp + ow0*g.Stride + kw) * g.C
						for cb := 0; cb < g.C/vw; cb++ {
							blas.ConvTile(r, nb, a, g.OC, g.OC, 1, 1, 0, 1, 0,
								op.pack[((cb*g.K+kh)*g.K+kw)*g.OC*vw:], vw, p[base+cb*vw:], g.Stride*g.C, true)
						}
					}
				}
			}
		}
		dxi := op.y[img*g.H*g.W*g.C:][:g.H*g.W*g.C]
		for ih := 0; ih < g.H; ih++ {
			src := p[((ih+g.Pad)*wp+g.Pad)*g.C:][:g.W*g.C]
			dst := dxi[ih*g.W*g.C:][:len(src)]
			if op.acc {
				for i, v := range src {
					dst[i] += v
				}
			} else {
				copy(dst, src)
			}
		}
	}
}

// rowsOf returns rows [lo,hi) of c values of s, or nil for an absent s.
func rowsOf(s []float32, lo, hi, c int) []float32 {
	if s == nil {
		return nil
	}
	return s[lo*c : hi*c]
}

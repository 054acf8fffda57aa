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
const convMaxWeights = 1 << 18

// convChunks is the number of image groups whose weight gradients are
// summed separately and then added in a fixed order. It depends on nothing
// but the batch, so the result is the same for every thread count.
const convChunks = 8

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
	gt                    convGather
	x, dy, y, pack, parts []float32
	g                     ConvGeom
	n, nch, nb            int
	acc                   bool
}

// convDirect reports whether the CPU computes convolution g directly: with
// the AVX-512 kernels, when the output channels fill whole vectors, the
// convolution needs an im2col (1×1 stride-1 ones are plain GEMMs already),
// and the weights are small enough for the per-chunk gradients.
func (c *CPU) convDirect(g ConvGeom) bool {
	if c.conv.kernels == 0 {
		c.conv.kernels = -1
		if blas.ConvTileAvailable() && strings.HasPrefix(c.gemm.Name(), "AVX-512") {
			c.conv.kernels = 1
		}
	}
	return !c.conv.off && !convDisabled && c.conv.kernels > 0 &&
		g.OC%16 == 0 && !g.Direct() && (c.conv.force || g.K*g.K*g.C*g.OC <= convMaxWeights)
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

// convRowTile is the narrowest output row tiled along the row; narrower
// maps are tiled across images instead (one pixel of up to 16 images per
// tile), so small maps still fill the kernel's rows.
const convRowTile = 8

// convGather is one convolution computed by gathering from zero-padded
// source images: the forward pass (src = x) and, for stride 1 with "same"
// padding, the input gradient (src = dy, flipped weights).
type convGather struct {
	src, dst, pack      []float32
	n                   int
	h, w, ch, pad, step int // source images, padding and stride
	k                   int
	oh, ow, oc          int // output images
	nb                  int
	acc                 bool
}

// units is the number of parallel work items: images, or groups of
// images when tiles run across images.
func (q *convGather) units() int {
	if q.ow >= convRowTile {
		return q.n
	}
	g := convMaxR(q.nb)
	return (q.n + g - 1) / g
}

// padImages pads cnt consecutive h×w×ch images of src into dst, one after
// the other, and returns them; with p = 0 it returns src itself.
func padImages(dst, src []float32, cnt, h, w, ch, p int) []float32 {
	if p == 0 {
		return src[:cnt*h*w*ch]
	}
	isz := (h + 2*p) * (w + 2*p) * ch
	for i := 0; i < cnt; i++ {
		padImage(dst[i*isz:], src[i*h*w*ch:], h, w, ch, p)
	}
	return dst[:cnt*isz]
}

// runGather starts the gather on every thread; the pad buffers must be sized.
func (c *CPU) runGather(q convGather) {
	c.padBufs(convMaxR(q.nb) * (q.h + 2*q.pad) * (q.w + 2*q.pad) * q.ch)
	c.conv.op = convOp{gt: q}
	c.parallel(q.units(), 1, convGatherRange)
	c.conv.op = convOp{}
}

// ConvForward implements directConv: each thread takes whole images, pads
// them into its own buffer, and runs one kernel call per tile of output
// pixels and block of output channels, with the whole K·K·C sum in
// registers.
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
	c.runGather(convGather{src: x.host, dst: y.host, pack: pack, n: n, h: g.H, w: g.W, ch: g.C, pad: g.Pad,
		step: g.Stride, k: g.K, oh: g.OH, ow: g.OW, oc: g.OC, nb: nb})
	return true
}

func convGatherRange(c *CPU, wk, lo, hi int) {
	q := &c.conv.op.gt
	vw := 16 * q.nb
	maxR := convMaxR(q.nb)
	wp := q.w + 2*q.pad
	isz := (q.h + 2*q.pad) * wp * q.ch
	ssz := q.h * q.w * q.ch
	osz := q.oh * q.ow * q.oc
	panel := q.k * q.k * q.ch * vw
	if q.ow >= convRowTile {
		nt := convNumTiles(q.ow, maxR)
		for img := lo; img < hi; img++ {
			p := padImages(c.conv.pad[wk], q.src[img*ssz:], 1, q.h, q.w, q.ch, q.pad)
			out := q.dst[img*osz:][:osz]
			for oh := 0; oh < q.oh; oh++ {
				for t := 0; t < nt; t++ {
					ow0, r := convTile(q.ow, maxR, t)
					a := p[(oh*q.step*wp+ow0*q.step)*q.ch:]
					for ob := 0; ob < q.oc/vw; ob++ {
						blas.ConvTile(r, q.nb, a, q.step*q.ch, q.k*q.ch, 1, q.k, wp*q.ch, 1, 0,
							q.pack[ob*panel:], vw, out[(oh*q.ow+ow0)*q.oc+ob*vw:], q.oc, q.acc)
					}
				}
			}
		}
		return
	}
	for grp := lo; grp < hi; grp++ {
		i0 := grp * maxR
		cnt := min(maxR, q.n-i0)
		p := padImages(c.conv.pad[wk], q.src[i0*ssz:], cnt, q.h, q.w, q.ch, q.pad)
		for oh := 0; oh < q.oh; oh++ {
			for ow := 0; ow < q.ow; ow++ {
				a := p[(oh*q.step*wp+ow*q.step)*q.ch:]
				for ob := 0; ob < q.oc/vw; ob++ {
					blas.ConvTile(cnt, q.nb, a, isz, q.k*q.ch, 1, q.k, wp*q.ch, 1, 0,
						q.pack[ob*panel:], vw, q.dst[((i0*q.oh+oh)*q.ow+ow)*q.oc+ob*vw:], osz, q.acc)
				}
			}
		}
	}
}

// convWGroup is the number of images whose pixels one weight-gradient
// kernel call sums: about 256 pixels, so that small maps too give the
// kernel a long loop between loads and stores of its accumulators.
func convWGroup(g ConvGeom) int { return max(1, min(16, 256/(g.OH*g.OW))) }

// ConvBackward implements directConv. The weight gradient is summed per
// fixed chunk of images (threads take whole chunks) and the chunks are
// added in order; the input gradient is, for stride 1 and "same" padding,
// the forward gather run on the padded dy with the flipped weights, and
// otherwise a scatter of each tile into padded gradient images.
func (c *CPU) ConvBackward(x, dy Buf, g ConvGeom, n int, w, dw, dx Buf, accumulate bool) bool {
	if !c.convDirect(g) || (dx.Valid() && g.C%16 != 0) {
		return false
	}
	kkc := g.K * g.K * g.C
	hp, wp := g.H+2*g.Pad, g.W+2*g.Pad
	c.padBufs(max(convWGroup(g), convMaxR(convNB(g.C))) * hp * wp * g.C)
	nch := min(n, convChunks)
	c.conv.parts = grow(c.conv.parts, nch*kkc*g.OC)
	c.conv.op = convOp{x: x.host, dy: dy.host, parts: c.conv.parts, g: g, n: n, nch: nch, nb: convNB(g.OC)}
	c.parallel(nch, 1, convWGradRange)
	c.conv.op = convOp{}
	c.conv.op = convOp{parts: c.conv.parts, y: dw.host[:g.OC*kkc], g: g, nch: nch}
	c.parallel(kkc*g.OC, 1<<12, convWSumRange)
	c.conv.op = convOp{}
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
	if flipped {
		c.runGather(convGather{src: dy.host, dst: dx.host, pack: pack, n: n, h: g.OH, w: g.OW, ch: g.OC,
			pad: g.K - 1 - g.Pad, step: 1, k: g.K, oh: g.H, ow: g.W, oc: g.C, nb: nb, acc: accumulate})
		return true
	}
	c.conv.op = convOp{dy: dy.host, y: dx.host, pack: pack, g: g, n: n, nb: nb, acc: accumulate}
	units := n
	if g.OW < convRowTile {
		units = (n + convMaxR(nb) - 1) / convMaxR(nb)
	}
	c.parallel(units, 1, convDataScatterRange)
	c.conv.op = convOp{}
	return true
}

// convWSumRange writes dw[oc][q] = Σ_chunk parts[chunk][q][oc] (chunks
// added in order) for the flat indices q·OC+oc in [lo,hi): the chunks are
// read contiguously, which matters for the large layers.
func convWSumRange(c *CPU, _, lo, hi int) {
	op := &c.conv.op
	oc, kkc := op.g.OC, op.g.K*op.g.K*op.g.C
	size := kkc * oc
	parts, dw := op.parts, op.y
	for i := lo; i < hi; i++ {
		s := parts[i]
		for ch := 1; ch < op.nch; ch++ {
			s += parts[ch*size+i]
		}
		dw[(i%oc)*kkc+i/oc] = s
	}
}

// convWGradRange sums the weight gradient of chunks [lo,hi): for each
// group of images and kernel row kh, the rows (kw, c) of the padded input
// are contiguous, so one kernel call covers a tile of them over every
// output pixel of the group.
func convWGradRange(c *CPU, wk, lo, hi int) {
	op := &c.conv.op
	g, nb := op.g, op.nb
	vw := 16 * nb
	kc := g.K * g.C
	size := g.K * kc * g.OC
	wp := g.W + 2*g.Pad
	isz := (g.H + 2*g.Pad) * wp * g.C
	maxR := convMaxR(nb)
	nt := convNumTiles(kc, maxR)
	grp := convWGroup(g)
	pix := g.OH * g.OW
	for ch := lo; ch < hi; ch++ {
		part := op.parts[ch*size:][:size]
		clear(part)
		end := (ch + 1) * op.n / op.nch
		for i0 := ch * op.n / op.nch; i0 < end; i0 += grp {
			cnt := min(grp, end-i0)
			p := padImages(c.conv.pad[wk], op.x[i0*g.H*g.W*g.C:], cnt, g.H, g.W, g.C, g.Pad)
			dyi := op.dy[i0*pix*g.OC:][:cnt*pix*g.OC]
			for kh := 0; kh < g.K; kh++ {
				for t := 0; t < nt; t++ {
					r0, r := convTile(kc, maxR, t)
					a := p[kh*wp*g.C+r0:]
					for ob := 0; ob < g.OC/vw; ob++ {
						blas.ConvTile(r, nb, a, 1, g.OW, g.Stride*g.C, g.OH, g.Stride*wp*g.C, cnt, isz,
							dyi[ob*vw:], g.OC, part[(kh*kc+r0)*g.OC+ob*vw:], g.OC, true)
					}
				}
			}
		}
	}
}

// convDataScatterRange writes dx for images (or groups of images) [lo,hi)
// of a strided convolution: each tile of dy times one kernel tap is added
// into zero-padded gradient images, whose interiors are then copied (or
// added) to dx.
func convDataScatterRange(c *CPU, wk, lo, hi int) {
	op := &c.conv.op
	g, nb := op.g, op.nb
	vw := 16 * nb
	wp := g.W + 2*g.Pad
	isz := (g.H + 2*g.Pad) * wp * g.C
	osz := g.OH * g.OW * g.OC
	maxR := convMaxR(nb)
	rowTiles := g.OW >= convRowTile
	for u := lo; u < hi; u++ {
		i0, cnt := u, 1
		if !rowTiles {
			i0, cnt = u*maxR, min(maxR, op.n-u*maxR)
		}
		p := c.conv.pad[wk][:cnt*isz]
		clear(p)
		// A position is a tile of pixels along a row of one image, or
		// one pixel of the cnt images.
		np, rs, ldc := g.OW, osz, isz
		if rowTiles {
			np, rs, ldc = convNumTiles(g.OW, maxR), g.OC, g.Stride*g.C
		}
		for oh := 0; oh < g.OH; oh++ {
			for t := 0; t < np; t++ {
				ow, r := t, cnt
				if rowTiles {
					ow, r = convTile(g.OW, maxR, t)
				}
				a := op.dy[((i0*g.OH+oh)*g.OW+ow)*g.OC:]
				for kh := 0; kh < g.K; kh++ {
					for kw := 0; kw < g.K; kw++ {
						base := ((oh*g.Stride+kh)*wp + ow*g.Stride + kw) * g.C
						for cb := 0; cb < g.C/vw; cb++ {
							blas.ConvTile(r, nb, a, rs, g.OC, 1, 1, 0, 1, 0,
								op.pack[((cb*g.K+kh)*g.K+kw)*g.OC*vw:], vw, p[base+cb*vw:], ldc, true)
						}
					}
				}
			}
		}
		for k := 0; k < cnt; k++ {
			dxi := op.y[(i0+k)*g.H*g.W*g.C:][:g.H*g.W*g.C]
			for ih := 0; ih < g.H; ih++ {
				src := p[k*isz+((ih+g.Pad)*wp+g.Pad)*g.C:][:g.W*g.C]
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
}

// rowsOf returns rows [lo,hi) of c values of s, or nil for an absent s.
func rowsOf(s []float32, lo, hi, c int) []float32 {
	if s == nil {
		return nil
	}
	return s[lo*c : hi*c]
}

package augment

import "math"

// taps are the precomputed 1-D resampling weights of one axis: output o reads
// the n source samples start[o] … start[o]+n-1 with weights w[o*n : o*n+n].
// Every output has the same n (short filters are padded with zero weights),
// which keeps the hot loops branch free. Flips and crop offsets are folded in
// when the taps are built, so the resize loops never see them.
type taps struct {
	n     int
	start []int32
	w     []float32
	// build's scratch: unpacked weights and (first, count) per output
	idx []int32
	wt  []float64
}

// build computes the taps that resample in source samples (starting at source
// position offset) to out samples, reversed when flip is set.
func (t *taps) build(in, out, offset int, interp Interp, flip bool) {
	scale := float64(in) / float64(out)
	maxP := 2 // taps a single output can have before trimming
	if interp == BilinearAntialias {
		maxP = int(math.Ceil(math.Max(scale, 1)))*2 + 1
	}
	t.wt = grow(t.wt, out*maxP)
	t.idx = grow(t.idx, 2*out)
	// Pass 1: every output's weights, zero weights at the ends trimmed (an
	// upscaling triangle filter touches 3 samples but weighs only 2), so that
	// n is as small as possible and the 2-tap fast paths apply.
	n := 1
	for o := 0; o < out; o++ {
		w := t.wt[o*maxP : (o+1)*maxP]
		first, cnt := t.weights(in, out, o, interp, w)
		for cnt > 1 && w[0] == 0 {
			copy(w, w[1:cnt])
			first++
			cnt--
		}
		for cnt > 1 && w[cnt-1] == 0 {
			cnt--
		}
		t.idx[2*o], t.idx[2*o+1] = int32(first), int32(cnt)
		n = max(n, cnt)
	}
	n = min(n, in)
	// Pass 2: pack into a window of n samples that stays inside [0, in).
	t.n = n
	t.start = grow(t.start, out)
	t.w = grow(t.w, out*n)
	for o := 0; o < out; o++ {
		first, cnt := int(t.idx[2*o]), int(t.idx[2*o+1])
		s := max(min(first, in-n), 0)
		d := o
		if flip {
			d = out - 1 - o
		}
		row := t.w[d*n : d*n+n]
		clear(row)
		for k := 0; k < cnt; k++ {
			row[first+k-s] += float32(t.wt[o*maxP+k])
		}
		t.start[d] = int32(s + offset)
	}
}

// weights writes the weights of output o into t.wt and returns the first
// source index and the number of weights.
func (t *taps) weights(in, out, o int, interp Interp, wt []float64) (first, cnt int) {
	if interp == Bilinear {
		// torch upsample_bilinear2d, align_corners=False, computed in float32
		// as ATen does: src = scale·(o+0.5) − 0.5 clamped at 0; the second
		// tap is clamped to the last sample.
		scale := float32(in) / float32(out)
		src := scale*(float32(o)+0.5) - 0.5
		if src < 0 {
			src = 0
		}
		x0 := int(src)
		l1 := src - float32(x0)
		l0 := 1 - l1
		if x0 >= in-1 {
			wt[0] = float64(l0) + float64(l1)
			return in - 1, 1
		}
		wt[0], wt[1] = float64(l0), float64(l1)
		return x0, 2
	}
	// PIL ImagingResample with the bilinear (triangle) filter, whose support
	// grows with the downscale factor; torch's antialias=True kernel mirrors it.
	scale := float64(in) / float64(out)
	fscale := math.Max(scale, 1)
	support := fscale
	center := (float64(o) + 0.5) * scale
	ss := 1 / fscale
	xmin := int(center - support + 0.5)
	if xmin < 0 {
		xmin = 0
	}
	xmax := int(center + support + 0.5)
	if xmax > in {
		xmax = in
	}
	var sum float64
	cnt = xmax - xmin
	for x := 0; x < cnt; x++ {
		v := math.Abs((float64(x+xmin) - center + 0.5) * ss)
		w := 0.0
		if v < 1 {
			w = 1 - v
		}
		wt[x] = w
		sum += w
	}
	if sum != 0 {
		for x := 0; x < cnt; x++ {
			wt[x] /= sum
		}
	}
	return xmin, cnt
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// resizeGray writes the crop box of a one-channel img, resampled with the
// x/y taps and replicated to 3 channels, into dst (outH×outW×3 interleaved
// float32), scaled by 1/255. tmp is the horizontal-pass scratch (rows·outW
// floats). Three-channel images take resizeRGB.
//
// Separable: a horizontal pass turns each needed source row into outW
// samples (tmp), then a vertical pass blends tmp rows. This is also the
// operation order of torch's bilinear kernel, h0·(w0·x00 + w1·x01) + h1·(…).
func resizeGray(dst []float32, img *Image, xt, yt *taps, rowLo, rows int, outH, outW int, tmp []float32) {
	stride := img.Stride
	nx, ny := xt.n, yt.n
	for r := 0; r < rows; r++ { // horizontal pass over source rows rowLo … rowLo+rows-1
		src := img.Pix[(rowLo+r)*stride:]
		out := tmp[r*outW : r*outW+outW]
		for x := 0; x < outW; x++ {
			s := int(xt.start[x])
			wt := xt.w[x*nx : x*nx+nx]
			p := src[s : s+nx]
			var a float32
			for k, w := range wt {
				a += w * float32(p[k])
			}
			out[x] = a
		}
	}
	const inv255 = 1.0 / 255
	for y := 0; y < outH; y++ { // vertical pass
		s := int(yt.start[y]) - rowLo
		wt := yt.w[y*ny : y*ny+ny]
		drow := dst[y*outW*3 : (y+1)*outW*3]
		for x := 0; x < outW; x++ {
			var a float32
			for k, w := range wt {
				a += w * tmp[(s+k)*outW+x]
			}
			a *= inv255
			drow[3*x], drow[3*x+1], drow[3*x+2] = a, a, a
		}
	}
}

// rotateResize is the slow path used when a rotation is drawn: every output
// pixel is mapped back through flip, resize (torch's align_corners=False
// mapping) and the inverse rotation about the image centre, then sampled
// bilinearly with zero fill. No antialiasing.
func rotateResize(dst []float32, img *Image, p *Params, outH, outW int) {
	sin, cos := math.Sincos(float64(p.Angle) * math.Pi / 180)
	cx, cy := float64(img.W-1)/2, float64(img.H-1)/2
	sx := float64(p.CropW) / float64(outW)
	sy := float64(p.CropH) / float64(outH)
	c := img.C
	at := func(x, y, ch int) float64 {
		if x < 0 || y < 0 || x >= img.W || y >= img.H {
			return 0
		}
		return float64(img.Pix[y*img.Stride+x*c+ch])
	}
	for oy := 0; oy < outH; oy++ {
		py := sy*(float64(oy)+0.5) - 0.5 + float64(p.Top)
		for ox := 0; ox < outW; ox++ {
			fx := ox
			if p.Flip {
				fx = outW - 1 - ox
			}
			px := sx*(float64(fx)+0.5) - 0.5 + float64(p.Left)
			// Inverse rotation: source = R(-angle)·(p − c) + c. Positive angles
			// turn the content counter-clockwise, as torchvision's rotate does.
			dx, dy := px-cx, py-cy
			qx := cos*dx - sin*dy + cx
			qy := sin*dx + cos*dy + cy
			x0, y0 := math.Floor(qx), math.Floor(qy)
			ax, ay := qx-x0, qy-y0
			ix, iy := int(x0), int(y0)
			o := (oy*outW + ox) * 3
			for ch := 0; ch < 3; ch++ {
				sc := min(ch, c-1)
				v := (1-ay)*((1-ax)*at(ix, iy, sc)+ax*at(ix+1, iy, sc)) +
					ay*((1-ax)*at(ix, iy+1, sc)+ax*at(ix+1, iy+1, sc))
				dst[o+ch] = float32(v / 255)
			}
		}
	}
}

// tapCache memoises the taps of one axis by source length: crop sizes repeat
// (a 32-pixel side has only 32 possible crop lengths), and computing taps
// costs as much as a sixth of a 32×32 view. Entries hold unshifted,
// unflipped taps; place adds the crop offset and the flip.
type tapCache struct {
	byIn    []*taps
	scratch taps
}

// maxCachedIn bounds the cache (entries are O(out·taps) floats each).
const maxCachedIn = 4096

// get returns the base taps for in → out, building them on first use, or
// nil when in is too large to cache.
func (c *tapCache) get(in, out int, interp Interp) *taps {
	if in > maxCachedIn {
		return nil
	}
	if in >= len(c.byIn) {
		c.byIn = append(c.byIn, make([]*taps, in+1-len(c.byIn))...)
	}
	t := c.byIn[in]
	if t == nil {
		// Build in the cache's scratch, keep only the packed result.
		c.scratch.build(in, out, 0, interp, false)
		t = &taps{n: c.scratch.n, start: append([]int32(nil), c.scratch.start...), w: append([]float32(nil), c.scratch.w...)}
		c.byIn[in] = t
	}
	return t
}

// maxTaps is the largest tap count of the cached entries (at least 1).
func (c *tapCache) maxTaps() int {
	n := 1
	for _, t := range c.byIn {
		if t != nil {
			n = max(n, t.n)
		}
	}
	return n
}

// place sets t to base shifted by offset and, if flip, mirrored.
func (t *taps) place(base *taps, offset int, flip bool) {
	out, n := len(base.start), base.n
	t.n = n
	t.start = grow(t.start, out)
	t.w = grow(t.w, out*n)
	if !flip {
		for o, s := range base.start {
			t.start[o] = s + int32(offset)
		}
		copy(t.w, base.w)
		return
	}
	for o, s := range base.start {
		d := out - 1 - o
		t.start[d] = s + int32(offset)
		copy(t.w[d*n:d*n+n], base.w[o*n:o*n+n])
	}
}

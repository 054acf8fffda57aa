package augment

// The three-channel resize, vertical pass first. Both passes are written
// as small kernels over contiguous memory: an AVX-512 version in assembly
// (resample_amd64.s) and the Go version here, which is also the fallback on
// other CPUs and the reference the assembly is tested against. They give
// the same bits: each sum is formed in the same order with a separately
// rounded product per term (no fused multiply-add), so a view does not
// depend on the machine that computed it.

// resizeRGB writes the crop box of a 3-channel img, resampled with the x/y
// taps, into dst (outH×outW×3 interleaved float32), scaled by 1/255.
//
// Vertical pass first: output row y blends yt.n source rows over the crop's
// columns straight from the uint8 pixels (one long contiguous run per row,
// 16 bytes per vector in the assembly), into tmp; then each tmp row is
// resampled horizontally to outW pixels, four rows at a time (the taps are
// the same for every row). The horizontal-first order of torch and PIL
// needs the horizontal taps on every source row of the crop, and that
// pass has to gather pixels at varying offsets; this order does the
// gathering on outH rows only. The sums differ from the other order by
// float32 rounding.
//
// ws holds outH·yt.n vertical weights (scaled by 1/255) and xs outW
// horizontal starts relative to the crop's left edge; tmp outH·(3·cw+4)
// floats. The caller sizes all three (Geometry).
func resizeRGB(dst []float32, img *Image, xt, yt *taps, left, cw, outH, outW int, tmp, ws []float32, xs []int32) {
	const inv255 = 1.0 / 255
	ny, nx := yt.n, xt.n
	rn := 3 * cw // floats per tmp row that hold data
	rs := rn + 4 // tmp row stride: the 16-byte loads of the last pixel read one float past it
	for i, w := range yt.w[:outH*ny] {
		ws[i] = w * inv255
	}
	stride := img.Stride
	for y := 0; y < outH; y++ {
		src := img.Pix[int(yt.start[y])*stride+3*left:]
		vpass(tmp[y*rs:y*rs+rn], src, stride, ws[y*ny:y*ny+ny])
	}
	for x := 0; x < outW; x++ {
		s := xt.start[x] - int32(left)
		if s < 0 || int(s)+nx > cw {
			panic("augment: horizontal tap outside the crop") // taps are built inside it
		}
		xs[x] = s
	}
	hpass(dst, 3*outW, tmp, rs, outH, xs[:outW], xt.w[:outW*nx], nx)
}

// vpass sets dst[i] = Σₖ w[k]·src[k·stride+i], summed in k order.
func vpass(dst []float32, src []uint8, stride int, w []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	_ = src[(len(w)-1)*stride+n-1] // every row in range, for the assembly too
	if useAVX512 && n >= 16 {
		m := n &^ 15
		vpassAVX512(&dst[0], &src[0], stride, m, &w[0], len(w))
		if m < n {
			// The last 16 values again, overlapping the previous block:
			// every value depends only on its own column, so recomputing
			// some is harmless and cheaper than the Go loop for the tail.
			vpassAVX512(&dst[n-16], &src[n-16], stride, 16, &w[0], len(w))
		}
		return
	}
	vpassGo(dst, src, stride, w)
}

// vpassGo is vpass in Go. The explicit float32 conversions keep the
// compiler from fusing the multiply and the add (the Go spec allows it),
// which would change the rounding.
func vpassGo(dst []float32, src []uint8, stride int, w []float32) {
	n := len(dst)
	w0 := w[0]
	for i, p := range src[:n] {
		dst[i] = float32(w0 * float32(p))
	}
	for k := 1; k < len(w); k++ {
		wk := w[k]
		row := src[k*stride : k*stride+n]
		for i, p := range row {
			dst[i] += float32(wk * float32(p))
		}
	}
}

// hpass resamples rows RGB rows of src (row stride srcStride floats) to
// len(xs) pixels each, into dst (row stride dstStride): output pixel x of a
// row is Σₖ w[x·n+k]·row[xs[x]+k] per channel, summed in k order. src rows
// must be readable one float past their last pixel.
func hpass(dst []float32, dstStride int, src []float32, srcStride, rows int, xs []int32, w []float32, n int) {
	nout := len(xs)
	if rows == 0 || nout == 0 {
		return
	}
	// The assembly reads 4 floats at 3·(xs[x]+k) of each row and writes
	// 3·nout floats per row; check the extremes once.
	maxS := int32(0)
	for _, s := range xs {
		maxS = max(maxS, s)
	}
	_ = src[(rows-1)*srcStride+3*(int(maxS)+n-1)+3]
	_ = dst[(rows-1)*dstStride+3*nout-1]
	_ = w[nout*n-1]
	r := 0
	if useAVX512 {
		for ; r+4 <= rows; r += 4 {
			hpass4AVX(&dst[r*dstStride], 4*dstStride, &src[r*srcStride], 4*srcStride, &xs[0], &w[0], nout, n)
		}
	}
	for ; r < rows; r++ {
		hpassGo(dst[r*dstStride:r*dstStride+3*nout], src[r*srcStride:], xs, w, n)
	}
}

// hpassGo is one row of hpass in Go.
func hpassGo(dst []float32, src []float32, xs []int32, w []float32, n int) {
	for x, s := range xs {
		p := src[3*int(s) : 3*int(s)+3*n]
		wt := w[x*n : x*n+n]
		w0 := wt[0]
		a0, a1, a2 := float32(w0*p[0]), float32(w0*p[1]), float32(w0*p[2])
		for k := 1; k < n; k++ {
			wk := wt[k]
			q := p[3*k : 3*k+3 : 3*k+3]
			a0 += float32(wk * q[0])
			a1 += float32(wk * q[1])
			a2 += float32(wk * q[2])
		}
		d := dst[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2] = a0, a1, a2
	}
}

package source

import "image"

// Lossy WebP (VP8) stores limited-range BT.601 YCbCr ("video range", black
// at Y=16), but golang.org/x/image/webp returns it as an image.YCbCr, whose
// conversion assumes JPEG's full range: blacks come out grey and whites dim
// (golang/go#40173). webpRGBA converts such an image the way libwebp does,
// and so as PIL, torchvision and browsers see the file: libwebp's
// fixed-point BT.601 conversion (src/dsp/yuv.h) with its "fancy" chroma
// upsampling (src/dsp/upsampling.c), which interpolates the 4:2:0 chroma
// planes instead of repeating each sample over 2×2 pixels.

// vp8Clip8 is libwebp's VP8Clip8: a value with 6 fraction bits, clamped.
func vp8Clip8(v int) byte {
	if v&^((256<<6)-1) == 0 {
		return byte(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func multHi(v, coeff int) int { return (v * coeff) >> 8 }

// vp8RGB is libwebp's VP8YuvToRgb.
func vp8RGB(d []byte, y, u, v int) {
	yy := multHi(y, 19077)
	d[0] = vp8Clip8(yy + multHi(v, 26149) - 14234)
	d[1] = vp8Clip8(yy - multHi(u, 6419) - multHi(v, 13320) + 8708)
	d[2] = vp8Clip8(yy + multHi(u, 33050) - 17685)
}

// webpRGBA converts a lossy WebP's 4:2:0 planes to an opaque RGBA image
// (alpha, if any, is dropped later anyway). Other subsampling ratios do not
// occur in VP8; for them it returns nil and the caller falls back to the
// generic conversion.
func webpRGBA(m *image.YCbCr) *image.RGBA {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	cw := (w + 1) / 2
	ch := (h + 1) / 2
	if len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw || len(m.Y) < (h-1)*m.YStride+w {
		return nil
	}
	// Chroma rows: output row r uses a near and a far chroma row, weighted
	// 3:1, exactly as libwebp pairs its rows (row 0 and, for even heights,
	// the last row use a single chroma row).
	for r := 0; r < h; r++ {
		var near, far int
		if r%2 == 1 {
			near, far = r/2, min(r/2+1, ch-1)
		} else {
			near, far = r/2, max(r/2-1, 0)
		}
		yRow := m.Y[r*m.YStride : r*m.YStride+w]
		upsampleRow(out.Pix[r*out.Stride:r*out.Stride+4*w], yRow,
			m.Cb[near*m.CStride:near*m.CStride+cw], m.Cr[near*m.CStride:near*m.CStride+cw],
			m.Cb[far*m.CStride:far*m.CStride+cw], m.Cr[far*m.CStride:far*m.CStride+cw])
	}
	return out
}

// upsampleRow is one output row of libwebp's UPSAMPLE_FUNC, with the near
// chroma row in the role of its "top" samples; each chroma component is
// computed on its own, which gives the same values as libwebp's packed
// arithmetic (no carry crosses between the packed halves).
func upsampleRow(dst, yRow, nu, nv, fu, fv []byte) {
	w := len(yRow)
	put := func(x, u, v int) {
		vp8RGB(dst[4*x:4*x+3], int(yRow[x]), u, v)
		dst[4*x+3] = 0xff
	}
	tlU, tlV := int(nu[0]), int(nv[0])
	lU, lV := int(fu[0]), int(fv[0])
	put(0, (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2)
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		tU, tV := int(nu[x]), int(nv[x])
		cU, cV := int(fu[x]), int(fv[x])
		avgU := tlU + tU + lU + cU + 8
		avgV := tlV + tV + lV + cV + 8
		d12U, d12V := (avgU+2*(tU+lU))>>3, (avgV+2*(tV+lV))>>3
		d03U, d03V := (avgU+2*(tlU+cU))>>3, (avgV+2*(tlV+cV))>>3
		put(2*x-1, (d12U+tlU)>>1, (d12V+tlV)>>1)
		put(2*x, (d03U+tU)>>1, (d03V+tV)>>1)
		tlU, tlV, lU, lV = tU, tV, cU, cV
	}
	if w&1 == 0 {
		put(w-1, (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2)
	}
}

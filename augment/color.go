package augment

import (
	"math"
	"unsafe"
)

// Colour operations on one interleaved RGB float32 view in [0, 1], in place.
// Each follows torchvision 0.14's tensor implementation operation by
// operation in float32 (blend = a·x + b·y with a = float32(f) and
// b = float32(1 − f), then clamp to [0, 1]), except that grayscale uses the
// ITU-R 601 weights of PIL and docs/ALGORITHM.md (see the package comment).

const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// clamp01 clamps to [0, 1] without branches: non-negative floats order like
// their bit patterns as integers and negative ones have the sign bit set, so
// two integer conditional moves do it (−0 → 0, +NaN → 1, −NaN → 0). The
// float min/max builtins are much slower (NaN and ±0 handling), and float
// compares compile to branches that mispredict on image data.
func clamp01(x float32) float32 {
	b := int32(math.Float32bits(x))
	if b < 0 {
		b = 0
	}
	if b > one32 {
		b = one32
	}
	return math.Float32frombits(uint32(b))
}

const one32 = 0x3F800000 // bits of float32(1)

// adjustBrightness: blend with black.
func adjustBrightness(v []float32, f float32) {
	for i, x := range v {
		v[i] = clamp01(f * x)
	}
}

// adjustContrast: blend with the mean gray level of the whole view.
func adjustContrast(v []float32, f float32) {
	// Sum in float32 over runs of 64 pixels with four interleaved partial
	// sums (one chain would be bound by the add latency), then in float64:
	// exact enough (torch itself sums float32 in blocks) and without a
	// conversion per pixel.
	var sum float64
	n := len(v) / 3
	for lo := 0; lo < n; lo += 64 {
		px := pixels(v, lo, min(lo+64, n))
		var s0, s1, s2, s3 float32
		k := 0
		for ; k+3 < len(px); k += 4 {
			s0 += lumaR*px[k][0] + lumaG*px[k][1] + lumaB*px[k][2]
			s1 += lumaR*px[k+1][0] + lumaG*px[k+1][1] + lumaB*px[k+1][2]
			s2 += lumaR*px[k+2][0] + lumaG*px[k+2][1] + lumaB*px[k+2][2]
			s3 += lumaR*px[k+3][0] + lumaG*px[k+3][1] + lumaB*px[k+3][2]
		}
		for ; k < len(px); k++ {
			s0 += lumaR*px[k][0] + lumaG*px[k][1] + lumaB*px[k][2]
		}
		sum += float64((s0 + s1) + (s2 + s3))
	}
	m := float32(sum / float64(n))
	a, b := f, float32(1-float64(f))
	bm := b * m
	for i, x := range v {
		v[i] = clamp01(a*x + bm)
	}
}

// adjustSaturation: blend each pixel with its own gray level.
func adjustSaturation(v []float32, f float32) {
	a, b := f, float32(1-float64(f))
	for px, k := pixels(v, 0, len(v)/3), 0; k < len(px); k++ {
		p := &px[k]
		r, g, bl := p[0], p[1], p[2]
		l := b * (lumaR*r + lumaG*g + lumaB*bl)
		p[0] = clamp01(a*r + l)
		p[1] = clamp01(a*g + l)
		p[2] = clamp01(a*bl + l)
	}
}

// adjustHue rotates the hue by shift (fraction of the circle). It computes
// torchvision's _rgb2hsv → (h + shift) mod 1 → _hsv2rgb round trip in closed
// form: with v = max, m = min and c = v − m, HSV's p = v(1−s) is m, q is
// v − c·f and t is m + c·f, so the pixel only needs the shifted hue position
// h6 ∈ [0, 6) and one division. Mathematically identical to torchvision; in
// float32 it differs by a few ulps (see the fixture tolerance), and it is
// four times faster than the literal transcription.
func adjustHue(v []float32, shift float32) {
	s6 := 6 * shift
	for px, k := pixels(v, 0, len(v)/3), 0; k < len(px); k++ {
		// Written out in the loop, not as a per-pixel function: the Go
		// compiler does not inline a body this size, and the call costs 20%.
		p := &px[k]
		r, g, b := p[0], p[1], p[2]
		maxc, minc := r, r // not the min/max builtins: their NaN handling is slow
		if g > maxc {
			maxc = g
		} else if g < minc {
			minc = g
		}
		if b > maxc {
			maxc = b
		} else if b < minc {
			minc = b
		}
		c := maxc - minc
		if c == 0 {
			continue // gray pixel: s = 0, every hue maps back to (v, v, v)
		}
		var h6 float32
		switch {
		case maxc == r:
			h6 = (g - b) / c // ∈ [−1, 1]
		case maxc == g:
			h6 = 2 + (b-r)/c // ∈ [1, 3]
		default:
			h6 = 4 + (r-g)/c // ∈ [3, 5]
		}
		h6 += s6
		if h6 < 0 {
			h6 += 6
		} else if h6 >= 6 {
			h6 -= 6
		}
		sector := int(h6) // h6 ≥ 0: truncation is floor
		f := h6 - float32(sector)
		cf := c * f
		q := maxc - cf // falling edge
		t := minc + cf // rising edge
		switch sector {
		case 0:
			p[0], p[1], p[2] = maxc, t, minc
		case 1:
			p[0], p[1], p[2] = q, maxc, minc
		case 2:
			p[0], p[1], p[2] = minc, maxc, t
		case 3:
			p[0], p[1], p[2] = minc, q, maxc
		case 4:
			p[0], p[1], p[2] = t, minc, maxc
		default:
			p[0], p[1], p[2] = maxc, minc, q
		}
	}
}

// toGray replaces every pixel by its luma, replicated to 3 channels.
func toGray(v []float32) {
	for px, k := pixels(v, 0, len(v)/3), 0; k < len(px); k++ {
		p := &px[k]
		l := lumaR*p[0] + lumaG*p[1] + lumaB*p[2]
		p[0], p[1], p[2] = l, l, l
	}
}

// normalize applies (x − mean)/std per channel, as transforms.Normalize.
func normalize(v []float32, mean, std *[3]float32) {
	for px, k := pixels(v, 0, len(v)/3), 0; k < len(px); k++ {
		p := &px[k]
		p[0] = (p[0] - mean[0]) / std[0]
		p[1] = (p[1] - mean[1]) / std[1]
		p[2] = (p[2] - mean[2]) / std[2]
	}
}

// pixels views interleaved RGB pixels lo..hi-1 as [3]float32 arrays, so the
// loops above index without per-channel bounds checks.
func pixels(v []float32, lo, hi int) [][3]float32 {
	return unsafe.Slice((*[3]float32)(unsafe.Pointer(&v[3*lo])), hi-lo)[: hi-lo : hi-lo]
}

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

// Each operation has a Go form (the …Go functions, which handle any
// length) and, on amd64 with AVX-512, an assembly form (color_amd64.s) for
// whole blocks of 16 pixels; the Go form finishes the tail. The two give the
// same bits: every sum is formed in the same order, each product rounded
// before it is added (the float32 conversions stop the compiler from fusing
// them), and the branches of the Go form are the masked selects of the
// assembly.

// gray is the luma of one pixel, summed left to right.
func gray(r, g, b float32) float32 {
	return float32(float32(lumaR*r)+float32(lumaG*g)) + float32(lumaB*b)
}

// adjustBrightness: blend with black.
func adjustBrightness(v []float32, f float32) { affineClamp(v, f, 0) }

// affineClamp sets every value x to clamp01(a·x + b): brightness (b = 0,
// where +0 and the clamp make it f·x) and the contrast blend.
func affineClamp(v []float32, a, b float32) {
	m := vectorLen(len(v))
	if m > 0 {
		affineClampAVX512(&v[0], m, a, b)
	}
	affineClampGo(v[m:], a, b)
}

// vectorLen is how many of n values or pixels the assembly forms take:
// whole blocks of 16, or none without AVX-512.
func vectorLen(n int) int {
	if !useAVX512 {
		return 0
	}
	return n &^ 15
}

func affineClampGo(v []float32, a, b float32) {
	for i, x := range v {
		v[i] = clamp01(float32(a*x) + b)
	}
}

// adjustContrast: blend with the mean gray level of the whole view.
func adjustContrast(v []float32, f float32) {
	// Sixteen float32 partial sums, pixel i into sum i mod 16 (one vector
	// of the assembly; a single chain would be bound by the add latency),
	// then their total in float64: exact enough (torch itself sums float32
	// in blocks).
	n := len(v) / 3
	var part [16]float32
	m := vectorLen(n)
	if m > 0 {
		graySumAVX512(&v[0], m, &part)
	}
	for k, p := range pixels(v, m, n) {
		part[(m+k)&15] += gray(p[0], p[1], p[2])
	}
	var sum float64
	for _, s := range part {
		sum += float64(s)
	}
	mean := float32(sum / float64(n))
	a, b := f, float32(1-float64(f))
	affineClamp(v, a, float32(b*mean))
}

// adjustSaturation: blend each pixel with its own gray level.
func adjustSaturation(v []float32, f float32) {
	a, b := f, float32(1-float64(f))
	n := len(v) / 3
	m := vectorLen(n)
	if m > 0 {
		saturationAVX512(&v[0], m, a, b)
	}
	saturationGo(pixels(v, m, n), a, b)
}

func saturationGo(px [][3]float32, a, b float32) {
	for k := range px {
		p := &px[k]
		r, g, bl := p[0], p[1], p[2]
		l := float32(b * gray(r, g, bl))
		p[0] = clamp01(float32(a*r) + l)
		p[1] = clamp01(float32(a*g) + l)
		p[2] = clamp01(float32(a*bl) + l)
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
	n := len(v) / 3
	m := vectorLen(n)
	if m > 0 {
		hueAVX512(&v[0], m, s6)
	}
	hueGo(pixels(v, m, n), s6)
}

func hueGo(px [][3]float32, s6 float32) {
	for k := range px {
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
		var num, off float32
		switch {
		case maxc == r:
			num, off = g-b, 0 // h6 ∈ [−1, 1]
		case maxc == g:
			num, off = b-r, 2 // h6 ∈ [1, 3]
		default:
			num, off = r-g, 4 // h6 ∈ [3, 5]
		}
		h6 := off + num/c
		h6 += s6
		if h6 < 0 {
			h6 += 6
		} else if h6 >= 6 {
			h6 -= 6
		}
		sector := int(h6) // h6 ≥ 0: truncation is floor
		f := h6 - float32(sector)
		cf := float32(c * f)
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
		default: // 5, and 6 when a tiny negative h6 + 6 rounds to 6 (f = 0, q = maxc)
			p[0], p[1], p[2] = maxc, minc, q
		}
	}
}

// toGray replaces every pixel by its luma, replicated to 3 channels.
func toGray(v []float32) {
	n := len(v) / 3
	m := vectorLen(n)
	if m > 0 {
		grayAVX512(&v[0], m)
	}
	for k, px := 0, pixels(v, m, n); k < len(px); k++ {
		p := &px[k]
		l := gray(p[0], p[1], p[2])
		p[0], p[1], p[2] = l, l, l
	}
}

// permTables are the VPERMI2PS/VPERMPS indices with which the assembly
// turns 16 interleaved RGB pixels (48 floats in three vectors A, B, C)
// into one vector per channel and back. Per channel c, in two steps: first
// from A and B the values that lie there, then from C the rest. Back, per
// output vector, first from the R and G vectors, then from B. Then the
// three vectors that spread one gray vector to all channels.
var permTables = func() (t [15][16]int32) {
	for c := 0; c < 3; c++ { // deinterleave
		for i := 0; i < 16; i++ {
			pos := int32(3*i + c)
			if pos < 32 {
				t[2*c][i], t[2*c+1][i] = pos, int32(i)
			} else {
				t[2*c+1][i] = 16 + pos - 32
			}
		}
	}
	for o := 0; o < 3; o++ { // interleave
		for j := 0; j < 16; j++ {
			q := int32(16*o + j)
			c, i := q%3, q/3
			if c < 2 {
				t[6+2*o][j], t[7+2*o][j] = 16*c+i, int32(j)
			} else {
				t[7+2*o][j] = 16 + i
			}
			t[12+o][j] = i
		}
	}
	return t
}()

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
	if lo >= hi {
		return nil
	}
	return unsafe.Slice((*[3]float32)(unsafe.Pointer(&v[3*lo])), hi-lo)[: hi-lo : hi-lo]
}

// colorK holds the constant vectors of the colour assembly: rows 0 … 6 the
// numbers 0 … 6, rows 7 … 9 lumaR, lumaG, lumaB (as float32, like the
// untyped constants in the Go forms).
var colorK = func() (k [10][16]float32) {
	for i := range k[0] {
		for n := 0; n <= 6; n++ {
			k[n][i] = float32(n)
		}
		k[7][i], k[8][i], k[9][i] = lumaR, lumaG, lumaB
	}
	return k
}()

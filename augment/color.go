package augment

// Colour operations on one interleaved RGB float32 view in [0, 1], in place.
// Each follows torchvision 0.14's tensor implementation operation by
// operation in float32 (blend = a·x + b·y with a = float32(f) and
// b = float32(1 − f), then clamp to [0, 1]), except that grayscale uses the
// ITU-R 601 weights of the spec (see the package comment).

const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// clamp01 clamps to [0, 1] (NaN → 0). Written as two ifs, which the Go
// compiler turns into a faster sequence than min(max(x, 0), 1), whose
// NaN/±0 handling costs extra instructions.
func clamp01(x float32) float32 {
	if !(x >= 0) {
		x = 0
	}
	if x > 1 {
		x = 1
	}
	return x
}

// adjustBrightness: blend with black.
func adjustBrightness(v []float32, f float32) {
	for i, x := range v {
		v[i] = clamp01(f * x)
	}
}

// adjustContrast: blend with the mean gray level of the whole view.
func adjustContrast(v []float32, f float32) {
	var sum float64
	for i := 0; i+2 < len(v); i += 3 {
		sum += float64(lumaR*v[i] + lumaG*v[i+1] + lumaB*v[i+2])
	}
	m := float32(sum / float64(len(v)/3))
	a, b := f, float32(1-float64(f))
	bm := b * m
	for i, x := range v {
		v[i] = clamp01(a*x + bm)
	}
}

// adjustSaturation: blend each pixel with its own gray level.
func adjustSaturation(v []float32, f float32) {
	a, b := f, float32(1-float64(f))
	for i := 0; i+2 < len(v); i += 3 {
		r, g, bl := v[i], v[i+1], v[i+2]
		l := b * (lumaR*r + lumaG*g + lumaB*bl)
		v[i] = clamp01(a*r + l)
		v[i+1] = clamp01(a*g + l)
		v[i+2] = clamp01(a*bl + l)
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
	for i := 0; i+2 < len(v); i += 3 {
		r, g, b := v[i], v[i+1], v[i+2]
		maxc := max(r, g, b)
		minc := min(r, g, b)
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
			r, g, b = maxc, t, minc
		case 1:
			r, g, b = q, maxc, minc
		case 2:
			r, g, b = minc, maxc, t
		case 3:
			r, g, b = minc, q, maxc
		case 4:
			r, g, b = t, minc, maxc
		default:
			r, g, b = maxc, minc, q
		}
		v[i], v[i+1], v[i+2] = r, g, b
	}
}

// toGray replaces every pixel by its luma, replicated to 3 channels.
func toGray(v []float32) {
	for i := 0; i+2 < len(v); i += 3 {
		l := lumaR*v[i] + lumaG*v[i+1] + lumaB*v[i+2]
		v[i], v[i+1], v[i+2] = l, l, l
	}
}

// normalize applies (x − mean)/std per channel, as transforms.Normalize.
func normalize(v []float32, mean, std *[3]float32) {
	for i := 0; i+2 < len(v); i += 3 {
		v[i] = (v[i] - mean[0]) / std[0]
		v[i+1] = (v[i+1] - mean[1]) / std[1]
		v[i+2] = (v[i+2] - mean[2]) / std[2]
	}
}


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

func clamp01(x float32) float32 {
	if x < 0 {
		return 0
	}
	if x > 1 {
		return 1
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

// adjustHue rotates the hue by shift (fraction of the circle) through
// torchvision's _rgb2hsv / _hsv2rgb, formula for formula.
func adjustHue(v []float32, shift float32) {
	for i := 0; i+2 < len(v); i += 3 {
		r, g, b := v[i], v[i+1], v[i+2]
		maxc := max(r, g, b)
		minc := min(r, g, b)
		cr := maxc - minc
		var h, s float32
		if cr != 0 { // eqc in torchvision: gray pixels keep h = 0, s = 0
			s = cr / maxc
			rc := (maxc - r) / cr
			gc := (maxc - g) / cr
			bc := (maxc - b) / cr
			switch {
			case maxc == r:
				h = bc - gc
			case maxc == g:
				h = 2.0 + rc - bc
			default:
				h = 4.0 + gc - rc
			}
			h = fmod1(h/6.0 + 1.0)
		} else {
			h = fmod1(0/6.0 + 1.0) // = 0, kept for symmetry with torch
		}
		h = rem1(h + shift)
		// _hsv2rgb
		h6 := h * 6.0
		fi := floor32(h6)
		f := h6 - fi
		sector := int(fi) % 6
		if sector < 0 {
			sector += 6
		}
		p := clamp01(maxc * (1.0 - s))
		q := clamp01(maxc * (1.0 - s*f))
		t := clamp01(maxc * (1.0 - s*(1.0-f)))
		switch sector {
		case 0:
			r, g, b = maxc, t, p
		case 1:
			r, g, b = q, maxc, p
		case 2:
			r, g, b = p, maxc, t
		case 3:
			r, g, b = p, q, maxc
		case 4:
			r, g, b = t, p, maxc
		default:
			r, g, b = maxc, p, q
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

func floor32(x float32) float32 {
	t := float32(int32(x))
	if t > x {
		t--
	}
	return t
}

// fmod1 is torch.fmod(x, 1) for x ≥ 0 (the only case _rgb2hsv meets: h/6+1 > 0).
func fmod1(x float32) float32 { return x - floor32(x) }

// rem1 is torch.remainder(x, 1.0): fmod with the sign of the divisor.
func rem1(x float32) float32 {
	m := x - float32(int32(x)) // C fmod for |x| < 2³¹
	if m != 0 && m < 0 {
		m += 1
	}
	return m
}

package augment

import "math"

// Jitter operation ids, in torchvision's numbering (ColorJitter.forward's
// fn_idx): the Order field of Params lists them in the order they apply.
const (
	OpBrightness = 0
	OpContrast   = 1
	OpSaturation = 2
	OpHue        = 3
)

// Params are the drawn parameters of one view. They are plain data (no
// pointers), so a batch of them can be copied to a GPU as is: 44 bytes, 4-byte
// aligned, fields at the offsets a C struct with the same members in the same
// order has (Top 0, Left 4, CropH 8, CropW 12, Flip 16, Jitter 17, Gray 18,
// Order 19, Brightness 24, Contrast 28, Saturation 32, Hue 36, Angle 40;
// TestParamsLayout pins it).
type Params struct {
	// Crop box in source pixels: rows [Top, Top+CropH), columns [Left, Left+CropW).
	Top, Left, CropH, CropW int32
	Flip                    bool // horizontal flip of the resized crop
	Jitter                  bool // colour jitter applied (the p = 0.8 coin)
	Gray                    bool // converted to grayscale
	Order                   [4]uint8
	// Jitter factors; identity values (1, 1, 1, 0) mean "operation off", as
	// torchvision skips a jitter whose strength is 0.
	Brightness, Contrast, Saturation, Hue float32
	Angle                                 float32 // rotation in degrees, 0 = none
}

// Counter slots of the per-view stream. Each parameter has fixed slots, so
// how many crop tries were needed never shifts the other draws and a GPU
// kernel can draw any parameter independently.
const (
	ctrCropTries  = 0  // 2 per try: area fraction, log ratio (10 tries: 0..19)
	ctrCropTop    = 20 // crop offsets after a successful try
	ctrCropLeft   = 21
	ctrFlip       = 22
	ctrJitter     = 23
	ctrBrightness = 24
	ctrContrast   = 25
	ctrSaturation = 26
	ctrHue        = 27
	ctrOrder      = 28 // 28, 29, 30: Fisher–Yates for the 4 jitter operations
	ctrGray       = 31
	ctrAngle      = 32
)

// Draw draws the parameters of one view of an h×w source image from the
// stream key (ViewKey(seed, epoch, index, view)). It is pure and allocation
// free. h and w must be positive.
func Draw(c *Config, key uint64, h, w int) Params {
	var p Params
	p.Top, p.Left, p.CropH, p.CropW = cropBox(c, key, h, w)
	p.Flip = Float64(key, ctrFlip) < c.FlipP
	p.Brightness, p.Contrast, p.Saturation = 1, 1, 1
	p.Order = [4]uint8{0, 1, 2, 3}
	if Float64(key, ctrJitter) < c.JitterP {
		p.Jitter = true
		if c.Brightness > 0 {
			p.Brightness = float32(Uniform(key, ctrBrightness, math.Max(0, 1-c.Brightness), 1+c.Brightness))
		}
		if c.Contrast > 0 {
			p.Contrast = float32(Uniform(key, ctrContrast, math.Max(0, 1-c.Contrast), 1+c.Contrast))
		}
		if c.Saturation > 0 {
			p.Saturation = float32(Uniform(key, ctrSaturation, math.Max(0, 1-c.Saturation), 1+c.Saturation))
		}
		if c.Hue > 0 {
			p.Hue = float32(Uniform(key, ctrHue, -c.Hue, c.Hue))
		}
		for i := 3; i > 0; i-- { // uniform random permutation, like torch.randperm(4)
			j := IntN(key, ctrOrder+uint64(3-i), i+1)
			p.Order[i], p.Order[j] = p.Order[j], p.Order[i]
		}
	}
	p.Gray = Float64(key, ctrGray) < c.GrayP
	if c.RotationDeg > 0 {
		p.Angle = float32(Uniform(key, ctrAngle, -c.RotationDeg, c.RotationDeg))
	}
	return p
}

// cropBox is torchvision's RandomResizedCrop.get_params, with (height, width)
// taken in the right order (the reference swaps them for PIL images):
// up to 10 tries of area·U(smin, smax) with a log-uniform ratio; the first box
// that fits gets a uniform offset; otherwise a centre crop with the ratio
// clamped to the range. Python's round() rounds half to even; so does this.
func cropBox(c *Config, key uint64, height, width int) (top, left, ch, cw int32) {
	area := float64(height) * float64(width)
	logLo, logHi := math.Log(c.RatioMin), math.Log(c.RatioMax)
	for t := uint64(0); t < 10; t++ {
		target := area * Uniform(key, ctrCropTries+2*t, c.ScaleMin, c.ScaleMax)
		ratio := math.Exp(Uniform(key, ctrCropTries+2*t+1, logLo, logHi))
		w := int(math.RoundToEven(math.Sqrt(target * ratio)))
		h := int(math.RoundToEven(math.Sqrt(target / ratio)))
		if 0 < w && w <= width && 0 < h && h <= height {
			i := IntN(key, ctrCropTop, height-h+1)
			j := IntN(key, ctrCropLeft, width-w+1)
			return int32(i), int32(j), int32(h), int32(w)
		}
	}
	inRatio := float64(width) / float64(height)
	w, h := width, height
	if inRatio < c.RatioMin {
		h = int(math.RoundToEven(float64(w) / c.RatioMin))
	} else if inRatio > c.RatioMax {
		w = int(math.RoundToEven(float64(h) * c.RatioMax))
	}
	// Rounding can overshoot by one pixel for extreme sizes; keep the box inside.
	h = max(1, min(h, height))
	w = max(1, min(w, width))
	return int32((height - h) / 2), int32((width - w) / 2), int32(h), int32(w)
}

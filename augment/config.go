// Package augment implements the t-SimCNE view augmentation (docs/ALGORITHM.md,
// "Augmentations"):
// RandomResizedCrop → horizontal flip → colour jitter in random order →
// random grayscale → float in [0, 1] (optionally mean/std normalised),
// with an optional random rotation for medical-style data.
//
// Parameters are drawn (Draw) separately from applying them (Augmenter), from
// a counter-based generator keyed by (seed, epoch, sample index, view), so the
// result of a view never depends on scheduling, and a GPU can apply the very
// same parameters to the uint8 crops (Augmenter.Crop8).
//
// # Fidelity to torchvision
//
// The arithmetic follows torchvision 0.14's tensor path on float32 images in
// [0, 1] (what Debian 12 ships as python3-torchvision): the bilinear resize is
// either torch's interpolate (Interp = Bilinear, antialias=False) or its
// antialiased variant, which reproduces PIL's resampling (Interp =
// BilinearAntialias, the default, because the reference package transforms PIL
// images). ColorJitter uses torchvision's blend and clamp formulas operation
// for operation in float32, and a closed form of its RGB→HSV→RGB round trip
// (the same values up to float32 rounding). The one deliberate difference:
// grayscale (for RandomGrayscale, contrast and saturation) uses the ITU-R 601
// weights 0.299/0.587/0.114 of PIL (docs/ALGORITHM.md), where torchvision's tensor
// code writes 0.2989. Measured against torchvision on the fixtures
// (fixture_test.go, scripts/augment/gen_fixtures.py): crop/resize/flip and
// rotation within 2e-5, single colour operations within 2e-4, whole views
// within 5e-4; against PIL's own resampling within 1.5/255 (PIL rounds to
// uint8). PIL's colour operations (uint8, its own HSV) are not matched.
//
// # Layout
//
// Inputs are HWC uint8 images with 1 or 3 channels. Outputs are always 3
// channels, HWC interleaved float32 (one image of the NHWC batch the engine
// takes). One-channel (grayscale) sources are replicated to 3 channels before
// the colour operations, so hue and saturation are no-ops on them and
// brightness/contrast act as on a gray RGB image.
package augment

import (
	"errors"
	"fmt"
	"math"
)

// Interp selects the resampling filter of the resized crop.
type Interp uint8

const (
	// BilinearAntialias is PIL's bilinear resampling (triangle filter whose
	// support widens when downscaling), as torchvision applies to PIL images
	// and as F.resize(tensor, antialias=True) reproduces. Identical to Bilinear
	// when upscaling, which is every crop of a 32×32 image resized to 32×32.
	BilinearAntialias Interp = iota
	// Bilinear is torch.nn.functional.interpolate(mode="bilinear",
	// align_corners=False), torchvision 0.14's tensor path (antialias=False).
	Bilinear
)

// Config holds the augmentation settings. Start from DefaultConfig: a zero
// Config is rejected by Validate (a zero flip probability is legitimate, so
// zero cannot mean "default").
type Config struct {
	OutH, OutW int // output view size

	ScaleMin, ScaleMax float64 // crop area fraction, (0.2, 1.0)
	RatioMin, RatioMax float64 // crop aspect ratio w/h, (3/4, 4/3), sampled log-uniformly
	Interp             Interp  // resize filter

	FlipP float64 // horizontal flip probability, 0.5

	JitterP    float64 // probability of applying colour jitter at all, 0.8
	Brightness float64 // factor ~ U[max(0, 1-b), 1+b], 0.4
	Contrast   float64 // factor ~ U[max(0, 1-c), 1+c], 0.4
	Saturation float64 // factor ~ U[max(0, 1-s), 1+s], 0.4
	Hue        float64 // shift ~ U[-h, h] in fractions of the hue circle, 0.1 (≤ 0.5)

	GrayP float64 // random grayscale probability, 0.2

	// RotationDeg > 0 enables a random rotation by U[-RotationDeg, RotationDeg]
	// degrees (positive = counter-clockwise) about the image centre, applied
	// before the crop (as RandomRotation placed before RandomResizedCrop would
	// be), with bilinear sampling and zero fill; torchvision's F.rotate within
	// 2e-5 (fixture). A rotated view is cropped and resized in the same
	// sampling pass, without antialiasing. Off in the reference.
	RotationDeg float64

	// Normalize enables (x - Mean)/Std per channel after everything else. Off
	// in the reference; the paper's CIFAR-10 runs used CIFAR10Mean/CIFAR10Std.
	Normalize bool
	Mean, Std [3]float32
}

// CIFAR-10 normalisation constants used by the paper's runs.
var (
	CIFAR10Mean = [3]float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std  = [3]float32{0.2023, 0.1994, 0.2010}
)

// DefaultConfig returns the reference t-SimCNE augmentation for views of
// outH×outW pixels.
func DefaultConfig(outH, outW int) Config {
	return Config{
		OutH: outH, OutW: outW,
		ScaleMin: 0.2, ScaleMax: 1.0,
		RatioMin: 3.0 / 4.0, RatioMax: 4.0 / 3.0,
		Interp:     BilinearAntialias,
		FlipP:      0.5,
		JitterP:    0.8,
		Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1,
		GrayP: 0.2,
		Mean:  [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1},
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("augment: invalid config: "+format, a...) }
	switch {
	case c.OutH <= 0 || c.OutW <= 0 || c.OutH > 1<<14 || c.OutW > 1<<14:
		return bad("output size %dx%d (want 1..16384)", c.OutH, c.OutW)
	case !(c.ScaleMin > 0 && c.ScaleMin <= c.ScaleMax):
		return bad("scale range (%g, %g)", c.ScaleMin, c.ScaleMax)
	case !(c.RatioMin > 0 && c.RatioMin <= c.RatioMax) || math.IsInf(c.RatioMax, 0):
		return bad("ratio range (%g, %g)", c.RatioMin, c.RatioMax)
	case c.Interp > Bilinear:
		return bad("interpolation %d", c.Interp)
	case !prob(c.FlipP) || !prob(c.JitterP) || !prob(c.GrayP):
		return bad("probabilities must lie in [0, 1] (flip %g, jitter %g, gray %g)", c.FlipP, c.JitterP, c.GrayP)
	case !(c.Brightness >= 0) || !(c.Contrast >= 0) || !(c.Saturation >= 0):
		return bad("jitter strengths must be ≥ 0")
	case !(c.Hue >= 0 && c.Hue <= 0.5):
		return bad("hue %g (want 0..0.5)", c.Hue)
	case !(c.RotationDeg >= 0 && c.RotationDeg <= 180):
		return bad("rotation %g degrees (want 0..180)", c.RotationDeg)
	}
	if c.Normalize {
		for i, s := range c.Std {
			if !(s > 0) {
				return bad("std[%d] = %g", i, s)
			}
		}
	}
	return nil
}

func prob(p float64) bool { return p >= 0 && p <= 1 }

var errBadImage = errors.New("augment: bad image")

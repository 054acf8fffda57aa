package augment

import "fmt"

// Image is an HWC uint8 image with 1 (gray) or 3 (RGB) channels. Stride is
// the number of bytes between rows; 0 means W·C.
type Image struct {
	Pix     []uint8
	H, W, C int
	Stride  int
}

func (img *Image) check() error {
	if img.C != 1 && img.C != 3 {
		return fmt.Errorf("%w: %d channels (want 1 or 3)", errBadImage, img.C)
	}
	if img.H <= 0 || img.W <= 0 {
		return fmt.Errorf("%w: size %dx%d", errBadImage, img.H, img.W)
	}
	if img.Stride == 0 {
		img.Stride = img.W * img.C
	}
	if img.Stride < img.W*img.C || len(img.Pix) < (img.H-1)*img.Stride+img.W*img.C {
		return fmt.Errorf("%w: %d bytes for %dx%dx%d (stride %d)", errBadImage, len(img.Pix), img.H, img.W, img.C, img.Stride)
	}
	return nil
}

// Augmenter applies drawn Params to images. It owns scratch buffers, so it is
// not safe for concurrent use: give each worker goroutine its own. After the
// first few calls (buffers grown to the largest crop) it does not allocate.
type Augmenter struct {
	cfg    Config
	xt, yt taps      // the current view's taps
	xc, yc tapCache  // base taps by crop length, per axis
	tmp    []float32 // first-pass rows
	ws     []float32 // resizeRGB's vertical weights
	xs     []int32   // resizeRGB's horizontal starts
	f32    []float32 // float view for Crop8
}

// New returns an Augmenter for cfg (copied).
func New(cfg Config) (*Augmenter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Augmenter{cfg: cfg}, nil
}

// Prepare builds, ahead of time, the resampling taps of every crop an h×w
// image can have and sizes the scratch buffers for it, so that views of
// images up to that size never allocate. Without it the first view with a
// new crop length builds and keeps that length's taps (four small
// allocations), which makes "no allocation in steady state" take a while to
// reach.
func (a *Augmenter) Prepare(h, w int) {
	for in := 1; in <= min(w, maxCachedIn); in++ {
		a.xc.get(in, a.cfg.OutW, a.cfg.Interp)
	}
	for in := 1; in <= min(h, maxCachedIn); in++ {
		a.yc.get(in, a.cfg.OutH, a.cfg.Interp)
	}
	a.tmp = grow(a.tmp, max(h*a.cfg.OutW*3, a.cfg.OutH*(3*w+4)))
	a.ws = grow(a.ws, a.cfg.OutH*a.yc.maxTaps())
	a.xs = grow(a.xs, a.cfg.OutW)
	a.f32 = grow(a.f32, a.ViewLen())
}

// Config returns the augmenter's configuration (read-only).
func (a *Augmenter) Config() *Config { return &a.cfg }

// ViewLen is the number of float32 (or uint8) values of one output view.
func (a *Augmenter) ViewLen() int { return a.cfg.OutH * a.cfg.OutW * 3 }

// Draw draws the parameters of a view of img with the augmenter's config.
func (a *Augmenter) Draw(key uint64, h, w int) Params { return Draw(&a.cfg, key, h, w) }

// Apply writes the augmented view of img with parameters p into dst
// (OutH×OutW×3 interleaved float32): crop, resize and flip in one fused
// separable pass, then the colour operations in p's order, grayscale and
// the optional normalisation.
func (a *Augmenter) Apply(dst []float32, img Image, p *Params) error {
	if err := a.Geometry(dst, img, p); err != nil {
		return err
	}
	a.Color(dst[:a.ViewLen()], p)
	return nil
}

// Geometry is the geometric part of Apply (crop, resize, flip, rotation):
// it writes the view into dst as float32 in [0, 1] without colour changes.
func (a *Augmenter) Geometry(dst []float32, img Image, p *Params) error {
	if err := img.check(); err != nil {
		return err
	}
	oh, ow := a.cfg.OutH, a.cfg.OutW
	if len(dst) < oh*ow*3 {
		return fmt.Errorf("augment: destination has %d floats, view needs %d", len(dst), oh*ow*3)
	}
	t, l, ch, cw := int(p.Top), int(p.Left), int(p.CropH), int(p.CropW)
	if ch <= 0 || cw <= 0 || t < 0 || l < 0 || t+ch > img.H || l+cw > img.W {
		return fmt.Errorf("augment: crop box (top %d, left %d, %dx%d) outside the %dx%d image", t, l, ch, cw, img.H, img.W)
	}
	if p.Angle != 0 {
		rotateResize(dst, &img, p, oh, ow)
		return nil
	}
	if base := a.xc.get(cw, ow, a.cfg.Interp); base != nil {
		a.xt.place(base, l, p.Flip)
	} else {
		a.xt.build(cw, ow, l, a.cfg.Interp, p.Flip)
	}
	if base := a.yc.get(ch, oh, a.cfg.Interp); base != nil {
		a.yt.place(base, t, false)
	} else {
		a.yt.build(ch, oh, t, a.cfg.Interp, false)
	}
	if img.C == 3 {
		a.tmp = grow(a.tmp, oh*(3*cw+4))
		a.ws = grow(a.ws, oh*a.yt.n)
		a.xs = grow(a.xs, ow)
		resizeRGB(dst, &img, &a.xt, &a.yt, l, cw, oh, ow, a.tmp, a.ws, a.xs)
		return nil
	}
	a.tmp = grow(a.tmp, ch*ow)
	resizeGray(dst, &img, &a.xt, &a.yt, t, ch, oh, ow, a.tmp)
	return nil
}

// Color applies the colour part of p (jitter in p.Order, grayscale, the
// configured normalisation) to a float view in [0, 1], in place. This is the
// work a GPU backend takes over when the loader hands out uint8 crops.
//
// One pass per operation, on purpose: a fused per-pixel pass (switching
// over the operation sequence inside the pixel loop) measured 20% slower,
// since the tight single-operation loops keep their constants in registers
// and the view (12 KiB at 32×32) stays in L1 between passes.
func (a *Augmenter) Color(v []float32, p *Params) {
	if p.Jitter {
		for _, op := range p.Order {
			switch op {
			case OpBrightness:
				if p.Brightness != 1 {
					adjustBrightness(v, p.Brightness)
				}
			case OpContrast:
				if p.Contrast != 1 {
					adjustContrast(v, p.Contrast)
				}
			case OpSaturation:
				if p.Saturation != 1 {
					adjustSaturation(v, p.Saturation)
				}
			case OpHue:
				if p.Hue != 0 {
					adjustHue(v, p.Hue)
				}
			}
		}
	}
	if p.Gray {
		toGray(v)
	}
	if a.cfg.Normalize {
		normalize(v, &a.cfg.Mean, &a.cfg.Std)
	}
}

// Crop8 writes only the geometric part of the view (crop, resize, flip,
// rotation) as uint8 HWC RGB into dst (OutH×OutW×3 bytes), rounded to the
// nearest level, for a GPU that applies Color itself. Rounding makes a view
// finished from Crop8 differ from Apply's by at most 0.5/255 before jitter.
func (a *Augmenter) Crop8(dst []uint8, img Image, p *Params) error {
	n := a.ViewLen()
	if len(dst) < n {
		return fmt.Errorf("augment: destination has %d bytes, view needs %d", len(dst), n)
	}
	a.f32 = grow(a.f32, n)
	if err := a.Geometry(a.f32, img, p); err != nil {
		return err
	}
	for i, x := range a.f32 {
		dst[i] = uint8(clamp01(x)*255 + 0.5)
	}
	return nil
}

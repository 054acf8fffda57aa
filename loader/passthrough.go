package loader

import "github.com/tsimcne/tsimcne-go/augment"

// crop8 is Augmenter.Crop8 with a pass-through for a view that is the whole
// RGB image at its own size, unflipped and unrotated (NoAugment at the
// images' native size: embedding, or reading a file through the loader).
// Crop8 would compute the identity through a float resize and rounding
// (exact, but about 15 µs per 32×32 image); a copy costs well under one,
// which lets the loader run at the disk's rate on raw 32×32 data.
func (w *worker) crop8(dst []uint8, img augment.Image, p *augment.Params, outH, outW int) error {
	if img.C == 3 && p.Top == 0 && p.Left == 0 && int(p.CropH) == img.H && int(p.CropW) == img.W &&
		img.H == outH && img.W == outW && !p.Flip && p.Angle == 0 && len(img.Pix) == img.H*img.W*3 && len(dst) >= len(img.Pix) {
		copy(dst, img.Pix)
		return nil
	}
	return w.aug.Crop8(dst, img, p)
}

package loader

import (
	"fmt"
	"image"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// JPEGDecoder says which decoder a loader with these options uses for
// JPEG samples: libjpeg-turbo when it loads (see internal/turbojpeg), else
// Go's image/jpeg. Programs print it, since the two differ by a few levels.
func JPEGDecoder(opt Options) string {
	if opt.GoJPEG {
		return "Go image/jpeg (asked for)"
	}
	return turbojpeg.Name()
}

// fillTurbo is fill's body for one encoded JPEG sample with libjpeg-turbo.
// ok false leaves the sample to the image/jpeg path: not a JPEG, the
// library missing, CMYK, or the library failed or warned (damaged files
// then get image/jpeg's verdict).
//
// The views' parameters are drawn at the image's full size exactly as on
// the image/jpeg path, so the crops are the same boxes. Then the image is
// decoded in the DCT domain at the smallest scale at which every (unrotated)
// crop still has at least the output's size — a 256×256 image whose crops
// are at least 128 pixels for a 64×64 output decodes at 1/2, a quarter of
// the pixels — and the boxes are scaled with it. The TurboJPEG 2.x API has
// no region decoding (that came with 3.0), so this scale is how only what
// the crops need is decoded.
func (it *Iter) fillTurbo(w *worker, b *Batch, j, idx int, smp Sample) (ok bool, err error) {
	l := it.l
	data := smp.Data
	if l.opt.GoJPEG || len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 || turbojpeg.Available() != nil {
		return false, nil
	}
	if w.tj == nil {
		if w.tj, err = turbojpeg.NewDecoder(); err != nil {
			return false, nil
		}
	}
	hd, err := w.tj.Header(data)
	if err != nil || !hd.Convertible || hd.Width <= 0 || hd.Height <= 0 ||
		int64(hd.Width)*int64(hd.Height) > maxDecodePixels {
		return false, nil
	}
	h, wd := hd.Height, hd.Width
	minH, minW := h, wd
	rotated := false
	for v := 0; v < b.Views; v++ {
		p := &b.Params[v*b.N+j]
		if l.opt.NoAugment {
			*p = augment.Params{CropH: int32(h), CropW: int32(wd), Brightness: 1, Contrast: 1, Saturation: 1}
		} else {
			*p = augment.Draw(&l.aug, augment.ViewKey(l.opt.Seed, it.epoch, idx, v), h, wd)
		}
		minH, minW = min(minH, int(p.CropH)), min(minW, int(p.CropW))
		rotated = rotated || p.Angle != 0
	}
	sf := turbojpeg.Scale{Num: 1, Denom: 1}
	if !rotated {
		// The scale that keeps the smallest crop at least the output's
		// size keeps every crop so.
		sf = turbojpeg.ScaleFor(minW, minH, l.aug.OutW, l.aug.OutH)
	}
	sh, sw := sf.Apply(h), sf.Apply(wd)
	c := 3
	if hd.Gray {
		c = 1 // as the image/jpeg path: a gray JPEG gives a one-channel image
	}
	w.dec.pix = grow8(w.dec.pix, sh*sw*c)
	if w.tj.Decode(data, hd, sf, w.dec.pix, c) != nil {
		return false, nil
	}
	img := augment.Image{Pix: w.dec.pix, H: sh, W: sw, C: c}
	b.Labels[j] = smp.Label
	vl := l.viewLen
	for v := 0; v < b.Views; v++ {
		row := v*b.N + j
		p := b.Params[row] // the drawn (full-size) parameters stay in the batch
		if sh != h || sw != wd {
			scaleBox(&p, h, wd, sh, sw)
		}
		if l.opt.Output == Floats {
			err = w.aug.Apply(b.X[row*vl:(row+1)*vl], img, &p)
		} else {
			err = w.crop8(b.X8[row*vl:(row+1)*vl], img, &p, l.aug.OutH, l.aug.OutW)
		}
		if err != nil {
			return true, fmt.Errorf("sample %d view %d: %w", idx, v, err)
		}
	}
	return true, nil
}

// scaleBox maps a crop box drawn on an h×w image onto the same image
// decoded at sh×sw, rounding to the nearest pixel and keeping it inside.
func scaleBox(p *augment.Params, h, w, sh, sw int) {
	r := image.Rect(int(p.Left), int(p.Top), int(p.Left+p.CropW), int(p.Top+p.CropH))
	top := (r.Min.Y*sh + h/2) / h
	left := (r.Min.X*sw + w/2) / w
	ch := max(1, (r.Dy()*sh+h/2)/h)
	cw := max(1, (r.Dx()*sw+w/2)/w)
	top = min(top, sh-ch)
	left = min(left, sw-cw)
	p.Top, p.Left, p.CropH, p.CropW = int32(max(top, 0)), int32(max(left, 0)), int32(min(ch, sh)), int32(min(cw, sw))
}

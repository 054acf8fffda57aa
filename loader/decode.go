package loader

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registered decoders for encoded samples
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"github.com/tsimcne/tsimcne-go/augment"
)

// decoder turns an encoded sample into an HWC uint8 image. One per worker:
// its reader and pixel buffer are reused, so after warm-up the only
// allocations left are those inside the standard library decoders.
type decoder struct {
	rd  bytes.Reader
	pix []uint8
}

// decode decodes data once; both views are then cut from the result.
// Gray images stay one channel, everything else becomes RGB (alpha dropped).
func (d *decoder) decode(data []byte) (augment.Image, error) {
	d.rd.Reset(data)
	m, _, err := image.Decode(&d.rd)
	if err != nil {
		return augment.Image{}, err
	}
	b := m.Bounds()
	h, w := b.Dy(), b.Dx()
	if h <= 0 || w <= 0 {
		return augment.Image{}, fmt.Errorf("empty %dx%d image", w, h)
	}
	switch m := m.(type) {
	case *image.Gray:
		d.pix = grow8(d.pix, h*w)
		for y := 0; y < h; y++ {
			copy(d.pix[y*w:(y+1)*w], m.Pix[y*m.Stride:])
		}
		return augment.Image{Pix: d.pix, H: h, W: w, C: 1}, nil
	case *image.YCbCr:
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			row := d.pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				row[3*x], row[3*x+1], row[3*x+2] = r, g, bl
			}
		}
	case *image.RGBA:
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride:]
			row := d.pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				row[3*x], row[3*x+1], row[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
	case *image.NRGBA:
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride:]
			row := d.pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				row[3*x], row[3*x+1], row[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
	default: // paletted, CMYK, 16-bit, ...: the generic (slow) path
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o := (y*w + x) * 3
				d.pix[o], d.pix[o+1], d.pix[o+2] = c.R, c.G, c.B
			}
		}
	}
	return augment.Image{Pix: d.pix, H: h, W: w, C: 3}, nil
}

func grow8(s []uint8, n int) []uint8 {
	if cap(s) < n {
		return make([]uint8, n)
	}
	return s[:n]
}

// dropAlpha copies raw RGBA pixels to RGB.
func (d *decoder) dropAlpha(src []byte, h, w int) augment.Image {
	d.pix = grow8(d.pix, h*w*3)
	for i := 0; i < h*w; i++ {
		d.pix[3*i], d.pix[3*i+1], d.pix[3*i+2] = src[4*i], src[4*i+1], src[4*i+2]
	}
	return augment.Image{Pix: d.pix, H: h, W: w, C: 3}
}

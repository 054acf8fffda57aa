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

// maxDecodePixels bounds the size of an image the loader decodes: a damaged
// or hostile header must not make the decoder allocate gigabytes.
const maxDecodePixels = 1 << 26

// decode decodes an encoded sample once; both views are then cut from it.
func (d *decoder) decode(data []byte) (image.Image, error) {
	w, h, ok := jpegSize(data)
	if !ok { // not a JPEG (or no frame header found): ask the registered decoder
		d.rd.Reset(data)
		cfg, _, err := image.DecodeConfig(&d.rd)
		if err != nil {
			return nil, err
		}
		w, h = cfg.Width, cfg.Height
	}
	if w <= 0 || h <= 0 || int64(w)*int64(h) > maxDecodePixels {
		return nil, fmt.Errorf("image header says %dx%d pixels (limit %d)", w, h, maxDecodePixels)
	}
	d.rd.Reset(data)
	m, _, err := image.Decode(&d.rd)
	if err != nil {
		return nil, err
	}
	if b := m.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("empty %dx%d image", b.Dx(), b.Dy())
	}
	return m, nil
}

// jpegSize reads the frame size from a JPEG's SOF segment by walking the
// marker segments, without allocating (image.DecodeConfig would build a
// whole decoder, ≈ 18 KB, per image). ok is false when data is not a JPEG
// or has no frame header before the end.
func jpegSize(data []byte) (w, h int, ok bool) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 0, 0, false
	}
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return 0, 0, false
		}
		m := data[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || (m >= 0xD0 && m <= 0xD9): // markers without a length
			i += 2
			continue
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC { // SOFn
			if i+9 > len(data) || n < 7 {
				return 0, 0, false
			}
			h = int(data[i+5])<<8 | int(data[i+6])
			w = int(data[i+7])<<8 | int(data[i+8])
			return w, h, true
		}
		i += 2 + n
	}
	return 0, 0, false
}

// pixels converts the region r (relative to the image's top-left corner) of
// a decoded image to HWC uint8: gray images stay one channel, everything else
// becomes RGB (alpha dropped). Only the region the crops need is converted,
// as DALI does (YCbCr→RGB is a quarter of a JPEG's decode time).
func (d *decoder) pixels(m image.Image, r image.Rectangle) augment.Image {
	b := m.Bounds()
	h, w := r.Dy(), r.Dx()
	x0, y0 := b.Min.X+r.Min.X, b.Min.Y+r.Min.Y
	switch m := m.(type) {
	case *image.Gray:
		d.pix = grow8(d.pix, h*w)
		for y := 0; y < h; y++ {
			o := m.PixOffset(x0, y0+y)
			copy(d.pix[y*w:(y+1)*w], m.Pix[o:o+w])
		}
		return augment.Image{Pix: d.pix, H: h, W: w, C: 1}
	case *image.YCbCr:
		d.pix = grow8(d.pix, h*w*3)
		ycbcrRows(d.pix, m, x0, y0, w, h)
	case *image.RGBA:
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(x0, y0+y):]
			rgbaRow(d.pix[y*w*3:(y+1)*w*3], src)
		}
	case *image.NRGBA:
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(x0, y0+y):]
			rgbaRow(d.pix[y*w*3:(y+1)*w*3], src)
		}
	default: // paletted, CMYK, 16-bit, ...: the generic (slow) path
		d.pix = grow8(d.pix, h*w*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(m.At(x0+x, y0+y)).(color.NRGBA)
				o := (y*w + x) * 3
				d.pix[o], d.pix[o+1], d.pix[o+2] = c.R, c.G, c.B
			}
		}
	}
	return augment.Image{Pix: d.pix, H: h, W: w, C: 3}
}

// rgbaRow drops the alpha byte of a row (straight copy of R, G, B).
func rgbaRow(dst, src []byte) {
	for x := 0; x < len(dst)/3; x++ {
		dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
	}
}

// ycbcrRows converts a w×h region at (x0, y0) of a YCbCr image to RGB with
// the standard library's fixed-point formula (color.YCbCrToRGB, inlined and
// with the chroma position computed per row, not per pixel).
func ycbcrRows(dst []byte, m *image.YCbCr, x0, y0, w, h int) {
	// Chroma subsampling: horizontal and vertical shifts of the chroma planes.
	var sx, sy uint
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		sx = 1
	case image.YCbCrSubsampleRatio420:
		sx, sy = 1, 1
	case image.YCbCrSubsampleRatio440:
		sy = 1
	case image.YCbCrSubsampleRatio411:
		sx = 2
	case image.YCbCrSubsampleRatio410:
		sx, sy = 2, 1
	}
	r0 := m.Rect.Min
	for y := 0; y < h; y++ {
		yy := y0 + y
		yrow := m.Y[(yy-r0.Y)*m.YStride:]
		crow := (yy>>sy - r0.Y>>sy) * m.CStride
		cb, cr := m.Cb[crow:], m.Cr[crow:]
		out := dst[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			xx := x0 + x
			ci := xx>>sx - r0.X>>sx
			yy1 := int32(yrow[xx-r0.X]) * 0x10101
			cb1 := int32(cb[ci]) - 128
			cr1 := int32(cr[ci]) - 128
			r := yy1 + 91881*cr1
			if uint32(r)&0xff000000 == 0 {
				r >>= 16
			} else {
				r = ^(r >> 31)
			}
			g := yy1 - 22554*cb1 - 46802*cr1
			if uint32(g)&0xff000000 == 0 {
				g >>= 16
			} else {
				g = ^(g >> 31)
			}
			b := yy1 + 116130*cb1
			if uint32(b)&0xff000000 == 0 {
				b >>= 16
			} else {
				b = ^(b >> 31)
			}
			out[3*x], out[3*x+1], out[3*x+2] = uint8(r), uint8(g), uint8(b)
		}
	}
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

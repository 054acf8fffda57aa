// Package sampleimg turns packed samples into images exactly as `pack get`
// does, for the viewer's thumbnails and the thumbnail figure.
package sampleimg

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"sync"

	_ "image/gif"  // register GIF for encoded samples
	_ "image/jpeg" // register JPEG for encoded samples

	_ "golang.org/x/image/bmp"  // register BMP for encoded samples
	_ "golang.org/x/image/webp" // register WebP for encoded samples

	"github.com/tsimcne/tsimcne-go/format"
)

// Image turns a sample into an image exactly as `pack get` does: raw
// pixels are wrapped without conversion, encoded files are decoded. The
// thumbnail endpoint's PNG at full size must equal `pack get`'s file, so
// this stays a copy of that command's function.
func Image(s *format.Sample) (image.Image, error) {
	if s.Encoded {
		img, _, err := image.Decode(bytes.NewReader(s.Data))
		if err != nil {
			return nil, fmt.Errorf("sampleimg: decode %v: %w", s.Format, err)
		}
		return img, nil
	}
	h, w := s.Height, s.Width
	if len(s.Data) != h*w*s.Channels {
		return nil, fmt.Errorf("sampleimg: %d bytes for %dx%dx%d pixels", len(s.Data), w, h, s.Channels)
	}
	rect := image.Rect(0, 0, w, h)
	switch s.Channels {
	case 1:
		return &image.Gray{Pix: s.Data, Stride: w, Rect: rect}, nil
	case 3:
		img := image.NewNRGBA(rect)
		for i, j := 0, 0; i < len(s.Data); i, j = i+3, j+4 {
			img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = s.Data[i], s.Data[i+1], s.Data[i+2], 255
		}
		return img, nil
	case 4:
		return &image.NRGBA{Pix: s.Data, Stride: 4 * w, Rect: rect}, nil
	}
	return nil, fmt.Errorf("sampleimg: %d channels", s.Channels)
}

// ScaleToFit resizes img so that its longer side is size pixels, by
// nearest-neighbour sampling: thumbnails of small images (MNIST's 28×28)
// stay crisp instead of blurred. An image already that size is returned as
// it is.
func ScaleToFit(img image.Image, size int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w == 0 || h == 0 || max(w, h) == size {
		return img
	}
	nw, nh := max(1, w*size/max(w, h)), max(1, h*size/max(w, h))
	if g, ok := img.(*image.Gray); ok {
		out := image.NewGray(image.Rect(0, 0, nw, nh))
		for y := range nh {
			sy := b.Min.Y + y*h/nh
			for x := range nw {
				out.Pix[y*out.Stride+x] = g.GrayAt(b.Min.X+x*w/nw, sy).Y
			}
		}
		return out
	}
	out := image.NewNRGBA(image.Rect(0, 0, nw, nh))
	for y := range nh {
		sy := b.Min.Y + y*h/nh
		for x := range nw {
			out.Set(x, y, img.At(b.Min.X+x*w/nw, sy))
		}
	}
	return out
}

// EncodePNG is png.Encode into memory with the default settings, the same
// encoder and settings `pack get` uses, so the bytes are the same. The
// encoder's state (its zlib writer is most of a megabyte) is reused through
// a pool: allocating it per thumbnail costs more than the encoding.
func EncodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression, BufferPool: &encoderPool}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// pngPool is a png.EncoderBufferPool over a sync.Pool.
type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

var encoderPool pngPool

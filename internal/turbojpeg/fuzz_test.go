package turbojpeg_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"testing"

	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// fuzzMaxPixels bounds the images the fuzzer decodes: a 20-byte header can
// claim 65535×65535, and decoding that at every scale would make the
// target measure allocation, not parsing. Larger headers are still read.
const fuzzMaxPixels = 1 << 20

// fuzzScales are the DCT scales pack uses (ScaleFor) and the full size.
var fuzzScales = []turbojpeg.Scale{{1, 1}, {1, 2}, {1, 4}, {1, 8}}

// FuzzTurboJPEG feeds arbitrary bytes to libjpeg-turbo through Header and
// Decode at each DCT scale, gray or RGB: an error or an image, never a
// crash. Where image/jpeg decodes the same bytes too, the sizes must agree.
// On CI (CI=true, where .ci/run installs libturbojpeg0) a library that
// cannot be loaded fails the target instead of skipping it.
func FuzzTurboJPEG(f *testing.F) {
	d, err := turbojpeg.NewDecoder()
	if err != nil {
		if os.Getenv("CI") == "true" {
			f.Fatalf("libturbojpeg0 is missing on CI: %v", err)
		}
		f.Skipf("libjpeg-turbo unavailable: %v", err)
	}
	defer d.Close()
	rgb := image.NewRGBA(image.Rect(0, 0, 17, 9))
	for i := range rgb.Pix {
		rgb.Pix[i] = byte(i * 13)
	}
	gray := image.NewGray(image.Rect(0, 0, 8, 16))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i * 5)
	}
	for _, m := range []image.Image{rgb, gray, image.NewRGBA(image.Rect(0, 0, 1, 1))} {
		for _, q := range []int{50, 100} {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: q}); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes(), false)
			f.Add(buf.Bytes(), true)
			f.Add(buf.Bytes()[:buf.Len()*2/3], false)
		}
	}
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9}, false)
	var probe bytes.Buffer
	if err := jpeg.Encode(&probe, rgb, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, grayOut bool) {
		fuzzDecode(t, d, data, grayOut)
		// Whatever data did to the decoder, it must still read a good
		// JPEG: a handle left broken by a failed call would send every
		// later file of a pack worker to the slow fallback.
		if hd, err := d.Header(probe.Bytes()); err != nil || hd.Width != 17 || hd.Height != 9 {
			t.Fatalf("after this input the decoder reads a good 17x9 JPEG as %+v, %v", hd, err)
		}
		if err := d.Decode(probe.Bytes(), turbojpeg.Header{Width: 17, Height: 9, Convertible: true}, turbojpeg.Scale{1, 2}, make([]byte, 9*5*3), 3); err != nil {
			t.Fatalf("after this input the decoder fails on a good JPEG: %v", err)
		}
	})
}

// fuzzDecode reads data's header and decodes it at every scale.
func fuzzDecode(t *testing.T, d *turbojpeg.Decoder, data []byte, grayOut bool) {
	hd, err := d.Header(data)
	if err != nil {
		return
	}
	if hd.Width <= 0 || hd.Height <= 0 {
		t.Fatalf("header accepted with size %dx%d", hd.Width, hd.Height)
	}
	if !hd.Convertible || hd.Width*hd.Height > fuzzMaxPixels {
		return
	}
	ch := 3
	if grayOut {
		ch = 1
	}
	full := false
	for _, s := range fuzzScales {
		w, h := s.Apply(hd.Width), s.Apply(hd.Height)
		if w <= 0 || h <= 0 || w > hd.Width || h > hd.Height {
			t.Fatalf("scale %v of %dx%d gives %dx%d", s, hd.Width, hd.Height, w, h)
		}
		dst := make([]byte, w*h*ch)
		if err := d.Decode(data, hd, s, dst, ch); err == nil && s == (turbojpeg.Scale{1, 1}) {
			full = true
		}
	}
	if !full {
		return
	}
	if ref, err := jpeg.Decode(bytes.NewReader(data)); err == nil {
		if b := ref.Bounds(); b.Dx() != hd.Width || b.Dy() != hd.Height {
			t.Fatalf("libjpeg-turbo decoded %dx%d, image/jpeg %v", hd.Width, hd.Height, b)
		}
	}
}

package turbojpeg_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// BenchmarkDecode256 decodes a 256×256 q90 JPEG at full size; run with
// -cpu 1,2 to see that decoders on several goroutines scale.
func BenchmarkDecode256(b *testing.B) {
	if err := turbojpeg.Available(); err != nil {
		b.Skip(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = byte(i*7 + i/1024)
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	data := buf.Bytes()
	b.SetBytes(256 * 256 * 3)
	b.RunParallel(func(pb *testing.PB) {
		d, err := turbojpeg.NewDecoder()
		if err != nil {
			b.Error(err)
			return
		}
		defer d.Close()
		hd, _ := d.Header(data)
		dst := make([]byte, 256*256*3)
		for pb.Next() {
			if err := d.Decode(data, hd, turbojpeg.Scale{1, 1}, dst, 3); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDecode256Go is BenchmarkDecode256 with image/jpeg, the baseline.
func BenchmarkDecode256Go(b *testing.B) {
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = byte(i*7 + i/1024)
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	data := buf.Bytes()
	b.SetBytes(256 * 256 * 3)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package loader

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
)

// TestRegionConversion: converting a region of a decoded image gives exactly
// the standard library's colours, for every chroma subsampling and for
// images whose bounds do not start at the origin.
func TestRegionConversion(t *testing.T) {
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	rect := image.Rect(3, 5, 40, 31)
	var d decoder
	fill := func(b []byte, seed uint64) {
		for i := range b {
			b[i] = uint8(augment.U64(seed, uint64(i)))
		}
	}
	check := func(name string, m image.Image, region image.Rectangle) {
		img := d.pixels(m, region)
		if img.H != region.Dy() || img.W != region.Dx() {
			t.Fatalf("%s: %dx%d image for a %v region", name, img.W, img.H, region)
		}
		for y := 0; y < img.H; y++ {
			for x := 0; x < img.W; x++ {
				c := color.NRGBAModel.Convert(m.At(rect.Min.X+region.Min.X+x, rect.Min.Y+region.Min.Y+y)).(color.NRGBA)
				o := (y*img.W + x) * img.C
				if img.C == 1 {
					if img.Pix[o] != c.R {
						t.Fatalf("%s (%d,%d): gray %d, want %d", name, x, y, img.Pix[o], c.R)
					}
					continue
				}
				if img.Pix[o] != c.R || img.Pix[o+1] != c.G || img.Pix[o+2] != c.B {
					t.Fatalf("%s (%d,%d): %v, want %v", name, x, y, img.Pix[o:o+3], c)
				}
			}
		}
	}
	for _, r := range ratios {
		m := image.NewYCbCr(rect, r)
		fill(m.Y, 1)
		fill(m.Cb, 2)
		fill(m.Cr, 3)
		for _, region := range []image.Rectangle{image.Rect(0, 0, 37, 26), image.Rect(1, 3, 30, 20), image.Rect(5, 1, 6, 2)} {
			check(r.String(), m, region)
		}
	}
	g := image.NewGray(rect)
	fill(g.Pix, 4)
	check("gray", g, image.Rect(2, 2, 20, 9))
	n := image.NewNRGBA(rect)
	fill(n.Pix, 5)
	for i := 3; i < len(n.Pix); i += 4 {
		n.Pix[i] = 255
	}
	check("nrgba", n, image.Rect(1, 4, 33, 25))
	p := image.NewPaletted(rect, color.Palette{color.Black, color.White, color.RGBA{200, 10, 30, 255}})
	fill(p.Pix, 6)
	for i := range p.Pix {
		p.Pix[i] %= 3
	}
	check("paletted", p, image.Rect(0, 0, 10, 10))
}

// TestDecodeBomb: a header announcing an enormous image is refused before
// anything is allocated for it.
func TestDecodeBomb(t *testing.T) {
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	// PNG IHDR: type at 12..15, width and height at 16..23, CRC at 29..32.
	binary.BigEndian.PutUint32(b[16:], 1<<20)
	binary.BigEndian.PutUint32(b[20:], 1<<20)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width != 1<<20 {
		t.Fatalf("test header not valid: %v %v", cfg, err)
	}
	var d decoder
	_, err := d.decode(b)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("a 2⁴⁰-pixel header: %v", err)
	}
}

// TestJPEGSize: the marker walk finds the frame size of JPEGs the standard
// encoder writes, and of one with a hostile size, without decoding.
func TestJPEGSize(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {37, 23}, {256, 256}, {640, 17}} {
		var buf bytes.Buffer
		_ = jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, sz[0], sz[1])), nil)
		w, h, ok := jpegSize(buf.Bytes())
		if !ok || w != sz[0] || h != sz[1] {
			t.Fatalf("%v: got %dx%d ok=%v", sz, w, h, ok)
		}
		b := buf.Bytes()
		// Find SOF0 and claim 60000×60000 pixels.
		i := bytes.Index(b, []byte{0xFF, 0xC0})
		binary.BigEndian.PutUint16(b[i+5:], 60000)
		binary.BigEndian.PutUint16(b[i+7:], 60000)
		var d decoder
		if _, err := d.decode(b); err == nil || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("60000×60000 JPEG header: %v", err)
		}
	}
	for _, bad := range [][]byte{nil, {0xFF}, {0xFF, 0xD8}, {0xFF, 0xD8, 0x00, 0x00}, {0xFF, 0xD8, 0xFF, 0xC0, 0, 2}} {
		if _, _, ok := jpegSize(bad); ok {
			t.Fatalf("%x: size found in a truncated header", bad)
		}
	}
}

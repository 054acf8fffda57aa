package turbojpeg_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsimcne/tsimcne-go/internal/photos"
	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// need returns a decoder, skipping the test when libjpeg-turbo is missing,
// except on CI, whose .ci/run installs libturbojpeg0: there it fails.
func need(t *testing.T) *turbojpeg.Decoder {
	t.Helper()
	d, err := turbojpeg.NewDecoder()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("libturbojpeg0 is missing on CI: %v", err)
		}
		t.Skipf("libjpeg-turbo unavailable: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// photoJPEGs cuts n crops of real photographs (mate-backgrounds).
func photoJPEGs(t *testing.T, n int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	if _, err := photos.Cut(dir, photos.Options{N: n, Seed: 7}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.jpg"))
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Tolerance of Decode against image/jpeg (plus the standard library's
// YCbCr→RGB), documented in the package comment and README: the IDCTs and
// colour rounding differ, so single pixels may differ by a few levels, but
// the mean absolute difference stays well under one level.
const (
	maxAbsDiff  = 5
	maxMeanDiff = 0.5
)

// TestMatchesImageJPEG decodes real photographs with both decoders.
func TestMatchesImageJPEG(t *testing.T) {
	d := need(t)
	for k, data := range photoJPEGs(t, 24) {
		hd, err := d.Header(data)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if b := ref.Bounds(); b.Dx() != hd.Width || b.Dy() != hd.Height || hd.Gray || !hd.Convertible {
			t.Fatalf("image %d: header %+v, image/jpeg %v", k, hd, b)
		}
		got := make([]byte, hd.Width*hd.Height*3)
		if err := d.Decode(data, hd, turbojpeg.Scale{1, 1}, got, 3); err != nil {
			t.Fatal(err)
		}
		var sum, worst int
		for y := 0; y < hd.Height; y++ {
			for x := 0; x < hd.Width; x++ {
				c := color.RGBAModel.Convert(ref.At(x, y)).(color.RGBA)
				o := (y*hd.Width + x) * 3
				for i, v := range []uint8{c.R, c.G, c.B} {
					diff := int(got[o+i]) - int(v)
					diff = max(diff, -diff)
					sum += diff
					worst = max(worst, diff)
				}
			}
		}
		mean := float64(sum) / float64(len(got))
		t.Logf("image %d (%dx%d): max |diff| %d, mean %.3f", k, hd.Width, hd.Height, worst, mean)
		if worst > maxAbsDiff || mean > maxMeanDiff {
			t.Errorf("image %d: libjpeg-turbo differs from image/jpeg by up to %d levels (mean %.3f); tolerance %d (mean %.2f)",
				k, worst, mean, maxAbsDiff, maxMeanDiff)
		}
	}
}

// TestScaledDecode checks that a 1/4-scale decode has the scaled size and
// is close to a box average of the full decode (what DCT scaling computes).
func TestScaledDecode(t *testing.T) {
	d := need(t)
	data := photoJPEGs(t, 1)[0]
	hd, err := d.Header(data)
	if err != nil {
		t.Fatal(err)
	}
	s := turbojpeg.ScaleFor(hd.Width, hd.Height, hd.Width/4, hd.Height/4)
	if s != (turbojpeg.Scale{1, 4}) {
		t.Fatalf("turbojpeg.ScaleFor(%d, %d, /4) = %v, want 1/4", hd.Width, hd.Height, s)
	}
	if got := turbojpeg.ScaleFor(hd.Width, hd.Height, hd.Width, hd.Height); got != (turbojpeg.Scale{1, 1}) {
		t.Fatalf("ScaleFor at full size = %v", got)
	}
	full := make([]byte, hd.Width*hd.Height*3)
	if err := d.Decode(data, hd, turbojpeg.Scale{1, 1}, full, 3); err != nil {
		t.Fatal(err)
	}
	w, h := s.Apply(hd.Width), s.Apply(hd.Height)
	small := make([]byte, w*h*3)
	if err := d.Decode(data, hd, s, small, 3); err != nil {
		t.Fatal(err)
	}
	var sum float64
	n := 0
	for y := 0; y+1 < h && 4*y+3 < hd.Height; y++ {
		for x := 0; x+1 < w && 4*x+3 < hd.Width; x++ {
			for c := 0; c < 3; c++ {
				box := 0
				for dy := 0; dy < 4; dy++ {
					for dx := 0; dx < 4; dx++ {
						box += int(full[((4*y+dy)*hd.Width+4*x+dx)*3+c])
					}
				}
				diff := float64(small[(y*w+x)*3+c]) - float64(box)/16
				sum += max(diff, -diff)
				n++
			}
		}
	}
	if mean := sum / float64(n); mean > 3 {
		t.Errorf("1/4-scale decode differs from the 4×4 box average of the full decode by %.2f levels on average", mean)
	} else {
		t.Logf("1/4 scale: mean |diff| to the box average %.2f", mean)
	}
}

// TestGrayAndErrors covers a grayscale JPEG and garbage input.
func TestGrayAndErrors(t *testing.T) {
	d := need(t)
	g := image.NewGray(image.Rect(0, 0, 40, 30))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, g, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	hd, err := d.Header(buf.Bytes())
	if err != nil || !hd.Gray || hd.Width != 40 || hd.Height != 30 {
		t.Fatalf("gray header %+v, %v", hd, err)
	}
	out := make([]byte, 40*30)
	if err := d.Decode(buf.Bytes(), hd, turbojpeg.Scale{1, 1}, out, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Header([]byte("not a jpeg at all")); err == nil {
		t.Error("garbage header accepted")
	}
	trunc := buf.Bytes()[:buf.Len()/2]
	if err := d.Decode(trunc, hd, turbojpeg.Scale{1, 1}, out, 1); err == nil {
		t.Error("truncated JPEG decoded without error or warning")
	}
	if err := d.Decode(buf.Bytes(), hd, turbojpeg.Scale{1, 1}, out[:10], 1); err == nil {
		t.Error("short destination accepted")
	}
}

// TestFallbackName checks that a missing library is reported, not fatal.
func TestFallbackName(t *testing.T) {
	if turbojpeg.Available() == nil && turbojpeg.Name() == "" {
		t.Fatal("empty name")
	}
	t.Log(turbojpeg.Name())
}

// TestRecoversAfterError checks that a decoder whose call failed still
// decodes the next good JPEG: TurboJPEG 2.x left the handle broken, and
// every later image of that pack worker fell back to image/jpeg.
func TestRecoversAfterError(t *testing.T) {
	d := need(t)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 17, 9)), nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	bad := good[:len(good)*2/3] // cut inside the Huffman tables
	for i := 0; i < 3; i++ {
		if _, err := d.Header(bad); err == nil {
			t.Fatal("truncated header accepted")
		}
		hd, err := d.Header(good)
		if err != nil || hd.Width != 17 || hd.Height != 9 {
			t.Fatalf("round %d: good JPEG after a failed one: %+v, %v", i, hd, err)
		}
		if err := d.Decode(good, hd, turbojpeg.Scale{1, 1}, make([]byte, 17*9*3), 3); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
}

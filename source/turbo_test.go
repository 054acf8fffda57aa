package source

import (
	"os"
	"testing"

	"github.com/tsimcne/tsimcne-go/internal/photos"
	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// needTurbo skips without libjpeg-turbo, except on CI (which installs
// libturbojpeg0 and mate-backgrounds), where it fails.
func needTurbo(t *testing.T) string {
	t.Helper()
	if err := turbojpeg.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("libturbojpeg0 is missing on CI: %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	if _, err := photos.Cut(dir, photos.Options{N: 24, Seed: 3}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return dir
}

// TestTurboMatchesGoDecoder loads real photographs with libjpeg-turbo and
// with image/jpeg under every conversion option and bounds the difference.
// The bounds are the documented tolerance (README, "JPEG decoding"): at full
// size a few levels per pixel, mean under half a level; with a resize that
// uses DCT-domain scaling, the scaling's block average replaces part of the
// bilinear filter's pixel average, which moves edges by a fraction of a
// source pixel: up to ~20% of the range on single pixels at sharp edges,
// but under 2% of the values differ by more than 8 levels and the mean stays
// under 1.5 levels.
func TestTurboMatchesGoDecoder(t *testing.T) {
	dir := needTurbo(t)
	for _, c := range []struct {
		name          string
		opt           Options
		maxAbs        int
		maxMean       float64
		wantEncodedEq bool
	}{
		{"rgb", Options{}, 5, 0.5, false},
		{"luma", Options{Channels: 1}, 4, 0.5, false},
		{"resize64", Options{ResizeW: 64, ResizeH: 64}, 64, 1.5, false},
		{"resize64luma", Options{ResizeW: 64, ResizeH: 48, Channels: 1}, 64, 1.5, false},
		{"resize200", Options{ResizeW: 200, ResizeH: 150}, 64, 1.5, false},
		{"keep", Options{KeepEncoded: true}, 0, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tu, err := Open([]string{dir}, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			gopt := c.opt
			gopt.GoJPEG = true
			gd, err := Open([]string{dir}, gopt)
			if err != nil {
				t.Fatal(err)
			}
			var a, b Sample
			worst, sum, n, over8 := 0, 0, 0, 0
			for i := 0; i < tu.Len(); i++ {
				if err := tu.Load(i, &a); err != nil {
					t.Fatal(err)
				}
				if err := gd.Load(i, &b); err != nil {
					t.Fatal(err)
				}
				if a.Height != b.Height || a.Width != b.Width || a.Channels != b.Channels || a.Label != b.Label ||
					a.Name != b.Name || a.Format != "jpeg" || b.Format != "jpeg" || len(a.Pixels) != len(b.Pixels) {
					t.Fatalf("sample %d: turbo %dx%dx%d %q %s, Go %dx%dx%d %q %s", i, a.Height, a.Width, a.Channels, a.Name, a.Format,
						b.Height, b.Width, b.Channels, b.Name, b.Format)
				}
				if c.wantEncodedEq && string(a.Encoded) != string(b.Encoded) {
					t.Fatalf("sample %d: encoded bytes differ", i)
				}
				for k := range a.Pixels {
					d := int(a.Pixels[k]) - int(b.Pixels[k])
					d = max(d, -d)
					worst = max(worst, d)
					sum += d
					n++
					if d > 8 {
						over8++
					}
				}
			}
			mean := 0.0
			if n > 0 {
				mean = float64(sum) / float64(n)
			}
			t.Logf("%s: max |diff| %d, mean %.3f, %d of %d values off by more than 8", c.name, worst, mean, over8, n)
			if worst > c.maxAbs || mean > c.maxMean || over8*50 > n {
				t.Errorf("libjpeg-turbo vs image/jpeg: max %d mean %.3f; tolerance %d / %.2f", worst, mean, c.maxAbs, c.maxMean)
			}
		})
	}
}

// TestTurboDamagedJPEG: a truncated JPEG gets image/jpeg's verdict (an
// error naming the file), whichever decoder runs first.
func TestTurboDamagedJPEG(t *testing.T) {
	dir := needTurbo(t)
	ds, err := Open([]string{dir}, Options{ResizeW: 32, ResizeH: 32})
	if err != nil {
		t.Fatal(err)
	}
	fd := ds.(*folderDataset)
	p := fd.items[0].path
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b[:len(b)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	var s Sample
	err = ds.Load(0, &s)
	if err == nil {
		t.Fatal("truncated JPEG loaded without error")
	}
	t.Log(err)
}

package loader

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/internal/photos"
	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// TestTurboMatchesGoDecoder runs the same epoch over 256×256 JPEG photographs
// with libjpeg-turbo (DCT-scaled decoding) and with image/jpeg: the drawn
// parameters must be identical and the 64×64 crops close — the documented
// tolerance is a mean difference under 3 levels (the scaled decode averages
// DCT blocks where the resize averages pixels, and the scaled boxes are
// rounded to whole pixels of the smaller image).
func TestTurboMatchesGoDecoder(t *testing.T) {
	if err := turbojpeg.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("libturbojpeg0 is missing on CI: %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	if _, err := photos.Cut(dir, photos.Options{N: 48, Square: 256, Seed: 5}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.jpg"))
	src := &MemorySource{}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Samples = append(src.Samples, Sample{Label: int32(i % 12), Height: 256, Width: 256, Channels: 3, Data: b, Encoded: true})
	}
	run := func(goJPEG bool) *Batch {
		l, err := New(src, Options{BatchSize: len(files), Output: Crops8, Seed: 9, Workers: 2,
			Augment: augment.DefaultConfig(64, 64), GoJPEG: goJPEG})
		if err != nil {
			t.Fatal(err)
		}
		it, err := l.Epoch(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		cp := *b
		cp.X8 = append([]uint8(nil), b.X8...)
		cp.Params = append([]augment.Params(nil), b.Params...)
		cp.Indices = append([]int32(nil), b.Indices...)
		b.Release()
		it.Close()
		return &cp
	}
	tu, gd := run(false), run(true)
	for k := range tu.Params {
		if tu.Params[k] != gd.Params[k] || tu.Indices[k%tu.N] != gd.Indices[k%gd.N] {
			t.Fatalf("row %d: parameters differ: %+v vs %+v", k, tu.Params[k], gd.Params[k])
		}
	}
	sum := 0
	for k := range tu.X8 {
		d := int(tu.X8[k]) - int(gd.X8[k])
		sum += max(d, -d)
	}
	mean := float64(sum) / float64(len(tu.X8))
	t.Logf("libjpeg-turbo vs image/jpeg crops: mean |diff| %.3f over %d values", mean, len(tu.X8))
	if mean > 3 {
		t.Errorf("crops differ by %.3f levels on average; tolerance 3", mean)
	}
}

func TestScaleBox(t *testing.T) {
	p := augment.Params{Top: 10, Left: 200, CropH: 100, CropW: 56}
	scaleBox(&p, 256, 256, 128, 128)
	if p.Top != 5 || p.Left != 100 || p.CropH != 50 || p.CropW != 28 {
		t.Fatalf("%+v", p)
	}
	p = augment.Params{Top: 255, Left: 0, CropH: 1, CropW: 256}
	scaleBox(&p, 256, 256, 32, 32)
	if p.Top+p.CropH > 32 || p.CropH < 1 || p.CropW != 32 {
		t.Fatalf("%+v", p)
	}
}

// TestCrop8PassThrough: the copy equals Crop8's identity view exactly.
func TestCrop8PassThrough(t *testing.T) {
	a, err := augment.New(augment.DefaultConfig(32, 32))
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{aug: a}
	pix := make([]byte, 32*32*3)
	for i := range pix {
		pix[i] = byte(i*37 + i/7)
	}
	img := augment.Image{Pix: pix, H: 32, W: 32, C: 3}
	p := augment.Params{CropH: 32, CropW: 32, Brightness: 1, Contrast: 1, Saturation: 1}
	fast, slow := make([]byte, len(pix)), make([]byte, len(pix))
	if err := w.crop8(fast, img, &p, 32, 32); err != nil {
		t.Fatal(err)
	}
	if err := a.Crop8(slow, img, &p); err != nil {
		t.Fatal(err)
	}
	if string(fast) != string(slow) || string(fast) != string(pix) {
		t.Fatal("pass-through differs from Crop8's identity view")
	}
}

var _ Prefetcher = fileSource{} // a packed file reads ahead

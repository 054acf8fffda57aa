//go:build amd64 && !purego

package augment

import (
	"math"
	"testing"
)

// TestResampleKernelsMatchGo checks that the assembly kernels give the Go
// kernels' bits, through whole views (random crops of several sizes, both
// filters, flips) and through the kernels alone at lengths that exercise
// every tail (not a multiple of 64 or 16 bytes; row counts not a multiple
// of 4).
func TestResampleKernelsMatchGo(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this CPU")
	}
	defer func() { useAVX512 = true }()
	for _, sz := range [][4]int{{256, 256, 64, 64}, {200, 173, 64, 48}, {32, 32, 32, 32}, {96, 96, 96, 96}, {37, 301, 13, 7}} {
		for _, interp := range []Interp{BilinearAntialias, Bilinear} {
			cfg := DefaultConfig(sz[2], sz[3])
			cfg.Interp = interp
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			img := naturalImage(sz[0], sz[1], 3, 7)
			asm := make([]float32, a.ViewLen())
			ref := make([]float32, a.ViewLen())
			for i := 0; i < 300; i++ {
				p := a.Draw(ViewKey(3, 1, i, 0), img.H, img.W)
				useAVX512 = true
				if err := a.Geometry(asm, img, &p); err != nil {
					t.Fatal(err)
				}
				useAVX512 = false
				if err := a.Geometry(ref, img, &p); err != nil {
					t.Fatal(err)
				}
				for j := range ref {
					if math.Float32bits(asm[j]) != math.Float32bits(ref[j]) {
						t.Fatalf("%v interp %d view %d %+v: value %d is %v with AVX-512, %v in Go", sz, interp, i, p, j, asm[j], ref[j])
					}
				}
			}
		}
	}
	// The kernels alone, n = 1 … 200 bytes and 1 … 9 taps.
	src := naturalImage(10, 256, 1, 3).Pix
	for taps := 1; taps <= 9; taps++ {
		w := make([]float32, taps)
		for k := range w {
			w[k] = float32(k+1) / 7
		}
		for n := 1; n <= 200; n++ {
			got, want := make([]float32, n), make([]float32, n)
			useAVX512 = true
			vpass(got, src, 256, w)
			vpassGo(want, src, 256, w)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("vpass taps %d n %d: [%d] %v, want %v", taps, n, i, got[i], want[i])
				}
			}
		}
	}
	rowsrc := make([]float32, 7*100)
	for i := range rowsrc {
		rowsrc[i] = float32(math.Sin(float64(i)))
	}
	for rows := 1; rows <= 7; rows++ {
		for taps := 1; taps <= 5; taps++ {
			xs := []int32{0, 3, 3, 10, 20, 32 - int32(taps)}
			w := make([]float32, len(xs)*taps)
			for i := range w {
				w[i] = float32(i%5+1) / 9
			}
			got, want := make([]float32, rows*20), make([]float32, rows*20)
			useAVX512 = true
			hpass(got, 20, rowsrc, 100, rows, xs, w, taps)
			useAVX512 = false
			hpass(want, 20, rowsrc, 100, rows, xs, w, taps)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("hpass rows %d taps %d: [%d] %v, want %v", rows, taps, i, got[i], want[i])
				}
			}
		}
	}
}

// TestColorKernelsMatchGo checks each colour operation's assembly against
// its Go form, bit for bit, on views of natural-like images (with gray
// pixels, saturated ones and every hue sector) whose pixel counts are and
// are not multiples of 16, at factors on both sides of 1.
func TestColorKernelsMatchGo(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this CPU")
	}
	defer func() { useAVX512 = true }()
	ops := []struct {
		name string
		f    func(v []float32, x float32)
	}{
		{"brightness", adjustBrightness},
		{"contrast", adjustContrast},
		{"saturation", adjustSaturation},
		{"hue", func(v []float32, x float32) { adjustHue(v, x-1) }},
		{"gray", func(v []float32, _ float32) { toGray(v) }},
	}
	for _, side := range [][2]int{{64, 64}, {32, 32}, {13, 7}, {5, 3}, {17, 1}} {
		a, err := New(DefaultConfig(side[0], side[1]))
		if err != nil {
			t.Fatal(err)
		}
		img := naturalImage(90, 90, 3, 11)
		// Some gray and some clipped pixels.
		for i := 0; i < len(img.Pix); i += 3 * 7 {
			img.Pix[i+1], img.Pix[i+2] = img.Pix[i], img.Pix[i]
		}
		for i := 0; i < len(img.Pix); i += 3 * 11 {
			img.Pix[i], img.Pix[i+1] = 255, 0
		}
		base := make([]float32, a.ViewLen())
		for i := 0; i < 20; i++ {
			p := a.Draw(ViewKey(5, 0, i, 1), img.H, img.W)
			if err := a.Geometry(base, img, &p); err != nil {
				t.Fatal(err)
			}
			for _, op := range ops {
				for _, x := range []float32{0.6, 0.93, 1, 1.07, 1.4, 1.5, 0.5} {
					got, want := append([]float32(nil), base...), append([]float32(nil), base...)
					useAVX512 = true
					op.f(got, x)
					useAVX512 = false
					op.f(want, x)
					for j := range want {
						if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
							t.Fatalf("%s(%v) on %v view %d: value %d is %v with AVX-512, %v in Go", op.name, x, side, i, j, got[j], want[j])
						}
					}
				}
			}
		}
	}
}

package augment

import (
	"math"
	"testing"
	"unsafe"
)

func testImage(h, w, c int, seed uint64) Image {
	pix := make([]uint8, h*w*c)
	for i := range pix {
		pix[i] = uint8(U64(seed, uint64(i)))
	}
	return Image{Pix: pix, H: h, W: w, C: c}
}

func TestKeysDiffer(t *testing.T) {
	seen := map[uint64]bool{}
	for e := 0; e < 4; e++ {
		for i := 0; i < 500; i++ {
			for v := 0; v < 2; v++ {
				k := ViewKey(1, e, i, v)
				if seen[k] {
					t.Fatalf("key collision at epoch %d index %d view %d", e, i, v)
				}
				seen[k] = true
			}
		}
	}
	if ViewKey(1, 0, 0, 0) == ViewKey(2, 0, 0, 0) {
		t.Fatal("seed does not change the key")
	}
	// Uniform draws cover [0, 1) evenly.
	var sum float64
	for i := uint64(0); i < 100000; i++ {
		sum += Float64(42, i)
	}
	if m := sum / 100000; math.Abs(m-0.5) > 0.005 {
		t.Fatalf("mean of uniform draws %.4f", m)
	}
}

func TestDrawInvariants(t *testing.T) {
	cfg := DefaultConfig(32, 32)
	sizes := [][2]int{{1, 1}, {1, 50}, {50, 1}, {2, 3}, {32, 32}, {24, 40}, {300, 100}, {7, 1000}}
	var flips, jit, gray, n int
	perms := map[[4]uint8]int{}
	for _, s := range sizes {
		for i := 0; i < 2000; i++ {
			key := ViewKey(3, 1, i+10000*s[0]+s[1], i&1)
			p := Draw(&cfg, key, s[0], s[1])
			if p.CropH <= 0 || p.CropW <= 0 || p.Top < 0 || p.Left < 0 ||
				int(p.Top+p.CropH) > s[0] || int(p.Left+p.CropW) > s[1] {
				t.Fatalf("%v: crop box out of range: %+v", s, p)
			}
			if p != Draw(&cfg, key, s[0], s[1]) {
				t.Fatal("Draw is not deterministic")
			}
			n++
			if p.Flip {
				flips++
			}
			if p.Jitter {
				jit++
				perms[p.Order]++
				if p.Brightness < 0.6 || p.Brightness > 1.4 || p.Hue < -0.1 || p.Hue > 0.1 {
					t.Fatalf("jitter factors out of range: %+v", p)
				}
			}
			if p.Gray {
				gray++
			}
		}
	}
	frac := func(k int) float64 { return float64(k) / float64(n) }
	if math.Abs(frac(flips)-0.5) > 0.02 || math.Abs(frac(jit)-0.8) > 0.02 || math.Abs(frac(gray)-0.2) > 0.02 {
		t.Fatalf("probabilities: flip %.3f jitter %.3f gray %.3f", frac(flips), frac(jit), frac(gray))
	}
	if len(perms) != 24 {
		t.Fatalf("%d of 24 jitter orders seen", len(perms))
	}
	for o, c := range perms {
		if e := float64(jit) / 24; math.Abs(float64(c)-e) > 0.2*e {
			t.Fatalf("order %v drawn %d times, expected about %.0f", o, c, e)
		}
	}
}

func TestGraySourceReplicated(t *testing.T) {
	a, _ := New(DefaultConfig(16, 16))
	g := testImage(20, 20, 1, 5)
	rgb := Image{Pix: make([]uint8, 20*20*3), H: 20, W: 20, C: 3}
	for i, v := range g.Pix {
		rgb.Pix[3*i], rgb.Pix[3*i+1], rgb.Pix[3*i+2] = v, v, v
	}
	for i := 0; i < 50; i++ {
		p := a.Draw(ViewKey(9, 0, i, 0), 20, 20)
		x := make([]float32, a.ViewLen())
		y := make([]float32, a.ViewLen())
		if err := a.Apply(x, g, &p); err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(y, rgb, &p); err != nil {
			t.Fatal(err)
		}
		for j := range x {
			if math.Abs(float64(x[j]-y[j])) > 1e-5 {
				t.Fatalf("view %d: gray source differs from its RGB replica at %d: %g vs %g", i, j, x[j], y[j])
			}
		}
	}
}

func TestCrop8MatchesGeometry(t *testing.T) {
	a, _ := New(DefaultConfig(24, 24))
	img := testImage(40, 30, 3, 1)
	p := a.Draw(ViewKey(1, 2, 3, 0), 40, 30)
	f := make([]float32, a.ViewLen())
	u := make([]uint8, a.ViewLen())
	if err := a.Geometry(f, img, &p); err != nil {
		t.Fatal(err)
	}
	if err := a.Crop8(u, img, &p); err != nil {
		t.Fatal(err)
	}
	for i := range f {
		if d := math.Abs(float64(f[i]) - float64(u[i])/255); d > 0.5/255+1e-6 {
			t.Fatalf("uint8 crop off by %g at %d", d, i)
		}
	}
}

func TestRotation(t *testing.T) {
	cfg := DefaultConfig(10, 12)
	cfg.RotationDeg = 180
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(10, 12, 3, 2)
	p := Params{CropH: 10, CropW: 12, Brightness: 1, Contrast: 1, Saturation: 1, Angle: 180}
	out := make([]float32, a.ViewLen())
	if err := a.Apply(out, img, &p); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 10; y++ {
		for x := 0; x < 12; x++ {
			for c := 0; c < 3; c++ {
				want := float32(img.Pix[((9-y)*12+11-x)*3+c]) / 255
				if got := out[(y*12+x)*3+c]; math.Abs(float64(got-want)) > 1e-4 {
					t.Fatalf("180° rotation at (%d,%d,%d): %g, want %g", y, x, c, got, want)
				}
			}
		}
	}
	var n int
	for i := 0; i < 1000; i++ {
		q := a.Draw(ViewKey(1, 0, i, 0), 10, 12)
		if q.Angle < -180 || q.Angle > 180 {
			t.Fatalf("angle %g", q.Angle)
		}
		if q.Angle > 90 {
			n++
		}
	}
	if n < 200 || n > 300 {
		t.Fatalf("%d of 1000 angles above 90°, want about 250", n)
	}
}

func TestNormalize(t *testing.T) {
	cfg := DefaultConfig(8, 8)
	cfg.Normalize, cfg.Mean, cfg.Std = true, CIFAR10Mean, CIFAR10Std
	a, _ := New(cfg)
	b, _ := New(DefaultConfig(8, 8))
	img := testImage(8, 8, 3, 3)
	p := a.Draw(ViewKey(4, 0, 0, 1), 8, 8)
	x := make([]float32, a.ViewLen())
	y := make([]float32, a.ViewLen())
	_ = a.Apply(x, img, &p)
	_ = b.Apply(y, img, &p)
	for i := range x {
		c := i % 3
		if want := (y[i] - CIFAR10Mean[c]) / CIFAR10Std[c]; x[i] != want {
			t.Fatalf("normalised %g, want %g", x[i], want)
		}
	}
}

func TestBadInput(t *testing.T) {
	a, _ := New(DefaultConfig(8, 8))
	dst := make([]float32, a.ViewLen())
	ok := Params{CropH: 4, CropW: 4}
	cases := []struct {
		img Image
		p   Params
	}{
		{Image{Pix: make([]uint8, 10), H: 4, W: 4, C: 3}, ok}, // short buffer
		{Image{Pix: make([]uint8, 64), H: 4, W: 4, C: 4}, ok}, // 4 channels
		{Image{Pix: make([]uint8, 48), H: 4, W: 4, C: 3}, Params{Top: 1, CropH: 4, CropW: 4}},
		{Image{Pix: make([]uint8, 48), H: 4, W: 4, C: 3}, Params{CropH: 0, CropW: 4}},
		{Image{Pix: nil, H: 0, W: 0, C: 3}, ok},
	}
	for i, c := range cases {
		if err := a.Apply(dst, c.img, &c.p); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if err := a.Apply(dst[:5], testImage(4, 4, 3, 1), &ok); err == nil {
		t.Error("short destination accepted")
	}
	bad := DefaultConfig(0, 8)
	if _, err := New(bad); err == nil {
		t.Error("zero output size accepted")
	}
	bad = DefaultConfig(8, 8)
	bad.FlipP = 2
	if _, err := New(bad); err == nil {
		t.Error("probability 2 accepted")
	}
}

func TestApplyDoesNotAllocate(t *testing.T) {
	a, _ := New(DefaultConfig(64, 64))
	img := testImage(256, 200, 3, 4)
	dst := make([]float32, a.ViewLen())
	i := 0
	for ; i < 2000; i++ { // warm-up: scratch buffers grow, the tap caches fill
		p := a.Draw(ViewKey(1, 0, i, 0), img.H, img.W)
		_ = a.Apply(dst, img, &p)
	}
	allocs := testing.AllocsPerRun(200, func() {
		p := a.Draw(ViewKey(1, 0, i, 0), img.H, img.W)
		i++
		if err := a.Apply(dst, img, &p); err != nil {
			t.Fatal(err)
		}
	})
	// A crop length never seen before still builds its taps (4 allocations).
	if allocs > 0.1 {
		t.Fatalf("%.2f allocations per view", allocs)
	}
}

// naturalImage is a smooth colourful pattern with mild noise: branchy code
// (the hue conversion) behaves on it as on photographs, unlike on white noise.
func naturalImage(h, w, c int, seed uint64) Image {
	pix := make([]uint8, h*w*c)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for k := 0; k < c; k++ {
				v := 127.5 + 90*math.Sin(float64(x)/(3+float64(k))+float64(y)/(5+2*float64(k))+float64(k)) +
					20*(Float64(seed, uint64((y*w+x)*c+k))-0.5)
				pix[(y*w+x)*c+k] = uint8(min(255, max(0, v)))
			}
		}
	}
	return Image{Pix: pix, H: h, W: w, C: c}
}

func benchView(b *testing.B, h, w, c, out int) {
	a, _ := New(DefaultConfig(out, out))
	img := naturalImage(h, w, c, 4)
	dst := make([]float32, a.ViewLen())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := a.Draw(ViewKey(1, 0, i, 0), h, w)
		if err := a.Apply(dst, img, &p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "views/s")
}

// BenchmarkView32 is one augmented 32×32 view from a 32×32 RGB image.
func BenchmarkView32(b *testing.B) { benchView(b, 32, 32, 3, 32) }

// BenchmarkView64From256 is one 64×64 view from a 256×256 RGB image (downscaling).
func BenchmarkView64From256(b *testing.B) { benchView(b, 256, 256, 3, 64) }

// BenchmarkColor times each colour operation on a 32×32 view of a natural-like image.
func BenchmarkColor(b *testing.B) {
	a, _ := New(DefaultConfig(32, 32))
	img := naturalImage(32, 32, 3, 4)
	base := make([]float32, a.ViewLen())
	p := Params{CropH: 32, CropW: 32}
	_ = a.Geometry(base, img, &p)
	v := make([]float32, len(base))
	for _, op := range []struct {
		name string
		f    func()
	}{
		{"brightness", func() { adjustBrightness(v, 1.3) }},
		{"contrast", func() { adjustContrast(v, 1.3) }},
		{"saturation", func() { adjustSaturation(v, 1.3) }},
		{"hue", func() { adjustHue(v, 0.07) }},
		{"gray", func() { toGray(v) }},
	} {
		b.Run(op.name, func(b *testing.B) {
			for b.Loop() {
				copy(v, base)
				op.f()
			}
		})
	}
}

// TestParamsLayout pins the binary layout a GPU kernel reads Params with.
func TestParamsLayout(t *testing.T) {
	var p Params
	got := []uintptr{unsafe.Sizeof(p), unsafe.Offsetof(p.Top), unsafe.Offsetof(p.Left), unsafe.Offsetof(p.CropH),
		unsafe.Offsetof(p.CropW), unsafe.Offsetof(p.Flip), unsafe.Offsetof(p.Jitter), unsafe.Offsetof(p.Gray),
		unsafe.Offsetof(p.Order), unsafe.Offsetof(p.Brightness), unsafe.Offsetof(p.Contrast),
		unsafe.Offsetof(p.Saturation), unsafe.Offsetof(p.Hue), unsafe.Offsetof(p.Angle)}
	want := []uintptr{44, 0, 4, 8, 12, 16, 17, 18, 19, 24, 28, 32, 36, 40}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Params layout %v, want %v (size, then field offsets)", got, want)
		}
	}
}

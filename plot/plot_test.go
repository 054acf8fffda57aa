package plot

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a valid PNG: %v", path, err)
	}
	return img
}

// countColor counts pixels of exactly colour c.
func countColor(img image.Image, c color.RGBA) int {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bb>>8) == c.B {
				n++
			}
		}
	}
	return n
}

// countColorIn counts pixels of colour c in the rectangle.
func countColorIn(img image.Image, c color.RGBA, r image.Rectangle) int {
	sub := img.(*image.RGBA).SubImage(r)
	return countColor(sub, c)
}

func TestScatterFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "map.png")
	xy, labels := mnistLike(70000, 2)
	if err := Scatter(p, xy, labels, fashion, ScatterOptions{Width: 1600, Height: 1200, Title: "map"}); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, p)
	if b := img.Bounds(); b.Dx() != 1600 || b.Dy() != 1200 {
		t.Fatalf("size %v, want 1600×1200", b)
	}
	// The legend sits right of the map: every class colour appears there
	// as an opaque disc (points are blended, so exact colours are rare
	// elsewhere; the check is confined to the legend strip anyway).
	legend := image.Rect(1300, 0, 1600, 1200)
	for c, col := range Palette(10) {
		if n := countColorIn(img, col, legend); n < 50 {
			t.Errorf("class %d (%s): %d legend pixels of %v", c, fashion[c], n, col)
		}
	}
	// The map itself carries the class colours too (blended): look for
	// pixels near each colour in the plot area.
	for c, col := range Palette(10) {
		if !hasNear(img, col, image.Rect(60, 40, 1300, 1120), 60) {
			t.Errorf("class %d: no point coloured near %v in the map", c, col)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the directory, want just the PNG", len(ents))
	}
}

// hasNear reports whether some pixel in r is within tol (sum of channel
// differences) of c.
func hasNear(img image.Image, c color.RGBA, r image.Rectangle, tol int) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			d := abs(int(pr>>8)-int(c.R)) + abs(int(pg>>8)-int(c.G)) + abs(int(pb>>8)-int(c.B))
			if d <= tol {
				return true
			}
		}
	}
	return false
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestScatterDeterministic(t *testing.T) {
	dir := t.TempDir()
	xy, labels := mnistLike(5000, 3)
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	for _, p := range []string{a, b} {
		if err := Scatter(p, xy, labels, fashion, ScatterOptions{Title: "same"}); err != nil {
			t.Fatal(err)
		}
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) {
		t.Fatal("same input, different PNG bytes")
	}
	la, _ := os.ReadFile(a)
	if err := LossCurve(a, tsimcneLoss(), LossOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := LossCurve(b, tsimcneLoss(), LossOptions{}); err != nil {
		t.Fatal(err)
	}
	ba, _ = os.ReadFile(a)
	bb, _ = os.ReadFile(b)
	if !bytes.Equal(ba, bb) || bytes.Equal(ba, la) {
		t.Fatal("loss curve not deterministic, or not rewritten")
	}
}

func TestScatterNonFinite(t *testing.T) {
	xy, labels := mnistLike(1000, 4)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	xy[0], xy[3], xy[10], xy[11] = nan, inf, -inf, nan
	img, st, err := ScatterImage(xy, labels, fashion, ScatterOptions{Width: 400, Height: 300})
	if err != nil {
		t.Fatal(err)
	}
	if st.NonFinite != 3 || st.Points+st.Outside != 997 {
		t.Fatalf("stats %+v, want 3 non-finite of 1000", st)
	}
	if img.Bounds().Dx() != 400 {
		t.Fatal("wrong size")
	}
	// All points non-finite: an empty frame, not a crash.
	for i := range xy {
		xy[i] = nan
	}
	_, st, err = ScatterImage(xy, labels, fashion, ScatterOptions{})
	if err != nil || st.NonFinite != 1000 || st.Points != 0 {
		t.Fatalf("all NaN: %+v, %v", st, err)
	}
}

func TestScatterEdgeCases(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		xy      []float32
		labels  []int32
		classes []string
		points  int
	}{
		{"zero points", nil, nil, nil, 0},
		{"zero points with classes", []float32{}, []int32{}, fashion, 0},
		{"one point", []float32{3, 4}, []int32{0}, []string{"only"}, 1},
		{"single class", []float32{0, 0, 1, 1, 2, 0.5, 1e6, 1e6}, []int32{0, 0, 0, 0}, []string{"all"}, 4},
		{"all in one place", []float32{5, 5, 5, 5, 5, 5}, []int32{1, 1, 0}, nil, 3},
		{"no labels", []float32{0, 0, 1, 1}, nil, nil, 2},
		{"labels outside classes", []float32{0, 0, 1, 1, 2, 2}, []int32{0, -1, 7}, []string{"a", "b"}, 3},
		{"huge values", []float32{3e38, -3e38, -3e38, 3e38}, []int32{0, 1}, nil, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".png")
			img, st, err := ScatterImage(c.xy, c.labels, c.classes, ScatterOptions{Width: 320, Height: 240})
			if err != nil {
				t.Fatal(err)
			}
			if st.Points != c.points {
				t.Errorf("drew %d points, want %d (stats %+v)", st.Points, c.points, st)
			}
			if img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
				t.Fatal("wrong size")
			}
			if err := Scatter(p, c.xy, c.labels, c.classes, ScatterOptions{Width: 320, Height: 240}); err != nil {
				t.Fatal(err)
			}
			decodePNG(t, p)
		})
	}
	// A far outlier among many points is left out of the view and
	// counted; with a negative Trim it is shown.
	xy, labels := mnistLike(2000, 6)
	xy[0], xy[1] = 1e6, -1e6
	_, st, err := ScatterImage(xy, labels, fashion, ScatterOptions{Width: 320, Height: 240})
	if err != nil || st.Outside != 1 || st.Points != 1999 {
		t.Fatalf("outlier: %+v %v", st, err)
	}
	_, st, _ = ScatterImage(xy, labels, fashion, ScatterOptions{Width: 320, Height: 240, Trim: -1})
	if st.Outside != 0 || st.Points != 2000 {
		t.Fatalf("Trim -1: %+v", st)
	}
	// A single class's colour is in the legend; "no label" is grey.
	img, _, _ := ScatterImage([]float32{0, 0, 1, 1, 2, 2}, []int32{0, -1, 7}, []string{"a", "b"}, ScatterOptions{})
	if countColor(img, tab10[0]) < 50 || countColor(img, tab10[1]) < 50 || countColor(img, noLabel) < 50 {
		t.Fatal("legend discs missing for a, b or no label")
	}
}

// Bad input is an error before anything is written: no file, no temporary.
func TestScatterErrorsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.png")
	bad := map[string]func() error{
		"odd coords":   func() error { return Scatter(p, []float32{1, 2, 3}, nil, nil, ScatterOptions{}) },
		"short labels": func() error { return Scatter(p, []float32{1, 2, 3, 4}, []int32{0}, nil, ScatterOptions{}) },
		"tiny":         func() error { return Scatter(p, nil, nil, nil, ScatterOptions{Width: 10, Height: 10}) },
		"huge":         func() error { return Scatter(p, nil, nil, nil, ScatterOptions{Width: 1 << 20, Height: 100}) },
		"alpha":        func() error { return Scatter(p, nil, nil, nil, ScatterOptions{Alpha: 2}) },
		"radius":       func() error { return Scatter(p, nil, nil, nil, ScatterOptions{Radius: -1}) },
		"too many":     func() error { return Scatter(p, []float32{0, 0}, []int32{20000}, nil, ScatterOptions{}) },
		"loss lengths": func() error { return LossCurve(p, []Series{{X: []float64{1, 2}, Y: []float64{1}}}, LossOptions{}) },
		"loss panel":   func() error { return LossCurve(p, []Series{{Panel: 2}}, LossOptions{}) },
		"loss size":    func() error { return LossCurve(p, nil, LossOptions{Width: 5, Height: 5}) },
		"missing dir":  func() error { return Scatter(filepath.Join(dir, "no", "x.png"), nil, nil, nil, ScatterOptions{}) },
	}
	for name, f := range bad {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "plot:") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("failed plots left %d files", len(ents))
	}
	// A failed write does not replace an existing file.
	if err := Scatter(p, []float32{0, 0}, nil, nil, ScatterOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	if Scatter(p, []float32{1}, nil, nil, ScatterOptions{}) == nil {
		t.Fatal("no error")
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed plot changed the existing file")
	}
}

func TestLossCurve(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "loss.png")
	series := tsimcneLoss()
	series[0].Y[500] = math.NaN() // a gap, not a crash
	series[0].Y[501] = math.Inf(1)
	opt := LossOptions{Width: 1200, Height: 800, StageEnds: []float64{1000, 1050}, StageNames: []string{"one", "two", "three"}}
	if err := LossCurve(p, series, opt); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, p)
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 800 {
		t.Fatalf("size %v", b)
	}
	if countColor(img, tab10[0]) < 500 || countColor(img, tab10[1]) < 300 {
		t.Fatal("loss or learning-rate curve missing")
	}
	// One panel only, no series, a single point, all NaN.
	for name, s := range map[string][]Series{
		"none":   nil,
		"point":  {{Name: "p", X: []float64{3}, Y: []float64{2}}},
		"nan":    {{Name: "n", X: []float64{1, 2}, Y: []float64{math.NaN(), math.NaN()}}},
		"flat":   {{X: []float64{1, 2, 3}, Y: []float64{2, 2, 2}}},
		"colour": {{X: []float64{1, 2}, Y: []float64{1, 2}, Color: color.RGBA{200, 0, 0, 255}}},
	} {
		if _, err := LossImage(s, LossOptions{Width: 400, Height: 300, StageEnds: []float64{2, math.NaN()}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	img2, err := LossImage([]Series{{X: []float64{1, 2, 3}, Y: []float64{1, 2, 3}, Color: color.RGBA{200, 0, 0, 255}}}, LossOptions{Width: 400, Height: 300})
	if err != nil || countColor(img2, color.RGBA{200, 0, 0, 255}) < 100 {
		t.Fatal("explicit colour not used")
	}
}

func TestPalette(t *testing.T) {
	for _, n := range []int{1, 10, 11, 20, 21, 60, 200} {
		p := Palette(n)
		if len(p) != n {
			t.Fatalf("Palette(%d) has %d colours", n, len(p))
		}
		seen := map[color.RGBA]bool{}
		for _, c := range p {
			if seen[c] {
				t.Fatalf("Palette(%d) repeats %v", n, c)
			}
			seen[c] = true
		}
	}
	if Palette(0) != nil {
		t.Fatal("Palette(0) not empty")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		n      int
		want   []float64
		dec    int
	}{
		{0, 1500, 8, []float64{0, 200, 400, 600, 800, 1000, 1200, 1400}, 0},
		{-212, 212, 5, []float64{-200, -100, 0, 100, 200}, 0},
		{0, 0.066, 3, []float64{0, 0.02, 0.04, 0.06}, 2},
		{2.3, 7.6, 6, []float64{3, 4, 5, 6, 7}, 0},
	} {
		got, dec := niceTicks(c.lo, c.hi, c.n)
		if len(got) != len(c.want) || dec != c.dec {
			t.Errorf("niceTicks(%v, %v, %d) = %v, %d; want %v, %d", c.lo, c.hi, c.n, got, dec, c.want, c.dec)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-12 {
				t.Errorf("niceTicks(%v, %v, %d) = %v; want %v", c.lo, c.hi, c.n, got, c.want)
			}
		}
	}
	if got, _ := niceTicks(1, 1, 5); got != nil {
		t.Error("ticks for an empty range")
	}
	if tickLabel(0.0001, 4) != "1.0e-04" || tickLabel(-50, 0) != "-50" {
		t.Error("tick labels", tickLabel(0.0001, 4), tickLabel(-50, 0))
	}
	if group(70000) != "70,000" || group(-1234567) != "-1,234,567" || group(999) != "999" {
		t.Error("group")
	}
}

package augment

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"testing"
)

// Tolerances against torchvision 0.14 (max absolute difference, values in [0, 1]):
//
//   - geometry, tensor path (antialias False and True): 2e-5 — float32 rounding
//     only (we fold 1/255 into the weights and accumulate in a different order).
//   - geometry, PIL path: 1.5/255 — PIL resamples uint8 with fixed-point weights
//     and rounds its output to uint8 (±0.5/255), then ToTensor divides by 255.
//   - colour operations alone: 1e-5 for brightness and hue (same float32
//     formulas); 2e-4 for contrast, saturation and grayscale, because we use the
//     ITU-R 601 weight 0.299 (docs/ALGORITHM.md) for red where torchvision's tensor code has
//     0.2989 (|Δ| ≤ 1e-4·R·|1−f| before clamping).
//   - rotation (F.rotate, bilinear, zero fill) of the whole image: 2e-5 —
//     float rounding (we map coordinates in float64, torch in float32).
//   - whole views (crop, flip, jitter in random order, grayscale): 5e-4, with a
//     mean absolute difference below 1e-4 — the gray-weight difference passes
//     through up to four clamped operations.
var tolerances = map[string]float64{
	"geometry/tensor": 2e-5,
	"geometry/pil":    1.5 / 255,
	"color/tensor":    2e-4,
	"full/tensor":     5e-4,
	"rotate/tensor":   2e-5,
}

type fixtureFile struct {
	Torchvision string `json:"torchvision"`
	Images      map[string]struct {
		H, W, C int
		Pix     string
	} `json:"images"`
	Cases []struct {
		Kind, Image, Path string
		Antialias         bool
		Size              [2]int
		Params            struct {
			Top, Left, H, W int
			Flip, Jitter    bool
			Order           [4]uint8
			B, C, S, Hue    float64
			Gray            bool
			Angle           float64
		}
		Expect string
	} `json:"cases"`
	CropDistribution map[string]struct {
		H, W, N  int
		Q        []float64
		AreaQ    []float64 `json:"area_q"`
		LogrQ    []float64 `json:"logr_q"`
		AreaMean float64   `json:"area_mean"`
		LogrMean float64   `json:"logr_mean"`
		TopMean  float64   `json:"top_mean"`
		LeftMean float64   `json:"left_mean"`
		Full     float64
	} `json:"crop_distribution"`
}

func loadFixtures(t *testing.T) *fixtureFile {
	t.Helper()
	b, err := os.ReadFile("testdata/fixtures.json")
	if err != nil {
		t.Fatalf("reading fixtures (regenerate with /usr/bin/python3 scripts/augment/gen_fixtures.py): %v", err)
	}
	var f fixtureFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func decodeF32(t *testing.T, s string) []float32 {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func TestTorchvisionFixtures(t *testing.T) {
	f := loadFixtures(t)
	images := map[string]Image{}
	for name, im := range f.Images {
		pix, err := base64.StdEncoding.DecodeString(im.Pix)
		if err != nil {
			t.Fatal(err)
		}
		images[name] = Image{Pix: pix, H: im.H, W: im.W, C: im.C}
	}
	worst := map[string]float64{}
	for ci, c := range f.Cases {
		cfg := DefaultConfig(c.Size[0], c.Size[1])
		cfg.Interp = Bilinear
		if c.Antialias {
			cfg.Interp = BilinearAntialias
		}
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		pp := c.Params
		p := Params{Top: int32(pp.Top), Left: int32(pp.Left), CropH: int32(pp.H), CropW: int32(pp.W),
			Flip: pp.Flip, Jitter: pp.Jitter, Gray: pp.Gray, Order: pp.Order,
			Brightness: float32(pp.B), Contrast: float32(pp.C), Saturation: float32(pp.S), Hue: float32(pp.Hue)}
		if c.Kind == "geometry" || c.Kind == "rotate" {
			p.Jitter, p.Gray = false, false
			p.Brightness, p.Contrast, p.Saturation = 1, 1, 1
		}
		p.Angle = float32(pp.Angle)
		got := make([]float32, a.ViewLen())
		if err := a.Apply(got, images[c.Image], &p); err != nil {
			t.Fatalf("case %d: %v", ci, err)
		}
		want := decodeF32(t, c.Expect)
		if len(want) != len(got) {
			t.Fatalf("case %d: %d values, want %d", ci, len(got), len(want))
		}
		var maxd, sumd float64
		for i := range got {
			d := math.Abs(float64(got[i]) - float64(want[i]))
			sumd += d
			maxd = max(maxd, d)
		}
		key := c.Kind + "/" + c.Path
		tol := tolerances[key]
		if key == "color/tensor" && p.Gray == false && (p.Contrast == 1 && p.Saturation == 1) {
			tol = 1e-5 // brightness and hue use no gray weights
		}
		label := fmt.Sprintf("case %d %s %s aa=%v %+v", ci, key, c.Image, c.Antialias, pp)
		if maxd > tol {
			t.Errorf("%s: max |Δ| = %.3g > %.3g", label, maxd, tol)
		}
		if c.Kind == "full" && sumd/float64(len(got)) > 1e-4 {
			t.Errorf("%s: mean |Δ| = %.3g > 1e-4", label, sumd/float64(len(got)))
		}
		worst[key] = max(worst[key], maxd)
	}
	keys := make([]string, 0, len(worst))
	for k := range worst {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("torchvision %s: %-16s worst max |Δ| %.3g (tolerance %.3g)", f.Torchvision, k, worst[k], tolerances[k])
	}
}

// TestCropDistribution compares the crop sampler with torchvision's
// RandomResizedCrop.get_params (20,000 draws each, in the fixture): quantiles
// of the area fraction and of log(w/h), the mean relative offsets and the rate
// of whole-image crops. With 20,000 draws the standard error of a quantile is
// below 0.006 in these units; the tolerance is 0.02.
func TestCropDistribution(t *testing.T) {
	f := loadFixtures(t)
	cfg := DefaultConfig(32, 32)
	if len(f.CropDistribution) != 3 {
		t.Fatalf("fixture has %d crop distributions, want 3", len(f.CropDistribution))
	}
	for name, d := range f.CropDistribution {
		if len(d.Q) == 0 || len(d.Q) != len(d.AreaQ) || len(d.Q) != len(d.LogrQ) {
			t.Fatalf("%s: malformed quantiles", name)
		}
		n := 40000
		area := make([]float64, n)
		logr := make([]float64, n)
		var top, left, full float64
		for i := 0; i < n; i++ {
			y, x, h, w := cropBox(&cfg, ViewKey(7, 0, i, 0), d.H, d.W)
			area[i] = float64(h*w) / float64(d.H*d.W)
			logr[i] = math.Log(float64(w) / float64(h))
			if d.H > int(h) {
				top += float64(y) / float64(d.H-int(h))
			} else {
				top += 0.5
			}
			if d.W > int(w) {
				left += float64(x) / float64(d.W-int(w))
			} else {
				left += 0.5
			}
			if area[i] == 1 {
				full++
			}
		}
		sort.Float64s(area)
		sort.Float64s(logr)
		q := func(s []float64, p float64) float64 { return s[int(p*float64(len(s)-1)+0.5)] }
		for k, p := range d.Q {
			if ga, wa := q(area, p), d.AreaQ[k]; math.Abs(ga-wa) > 0.02 {
				t.Errorf("%s: area quantile %.2f = %.4f, torchvision %.4f", name, p, ga, wa)
			}
			if gr, wr := q(logr, p), d.LogrQ[k]; math.Abs(gr-wr) > 0.02 {
				t.Errorf("%s: log-ratio quantile %.2f = %.4f, torchvision %.4f", name, p, gr, wr)
			}
		}
		if g := top / float64(n); math.Abs(g-d.TopMean) > 0.02 {
			t.Errorf("%s: mean relative top %.4f, torchvision %.4f", name, g, d.TopMean)
		}
		if g := left / float64(n); math.Abs(g-d.LeftMean) > 0.02 {
			t.Errorf("%s: mean relative left %.4f, torchvision %.4f", name, g, d.LeftMean)
		}
		if g := full / float64(n); math.Abs(g-d.Full) > 0.01 {
			t.Errorf("%s: whole-image rate %.4f, torchvision %.4f", name, g, d.Full)
		}
	}
}

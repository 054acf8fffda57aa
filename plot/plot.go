// Package plot draws the two pictures of a t-SimCNE run as PNG files, with
// nothing beyond the standard library and golang.org/x/image: the map
// coloured by class (Scatter) and the loss curve (LossCurve).
//
// Both are deterministic (the same input gives the same bytes), are written
// atomically (a temporary file renamed into place, so a failed or
// interrupted plot never leaves a partial PNG), and reject inconsistent
// input before anything is written. Text is set in Go Regular, the
// x/image font, so the output does not depend on the fonts of the machine.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// WritePNG encodes img as a PNG file at path, atomically.
func WritePNG(path string, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return enc.Encode(w, img) }); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	return nil
}

// Image sizes are bounded so that a typo in a flag cannot ask for a
// gigapixel canvas.
const (
	minSide = 64
	maxSide = 16384
)

func checkSize(w, h int) error {
	if w < minSide || h < minSide || w > maxSide || h > maxSide {
		return fmt.Errorf("plot: image size %d×%d outside %d..%d", w, h, minSide, maxSide)
	}
	return nil
}

// Palettes. Matplotlib's tab10 and tab20 are what readers of embedding
// papers expect, and they stay distinguishable with alpha blending.
var (
	tab10 = []color.RGBA{
		hex(0x1f77b4), hex(0xff7f0e), hex(0x2ca02c), hex(0xd62728), hex(0x9467bd),
		hex(0x8c564b), hex(0xe377c2), hex(0x7f7f7f), hex(0xbcbd22), hex(0x17becf),
	}
	tab20 = []color.RGBA{
		hex(0x1f77b4), hex(0xaec7e8), hex(0xff7f0e), hex(0xffbb78), hex(0x2ca02c),
		hex(0x98df8a), hex(0xd62728), hex(0xff9896), hex(0x9467bd), hex(0xc5b0d5),
		hex(0x8c564b), hex(0xc49c94), hex(0xe377c2), hex(0xf7b6d2), hex(0x7f7f7f),
		hex(0xc7c7c7), hex(0xbcbd22), hex(0xdbdb8d), hex(0x17becf), hex(0x9edae5),
	}
	// noLabel colours points whose label no class names.
	noLabel = hex(0xb0b0b0)
	ink     = hex(0x262626)
	grey    = hex(0x707070)
	faint   = hex(0xd9d9d9)
)

func hex(v uint32) color.RGBA {
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// Palette returns n distinct colours: tab10 up to 10, tab20 up to 20, and
// beyond that hues spaced by the golden angle at three lightness levels,
// so neighbouring class numbers never get similar colours.
func Palette(n int) []color.RGBA {
	switch {
	case n <= 0:
		return nil
	case n <= 10:
		return tab10[:n]
	case n <= 20:
		return tab20[:n]
	}
	p := make([]color.RGBA, n)
	for i := range p {
		h := math.Mod(float64(i)*137.50776405, 360)
		l := []float64{0.45, 0.62, 0.33}[i%3]
		p[i] = hsl(h, 0.65, l)
	}
	return p
}

func hsl(h, s, l float64) color.RGBA {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	q := func(v float64) uint8 { return uint8(math.Round((v + m) * 255)) }
	return color.RGBA{q(r), q(g), q(b), 0xff}
}

// --- text ---

var (
	fontOnce sync.Once
	goFont   *opentype.Font
	fontErr  error
)

// face returns Go Regular at px pixels. Faces are not safe for concurrent
// use, so each plot makes its own.
func face(px float64) (font.Face, error) {
	fontOnce.Do(func() { goFont, fontErr = opentype.Parse(goregular.TTF) })
	if fontErr != nil {
		return nil, fmt.Errorf("plot: font: %w", fontErr)
	}
	f, err := opentype.NewFace(goFont, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("plot: font face: %w", err)
	}
	return f, nil
}

// canvas is the image being drawn, with anti-aliased primitives that blend
// in sRGB as most plotting libraries do.
type canvas struct {
	img  *image.RGBA
	w, h int
}

func newCanvas(w, h int) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	return &canvas{img: img, w: w, h: h}
}

// blend paints c over pixel (x, y) with opacity a.
func (cv *canvas) blend(x, y int, c color.RGBA, a float64) {
	if x < 0 || y < 0 || x >= cv.w || y >= cv.h || a <= 0 {
		return
	}
	a = min(a, 1)
	p := cv.img.Pix[y*cv.img.Stride+4*x:]
	p[0] = uint8(float64(p[0])*(1-a) + float64(c.R)*a + 0.5)
	p[1] = uint8(float64(p[1])*(1-a) + float64(c.G)*a + 0.5)
	p[2] = uint8(float64(p[2])*(1-a) + float64(c.B)*a + 0.5)
}

// fillRect paints the pixels [x0,x1)×[y0,y1) opaquely.
func (cv *canvas) fillRect(x0, y0, x1, y1 int, c color.RGBA) {
	for y := max(y0, 0); y < min(y1, cv.h); y++ {
		for x := max(x0, 0); x < min(x1, cv.w); x++ {
			p := cv.img.Pix[y*cv.img.Stride+4*x:]
			p[0], p[1], p[2], p[3] = c.R, c.G, c.B, 0xff
		}
	}
}

// disc paints an anti-aliased filled circle of radius r centred at (cx, cy)
// (pixel centres are at half-integers).
func (cv *canvas) disc(cx, cy, r float64, c color.RGBA, a float64) {
	x0, x1 := int(math.Floor(cx-r-1)), int(math.Ceil(cx+r+1))
	y0, y1 := int(math.Floor(cy-r-1)), int(math.Ceil(cy+r+1))
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy)
			if cov := r + 0.5 - d; cov > 0 {
				cv.blend(x, y, c, a*min(cov, 1))
			}
		}
	}
}

// line paints an anti-aliased segment of width lw.
func (cv *canvas) line(x0, y0, x1, y1, lw float64, c color.RGBA) {
	if !finiteAll(x0, y0, x1, y1) {
		return
	}
	hw := lw / 2
	minX, maxX := int(math.Floor(min(x0, x1)-hw-1)), int(math.Ceil(max(x0, x1)+hw+1))
	minY, maxY := int(math.Floor(min(y0, y1)-hw-1)), int(math.Ceil(max(y0, y1)+hw+1))
	minX, maxX = max(minX, 0), min(maxX, cv.w-1)
	minY, maxY = max(minY, 0), min(maxY, cv.h-1)
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	for y := minY; y <= maxY; y++ {
		for x := minX; x <= maxX; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			t := 0.0
			if l2 > 0 {
				t = max(0, min(1, ((px-x0)*dx+(py-y0)*dy)/l2))
			}
			d := math.Hypot(px-(x0+t*dx), py-(y0+t*dy))
			if cov := hw + 0.5 - d; cov > 0 {
				cv.blend(x, y, c, min(cov, 1))
			}
		}
	}
}

// dashed paints a dashed segment.
func (cv *canvas) dashed(x0, y0, x1, y1, lw, dash float64, c color.RGBA) {
	l := math.Hypot(x1-x0, y1-y0)
	if l == 0 || !finiteAll(l) {
		return
	}
	for s := 0.0; s < l; s += 2 * dash {
		e := min(s+dash, l)
		cv.line(x0+(x1-x0)*s/l, y0+(y1-y0)*s/l, x0+(x1-x0)*e/l, y0+(y1-y0)*e/l, lw, c)
	}
}

func finiteAll(v ...float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// Text anchors.
const (
	left = iota
	center
	right
)

// text draws s with its baseline at y, anchored horizontally at x.
func (cv *canvas) text(f font.Face, s string, x, y float64, anchor int, c color.RGBA) {
	d := font.Drawer{Dst: cv.img, Src: image.NewUniform(c), Face: f}
	w := float64(d.MeasureString(s)) / 64
	switch anchor {
	case center:
		x -= w / 2
	case right:
		x -= w
	}
	d.Dot = fixed.Point26_6{X: fixed.Int26_6(math.Round(x * 64)), Y: fixed.Int26_6(math.Round(y * 64))}
	d.DrawString(s)
}

// textVertical draws s rotated 90° anticlockwise, centred on (x, y).
func (cv *canvas) textVertical(f font.Face, s string, x, y float64, c color.RGBA) {
	w := textWidth(f, s)
	m := f.Metrics()
	asc, desc := m.Ascent.Ceil(), m.Descent.Ceil()
	tw, th := int(math.Ceil(w))+2, asc+desc+2
	tmp := newCanvas(tw, th)
	tmp.text(f, s, 1, float64(asc+1), left, ink)
	// Rotate: tmp(u, v) → canvas(x0 + v, y0 + (tw-1-u)); use the darkness
	// of the black-on-white rendering as coverage of c.
	x0, y0 := int(math.Round(x))-th/2, int(math.Round(y))-tw/2
	for v := range th {
		for u := range tw {
			p := tmp.img.Pix[v*tmp.img.Stride+4*u:]
			cov := 1 - float64(p[1])/255 // green channel: ink is near-black
			if cov > 0 {
				cv.blend(x0+v, y0+tw-1-u, c, cov/(1-float64(ink.G)/255))
			}
		}
	}
}

func textWidth(f font.Face, s string) float64 {
	return float64(font.MeasureString(f, s)) / 64
}

// --- axes ---

// niceTicks returns about n round tick values inside [lo, hi] (steps
// of 1, 2 or 5 times a power of ten) and the number of decimals to print.
func niceTicks(lo, hi float64, n int) ([]float64, int) {
	if !(hi > lo) || !finiteAll(lo, hi) {
		return nil, 0
	}
	// The step of 1, 2 or 5 × 10^k whose tick count is nearest to n.
	raw := (hi - lo) / float64(max(n, 1))
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step, best := p, math.Inf(1)
	for _, m := range []float64{1, 2, 5, 10} {
		if d := math.Abs((hi-lo)/(m*p) - float64(n)); d < best {
			step, best = m*p, d
		}
	}
	dec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var t []float64
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		t = append(t, v)
		if len(t) > 100 {
			break
		}
	}
	return t, dec
}

// tickLabel formats a tick value, switching to exponent form for very small
// or large magnitudes (learning rates, say).
func tickLabel(v float64, dec int) string {
	a := math.Abs(v)
	if a != 0 && (a < 1e-3 || a >= 1e6) {
		return strconv.FormatFloat(v, 'e', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

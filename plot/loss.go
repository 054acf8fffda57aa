package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Series is one curve of a LossCurve plot.
type Series struct {
	// Name is shown in the panel's legend.
	Name string
	// X (epochs, fractional for per-step values) and Y, of equal length.
	// A NaN or infinite value breaks the line there.
	X, Y []float64
	// Panel 0 is the main (loss) panel; 1 is a shorter panel underneath
	// with the same epoch axis, for the learning rate.
	Panel int
	// Color of the line; the zero value takes the next tab10 colour.
	Color color.RGBA
}

// LossOptions tunes LossCurve. The zero value gives a 1600×1000 plot.
type LossOptions struct {
	// Width and Height in pixels; 0 means 1600×1000.
	Width, Height int
	// Title is drawn above the plot when not empty.
	Title string
	// XLabel names the epoch axis; "" means "epoch".
	XLabel string
	// YLabels name the panels' value axes; missing entries mean "loss"
	// and "learning rate".
	YLabels []string
	// StageEnds are the epochs at which training stages end (1000, 1050
	// for the default schedule; the last stage needs no end); each is
	// drawn as a dashed line in every panel.
	StageEnds []float64
	// StageNames[i] labels stage i (up to len(StageEnds)+1 names) at the
	// top of the main panel, where it fits.
	StageNames []string
}

// LossCurve plots series against the epoch with stage boundaries marked,
// and writes the PNG to path atomically.
func LossCurve(path string, series []Series, opt LossOptions) error {
	img, err := LossImage(series, opt)
	if err != nil {
		return err
	}
	return WritePNG(path, img)
}

// LossImage renders what LossCurve writes.
func LossImage(series []Series, opt LossOptions) (*image.RGBA, error) {
	w, h := opt.Width, opt.Height
	if w == 0 && h == 0 {
		w, h = 1600, 1000
	}
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	panels := 1
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plot: series %q: %d x values, %d y values", s.Name, len(s.X), len(s.Y))
		}
		if s.Panel < 0 || s.Panel > 1 {
			return nil, fmt.Errorf("plot: series %d (%q): panel %d, want 0 or 1", i, s.Name, s.Panel)
		}
		panels = max(panels, s.Panel+1)
	}

	// The shared epoch range, over finite values of all series.
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for j, x := range s.X {
			if finiteAll(x, s.Y[j]) {
				xlo, xhi = min(xlo, x), max(xhi, x)
			}
		}
	}
	for _, e := range opt.StageEnds {
		if finiteAll(e) && xlo <= xhi {
			xlo, xhi = min(xlo, e), max(xhi, e)
		}
	}
	if xlo > xhi { // no data: an empty frame from 0 to 1
		xlo, xhi = 0, 1
	}
	if xhi == xlo {
		xlo, xhi = xlo-0.5, xhi+0.5
	}
	if xlo > 0 && xlo <= 0.05*(xhi-xlo) {
		xlo = 0 // epochs counted from 1: start the axis at 0, not at 1
	}

	sc := float64(min(w, h)) / 1000
	fTitle, err := face(30 * sc)
	if err != nil {
		return nil, err
	}
	fLabel, _ := face(22 * sc)
	fTick, _ := face(18 * sc)
	defer fTitle.Close()
	defer fLabel.Close()
	defer fTick.Close()

	cv := newCanvas(w, h)
	top := 30 * sc
	if opt.Title != "" {
		top = 76 * sc
		cv.text(fTitle, opt.Title, float64(w)/2, 48*sc, center, ink)
	}
	leftM, rightM, bottom := 128*sc, 40*sc, 90*sc
	gap := 34 * sc
	pw := float64(w) - leftM - rightM
	avail := float64(h) - top - bottom
	heights := []float64{avail}
	if panels == 2 {
		heights = []float64{(avail - gap) * 0.68, (avail - gap) * 0.32}
	}
	if pw < 32 || heights[len(heights)-1] < 24 {
		return nil, fmt.Errorf("plot: %d×%d is too small for the loss plot", w, h)
	}
	toX := func(x float64) float64 { return leftM + (x-xlo)/(xhi-xlo)*pw }
	xt, xdec := niceTicks(xlo, xhi, int(max(3, pw/(140*sc))))
	lw := max(1, math.Round(1.2*sc))

	colorAt := 0
	py := top
	for p := range panels {
		ph := heights[p]
		// Value range of this panel, with a 5 % margin.
		ylo, yhi := math.Inf(1), math.Inf(-1)
		for _, s := range series {
			if s.Panel != p {
				continue
			}
			for j, y := range s.Y {
				if finiteAll(s.X[j], y) {
					ylo, yhi = min(ylo, y), max(yhi, y)
				}
			}
		}
		if ylo > yhi {
			ylo, yhi = 0, 1
		}
		if yhi == ylo {
			d := max(math.Abs(ylo)*0.1, 1e-9)
			ylo, yhi = ylo-d, yhi+d
		}
		m := 0.05 * (yhi - ylo)
		ylo, yhi = ylo-m, yhi+m
		if ylo < 0 && ylo+m >= 0 {
			ylo = 0 // losses and learning rates are not negative
		}
		toY := func(y float64) float64 { return py + ph - (y-ylo)/(yhi-ylo)*ph }

		// Grid, frame, ticks.
		yt, ydec := niceTicks(ylo, yhi, int(max(3, ph/(75*sc))))
		for _, v := range yt {
			y := toY(v)
			cv.line(leftM, y, leftM+pw, y, lw, faint)
			cv.line(leftM-7*sc, y, leftM, y, lw, grey)
			cv.text(fTick, tickLabel(v, ydec), leftM-12*sc, y+6*sc, right, grey)
		}
		for _, v := range xt {
			x := toX(v)
			cv.line(x, py, x, py+ph, lw, faint)
			cv.line(x, py+ph, x, py+ph+7*sc, lw, grey)
			if p == panels-1 {
				cv.text(fTick, tickLabel(v, xdec), x, py+ph+28*sc, center, grey)
			}
		}
		cv.line(leftM, py+ph, leftM+pw, py+ph, lw, grey)
		cv.line(leftM, py, leftM, py+ph, lw, grey)

		name := []string{"loss", "learning rate"}[p]
		if p < len(opt.YLabels) && opt.YLabels[p] != "" {
			name = opt.YLabels[p]
		}
		cv.textVertical(fLabel, name, 26*sc, py+ph/2, ink)

		// Stage boundaries; in the main panel each stage's name goes at
		// the top, against its end (the last, open stage: against its
		// start), where the curve has usually fallen away. Names that do
		// not fit their stage are left out rather than cut.
		for _, e := range opt.StageEnds {
			if finiteAll(e) {
				x := toX(e)
				cv.dashed(x, py, x, py+ph, max(1, 1.5*sc), 7*sc, grey)
			}
		}
		for i, nm := range opt.StageNames {
			if p != 0 || nm == "" || i > len(opt.StageEnds) {
				continue
			}
			start, end := xlo, xhi
			if i > 0 {
				start = opt.StageEnds[i-1]
			}
			if i < len(opt.StageEnds) {
				end = opt.StageEnds[i]
			}
			x0, x1 := toX(start), toX(end)
			if !finiteAll(x0, x1) || textWidth(fTick, nm) > x1-x0-12*sc {
				continue
			}
			if i < len(opt.StageEnds) {
				cv.text(fTick, nm, x1-6*sc, py+22*sc, right, grey)
			} else {
				cv.text(fTick, nm, x0+6*sc, py+22*sc, left, grey)
			}
		}

		// Curves, then the panel's legend in its top right corner.
		var legend []Series
		for _, s := range series {
			if s.Panel != p {
				continue
			}
			if s.Color == (color.RGBA{}) {
				s.Color = tab10[colorAt%len(tab10)]
				colorAt++
			}
			width := max(1.5, 2.4*sc)
			for j := 1; j < len(s.X); j++ {
				if finiteAll(s.X[j-1], s.Y[j-1], s.X[j], s.Y[j]) {
					cv.line(toX(s.X[j-1]), toY(s.Y[j-1]), toX(s.X[j]), toY(s.Y[j]), width, s.Color)
				}
			}
			// A lone finite point between gaps would be invisible.
			for j := range s.X {
				if finiteAll(s.X[j], s.Y[j]) &&
					(j == 0 || !finiteAll(s.X[j-1], s.Y[j-1])) &&
					(j == len(s.X)-1 || !finiteAll(s.X[j+1], s.Y[j+1])) {
					cv.disc(toX(s.X[j]), toY(s.Y[j]), width, s.Color, 1)
				}
			}
			if s.Name != "" {
				legend = append(legend, s)
			}
		}
		if len(legend) > 0 {
			lx := leftM + pw - 16*sc
			ly := py + 16*sc
			tw := 0.0
			for _, s := range legend {
				tw = max(tw, textWidth(fTick, s.Name))
			}
			boxW, rowH := tw+62*sc, 28*sc
			cv.fillRect(int(lx-boxW), int(ly), int(lx), int(ly+rowH*float64(len(legend))+10*sc), color.RGBA{255, 255, 255, 255})
			for i, s := range legend {
				y := ly + 5*sc + rowH*(float64(i)+0.5)
				cv.line(lx-boxW+10*sc, y, lx-boxW+40*sc, y, max(1.5, 2.4*sc), s.Color)
				cv.text(fTick, s.Name, lx-boxW+50*sc, y+6*sc, left, ink)
			}
		}
		py += ph + gap
	}
	xl := opt.XLabel
	if xl == "" {
		xl = "epoch"
	}
	cv.text(fLabel, xl, leftM+pw/2, float64(h)-22*sc, center, ink)
	return cv.img, nil
}

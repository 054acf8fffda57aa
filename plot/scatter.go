package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"golang.org/x/image/font"
)

// ScatterOptions tunes Scatter. The zero value gives a 1600×1200 map with
// automatic point size and opacity.
type ScatterOptions struct {
	// Width and Height of the image in pixels; 0 means 1600×1200.
	Width, Height int
	// Title is drawn above the map when not empty.
	Title string
	// Radius of a point in pixels; 0 chooses one from the number of
	// points and the plot area (about 1 px at 70,000 points).
	Radius float64
	// Alpha is the opacity of a point in (0, 1]; 0 chooses one from the
	// number of points, so dense clusters show their density.
	Alpha float64
	// Trim is the percentage of points per side and axis that may fall
	// outside the view, so a few far outliers do not squash the map; 0
	// means 0.5 (the 0.5–99.5 percentile range), a negative value shows
	// every point.
	Trim float64
	// Note is drawn under the map in small type (e.g. "kNN accuracy
	// 0.953"), after the point counts.
	Note string
}

// ScatterStats counts what Scatter drew.
type ScatterStats struct {
	Points    int // points drawn
	NonFinite int // points with a NaN or infinite coordinate, skipped
	Outside   int // finite points outside the trimmed view, skipped
}

// Scatter draws a 2-D map coloured by class with a legend of class names
// and writes it to path as a PNG, atomically. xy holds n points as x, y
// pairs; labels[i] indexes classes (a label outside classes is drawn grey
// as "no label"; with no classes at all the labels' numbers name them).
// labels may be nil: all points then share one colour and there is no
// legend.
func Scatter(path string, xy []float32, labels []int32, classes []string, opt ScatterOptions) error {
	img, _, err := ScatterImage(xy, labels, classes, opt)
	if err != nil {
		return err
	}
	return WritePNG(path, img)
}

// ScatterImage renders what Scatter writes and reports what it skipped.
func ScatterImage(xy []float32, labels []int32, classes []string, opt ScatterOptions) (*image.RGBA, ScatterStats, error) {
	img, st, _, err := scatterImage(xy, labels, classes, opt)
	return img, st, err
}

// frame is where scatterImage put the map: the data window shown, the plot
// area in pixels, and the class colours, for drawing more on top.
type frame struct {
	x0, x1, y0, y1     float64 // data window
	px0, py0, pw, ph   float64 // plot area in pixels
	scale              float64 // pixels per data unit
	colors             []color.RGBA
	names              []string
	hasNoLabel, labels bool
}

// toPx maps data coordinates to pixels.
func (f *frame) toPx(x, y float64) (float64, float64) {
	return f.px0 + (x-f.x0)*f.scale, f.py0 + f.ph - (y-f.y0)*f.scale
}

// color is the colour of a point with label l.
func (f *frame) color(l int32) color.RGBA {
	if !f.labels {
		return f.colors[0]
	}
	return f.colors[classSlot(l, len(f.names), f.hasNoLabel)]
}

func scatterImage(xy []float32, labels []int32, classes []string, opt ScatterOptions) (*image.RGBA, ScatterStats, *frame, error) {
	var st ScatterStats
	w, h := opt.Width, opt.Height
	if w == 0 && h == 0 {
		w, h = 1600, 1200
	}
	if err := checkSize(w, h); err != nil {
		return nil, st, nil, err
	}
	if len(xy)%2 != 0 {
		return nil, st, nil, fmt.Errorf("plot: %d coordinates are not x, y pairs", len(xy))
	}
	n := len(xy) / 2
	if labels != nil && len(labels) != n {
		return nil, st, nil, fmt.Errorf("plot: %d labels for %d points", len(labels), n)
	}
	if opt.Alpha < 0 || opt.Alpha > 1 || opt.Radius < 0 || math.IsNaN(opt.Alpha) || math.IsNaN(opt.Radius) || opt.Radius > 100 {
		return nil, st, nil, fmt.Errorf("plot: alpha %v or radius %v out of range", opt.Alpha, opt.Radius)
	}
	names, colors, hasNoLabel := legendEntries(labels, classes)
	if len(names) > 10000 {
		return nil, st, nil, fmt.Errorf("plot: %d classes is more than a legend can show", len(names))
	}

	// Finite points, and the view: trimmed percentiles with a margin,
	// widened to the whole data when the outliers are not far.
	finite := make([]int, 0, n)
	for i := range n {
		if finiteAll(float64(xy[2*i]), float64(xy[2*i+1])) {
			finite = append(finite, i)
		}
	}
	st.NonFinite = n - len(finite)
	trim := opt.Trim
	if trim == 0 {
		trim = 0.5
	}
	x0, x1 := viewRange(xy, finite, 0, trim)
	y0, y1 := viewRange(xy, finite, 1, trim)

	cv := newCanvas(w, h)
	s := float64(min(w, h)) / 1200 // type and spacing scale with the image
	fTitle, err := face(30 * s)
	if err != nil {
		return nil, st, nil, err
	}
	fLabel, _ := face(21 * s)
	fTick, _ := face(17 * s)
	defer fTitle.Close()
	defer fLabel.Close()
	defer fTick.Close()

	// Layout: title on top, legend on the right, ticks left and below.
	top := 24 * s
	if opt.Title != "" {
		top = 70 * s
	}
	bottom, leftM := 78*s, 70*s
	legendW := 0.0
	lay := legendLayout{}
	if len(names) > 0 {
		lay = layoutLegend(fLabel, names, float64(h)-top-bottom, s, 0.34*float64(w))
		legendW = lay.width + 30*s
	}
	rightM := 24*s + legendW
	px0, py0 := leftM, top
	pw, ph := float64(w)-leftM-rightM, float64(h)-top-bottom
	if pw < 16 || ph < 16 {
		return nil, st, nil, fmt.Errorf("plot: %d×%d is too small for the map and its legend", w, h)
	}

	// Equal aspect: one data unit is the same number of pixels in x and y;
	// the shorter data range is widened, centred, to fill the frame.
	dx, dy := x1-x0, y1-y0
	scale := min(pw/dx, ph/dy)
	cx, cy := (x0+x1)/2, (y0+y1)/2
	x0, x1 = cx-pw/scale/2, cx+pw/scale/2
	y0, y1 = cy-ph/scale/2, cy+ph/scale/2
	toPx := func(x, y float64) (float64, float64) {
		return px0 + (x-x0)*scale, py0 + ph - (y-y0)*scale
	}

	r := opt.Radius
	if r == 0 {
		// About a third of the spacing of points spread evenly over the
		// frame; clusters then overlap into solid colour at their cores.
		r = max(0.9, min(6, 0.55*math.Sqrt(pw*ph/(math.Pi*float64(max(len(finite), 1))))))
	}
	alpha := opt.Alpha
	if alpha == 0 {
		alpha = max(0.35, min(0.9, 0.35+0.65*math.Sqrt(2000/float64(max(len(finite), 1)))))
	}

	// Draw in a fixed pseudo-random order so no class is systematically on
	// top, and the same input gives the same picture.
	order := slices.Clone(finite)
	rng := rand.New(rand.NewPCG(0x5ca77e4, uint64(n)))
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, i := range order {
		x, y := float64(xy[2*i]), float64(xy[2*i+1])
		if x < x0 || x > x1 || y < y0 || y > y1 {
			st.Outside++
			continue
		}
		c := colors[0]
		if labels != nil {
			c = colors[classSlot(labels[i], len(names), hasNoLabel)]
		}
		sx, sy := toPx(x, y)
		cv.disc(sx, sy, r, c, alpha)
		st.Points++
	}

	// Frame and ticks.
	fx0, fy0, fx1, fy1 := int(math.Round(px0)), int(math.Round(py0)), int(math.Round(px0+pw)), int(math.Round(py0+ph))
	lw := max(1, math.Round(1.2*s))
	cv.line(float64(fx0), float64(fy0), float64(fx1), float64(fy0), lw, faint)
	cv.line(float64(fx0), float64(fy1), float64(fx1), float64(fy1), lw, grey)
	cv.line(float64(fx0), float64(fy0), float64(fx0), float64(fy1), lw, grey)
	cv.line(float64(fx1), float64(fy0), float64(fx1), float64(fy1), lw, faint)
	tl := 7 * s
	xt, xdec := niceTicks(x0, x1, int(max(3, pw/(190*s))))
	for _, v := range xt {
		sx, _ := toPx(v, y0)
		cv.line(sx, float64(fy1), sx, float64(fy1)+tl, lw, grey)
		cv.text(fTick, tickLabel(v, xdec), sx, float64(fy1)+tl+20*s, center, grey)
	}
	yt, ydec := niceTicks(y0, y1, int(max(3, ph/(160*s))))
	for _, v := range yt {
		_, sy := toPx(x0, v)
		cv.line(float64(fx0)-tl, sy, float64(fx0), sy, lw, grey)
		cv.text(fTick, tickLabel(v, ydec), float64(fx0)-tl-5*s, sy+6*s, right, grey)
	}

	if opt.Title != "" {
		cv.text(fTitle, opt.Title, px0+pw/2, 46*s, center, ink)
	}
	note := fmt.Sprintf("%s points", group(n))
	if st.NonFinite > 0 {
		note += fmt.Sprintf(" · %s non-finite skipped", group(st.NonFinite))
	}
	if st.Outside > 0 {
		note += fmt.Sprintf(" · %s outside the view", group(st.Outside))
	}
	if opt.Note != "" {
		note += " · " + opt.Note
	}
	cv.text(fTick, note, px0, float64(h)-14*s, left, grey)

	if len(names) > 0 {
		drawLegend(cv, fLabel, lay, colors, px0+pw+30*s, top, ph, s)
	}
	fr := &frame{x0: x0, x1: x1, y0: y0, y1: y1, px0: px0, py0: py0, pw: pw, ph: ph, scale: scale,
		colors: colors, names: names, hasNoLabel: hasNoLabel, labels: labels != nil}
	return cv.img, st, fr, nil
}

// viewRange is the range of coordinate axis (0: x, 1: y) to show: the
// trim and 100−trim percentiles, widened by up to 15 % of their distance to
// take in the tails of the clusters at the edge, plus a 4 % margin. Only
// points farther out than that (true outliers) fall outside.
func viewRange(xy []float32, idx []int, axis int, trim float64) (float64, float64) {
	if len(idx) == 0 {
		return -1, 1
	}
	v := make([]float64, len(idx))
	for j, i := range idx {
		v[j] = float64(xy[2*i+axis])
	}
	slices.Sort(v)
	lo, hi := v[0], v[len(v)-1]
	if trim > 0 {
		plo := v[int(math.Floor(trim/100*float64(len(v)-1)))]
		phi := v[int(math.Ceil((1-trim/100)*float64(len(v)-1)))]
		ext := 0.15 * (phi - plo)
		lo, hi = max(lo, plo-ext), min(hi, phi+ext)
	}
	m := 0.04 * (hi - lo)
	lo, hi = lo-m, hi+m
	if !(hi-lo > 1e-12*max(1, math.Abs(lo))) {
		// One point, or all in one place: a unit window around it.
		c := (lo + hi) / 2
		d := max(1, math.Abs(c)*1e-3)
		lo, hi = c-d, c+d
	}
	return lo, hi
}

// legendEntries names the classes to show and their colours. With class
// names, every named class is listed (a class without points still gets its
// entry, so legends of different runs match); without, labels 0..max are.
// A final grey "no label" entry appears when some label names no class.
func legendEntries(labels []int32, classes []string) (names []string, colors []color.RGBA, hasNoLabel bool) {
	if labels == nil {
		return nil, []color.RGBA{tab10[0]}, false
	}
	names = slices.Clone(classes)
	if len(names) == 0 {
		hi := int32(-1)
		for _, l := range labels {
			hi = max(hi, l)
		}
		if hi >= 10000 {
			hi = 9999 // beyond this, ScatterImage refuses anyway
			hasNoLabel = true
		}
		for i := range int(hi) + 1 {
			names = append(names, strconv.Itoa(i))
		}
	}
	for _, l := range labels {
		if l < 0 || int(l) >= len(names) {
			hasNoLabel = true
			break
		}
	}
	colors = slices.Clone(Palette(len(names)))
	if hasNoLabel {
		names = append(names, "no label")
		colors = append(colors, noLabel)
	}
	if len(colors) == 0 {
		colors = []color.RGBA{noLabel}
	}
	return names, colors, hasNoLabel
}

func classSlot(l int32, nNames int, hasNoLabel bool) int {
	named := nNames
	if hasNoLabel {
		named--
	}
	if l < 0 || int(l) >= named {
		return nNames - 1
	}
	return int(l)
}

type legendLayout struct {
	rows, cols int
	shown      int      // entries shown; the rest are summarised as "+ N more"
	text       []string // the names as shown, shortened to fit
	rowH, colW float64
	width      float64
	swatch     float64 // radius of a colour disc
}

// layoutLegend fits the entries into the height next to the map: one
// column while they fit, then more columns up to maxW wide, then as many
// as fit with a "+ N more" line. Long names are shortened with an
// ellipsis.
func layoutLegend(f font.Face, names []string, height, s, maxW float64) legendLayout {
	lay := legendLayout{rowH: 31 * s, swatch: 8 * s}
	if height < 2*lay.rowH {
		height = 2 * lay.rowH
	}
	rowsFit := max(1, int(height/lay.rowH))
	lead := 2*lay.swatch + 10*s // disc and gap before the text
	textMax := maxW - lead - 22*s
	if len(names) > rowsFit {
		// Several columns: rows a little tighter, and names capped so
		// that one long name does not cost a column.
		lay.rowH = max(26*s, height/float64(len(names)))
		rowsFit = max(1, int(height/lay.rowH))
		textMax = min(textMax, 230*s)
	}
	lay.text = make([]string, len(names))
	widest := 0.0
	for i, nm := range names {
		lay.text[i] = ellipsize(f, nm, textMax)
		widest = max(widest, textWidth(f, lay.text[i]))
	}
	lay.colW = lead + widest + 22*s
	maxCols := max(1, int(maxW/lay.colW))
	lay.cols = min(maxCols, (len(names)+rowsFit-1)/rowsFit)
	lay.rows = min(rowsFit, len(names))
	lay.shown = len(names)
	if len(names) > lay.cols*lay.rows {
		lay.shown = lay.cols*lay.rows - 1
	}
	lay.width = float64(lay.cols) * lay.colW
	return lay
}

func ellipsize(f font.Face, s string, maxPx float64) string {
	if textWidth(f, s) <= maxPx {
		return s
	}
	r := []rune(s)
	for len(r) > 1 && textWidth(f, string(r)+"…") > maxPx {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

func drawLegend(cv *canvas, f font.Face, lay legendLayout, colors []color.RGBA, x, top, ph, s float64) {
	y0 := top + (ph-float64(lay.rows)*lay.rowH)/2
	slot := func(i int) (float64, float64) {
		return x + float64(i/lay.rows)*lay.colW, y0 + (float64(i%lay.rows)+0.5)*lay.rowH
	}
	for i := range lay.shown {
		sx, sy := slot(i)
		cv.disc(sx+lay.swatch, sy, lay.swatch, colors[i], 1)
		cv.text(f, lay.text[i], sx+2*lay.swatch+10*s, sy+7*s, left, ink)
	}
	if more := len(lay.text) - lay.shown; more > 0 {
		sx, sy := slot(lay.shown)
		cv.text(f, fmt.Sprintf("+ %d more", more), sx, sy+7*s, left, grey)
	}
}

// group writes n with thousands separators: 70,000.
func group(n int) string {
	s := strconv.Itoa(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}

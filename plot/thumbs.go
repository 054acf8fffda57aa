package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"

	xdraw "golang.org/x/image/draw"
)

// ThumbnailOptions tunes ThumbnailFigure. The zero value gives a
// 4000×3200 figure (print resolution: 13 inches at 300 dpi) with 32
// thumbnail cells across the map.
type ThumbnailOptions struct {
	// Width and Height of the image; 0 means 4000×3200, or Height =
	// Width·4/5 when only Width is given.
	Width, Height int
	// Cells is the number of grid cells across the plot area's width;
	// cells are square. 0 means 32.
	Cells int
	// MinPoints is the fewest points a cell needs to get a thumbnail, so
	// stray outliers and thin margins keep their dots; 0 means 3 or a
	// fifth of the mean count of the occupied cells, whichever is more.
	MinPoints int
	// Fill is the thumbnail's side as a fraction of the cell's, in
	// (0, 1]; the gaps let the points underneath show. 0 means 0.74.
	Fill float64
	// Title is drawn above the map.
	Title string
	// Note is drawn under the map, after the counts.
	Note string
}

// ThumbnailFigure draws the map of xy (x, y pairs) coloured by class, as
// Scatter does, and overlays a grid of image thumbnails: for every cell
// that holds at least MinPoints points, the image of the point nearest the
// mean of the cell's points, scaled to fill the cell and framed in its
// class colour. It is the look of the t-SimCNE paper's CIFAR-10 figure.
// thumb returns the image of point i. The PNG is written atomically.
func ThumbnailFigure(path string, xy []float32, labels []int32, classes []string,
	thumb func(i int) (image.Image, error), opt ThumbnailOptions) error {
	img, err := ThumbnailImage(xy, labels, classes, thumb, opt)
	if err != nil {
		return err
	}
	return WritePNG(path, img)
}

// ThumbnailImage renders what ThumbnailFigure writes.
func ThumbnailImage(xy []float32, labels []int32, classes []string,
	thumb func(i int) (image.Image, error), opt ThumbnailOptions) (*image.RGBA, error) {
	w, h := opt.Width, opt.Height
	switch {
	case w == 0 && h == 0:
		w, h = 4000, 3200
	case h == 0:
		h = w * 4 / 5
	}
	cells := opt.Cells
	if cells == 0 {
		cells = 32
	}
	if cells < 1 || cells > 1000 {
		return nil, fmt.Errorf("plot: %d thumbnail cells, want 1..1000", cells)
	}
	fill := opt.Fill
	if fill == 0 {
		fill = 0.74
	}
	if !(fill > 0 && fill <= 1) {
		return nil, fmt.Errorf("plot: thumbnail fill %v, want (0, 1]", opt.Fill)
	}
	img, _, fr, err := scatterImage(xy, labels, classes, ScatterOptions{Width: w, Height: h, Title: opt.Title, Note: opt.Note})
	if err != nil {
		return nil, err
	}
	side := fr.pw / float64(cells)
	rows := int(math.Ceil(fr.ph / side))
	if side < 4 {
		return nil, fmt.Errorf("plot: %d cells across %.0f pixels leave %.1f-pixel thumbnails", cells, fr.pw, side)
	}
	type acc struct {
		n      int
		sx, sy float64
	}
	grid := make([]acc, cells*rows)
	cellOf := func(i int) int {
		x, y := float64(xy[2*i]), float64(xy[2*i+1])
		if !finiteAll(x, y) {
			return -1
		}
		px, py := fr.toPx(x, y)
		cx, cy := int(math.Floor((px-fr.px0)/side)), int(math.Floor((py-fr.py0)/side))
		if cx < 0 || cy < 0 || cx >= cells || cy >= rows || px > fr.px0+fr.pw || py > fr.py0+fr.ph {
			return -1
		}
		return cy*cells + cx
	}
	n := len(xy) / 2
	for i := range n {
		if c := cellOf(i); c >= 0 {
			g := &grid[c]
			g.n++
			g.sx += float64(xy[2*i])
			g.sy += float64(xy[2*i+1])
		}
	}
	minPts := opt.MinPoints
	if minPts == 0 {
		occupied, total := 0, 0
		for _, g := range grid {
			if g.n > 0 {
				occupied++
				total += g.n
			}
		}
		minPts = max(3, total/max(occupied, 1)/5)
	}
	// The representative of a cell: the point nearest its points' mean
	// (ties to the lower index, so the figure is deterministic).
	best := make([]int, len(grid))
	bestD := make([]float64, len(grid))
	for c := range best {
		best[c], bestD[c] = -1, math.Inf(1)
	}
	for i := range n {
		c := cellOf(i)
		if c < 0 || grid[c].n < minPts {
			continue
		}
		mx, my := grid[c].sx/float64(grid[c].n), grid[c].sy/float64(grid[c].n)
		dx, dy := float64(xy[2*i])-mx, float64(xy[2*i+1])-my
		if d := dx*dx + dy*dy; d < bestD[c] {
			best[c], bestD[c] = i, d
		}
	}
	border := max(1, int(math.Round(fill*side/20)))
	for c, i := range best {
		if i < 0 {
			continue
		}
		t, err := thumb(i)
		if err != nil {
			return nil, fmt.Errorf("plot: thumbnail of point %d: %w", i, err)
		}
		// Centred in its cell, a little smaller than the cell.
		mx := fr.px0 + (float64(c%cells)+0.5)*side
		my := fr.py0 + (float64(c/cells)+0.5)*side
		half := fill * side / 2
		x0, x1 := int(math.Round(mx-half)), int(math.Round(mx+half))
		y0, y1 := int(math.Round(my-half)), int(math.Round(my+half))
		if y1 > int(fr.py0+fr.ph) || y1-y0 < 2*border+2 {
			continue
		}
		var col color.RGBA = fr.color(-1)
		if labels != nil {
			col = fr.color(labels[i])
		}
		r := image.Rect(x0, y0, x1, y1)
		xdraw.Draw(img, r, &image.Uniform{col}, image.Point{}, xdraw.Src)
		inner := r.Inset(border)
		// Small images (MNIST's 28×28) are enlarged by whole pixels as
		// the paper shows them; larger ones are resampled smoothly.
		var s xdraw.Scaler = xdraw.NearestNeighbor
		if b := t.Bounds(); b.Dx() > inner.Dx() || b.Dy() > inner.Dy() {
			s = xdraw.CatmullRom
		}
		s.Scale(img, inner, t, t.Bounds(), xdraw.Src, nil)
	}
	return img, nil
}

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/internal/sampleimg"
	"github.com/tsimcne/tsimcne-go/plot"
)

// reportThumbSize caps the longer side of a thumbnail embedded in a report.
const reportThumbSize = 64

// report is the data a self-contained page reads instead of the API.
type report struct {
	Meta   *metaJSON         `json:"meta"`
	Points string            `json:"points"` // base64 of the /api/points body
	Thumbs map[string]string `json:"thumbs"` // dataset index → base64 PNG
	Names  map[string]string `json:"names,omitempty"`
}

// writeReport writes one HTML file holding the page, its script, every
// point and up to maxThumbs thumbnails spread over the map, so that it opens
// from disk with no server and no network. It returns the thumbnails kept.
func writeReport(d *mapData, path string, maxThumbs int) (int, error) {
	static, _ := fs.Sub(staticFiles, "static")
	page, err := fs.ReadFile(static, "index.html")
	if err != nil {
		return 0, err
	}
	js, _ := fs.ReadFile(static, "view.js")
	css, _ := fs.ReadFile(static, "view.css")
	rep := report{Meta: d.meta(), Points: base64.StdEncoding.EncodeToString(d.points), Thumbs: map[string]string{}}
	rep.Meta.Report = true
	if d.pack != nil {
		rep.Meta.ThumbsNote = ""
		rows := spreadSample(d.emb.Coords, maxThumbs)
		if d.pack.Schema().HasNames {
			rep.Names = map[string]string{}
		}
		for _, r := range rows {
			ix := d.emb.Index[r]
			smp, err := d.pack.Get(int(ix))
			if err != nil {
				return 0, err
			}
			img, err := sampleimg.Image(&smp)
			if err != nil {
				return 0, fmt.Errorf("sample %d: %w", ix, err)
			}
			if b := img.Bounds(); max(b.Dx(), b.Dy()) > reportThumbSize {
				img = sampleimg.ScaleToFit(img, reportThumbSize)
			}
			png, err := sampleimg.EncodePNG(img)
			if err != nil {
				return 0, err
			}
			key := strconv.FormatInt(ix, 10)
			rep.Thumbs[key] = base64.StdEncoding.EncodeToString(png)
			if rep.Names != nil {
				rep.Names[key] = smp.Name
			}
		}
		rep.Meta.ReportThumb = len(rows)
	} else {
		rep.Meta.ThumbsNote = "this report has no thumbnails: export it with view EMB DATA --export"
	}
	data, err := json.Marshal(rep) // escapes <, > and &, so no "</script>" can occur
	if err != nil {
		return 0, err
	}
	html := string(page)
	html = strings.Replace(html, `<link rel="stylesheet" href="view.css">`, "<style>\n"+string(css)+"</style>", 1)
	html = strings.Replace(html, `<script src="view.js"></script>`,
		"<script>window.TSV_REPORT = "+string(data)+";</script>\n<script>\n"+string(js)+"</script>", 1)
	html = strings.Replace(html, "<title>t-SimCNE map</title>", "<title>t-SimCNE map: "+htmlEscape(filepath.Base(d.embPath))+"</title>", 1)
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, html)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("view: export %s: %w", path, err)
	}
	return len(rep.Thumbs), nil
}

func htmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// spreadSample picks up to k rows spread over the map: one per occupied
// cell of a grid over the points' range (in a fixed random order, so the
// choice within a cell is not biased), then random further rows while the
// budget lasts.
func spreadSample(xy []float32, k int) []int {
	n := len(xy) / 2
	if k >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	order := rng.Perm(n)
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for i := range n {
		x, y := float64(xy[2*i]), float64(xy[2*i+1])
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			continue
		}
		x0, x1, y0, y1 = min(x0, x), max(x1, x), min(y0, y), max(y1, y)
	}
	g := max(1, int(math.Sqrt(float64(k))/1.5))
	seen := make(map[int]bool)
	taken := make([]bool, n)
	var out []int
	for _, i := range order {
		if len(out) >= k {
			break
		}
		x, y := float64(xy[2*i]), float64(xy[2*i+1])
		cx := int(float64(g) * (x - x0) / max(x1-x0, 1e-12))
		cy := int(float64(g) * (y - y0) / max(y1-y0, 1e-12))
		c := min(max(cx, 0), g-1)*g + min(max(cy, 0), g-1)
		if !seen[c] {
			seen[c] = true
			taken[i] = true
			out = append(out, i)
		}
	}
	for _, i := range order {
		if len(out) >= k {
			break
		}
		if !taken[i] {
			out = append(out, i)
		}
	}
	return out
}

// writeFigure draws the map with a grid of thumbnails from the pack.
func writeFigure(d *mapData, path string, width, cells int) error {
	if d.pack == nil {
		return fmt.Errorf("--figure needs DATA, the pack the map was made from")
	}
	thumb := func(row int) (image.Image, error) {
		smp, err := d.pack.Get(int(d.emb.Index[row]))
		if err != nil {
			return nil, err
		}
		return sampleimg.Image(&smp)
	}
	title := fmt.Sprintf("t-SimCNE map of %s (%d images)", filepath.Base(d.packPath), d.n)
	return plot.ThumbnailFigure(path, d.emb.Coords, d.emb.Labels, classNames(d.emb), thumb,
		plot.ThumbnailOptions{Width: width, Cells: cells, Title: title})
}

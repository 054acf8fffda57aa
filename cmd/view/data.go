package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"

	"github.com/tsimcne/tsimcne-go/embedio"
	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/plot"
)

// mapData is what the viewer serves: the embedding, and the pack its rows
// came from when one was given.
type mapData struct {
	embPath  string
	emb      *embedio.Embedding
	n        int
	pack     *format.Reader // nil without DATA
	packPath string
	// rowOf maps a dataset index to its row; nil when row i is index i
	// (what embed writes).
	rowOf map[int64]int
	// points is the /api/points body, built once.
	points []byte
}

// loadMap reads the embedding (Arrow or Parquet) and, when packPath is not
// empty, opens the pack and checks that the embedding belongs to it.
func loadMap(embPath, packPath string) (*mapData, error) {
	emb, err := embedio.ReadFile(embPath)
	if err != nil {
		return nil, err
	}
	if emb.Dim != 2 {
		return nil, fmt.Errorf("%s: the embedding has %d dimensions; view shows 2-D maps", embPath, emb.Dim)
	}
	d := &mapData{embPath: embPath, emb: emb, n: emb.Len(), packPath: packPath}
	if d.n > math.MaxInt32 {
		return nil, fmt.Errorf("%s: %d rows is more than view handles", embPath, d.n)
	}
	identity := true
	for i, v := range emb.Index {
		if v != int64(i) {
			identity = false
			break
		}
	}
	if !identity {
		d.rowOf = make(map[int64]int, d.n)
		for i, v := range emb.Index {
			if _, dup := d.rowOf[v]; dup || v < 0 {
				return nil, fmt.Errorf("%s: row %d: dataset index %d is negative or repeated", embPath, i, v)
			}
			d.rowOf[v] = i
		}
	}
	if packPath != "" {
		r, err := format.Open(packPath, nil)
		if err != nil {
			return nil, fmt.Errorf("open DATA: %w", err)
		}
		if err := checkBelongs(embPath, emb, packPath, r); err != nil {
			r.Close()
			return nil, err
		}
		d.pack = r
	}
	d.points = encodePoints(emb)
	return d, nil
}

// checkBelongs refuses a map made from another dataset: the sample count
// and fingerprint recorded by embed must match the pack, and every row's
// dataset index and label must exist in it with the same label.
func checkBelongs(embPath string, emb *embedio.Embedding, packPath string, r *format.Reader) error {
	mismatch := func(format string, a ...any) error {
		return fmt.Errorf("%s does not belong to %s: %s", filepath.Base(embPath), packPath, fmt.Sprintf(format, a...))
	}
	if s, ok := emb.Meta[embedio.MetaSourceSamples]; ok {
		if v, err := strconv.Atoi(s); err != nil || v != r.Len() {
			return mismatch("the map was made from a dataset of %s samples, the pack has %d", s, r.Len())
		}
	} else if emb.Len() != r.Len() {
		return mismatch("the map has %d rows, the pack %d samples", emb.Len(), r.Len())
	}
	if fp, ok := emb.Meta[embedio.MetaSourceFingerprint]; ok {
		if got := embedio.SourceFingerprint(r.Len(), r.Schema().Classes, r.Label, r.Name); got != fp {
			return mismatch("source fingerprint %s recorded in the map, %s computed from the pack (other data, or another order)", fp, got)
		}
	}
	for i, ix := range emb.Index {
		if ix < 0 || ix >= int64(r.Len()) {
			return mismatch("row %d has dataset index %d, the pack has %d samples", i, ix, r.Len())
		}
		if emb.Labels != nil && emb.Labels[i] >= 0 && emb.Labels[i] != r.Label(int(ix)) {
			return mismatch("sample %d has label %d in the map, %d in the pack", ix, emb.Labels[i], r.Label(int(ix)))
		}
	}
	return nil
}

// Points body layout (little-endian), documented in README: a 16-byte
// header "TSVP", uint32 version (1), uint32 n, uint32 0; then float32 x[n],
// float32 y[n], int32 label[n] (−1: no label), int32 index[n] (dataset
// index of each row). Columns, not rows, so the page wraps each in a typed
// array without copying.
const pointsMagic = "TSVP"

func encodePoints(e *embedio.Embedding) []byte {
	n := e.Len()
	b := make([]byte, 16+16*n)
	copy(b, pointsMagic)
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint32(b[8:], uint32(n))
	x, y, l, ix := b[16:], b[16+4*n:], b[16+8*n:], b[16+12*n:]
	for i := range n {
		binary.LittleEndian.PutUint32(x[4*i:], math.Float32bits(e.Coords[2*i]))
		binary.LittleEndian.PutUint32(y[4*i:], math.Float32bits(e.Coords[2*i+1]))
		lab := int32(-1)
		if e.Labels != nil {
			lab = e.Labels[i]
		}
		binary.LittleEndian.PutUint32(l[4*i:], uint32(lab))
		binary.LittleEndian.PutUint32(ix[4*i:], uint32(e.Index[i]))
	}
	return b
}

// metaJSON is the /api/meta body.
type metaJSON struct {
	File        string            `json:"file"`
	Rows        int               `json:"rows"`
	Classes     []string          `json:"classes"`
	Colors      []string          `json:"colors"`
	Counts      []int             `json:"counts"`
	Unlabelled  int               `json:"unlabelled"`
	Metadata    map[string]string `json:"metadata"`
	FeatureDim  int               `json:"feature_dim"`
	Pack        *packJSON         `json:"pack"`
	ThumbsNote  string            `json:"thumbs_note,omitempty"`
	Report      bool              `json:"report,omitempty"`
	ReportThumb int               `json:"report_thumbs,omitempty"`
}

type packJSON struct {
	File     string           `json:"file"`
	Samples  int              `json:"samples"`
	Image    format.ImageSpec `json:"image"`
	HasNames bool             `json:"has_names"`
}

func (d *mapData) meta() *metaJSON {
	e := d.emb
	m := &metaJSON{File: filepath.Base(d.embPath), Rows: d.n, Classes: classNames(e), Metadata: e.Meta, FeatureDim: e.FeatureDim}
	if m.Classes == nil {
		m.Classes = []string{}
	}
	for _, c := range plot.Palette(len(m.Classes)) {
		m.Colors = append(m.Colors, fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
	}
	if m.Colors == nil {
		m.Colors = []string{}
	}
	m.Counts = make([]int, len(m.Classes))
	for _, l := range e.Labels {
		if l >= 0 && int(l) < len(m.Counts) {
			m.Counts[l]++
		} else {
			m.Unlabelled++
		}
	}
	if e.Labels == nil {
		m.Unlabelled = d.n
	}
	if d.pack != nil {
		s := d.pack.Schema()
		m.Pack = &packJSON{File: filepath.Base(d.packPath), Samples: d.pack.Len(), Image: s.Image, HasNames: s.HasNames}
	} else {
		m.ThumbsNote = "thumbnails need the pack: run view " + filepath.Base(d.embPath) + " DATA.tscn"
	}
	return m
}

// classNames are the names of the labels: the file's classes, or the
// labels' numbers when it has none.
func classNames(e *embedio.Embedding) []string {
	if len(e.Classes) > 0 || e.Labels == nil {
		return e.Classes
	}
	hi := int32(-1)
	for _, l := range e.Labels {
		hi = max(hi, l)
	}
	names := make([]string, hi+1)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// row returns the row of dataset index ix, or an error for an index the
// map does not hold.
func (d *mapData) row(ix int64) (int, error) {
	if d.rowOf == nil {
		if ix < 0 || ix >= int64(d.n) {
			return 0, errNotFound
		}
		return int(ix), nil
	}
	r, ok := d.rowOf[ix]
	if !ok {
		return 0, errNotFound
	}
	return r, nil
}

var errNotFound = errors.New("not found")

// neighbor is one entry of /api/neighbors.
type neighbor struct {
	Index    int64   `json:"index"`
	Label    int32   `json:"label"`
	Distance float64 `json:"distance"`
}

// neighbors finds the k rows nearest to row r by brute force, in the map
// (space "map") or in feature space ("features"). A pass over 1,000,000 2-D
// points takes a few milliseconds, so no index is kept.
func (d *mapData) neighbors(r, k int, features bool) []neighbor {
	e := d.emb
	dim, v := 2, e.Coords
	if features {
		dim, v = e.FeatureDim, e.Features
	}
	q := v[r*dim : (r+1)*dim]
	type cand struct {
		row int
		d   float64
	}
	best := make([]cand, 0, k+1)
	for i := range d.n {
		if i == r {
			continue
		}
		p := v[i*dim : (i+1)*dim]
		var s float64
		for j, a := range q {
			t := float64(p[j] - a)
			s += t * t
		}
		if math.IsNaN(s) || (len(best) == k && s >= best[k-1].d) {
			continue
		}
		j := len(best)
		if j < k {
			best = append(best, cand{})
		} else {
			j = k - 1
		}
		for j > 0 && best[j-1].d > s {
			best[j] = best[j-1]
			j--
		}
		best[j] = cand{i, s}
	}
	out := make([]neighbor, len(best))
	for i, c := range best {
		lab := int32(-1)
		if e.Labels != nil {
			lab = e.Labels[c.row]
		}
		out[i] = neighbor{Index: e.Index[c.row], Label: lab, Distance: math.Sqrt(c.d)}
	}
	return out
}

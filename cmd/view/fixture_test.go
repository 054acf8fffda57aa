package main

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tsimcne/tsimcne-go/embedio"
	"github.com/tsimcne/tsimcne-go/format"
)

// fixture is a small pack and its map: n images in 10 classes, each class a
// well separated Gaussian blob on the map, images of random pixels (every
// one different, so a wrong thumbnail cannot pass for the right one).
type fixture struct {
	dir, pack, emb string
	e              *embedio.Embedding
	images         [][]byte // HWC pixels of each sample
	side, channels int
}

var classNames10 = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

func newFixture(t testing.TB, n, side, channels int, features bool) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), side: side, channels: channels}
	f.pack = filepath.Join(f.dir, "data.tscn")
	f.emb = filepath.Join(f.dir, "emb.arrow")
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	w, err := format.Create(f.pack, format.Schema{Image: format.ImageSpec{Fixed: true, Height: side, Width: side, Channels: channels},
		Classes: classNames10, HasNames: true, Source: format.Source{Kind: "test"}}, &format.WriterOptions{Codec: "lz4", ChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	labels := make([]int32, n)
	for i := range n {
		labels[i] = int32(rng.IntN(10))
		px := make([]byte, side*side*channels)
		for j := range px {
			px[j] = byte(rng.IntN(256))
		}
		f.images = append(f.images, px)
		if err := w.Add(&format.Sample{Index: i, Label: labels[i], Label2: -1, Height: side, Width: side, Channels: channels,
			Data: px, Name: "img/" + strconv.Itoa(i) + ".png"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := format.Open(f.pack, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f.e = &embedio.Embedding{Labels: labels, Classes: classNames10, Coords: blobs(labels, 2), Dim: 2, Meta: map[string]string{
		"model": "test", embedio.MetaSourceSamples: strconv.Itoa(n),
		embedio.MetaSourceFingerprint: embedio.SourceFingerprint(r.Len(), r.Schema().Classes, r.Label, r.Name),
	}}
	if features {
		f.e.FeatureDim = 8
		f.e.Features = make([]float32, n*8)
		for i := range f.e.Features {
			f.e.Features[i] = float32(rng.NormFloat64())
		}
	}
	if err := embedio.Write(f.emb, f.e); err != nil {
		t.Fatal(err)
	}
	return f
}

// blobs places each label's points in a Gaussian around a point on a
// circle, so the classes are far apart on the map.
func blobs(labels []int32, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 9))
	xy := make([]float32, 2*len(labels))
	for i, l := range labels {
		a := 2 * math.Pi * float64(l) / 10
		xy[2*i] = float32(40*math.Cos(a) + 4*rng.NormFloat64())
		xy[2*i+1] = float32(40*math.Sin(a) + 4*rng.NormFloat64())
	}
	return xy
}

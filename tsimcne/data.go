package tsimcne

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/loader"
)

// Dataset is what Fit and Transform read: any indexed collection of images
// with labels (loader.Source). Indices are dataset order; Transform's rows
// follow them. A Dataset that also has Classes() []string names its labels
// in the outputs.
type Dataset = loader.Source

// Packed is a packed file opened as a Dataset.
type Packed struct {
	loader.Chunked
	r *format.Reader
}

// OpenPacked opens a packed dataset file (see cmd/pack). cacheBytes bounds
// its decompressed-chunk cache (0 = the format's default).
func OpenPacked(path string, cacheBytes int64) (*Packed, error) {
	r, err := format.Open(path, &format.ReaderOptions{CacheBytes: cacheBytes})
	if err != nil {
		return nil, err
	}
	if r.Len() == 0 {
		r.Close()
		return nil, fmt.Errorf("tsimcne: %s: the file holds no images", path)
	}
	return &Packed{Chunked: loader.FromReader(r), r: r}, nil
}

// Classes returns the class names.
func (p *Packed) Classes() []string { return p.r.Schema().Classes }

// Reader returns the underlying packed-file reader.
func (p *Packed) Reader() *format.Reader { return p.r }

// Close closes the file.
func (p *Packed) Close() error { return p.r.Close() }

// classesOf returns d's class names when it has them.
func classesOf(d Dataset) []string {
	if c, ok := d.(interface{ Classes() []string }); ok {
		return c.Classes()
	}
	return nil
}

// imageShape returns the shape shared by d's images, checking a few.
func imageShape(d Dataset) (h, w int, err error) {
	if p, ok := d.(*Packed); ok {
		im := p.r.Schema().Image
		if im.Fixed {
			return im.Height, im.Width, nil
		}
		return 0, 0, fmt.Errorf("tsimcne: %s: images have different sizes; set the image size (pack with --resize, or Config.ImageSize)", p.r.Path())
	}
	if d.Len() == 0 {
		return 0, 0, errors.New("tsimcne: the dataset holds no images")
	}
	s, err := d.Get(0)
	if err != nil {
		return 0, 0, err
	}
	return s.Height, s.Width, nil
}

// subset is a Dataset restricted to some of another's indices.
type subset struct {
	d   Dataset
	idx []int
}

func (s *subset) Len() int { return len(s.idx) }

func (s *subset) Get(i int) (loader.Sample, error) { return s.d.Get(s.idx[i]) }

// trainSubset draws k of d's indices by seed (sorted, so reading stays in
// storage-friendly order), or returns d itself for k = 0 or k ≥ Len.
func trainSubset(d Dataset, k int, seed uint64) Dataset {
	n := d.Len()
	if k <= 0 || k >= n {
		return d
	}
	perm := rand.New(rand.NewPCG(seed, 0x737562736574)).Perm(n)[:k]
	slices.Sort(perm)
	return &subset{d: d, idx: perm}
}

// ChunkOf, ChunkBytes and Prefetch make a Packed file a loader.Prefetcher,
// so that Sequential and QuasiRandom epochs over it read ahead.
func (p *Packed) ChunkOf(i int) int { return p.r.ChunkOf(i) }

// ChunkBytes returns chunk c's stored size.
func (p *Packed) ChunkBytes(c int) int { return p.r.Chunk(c).Stored }

// Prefetch brings chunk c into the page cache (format.Reader.Prefetch).
func (p *Packed) Prefetch(c int, buf []byte) ([]byte, error) { return p.r.Prefetch(c, buf) }

// DataID identifies the data a run trains on, so that a resumed run can
// refuse other data: a different file of the same size, a re-packed
// dataset, a subset. For a packed file it is the file's size, sample count
// and fingerprint (a checksum over its checksums); for other datasets only
// the sample count and the first image's shape.
type DataID struct {
	Path        string `json:"path,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
	Samples     int    `json:"samples"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Height      int    `json:"height,omitempty"`
	Width       int    `json:"width,omitempty"`
	Channels    int    `json:"channels,omitempty"`
}

// Identify returns d's DataID.
func Identify(d Dataset) DataID {
	id := DataID{Samples: d.Len()}
	if p, ok := d.(*Packed); ok {
		id.Path, id.Bytes = p.r.Path(), p.r.Size()
		id.Fingerprint = fmt.Sprintf("crc32c:%08x", p.r.Fingerprint())
		if im := p.r.Schema().Image; im.Fixed {
			id.Height, id.Width, id.Channels = im.Height, im.Width, im.Channels
		}
		return id
	}
	if d.Len() > 0 {
		if s, err := d.Get(0); err == nil {
			id.Height, id.Width, id.Channels = s.Height, s.Width, s.Channels
		}
	}
	return id
}

// Same reports whether two DataIDs describe the same data (the path may
// differ: a moved file is the same data).
func (a DataID) Same(b DataID) bool {
	return a.Bytes == b.Bytes && a.Samples == b.Samples && a.Fingerprint == b.Fingerprint &&
		a.Height == b.Height && a.Width == b.Width && a.Channels == b.Channels
}

// String describes the data for messages.
func (a DataID) String() string {
	s := fmt.Sprintf("%d images", a.Samples)
	if a.Height > 0 {
		s += fmt.Sprintf(" of %dx%dx%d", a.Width, a.Height, a.Channels)
	}
	if a.Fingerprint != "" {
		s += fmt.Sprintf(", %d bytes, %s", a.Bytes, a.Fingerprint)
	}
	if a.Path != "" {
		s = a.Path + " (" + s + ")"
	}
	return s
}

// ErrOtherData is wrapped by Fit's error when a resumed model is given data
// other than the data it was trained on.
var ErrOtherData = errors.New("tsimcne: not the data the run was trained on")

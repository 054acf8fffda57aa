package loader

import (
	"fmt"

	"github.com/tsimcne/tsimcne-go/format"
)

// Sample is one stored image as the loader needs it.
type Sample struct {
	Label    int32
	Height   int
	Width    int
	Channels int // 1 (gray) or 3 (RGB) for raw samples; informational when Encoded
	// Data is raw HWC uint8 pixels, or an encoded image file (JPEG, PNG, GIF,
	// BMP, WebP) when Encoded. The loader only reads it, and only until the
	// sample's views are written.
	Data    []byte
	Encoded bool
}

// Source is what the loader reads from: random access by dataset index,
// safe for concurrent use by the worker goroutines. A packed file
// (FromReader) and an in-memory slice (MemorySource) both qualify.
type Source interface {
	Len() int
	Get(i int) (Sample, error)
}

// Chunked is a Source stored in chunks; QuasiRandom order needs it.
type Chunked interface {
	Source
	NumChunks() int
	// ChunkSamples lists the dataset indices stored in chunk c.
	ChunkSamples(c int) []uint32
}

// OpenFile opens the packed file at path (its decompressed-chunk cache bounded
// by cacheBytes; 0 = the format's default) and a Loader on it. The Loader's
// Close also closes the file.
func OpenFile(path string, cacheBytes int64, opt Options) (*Loader, error) {
	r, err := format.Open(path, &format.ReaderOptions{CacheBytes: cacheBytes})
	if err != nil {
		return nil, err
	}
	l, err := New(FromReader(r), opt)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	l.closer = r
	return l, nil
}

// FromReader adapts a packed-file reader. Memory: decompressed chunks live in
// the reader's cache (format.ReaderOptions.CacheBytes); the loader holds a
// sample's bytes only while its views are being cut.
func FromReader(r *format.Reader) Chunked { return fileSource{r} }

type fileSource struct{ r *format.Reader }

func (f fileSource) Len() int                    { return f.r.Len() }
func (f fileSource) NumChunks() int              { return f.r.NumChunks() }
func (f fileSource) ChunkSamples(c int) []uint32 { return f.r.ChunkSamples(c) }

func (f fileSource) Get(i int) (Sample, error) {
	s, err := f.r.Get(i)
	if err != nil {
		return Sample{}, err
	}
	return Sample{Label: s.Label, Height: s.Height, Width: s.Width, Channels: s.Channels, Data: s.Data, Encoded: s.Encoded}, nil
}

// MemorySource is an in-memory Source, for tests, benchmarks and small data.
// ChunkLen > 0 makes it Chunked with consecutive indices per chunk.
type MemorySource struct {
	Samples  []Sample
	ChunkLen int
}

// Len returns the number of samples.
func (m *MemorySource) Len() int { return len(m.Samples) }

// Get returns sample i.
func (m *MemorySource) Get(i int) (Sample, error) {
	if i < 0 || i >= len(m.Samples) {
		return Sample{}, errIndex(i, len(m.Samples))
	}
	return m.Samples[i], nil
}

// NumChunks returns the number of chunks (1 when ChunkLen is 0).
func (m *MemorySource) NumChunks() int {
	if m.ChunkLen <= 0 {
		return 1
	}
	return (len(m.Samples) + m.ChunkLen - 1) / m.ChunkLen
}

// ChunkSamples lists the indices of chunk c.
func (m *MemorySource) ChunkSamples(c int) []uint32 {
	cl := m.ChunkLen
	if cl <= 0 {
		cl = len(m.Samples)
	}
	lo, hi := c*cl, min((c+1)*cl, len(m.Samples))
	out := make([]uint32, 0, max(0, hi-lo))
	for i := lo; i < hi; i++ {
		out = append(out, uint32(i))
	}
	return out
}

package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// DefaultCacheBytes bounds the decompressed-chunk cache when ReaderOptions
// does not.
const DefaultCacheBytes = 256 << 20

// ReaderOptions configures Open. The zero value (or nil) is ready to use.
type ReaderOptions struct {
	// CacheBytes bounds the memory the cache of decompressed chunks keeps
	// alive; 0 means DefaultCacheBytes. Uncompressed chunks are read straight
	// from the memory map and never cached.
	CacheBytes int64
	// NoChunkCheck skips the CRC-32C check the reader otherwise makes the
	// first time it touches each chunk. The check costs about one pass over
	// the stored bytes per chunk; it is what turns a damaged chunk into an
	// error instead of wrong pixels.
	NoChunkCheck bool
}

// Reader reads a packed file. All methods are safe for concurrent use.
type Reader struct {
	path   string
	f      *os.File
	data   []byte // the whole file, memory-mapped
	mapped bool   // data came from mapFile and must be unmapped
	hdr    header
	ft     footer
	schema *Schema
	sec    [numSections][]byte
	n      int
	chunks int

	cache   *chunkCache
	checked []atomic.Bool // chunks whose CRC has been verified
	noCheck bool
}

// Open maps a packed file and checks its header, footer and metadata
// sections (schema, chunk table, order, index, names). Chunk payloads are
// checked lazily on first use, or all at once by Verify.
func Open(path string, opt *ReaderOptions) (*Reader, error) {
	var o ReaderOptions
	if opt != nil {
		o = *opt
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("format: %s: is a directory, not a packed dataset file", path)
	}
	data, err := mapFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("format: %s: %w", path, err)
	}
	r, err := newReader(path, data, &o)
	if err != nil {
		unmapFile(data)
		f.Close()
		return nil, err
	}
	r.f, r.mapped = f, true
	return r, nil
}

// newReader builds a Reader over file bytes already in memory.
func newReader(path string, data []byte, o *ReaderOptions) (*Reader, error) {
	r := &Reader{path: path, data: data, noCheck: o.NoChunkCheck}
	if err := r.parse(); err != nil {
		return nil, fmt.Errorf("format: %s: %w", path, err)
	}
	cache := o.CacheBytes
	if cache <= 0 {
		cache = DefaultCacheBytes
	}
	r.cache = newChunkCache(cache)
	r.checked = make([]atomic.Bool, r.chunks)
	return r, nil
}

// parse validates everything but the chunk payloads.
func (r *Reader) parse() error {
	b := r.data
	h, err := decodeHeader(b)
	if err != nil {
		return err
	}
	r.hdr = h
	size := uint64(len(b))
	if size < HeaderSize+FooterSize {
		return &DamageError{Section: "footer", Detail: fmt.Sprintf("file has %d bytes, too short to hold a footer: it is truncated", size)}
	}
	ft, err := decodeFooter(b[size-FooterSize:])
	if err != nil {
		return err
	}
	r.ft = ft
	if ft.HeaderCRC != binary.LittleEndian.Uint32(b[60:]) {
		return &DamageError{Section: "footer", Detail: "it belongs to a different header"}
	}
	// The sections must tile [DataEnd, size-FooterSize) exactly, so that
	// every byte of the file is under some checksum.
	pos := ft.DataEnd
	if pos < HeaderSize || pos > size-FooterSize {
		return &DamageError{Section: "footer", Detail: fmt.Sprintf("data region ends at %d, outside the file", pos)}
	}
	for i, s := range ft.Sections {
		if s.Off != pos || s.Len > size-FooterSize-pos {
			return &DamageError{Section: "footer", Detail: fmt.Sprintf("%s section at %d+%d does not follow at %d inside the file", sectionNames[i], s.Off, s.Len, pos)}
		}
		r.sec[i] = b[s.Off : s.Off+s.Len]
		pos += s.Len
		if got := checksum(r.sec[i]); got != s.CRC {
			return &DamageError{Section: sectionNames[i], Detail: fmt.Sprintf("checksum %08x, computed %08x", s.CRC, got)}
		}
	}
	if pos != size-FooterSize {
		return &DamageError{Section: "footer", Detail: fmt.Sprintf("sections end at %d, footer starts at %d", pos, size-FooterSize)}
	}
	if ft.Samples > uint64(^uint32(0)) || ft.Chunks > uint64(^uint32(0)) {
		return &DamageError{Section: "footer", Detail: fmt.Sprintf("%d samples in %d chunks is beyond the format's limits", ft.Samples, ft.Chunks)}
	}
	r.n, r.chunks = int(ft.Samples), int(ft.Chunks)
	if want := uint64(r.chunks) * ChunkEntrySize; uint64(len(r.sec[secChunks])) != want {
		return &DamageError{Section: "chunk table", Detail: fmt.Sprintf("%d bytes for %d chunks", len(r.sec[secChunks]), r.chunks)}
	}
	if want := uint64(r.n) * 4; uint64(len(r.sec[secOrder])) != want {
		return &DamageError{Section: "order", Detail: fmt.Sprintf("%d bytes for %d samples", len(r.sec[secOrder]), r.n)}
	}
	if want := uint64(r.n) * IndexEntrySize; uint64(len(r.sec[secIndex])) != want {
		return &DamageError{Section: "index", Detail: fmt.Sprintf("%d bytes for %d samples", len(r.sec[secIndex]), r.n)}
	}
	s, err := decodeSchema(r.sec[secSchema])
	if err != nil {
		return err
	}
	r.schema = s
	if s.Image.Encoded != (h.Flags&FlagEncoded != 0) {
		return &DamageError{Section: "schema", Detail: "image encoding disagrees with the header's flags"}
	}
	if s.HasNames {
		nb := r.sec[secNames]
		if uint64(len(nb)) < 8*(uint64(r.n)+1) {
			return &DamageError{Section: "names", Detail: fmt.Sprintf("%d bytes cannot hold %d name offsets", len(nb), r.n+1)}
		}
		if last := binary.LittleEndian.Uint64(nb[8*r.n:]); last != uint64(len(nb))-8*(uint64(r.n)+1) {
			return &DamageError{Section: "names", Detail: "the last offset does not match the section's length"}
		}
	} else if len(r.sec[secNames]) != 0 {
		return &DamageError{Section: "names", Detail: "present although the schema says samples have no names"}
	}
	// The chunk table must tile the data region, again so that every byte is
	// under a checksum, and must cover the samples in storage order.
	pos, first := uint64(HeaderSize), uint64(0)
	for c := range r.chunks {
		e := r.chunk(c)
		if e.Off != pos || uint64(e.Stored) > ft.DataEnd-pos {
			return &DamageError{Section: fmt.Sprintf("chunk table (chunk %d)", c), Detail: fmt.Sprintf("chunk at %d+%d does not follow at %d inside the data region", e.Off, e.Stored, pos)}
		}
		if uint64(e.First) != first || e.Count == 0 && r.n > 0 {
			return &DamageError{Section: fmt.Sprintf("chunk table (chunk %d)", c), Detail: fmt.Sprintf("first sample %d and count %d, want first %d", e.First, e.Count, first)}
		}
		if e.Codec > CodecZstd || (e.Codec == CodecNone && e.Stored != e.Raw) {
			return &DamageError{Section: fmt.Sprintf("chunk table (chunk %d)", c), Detail: fmt.Sprintf("codec %v with %d stored and %d raw bytes", e.Codec, e.Stored, e.Raw)}
		}
		pos += uint64(e.Stored)
		first += uint64(e.Count)
	}
	if pos != ft.DataEnd || first != uint64(r.n) {
		return &DamageError{Section: "chunk table", Detail: fmt.Sprintf("chunks cover bytes up to %d and %d samples; the data region ends at %d and the file has %d samples", pos, first, ft.DataEnd, r.n)}
	}
	// Each chunk's raw length must be exactly where its last sample ends.
	// This bounds what a decompression may allocate by the index, and makes
	// every sample's bytes addressable without further checks in Get.
	end := make([]uint32, r.chunks)
	for i := range r.n {
		e := r.entry(i)
		if e.Chunk >= uint32(r.chunks) {
			return &DamageError{Section: "index", Detail: fmt.Sprintf("sample %d names chunk %d of %d", i, e.Chunk, r.chunks)}
		}
		if x := uint64(e.Off) + uint64(e.Size); x > uint64(end[e.Chunk]) {
			if x > uint64(^uint32(0)) {
				return &DamageError{Section: "index", Detail: fmt.Sprintf("sample %d ends at byte %d of its chunk", i, x)}
			}
			end[e.Chunk] = uint32(x)
		}
	}
	for c := range r.chunks {
		if e := r.chunk(c); e.Raw != end[c] {
			return &DamageError{Section: fmt.Sprintf("chunk table (chunk %d)", c), Detail: fmt.Sprintf("raw length %d, but its samples end at %d", e.Raw, end[c])}
		}
	}
	return nil
}

func (r *Reader) chunk(c int) chunkEntry {
	return getChunkEntry(r.sec[secChunks][c*ChunkEntrySize:])
}

func (r *Reader) entry(i int) indexEntry {
	return getIndexEntry(r.sec[secIndex][i*IndexEntrySize:])
}

// Close unmaps the file. Samples returned by Get that alias the map must not
// be used afterwards.
func (r *Reader) Close() error {
	var err error
	if r.mapped {
		err = unmapFile(r.data)
		r.mapped = false
	}
	r.data = nil
	if r.f != nil {
		if e := r.f.Close(); err == nil {
			err = e
		}
		r.f = nil
	}
	return err
}

// Path returns the file's path as given to Open.
func (r *Reader) Path() string { return r.path }

// Len returns the number of samples.
func (r *Reader) Len() int { return r.n }

// NumChunks returns the number of chunks.
func (r *Reader) NumChunks() int { return r.chunks }

// Schema returns the file's schema. It must not be modified.
func (r *Reader) Schema() *Schema { return r.schema }

// Version returns the file's format version.
func (r *Reader) Version() (major, minor int) { return int(r.hdr.Major), int(r.hdr.Minor) }

// Size returns the file's size in bytes.
func (r *Reader) Size() int64 { return int64(len(r.data)) }

// Fingerprint is the CRC-32C of the file's footer. The footer holds the
// checksums of the header and of every metadata section, and the chunk
// table holds every chunk's, so two files with the same fingerprint, size
// and sample count hold the same data (barring a deliberate collision).
// A training run records it to refuse resuming on other data.
func (r *Reader) Fingerprint() uint32 {
	// Bytes 0..148: a CRC over data that ends with its own CRC is a
	// constant, so the stored CRC and the trailer are left out.
	return checksum(r.data[len(r.data)-FooterSize : len(r.data)-FooterSize+148])
}

// ChunkInfo describes one chunk.
type ChunkInfo struct {
	Offset       int64
	Stored, Raw  int
	First, Count int // storage positions
	Codec        Codec
}

// Chunk describes chunk c.
func (r *Reader) Chunk(c int) ChunkInfo {
	e := r.chunk(c)
	return ChunkInfo{Offset: int64(e.Off), Stored: int(e.Stored), Raw: int(e.Raw), First: int(e.First), Count: int(e.Count), Codec: e.Codec}
}

// ChunkSize returns the uncompressed size of chunk c in bytes.
func (r *Reader) ChunkSize(c int) int { return int(r.chunk(c).Raw) }

// ChunkSamples returns the dataset indices stored in chunk c, in storage
// order. The slice is a fresh copy the caller owns.
func (r *Reader) ChunkSamples(c int) []uint32 {
	e := r.chunk(c)
	return r.StorageOrder(make([]uint32, 0, e.Count), int(e.First), int(e.First+e.Count))
}

// StorageOrder appends to dst the dataset indices at storage positions
// [from, to), which is the order that reads the file front to back.
func (r *Reader) StorageOrder(dst []uint32, from, to int) []uint32 {
	o := r.sec[secOrder]
	for p := from; p < to; p++ {
		dst = append(dst, binary.LittleEndian.Uint32(o[4*p:]))
	}
	return dst
}

// ChunkOf returns the chunk holding dataset index i.
func (r *Reader) ChunkOf(i int) int {
	return int(binary.LittleEndian.Uint32(r.sec[secIndex][i*IndexEntrySize:]))
}

// Name returns the source name of sample i, or "" when the file has none.
func (r *Reader) Name(i int) string {
	if !r.schema.HasNames || i < 0 || i >= r.n {
		return ""
	}
	nb := r.sec[secNames]
	base := 8 * uint64(r.n+1)
	a := binary.LittleEndian.Uint64(nb[8*i:])
	b := binary.LittleEndian.Uint64(nb[8*i+8:])
	if a > b || base+b > uint64(len(nb)) {
		return ""
	}
	return string(nb[base+a : base+b])
}

// Label returns the label of sample i without touching its chunk.
func (r *Reader) Label(i int) int32 { return r.entry(i).Label }

// ErrIndex is wrapped by errors for an index outside 0..Len-1.
var ErrIndex = errors.New("sample index out of range")

// Get returns sample i (dataset order). Its Data aliases the memory map when
// the chunk is stored uncompressed (no copy) or a cached decompressed chunk
// otherwise; it is read-only and valid until Close.
func (r *Reader) Get(i int) (Sample, error) {
	if i < 0 || i >= r.n {
		return Sample{}, fmt.Errorf("format: %s: sample %d: %w (the file has %d)", r.path, i, ErrIndex, r.n)
	}
	e := r.entry(i)
	if e.Chunk >= uint32(r.chunks) { // Open checked every entry; this guards a file changed under the map
		return Sample{}, fmt.Errorf("format: %s: sample %d: %w", r.path, i, &DamageError{Section: "index", Detail: fmt.Sprintf("sample %d names chunk %d of %d", i, e.Chunk, r.chunks)})
	}
	chunk, err := r.chunkData(int(e.Chunk))
	if err != nil {
		return Sample{}, fmt.Errorf("format: %s: sample %d: %w", r.path, i, err)
	}
	return r.sampleIn(i, e, chunk)
}

// chunkData returns the uncompressed bytes of chunk c.
func (r *Reader) chunkData(c int) ([]byte, error) {
	e := r.chunk(c)
	stored := r.data[e.Off : e.Off+uint64(e.Stored)]
	if e.Codec == CodecNone {
		if !r.noCheck && !r.checked[c].Load() {
			if got := checksum(stored); got != e.CRC {
				return nil, chunkDamage(c, e, got)
			}
			r.checked[c].Store(true)
		}
		return stored, nil
	}
	return r.cache.get(uint32(c), func() ([]byte, error) {
		if !r.noCheck {
			if got := checksum(stored); got != e.CRC {
				return nil, chunkDamage(c, e, got)
			}
		}
		buf := make([]byte, e.Raw)
		if err := decompress(e.Codec, stored, buf); err != nil {
			return nil, &DamageError{Section: fmt.Sprintf("chunk %d", c), Detail: err.Error()}
		}
		return buf, nil
	})
}

// ReadChunk decompresses chunk c into dst (grown if needed) and returns it,
// bypassing the cache; a loader that keeps its own chunk buffers uses it to
// read without allocating. The chunk's checksum is always checked.
func (r *Reader) ReadChunk(c int, dst []byte) ([]byte, error) {
	if c < 0 || c >= r.chunks {
		return dst, fmt.Errorf("format: %s: chunk %d of %d: out of range", r.path, c, r.chunks)
	}
	e := r.chunk(c)
	stored := r.data[e.Off : e.Off+uint64(e.Stored)]
	if got := checksum(stored); got != e.CRC {
		return dst, fmt.Errorf("format: %s: %w", r.path, chunkDamage(c, e, got))
	}
	if cap(dst) < int(e.Raw) {
		dst = make([]byte, e.Raw)
	}
	dst = dst[:e.Raw]
	if err := decompress(e.Codec, stored, dst); err != nil {
		return dst, fmt.Errorf("format: %s: %w", r.path, &DamageError{Section: fmt.Sprintf("chunk %d", c), Detail: err.Error()})
	}
	return dst, nil
}

// SampleIn returns sample i from chunk bytes obtained with ReadChunk(ChunkOf(i)).
func (r *Reader) SampleIn(i int, chunk []byte) (Sample, error) {
	if i < 0 || i >= r.n {
		return Sample{}, fmt.Errorf("format: %s: sample %d: %w (the file has %d)", r.path, i, ErrIndex, r.n)
	}
	return r.sampleIn(i, r.entry(i), chunk)
}

// sampleIn builds sample i from its index entry e and its chunk's bytes.
func (r *Reader) sampleIn(i int, e indexEntry, chunk []byte) (Sample, error) {
	s := Sample{
		Index: i, Label: e.Label, Label2: e.Label2,
		Height: int(e.Height), Width: int(e.Width), Channels: int(e.Channels),
		Encoded: e.Format != FormatRaw, Format: e.Format,
	}
	if uint64(e.Off)+uint64(e.Size) > uint64(len(chunk)) {
		return s, fmt.Errorf("format: %s: sample %d: %w", r.path, i, &DamageError{Section: "index", Detail: fmt.Sprintf("sample at %d+%d lies outside its chunk %d of %d bytes", e.Off, e.Size, e.Chunk, len(chunk))})
	}
	s.Data = chunk[e.Off : e.Off+e.Size : e.Off+e.Size]
	if r.schema.HasNames {
		s.Name = r.Name(i)
	}
	return s, nil
}

func chunkDamage(c int, e chunkEntry, got uint32) error {
	return &DamageError{Section: fmt.Sprintf("chunk %d", c), Detail: fmt.Sprintf("bytes %d..%d: checksum %08x, computed %08x", e.Off, e.Off+uint64(e.Stored), e.CRC, got)}
}

// CacheStats reports the bytes the chunk cache holds and its hits and misses.
func (r *Reader) CacheStats() (bytes, hits, misses int64) { return r.cache.stats() }

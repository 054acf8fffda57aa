package format

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// DefaultChunkSize is the default target of uncompressed bytes per chunk.
// Small enough that a random read decompresses little (a 128 KiB lz4 chunk
// expands in tens of microseconds), large enough that lz4 and zstd find
// redundancy and the chunk table stays tiny.
const DefaultChunkSize = 128 << 10

// MaxSampleSize is the largest sample the index can address.
const MaxSampleSize = math.MaxUint32

// WriterOptions configures a Writer. The zero value is ready to use.
type WriterOptions struct {
	// Codec is "none", "lz4" or "zstd". Empty picks lz4 for raw pixels (fast
	// to expand, roughly halves natural images) and none for encoded images,
	// which do not compress further.
	Codec string
	// ChunkSize is the target of uncompressed bytes per chunk; 0 means
	// DefaultChunkSize. A sample larger than ChunkSize gets a chunk of its own.
	ChunkSize int
	// Workers is the number of compression goroutines; 0 means GOMAXPROCS.
	Workers int
	// Shuffled and ShuffleSeed record that the caller adds samples in a
	// shuffled storage order; they go into the schema.
	Shuffled    bool
	ShuffleSeed uint64
}

// Sample is one sample as written and as read.
type Sample struct {
	// Index is the sample's position in dataset order. When writing, it is
	// the ordering key: at Close the samples are ranked by Index and the rank
	// becomes the dataset index, so a writer that skipped bad samples still
	// yields dense indices 0..n-1.
	Index int
	// Label is the class index; Label2 the secondary label or -1.
	Label, Label2 int32
	// Height, Width and Channels describe the image (also for encoded images).
	Height, Width, Channels int
	// Data is the raw HWC uint8 pixels, or the encoded file when Encoded.
	// From a Reader it may alias the memory map or a cached chunk: it is
	// read-only and stays valid as long as it is referenced.
	Data []byte
	// Encoded is true when Data is an encoded file; Format says which.
	Encoded bool
	Format  ImageFormat
	// Name is the sample's name in its source; empty when the file has none.
	Name string
}

// Writer writes one packed file. Add samples in storage order, then Close
// to commit or Abort to discard. Its methods must be called from one
// goroutine; compression runs on Workers goroutines behind it.
type Writer struct {
	path, tmp string
	f         *os.File
	unlock    func() // Append's lock on path; nil for Create
	bw        *bufio.Writer
	off       uint64 // bytes written so far
	schema    Schema
	codec     Codec
	chunkSize int

	cur      []byte // the chunk being filled
	curFirst uint32 // storage position of its first sample
	curCount uint32
	nchunks  uint32

	// Shape inference: when the schema does not fix the shape, Close marks
	// it fixed if every sample turned out to share one.
	shape     [3]int
	sameShape bool

	entries []indexEntry // storage order
	keys    []int        // storage order: each sample's ordering key
	names   []string     // storage order
	hasL2   bool

	jobs    chan *chunkJob // to compression workers
	ordered chan *chunkJob // to the file writer, in chunk order
	free    chan []byte    // recycled chunk buffers
	wg      sync.WaitGroup
	chunks  []chunkEntry
	errMu   sync.Mutex
	err     error
	closed  bool
}

type chunkJob struct {
	raw    []byte
	first  uint32
	count  uint32
	stored []byte
	codec  Codec
	crc    uint32
	err    error
	done   chan struct{}
	comp   *compressor
	pooled bool
}

// Create starts a packed file at path. Nothing appears at path until Close
// succeeds: the data goes to a temporary file in the same directory.
func Create(path string, schema Schema, opt *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opt != nil {
		o = *opt
	}
	codec := CodecLZ4
	if schema.Image.Encoded {
		codec = CodecNone
	}
	if o.Codec != "" {
		c, err := ParseCodec(o.Codec)
		if err != nil {
			return nil, err
		}
		codec = c
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	schema.Codec = codec.String()
	schema.ChunkSize = o.ChunkSize
	schema.Shuffled = o.Shuffled
	schema.ShuffleSeed = o.ShuffleSeed
	schema.Fields = schema.fields()
	if schema.Label2Name == "" && len(schema.Classes2) > 0 {
		return nil, errors.New("format: schema: classes2 given without label2_name")
	}

	// A locked temporary file: one left by a killed writer is removed by
	// the next write to the same path (internal/atomicfile).
	f, err := atomicfile.CreateTemp(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		path: path, tmp: f.Name(), f: f,
		bw:        bufio.NewWriterSize(f, 1<<20),
		schema:    schema,
		codec:     codec,
		chunkSize: o.ChunkSize,
		hasL2:     schema.Label2Name != "",
		jobs:      make(chan *chunkJob, o.Workers),
		ordered:   make(chan *chunkJob, 2*o.Workers+2),
		free:      make(chan []byte, 2*o.Workers+4),
	}
	// The header is written now with its final flags; nothing in it depends
	// on the data.
	if err := w.write(w.header().encode()); err != nil {
		w.Abort()
		return nil, err
	}
	w.cur = make([]byte, 0, o.ChunkSize)
	for range o.Workers {
		w.wg.Add(1)
		go w.compressLoop()
	}
	w.wg.Add(1)
	go w.writeLoop()
	return w, nil
}

func (w *Writer) header() header {
	h := header{Major: VersionMajor, Minor: VersionMinor}
	if w.schema.Image.Encoded {
		h.Flags |= FlagEncoded
	}
	if w.schema.Shuffled {
		h.Flags |= FlagShuffled
	}
	if w.schema.HasNames {
		h.Flags |= FlagNames
	}
	if w.hasL2 {
		h.Flags |= FlagLabel2
	}
	return h
}

func (w *Writer) write(b []byte) error {
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("format: write %s: %w", w.tmp, err)
	}
	w.off += uint64(len(b))
	return nil
}

func (w *Writer) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

func (w *Writer) getErr() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

func (w *Writer) compressLoop() {
	defer w.wg.Done()
	var c compressor
	for j := range w.jobs {
		stored, codec, err := c.compress(w.codec, j.raw)
		if err == nil && codec != CodecNone {
			// The compressor's buffer is reused for the next job, so the
			// stored bytes are copied out into a buffer the writer owns.
			j.stored = append([]byte(nil), stored...)
		} else {
			j.stored = j.raw
		}
		j.codec, j.err = codec, err
		j.crc = checksum(j.stored)
		close(j.done)
	}
}

func (w *Writer) writeLoop() {
	defer w.wg.Done()
	for j := range w.ordered {
		<-j.done
		if j.err == nil && w.getErr() == nil {
			e := chunkEntry{Off: w.off, Stored: uint32(len(j.stored)), Raw: uint32(len(j.raw)),
				First: j.first, Count: j.count, CRC: j.crc, Codec: j.codec}
			if err := w.write(j.stored); err != nil {
				w.setErr(err)
			}
			w.chunks = append(w.chunks, e)
		} else if j.err != nil {
			w.setErr(fmt.Errorf("format: chunk %d: %w", len(w.chunks), j.err))
		}
		if j.pooled {
			select {
			case w.free <- j.raw[:0]:
			default:
			}
		}
	}
}

// seal hands the current chunk to the compressors.
func (w *Writer) seal() {
	if w.curCount == 0 {
		return
	}
	j := &chunkJob{raw: w.cur, first: w.curFirst, count: w.curCount, done: make(chan struct{}),
		pooled: cap(w.cur) == w.chunkSize}
	w.ordered <- j // bounds the number of chunks in flight
	w.jobs <- j
	w.nchunks++
	w.curFirst += w.curCount
	w.curCount = 0
	select {
	case b := <-w.free:
		w.cur = b
	default:
		w.cur = make([]byte, 0, w.chunkSize)
	}
}

// Add appends one sample in storage order. Its bytes are copied, so the
// caller may reuse s.Data at once.
func (w *Writer) Add(s *Sample) error {
	if w.closed {
		return errors.New("format: Add after Close or Abort")
	}
	if err := w.getErr(); err != nil {
		return err
	}
	if err := w.check(s); err != nil {
		return err
	}
	n := len(s.Data)
	if n > MaxSampleSize {
		return fmt.Errorf("format: sample %d (%s): %d bytes, more than the %d a packed file can hold", s.Index, s.Name, n, uint64(MaxSampleSize))
	}
	if len(w.entries) >= math.MaxUint32 {
		return fmt.Errorf("format: sample %d: a packed file holds at most %d samples", s.Index, uint64(math.MaxUint32))
	}
	if w.curCount > 0 && len(w.cur)+n > w.chunkSize {
		w.seal()
	}
	if n > w.chunkSize {
		// A sample larger than a chunk gets a chunk of its own, sized for it.
		w.cur = make([]byte, 0, n)
	}
	e := indexEntry{
		Chunk: w.nchunks, Off: uint32(len(w.cur)), Size: uint32(n),
		Label: s.Label, Label2: -1,
		Height: uint16(s.Height), Width: uint16(s.Width), Channels: uint8(s.Channels),
		Format: s.Format, Pos: uint32(len(w.entries)),
	}
	if w.hasL2 {
		e.Label2 = s.Label2
	}
	if !s.Encoded {
		e.Format = FormatRaw
	}
	if sh := [3]int{s.Height, s.Width, s.Channels}; len(w.entries) == 0 {
		w.shape, w.sameShape = sh, true
	} else if sh != w.shape {
		w.sameShape = false
	}
	w.cur = append(w.cur, s.Data...)
	w.curCount++
	w.entries = append(w.entries, e)
	w.keys = append(w.keys, s.Index)
	if w.schema.HasNames {
		w.names = append(w.names, s.Name)
	}
	if n > w.chunkSize {
		w.seal()
	}
	return nil
}

func (w *Writer) check(s *Sample) error {
	// The sample's description is built only for an error: check runs for
	// every sample, and formatting it up front cost an allocation each.
	what := func() string {
		if s.Name != "" {
			return fmt.Sprintf("sample %d (%s)", s.Index, s.Name)
		}
		return fmt.Sprintf("sample %d", s.Index)
	}
	img := w.schema.Image
	if s.Encoded != img.Encoded {
		return fmt.Errorf("format: %s: encoded=%v but the file's images are encoded=%v", what(), s.Encoded, img.Encoded)
	}
	if s.Height <= 0 || s.Width <= 0 || s.Height > math.MaxUint16 || s.Width > math.MaxUint16 {
		return fmt.Errorf("format: %s: image size %dx%d is outside 1..%d", what(), s.Width, s.Height, math.MaxUint16)
	}
	if s.Channels != 1 && s.Channels != 3 && s.Channels != 4 {
		return fmt.Errorf("format: %s: %d channels, want 1, 3 or 4", what(), s.Channels)
	}
	if img.Fixed && (s.Height != img.Height || s.Width != img.Width || s.Channels != img.Channels) {
		return fmt.Errorf("format: %s: shape %dx%dx%d differs from the file's fixed %dx%dx%d", what(), s.Height, s.Width, s.Channels, img.Height, img.Width, img.Channels)
	}
	if !s.Encoded && len(s.Data) != s.Height*s.Width*s.Channels {
		return fmt.Errorf("format: %s: %d pixel bytes for shape %dx%dx%d", what(), len(s.Data), s.Height, s.Width, s.Channels)
	}
	if s.Encoded && (s.Format == FormatRaw || s.Format >= numFormats) {
		return fmt.Errorf("format: %s: encoded image with format %v", what(), s.Format)
	}
	if s.Label < 0 || (len(w.schema.Classes) > 0 && int(s.Label) >= len(w.schema.Classes)) {
		return fmt.Errorf("format: %s: label %d outside the %d classes", what(), s.Label, len(w.schema.Classes))
	}
	if w.hasL2 && (s.Label2 < 0 || (len(w.schema.Classes2) > 0 && int(s.Label2) >= len(w.schema.Classes2))) {
		return fmt.Errorf("format: %s: %s %d outside the %d classes", what(), w.schema.Label2Name, s.Label2, len(w.schema.Classes2))
	}
	return nil
}

// Len reports how many samples have been added.
func (w *Writer) Len() int { return len(w.entries) }

// NumChunks reports how many chunks the file holds; it is final only after
// Close, while compression may still be running before.
func (w *Writer) NumChunks() int { return int(w.nchunks) }

// Close writes the metadata and the footer, syncs the file and renames it
// into place. On any error the temporary file is removed and nothing
// appears at the destination.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("format: Close called twice")
	}
	err := w.finish()
	if err != nil {
		w.Abort()
		return err
	}
	w.release()
	return nil
}

// release drops Append's lock on the file (after the commit's rename, or
// the abort).
func (w *Writer) release() {
	if w.unlock != nil {
		w.unlock()
		w.unlock = nil
	}
}

func (w *Writer) stop() {
	if w.jobs != nil {
		close(w.jobs)
		close(w.ordered)
		w.wg.Wait()
		w.jobs = nil
	}
}

func (w *Writer) finish() error {
	if err := w.getErr(); err != nil {
		return err
	}
	w.seal()
	w.stop()
	w.closed = true
	if err := w.getErr(); err != nil {
		return err
	}
	n := len(w.entries)

	// Dataset order: storage positions sorted by key.
	order := make([]uint32, n) // dataset index -> storage position
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(w.keys[a], w.keys[b]) })
	for d := 1; d < n; d++ {
		if w.keys[order[d]] == w.keys[order[d-1]] {
			return fmt.Errorf("format: two samples have the same index %d", w.keys[order[d]])
		}
	}
	rank := make([]uint32, n) // storage position -> dataset index
	for d, p := range order {
		rank[p] = uint32(d)
	}

	if !w.schema.Image.Fixed && w.sameShape && n > 0 {
		w.schema.Image.Fixed = true
		w.schema.Image.Height, w.schema.Image.Width, w.schema.Image.Channels = w.shape[0], w.shape[1], w.shape[2]
		w.schema.Fields = w.schema.fields()
	}
	dataEnd := w.off
	var ft footer
	ft.Samples, ft.Chunks, ft.DataEnd = uint64(n), uint64(len(w.chunks)), dataEnd
	ft.HeaderCRC = checksum(w.header().encode()[:60])

	schemaJSON, err := json.MarshalIndent(&w.schema, "", "  ")
	if err != nil {
		return fmt.Errorf("format: schema: %w", err)
	}
	chunkTab := make([]byte, len(w.chunks)*ChunkEntrySize)
	for i, c := range w.chunks {
		c.put(chunkTab[i*ChunkEntrySize:])
	}
	orderSec := make([]byte, 4*n)
	for p := range n {
		binary.LittleEndian.PutUint32(orderSec[4*p:], rank[p])
	}
	index := make([]byte, n*IndexEntrySize)
	for d, p := range order {
		w.entries[p].put(index[d*IndexEntrySize:])
	}
	var names []byte
	if w.schema.HasNames {
		// u64 offsets[n+1] into the blob that follows them.
		blobLen := 0
		for _, s := range w.names {
			blobLen += len(s)
		}
		names = make([]byte, 8*(n+1), 8*(n+1)+blobLen)
		var o uint64
		for d, p := range order {
			binary.LittleEndian.PutUint64(names[8*d:], o)
			names = append(names, w.names[p]...)
			o += uint64(len(w.names[p]))
		}
		binary.LittleEndian.PutUint64(names[8*n:], o)
	}
	for i, b := range [numSections][]byte{schemaJSON, chunkTab, orderSec, index, names} {
		ft.Sections[i] = section{Off: w.off, Len: uint64(len(b)), CRC: checksum(b)}
		if err := w.write(b); err != nil {
			return err
		}
	}
	if err := w.write(ft.encode()); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("format: write %s: %w", w.tmp, err)
	}
	f := w.f
	w.f, w.tmp = nil, ""
	return atomicfile.Commit(f, w.path)
}

// Abort discards everything written so far and removes the temporary file.
// It is safe to call after a failed Close and more than once.
func (w *Writer) Abort() error {
	w.setErr(errors.New("format: writer aborted"))
	w.stop()
	w.closed = true
	if w.f != nil {
		atomicfile.Discard(w.f)
		w.f, w.tmp = nil, ""
	}
	w.release()
	return nil
}

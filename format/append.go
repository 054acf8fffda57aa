package format

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// Append opens the packed file at path for adding samples after the ones
// it holds, which keep their dataset indices, storage positions, chunks and
// checksums. Add the new samples with Index ≥ Len() (the writer ranks them
// after the old ones), then Close to commit or Abort to discard.
//
// The commit is atomic, as for Create: the new version is written to a
// temporary file in the same directory — the old header and data region
// [0, DataEnd) copied (with copy_file_range, so in the kernel, or as a
// reflink on file systems that have them), the new chunks after them, then
// the metadata and the footer — synced, and renamed over path. A reader
// that opened path before keeps reading the old version through its own
// mapping; a process killed during Append leaves path untouched (and a
// stale temporary file, .NAME.*.tmp, that may be deleted).
//
// The schema stays the old file's: codec, chunk size, encoded or raw
// pixels, shape (a fixed shape is enforced on the new samples), shuffle
// flag. SetClasses can extend the class list. opt may set Workers; a Codec
// or ChunkSize different from the file's is an error.
func Append(path string, opt *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opt != nil {
		o = *opt
	}
	// One append at a time: two would each copy the old version, and the
	// second commit would drop the first one's samples.
	unlock, err := atomicfile.LockExisting(path)
	if err != nil {
		if errors.Is(err, atomicfile.ErrBusy) {
			return nil, fmt.Errorf("format: append to %s: another process is appending to it (%w); wait for it to finish", path, err)
		}
		return nil, fmt.Errorf("format: append to %s: %w", path, err)
	}
	r, err := Open(path, &ReaderOptions{NoChunkCheck: true})
	if err != nil {
		unlock()
		return nil, err // it names the file and what is wrong with it
	}
	defer r.Close()
	schema := *r.schema
	schema.Classes = slices.Clone(schema.Classes)
	codec, err := parseCodec(schema.Codec)
	if err != nil {
		return nil, fmt.Errorf("format: append to %s: schema codec: %w", path, err)
	}
	if o.Codec != "" {
		if c, err := parseCodec(o.Codec); err != nil || c != codec {
			return nil, fmt.Errorf("format: append to %s: the file's codec is %s; appended chunks use it too (asked for %q)", path, codec, o.Codec)
		}
	}
	if o.ChunkSize > 0 && o.ChunkSize != schema.ChunkSize {
		return nil, fmt.Errorf("format: append to %s: the file's chunk size is %d; appended chunks use it too (asked for %d)", path, schema.ChunkSize, o.ChunkSize)
	}
	chunkSize := schema.ChunkSize
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	if o.Workers <= 0 {
		o.Workers = defaultWorkers()
	}

	// A locked temporary file, as Create's: one left by an append that was
	// killed is removed by the next write to the same path.
	f, err := atomicfile.CreateTemp(path)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("format: append to %s: %w", path, err)
	}
	w := &Writer{
		path: path, tmp: f.Name(), f: f, unlock: unlock,
		schema:    schema,
		codec:     codec,
		chunkSize: chunkSize,
		hasL2:     schema.Label2Name != "",
		jobs:      make(chan *chunkJob, o.Workers),
		ordered:   make(chan *chunkJob, 2*o.Workers+2),
		free:      make(chan []byte, 2*o.Workers+4),
	}
	if string(w.header().encode()) != string(r.data[:HeaderSize]) {
		w.Abort()
		return nil, fmt.Errorf("format: append to %s: its header flags disagree with its schema", path)
	}
	// Copy the header and the data region. ReadFrom of a LimitedReader over
	// an *os.File is copy_file_range on Linux: no pass through user space.
	src, err := os.Open(path)
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("format: append to %s: %w", path, err)
	}
	n, err := f.ReadFrom(io.LimitReader(src, int64(r.ft.DataEnd)))
	src.Close()
	if err == nil && n != int64(r.ft.DataEnd) {
		err = errors.New("short copy")
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("format: append to %s: copying its data region: %w", path, err)
	}
	w.off = r.ft.DataEnd
	w.bw = bufio.NewWriterSize(f, 1<<20)

	// The old samples, in storage order, keyed by their dataset index.
	nOld := r.n
	w.entries = make([]indexEntry, nOld)
	w.keys = make([]int, nOld)
	if schema.HasNames {
		w.names = make([]string, nOld)
	}
	for p, d := range r.StorageOrder(make([]uint32, 0, nOld), 0, nOld) {
		w.entries[p] = r.entry(int(d))
		w.keys[p] = int(d)
		if schema.HasNames {
			w.names[p] = r.Name(int(d))
		}
	}
	w.chunks = make([]chunkEntry, r.chunks)
	for c := range w.chunks {
		w.chunks[c] = r.chunk(c)
	}
	w.nchunks = uint32(r.chunks)
	w.curFirst = uint32(nOld)
	if img := schema.Image; img.Fixed {
		w.shape, w.sameShape = [3]int{img.Height, img.Width, img.Channels}, true
	}
	w.cur = make([]byte, 0, chunkSize)
	for range o.Workers {
		w.wg.Add(1)
		go w.compressLoop()
	}
	w.wg.Add(1)
	go w.writeLoop()
	return w, nil
}

// Schema returns the schema the writer will commit (for Append, the
// existing file's).
func (w *Writer) Schema() Schema { return w.schema }

// SetClasses replaces the class names. The existing names must be a prefix
// of classes, so that every label already written keeps its meaning: an
// append merges class lists by adding the new names at the end.
func (w *Writer) SetClasses(classes []string) error {
	if len(classes) < len(w.schema.Classes) || !slices.Equal(classes[:len(w.schema.Classes)], w.schema.Classes) {
		return fmt.Errorf("format: new class list %v does not extend the file's %v", classes, w.schema.Classes)
	}
	w.schema.Classes = slices.Clone(classes)
	return nil
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// Names returns the source names of the samples written so far, in storage
// order (nil when the file has none); Append uses it to skip samples a file
// already holds.
func (w *Writer) Names() []string { return slices.Clone(w.names) }

package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// arrow-go trusts the lengths a file declares and allocates them before it
// reads anything: FuzzParquet found a Parquet file whose ARROW:schema
// metadata declares a 32 GiB message body, FuzzArrowIPC an Arrow file whose
// footer declares billions of schema fields; both killed the process (out
// of memory, which no recover catches). The guards below refuse such files
// with an error first.

// tableAllocSlack and tableAllocFactor bound one allocation while reading a
// table file of n bytes to tableAllocSlack + tableAllocFactor·n: a column
// chunk decompresses to more than its stored size, but images (the bulk of
// these files) hardly compress, and no real row group expands 16-fold.
const (
	tableAllocSlack  = 64 << 20
	tableAllocFactor = 16
)

// boundedAllocator refuses any single allocation above limit by panicking;
// safeOpen and safeColumn turn the panic into an error naming the file.
type boundedAllocator struct {
	memory.Allocator
	size  int // of the file
	limit int
}

// newBoundedAllocator bounds the allocations for the file r, whose size it
// finds by seeking to its end.
func newBoundedAllocator(r io.Seeker) (boundedAllocator, error) {
	n, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return boundedAllocator{}, err
	}
	return boundedAllocator{Allocator: memory.DefaultAllocator, size: int(n), limit: tableAllocSlack + tableAllocFactor*int(n)}, nil
}

func (a boundedAllocator) check(n int) {
	if n > a.limit {
		panic(fmt.Sprintf("the file declares a buffer of %d bytes, more than %d bytes can hold (damaged?)", n, a.limit))
	}
}

// Allocate implements memory.Allocator.
func (a boundedAllocator) Allocate(n int) []byte {
	a.check(n)
	return a.Allocator.Allocate(n)
}

// Reallocate implements memory.Allocator.
func (a boundedAllocator) Reallocate(n int, b []byte) []byte {
	a.check(n)
	return a.Allocator.Reallocate(n, b)
}

// checkArrowFooter walks the footer of the Arrow IPC file f (size bytes)
// and checks that every vector arrow-go sizes a slice by (the schema's
// fields and their children, custom metadata, features, the dictionary
// and record batch blocks) fits in the footer, before ipc.NewFileReader
// makes those slices. A footer that shares tables (which no writer
// produces) is refused once it names more tables than its bytes could
// hold, so the walk stays linear.
func checkArrowFooter(f io.ReaderAt, size int64) error {
	const magic = "ARROW1"
	if size < int64(2*len(magic)+2+4) {
		return errors.New("too short for an Arrow IPC file")
	}
	var tail [10]byte
	if _, err := f.ReadAt(tail[:], size-10); err != nil {
		return err
	}
	if string(tail[4:]) != magic {
		return errors.New("no ARROW1 magic at the end")
	}
	n := int64(int32(binary.LittleEndian.Uint32(tail[:4])))
	if n <= 0 || n > size-10-8 {
		return fmt.Errorf("footer length %d does not fit in %d bytes", n, size)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-10-n); err != nil {
		return err
	}
	w := fbWalk{buf: buf, budget: len(buf)/4 + 1}
	root, err := w.uoffset(0)
	if err != nil {
		return err
	}
	// Footer: version 0, schema 1, dictionaries 2, recordBatches 3 (Block
	// structs of 24 bytes), custom_metadata 4.
	for _, fld := range []int{2, 3} {
		start, n, err := w.vector(root, fld, 24)
		if err != nil {
			return err
		}
		// Block {offset int64, metaDataLength int32, pad, bodyLength
		// int64}: check each message's metadata, which arrow-go decodes
		// before reading the body.
		for i := range n {
			b := buf[start+24*i:]
			off := int64(binary.LittleEndian.Uint64(b))
			ml := int64(int32(binary.LittleEndian.Uint32(b[8:])))
			if off < 0 || ml < 8 || off > size || ml > size-off {
				return fmt.Errorf("%w: a block of %d bytes at %d", errFooter, ml, off)
			}
			meta := make([]byte, ml)
			if _, err := f.ReadAt(meta, off); err != nil {
				return err
			}
			if err := checkArrowMessage(meta, fld == 3); err != nil {
				return err
			}
		}
	}
	if err := w.tables(root, 4, nil); err != nil {
		return err
	}
	schema, ok, err := w.table(root, 1)
	if err != nil || !ok {
		return err
	}
	return w.schema(schema)
}

// messageRoot frames one encapsulated IPC message (an optional 0xFFFFFFFF
// continuation marker, a 32-bit metadata length, the flatbuffer) and
// returns a walker over its metadata with the Message table's offset, the
// framed bytes after the marker and the metadata length.
func messageRoot(b []byte) (w *fbWalk, root int, framed []byte, n int, err error) {
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == 0xFFFFFFFF {
		b = b[4:]
	}
	if len(b) < 4 {
		return nil, 0, nil, 0, errFooter
	}
	n = int(int32(binary.LittleEndian.Uint32(b)))
	if n <= 0 || n > len(b)-4 {
		return nil, 0, nil, 0, fmt.Errorf("%w: message of %d bytes in %d", errFooter, n, len(b))
	}
	w = &fbWalk{buf: b[4 : 4+n], budget: n/4 + 1}
	if root, err = w.uoffset(0); err != nil {
		return nil, 0, nil, 0, err
	}
	return w, root, b, n, nil
}

// checkArrowSchemaMeta checks the serialized Arrow schema that pqarrow
// decodes from a Parquet file's ARROW:schema metadata (with the default
// allocator, beyond boundedAllocator's reach): an IPC message whose
// declared body must lie in the data, and whose schema's vectors must fit.
func checkArrowSchemaMeta(decoded []byte) error {
	w, root, b, n, err := messageRoot(decoded)
	if err != nil {
		return err
	}
	// Message: version 0, header_type 1, header 2, bodyLength 3.
	if p, ok, err := w.field(root, 3); err != nil {
		return err
	} else if ok {
		if p+8 > len(w.buf) {
			return errFooter
		}
		if body := int64(binary.LittleEndian.Uint64(w.buf[p:])); body < 0 || body > int64(len(b)-4-n) {
			return fmt.Errorf("%w: a message body of %d bytes in %d", errFooter, body, len(decoded))
		}
	}
	schema, ok, err := w.table(root, 2)
	if err != nil || !ok {
		return err
	}
	return w.schema(schema)
}

// schema checks a Schema table's vectors and its fields, recursively.
func (w *fbWalk) schema(schema int) error {
	// Schema: fields 1, custom_metadata 2, features 3 (longs).
	if _, _, err := w.vector(schema, 3, 8); err != nil {
		return err
	}
	if err := w.tables(schema, 2, nil); err != nil {
		return err
	}
	// Field: children 5, custom_metadata 6.
	var field func(t int) error
	field = func(t int) error {
		if err := w.tables(t, 6, nil); err != nil {
			return err
		}
		return w.tables(t, 5, field)
	}
	return w.tables(schema, 1, field)
}

// fbWalk reads a flatbuffer with bounds checks.
type fbWalk struct {
	buf    []byte
	budget int // tables left to visit
}

var errFooter = errors.New("malformed Arrow footer")

func (w *fbWalk) u32(p int) (int, error) {
	if p < 0 || p+4 > len(w.buf) {
		return 0, errFooter
	}
	return int(binary.LittleEndian.Uint32(w.buf[p:])), nil
}

// uoffset follows the offset stored at p.
func (w *fbWalk) uoffset(p int) (int, error) {
	o, err := w.u32(p)
	if err != nil {
		return 0, err
	}
	if p+o >= len(w.buf) {
		return 0, errFooter
	}
	return p + o, nil
}

// field returns the position of field k of the table at t (ok false when
// absent).
func (w *fbWalk) field(t, k int) (int, bool, error) {
	so, err := w.u32(t)
	if err != nil {
		return 0, false, err
	}
	vt := t - int(int32(so))
	if vt < 0 || vt+4 > len(w.buf) {
		return 0, false, errFooter
	}
	// flatbuffers reads field k when its entry starts inside the vtable's
	// declared size, even when that size is odd and the entry ends past it
	// (FuzzArrowIPC: a vtable of 11 bytes hid a footer's record batch
	// vector from this walk, then NumRecords read it out of bounds).
	vtSize := int(binary.LittleEndian.Uint16(w.buf[vt:]))
	if 4+2*k >= vtSize {
		return 0, false, nil
	}
	if vt+4+2*k+2 > len(w.buf) {
		return 0, false, errFooter
	}
	off := int(binary.LittleEndian.Uint16(w.buf[vt+4+2*k:]))
	if off == 0 {
		return 0, false, nil
	}
	return t + off, true, nil
}

// table returns the table that field k of t refers to.
func (w *fbWalk) table(t, k int) (int, bool, error) {
	p, ok, err := w.field(t, k)
	if err != nil || !ok {
		return 0, false, err
	}
	if w.budget--; w.budget < 0 {
		return 0, false, errFooter
	}
	q, err := w.uoffset(p)
	return q, err == nil, err
}

// vector checks the vector that field k of t refers to: n elements of es
// bytes must lie in the buffer. It returns where the elements start.
func (w *fbWalk) vector(t, k, es int) (start, n int, err error) {
	p, ok, err := w.field(t, k)
	if err != nil || !ok {
		return 0, 0, err
	}
	v, err := w.uoffset(p)
	if err != nil {
		return 0, 0, err
	}
	if n, err = w.u32(v); err != nil {
		return 0, 0, err
	}
	if n > (len(w.buf)-v-4)/es {
		return 0, 0, fmt.Errorf("%w: a vector of %d elements in %d bytes", errFooter, n, len(w.buf))
	}
	return v + 4, n, nil
}

// tables checks the vector of tables in field k of t and calls each (if
// not nil) on every element.
func (w *fbWalk) tables(t, k int, each func(int) error) error {
	start, n, err := w.vector(t, k, 4)
	if err != nil {
		return err
	}
	for i := range n {
		if w.budget--; w.budget < 0 {
			return errFooter
		}
		e, err := w.uoffset(start + 4*i)
		if err != nil {
			return err
		}
		if each != nil {
			if err := each(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkArrowMessage checks the vectors of one IPC message's metadata (its
// custom metadata; a record batch's nodes, buffers and variadic counts)
// before arrow-go makes slices of those lengths: FuzzArrowIPC found a
// record batch whose metadata declared a vector of billions of entries.
func checkArrowMessage(b []byte, batch bool) error {
	w, root, _, _, err := messageRoot(b)
	if err != nil {
		return err
	}
	// Message: header 2, custom_metadata 4.
	if err := w.tables(root, 4, nil); err != nil {
		return err
	}
	h, ok, err := w.table(root, 2)
	if err != nil || !ok || !batch {
		return err
	}
	// RecordBatch: nodes 1 and buffers 2 (16-byte structs),
	// variadicBufferCounts 4. (A dictionary's DictionaryBatch wraps one;
	// not walked here.)
	for _, c := range []struct{ k, es int }{{1, 16}, {2, 16}, {4, 8}} {
		if _, _, err := w.vector(h, c.k, c.es); err != nil {
			return err
		}
	}
	return nil
}

package format

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// maxProblems caps how many problems Verify lists; past that the file is
// beyond repair anyway and the list would only bury the first ones.
const maxProblems = 20

// Verify checks every checksum in the file and the consistency of the index
// with the chunks: every chunk's stored bytes, that each decompresses to its
// recorded size, and that the index and the order section describe the same
// bijection between dataset order and storage. Together with the checks Open
// makes, a change to any byte of the file is detected. The error lists each
// damaged chunk or section by name. progress, when not nil, is called after
// each chunk with the number of chunks done.
func (r *Reader) Verify(progress func(done, total int)) error {
	return r.VerifyContext(context.Background(), progress)
}

// VerifyContext is Verify that stops, returning ctx's error, when ctx is
// cancelled (Ctrl-C during the check of a large file).
func (r *Reader) VerifyContext(ctx context.Context, progress func(done, total int)) error {
	var problems []error
	add := func(err error) bool {
		problems = append(problems, err)
		return len(problems) < maxProblems
	}
	var buf []byte
	for c := range r.chunks {
		if c%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		e := r.chunk(c)
		stored := r.data[e.Off : e.Off+uint64(e.Stored)]
		if got := checksum(stored); got != e.CRC {
			if !add(chunkDamage(c, e, got)) {
				break
			}
		} else if e.Codec != CodecNone {
			if cap(buf) < int(e.Raw) {
				buf = make([]byte, e.Raw)
			}
			if err := decompress(e.Codec, stored, buf[:e.Raw]); err != nil {
				if !add(&DamageError{Section: fmt.Sprintf("chunk %d", c), Detail: err.Error()}) {
					break
				}
			}
		}
		if progress != nil {
			progress(c+1, r.chunks)
		}
	}
	if len(problems) < maxProblems {
		problems = append(problems, r.verifyIndex(maxProblems-len(problems))...)
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("format: %s: %w", r.path, errors.Join(problems...))
}

// verifyIndex checks each index entry against its chunk and the order
// section. Checksums already vouch for the bytes; this catches a writer bug
// or a crafted file whose checksums were recomputed.
func (r *Reader) verifyIndex(limit int) []error {
	var problems []error
	bad := func(i int, format string, a ...any) bool {
		problems = append(problems, &DamageError{Section: "index", Detail: fmt.Sprintf("sample %d: ", i) + fmt.Sprintf(format, a...)})
		return len(problems) < limit
	}
	order := r.sec[secOrder]
	img := r.schema.Image
	for i := range r.n {
		e := r.entry(i)
		if e.Chunk >= uint32(r.chunks) {
			if !bad(i, "chunk %d of %d", e.Chunk, r.chunks) {
				break
			}
			continue
		}
		c := r.chunk(int(e.Chunk))
		switch {
		case e.Pos < c.First || e.Pos >= c.First+c.Count:
			if !bad(i, "storage position %d is not in chunk %d (positions %d..%d)", e.Pos, e.Chunk, c.First, c.First+c.Count-1) {
				return problems
			}
		case binary.LittleEndian.Uint32(order[4*e.Pos:]) != uint32(i):
			if !bad(i, "storage position %d maps back to sample %d", e.Pos, binary.LittleEndian.Uint32(order[4*e.Pos:])) {
				return problems
			}
		case uint64(e.Off)+uint64(e.Size) > uint64(c.Raw):
			if !bad(i, "bytes %d+%d outside chunk %d of %d bytes", e.Off, e.Size, e.Chunk, c.Raw) {
				return problems
			}
		case (e.Format != FormatRaw) != img.Encoded || e.Format >= numFormats:
			if !bad(i, "image format %v in a file with encoded=%v", e.Format, img.Encoded) {
				return problems
			}
		case !img.Encoded && int(e.Size) != int(e.Height)*int(e.Width)*int(e.Channels):
			if !bad(i, "%d bytes for a %dx%dx%d image", e.Size, e.Height, e.Width, e.Channels) {
				return problems
			}
		case img.Fixed && (int(e.Height) != img.Height || int(e.Width) != img.Width || int(e.Channels) != img.Channels):
			if !bad(i, "shape %dx%dx%d in a file of fixed shape %dx%dx%d", e.Height, e.Width, e.Channels, img.Height, img.Width, img.Channels) {
				return problems
			}
		case e.Label < 0 || (len(r.schema.Classes) > 0 && int(e.Label) >= len(r.schema.Classes)):
			if !bad(i, "label %d outside the %d classes", e.Label, len(r.schema.Classes)) {
				return problems
			}
		}
	}
	if r.schema.HasNames {
		nb := r.sec[secNames]
		blob := uint64(len(nb)) - 8*uint64(r.n+1)
		prev := uint64(0)
		for i := 0; i <= r.n; i++ {
			o := binary.LittleEndian.Uint64(nb[8*i:])
			if o < prev || o > blob {
				problems = append(problems, &DamageError{Section: "names", Detail: fmt.Sprintf("offset %d of sample %d is out of order or outside the blob", o, i)})
				break
			}
			prev = o
		}
	}
	return problems
}

// VerifyFile opens path and verifies it; an error from Open (a damaged
// header, footer or metadata section, or a truncated file; or a file that
// cannot be opened, an *fs.PathError) is returned as is.
func VerifyFile(path string, progress func(done, total int)) error {
	return VerifyFileContext(context.Background(), path, progress)
}

// VerifyFileContext is VerifyFile that stops when ctx is cancelled.
func VerifyFileContext(ctx context.Context, path string, progress func(done, total int)) error {
	r, err := Open(path, &ReaderOptions{NoChunkCheck: true})
	if err != nil {
		return err
	}
	defer r.Close()
	return r.VerifyContext(ctx, progress)
}

package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte layout constants. All integers are little-endian.
const (
	// Magic opens every packed file.
	Magic = "TSCNPACK"
	// FooterMagic opens the footer and TrailerMagic ends the file; a file
	// whose last eight bytes are not TrailerMagic was never committed.
	FooterMagic  = "TSCNFOOT"
	TrailerMagic = "TSCNEND\x00"

	// VersionMajor changes when a reader of an older major version could
	// misread the file; readers refuse a major version they do not know.
	VersionMajor = 1
	// VersionMinor changes for compatible additions (new optional schema
	// keys, new optional flags); readers accept any minor version.
	VersionMinor = 0

	// HeaderSize is the fixed size of the header at offset 0.
	HeaderSize = 64
	// FooterSize is the fixed size of the footer at the end of the file.
	FooterSize = 160
	// ChunkEntrySize is the stride of the chunk table.
	ChunkEntrySize = 32
	// IndexEntrySize is the stride of the per-sample index.
	IndexEntrySize = 32
)

// Feature flags in the header. Flags below 1<<16 are "required": a reader
// that does not know one of them must refuse the file. Flags from 1<<16 up
// are informational and may be ignored.
const (
	// FlagEncoded: image bytes are encoded files (JPEG, PNG, ...), not raw pixels.
	FlagEncoded uint32 = 1 << 0
	// FlagShuffled: storage order is a permutation of dataset order.
	FlagShuffled uint32 = 1 << 16
	// FlagNames: samples carry a source name.
	FlagNames uint32 = 1 << 17
	// FlagLabel2: samples carry a secondary label (CIFAR-100 coarse).
	FlagLabel2 uint32 = 1 << 18

	knownRequiredFlags = FlagEncoded
	requiredFlagMask   = 0xFFFF
)

// castagnoli is the CRC-32C table; the polynomial has hardware support on
// amd64 and arm64, so checksumming runs at memory speed.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is the fixed 64-byte file header.
//
//	0  [8]  magic
//	8  u16  major version
//	10 u16  minor version
//	12 u32  flags
//	16 u32  header size (64)
//	20 u32  footer size (128)
//	24 [36] reserved, zero
//	60 u32  CRC-32C of bytes 0..60
type header struct {
	Major, Minor uint16
	Flags        uint32
}

func (h header) encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	binary.LittleEndian.PutUint16(b[8:], h.Major)
	binary.LittleEndian.PutUint16(b[10:], h.Minor)
	binary.LittleEndian.PutUint32(b[12:], h.Flags)
	binary.LittleEndian.PutUint32(b[16:], HeaderSize)
	binary.LittleEndian.PutUint32(b[20:], FooterSize)
	binary.LittleEndian.PutUint32(b[60:], checksum(b[:60]))
	return b
}

// errNotPacked is wrapped by every error about a file that is not a packed
// file at all, as opposed to a damaged one.
var errNotPacked = errors.New("not a packed dataset file")

func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("header: file has %d bytes, a header alone needs %d: %w", len(b), HeaderSize, errNotPacked)
	}
	if string(b[:8]) != Magic {
		return h, fmt.Errorf("header: magic is %q, want %q: %w", b[:8], Magic, errNotPacked)
	}
	if got, want := binary.LittleEndian.Uint32(b[60:]), checksum(b[:60]); got != want {
		return h, &DamageError{Section: "header", Detail: fmt.Sprintf("checksum %08x, computed %08x", got, want)}
	}
	h.Major = binary.LittleEndian.Uint16(b[8:])
	h.Minor = binary.LittleEndian.Uint16(b[10:])
	h.Flags = binary.LittleEndian.Uint32(b[12:])
	if h.Major != VersionMajor {
		return h, fmt.Errorf("header: format version %d.%d, this reader knows major version %d", h.Major, h.Minor, VersionMajor)
	}
	if hs, fs := binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint32(b[20:]); hs != HeaderSize || fs != FooterSize {
		return h, &DamageError{Section: "header", Detail: fmt.Sprintf("header size %d and footer size %d, want %d and %d", hs, fs, HeaderSize, FooterSize)}
	}
	if unknown := h.Flags & requiredFlagMask &^ knownRequiredFlags; unknown != 0 {
		return h, fmt.Errorf("header: required feature flags %#x are unknown to this reader (version %d.%d); upgrade the reader", unknown, VersionMajor, VersionMinor)
	}
	for _, c := range b[24:60] {
		if c != 0 {
			return h, &DamageError{Section: "header", Detail: "reserved bytes are not zero"}
		}
	}
	return h, nil
}

// section locates one metadata section and its checksum.
type section struct {
	Off, Len uint64
	CRC      uint32
}

// Section order in the file and in the footer.
const (
	secSchema = iota
	secChunks
	secOrder
	secIndex
	secNames
	numSections
)

var sectionNames = [numSections]string{"schema", "chunk table", "order", "index", "names"}

// footer is the fixed 160-byte commit record at the end of the file.
//
//	0   [8]  footer magic
//	8   u64  samples
//	16  u64  chunks
//	24  u64  end of the data region (= offset of the schema)
//	32  5 × {u64 offset, u64 length, u32 CRC-32C} = 100 bytes: schema, chunk table, order, index, names
//	132 u32  CRC-32C of the header's first 60 bytes (binds footer and header together)
//	136 [12] reserved, zero
//	148 u32  CRC-32C of bytes 0..148 of the footer
//	152 [8]  trailer magic
type footer struct {
	Samples, Chunks uint64
	DataEnd         uint64
	Sections        [numSections]section
	HeaderCRC       uint32
}

func (f footer) encode() []byte {
	b := make([]byte, FooterSize)
	copy(b, FooterMagic)
	binary.LittleEndian.PutUint64(b[8:], f.Samples)
	binary.LittleEndian.PutUint64(b[16:], f.Chunks)
	binary.LittleEndian.PutUint64(b[24:], f.DataEnd)
	p := 32
	for _, s := range f.Sections {
		binary.LittleEndian.PutUint64(b[p:], s.Off)
		binary.LittleEndian.PutUint64(b[p+8:], s.Len)
		binary.LittleEndian.PutUint32(b[p+16:], s.CRC)
		p += 20
	}
	binary.LittleEndian.PutUint32(b[132:], f.HeaderCRC)
	binary.LittleEndian.PutUint32(b[148:], checksum(b[:148]))
	copy(b[152:], TrailerMagic)
	return b
}

func decodeFooter(b []byte) (footer, error) {
	var f footer
	if string(b[152:]) != TrailerMagic {
		return f, &DamageError{Section: "footer", Detail: "trailer magic missing: the file is truncated or its write never finished"}
	}
	if string(b[:8]) != FooterMagic {
		return f, &DamageError{Section: "footer", Detail: "footer magic missing: the file is truncated or damaged"}
	}
	if got, want := binary.LittleEndian.Uint32(b[148:]), checksum(b[:148]); got != want {
		return f, &DamageError{Section: "footer", Detail: fmt.Sprintf("checksum %08x, computed %08x", got, want)}
	}
	for _, c := range b[136:148] {
		if c != 0 {
			return f, &DamageError{Section: "footer", Detail: "reserved bytes are not zero"}
		}
	}
	f.Samples = binary.LittleEndian.Uint64(b[8:])
	f.Chunks = binary.LittleEndian.Uint64(b[16:])
	f.DataEnd = binary.LittleEndian.Uint64(b[24:])
	p := 32
	for i := range f.Sections {
		f.Sections[i] = section{
			Off: binary.LittleEndian.Uint64(b[p:]),
			Len: binary.LittleEndian.Uint64(b[p+8:]),
			CRC: binary.LittleEndian.Uint32(b[p+16:]),
		}
		p += 20
	}
	f.HeaderCRC = binary.LittleEndian.Uint32(b[132:])
	return f, nil
}

// chunkEntry is one row of the chunk table.
//
//	0  u64 file offset of the stored bytes
//	8  u32 stored (compressed) length
//	12 u32 raw (uncompressed) length
//	16 u32 storage position of the chunk's first sample
//	20 u32 samples in the chunk
//	24 u32 CRC-32C of the stored bytes
//	28 u8  codec
//	29 [3] reserved, zero
type chunkEntry struct {
	Off          uint64
	Stored, Raw  uint32
	First, Count uint32
	CRC          uint32
	Codec        Codec
}

func (c chunkEntry) put(b []byte) {
	binary.LittleEndian.PutUint64(b, c.Off)
	binary.LittleEndian.PutUint32(b[8:], c.Stored)
	binary.LittleEndian.PutUint32(b[12:], c.Raw)
	binary.LittleEndian.PutUint32(b[16:], c.First)
	binary.LittleEndian.PutUint32(b[20:], c.Count)
	binary.LittleEndian.PutUint32(b[24:], c.CRC)
	b[28] = byte(c.Codec)
	b[29], b[30], b[31] = 0, 0, 0
}

func getChunkEntry(b []byte) chunkEntry {
	return chunkEntry{
		Off:    binary.LittleEndian.Uint64(b),
		Stored: binary.LittleEndian.Uint32(b[8:]),
		Raw:    binary.LittleEndian.Uint32(b[12:]),
		First:  binary.LittleEndian.Uint32(b[16:]),
		Count:  binary.LittleEndian.Uint32(b[20:]),
		CRC:    binary.LittleEndian.Uint32(b[24:]),
		Codec:  Codec(b[28]),
	}
}

// indexEntry is one row of the per-sample index, in dataset order.
//
//	0  u32 chunk
//	4  u32 offset of the sample's bytes in the uncompressed chunk
//	8  u32 length of the sample's bytes
//	12 i32 label
//	16 i32 secondary label (-1 when absent)
//	20 u16 height
//	22 u16 width
//	24 u8  channels
//	25 u8  image encoding (ImageFormat)
//	26 [2] reserved, zero
//	28 u32 storage position
type indexEntry struct {
	Chunk, Off, Size uint32
	Label, Label2    int32
	Height, Width    uint16
	Channels         uint8
	Format           ImageFormat
	Pos              uint32
}

func (e indexEntry) put(b []byte) {
	binary.LittleEndian.PutUint32(b, e.Chunk)
	binary.LittleEndian.PutUint32(b[4:], e.Off)
	binary.LittleEndian.PutUint32(b[8:], e.Size)
	binary.LittleEndian.PutUint32(b[12:], uint32(e.Label))
	binary.LittleEndian.PutUint32(b[16:], uint32(e.Label2))
	binary.LittleEndian.PutUint16(b[20:], e.Height)
	binary.LittleEndian.PutUint16(b[22:], e.Width)
	b[24] = e.Channels
	b[25] = byte(e.Format)
	b[26], b[27] = 0, 0
	binary.LittleEndian.PutUint32(b[28:], e.Pos)
}

func getIndexEntry(b []byte) indexEntry {
	return indexEntry{
		Chunk:    binary.LittleEndian.Uint32(b),
		Off:      binary.LittleEndian.Uint32(b[4:]),
		Size:     binary.LittleEndian.Uint32(b[8:]),
		Label:    int32(binary.LittleEndian.Uint32(b[12:])),
		Label2:   int32(binary.LittleEndian.Uint32(b[16:])),
		Height:   binary.LittleEndian.Uint16(b[20:]),
		Width:    binary.LittleEndian.Uint16(b[22:]),
		Channels: b[24],
		Format:   ImageFormat(b[25]),
		Pos:      binary.LittleEndian.Uint32(b[28:]),
	}
}

// DamageError reports a checksum mismatch or an inconsistency in one named
// part of a file: "header", "footer", "schema", "index", "chunk 17", ...
type DamageError struct {
	Section string
	Detail  string
}

func (e *DamageError) Error() string { return e.Section + " is damaged: " + e.Detail }

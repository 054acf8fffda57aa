// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header mapping tensor names to dtype, shape and byte
// offsets (plus an optional "__metadata__" string map), then the raw
// little-endian tensor bytes.
package safetensors

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// Tensor is one named array.
type Tensor struct {
	// DType is "F32", "F64" or "I64" (the types the engine uses).
	DType string
	Shape []int
	// Data holds the little-endian bytes.
	Data []byte
}

// maxHeader bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes.
const maxHeader = 100 << 20

var dtypeSize = map[string]int{"F32": 4, "F64": 8, "I64": 8, "I32": 4, "F16": 2, "BF16": 2, "U8": 1}

// Elements is the product of the shape (1 for a scalar).
func (t Tensor) Elements() int {
	n := 1
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// F32 returns a float32 tensor of the given shape.
func F32(v []float32, shape ...int) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "F32", Shape: shape, Data: b}
}

// I64 returns an int64 tensor of the given shape (no shape: a scalar).
func I64(v []int64, shape ...int) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{DType: "I64", Shape: shape, Data: b}
}

// Float32s decodes an F32 or F64 tensor as float32.
func (t Tensor) Float32s() ([]float32, error) {
	n := t.Elements()
	switch t.DType {
	case "F32":
		if len(t.Data) != 4*n {
			return nil, fmt.Errorf("safetensors: F32 tensor of %d elements has %d bytes", n, len(t.Data))
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return v, nil
	case "F64":
		if len(t.Data) != 8*n {
			return nil, fmt.Errorf("safetensors: F64 tensor of %d elements has %d bytes", n, len(t.Data))
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
		return v, nil
	}
	return nil, fmt.Errorf("safetensors: dtype %s is not a float type", t.DType)
}

// Float64s decodes an F32 or F64 tensor as float64.
func (t Tensor) Float64s() ([]float64, error) {
	if t.DType == "F64" {
		n := t.Elements()
		if len(t.Data) != 8*n {
			return nil, fmt.Errorf("safetensors: F64 tensor of %d elements has %d bytes", n, len(t.Data))
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return v, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	v := make([]float64, len(f))
	for i, x := range f {
		v[i] = float64(x)
	}
	return v, nil
}

// Int64s decodes an I64 tensor.
func (t Tensor) Int64s() ([]int64, error) {
	n := t.Elements()
	if t.DType != "I64" || len(t.Data) != 8*n {
		return nil, fmt.Errorf("safetensors: want I64 tensor of %d elements, have %s with %d bytes", n, t.DType, len(t.Data))
	}
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return v, nil
}

type entry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// Read loads every tensor and the metadata of a safetensors file.
func Read(path string) (map[string]Tensor, map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	t, meta, err := parseChecked(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return t, meta, nil
}

// Parse decodes a safetensors file held in memory. When the metadata holds
// ChecksumKey, the file's bytes must match it (an error wrapping ErrDamaged
// otherwise).
func Parse(raw []byte) (map[string]Tensor, map[string]string, error) {
	t, meta, err := parseChecked(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	return t, meta, nil
}

// parseChecked is Parse without the package prefix, for Read to put the
// path after it.
func parseChecked(raw []byte) (map[string]Tensor, map[string]string, error) {
	t, meta, err := parse(raw)
	if err != nil && !errors.Is(err, ErrDamaged) {
		err = fmt.Errorf("%w or not a safetensors file: %v", ErrDamaged, err)
	}
	return t, meta, err
}

func parse(raw []byte) (map[string]Tensor, map[string]string, error) {
	if len(raw) < 8 {
		return nil, nil, fmt.Errorf("%d bytes is too short", len(raw))
	}
	hl := binary.LittleEndian.Uint64(raw)
	if hl > maxHeader || hl > uint64(len(raw)-8) {
		return nil, nil, fmt.Errorf("its first 8 bytes give a header length of %d, beyond the %d-byte file", hl, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+hl], &header); err != nil {
		return nil, nil, fmt.Errorf("the header is not valid JSON: %v", err)
	}
	meta := map[string]string{}
	if msg, ok := header["__metadata__"]; ok {
		if err := json.Unmarshal(msg, &meta); err != nil {
			return nil, nil, fmt.Errorf("metadata: %w", err)
		}
	}
	// The checksum first: a damaged file is reported as damaged, whatever
	// the damage makes of its header.
	if sum, ok := meta[ChecksumKey]; ok {
		if err := verifyChecksum(raw, raw[8:8+hl], sum); err != nil {
			return nil, nil, err
		}
	}
	data := raw[8+hl:]
	out := map[string]Tensor{}
	for name, msg := range header {
		if name == "__metadata__" {
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
		}
		n := 1
		for _, s := range e.Shape {
			if s < 0 || (s > 0 && n > len(data)/s) {
				return nil, nil, fmt.Errorf("tensor %q: shape %v does not fit the %d data bytes", name, e.Shape, len(data))
			}
			n *= s
		}
		a, b := e.Offsets[0], e.Offsets[1]
		if a < 0 || b < a || b > len(data) || b-a != n*size {
			return nil, nil, fmt.Errorf("tensor %q: offsets [%d,%d) invalid for %d elements of %s in %d bytes", name, a, b, n, e.DType, len(data))
		}
		out[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[a:b]}
	}
	return out, meta, nil
}

// ChecksumKey is the metadata key of the file's SHA-256 (hex). It covers
// every byte of the file: the header length, the whole JSON header
// (names, dtypes, shapes, offsets, every metadata value) and all tensor
// data, computed with the 64 hex digits of the value itself replaced by
// '0's. Readers that know nothing of it (PyTorch's safetensors) see one more
// metadata string.
const ChecksumKey = "sha256"

// ErrDamaged is wrapped by the errors of a file whose checksum does not
// match.
var ErrDamaged = errors.New("damaged")

// checksumField returns the position of the checksum's 64 hex digits in
// the header, which must hold exactly one `"sha256":"…"` field.
func checksumField(header []byte, sum string) (int, error) {
	field := []byte(`"` + ChecksumKey + `":"` + sum + `"`)
	if len(sum) != 64 || bytes.Count(header, field) != 1 {
		return 0, fmt.Errorf("%w: malformed %s field in the header", ErrDamaged, ChecksumKey)
	}
	return bytes.Index(header, field) + len(ChecksumKey) + 4, nil
}

// fileSum hashes raw with the 64 bytes at off replaced by '0's.
func fileSum(raw []byte, off int) string {
	h := sha256.New()
	h.Write(raw[:off])
	h.Write(zeroSum[:])
	h.Write(raw[off+64:])
	return hex.EncodeToString(h.Sum(nil))
}

var zeroSum = [64]byte{'0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
	'0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
	'0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
	'0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0'}

func verifyChecksum(raw, header []byte, sum string) error {
	off, err := checksumField(header, sum)
	if err != nil {
		return err
	}
	off += 8 // header position → file position
	if got := fileSum(raw, off); got != sum {
		return fmt.Errorf("%w: SHA-256 %s…, recorded %s…: bytes changed after it was written", ErrDamaged, got[:12], sum[:12])
	}
	return nil
}

// Seal recomputes the checksum of a file held in memory, in place, after
// its bytes were changed on purpose (tests and fuzzing reach the parsing
// behind the checksum with it). raw must hold a parseable header with a
// ChecksumKey field.
func Seal(raw []byte) error {
	if len(raw) < 8 {
		return fmt.Errorf("safetensors: seal: %d bytes", len(raw))
	}
	hl := binary.LittleEndian.Uint64(raw)
	if hl > maxHeader || hl > uint64(len(raw)-8) {
		return fmt.Errorf("safetensors: seal: header length %d", hl)
	}
	var header struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(raw[8:8+hl], &header); err != nil {
		return fmt.Errorf("safetensors: seal: %w", err)
	}
	off, err := checksumField(raw[8:8+hl], header.Meta[ChecksumKey])
	if err != nil {
		return fmt.Errorf("safetensors: seal: %w", err)
	}
	copy(raw[8+off:], fileSum(raw, 8+off))
	return nil
}

// Write stores the tensors (sorted by name) and metadata atomically: it
// writes a temporary file in the same directory, syncs it and renames it
// over path, so a crash never leaves a half-written checkpoint. The
// metadata gains ChecksumKey, the file's SHA-256, which Read and Parse
// verify.
func Write(path string, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	off := 0
	for _, n := range names {
		t := tensors[n]
		size, ok := dtypeSize[t.DType]
		if !ok {
			return fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", n, t.DType)
		}
		if len(t.Data) != t.Elements()*size {
			return fmt.Errorf("safetensors: tensor %q: %d bytes for shape %v", n, len(t.Data), t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[n] = entry{DType: t.DType, Shape: shape, Offsets: [2]int{off, off + len(t.Data)}}
		off += len(t.Data)
	}
	meta2 := map[string]string{}
	for k, v := range meta {
		meta2[k] = v
	}
	meta2[ChecksumKey] = string(zeroSum[:])
	header["__metadata__"] = meta2
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	for len(hb)%8 != 0 { // the format recommends 8-byte alignment of the data
		hb = append(hb, ' ')
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hb)))
	off, err = checksumField(hb, string(zeroSum[:]))
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	h := sha256.New()
	h.Write(lenb[:])
	h.Write(hb)
	for _, n := range names {
		h.Write(tensors[n].Data)
	}
	copy(hb[off:], hex.EncodeToString(h.Sum(nil)))

	f, err := atomicfile.CreateTemp(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.Write(lenb[:])
	bw.Write(hb)
	for _, n := range names {
		bw.Write(tensors[n].Data)
	}
	if err := bw.Flush(); err != nil {
		atomicfile.Discard(f)
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	if err := atomicfile.Commit(f, path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// U8 returns a uint8 tensor of the given shape.
func U8(v []uint8, shape ...int) Tensor {
	return Tensor{DType: "U8", Shape: shape, Data: append([]byte(nil), v...)}
}

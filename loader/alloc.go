package loader

import (
	"errors"
	"github.com/tsimcne/tsimcne-go/augment"
	"unsafe"
)

// Allocator supplies the memory of the batch slots. The loader allocates every
// slot once, in New, and frees them in Close. A GPU backend plugs in pinned
// (page-locked) host memory here so batches can be copied to the device
// asynchronously; the default uses the Go heap.
type Allocator interface {
	// Alloc returns n bytes aligned to at least 64 bytes.
	Alloc(n int) ([]byte, error)
	// Free releases a buffer returned by Alloc.
	Free(b []byte)
}

// HeapAllocator allocates batch memory on the Go heap.
type HeapAllocator struct{}

// Alloc returns n zeroed, 64-byte aligned bytes from the Go heap.
func (HeapAllocator) Alloc(n int) ([]byte, error) {
	b := make([]byte, n+64)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & 63)
	return b[off : off+n : off+n], nil
}

// Free does nothing: the garbage collector reclaims the buffer.
func (HeapAllocator) Free([]byte) {}

// asFloat32 reinterprets an allocator's bytes as float32.
func asFloat32(b []byte) ([]float32, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil, errors.New("allocator returned memory not aligned for float32")
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4), nil
}

// asParams reinterprets an allocator's bytes as augment.Params (plain
// 4-byte-aligned data, no pointers).
func asParams(b []byte) ([]augment.Params, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil, errors.New("allocator returned memory not aligned for augment.Params")
	}
	n := len(b) / int(unsafe.Sizeof(augment.Params{}))
	return unsafe.Slice((*augment.Params)(unsafe.Pointer(unsafe.SliceData(b))), n), nil
}

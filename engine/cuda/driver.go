package cuda

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds the CUDA driver API entry points (libcuda), resolved once.
// Every call goes through purego.SyscallN: all arguments are integers or
// pointers, so no reflection and no cgo are involved.
type driver struct {
	path string

	cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName,
	cuDeviceGetAttribute, cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease,
	cuCtxSetCurrent, cuCtxSynchronize, cuMemGetInfo,
	cuMemAlloc, cuMemFree, cuMemHostAlloc, cuMemFreeHost,
	cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync, cuMemsetD32Async,
	cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuStreamWaitEvent,
	cuEventCreate, cuEventDestroy, cuEventRecord, cuEventSynchronize, cuEventElapsedTime,
	cuModuleLoadDataEx, cuModuleUnload, cuModuleGetFunction, cuLaunchKernel,
	cuGetErrorName, cuGetErrorString uintptr
}

// symbols maps each field to its exported name; the _v2 names are the
// current ABI of the functions that were revised when pointers became 64-bit.
func (d *driver) symbols() []struct {
	p    *uintptr
	name string
} {
	return []struct {
		p    *uintptr
		name string
	}{
		{&d.cuInit, "cuInit"}, {&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"}, {&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"}, {&d.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"}, {&d.cuCtxSynchronize, "cuCtxSynchronize"},
		{&d.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"}, {&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemHostAlloc, "cuMemHostAlloc"}, {&d.cuMemFreeHost, "cuMemFreeHost"},
		{&d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"}, {&d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{&d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"}, {&d.cuMemsetD32Async, "cuMemsetD32Async"},
		{&d.cuStreamCreate, "cuStreamCreate"}, {&d.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&d.cuStreamSynchronize, "cuStreamSynchronize"}, {&d.cuStreamWaitEvent, "cuStreamWaitEvent"},
		{&d.cuEventCreate, "cuEventCreate"}, {&d.cuEventDestroy, "cuEventDestroy_v2"},
		{&d.cuEventRecord, "cuEventRecord"}, {&d.cuEventSynchronize, "cuEventSynchronize"},
		{&d.cuEventElapsedTime, "cuEventElapsedTime_v2|cuEventElapsedTime"},
		{&d.cuModuleLoadDataEx, "cuModuleLoadDataEx"}, {&d.cuModuleUnload, "cuModuleUnload"},
		{&d.cuModuleGetFunction, "cuModuleGetFunction"}, {&d.cuLaunchKernel, "cuLaunchKernel"},
		{&d.cuGetErrorName, "cuGetErrorName"}, {&d.cuGetErrorString, "cuGetErrorString"},
	}
}

// Driver API constants used here (cuda.h).
const (
	streamNonBlocking     = 0x1 // CU_STREAM_NON_BLOCKING
	eventDefault          = 0x0 // CU_EVENT_DEFAULT (timing enabled)
	eventDisableTiming    = 0x2 // CU_EVENT_DISABLE_TIMING
	memHostAllocPortable  = 0x1 // CU_MEMHOSTALLOC_PORTABLE
	attrComputeCapMajor   = 75  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrComputeCapMinor   = 76  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	attrMultiprocessors   = 16  // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
	jitInfoLogBuffer      = 3   // CU_JIT_INFO_LOG_BUFFER
	jitInfoLogBufferBytes = 4   // CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES
	jitErrorLogBuffer     = 5   // CU_JIT_ERROR_LOG_BUFFER
	jitErrorLogBufferSize = 6   // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
	errNoDevice           = 100 // CUDA_ERROR_NO_DEVICE
)

var (
	drvOnce sync.Once
	drv     *driver
	drvErr  error
)

// loadDriver loads libcuda and resolves every entry point, once per process.
func loadDriver() (*driver, error) {
	drvOnce.Do(func() {
		h, path, err := openLibrary("the CUDA driver (libcuda)", DriverSonames, EnvDriverLib)
		if err != nil {
			drvErr = fmt.Errorf("%w (is the NVIDIA driver installed?)", err)
			return
		}
		d := &driver{path: path}
		for _, s := range d.symbols() {
			// "a|b": the first name the library exports (newer ABI first).
			var err error
			for _, name := range strings.Split(s.name, "|") {
				var p uintptr
				if p, err = purego.Dlsym(h, name); err == nil {
					*s.p = p
					break
				}
			}
			if err != nil {
				drvErr = fmt.Errorf("cuda: %s has no %s (driver too old?): %v", path, s.name, err)
				return
			}
		}
		drv = d
	})
	return drv, drvErr
}

// Error is a failed CUDA driver or cuBLAS call.
type Error struct {
	Call string // the function, e.g. "cuMemAlloc"
	Code int    // its status code
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Msg  string // the library's description
}

// Error names the call and the status.
func (e *Error) Error() string {
	s := fmt.Sprintf("cuda: %s failed: %s (%d)", e.Call, e.Name, e.Code)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// goString copies a NUL-terminated C string.
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	var b []byte
	for i := uintptr(0); i < 4096; i++ {
		c := *(*byte)(cPointer(p + i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// cPointer turns an address returned by a C library into a pointer (the
// memory is not Go's, so the garbage collector ignores it).
func cPointer(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// call runs a driver function and turns a non-zero CUresult into an *Error.
//
//go:uintptrescapes
func (d *driver) call(name string, fn uintptr, args ...uintptr) error {
	r, _, _ := purego.SyscallN(fn, args...)
	// CUresult is a 32-bit enum: the C ABI leaves the upper half of the
	// return register undefined, so only the low 32 bits are the status.
	r = uintptr(uint32(r))
	if r == 0 {
		return nil
	}
	return d.err(name, r)
}

func (d *driver) err(name string, r uintptr) error {
	var pn, ps uintptr
	purego.SyscallN(d.cuGetErrorName, r, uintptr(unsafe.Pointer(&pn)))
	purego.SyscallN(d.cuGetErrorString, r, uintptr(unsafe.Pointer(&ps)))
	return &Error{Call: name, Code: int(r), Name: goString(pn), Msg: goString(ps)}
}

// must panics on a failed call: used inside Backend methods, whose
// signatures have no error (a failing launch is a broken device or a bug,
// never user input).
func must(err error) {
	if err != nil {
		panic(err)
	}
}

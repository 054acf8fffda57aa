package cuda

// Tests of the CUDA emulator itself (engine/cuda/cudasim): each classic GPU
// bug, planted on purpose, must fail deterministically, and the correct
// version must pass. They run only on the emulator (a real GPU would make
// most of them races), on device 1, whose context is created and
// destroyed per test so that a sticky error cannot leak into the shared
// backends of the other tests (device 0).

import (
	"errors"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// sim returns the loaded driver if it is the emulator, or skips.
func sim(t *testing.T) *driver {
	t.Helper()
	ok, err := Available()
	if !ok {
		if os.Getenv("TSIMCNE_REQUIRE_GPU") != "" {
			t.Fatalf("no CUDA device, and TSIMCNE_REQUIRE_GPU is set: %v", err)
		}
		t.Skipf("no CUDA device: %v", err)
	}
	d, _ := loadDriver()
	if simSym(t, d, "cudasimLastLeaks") == 0 {
		t.Skipf("%s is not the emulator", d.path)
	}
	return d
}

func simSym(t *testing.T, d *driver, name string) uintptr {
	t.Helper()
	h, err := purego.Dlopen(d.path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := purego.Dlsym(h, name)
	if err != nil {
		return 0
	}
	return p
}

// tf32Round rounds to TF32 (10 mantissa bits), to nearest, ties away.
func tf32Round(x float32) float32 {
	u := math.Float32bits(x)
	if u&0x7f800000 != 0x7f800000 {
		u = (u + 0x1000) &^ 0x1fff
	}
	return math.Float32frombits(u)
}

// TestSimTF32 : with the TF32 math mode the emulated cuBLAS rounds both
// inputs to TF32 and accumulates in FP32 (so the TF32 tolerances are
// exercised); with FP32 it does not round.
func TestSimTF32(t *testing.T) {
	sim(t)
	m, n, k := 37, 29, 300
	a := randVec(41, m*k, -1, 1)
	b := randVec(42, k*n, -1, 1)
	ref := func(round bool) []float32 {
		out := make([]float32, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for l := 0; l < k; l++ {
					x, y := a[i*k+l], b[l*n+j]
					if round {
						x, y = tf32Round(x), tf32Round(y)
					}
					s += float64(x) * float64(y)
				}
				out[i*n+j] = float32(s)
			}
		}
		return out
	}
	exact, rounded := ref(false), ref(true)
	for _, mode := range []string{"tf32", "fp32"} {
		be := newGPU(t, mode)
		ab, bb, cb := be.Alloc(m*k), be.Alloc(k*n), be.Alloc(m*n)
		be.Upload(ab, a)
		be.Upload(bb, b)
		be.Gemm(false, false, m, n, k, 1, ab, 0, k, bb, 0, n, 0, cb, 0, n)
		got := make([]float32, m*n)
		be.Download(got, cb)
		eExact, eRounded := relErr(got, exact), relErr(got, rounded)
		t.Logf("%s: relative error %.3g against exact inputs, %.3g against TF32-rounded inputs", mode, eExact, eRounded)
		if mode == "tf32" && !(eRounded < 1e-6 && eExact > 1e-5) {
			t.Errorf("tf32: want the TF32-rounded product (errors %.3g exact, %.3g rounded)", eExact, eRounded)
		}
		if mode == "fp32" && !(eExact < 1e-6) {
			t.Errorf("fp32: relative error %.3g against the exact product", eExact)
		}
	}
}

// simDevice is the device the planted bugs run on: not the shared
// backends' device 0, so each test gets a fresh primary context.
const simDevice = 1

// simCtx is a fresh primary context of simDevice, current on the test's
// locked OS thread, released (destroyed) at the end of the test.
type simCtx struct {
	t   *testing.T
	d   *driver
	dev int32
	ctx uintptr
	mod uintptr
	ap  argPack
	mem []uintptr // allocations, freed at the end (the leak report is tested on its own)
}

func newSimCtx(t *testing.T) *simCtx {
	d := sim(t)
	runtime.LockOSThread()
	s := &simCtx{t: t, d: d}
	s.must(d.call("cuDeviceGet", d.cuDeviceGet, uintptr(unsafe.Pointer(&s.dev)), simDevice))
	s.must(d.call("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&s.ctx)), uintptr(s.dev)))
	s.must(d.call("cuCtxSetCurrent", d.cuCtxSetCurrent, s.ctx))
	t.Cleanup(func() {
		for _, p := range s.mem {
			_ = d.call("cuMemFree", d.cuMemFree, p)
		}
		_ = d.call("cuDevicePrimaryCtxRelease", d.cuDevicePrimaryCtxRelease, uintptr(s.dev))
		_ = d.call("cuCtxSetCurrent", d.cuCtxSetCurrent, 0)
		runtime.UnlockOSThread()
	})
	return s
}

func (s *simCtx) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *simCtx) alloc(n int) uintptr {
	s.t.Helper()
	var p uintptr
	s.must(s.d.call("cuMemAlloc", s.d.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(4*n)))
	s.mem = append(s.mem, p)
	return p
}

func (s *simCtx) pinned(n int) []float32 {
	s.t.Helper()
	var p uintptr
	s.must(s.d.call("cuMemHostAlloc", s.d.cuMemHostAlloc, uintptr(unsafe.Pointer(&p)), uintptr(4*n), 0))
	return unsafe.Slice((*float32)(cPointer(p)), n)
}

func (s *simCtx) stream(flags uintptr) uintptr {
	s.t.Helper()
	var h uintptr
	s.must(s.d.call("cuStreamCreate", s.d.cuStreamCreate, uintptr(unsafe.Pointer(&h)), flags))
	return h
}

func (s *simCtx) event() uintptr {
	s.t.Helper()
	var h uintptr
	s.must(s.d.call("cuEventCreate", s.d.cuEventCreate, uintptr(unsafe.Pointer(&h)), eventDisableTiming))
	return h
}

func (s *simCtx) upload(p uintptr, v []float32, st uintptr) error {
	return s.d.call("cuMemcpyHtoDAsync", s.d.cuMemcpyHtoDAsync, p, uintptr(unsafe.Pointer(&v[0])), uintptr(4*len(v)), st)
}

// download copies n floats into pageable memory (synchronous, as CUDA
// makes it for pageable destinations) and waits for the stream.
func (s *simCtx) download(p uintptr, n int, st uintptr) ([]float32, error) {
	v := make([]float32, n)
	if err := s.d.call("cuMemcpyDtoHAsync", s.d.cuMemcpyDtoHAsync, uintptr(unsafe.Pointer(&v[0])), p, uintptr(4*n), st); err != nil {
		return nil, err
	}
	return v, s.sync(st)
}

func (s *simCtx) sync(st uintptr) error {
	return s.d.call("cuStreamSynchronize", s.d.cuStreamSynchronize, st)
}

// launch runs kernel k of the embedded PTX with a 1-D grid.
func (s *simCtx) launch(k kernelID, grid, block int, st uintptr, args ...karg) error {
	s.t.Helper()
	if s.mod == 0 {
		img := append([]byte(PTX), 0)
		s.must(s.d.call("cuModuleLoadDataEx", s.d.cuModuleLoadDataEx, uintptr(unsafe.Pointer(&s.mod)), uintptr(unsafe.Pointer(&img[0])), 0, 0, 0))
	}
	var f uintptr
	name := append([]byte(kernelSpecs[k].name), 0)
	s.must(s.d.call("cuModuleGetFunction", s.d.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), s.mod, uintptr(unsafe.Pointer(&name[0]))))
	kp, err := s.ap.pack(kernelSpecs[k].name, kernelSpecs[k].sig, args)
	s.must(err)
	return s.d.call("cuLaunchKernel", s.d.cuLaunchKernel, f, uintptr(grid), 1, 1, uintptr(block), 1, 1, 0, st, kp, 0)
}

// code is the CUDA status of err (0 for nil, -1 for another error).
func code(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

const (
	errIllegalAddress = 700
	errInvalidValue   = 1
	errOutOfMemory    = 2
	errInvalidContext = 201
	errInvalidPTX     = 218
	errNotFound       = 500
	cublasInvalid     = 7
)

func allNaN(v []float32) bool {
	for _, x := range v {
		if !math.IsNaN(float64(x)) {
			return false
		}
	}
	return true
}

// TestSimHostReadWithoutSync: a copy into pinned memory lands when the
// stream runs; reading the destination before synchronising sees poison
// (NaN), after synchronising the data.
func TestSimHostReadWithoutSync(t *testing.T) {
	for _, bug := range []bool{true, false} {
		t.Run(map[bool]string{true: "bug", false: "fixed"}[bug], func(t *testing.T) {
			s := newSimCtx(t)
			st := s.stream(streamNonBlocking)
			want := randVec(1, 1000, -1, 1)
			p := s.alloc(len(want))
			s.must(s.upload(p, want, st))
			dst := s.pinned(len(want))
			s.must(s.d.call("cuMemcpyDtoHAsync", s.d.cuMemcpyDtoHAsync, uintptr(unsafe.Pointer(&dst[0])), p, uintptr(4*len(want)), st))
			if !bug {
				s.must(s.sync(st))
			}
			got := append([]float32(nil), dst...) // the host reads
			if bug && !allNaN(got) {
				t.Errorf("read before synchronising: want poison, got %v...", got[:3])
			}
			if !bug && !slices.Equal(got, want) {
				t.Errorf("read after synchronising: wrong data %v...", got[:3])
			}
		})
	}
}

// TestSimMissingEvent: stream B copies what stream A writes. Without an
// event the emulator runs B first (when B is synchronised, A has not been)
// and B reads unwritten memory (NaN); with cuEventRecord on A and
// cuStreamWaitEvent on B, B sees A's data.
func TestSimMissingEvent(t *testing.T) {
	for _, bug := range []bool{true, false} {
		t.Run(map[bool]string{true: "bug", false: "fixed"}[bug], func(t *testing.T) {
			s := newSimCtx(t)
			a, b := s.stream(streamNonBlocking), s.stream(streamNonBlocking)
			want := randVec(2, 777, -1, 1)
			x, y := s.alloc(len(want)), s.alloc(len(want))
			s.must(s.upload(x, want, a))
			if !bug {
				ev := s.event()
				s.must(s.d.call("cuEventRecord", s.d.cuEventRecord, ev, a))
				s.must(s.d.call("cuStreamWaitEvent", s.d.cuStreamWaitEvent, b, ev, 0))
			}
			s.must(s.d.call("cuMemcpyDtoDAsync", s.d.cuMemcpyDtoDAsync, y, x, uintptr(4*len(want)), b))
			got, err := s.download(y, len(want), b)
			s.must(err)
			if bug && !allNaN(got) {
				t.Errorf("no event between the streams: want unwritten memory (NaN), got %v...", got[:3])
			}
			if !bug && !slices.Equal(got, want) {
				t.Errorf("with the event: wrong data %v...", got[:3])
			}
		})
	}
}

// TestSimLegacyStream: the legacy default stream waits for blocking
// streams but not for non-blocking ones.
func TestSimLegacyStream(t *testing.T) {
	for _, flags := range []uintptr{0, streamNonBlocking} {
		s := newSimCtx(t)
		st := s.stream(flags)
		want := randVec(3, 100, -1, 1)
		x, y := s.alloc(len(want)), s.alloc(len(want))
		s.must(s.upload(x, want, st))
		s.must(s.d.call("cuMemcpyDtoDAsync", s.d.cuMemcpyDtoDAsync, y, x, uintptr(4*len(want)), 0))
		got, err := s.download(y, len(want), 0)
		s.must(err)
		if flags == 0 && !slices.Equal(got, want) {
			t.Errorf("blocking stream: the legacy stream did not wait for it")
		}
		if flags == streamNonBlocking && !allNaN(got) {
			t.Errorf("non-blocking stream: the legacy stream waited for it")
		}
	}
}

// TestSimPageableSnapshot: an asynchronous copy from pageable memory takes
// the source at the call; from pinned memory, when the stream runs.
func TestSimPageableSnapshot(t *testing.T) {
	s := newSimCtx(t)
	st := s.stream(streamNonBlocking)
	p := s.alloc(4)
	src := []float32{1, 2, 3, 4}
	s.must(s.upload(p, src, st))
	src[0] = 99
	got, err := s.download(p, 4, st)
	s.must(err)
	if got[0] != 1 {
		t.Errorf("pageable source: the device saw a change made after the call (%v)", got)
	}
	pin := s.pinned(4)
	copy(pin, []float32{1, 2, 3, 4})
	s.must(s.upload(p, pin, st))
	pin[0] = 99 // the bug: the pinned source changes before the copy ran
	got, err = s.download(p, 4, st)
	s.must(err)
	if got[0] != 99 {
		t.Errorf("pinned source: the copy did not wait for the stream (%v)", got)
	}
}

// TestSimUseAfterFree: a kernel given a freed buffer fails with
// CUDA_ERROR_ILLEGAL_ADDRESS when it runs; a copy from it is refused.
func TestSimUseAfterFree(t *testing.T) {
	for _, bug := range []bool{true, false} {
		t.Run(map[bool]string{true: "bug", false: "fixed"}[bug], func(t *testing.T) {
			s := newSimCtx(t)
			st := s.stream(streamNonBlocking)
			n := 1000
			d, out := s.alloc(n), s.alloc(n)
			s.must(s.upload(d, randVec(4, n, -1, 1), st))
			s.must(s.upload(out, randVec(5, n, -1, 1), st))
			if bug {
				s.must(s.d.call("cuMemFree", s.d.cuMemFree, out))
			}
			err := s.launch(kReLUMask, 4, 256, st, argP(d), argP(out), argL(n))
			if err == nil {
				err = s.sync(st)
			}
			if bug && code(err) != errIllegalAddress {
				t.Errorf("kernel reading a freed buffer: %v, want CUDA_ERROR_ILLEGAL_ADDRESS", err)
			}
			if !bug && err != nil {
				t.Error(err)
			}
			if bug {
				return
			}
			p := s.alloc(10)
			s.must(s.d.call("cuMemFree", s.d.cuMemFree, p))
			if _, err := s.download(p, 10, st); code(err) != errInvalidValue {
				t.Errorf("copy from a freed buffer: %v, want CUDA_ERROR_INVALID_VALUE", err)
			}
		})
	}
}

// TestSimOutOfBoundsWrite: a kernel whose output buffer is 3 floats short
// (flip_conv_weight writes oc·k·k·c) overwrites the guard zone behind it:
// CUDA_ERROR_ILLEGAL_ADDRESS, naming the kernel and the allocation.
func TestSimOutOfBoundsWrite(t *testing.T) {
	for _, bug := range []bool{true, false} {
		t.Run(map[bool]string{true: "bug", false: "fixed"}[bug], func(t *testing.T) {
			s := newSimCtx(t)
			st := s.stream(streamNonBlocking)
			oc, k, c := 8, 3, 5
			n := oc * k * k * c
			w := s.alloc(n)
			s.must(s.upload(w, randVec(4, n, -1, 1), st))
			outLen := n
			if bug {
				outLen = n - 3
			}
			out := s.alloc(outLen)
			err := s.launch(kFlipConvWeight, 2, 256, st, argP(w), argI(oc), argI(k), argI(c), argP(out))
			if err == nil {
				err = s.sync(st)
			}
			if bug && code(err) != errIllegalAddress {
				t.Errorf("out-of-bounds write: %v, want CUDA_ERROR_ILLEGAL_ADDRESS", err)
			}
			if !bug && err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSimUnwrittenRead: fresh device memory reads as NaN.
func TestSimUnwrittenRead(t *testing.T) {
	s := newSimCtx(t)
	got, err := s.download(s.alloc(64), 64, 0)
	s.must(err)
	if !allNaN(got) {
		t.Errorf("fresh allocation: %v..., want NaN", got[:3])
	}
}

// TestSimLaunchLimits: launches outside CUDA's limits are refused.
func TestSimLaunchLimits(t *testing.T) {
	s := newSimCtx(t)
	d, out := s.alloc(10), s.alloc(10)
	args := []karg{argP(d), argP(out), argL(10)}
	spec := kernelSpecs[kReLUMask]
	if err := s.launch(kReLUMask, 1, 1024, 0, args...); err != nil {
		t.Errorf("1024 threads: %v", err)
	}
	var f uintptr
	name := append([]byte(spec.name), 0)
	s.must(s.d.call("cuModuleGetFunction", s.d.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), s.mod, uintptr(unsafe.Pointer(&name[0]))))
	kp, err := s.ap.pack(spec.name, spec.sig, args)
	s.must(err)
	for _, c := range []struct {
		what                       string
		gx, gy, gz, bx, by, bz, sh uintptr
	}{
		{"2048 threads per block", 1, 1, 1, 2048, 1, 1, 0},
		{"1024×2 threads per block", 1, 1, 1, 1024, 2, 1, 0},
		{"block z of 65", 1, 1, 1, 1, 1, 65, 0},
		{"grid y of 65536", 1, 65536, 1, 32, 1, 1, 0},
		{"grid x of 0", 0, 1, 1, 32, 1, 1, 0},
		{"64 KiB of shared memory", 1, 1, 1, 32, 1, 1, 65536},
	} {
		err := s.d.call("cuLaunchKernel", s.d.cuLaunchKernel, f, c.gx, c.gy, c.gz, c.bx, c.by, c.bz, c.sh, 0, kp, 0)
		if code(err) != errInvalidValue {
			t.Errorf("%s: %v, want CUDA_ERROR_INVALID_VALUE", c.what, err)
		}
	}
	s.must(s.sync(0))
}

// TestSimMemory: cuMemGetInfo reports the configured size, a larger
// allocation is CUDA_ERROR_OUT_OF_MEMORY, and a context destroyed with
// live allocations reports them.
func TestSimMemory(t *testing.T) {
	s := newSimCtx(t)
	var free, total uintptr
	s.must(s.d.call("cuMemGetInfo", s.d.cuMemGetInfo, uintptr(unsafe.Pointer(&free)), uintptr(unsafe.Pointer(&total))))
	if total < 64<<20 || free > total {
		t.Fatalf("cuMemGetInfo: free %d of %d", free, total)
	}
	var p uintptr
	err := s.d.call("cuMemAlloc", s.d.cuMemAlloc, uintptr(unsafe.Pointer(&p)), total+1)
	if code(err) != errOutOfMemory {
		t.Errorf("allocating more than the device: %v, want CUDA_ERROR_OUT_OF_MEMORY", err)
	}
	s.alloc(1000)
	s.alloc(10)
	s.mem = nil
	s.must(s.d.call("cuDevicePrimaryCtxRelease", s.d.cuDevicePrimaryCtxRelease, uintptr(s.dev)))
	r, _, _ := purego.SyscallN(simSym(t, s.d, "cudasimLastLeaks"))
	if int32(r) != 2 {
		t.Errorf("leaks reported at context destruction: %d, want 2", int32(r))
	}
	// The context is gone: calls on it fail, as on CUDA.
	err = s.d.call("cuMemAlloc", s.d.cuMemAlloc, uintptr(unsafe.Pointer(&p)), 4)
	if code(err) != errInvalidContext {
		t.Errorf("allocation in a destroyed context: %v", err)
	}
	s.must(s.d.call("cuDevicePrimaryCtxRetain", s.d.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&s.ctx)), uintptr(s.dev)))
}

// TestSimNoContext: without a current context, calls fail with
// CUDA_ERROR_INVALID_CONTEXT (the context is per OS thread).
func TestSimNoContext(t *testing.T) {
	d := sim(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.call("cuCtxSetCurrent", d.cuCtxSetCurrent, 0); err != nil {
		t.Fatal(err)
	}
	var p uintptr
	if err := d.call("cuMemAlloc", d.cuMemAlloc, uintptr(unsafe.Pointer(&p)), 4); code(err) != errInvalidContext {
		t.Errorf("cuMemAlloc without a context: %v", err)
	}
}

// TestSimModuleChecks: the PTX must declare each entry the emulator is
// asked for, with the parameter types of the source.
func TestSimModuleChecks(t *testing.T) {
	s := newSimCtx(t)
	load := func(ptx string) (uintptr, string, error) {
		// The driver writes the log through an address hidden in vals: the
		// buffer must be pinned heap memory (a uintptr does not keep it off
		// the goroutine stack, which moves when it grows), as in loadModule.
		var pin runtime.Pinner
		defer pin.Unpin()
		m := new(uintptr)
		img := append([]byte(ptx), 0)
		log := make([]byte, 1024)
		opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize}
		vals := []uintptr{0, uintptr(len(log))}
		pin.Pin(m)
		pin.Pin(&img[0])
		pin.Pin(&log[0])
		pin.Pin(&opts[0])
		pin.Pin(&vals[0])
		vals[0] = uintptr(unsafe.Pointer(&log[0]))
		err := s.d.call("cuModuleLoadDataEx", s.d.cuModuleLoadDataEx, uintptr(unsafe.Pointer(m)), uintptr(unsafe.Pointer(&img[0])),
			2, uintptr(unsafe.Pointer(&opts[0])), uintptr(unsafe.Pointer(&vals[0])))
		return *m, strings.TrimRight(string(log), "\x00"), err
	}
	m, _, err := load(PTX)
	s.must(err)
	var f uintptr
	name := []byte("no_such_kernel\x00")
	if err := s.d.call("cuModuleGetFunction", s.d.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), m, uintptr(unsafe.Pointer(&name[0]))); code(err) != errNotFound {
		t.Errorf("unknown kernel: %v, want CUDA_ERROR_NOT_FOUND", err)
	}
	bad := strings.Replace(PTX, ".entry relu_mask(", ".entry relu_mask_v2(", 1)
	if _, log, err := load(bad); code(err) != errInvalidPTX || !strings.Contains(log, "relu_mask_v2") {
		t.Errorf("entry without a host kernel: %v, log %q", err, log)
	}
	bad = strings.Replace(PTX, ".param .f32 sgd_param_4", ".param .u32 sgd_param_4", 1)
	if _, log, err := load(bad); code(err) != errInvalidPTX || !strings.Contains(log, "sgd parameter 4") {
		t.Errorf("retyped parameter: %v, log %q", err, log)
	}
}

// TestSimDirtyReturn: the emulator's statuses carry garbage in the upper
// 32 bits of the return register, which the C ABI leaves undefined; the
// backend must compare only the low 32 (driver.call does).
func TestSimDirtyReturn(t *testing.T) {
	d := sim(t)
	r, _, _ := purego.SyscallN(d.cuInit, 0)
	if r>>32 == 0 || uint32(r) != 0 {
		t.Errorf("cuInit returned %#x: want status 0 with a non-zero upper half", r)
	}
	if err := d.call("cuInit", d.cuInit, 0); err != nil {
		t.Errorf("driver.call: %v", err)
	}
}

// TestSimGemmBugs computes C = A·Bᵀ on row-major 24×24 matrices, the row-major trick
// of sgemmRowMajor applied by hand so that a flag or a dimension can be
// got wrong.
func TestSimGemmBugs(t *testing.T) {
	sim(t)
	bl, err := loadCublas()
	if err != nil {
		t.Fatal(err)
	}
	const n = 24
	a, b := randVec(6, n*n, -1, 1), randVec(7, n*n, -1, 1)
	want := make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < n; l++ {
				s += float64(a[i*n+l]) * float64(b[j*n+l])
			}
			want[i*n+j] = float32(s)
		}
	}
	run := func(t *testing.T, opFirst, opSecond uintptr, ldb int) ([]float32, error) {
		s := newSimCtx(t)
		var h uintptr
		s.must(bl.call("cublasCreate", bl.create, uintptr(unsafe.Pointer(&h))))
		defer bl.call("cublasDestroy", bl.destroy, h)
		st := s.stream(streamNonBlocking)
		s.must(bl.call("cublasSetStream", bl.setStream, h, st))
		s.must(bl.call("cublasSetMathMode", bl.setMathMode, h, cublasPedanticMath))
		pa, pb, pc := s.alloc(n*n), s.alloc(n*n), s.alloc(n*n)
		s.must(s.upload(pa, a, st))
		s.must(s.upload(pb, b, st))
		ga := &gemmArgs{alpha: 1, beta: 0}
		// Row-major C = A·op(B) is column-major Cᵀ = op(B)ᵀ·Aᵀ: B first
		// with B's flag, then A with A's.
		err := bl.call("cublasSgemm", bl.sgemm, h, opFirst, opSecond, n, n, n,
			uintptr(unsafe.Pointer(&ga.alpha)), pb, uintptr(ldb), pa, n, uintptr(unsafe.Pointer(&ga.beta)), pc, n)
		if err != nil {
			return nil, err
		}
		return s.download(pc, n*n, st)
	}
	t.Run("fixed", func(t *testing.T) {
		got, err := run(t, cublasOpT, cublasOpN, n)
		if err != nil || relErr(got, want) > 1e-6 {
			t.Errorf("correct call: %v, relative error %.3g", err, relErr(got, want))
		}
	})
	t.Run("swapped transpose flags", func(t *testing.T) {
		got, err := run(t, cublasOpN, cublasOpT, n)
		if err == nil && relErr(got, want) < 0.1 {
			t.Errorf("swapped flags gave the right product (relative error %.3g)", relErr(got, want))
		}
	})
	t.Run("leading dimension too small", func(t *testing.T) {
		if _, err := run(t, cublasOpT, cublasOpN, n-1); code(err) != cublasInvalid {
			t.Errorf("ldb < rows: %v, want CUBLAS_STATUS_INVALID_VALUE", err)
		}
	})
	t.Run("leading dimension too large", func(t *testing.T) {
		if _, err := run(t, cublasOpT, cublasOpN, n+1); code(err) != errIllegalAddress {
			t.Errorf("ldb reading past B: %v, want CUDA_ERROR_ILLEGAL_ADDRESS", err)
		}
	})
}

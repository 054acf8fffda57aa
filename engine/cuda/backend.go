// Package cuda is the engine's GPU backend: engine.Backend on an NVIDIA GPU
// through the CUDA driver API (libcuda) and cuBLAS, both loaded at run time
// with purego, so the package builds with CGO_ENABLED=0 and needs nothing
// from CUDA at build time.
//
// Buffers are device memory (cuMemAlloc); every operation is queued on one
// stream, in order, and only Download waits for the device. GEMMs run on
// cuBLAS (TF32 tensor cores by default, plain FP32 selectable),
// convolutions are the engine's im2col + GEMM with im2col/col2im as
// kernels, and BatchNorm, ReLU, pooling, the head's bias and SGD are kernels
// compiled from kernels/kernels.cu to PTX by clang and embedded (PTX). The
// loss and its gradient run on the device too (QueueLoss, engine.DeviceLoss):
// z and dz never leave it, and the scalar loss is read through pinned
// memory and an event.
//
// The data pipeline (Pipeline) copies the loader's uint8 images and drawn
// augmentation parameters from pinned memory (PinnedAllocator) on a copy
// stream and augments them on the device on a second stream, so views go
// straight into the model (engine.Model.ForwardBuf); see docs/GPU.md.
// ColorAugmenter does the colour half alone, for uint8 crops.
package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/engine"
)

// Options configure the CUDA backend.
type Options struct {
	// Device is the GPU ordinal (0 = the first).
	Device int
	// Math selects the GEMM precision: "tf32" (default; tensor cores,
	// 10-bit mantissa inputs, FP32 accumulation) or "fp32" (exact FP32).
	Math string
}

// GPUColsLimit is the im2col workspace (engine.Options.ColsLimit, in
// floats) this backend prefers (ColsLimit): 256M floats (1 GiB), so most
// convolutions of a 2×512 batch of 32×32 views run as one or two large
// GEMMs instead of hundreds of small ones (the CPU's 2M floats suit its
// cache).
const GPUColsLimit = 256 << 20

// ColsLimit is GPUColsLimit.
func (b *Backend) ColsLimit() int { return GPUColsLimit }

// Backend is engine.Backend on one CUDA device. Like the CPU backend it is
// not safe for concurrent use.
type Backend struct {
	drv  *driver
	blas *cublasLib

	ordinal int
	dev     int32
	ctx     uintptr
	stream  uintptr
	handle  uintptr // cuBLAS
	module  uintptr
	fns     [numKernels]uintptr

	devName string
	ccMajor int
	ccMinor int
	sms     int
	math    string

	args *argPack
	ga   *gemmArgs
	mem  *arena

	// Scratch device memory of the BatchNorm kernels, grown as needed:
	// float64 partial sums and per-channel float32 constants.
	part, small *devMem

	pinMu  sync.Mutex
	pinned map[uintptr]int // pinned host ranges (start → bytes), see PinnedAllocator

	gemmFlops float64
	closed    bool

	loss *deviceLoss // the loss kernels' scratch (QueueLoss), made on first use
}

// Available reports whether a CUDA driver and at least one device can be
// used, and if not, why.
func Available() (bool, error) {
	d, err := loadDriver()
	if err != nil {
		return false, err
	}
	if err := d.call("cuInit", d.cuInit, 0); err != nil {
		return false, err
	}
	var n int32
	if err := d.call("cuDeviceGetCount", d.cuDeviceGetCount, uintptr(unsafe.Pointer(&n))); err != nil {
		return false, err
	}
	if n < 1 {
		return false, fmt.Errorf("cuda: the driver (%s) sees no device", d.path)
	}
	return true, nil
}

// New opens device o.Device: it loads libcuda and cuBLAS, retains the
// device's primary context, creates a stream and a cuBLAS handle on it, and
// loads the embedded kernels (the driver JIT-compiles the sm_80 PTX for
// the device).
func New(o Options) (*Backend, error) {
	math := strings.ToLower(o.Math)
	switch math {
	case "":
		math = "tf32"
	case "tf32", "fp32":
	default:
		return nil, fmt.Errorf("cuda: math %q: want tf32 or fp32", o.Math)
	}
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	if err := d.call("cuInit", d.cuInit, 0); err != nil {
		return nil, err
	}
	var count int32
	if err := d.call("cuDeviceGetCount", d.cuDeviceGetCount, uintptr(unsafe.Pointer(&count))); err != nil {
		return nil, err
	}
	if o.Device < 0 || o.Device >= int(count) {
		return nil, fmt.Errorf("cuda: device %d requested, the driver (%s) sees %d", o.Device, d.path, count)
	}
	bl, err := loadCublas()
	if err != nil {
		return nil, err
	}
	b := &Backend{drv: d, blas: bl, ordinal: o.Device, math: math, args: new(argPack), ga: new(gemmArgs),
		pinned: map[uintptr]int{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.init(); err != nil {
		b.closeLocked()
		return nil, err
	}
	b.mem = newArena(deviceOps{b})
	return b, nil
}

func (b *Backend) init() error {
	d := b.drv
	if err := d.call("cuDeviceGet", d.cuDeviceGet, uintptr(unsafe.Pointer(&b.dev)), uintptr(b.ordinal)); err != nil {
		return err
	}
	name := make([]byte, 256)
	if err := d.call("cuDeviceGetName", d.cuDeviceGetName, uintptr(unsafe.Pointer(&name[0])), 256, uintptr(b.dev)); err != nil {
		return err
	}
	b.devName = strings.TrimRight(string(name), "\x00")
	if i := strings.IndexByte(b.devName, 0); i >= 0 {
		b.devName = b.devName[:i]
	}
	for _, q := range []struct {
		attr int
		dst  *int
	}{{attrComputeCapMajor, &b.ccMajor}, {attrComputeCapMinor, &b.ccMinor}, {attrMultiprocessors, &b.sms}} {
		var v int32
		if err := d.call("cuDeviceGetAttribute", d.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(q.attr), uintptr(b.dev)); err != nil {
			return err
		}
		*q.dst = int(v)
	}
	if err := d.call("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&b.ctx)), uintptr(b.dev)); err != nil {
		return err
	}
	if err := d.call("cuCtxSetCurrent", d.cuCtxSetCurrent, b.ctx); err != nil {
		return err
	}
	if err := d.call("cuStreamCreate", d.cuStreamCreate, uintptr(unsafe.Pointer(&b.stream)), streamNonBlocking); err != nil {
		return err
	}
	if err := b.loadModule(); err != nil {
		return err
	}
	bl := b.blas
	if err := bl.call("cublasCreate", bl.create, uintptr(unsafe.Pointer(&b.handle))); err != nil {
		return err
	}
	if err := bl.call("cublasSetStream", bl.setStream, b.handle, b.stream); err != nil {
		return err
	}
	mode := uintptr(cublasTF32TensorMath)
	if b.math == "fp32" {
		mode = cublasPedanticMath
	}
	return bl.call("cublasSetMathMode", bl.setMathMode, b.handle, mode)
}

// loadModule JIT-loads the embedded PTX and resolves every kernel,
// returning the JIT compiler's log on failure.
func (b *Backend) loadModule() error {
	d := b.drv
	img := append([]byte(PTX), 0)
	errLog := make([]byte, 8192)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize} // CUjit_option is a C enum (4 bytes)
	vals := []uintptr{uintptr(unsafe.Pointer(&errLog[0])), uintptr(len(errLog))}
	// The driver writes the log through an address hidden in vals (a
	// uintptr): pinning moves errLog to the heap, where it cannot be moved
	// by a stack growth, and keeps every buffer the driver reads in place.
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&errLog[0])
	pin.Pin(&img[0])
	pin.Pin(&opts[0])
	pin.Pin(&vals[0])
	err := d.call("cuModuleLoadDataEx", d.cuModuleLoadDataEx, uintptr(unsafe.Pointer(&b.module)),
		uintptr(unsafe.Pointer(&img[0])), uintptr(len(opts)), uintptr(unsafe.Pointer(&opts[0])), uintptr(unsafe.Pointer(&vals[0])))
	if err != nil {
		return fmt.Errorf("%w; JIT log: %s", err, strings.TrimRight(string(errLog), "\x00"))
	}
	for i, k := range kernelSpecs {
		cname := append([]byte(k.name), 0)
		if err := d.call("cuModuleGetFunction", d.cuModuleGetFunction, uintptr(unsafe.Pointer(&b.fns[i])), b.module, uintptr(unsafe.Pointer(&cname[0]))); err != nil {
			return fmt.Errorf("kernel %s: %w", k.name, err)
		}
	}
	return nil
}

// Close frees every buffer, the stream, the cuBLAS handle and the module,
// and releases the primary context. The backend must not be used after.
func (b *Backend) Close() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return b.closeLocked()
}

func (b *Backend) closeLocked() error {
	if b.closed {
		return nil
	}
	b.closed = true
	d := b.drv
	var errs []error
	if b.ctx != 0 {
		errs = append(errs, d.call("cuCtxSetCurrent", d.cuCtxSetCurrent, b.ctx))
		if b.stream != 0 {
			errs = append(errs, d.call("cuStreamSynchronize", d.cuStreamSynchronize, b.stream))
		}
	}
	b.closeLoss()
	if b.mem != nil {
		errs = append(errs, b.mem.closeAll())
	}
	if b.handle != 0 {
		errs = append(errs, b.blas.call("cublasDestroy", b.blas.destroy, b.handle))
	}
	if b.module != 0 {
		errs = append(errs, d.call("cuModuleUnload", d.cuModuleUnload, b.module))
	}
	if b.stream != 0 {
		errs = append(errs, d.call("cuStreamDestroy", d.cuStreamDestroy, b.stream))
	}
	if b.ctx != 0 {
		errs = append(errs, d.call("cuDevicePrimaryCtxRelease", d.cuDevicePrimaryCtxRelease, uintptr(b.dev)))
	}
	return errors.Join(errs...)
}

// enter makes the context current on this OS thread and keeps the
// goroutine on it until exit: CUDA's current context is per thread, and
// Go moves goroutines between threads.
func (b *Backend) enter() {
	runtime.LockOSThread()
	must(b.drv.call("cuCtxSetCurrent", b.drv.cuCtxSetCurrent, b.ctx))
}

func (b *Backend) exit() { runtime.UnlockOSThread() }

// deviceOps allocates device memory for the arena; the context is current
// (the arena is only used inside enter/exit).
type deviceOps struct{ b *Backend }

func (o deviceOps) alloc(bytes int) (uintptr, error) {
	var p uintptr
	err := o.b.drv.call("cuMemAlloc", o.b.drv.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(max(bytes, 4)))
	return p, err
}

func (o deviceOps) free(p uintptr) error {
	return o.b.drv.call("cuMemFree", o.b.drv.cuMemFree, p)
}

// Name says "cuda", the device and the GEMM precision.
func (b *Backend) Name() string {
	return fmt.Sprintf("cuda: %s (sm_%d%d, %d SMs), cuBLAS %s", b.devName, b.ccMajor, b.ccMinor, b.sms, strings.ToUpper(b.math))
}

// Describe is Name plus the libraries loaded.
func (b *Backend) Describe() string {
	return fmt.Sprintf("%s [%s, %s]", b.Name(), b.drv.path, b.blas.path)
}

// Threads is 1: the backend is driven from one goroutine; the device's
// parallelism is not the engine's business.
func (b *Backend) Threads() int { return 1 }

// Math is "tf32" or "fp32".
func (b *Backend) Math() string { return b.math }

// MemStats returns the device memory held by live buffers and its peak.
func (b *Backend) MemStats() (live, peak int) { return b.mem.LiveBytes(), b.mem.PeakBytes() }

// GEMMFlops returns the floating-point operations queued on cuBLAS since
// the last reset, and resets the count if asked.
func (b *Backend) GEMMFlops(reset bool) float64 {
	f := b.gemmFlops
	if reset {
		b.gemmFlops = 0
	}
	return f
}

// ptr is the device address of a buffer (0 for an absent one).
func ptr(x engine.Buf) uintptr {
	if !x.Valid() {
		return 0
	}
	m, ok := x.Dev.(*devMem)
	if !ok {
		panic(fmt.Sprintf("cuda: buffer of %d elements is not CUDA device memory (Dev %T)", x.Len(), x.Dev))
	}
	if m.ptr == 0 {
		panic("cuda: buffer used after it was freed")
	}
	return m.ptr
}

// at is the address of element off of x.
func at(x engine.Buf, off int) uintptr { return ptr(x) + uintptr(off)*4 }

// Alloc returns a zeroed device buffer of n float32.
func (b *Backend) Alloc(n int) engine.Buf {
	b.enter()
	defer b.exit()
	m, err := b.mem.alloc(4 * n)
	must(err)
	must(b.drv.call("cuMemsetD32Async", b.drv.cuMemsetD32Async, m.ptr, 0, uintptr(max(n, 1)), b.stream))
	return engine.DeviceBuf(m, n)
}

// Free releases a buffer now instead of when it becomes unreachable.
func (b *Backend) Free(x engine.Buf) error {
	if !x.Valid() {
		return nil
	}
	m, ok := x.Dev.(*devMem)
	if !ok {
		return fmt.Errorf("cuda: Free of a buffer that is not CUDA device memory (%T)", x.Dev)
	}
	b.enter()
	defer b.exit()
	if err := b.sync(); err != nil {
		return err
	}
	return b.mem.free(m)
}

// Collect frees the buffers the garbage collector found unreachable.
func (b *Backend) Collect() error {
	b.enter()
	defer b.exit()
	return b.mem.collect()
}

func (b *Backend) sync() error {
	return b.drv.call("cuStreamSynchronize", b.drv.cuStreamSynchronize, b.stream)
}

// Sync waits for all queued work.
func (b *Backend) Sync() error {
	b.enter()
	defer b.exit()
	return b.sync()
}

// isPinned reports whether [p, p+n) lies in memory from PinnedAllocator.
func (b *Backend) isPinned(p uintptr, n int) bool {
	b.pinMu.Lock()
	defer b.pinMu.Unlock()
	for s, l := range b.pinned {
		if p >= s && p+uintptr(n) <= s+uintptr(l) {
			return true
		}
	}
	return false
}

// Upload copies src into dst. From pageable memory the driver returns once
// src is staged; from pinned memory the copy is asynchronous, so Upload
// then waits for it (the caller may reuse src at once).
func (b *Backend) Upload(dst engine.Buf, src []float32) {
	if len(src) == 0 {
		return
	}
	if len(src) > dst.Len() {
		panic(fmt.Sprintf("cuda: Upload of %d floats into a buffer of %d", len(src), dst.Len()))
	}
	b.enter()
	defer b.exit()
	hp := uintptr(unsafe.Pointer(unsafe.SliceData(src)))
	must(b.drv.call("cuMemcpyHtoDAsync", b.drv.cuMemcpyHtoDAsync, ptr(dst), hp, uintptr(4*len(src)), b.stream))
	if b.isPinned(hp, 4*len(src)) {
		must(b.sync())
	}
	runtime.KeepAlive(src)
}

// Download copies src[0:len(dst)] to dst, waiting for all queued work.
func (b *Backend) Download(dst []float32, src engine.Buf) {
	if len(dst) == 0 {
		return
	}
	if len(dst) > src.Len() {
		panic(fmt.Sprintf("cuda: Download of %d floats from a buffer of %d", len(dst), src.Len()))
	}
	b.enter()
	defer b.exit()
	must(b.drv.call("cuMemcpyDtoHAsync", b.drv.cuMemcpyDtoHAsync, uintptr(unsafe.Pointer(unsafe.SliceData(dst))), ptr(src), uintptr(4*len(dst)), b.stream))
	must(b.sync())
	runtime.KeepAlive(dst)
}

// Zero clears the first n elements.
func (b *Backend) Zero(x engine.Buf, n int) {
	if n <= 0 {
		return
	}
	b.enter()
	defer b.exit()
	must(b.drv.call("cuMemsetD32Async", b.drv.cuMemsetD32Async, ptr(x), 0, uintptr(n), b.stream))
}

// Gemm runs cuBLAS SGEMM on the row-major sub-matrices.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a engine.Buf, aOff, lda int,
	bb engine.Buf, bOff, ldb int, beta float32, c engine.Buf, cOff, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	b.enter()
	defer b.exit()
	must(b.blas.sgemmRowMajor(b.handle, b.ga, transA, transB, m, n, k, alpha, at(a, aOff), lda,
		at(bb, bOff), ldb, beta, at(c, cOff), ldc))
	b.gemmFlops += 2 * float64(m) * float64(n) * float64(k)
}

// launch queues kernel k on the stream; the caller has entered.
func (b *Backend) launch(k kernelID, gx, gy, bx, by int, shared int, args ...karg) {
	spec := kernelSpecs[k]
	kp, err := b.args.pack(spec.name, spec.sig, args)
	must(err)
	must(b.drv.call("cuLaunchKernel", b.drv.cuLaunchKernel, b.fns[k],
		uintptr(gx), uintptr(gy), 1, uintptr(bx), uintptr(by), 1, uintptr(shared), b.stream, kp, 0))
}

// blockSize is the thread count of the element-wise kernels.
const blockSize = 256

// grid1 is the block count of a grid-stride loop over n elements: enough
// blocks to fill the device several times over, never more than needed.
func grid1(n int) int {
	g := (n + blockSize - 1) / blockSize
	return max(1, min(g, 65535))
}

// launch1 queues a 1-D grid-stride kernel over n elements.
func (b *Backend) launch1(k kernelID, n int, args ...karg) {
	if n <= 0 {
		return
	}
	b.launch(k, grid1(n), 1, blockSize, 1, 0, args...)
}

// Im2col gathers the patches of images [n0,n1).
func (b *Backend) Im2col(x engine.Buf, g engine.ConvGeom, n0, n1 int, cols engine.Buf) {
	b.enter()
	defer b.exit()
	rows := (n1 - n0) * g.OH * g.OW
	b.launch1(kIm2col, rows*g.ColWidth(), argP(ptr(x)), argP(ptr(cols)), argI(n0), argI(rows),
		argI(g.H), argI(g.W), argI(g.C), argI(g.K), argI(g.Stride), argI(g.Pad), argI(g.OH), argI(g.OW))
}

// Col2im sums the columns back into images [n0,n1) of dx.
func (b *Backend) Col2im(cols engine.Buf, g engine.ConvGeom, n0, n1 int, dx engine.Buf, accumulate bool) {
	b.enter()
	defer b.exit()
	pix := (n1 - n0) * g.H * g.W
	b.launch1(kCol2im, pix*g.C, argP(ptr(cols)), argP(ptr(dx)), argI(n0), argI(pix),
		argI(g.H), argI(g.W), argI(g.C), argI(g.K), argI(g.Stride), argI(g.Pad), argI(g.OH), argI(g.OW), argB(accumulate))
}

// bnGrid splits rows into at most 256 blocks of at least 64 rows for the
// two-step BatchNorm reductions; it returns rows per block and blocks.
func bnGrid(rows int) (rpb, nb int) {
	rpb = max(64, (rows+255)/256)
	nb = max(1, (rows+rpb-1)/rpb)
	return rpb, nb
}

// scratch makes sure the BatchNorm scratch holds nb·2·C float64 partial
// sums and 3·C float32 constants.
func (b *Backend) scratch(nb, c int) (part, small uintptr) {
	grow := func(m **devMem, bytes int) {
		if *m != nil && (*m).bytes >= bytes {
			return
		}
		if *m != nil {
			must(b.sync())
			must(b.mem.free(*m))
		}
		nm, err := b.mem.alloc(bytes)
		must(err)
		*m = nm
	}
	grow(&b.part, nb*2*c*8)
	grow(&b.small, 3*c*4)
	return b.part.ptr, b.small.ptr
}

// BatchNormTrain normalises with batch statistics, saves Mean/InvStd and
// updates the running statistics.
func (b *Backend) BatchNormTrain(a *engine.BNArgs) {
	b.enter()
	defer b.exit()
	rpb, nb := bnGrid(a.Rows)
	part, small := b.scratch(nb, a.C)
	b.launch(kBNPartial, (a.C+31)/32, nb, 32, 8, 0, argP(ptr(a.X)), argI(a.Rows), argI(a.C), argI(rpb), argP(part))
	scale, shift := small, small+uintptr(a.C)*4
	b.launch1(kBNTrainFinalize, a.C, argP(part), argI(nb), argI(a.C), argI(a.Rows), argP(ptr(a.Gamma)), argP(ptr(a.Beta)),
		argP(ptr(a.Mean)), argP(ptr(a.InvStd)), argP(ptr(a.RunMean)), argP(ptr(a.RunVar)),
		argF(a.Momentum), argF(a.Eps), argP(scale), argP(shift))
	b.affine(a, scale, shift)
}

// BatchNormEval normalises with the running statistics.
func (b *Backend) BatchNormEval(a *engine.BNArgs) {
	b.enter()
	defer b.exit()
	_, small := b.scratch(1, a.C)
	scale, shift := small, small+uintptr(a.C)*4
	b.launch1(kBNEvalPrep, a.C, argP(ptr(a.Gamma)), argP(ptr(a.Beta)), argP(ptr(a.RunMean)), argP(ptr(a.RunVar)),
		argF(a.Eps), argI(a.C), argP(scale), argP(shift))
	b.affine(a, scale, shift)
}

func (b *Backend) affine(a *engine.BNArgs, scale, shift uintptr) {
	total := a.Rows * a.C
	b.launch1(kBNApply, total, argP(ptr(a.X)), argP(scale), argP(shift), argP(ptr(a.Res)), argP(ptr(a.Out)),
		argL(total), argI(a.C), argB(a.ReLU))
}

// BatchNormBackward computes DGamma, DBeta and, if valid, DX.
func (b *Backend) BatchNormBackward(a *engine.BNArgs) {
	b.enter()
	defer b.exit()
	rpb, nb := bnGrid(a.Rows)
	part, k := b.scratch(nb, a.C)
	b.launch(kBNBwdPartial, (a.C+31)/32, nb, 32, 8, 0, argP(ptr(a.X)), argP(ptr(a.DOut)), argP(ptr(a.Mask)),
		argP(ptr(a.Mean)), argP(ptr(a.InvStd)), argI(a.Rows), argI(a.C), argI(rpb), argP(part))
	b.launch1(kBNBwdFinalize, a.C, argP(part), argI(nb), argI(a.C), argI(a.Rows), argP(ptr(a.Gamma)),
		argP(ptr(a.InvStd)), argP(ptr(a.DGamma)), argP(ptr(a.DBeta)), argP(k))
	if !a.DX.Valid() {
		return
	}
	total := a.Rows * a.C
	b.launch1(kBNBwdDX, total, argP(ptr(a.X)), argP(ptr(a.DOut)), argP(ptr(a.Mask)), argP(ptr(a.Mean)),
		argP(ptr(a.InvStd)), argP(k), argP(ptr(a.DX)), argL(total), argI(a.C))
}

// ReLUMask zeroes d where out ≤ 0.
func (b *Backend) ReLUMask(d, out engine.Buf, n int) {
	b.enter()
	defer b.exit()
	b.launch1(kReLUMask, n, argP(ptr(d)), argP(ptr(out)), argL(n))
}

// AddMasked accumulates src into dst where mask > 0 (everywhere without mask).
func (b *Backend) AddMasked(dst, src, mask engine.Buf, n int) {
	b.enter()
	defer b.exit()
	b.launch1(kAddMasked, n, argP(ptr(dst)), argP(ptr(src)), argP(ptr(mask)), argL(n))
}

// FlipConvWeight writes the kernel of the input-gradient convolution.
func (b *Backend) FlipConvWeight(w engine.Buf, oc, k, c int, out engine.Buf) {
	b.enter()
	defer b.exit()
	b.launch1(kFlipConvWeight, c*k*k*oc, argP(ptr(w)), argI(oc), argI(k), argI(c), argP(ptr(out)))
}

// AvgPool averages the pixels of each image.
func (b *Backend) AvgPool(x engine.Buf, n, hw, c int, out engine.Buf) {
	b.enter()
	defer b.exit()
	b.launch1(kAvgPool, n*c, argP(ptr(x)), argI(n), argI(hw), argI(c), argP(ptr(out)))
}

// AvgPoolBackward spreads the pooled gradient through the ReLU mask.
func (b *Backend) AvgPoolBackward(dout engine.Buf, n, hw, c int, mask, dx engine.Buf) {
	b.enter()
	defer b.exit()
	b.launch1(kAvgPoolBwd, n*hw*c, argP(ptr(dout)), argI(n), argI(hw), argI(c), argP(ptr(mask)), argP(ptr(dx)))
}

// BiasAct adds the bias to every row, then the optional ReLU.
func (b *Backend) BiasAct(y engine.Buf, rows, cols int, bias engine.Buf, relu bool) {
	b.enter()
	defer b.exit()
	b.launch1(kBiasAct, rows*cols, argP(ptr(y)), argI(rows), argI(cols), argP(ptr(bias)), argB(relu))
}

// ColSum overwrites out with the column sums of y.
func (b *Backend) ColSum(y engine.Buf, rows, cols int, out engine.Buf) {
	b.enter()
	defer b.exit()
	b.launch1(kColSum, cols, argP(ptr(y)), argI(rows), argI(cols), argP(ptr(out)))
}

// SGD updates p from g with momentum buffer m.
func (b *Backend) SGD(p, g, m engine.Buf, n int, s engine.SGDArgs) {
	b.enter()
	defer b.exit()
	b.launch1(kSGD, n, argP(ptr(p)), argP(ptr(g)), argP(ptr(m)), argL(n), argF(s.LR), argF(s.Momentum),
		argF(s.WeightDecay), argF(s.Clip), argB(s.First))
}

// Event is a CUDA event for timing work on the backend's stream.
type Event struct {
	b *Backend
	e uintptr
}

// NewEvent creates a timing event.
func (b *Backend) NewEvent() (*Event, error) {
	b.enter()
	defer b.exit()
	ev := &Event{b: b}
	if err := b.drv.call("cuEventCreate", b.drv.cuEventCreate, uintptr(unsafe.Pointer(&ev.e)), eventDefault); err != nil {
		return nil, err
	}
	return ev, nil
}

// Record marks the current end of the backend's stream.
func (e *Event) Record() error {
	e.b.enter()
	defer e.b.exit()
	return e.b.drv.call("cuEventRecord", e.b.drv.cuEventRecord, e.e, e.b.stream)
}

// Since waits for e and returns the device time from start to e.
func (e *Event) Since(start *Event) (time.Duration, error) {
	e.b.enter()
	defer e.b.exit()
	if err := e.b.drv.call("cuEventSynchronize", e.b.drv.cuEventSynchronize, e.e); err != nil {
		return 0, err
	}
	var ms float32
	if err := e.b.drv.call("cuEventElapsedTime", e.b.drv.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), start.e, e.e); err != nil {
		return 0, err
	}
	return time.Duration(float64(ms) * float64(time.Millisecond)), nil
}

// Destroy frees the event.
func (e *Event) Destroy() error {
	e.b.enter()
	defer e.b.exit()
	return e.b.drv.call("cuEventDestroy", e.b.drv.cuEventDestroy, e.e)
}

var _ engine.Backend = (*Backend)(nil)

// init registers the backend as engine.DeviceCUDA, so that programs open it
// by name (engine.OpenBackend) with a blank import of this package.
func init() {
	engine.RegisterDevice(engine.DeviceCUDA, engine.DeviceDriver{
		Unavailable: func() string {
			if _, err := Available(); err != nil {
				return Reason(err)
			}
			return ""
		},
		Open: func(o engine.DeviceOptions) (engine.Backend, error) {
			b, err := New(Options{Device: o.Ordinal})
			if err != nil {
				return nil, err
			}
			return b, nil
		},
	})
}

// Reason shortens an error from Available or New to one line for a log:
// for a library that could not be loaded, which one (the full error lists
// every place searched).
func Reason(err error) string {
	var le *LibError
	if errors.As(err, &le) {
		return "cannot load " + le.What
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

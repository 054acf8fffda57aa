package cuda

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/engine"
)

// PinnedAllocator gives the loader page-locked host memory (cuMemHostAlloc)
// for its batch slots (loader.Options.Allocator), so crops and parameters
// go to the device by DMA, asynchronously. It satisfies loader.Allocator.
type PinnedAllocator struct{ B *Backend }

// PinnedAllocator is PinnedAllocator{b}, as the engine's PinnedHost.
func (b *Backend) PinnedAllocator() engine.HostAllocator { return PinnedAllocator{b} }

// Alloc returns n bytes of pinned host memory (page aligned).
func (a PinnedAllocator) Alloc(n int) ([]byte, error) {
	a.B.enter()
	defer a.B.exit()
	return a.allocLocked(n)
}

// allocLocked is Alloc with the context current.
func (a PinnedAllocator) allocLocked(n int) ([]byte, error) {
	b := a.B
	var p uintptr
	if err := b.drv.call("cuMemHostAlloc", b.drv.cuMemHostAlloc, uintptr(unsafe.Pointer(&p)), uintptr(max(n, 1)), memHostAllocPortable); err != nil {
		return nil, fmt.Errorf("cuda: pinned host buffer of %d bytes: %w", n, err)
	}
	b.pinMu.Lock()
	b.pinned[p] = max(n, 1)
	b.pinMu.Unlock()
	return unsafe.Slice((*byte)(cPointer(p)), n), nil
}

// Free releases a buffer from Alloc.
func (a PinnedAllocator) Free(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	a.B.enter()
	defer a.B.exit()
	a.freeLocked(buf)
}

// freeLocked is Free with the context current.
func (a PinnedAllocator) freeLocked(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	b := a.B
	p := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	b.pinMu.Lock()
	_, ok := b.pinned[p]
	delete(b.pinned, p)
	b.pinMu.Unlock()
	if !ok {
		return
	}
	_ = b.drv.call("cuMemFreeHost", b.drv.cuMemFreeHost, p)
}

// PinnedFloats returns n float32 of pinned host memory (for Result's
// destination, so the copy back runs at full speed) and its release.
func (b *Backend) PinnedFloats(n int) ([]float32, func(), error) {
	a := PinnedAllocator{b}
	raw, err := a.Alloc(4 * n)
	if err != nil {
		return nil, nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(raw))), n), func() { a.Free(raw) }, nil
}

// paramsSize is the size of augment.Params, the struct the colour kernel
// reads (44 bytes; TestParamsStruct pins it against the C layout).
const paramsSize = int(unsafe.Sizeof(augment.Params{}))

// ColorAugmenter runs the colour half of the augmentation on the GPU: the
// loader (Output = loader.Crops8) cuts, resizes and flips on the CPU and
// hands over uint8 crops and the drawn Params; Queue copies them to the
// device on the augmenter's own stream and launches the colour kernel, which
// computes augment.(*Augmenter).Color on float32(x8)/255 — jitter in each
// view's order, grayscale, the configured normalisation — so the copy and
// the kernel overlap the training step running on the backend's stream.
//
// It matches the CPU (Color on the same crops) to 2e-5 absolute: the
// operations are the same float32 operations in the same order, except the
// contrast mean, summed in a different order (float64 here), which moves
// the mean by an ulp or so.
type ColorAugmenter struct {
	b      *Backend
	cfg    augment.Config
	stream uintptr
	args   *argPack
	x8     *devMem
	params *devMem
	out    *devMem
	views  int // capacity of the device buffers
	n      int // views of the last Queue
	queued bool
	hold   []any // the host memory of the copies in flight

	// done is recorded on the augmenter's stream after each colour kernel;
	// read on the backend's stream at each Queue. Output makes the
	// backend's stream wait for done (the views are written before they
	// are read); Queue makes the augmenter's stream wait for read (the
	// previous views are read before they are overwritten).
	done, read uintptr
}

// NewColorAugmenter prepares the colour kernel for views of cfg.OutH×cfg.OutW.
func (b *Backend) NewColorAugmenter(cfg augment.Config) (*ColorAugmenter, error) {
	if cfg.OutH <= 0 || cfg.OutW <= 0 {
		return nil, fmt.Errorf("cuda: colour augmentation needs the view size (OutH×OutW = %d×%d)", cfg.OutH, cfg.OutW)
	}
	b.enter()
	defer b.exit()
	c := &ColorAugmenter{b: b, cfg: cfg, args: new(argPack)}
	if err := b.drv.call("cuStreamCreate", b.drv.cuStreamCreate, uintptr(unsafe.Pointer(&c.stream)), streamNonBlocking); err != nil {
		return nil, err
	}
	for _, e := range []*uintptr{&c.done, &c.read} {
		if err := b.drv.call("cuEventCreate", b.drv.cuEventCreate, uintptr(unsafe.Pointer(e)), eventDisableTiming); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *ColorAugmenter) reserve(views int) error {
	if views <= c.views {
		return nil
	}
	hw := c.cfg.OutH * c.cfg.OutW
	for _, m := range []*devMem{c.x8, c.params, c.out} {
		if err := c.b.mem.free(m); err != nil {
			return err
		}
	}
	var err error
	if c.x8, err = c.b.mem.alloc(views * hw * 3); err != nil {
		return err
	}
	if c.params, err = c.b.mem.alloc(views * paramsSize); err != nil {
		return err
	}
	if c.out, err = c.b.mem.alloc(views * hw * 3 * 4); err != nil {
		return err
	}
	c.views = views
	return nil
}

// Queue starts the colour augmentation of len(params) views whose crops
// are x8 (views·OutH·OutW·3 bytes, as loader.Batch.X8). It returns at once;
// x8 and params must stay untouched (the batch unreleased) until Result.
func (c *ColorAugmenter) Queue(x8 []uint8, params []augment.Params) error {
	views := len(params)
	hw := c.cfg.OutH * c.cfg.OutW
	if len(x8) < views*hw*3 {
		return fmt.Errorf("cuda: %d crop bytes for %d views of %d×%d", len(x8), views, c.cfg.OutH, c.cfg.OutW)
	}
	if c.queued {
		return fmt.Errorf("cuda: colour augmentation queued twice without Result")
	}
	if views == 0 {
		return nil
	}
	b := c.b
	b.enter()
	defer b.exit()
	d := b.drv
	// Everything queued on the backend's stream so far (readers of the
	// previous Output) runs before the buffers are reused or freed.
	if err := d.call("cuEventRecord", d.cuEventRecord, c.read, b.stream); err != nil {
		return err
	}
	if err := d.call("cuStreamWaitEvent", d.cuStreamWaitEvent, c.stream, c.read, 0); err != nil {
		return err
	}
	if err := c.reserve(views); err != nil {
		return err
	}
	if err := d.call("cuMemcpyHtoDAsync", d.cuMemcpyHtoDAsync, c.x8.ptr, uintptr(unsafe.Pointer(&x8[0])), uintptr(views*hw*3), c.stream); err != nil {
		return err
	}
	if err := d.call("cuMemcpyHtoDAsync", d.cuMemcpyHtoDAsync, c.params.ptr, uintptr(unsafe.Pointer(&params[0])), uintptr(views*paramsSize), c.stream); err != nil {
		return err
	}
	cf := &c.cfg
	spec := kernelSpecs[kColorU8]
	kp, err := c.args.pack(spec.name, spec.sig, []karg{argP(c.x8.ptr), argP(c.params.ptr), argP(c.out.ptr), argI(hw),
		argB(cf.Normalize), argF(cf.Mean[0]), argF(cf.Mean[1]), argF(cf.Mean[2]), argF(cf.Std[0]), argF(cf.Std[1]), argF(cf.Std[2])})
	if err != nil {
		return err
	}
	if err := d.call("cuLaunchKernel", d.cuLaunchKernel, b.fns[kColorU8], uintptr(views), 1, 1, colorThreads, 1, 1, 0, c.stream, kp, 0); err != nil {
		return err
	}
	if err := d.call("cuEventRecord", d.cuEventRecord, c.done, c.stream); err != nil {
		return err
	}
	c.hold = []any{x8, params}
	c.queued = true
	c.n = views
	return nil
}

// colorThreads is the block size of color_u8 (COLOR_THREADS in kernels.cu).
const colorThreads = 256

// Result waits for the queued views and copies them, as float32 NHWC
// (views·OutH·OutW·3), into dst; pinned dst (PinnedFloats) copies fastest.
func (c *ColorAugmenter) Result(dst []float32) error {
	if !c.queued {
		return fmt.Errorf("cuda: colour augmentation Result without Queue")
	}
	b := c.b
	b.enter()
	defer b.exit()
	c.queued = false
	d := b.drv
	n := min(len(dst), c.views*c.cfg.OutH*c.cfg.OutW*3)
	if n > 0 {
		if err := d.call("cuMemcpyDtoHAsync", d.cuMemcpyDtoHAsync, uintptr(unsafe.Pointer(&dst[0])), c.out.ptr, uintptr(4*n), c.stream); err != nil {
			return err
		}
	}
	err := d.call("cuStreamSynchronize", d.cuStreamSynchronize, c.stream)
	runtime.KeepAlive(dst)
	c.hold = nil
	return err
}

// Output is the device buffer of the last queued views (for callers that
// keep the views on the device). The backend's stream waits for the
// colour kernel from here on, so backend operations queued after Output
// read finished views; the buffer stays valid until the next Queue.
func (c *ColorAugmenter) Output() engine.Buf {
	if c.out == nil {
		return engine.Buf{}
	}
	b := c.b
	b.enter()
	defer b.exit()
	must(b.drv.call("cuStreamWaitEvent", b.drv.cuStreamWaitEvent, b.stream, c.done, 0))
	return engine.DeviceBuf(c.out, c.n*c.cfg.OutH*c.cfg.OutW*3)
}

// Close frees the device buffers and the stream.
func (c *ColorAugmenter) Close() error {
	b := c.b
	b.enter()
	defer b.exit()
	d := b.drv
	_ = d.call("cuStreamSynchronize", d.cuStreamSynchronize, c.stream)
	for _, m := range []*devMem{c.x8, c.params, c.out} {
		_ = b.mem.free(m)
	}
	c.views = 0
	for _, e := range []uintptr{c.done, c.read} {
		if e != 0 {
			_ = d.call("cuEventDestroy", d.cuEventDestroy, e)
		}
	}
	return d.call("cuStreamDestroy", d.cuStreamDestroy, c.stream)
}

package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/engine"
)

// PipelineOptions size a Pipeline (engine.ViewPipelineOptions: the engine
// names the GPU data pipeline's options so that programs need no type of
// this package).
type PipelineOptions = engine.ViewPipelineOptions

// Pipeline is the device half of the GPU data pipeline. The loader
// (Output = loader.Source8, PinnedAllocator) writes per image the uint8
// pixels its views need plus the drawn augment.Params into pinned slots;
// Submit copies a batch to the device on the copy stream, runs the
// augmentation kernel (crop, resize, flip, colour jitter, grayscale,
// normalisation: augment.(*Augmenter).Apply within the tolerance
// documented in docs/GPU.md) on the augmentation stream, and makes the
// backend's stream wait for it; the model then reads the views from
// device memory (engine.Model.ForwardBuf). Events order copy → augment →
// compute; a stage's device buffers are overwritten only after the step
// that read them (Consumed) has run; the loader's slot is handed back
// (release) once its copy has completed, by a goroutine that blocks on the
// copy's event rather than spinning.
//
// Submit and Consumed are called from the goroutine that drives the
// backend.
type Pipeline struct {
	b       *Backend
	o       PipelineOptions
	maxp    int
	copyS   uintptr
	augS    uintptr
	args    *argPack
	stages  []*stage
	next    int
	cur     *stage
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error
	closed  bool
	scratch int // scratch bytes per view
	// released holds, oldest first, a channel per submission that is
	// closed once its release has run (WaitReleased).
	released []chan struct{}
}

// stage is one batch in flight: its device buffers and events.
type stage struct {
	src8, params, scratch, out *devMem
	copied, augmented, used    uintptr
	inUse                      bool // used has been recorded
}

// augThreads is the block size of augment_src8 (AUG_THREADS in kernels.cu).
const augThreads = 256

// tapsBound is the most taps one output sample of a crop of at most src
// samples resized to out can have (augment's taps.build).
func tapsBound(src, out int, interp augment.Interp) int {
	if interp == augment.Bilinear {
		return 2
	}
	return int(math.Ceil(math.Max(float64(src)/float64(out), 1)))*2 + 1
}

// NewPipeline allocates o.Stages stages of device buffers, two streams and
// the events.
func (b *Backend) NewPipeline(o PipelineOptions) (*Pipeline, error) {
	c := o.Augment
	if c.OutH <= 0 || c.OutW <= 0 || o.SrcH <= 0 || o.SrcW <= 0 || o.Images <= 0 || o.Views < 1 || o.Views > 2 {
		return nil, fmt.Errorf("cuda: pipeline of %d images × %d views, %dx%d sources, %dx%d views", o.Images, o.Views, o.SrcW, o.SrcH, c.OutW, c.OutH)
	}
	if c.RotationDeg > 0 {
		return nil, errors.New("cuda: the GPU augmentation does not rotate (RotationDeg > 0)")
	}
	if o.Stages == 0 {
		o.Stages = 2
	}
	p := &Pipeline{b: b, o: o, args: new(argPack)}
	p.maxp = max(tapsBound(o.SrcW, c.OutW, c.Interp), tapsBound(o.SrcH, c.OutH, c.Interp))
	// augment_src8's taps per view, rounded up to 16 bytes so that every
	// view's float64 weights are aligned (a misaligned double faults).
	p.scratch = ((c.OutW+c.OutH)*(12*p.maxp+12) + 15) / 16 * 16
	b.enter()
	defer b.exit()
	if err := p.init(); err != nil {
		p.closeLocked()
		return nil, err
	}
	return p, nil
}

// NewViewPipeline is NewPipeline as the engine's ViewAugmenter.
func (b *Backend) NewViewPipeline(o engine.ViewPipelineOptions) (engine.ViewPipeline, error) {
	p, err := b.NewPipeline(o)
	if err != nil {
		return nil, err // not a nil *Pipeline in a non-nil interface
	}
	return p, nil
}

var _ engine.ViewAugmenter = (*Backend)(nil)

func (p *Pipeline) init() error {
	b, o, d := p.b, p.o, p.b.drv
	for _, s := range []*uintptr{&p.copyS, &p.augS} {
		if err := d.call("cuStreamCreate", d.cuStreamCreate, uintptr(unsafe.Pointer(s)), streamNonBlocking); err != nil {
			return err
		}
	}
	views := o.Images * o.Views
	for range o.Stages {
		s := &stage{}
		p.stages = append(p.stages, s)
		var err error
		for _, a := range []struct {
			m     **devMem
			bytes int
		}{{&s.src8, o.Images * o.SrcH * o.SrcW * 3}, {&s.params, views * paramsSize},
			{&s.scratch, views * p.scratch}, {&s.out, 4 * views * o.Augment.OutH * o.Augment.OutW * 3}} {
			if *a.m, err = b.mem.alloc(a.bytes); err != nil {
				return fmt.Errorf("cuda: pipeline buffers: %w", err)
			}
		}
		for _, e := range []*uintptr{&s.copied, &s.augmented, &s.used} {
			if err := d.call("cuEventCreate", d.cuEventCreate, uintptr(unsafe.Pointer(e)), eventBlockingSync|eventDisableTiming); err != nil {
				return err
			}
		}
	}
	return nil
}

// Submit queues batch: images of src8 (n regions of SrcH×SrcW×3 bytes, as
// loader.Batch.X8 with Source8) and the Views·n params (row r = v·n + i
// is view v of image i, crop boxes relative to the region). It returns at
// once with the device buffer the views will be in (Views·n·OutH·OutW·3
// float32, NHWC) once the backend's stream reaches its next work: the
// stream waits for the augmentation. release (may be nil) is called, from
// another goroutine, when src8 and params have been copied and may be
// reused. Call Consumed after queueing the work that reads the views.
func (p *Pipeline) Submit(src8 []uint8, params []augment.Params, n int, release func()) (engine.Buf, error) {
	o := p.o
	if err := p.failed(); err != nil {
		return engine.Buf{}, err
	}
	if p.closed {
		return engine.Buf{}, errors.New("cuda: pipeline used after Close")
	}
	if n < 1 || n > o.Images || len(params) != o.Views*n {
		return engine.Buf{}, fmt.Errorf("cuda: pipeline batch of %d images with %d params (at most %d images × %d views)", n, len(params), o.Images, o.Views)
	}
	region := o.SrcH * o.SrcW * 3
	if len(src8) < n*region {
		return engine.Buf{}, fmt.Errorf("cuda: pipeline batch of %d images has %d bytes, want %d", n, len(src8), n*region)
	}
	for r := range params {
		q := &params[r]
		if q.CropH <= 0 || q.CropW <= 0 || q.Top < 0 || q.Left < 0 || int(q.Top+q.CropH) > o.SrcH || int(q.Left+q.CropW) > o.SrcW {
			return engine.Buf{}, fmt.Errorf("cuda: view %d: crop box (top %d, left %d, %dx%d) outside the %dx%d region", r, q.Top, q.Left, q.CropH, q.CropW, o.SrcH, o.SrcW)
		}
		if q.Angle != 0 {
			return engine.Buf{}, fmt.Errorf("cuda: view %d is rotated; the GPU augmentation does not rotate", r)
		}
	}
	b := p.b
	d := b.drv
	s := p.stages[p.next]
	p.next = (p.next + 1) % len(p.stages)
	views := o.Views * n
	b.enter()
	defer b.exit()
	if s.inUse { // the step that read this stage's views must be done
		if err := d.call("cuStreamWaitEvent", d.cuStreamWaitEvent, p.copyS, s.used, 0); err != nil {
			return engine.Buf{}, err
		}
	}
	if err := d.call("cuMemcpyHtoDAsync", d.cuMemcpyHtoDAsync, s.src8.ptr, uintptr(unsafe.Pointer(&src8[0])), uintptr(n*region), p.copyS); err != nil {
		return engine.Buf{}, err
	}
	if err := d.call("cuMemcpyHtoDAsync", d.cuMemcpyHtoDAsync, s.params.ptr, uintptr(unsafe.Pointer(&params[0])), uintptr(views*paramsSize), p.copyS); err != nil {
		return engine.Buf{}, err
	}
	if err := d.call("cuEventRecord", d.cuEventRecord, s.copied, p.copyS); err != nil {
		return engine.Buf{}, err
	}
	if err := d.call("cuStreamWaitEvent", d.cuStreamWaitEvent, p.augS, s.copied, 0); err != nil {
		return engine.Buf{}, err
	}
	c := &o.Augment
	spec := kernelSpecs[kAugmentSrc8]
	kp, err := p.args.pack(spec.name, spec.sig, []karg{argP(s.src8.ptr), argI(n), argI(o.SrcH), argI(o.SrcW), argP(s.params.ptr),
		argP(s.out.ptr), argI(c.OutH), argI(c.OutW), argI(int(c.Interp)), argI(p.maxp), argP(s.scratch.ptr),
		argB(c.Normalize), argF(c.Mean[0]), argF(c.Mean[1]), argF(c.Mean[2]), argF(c.Std[0]), argF(c.Std[1]), argF(c.Std[2])})
	if err != nil {
		return engine.Buf{}, err
	}
	if err := d.call("cuLaunchKernel", d.cuLaunchKernel, b.fns[kAugmentSrc8], uintptr(views), 1, 1, augThreads, 1, 1, 0, p.augS, kp, 0); err != nil {
		return engine.Buf{}, err
	}
	if err := d.call("cuEventRecord", d.cuEventRecord, s.augmented, p.augS); err != nil {
		return engine.Buf{}, err
	}
	if err := d.call("cuStreamWaitEvent", d.cuStreamWaitEvent, b.stream, s.augmented, 0); err != nil {
		return engine.Buf{}, err
	}
	p.cur = s
	p.wg.Add(1)
	done := make(chan struct{})
	p.released = append(p.released, done)
	go p.releaseAfterCopy(s.copied, src8, params, release, done)
	return engine.DeviceBuf(s.out, views*c.OutH*c.OutW*3), nil
}

// releaseAfterCopy blocks on the copy's event (a sleeping wait), then hands
// the loader's slot back.
func (p *Pipeline) releaseAfterCopy(ev uintptr, src8 []uint8, params []augment.Params, release func(), done chan struct{}) {
	defer p.wg.Done()
	defer close(done)
	b := p.b
	b.enter()
	err := b.drv.call("cuEventSynchronize", b.drv.cuEventSynchronize, ev)
	b.exit()
	runtime.KeepAlive(src8)
	runtime.KeepAlive(params)
	if err != nil {
		p.fail(fmt.Errorf("cuda: pipeline copy: %w", err))
	}
	if release != nil {
		release()
	}
}

// WaitReleased waits until every submission but the newest keep has been
// released. A loader hands out a batch only while it has a free slot, so a
// loop that knows a batch's copy is done (its step has run) calls this
// before asking the loader for more, instead of racing the goroutine that
// releases it.
func (p *Pipeline) WaitReleased(keep int) error {
	for len(p.released) > max(keep, 0) {
		<-p.released[0]
		p.released = p.released[1:]
	}
	return p.failed()
}

func (p *Pipeline) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
}

func (p *Pipeline) failed() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// Consumed marks, on the backend's stream, the end of the work that reads
// the last submitted views: the stage is reused only after it.
func (p *Pipeline) Consumed() error {
	if p.cur == nil {
		return errors.New("cuda: Consumed without Submit")
	}
	b := p.b
	b.enter()
	defer b.exit()
	if err := b.drv.call("cuEventRecord", b.drv.cuEventRecord, p.cur.used, b.stream); err != nil {
		return err
	}
	p.cur.inUse = true
	p.cur = nil
	return nil
}

// Close waits for the copies in flight (so every slot is released), then
// frees the streams, events and buffers.
func (p *Pipeline) Close() error {
	if p.closed {
		return nil
	}
	p.wg.Wait()
	p.b.enter()
	defer p.b.exit()
	return p.closeLocked()
}

func (p *Pipeline) closeLocked() error {
	p.closed = true
	b, d := p.b, p.b.drv
	var errs []error
	for _, s := range []uintptr{p.copyS, p.augS} {
		if s != 0 {
			errs = append(errs, d.call("cuStreamSynchronize", d.cuStreamSynchronize, s))
		}
	}
	errs = append(errs, d.call("cuStreamSynchronize", d.cuStreamSynchronize, b.stream))
	for _, s := range p.stages {
		for _, m := range []*devMem{s.src8, s.params, s.scratch, s.out} {
			errs = append(errs, b.mem.free(m))
		}
		for _, e := range []uintptr{s.copied, s.augmented, s.used} {
			if e != 0 {
				errs = append(errs, d.call("cuEventDestroy", d.cuEventDestroy, e))
			}
		}
	}
	for _, s := range []uintptr{p.copyS, p.augS} {
		if s != 0 {
			errs = append(errs, d.call("cuStreamDestroy", d.cuStreamDestroy, s))
		}
	}
	p.stages = nil
	return errors.Join(errs...)
}

package cuda

import (
	"fmt"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/engine"
)

// lossRing is how many losses may be pending at once: a PendingLoss stays
// valid until lossRing more losses are queued (a training loop waits for
// each one a step later).
const lossRing = 4

// lossThreads is the block size of the loss kernels (LOSS_THREADS in
// kernels.cu; a power of two for their tree reductions).
const lossThreads = 256

// eventBlockingSync is CU_EVENT_BLOCKING_SYNC: cuEventSynchronize on such
// an event sleeps instead of spinning, leaving the CPU to the loader.
const eventBlockingSync = 0x1

// deviceLoss holds the loss kernels' scratch: the n×n coefficient matrix,
// per-anchor losses, the cosine loss's normalised rows, and a ring of
// scalar results with their pinned host copies and events.
type deviceLoss struct {
	n, d                 int
	a, losses, zn, norms *devMem
	g                    *devMem
	out                  *devMem // lossRing float64
	host                 []float64
	free                 func()
	pend                 [lossRing]pendingLoss
	next                 int
}

// pendingLoss is one queued loss: its ring slot and event.
type pendingLoss struct {
	b      *Backend
	slot   int
	ev     uintptr
	queued bool
}

// Wait blocks (without spinning) until the loss is on the host.
func (p *pendingLoss) Wait() (float64, error) {
	b := p.b
	b.enter()
	defer b.exit()
	if !p.queued {
		return 0, fmt.Errorf("cuda: waiting for a loss that was never queued")
	}
	if err := b.drv.call("cuEventSynchronize", b.drv.cuEventSynchronize, p.ev); err != nil {
		return 0, fmt.Errorf("cuda: loss: %w", err)
	}
	return b.loss.host[p.slot], nil
}

// reserve sizes the scratch for n views of d values; the context is current.
func (l *deviceLoss) reserve(b *Backend, n, d int) error {
	if n <= l.n && d <= l.d {
		return nil
	}
	n, d = max(n, l.n), max(d, l.d)
	for _, m := range []*devMem{l.a, l.losses, l.zn, l.norms, l.g} {
		if err := b.mem.free(m); err != nil {
			return err
		}
	}
	var err error
	alloc := func(bytes int) *devMem {
		if err != nil {
			return nil
		}
		var m *devMem
		m, err = b.mem.alloc(bytes)
		return m
	}
	l.a, l.losses, l.zn, l.norms, l.g = alloc(8*n*n), alloc(8*n), alloc(8*n*d), alloc(8*n), alloc(8*n*d)
	if err != nil {
		return fmt.Errorf("cuda: loss scratch for %d×%d: %w", n, d, err)
	}
	l.n, l.d = n, d
	return nil
}

// initLoss creates the result ring; the context is current.
func (b *Backend) initLoss() error {
	l := &deviceLoss{}
	var err error
	if l.out, err = b.mem.alloc(8 * lossRing); err != nil {
		return err
	}
	raw, err := PinnedAllocator{b}.allocLocked(8 * lossRing)
	if err != nil {
		return err
	}
	l.host = unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(raw))), lossRing)
	l.free = func() { PinnedAllocator{b}.freeLocked(raw) }
	for i := range l.pend {
		p := &l.pend[i]
		p.b, p.slot = b, i
		if err := b.drv.call("cuEventCreate", b.drv.cuEventCreate, uintptr(unsafe.Pointer(&p.ev)), eventBlockingSync|eventDisableTiming); err != nil {
			return err
		}
	}
	b.loss = l
	return nil
}

// closeLoss frees the loss's events and pinned memory (device memory goes
// with the arena); the context is current.
func (b *Backend) closeLoss() {
	l := b.loss
	if l == nil {
		return
	}
	for i := range l.pend {
		if l.pend[i].ev != 0 {
			_ = b.drv.call("cuEventDestroy", b.drv.cuEventDestroy, l.pend[i].ev)
		}
	}
	if l.free != nil {
		l.free()
	}
	b.loss = nil
}

// QueueLoss is engine.DeviceLoss: the Cauchy ("euclidean") or cosine
// InfoNCE loss of the n×d views z and its gradient dz, computed on the
// device in float64 like the CPU's (engine/loss.go, operation for
// operation except the order of a few sums), queued on the backend's
// stream. The scalar loss is copied to pinned host memory behind the
// step's work; Wait blocks on an event, so the loop that queued the step
// is never held up by it.
func (b *Backend) QueueLoss(metric engine.Metric, tau float64, z engine.Buf, n, d int, dz engine.Buf) (engine.PendingLoss, error) {
	if n < 2 || n%2 != 0 || d < 1 {
		return nil, fmt.Errorf("cuda: loss needs an even number ≥ 2 of views and d ≥ 1, got %d×%d", n, d)
	}
	if z.Len() < n*d || dz.Len() < n*d {
		return nil, fmt.Errorf("cuda: loss of %d×%d with buffers of %d and %d", n, d, z.Len(), dz.Len())
	}
	if metric == engine.MetricCosine && !(tau > 0) {
		return nil, fmt.Errorf("cuda: cosine loss: temperature %g ≤ 0", tau)
	}
	b.enter()
	defer b.exit()
	if b.loss == nil {
		if err := b.initLoss(); err != nil {
			return nil, fmt.Errorf("cuda: loss: %w", err)
		}
	}
	l := b.loss
	if err := l.reserve(b, n, d); err != nil {
		return nil, err
	}
	p := &l.pend[l.next]
	l.next = (l.next + 1) % lossRing
	if p.queued { // the ring wrapped: this slot's earlier loss must be out first
		if err := b.drv.call("cuEventSynchronize", b.drv.cuEventSynchronize, p.ev); err != nil {
			return nil, err
		}
	}
	out := l.out.ptr + uintptr(8*p.slot)
	switch metric {
	case engine.MetricEuclidean:
		b.launch(kCauchyFwd, n, 1, lossThreads, 1, 0, argP(ptr(z)), argI(n), argI(d), argP(l.a.ptr), argP(l.losses.ptr))
		b.launch(kCauchyBwd, n, 1, lossThreads, 1, 0, argP(ptr(z)), argI(n), argI(d), argP(l.a.ptr), argP(ptr(dz)))
	case engine.MetricCosine:
		b.launch1(kCosNorm, n, argP(ptr(z)), argI(n), argI(d), argP(l.zn.ptr), argP(l.norms.ptr))
		b.launch(kCosFwd, n, 1, lossThreads, 1, 0, argP(l.zn.ptr), argI(n), argI(d), argF(float32(tau)), argP(l.a.ptr), argP(l.losses.ptr))
		b.launch(kCosBwd, n, 1, lossThreads, 1, 0, argP(l.zn.ptr), argP(l.norms.ptr), argI(n), argI(d), argF(float32(tau)),
			argP(l.a.ptr), argP(l.g.ptr), argP(ptr(dz)))
	default:
		return nil, fmt.Errorf("cuda: unknown loss metric %q (want euclidean or cosine)", metric)
	}
	b.launch(kLossMean, 1, 1, 1, 1, 0, argP(l.losses.ptr), argI(n), argP(out))
	d2h := b.drv
	if err := d2h.call("cuMemcpyDtoHAsync", d2h.cuMemcpyDtoHAsync, uintptr(unsafe.Pointer(&l.host[p.slot])), out, 8, b.stream); err != nil {
		return nil, err
	}
	if err := d2h.call("cuEventRecord", d2h.cuEventRecord, p.ev, b.stream); err != nil {
		return nil, err
	}
	p.queued = true
	return p, nil
}

var _ engine.DeviceLoss = (*Backend)(nil)

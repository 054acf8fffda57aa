package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// memOps allocates and frees raw memory: device memory in the backend, a
// fake in the tests of the buffer life cycle.
type memOps interface {
	alloc(bytes int) (uintptr, error)
	free(ptr uintptr) error
}

// devMem is one device allocation, the value of engine.Buf.Dev for this
// backend. The engine has no Free: a buffer is released when its devMem
// becomes unreachable (the model dropped it, e.g. when Reserve grew the
// batch), through a cleanup that queues it; the next allocation (or
// Collect, or Close) frees the queue with the context current.
type devMem struct {
	ptr     uintptr
	bytes   int
	cleanup runtime.Cleanup
	a       *arena
}

// arena tracks live allocations so that they can be freed exactly once:
// explicitly (free), after the garbage collector found them unreachable
// (collect), or all at once (closeAll).
type arena struct {
	ops memOps

	mu        sync.Mutex
	live      map[uintptr]int // pointer → bytes
	liveBytes int
	peakBytes int
	pending   []uintptr // unreachable, not yet freed
	closed    bool
}

func newArena(ops memOps) *arena { return &arena{ops: ops, live: map[uintptr]int{}} }

// alloc returns a new tracked allocation of the given size.
func (a *arena) alloc(bytes int) (*devMem, error) {
	if err := a.collect(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, errors.New("cuda: allocation on a closed backend")
	}
	p, err := a.ops.alloc(bytes)
	if err != nil {
		// Memory held by unreachable buffers may be what is missing.
		runtime.GC()
		if a.collectWait() > 0 {
			p, err = a.ops.alloc(bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("cuda: allocating %d bytes (%d bytes live in %d buffers): %w", bytes, a.LiveBytes(), a.Live(), err)
		}
	}
	a.mu.Lock()
	a.live[p] = bytes
	a.liveBytes += bytes
	a.peakBytes = max(a.peakBytes, a.liveBytes)
	a.mu.Unlock()
	m := &devMem{ptr: p, bytes: bytes, a: a}
	m.cleanup = runtime.AddCleanup(m, a.enqueue, p)
	return m, nil
}

// enqueue runs on the runtime's cleanup goroutine, where no CUDA context
// is current: it only records the pointer.
func (a *arena) enqueue(p uintptr) {
	a.mu.Lock()
	a.pending = append(a.pending, p)
	a.mu.Unlock()
}

// collect frees the queued allocations.
func (a *arena) collect() error {
	a.mu.Lock()
	q := a.pending
	a.pending = nil
	a.mu.Unlock()
	var errs []error
	for _, p := range q {
		errs = append(errs, a.release(p))
	}
	return errors.Join(errs...)
}

// collectWait gives the cleanup goroutine a moment after a GC and frees
// what it queued; it returns the number of allocations freed.
func (a *arena) collectWait() int {
	n0 := a.Live()
	for i := 0; i < 10; i++ {
		a.mu.Lock()
		k := len(a.pending)
		a.mu.Unlock()
		if k > 0 {
			break
		}
		runtime.Gosched()
	}
	_ = a.collect()
	return n0 - a.Live()
}

// free releases m now (idempotent).
func (a *arena) free(m *devMem) error {
	if m == nil || m.ptr == 0 {
		return nil
	}
	m.cleanup.Stop()
	p := m.ptr
	m.ptr = 0
	return a.release(p)
}

func (a *arena) release(p uintptr) error {
	a.mu.Lock()
	n, ok := a.live[p]
	if ok {
		delete(a.live, p)
		a.liveBytes -= n
	}
	a.mu.Unlock()
	if !ok {
		return nil // already freed (closeAll, or a double release)
	}
	return a.ops.free(p)
}

// closeAll frees every live allocation; later allocations fail.
func (a *arena) closeAll() error {
	a.mu.Lock()
	a.closed = true
	ps := make([]uintptr, 0, len(a.live))
	for p := range a.live {
		ps = append(ps, p)
	}
	a.pending = nil
	a.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, a.release(p))
	}
	return errors.Join(errs...)
}

// Live is the number of allocations not yet freed.
func (a *arena) Live() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.live)
}

// LiveBytes is the size of the allocations not yet freed.
func (a *arena) LiveBytes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.liveBytes
}

// PeakBytes is the largest LiveBytes seen.
func (a *arena) PeakBytes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peakBytes
}

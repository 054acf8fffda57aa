package cuda

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeMem hands out fake addresses and records frees.
type fakeMem struct {
	mu    sync.Mutex
	next  uintptr
	freed map[uintptr]int
	limit int
	used  int
	sizes map[uintptr]int
}

func newFakeMem(limit int) *fakeMem {
	return &fakeMem{next: 0x1000, freed: map[uintptr]int{}, limit: limit, sizes: map[uintptr]int{}}
}

func (f *fakeMem) alloc(n int) (uintptr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+n > f.limit {
		return 0, errors.New("CUDA_ERROR_OUT_OF_MEMORY (fake)")
	}
	p := f.next
	f.next += uintptr(n+255) &^ 255
	f.used += n
	f.sizes[p] = n
	return p, nil
}

func (f *fakeMem) free(p uintptr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.freed[p]++
	f.used -= f.sizes[p]
	return nil
}

func TestArenaExplicitFree(t *testing.T) {
	fm := newFakeMem(1 << 20)
	a := newArena(fm)
	m1, err := a.alloc(100)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := a.alloc(200)
	if a.Live() != 2 || a.LiveBytes() != 300 || a.PeakBytes() != 300 {
		t.Fatalf("live %d/%d peak %d", a.Live(), a.LiveBytes(), a.PeakBytes())
	}
	p1 := m1.ptr
	if err := a.free(m1); err != nil {
		t.Fatal(err)
	}
	if err := a.free(m1); err != nil { // idempotent
		t.Fatal(err)
	}
	if fm.freed[p1] != 1 || m1.ptr != 0 {
		t.Fatalf("freed %d times", fm.freed[p1])
	}
	if a.Live() != 1 || a.LiveBytes() != 200 || a.PeakBytes() != 300 {
		t.Fatalf("after free: live %d/%d", a.Live(), a.LiveBytes())
	}
	runtime.KeepAlive(m2)
}

// TestArenaCollectsUnreachable: a buffer the program drops is freed (once)
// at the next allocation after the garbage collector ran its cleanup.
func TestArenaCollectsUnreachable(t *testing.T) {
	fm := newFakeMem(1 << 20)
	a := newArena(fm)
	var p uintptr
	func() {
		m, _ := a.alloc(64)
		p = m.ptr
	}()
	deadline := time.Now().Add(5 * time.Second)
	for a.Live() > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if err := a.collect(); err != nil {
			t.Fatal(err)
		}
	}
	if a.Live() != 0 || fm.freed[p] != 1 {
		t.Fatalf("unreachable buffer not freed: live %d, freed %d", a.Live(), fm.freed[p])
	}
}

// TestArenaRetriesAfterGC: when the device is full of unreachable
// buffers, an allocation collects them and succeeds.
func TestArenaRetriesAfterGC(t *testing.T) {
	fm := newFakeMem(1000)
	a := newArena(fm)
	func() {
		for i := 0; i < 9; i++ {
			if _, err := a.alloc(100); err != nil {
				t.Fatal(err)
			}
		}
	}()
	var m *devMem
	var err error
	for i := 0; i < 50; i++ { // the cleanup goroutine is asynchronous
		if m, err = a.alloc(500); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("allocation after dropping 900 bytes: %v", err)
	}
	runtime.KeepAlive(m)
}

func TestArenaCloseAll(t *testing.T) {
	fm := newFakeMem(1 << 20)
	a := newArena(fm)
	ms := make([]*devMem, 3)
	for i := range ms {
		ms[i], _ = a.alloc(10)
	}
	if err := a.closeAll(); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if fm.freed[m.ptr] != 1 {
			t.Errorf("%x freed %d times", m.ptr, fm.freed[m.ptr])
		}
	}
	// A later explicit free or cleanup must not free again.
	if err := a.free(ms[0]); err != nil || fm.freed[0x1000] != 1 {
		t.Errorf("free after close: %v, %d", err, fm.freed[0x1000])
	}
	if _, err := a.alloc(10); err == nil {
		t.Error("allocation after close succeeded")
	}
	if a.Live() != 0 {
		t.Errorf("live %d after close", a.Live())
	}
}

func TestArenaOOMMessage(t *testing.T) {
	a := newArena(newFakeMem(100))
	keep, _ := a.alloc(60)
	_, err := a.alloc(60)
	if err == nil {
		t.Fatal("no error")
	}
	if want := "allocating 60 bytes (60 bytes live in 1 buffers)"; !contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	runtime.KeepAlive(keep)
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

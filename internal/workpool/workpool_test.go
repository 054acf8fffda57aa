package workpool

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

type part struct {
	out    []int
	lo, hi int
}

func fill(p part, w int) {
	for i := p.lo; i < p.hi; i++ {
		p.out[i] = w
	}
}

// TestDoRunsEachPartOnItsThread checks that part i runs with thread i's
// state and that Do returns only when every part is done.
func TestDoRunsEachPartOnItsThread(t *testing.T) {
	p := New([]int{0, 1, 2}, fill)
	out := make([]int, 9)
	p.Do([]part{{out, 0, 3}, {out, 3, 6}, {out, 6, 9}})
	for i, v := range out {
		if v != i/3 {
			t.Fatalf("out = %v", out)
		}
	}
	p.Do([]part{{out, 0, 9}}) // fewer parts than threads
	for _, v := range out {
		if v != 0 {
			t.Fatalf("out = %v", out)
		}
	}
	if n := testing.AllocsPerRun(10, func() { p.Do([]part{{out, 0, 4}, {out, 4, 9}}) }); n != 0 {
		t.Errorf("%.0f allocations per Do, want 0", n)
	}
}

// TestWorkersEndWithThePool checks that an unreachable pool's goroutines
// exit.
func TestWorkersEndWithThePool(t *testing.T) {
	var ran atomic.Int64
	before := runtime.NumGoroutine()
	func() {
		p := New(make([]int, 4), func(j int, _ int) { ran.Add(int64(j)) })
		p.Do([]int{1, 1, 1, 1})
	}()
	if ran.Load() != 4 {
		t.Fatalf("ran %d parts", ran.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines left, %d before", g, before)
	}
}

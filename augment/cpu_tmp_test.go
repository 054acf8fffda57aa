package augment

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUTmp(t *testing.T) {
	if os.Getenv("CPUTMP") == "" {
		return
	}
	runtime.LockOSThread()
	a, _ := New(DefaultConfig(32, 32))
	img := naturalImage(32, 32, 3, 4)
	dst := make([]float32, a.ViewLen())
	ops := []struct {
		name string
		f    func(i int)
	}{
		{"draw", func(i int) { _ = a.Draw(ViewKey(1, 0, i, 0), 32, 32) }},
		{"geometry", func(i int) { q := a.Draw(ViewKey(1, 0, i, 0), 32, 32); _ = a.Geometry(dst, img, &q) }},

		{"build2", func(i int) {
			a.xt.build(20+i%12, 32, 3, BilinearAntialias, i&1 == 0)
			a.yt.build(20+i%11, 32, 3, BilinearAntialias, false)
		}},
		{"view", func(i int) { q := a.Draw(ViewKey(1, 0, i, 0), 32, 32); _ = a.Apply(dst, img, &q) }},
	}
	for _, op := range ops {
		best := time.Hour
		for rep := 0; rep < 5; rep++ {
			c0 := threadCPU()
			for i := 0; i < 20000; i++ {
				op.f(i)
			}
			best = min(best, (threadCPU()-c0)/20000)
		}
		fmt.Printf("%-12s %v\n", op.name, best)
	}
}

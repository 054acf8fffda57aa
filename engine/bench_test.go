package engine

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// resetPeakRSS clears the kernel's high-water mark of this process's
// resident memory (Linux: writing 5 to clear_refs), so each sub-benchmark
// reports its own peak.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM in bytes (0 if unavailable).
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// BenchmarkTrainStep measures one t-SimCNE training step of resnet18_simclr
// (forward of both views, Cauchy loss, backward, SGD) on two threads.
// images/s counts every view. TSIMCNE_BENCH_ARCH picks another backbone;
// TSIMCNE_PROFILE=1 prints a per-layer time table; TSIMCNE_BENCH_SIZES
// (e.g. "64,256,512") picks the batch sizes; TSIMCNE_BENCH_COLS sets the
// im2col workspace limit in floats; TSIMCNE_BENCH_IMAGE the side of the
// views (default 32; the demo trains resnet_tiny on 16).
func BenchmarkTrainStep(b *testing.B) {
	arch := os.Getenv("TSIMCNE_BENCH_ARCH")
	if arch == "" {
		arch = DefaultArch
	}
	side := 32
	if s := os.Getenv("TSIMCNE_BENCH_IMAGE"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 8 {
			b.Fatalf("TSIMCNE_BENCH_IMAGE=%q: want a side of at least 8", s)
		}
		side = v
	}
	sizes := []int{64, 256}
	if s := os.Getenv("TSIMCNE_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("TSIMCNE_BENCH_SIZES: %v", err)
			}
			sizes = append(sizes, v)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("2x%d", n), func(b *testing.B) {
			resetPeakRSS()
			be, err := NewCPU(CPUOptions{Threads: 2})
			if err != nil {
				b.Fatal(err)
			}
			cols, _ := strconv.Atoi(os.Getenv("TSIMCNE_BENCH_COLS"))
			m, err := NewModel(be, Options{Arch: arch, Seed: 1, ColsLimit: cols, ImageSize: side})
			if err != nil {
				b.Fatal(err)
			}
			tr := NewTrainer(m, "euclidean")
			x := randImages(3, 2*n, side)
			// One warm-up step allocates every buffer.
			if _, err := tr.Step(x, 2*n, 0.01); err != nil {
				b.Fatal(err)
			}
			if os.Getenv("TSIMCNE_PROFILE") != "" {
				m.Prof = NewProfile()
			}
			be.GEMMStats(true)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Step(x, 2*n, 0.01); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(2*n*b.N)/b.Elapsed().Seconds(), "images/s")
			b.ReportMetric(peakRSS()/(1<<20), "peak-MB")
			gt, gf := be.GEMMStats(true)
			b.ReportMetric(100*gt.Seconds()/b.Elapsed().Seconds(), "%gemm")
			b.ReportMetric(gf/gt.Seconds()/1e9, "gemm-GFLOP/s")
			if m.Prof != nil {
				fmt.Fprintf(os.Stderr, "\n%s 2x%d on %s:\n", arch, n, be.Describe())
				m.Prof.Write(os.Stderr, b.N)
			}
		})
	}
}

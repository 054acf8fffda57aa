package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/blas"
)

// convShapes lists every convolution of the named architectures at image
// sides 16 and 32 (maps 2…32, 3…512 channels, strides 1 and 2, 1×1 and
// 3×3), plus odd and non-square sizes.
func convShapes(t *testing.T) []ConvGeom {
	seen := map[ConvGeom]bool{}
	var gs []ConvGeom
	add := func(g ConvGeom) {
		if !seen[g] {
			seen[g] = true
			gs = append(gs, g)
		}
	}
	be := newCPU(t, "go")
	for name := range namedArchs {
		for _, side := range []int{16, 32} {
			m, err := NewModel(be, Options{Arch: name, ImageSize: side})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range m.convs() {
				add(c.g)
			}
		}
	}
	for _, g := range []ConvGeom{
		NewConvGeom(7, 7, 16, 16, 3, 1, 1),
		NewConvGeom(9, 9, 16, 48, 3, 2, 1),
		NewConvGeom(9, 9, 32, 64, 1, 2, 0),
		NewConvGeom(11, 11, 3, 32, 3, 1, 1),
		NewConvGeom(6, 10, 48, 32, 3, 1, 1),
		NewConvGeom(5, 13, 32, 16, 3, 2, 1),
		NewConvGeom(19, 19, 16, 16, 3, 1, 1), // rows of 19 pixels: two tiles
		NewConvGeom(2, 2, 64, 16, 3, 1, 1),
	} {
		add(g)
	}
	return gs
}

// TestDirectConvMatchesGEMM compares the CPU's direct convolutions (the
// AVX-512 tile kernels) with the im2col + GEMM path on random data for
// every shape of convShapes: the output, the weight gradient and the input
// gradient, written and accumulated.
func TestDirectConvMatchesGEMM(t *testing.T) {
	if !blas.ConvTileAvailable() {
		t.Skip("no AVX-512: the CPU backend keeps the im2col + GEMM path")
	}
	direct, ref := newCPU(t, "avx512"), newCPU(t, "avx512")
	direct.conv.force = true
	ref.conv.off = true
	for _, g := range convShapes(t) {
		t.Run(fmt.Sprintf("%dx%dx%d-%d-k%ds%d", g.H, g.W, g.C, g.OC, g.K, g.Stride), func(t *testing.T) {
			if !direct.convDirect(g) {
				t.Skip("not a direct geometry (output channels not a multiple of 16, or 1×1 stride 1)")
			}
			rng := rand.New(rand.NewPCG(uint64(g.H*1000+g.C), uint64(g.OC)))
			// Small maps get enough images for several groups of
			// image-wise tiles and a partial last one.
			n := 3
			if g.OH*g.OW <= 16 {
				n = 35
			}
			w := HostBuf(randBuf(rng, g.OC*g.K*g.K*g.C, 0.5))
			x := HostBuf(randBuf(rng, n*g.H*g.W*g.C, 1))
			dy := HostBuf(randBuf(rng, n*g.OH*g.OW*g.OC, 1))
			for _, acc := range []bool{false, true} {
				y1, dw1, dx1 := convRun(direct, g, w, x, dy, n, acc)
				y0, dw0, dx0 := convRun(ref, g, w, x, dy, n, acc)
				closeTo(t, "y", y1, y0)
				closeTo(t, "dw", dw1, dw0)
				closeTo(t, fmt.Sprintf("dx (accumulate %v)", acc), dx1, dx0)
			}
		})
	}
}

// convRun runs convolution g forward and backward on be (weights w, input
// x, output gradient dy, n images) and returns the output, the weight
// gradient and the input gradient (nil when g.C is not a multiple of 16);
// with acc the input gradient is added to a fixed pattern.
func convRun(be *CPU, g ConvGeom, w, x, dy Buf, n int, acc bool) (y, dw, dx []float32) {
	l := &convLayer{g: g, w: &Param{Data: w, conv: true}}
	gt := l.transposeGeom()
	ws := &workspace{limit: 1, cols: be.Alloc(n * max(g.OH*g.OW*g.ColWidth(), gt.OH*gt.OW*gt.ColWidth())),
		wflip: be.Alloc(w.Len())}
	l.w.Grad = be.Alloc(w.Len())
	yb := be.Alloc(dy.Len())
	l.forward(be, x, n, yb, ws)
	var dxb Buf
	if g.C%16 == 0 {
		dxb = HostBuf(make([]float32, x.Len()))
		if acc {
			for i := range dxb.host {
				dxb.host[i] = float32(i%7) - 3
			}
		}
	}
	l.backward(be, x, dy, n, dxb, acc, ws)
	return yb.host, l.w.Grad.host, dxb.host
}

// closeTo fails unless got and want agree to 1e-4 relative to the largest
// magnitude in want (the sums differ only in their order).
func closeTo(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 1.0
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*scale || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %g, want %g (scale %g)", what, i, got[i], want[i], scale)
		}
	}
}

// TestDirectConvThreadIndependent trains resnet_tiny for a few steps on
// 1, 2 and 3 threads with the direct convolutions and requires the same
// parameters bit for bit: the work is split across images, and the weight
// gradients are summed over chunks fixed by the batch alone.
func TestDirectConvThreadIndependent(t *testing.T) {
	if !blas.ConvTileAvailable() {
		t.Skip("no AVX-512: no direct convolutions")
	}
	var ref []float32
	for _, threads := range []int{1, 2, 3} {
		be, err := NewCPU(CPUOptions{Threads: threads, GEMM: "avx512"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewModel(be, Options{Arch: "resnet_tiny", Seed: 4, ImageSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		tr := NewTrainer(m, "euclidean")
		n := 2 * 19
		for step := 0; step < 3; step++ {
			if _, err := tr.Step(randImages(uint64(10+step), n, 16), n, 0.05); err != nil {
				t.Fatal(err)
			}
		}
		var got []float32
		for _, p := range m.Params() {
			got = append(got, p.Data.host[:p.Size()]...)
		}
		if ref == nil {
			ref = got
			continue
		}
		for i := range ref {
			if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
				t.Fatalf("%d threads: parameter value %d = %g, 1 thread gives %g", threads, i, got[i], ref[i])
			}
		}
	}
}

// TestDirectConvIndependentOfHistory: a direct convolution's results depend
// only on its operands, not on the calls the backend made before (its
// padded-image, packing and partial-sum buffers are reused): a larger batch
// on other data first, then the batch, equals the batch on a fresh backend,
// bit for bit. (MPI ranks and one process run different call histories.)
func TestDirectConvIndependentOfHistory(t *testing.T) {
	if !blas.ConvTileAvailable() {
		t.Skip("no AVX-512: no direct convolutions")
	}
	for _, g := range convShapes(t) {
		probe := newCPU(t, "avx512")
		if !probe.convDirect(g) {
			continue
		}
		t.Run(fmt.Sprintf("%dx%dx%d-%d-k%ds%d", g.H, g.W, g.C, g.OC, g.K, g.Stride), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(g.H*1000+g.C), uint64(g.OC)+7))
			w := HostBuf(randBuf(rng, g.OC*g.K*g.K*g.C, 0.5))
			data := func(n int) (Buf, Buf) {
				return HostBuf(randBuf(rng, n*g.H*g.W*g.C, 1)), HostBuf(randBuf(rng, n*g.OH*g.OW*g.OC, 1))
			}
			const big, small = 64, 32
			xa, dya := data(big)
			xb, dyb := data(small)
			used, fresh := newCPU(t, "avx512"), newCPU(t, "avx512")
			convRun(used, g, w, xa, dya, big, false)
			y1, dw1, dx1 := convRun(used, g, w, xb, dyb, small, false)
			y0, dw0, dx0 := convRun(fresh, g, w, xb, dyb, small, false)
			for _, c := range []struct {
				what      string
				got, want []float32
			}{{"y", y1, y0}, {"dw", dw1, dw0}, {"dx", dx1, dx0}} {
				for i := range c.want {
					if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
						t.Fatalf("%s[%d] = %g after a larger batch, %g on a fresh backend", c.what, i, c.got[i], c.want[i])
					}
				}
			}
		})
	}
}

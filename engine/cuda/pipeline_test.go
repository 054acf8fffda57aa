package cuda

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/loader"
)

// smoothImages makes n h×w×c uint8 images: smooth patterns plus noise, so
// resampling and every colour operation have something to work on.
func smoothImages(seed uint64, n, h, w, c int) []uint8 {
	r := rand.New(rand.NewPCG(seed, 3))
	pix := make([]uint8, n*h*w*c)
	for i := 0; i < n; i++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for k := 0; k < c; k++ {
					v := 127.5 + 90*math.Sin(float64(x+i)/(3+float64(k))+float64(y)/(5+2*float64(k))) + 30*(r.Float64()-0.5)
					pix[((i*h+y)*w+x)*c+k] = uint8(min(255, max(0, v)))
				}
			}
		}
	}
	return pix
}

// pipelineTol is the documented tolerance of the GPU augmentation against
// augment's Apply (docs/GPU.md): the geometry is the CPU's float32
// arithmetic operation for operation; the colour kernel sums the contrast
// mean in another order (2e-5); normalisation divides by std ≈ 0.25.
func pipelineTol(normalize bool) float64 {
	if normalize {
		return 1e-4
	}
	return 2e-5
}

// TestPipelineAugmentMatchesCPU: views augmented on the device from uint8
// sources equal augment's CPU Apply on the same images and Params, for
// up- and downscaling, both filters, flips, jitter, grayscale and
// normalisation, and gray sources replicated to RGB; the loader's slot is
// released after the copy.
func TestPipelineAugmentMatchesCPU(t *testing.T) {
	be := newGPU(t, "fp32")
	for _, tc := range []struct {
		h, w, c, out int
		interp       augment.Interp
		normalize    bool
		outW         int // 0 = out (square views)
	}{
		{32, 32, 3, 32, augment.BilinearAntialias, false, 0},
		{32, 32, 3, 16, augment.BilinearAntialias, true, 0},
		{40, 48, 3, 24, augment.Bilinear, false, 0},
		{28, 28, 1, 20, augment.BilinearAntialias, false, 0},
		{64, 64, 3, 12, augment.BilinearAntialias, false, 0},
		{40, 48, 3, 15, augment.BilinearAntialias, false, 20}, // odd outH+outW: scratch alignment
	} {
		outW := tc.outW
		if outW == 0 {
			outW = tc.out
		}
		name := fmt.Sprintf("%dx%dx%d→%dx%d interp%d norm%v", tc.w, tc.h, tc.c, outW, tc.out, tc.interp, tc.normalize)
		t.Run(name, func(t *testing.T) {
			cfg := augment.DefaultConfig(tc.out, outW)
			cfg.Interp, cfg.JitterP, cfg.GrayP = tc.interp, 0.9, 0.3
			if tc.normalize {
				cfg.Normalize, cfg.Mean, cfg.Std = true, augment.CIFAR10Mean, augment.CIFAR10Std
			}
			aug, err := augment.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			const n = 37
			src := smoothImages(uint64(tc.h), n, tc.h, tc.w, tc.c)
			// The device takes RGB regions; gray sources are replicated.
			rgb := src
			if tc.c == 1 {
				rgb = make([]uint8, n*tc.h*tc.w*3)
				for i, v := range src {
					rgb[3*i], rgb[3*i+1], rgb[3*i+2] = v, v, v
				}
			}
			params := make([]augment.Params, 2*n)
			vl := aug.ViewLen()
			want := make([]float32, 2*n*vl)
			for r := range params {
				i := r % n
				params[r] = aug.Draw(augment.ViewKey(4, 1, i, r/n), tc.h, tc.w)
				img := augment.Image{Pix: src[i*tc.h*tc.w*tc.c : (i+1)*tc.h*tc.w*tc.c], H: tc.h, W: tc.w, C: tc.c}
				if err := aug.Apply(want[r*vl:(r+1)*vl], img, &params[r]); err != nil {
					t.Fatal(err)
				}
			}
			p, err := be.NewPipeline(PipelineOptions{Augment: cfg, SrcH: tc.h, SrcW: tc.w, Images: n, Views: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var released atomic.Int32
			x, err := p.Submit(rgb, params, n, func() { released.Add(1) })
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(want))
			be.Download(got, x)
			if err := p.Consumed(); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := range want {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("%d views: largest difference from the CPU %.3g", 2*n, worst)
			if tol := pipelineTol(tc.normalize); !(worst <= tol) {
				t.Errorf("GPU augmentation differs from the CPU by %.3g (tolerance %g)", worst, tol)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if released.Load() != 1 {
				t.Errorf("slot released %d times, want 1", released.Load())
			}
		})
	}
}

// TestPipelineRejects: bad batches are errors, not device faults.
func TestPipelineRejects(t *testing.T) {
	be := newGPU(t, "fp32")
	cfg := augment.DefaultConfig(8, 8)
	p, err := be.NewPipeline(PipelineOptions{Augment: cfg, SrcH: 8, SrcW: 8, Images: 2, Views: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src := make([]uint8, 2*8*8*3)
	ok := augment.Params{CropH: 8, CropW: 8}
	bad := augment.Params{Top: 4, CropH: 8, CropW: 8}
	for _, c := range []struct {
		params []augment.Params
		n      int
		want   string
	}{
		{[]augment.Params{ok, ok, ok, bad}, 2, "outside"},
		{[]augment.Params{ok, ok}, 2, "params"},
		{[]augment.Params{ok, ok, ok, ok, ok, ok}, 3, "images"},
	} {
		if _, err := p.Submit(src, c.params, c.n, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Submit %d images, %d params: %v, want an error about %q", c.n, len(c.params), err, c.want)
		}
	}
	rot := cfg
	rot.RotationDeg = 5
	if _, err := be.NewPipeline(PipelineOptions{Augment: rot, SrcH: 8, SrcW: 8, Images: 2, Views: 2}); err == nil {
		t.Error("a rotating augmentation was accepted")
	}
}

// TestDeviceLossMatchesCPU: QueueLoss equals engine's CPU losses and
// gradients (float64 on both; the sums' order and the device's own exp and
// log differ by a few ulp).
func TestDeviceLossMatchesCPU(t *testing.T) {
	be := newGPU(t, "fp32")
	for _, c := range []struct {
		metric engine.Metric
		n, d   int
		scale  float64
	}{{"euclidean", 8, 2, 3}, {"euclidean", 96, 128, 0.3}, {"cosine", 8, 2, 3}, {"cosine", 96, 128, 1}, {"cosine", 300, 5, 1}} {
		z := randVec(uint64(c.n*c.d), c.n*c.d, -c.scale, c.scale)
		want := make([]float32, len(z))
		var wl float64
		var err error
		if c.metric == "cosine" {
			wl, err = engine.CosineInfoNCE(z, c.n, c.d, 0.5, want)
		} else {
			wl, err = engine.CauchyInfoNCE(z, c.n, c.d, want)
		}
		if err != nil {
			t.Fatal(err)
		}
		zb, dzb := be.Alloc(len(z)), be.Alloc(len(z))
		be.Upload(zb, z)
		pl, err := be.QueueLoss(c.metric, 0.5, zb, c.n, c.d, dzb)
		if err != nil {
			t.Fatal(err)
		}
		gl, err := pl.Wait()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(z))
		be.Download(got, dzb)
		le := math.Abs(gl-wl) / math.Abs(wl)
		ge := relErr(got, want)
		t.Logf("%s %d×%d: loss %.12g (CPU %.12g, rel %.2g), gradient rel %.2g", c.metric, c.n, c.d, gl, wl, le, ge)
		if !(le <= 1e-12) || !(ge <= 1e-6) {
			t.Errorf("%s %d×%d: loss rel error %.3g, gradient rel error %.3g", c.metric, c.n, c.d, le, ge)
		}
	}
	if _, err := be.QueueLoss("manhattan", 0.5, be.Alloc(4), 2, 2, be.Alloc(4)); err == nil {
		t.Error("unknown metric accepted")
	}
}

// TestPipelineStepMatchesCPU is the acceptance check "one training step on
// the GPU equals one on the CPU within 1e-4 relative (FP32 math)" for the
// whole device path: the loader's Source8 batch, the augmentation kernels,
// ForwardBuf, the device loss, backward and SGD, against the loader's
// float views and the CPU engine — two steps, so the second starts from
// the first's weights and momentum.
func TestPipelineStepMatchesCPU(t *testing.T) {
	gpu := newGPU(t, "fp32")
	const n, size = 24, 16
	src := &loader.MemorySource{}
	pix := smoothImages(7, n, 24, 24, 3)
	for i := 0; i < n; i++ {
		src.Samples = append(src.Samples, loader.Sample{Label: int32(i % 3), Height: 24, Width: 24, Channels: 3, Data: pix[i*24*24*3 : (i+1)*24*24*3]})
	}
	cfg := augment.DefaultConfig(size, size)
	batches := func(out loader.Output, alloc loader.Allocator) ([]*loader.Batch, func()) {
		l, err := loader.New(src, loader.Options{BatchSize: n / 2, Output: out, Augment: cfg, Seed: 3, Slots: 2, Allocator: alloc})
		if err != nil {
			t.Fatal(err)
		}
		it, err := l.Epoch(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var bs []*loader.Batch
		for range 2 {
			b, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			bs = append(bs, b)
		}
		return bs, func() { it.Close(); l.Close() }
	}
	var losses [2][2]float64
	var dicts [2]map[string]safetensors.Tensor
	for i, be := range []engine.Backend{newCPU(t), gpu} {
		m, err := engine.NewModel(be, engine.Options{Arch: "resnet_tiny", Seed: 5, ImageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		tr := engine.NewTrainer(m, "euclidean")
		if i == 0 {
			bs, done := batches(loader.Floats, nil)
			for s, b := range bs {
				if losses[i][s], err = tr.Step(b.X, 2*b.N, 0.05); err != nil {
					t.Fatal(err)
				}
			}
			done()
		} else {
			bs, done := batches(loader.Source8, PinnedAllocator{gpu})
			p, err := gpu.NewPipeline(PipelineOptions{Augment: cfg, SrcH: 24, SrcW: 24, Images: n / 2, Views: 2})
			if err != nil {
				t.Fatal(err)
			}
			var pend [2]engine.PendingLoss
			for s, b := range bs { // both steps queued before either loss is read
				x, err := p.Submit(b.X8, b.Params, b.N, b.Release)
				if err != nil {
					t.Fatal(err)
				}
				if pend[s], err = tr.StepBuf(x, 2*b.N, 0.05); err != nil {
					t.Fatal(err)
				}
				if err := p.Consumed(); err != nil {
					t.Fatal(err)
				}
			}
			for s := range pend {
				if losses[i][s], err = pend[s].Wait(); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			done()
		}
		dicts[i] = m.StateDict()
	}
	for s := range 2 {
		if e := math.Abs(losses[1][s]-losses[0][s]) / math.Abs(losses[0][s]); !(e <= 1e-4) {
			t.Errorf("step %d: loss GPU %.9g, CPU %.9g", s, losses[1][s], losses[0][s])
		}
	}
	worst := compareStates(t, dicts[0], dicts[1], "after 2 steps")
	t.Logf("losses GPU %v, CPU %v; weights after 2 steps: worst relative error %.3g", losses[1], losses[0], worst)
}

package cuda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/loader"
)

// TestGPUEpoch times one training epoch over a packed file
// (TSIMCNE_GPU_EPOCH_FILE; without it, a small generated one) the way a GPU run feeds
// the model: the loader cuts uint8 crops into pinned slots on the CPU,
// the colour kernel finishes batch k+1 on its own stream while step k
// trains. It prints one line, "EPOCH images=… seconds=… images_per_s=…
// wait_frac=…", where wait_frac is the share of the epoch the training
// loop spent waiting for data (the loader, or the colour kernel), i.e.
// with the device idle. TSIMCNE_GPU_EPOCH_BATCH sets the batch (512).
func TestGPUEpoch(t *testing.T) {
	be := newGPU(t, "tf32")
	path := os.Getenv("TSIMCNE_GPU_EPOCH_FILE")
	batch := envInts("TSIMCNE_GPU_EPOCH_BATCH", []int{512})[0]
	arch := "" // the default, resnet18_simclr
	generated := 0
	if path == "" {
		// No file given: a small generated pack of 16×16 images and a small
		// model, so that the whole pipeline (pinned slots, the colour
		// kernel on its own stream, training) runs wherever the tests do,
		// on the emulator in seconds.
		path = filepath.Join(t.TempDir(), "epoch.tscn")
		generated = 96
		writeEpochPack(t, path, generated, 16)
		batch, arch = envInts("TSIMCNE_GPU_EPOCH_BATCH", []int{16})[0], "resnet_small"
	}
	ld, err := loader.OpenFile(path, 1<<30, loader.Options{BatchSize: batch, Output: loader.Crops8,
		Allocator: PinnedAllocator{be}, DropLast: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	cfg := ld.AugmentConfig()
	m, err := engine.NewModel(be, engine.Options{Arch: arch, Seed: 1, ImageSize: cfg.OutH, ColsLimit: GPUColsLimit})
	if err != nil {
		t.Fatal(err)
	}
	tr := engine.NewTrainer(m, "euclidean")
	ca, err := be.NewColorAugmenter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	viewLen := cfg.OutH * cfg.OutW * 3
	x, free, err := be.PinnedFloats(2 * batch * viewLen)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	it, err := ld.Epoch(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var wait time.Duration
	next := func() *loader.Batch {
		t0 := time.Now()
		b, err := it.Next()
		wait += time.Since(t0)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	start := time.Now()
	cur := next()
	if cur == nil {
		t.Fatal("empty epoch")
	}
	if err := ca.Queue(cur.X8, cur.Params); err != nil {
		t.Fatal(err)
	}
	images, steps := 0, 0
	for cur != nil {
		t0 := time.Now()
		if err := ca.Result(x); err != nil {
			t.Fatal(err)
		}
		wait += time.Since(t0)
		views := len(cur.Params)
		cur.Release()
		nb := next()
		if nb != nil {
			if err := ca.Queue(nb.X8, nb.Params); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tr.Step(x[:views*viewLen], views, 0.01); err != nil {
			t.Fatal(err)
		}
		images += views / 2
		steps++
		cur = nb
	}
	total := time.Since(start)
	line := fmt.Sprintf("EPOCH images=%d steps=%d seconds=%.2f images_per_s=%.0f wait_frac=%.3f", images, steps,
		total.Seconds(), float64(images)/total.Seconds(), wait.Seconds()/total.Seconds())
	fmt.Println(line)
	t.Log(line)
	if want := generated / batch * batch; generated > 0 && images != want {
		t.Errorf("%d images trained, want %d (full batches of %d from %d)", images, want, batch, generated)
	}
	for _, v := range x[:viewLen] {
		if math.IsNaN(float64(v)) {
			t.Fatal("the last batch's views hold NaN: read before the colour kernel wrote them?")
		}
	}
}

// writeEpochPack writes n random h×h RGB images with smooth colour
// gradients (so the colour jitter has something to act on) as a packed
// file.
func writeEpochPack(t *testing.T, path string, n, h int) {
	t.Helper()
	schema := format.Schema{
		Image:   format.ImageSpec{Fixed: true, Height: h, Width: h, Channels: 3},
		Classes: []string{"a", "b", "c", "d"},
	}
	w, err := format.Create(path, schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < n; i++ {
		data := make([]byte, h*h*3)
		base := [3]float64{r.Float64(), r.Float64(), r.Float64()}
		for p := 0; p < h*h; p++ {
			y, x := p/h, p%h
			for c := 0; c < 3; c++ {
				v := base[c]*200 + float64(x*(c+1)+y*(3-c))*2 + r.Float64()*10
				data[3*p+c] = uint8(min(255, v))
			}
		}
		if err := w.Add(&format.Sample{Index: i, Label: int32(i % 4), Label2: -1, Height: h, Width: h, Channels: 3, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

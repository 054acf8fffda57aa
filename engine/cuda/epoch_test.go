package cuda

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// (TSIMCNE_GPU_EPOCH_FILE; without it, a small generated one, so the whole
// pipeline runs wherever the tests do) the way bin/train feeds a
// GPU: the loader writes uint8 images and Params into pinned slots
// (Source8), the Pipeline copies and augments batch k+1 on its own streams
// while step k trains, and the loss of step k is read after step k+1 is
// queued. It prints one line, "EPOCH images=… seconds=… images_per_s=…
// wait_frac=…", where wait_frac is the share of the epoch the GPU's
// compute stream sat idle between steps (from timing events: the gap from
// the end of step k−1 to the start of step k, which is waiting for the
// loader or the augmentation). TSIMCNE_GPU_EPOCH_BATCH sets the batch
// (512).
func TestGPUEpoch(t *testing.T) {
	be := newGPU(t, "tf32")
	path := os.Getenv("TSIMCNE_GPU_EPOCH_FILE")
	batch := envInts("TSIMCNE_GPU_EPOCH_BATCH", []int{512})[0]
	arch := "" // the default, resnet18_simclr
	generated := 0
	if path == "" {
		// No file given: a small generated pack of 16×16 images and a small
		// model, so that the whole pipeline (pinned slots, copy and
		// augmentation streams, training) runs on the emulator in seconds.
		path = filepath.Join(t.TempDir(), "epoch.tscn")
		generated = 96
		writeEpochPack(t, path, generated, 16)
		batch, arch = envInts("TSIMCNE_GPU_EPOCH_BATCH", []int{16})[0], "resnet_small"
	}
	ld, err := loader.OpenFile(path, 1<<30, loader.Options{BatchSize: batch, Output: loader.Source8,
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
	m.Reserve(2 * batch)
	tr := engine.NewTrainer(m, "euclidean")
	it, err := ld.Epoch(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var p *Pipeline
	var starts, ends []*Event
	event := func() *Event {
		e, err := be.NewEvent()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Record(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	var pending engine.PendingLoss
	images, steps := 0, 0
	start := time.Now()
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			if p, err = be.NewPipeline(PipelineOptions{Augment: cfg, SrcH: b.SrcH, SrcW: b.SrcW, Images: batch, Views: 2}); err != nil {
				t.Fatal(err)
			}
			defer p.Close()
		}
		views := 2 * b.N
		images += b.N
		x, err := p.Submit(b.X8, b.Params, b.N, b.Release)
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, event())
		pl, err := tr.StepBuf(x, views, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, event())
		if err := p.Consumed(); err != nil {
			t.Fatal(err)
		}
		if pending != nil {
			if _, err := pending.Wait(); err != nil {
				t.Fatal(err)
			}
		}
		pending = pl
		steps++
	}
	if pending != nil {
		if _, err := pending.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	total := time.Since(start)
	var idle time.Duration
	for k := 1; k < len(starts); k++ {
		gap, err := starts[k].Since(ends[k-1])
		if err != nil {
			t.Fatal(err)
		}
		idle += gap
	}
	first, err := ends[len(ends)-1].Since(starts[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(starts, ends...) {
		_ = e.Destroy()
	}
	line := fmt.Sprintf("EPOCH images=%d steps=%d seconds=%.2f images_per_s=%.0f wait_frac=%.3f device_seconds=%.2f", images, steps,
		total.Seconds(), float64(images)/total.Seconds(), idle.Seconds()/first.Seconds(), first.Seconds())
	fmt.Println(line)
	t.Log(line)
	if want := generated / batch * batch; generated > 0 && images != want {
		t.Errorf("%d images trained, want %d (full batches of %d from %d)", images, want, batch, generated)
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

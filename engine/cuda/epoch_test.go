package cuda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/loader"
)

// TestGPUEpoch times one training epoch over a packed file
// (TSIMCNE_GPU_EPOCH_FILE; skipped without it) the way a GPU run feeds
// the model: the loader cuts uint8 crops into pinned slots on the CPU,
// the colour kernel finishes batch k+1 on its own stream while step k
// trains. It prints one line, "EPOCH images=… seconds=… images_per_s=…
// wait_frac=…", where wait_frac is the share of the epoch the training
// loop spent waiting for data (the loader, or the colour kernel), i.e.
// with the device idle. TSIMCNE_GPU_EPOCH_BATCH sets the batch (512).
func TestGPUEpoch(t *testing.T) {
	path := os.Getenv("TSIMCNE_GPU_EPOCH_FILE")
	if path == "" {
		t.Skip("set TSIMCNE_GPU_EPOCH_FILE to a packed file of 32×32 images to time an epoch")
	}
	be := newGPU(t, "tf32")
	batch := envInts("TSIMCNE_GPU_EPOCH_BATCH", []int{512})[0]
	ld, err := loader.OpenFile(path, 1<<30, loader.Options{BatchSize: batch, Output: loader.Crops8,
		Allocator: PinnedAllocator{be}, DropLast: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	cfg := ld.AugmentConfig()
	m, err := engine.NewModel(be, engine.Options{Seed: 1, ImageSize: cfg.OutH, ColsLimit: GPUColsLimit})
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
}

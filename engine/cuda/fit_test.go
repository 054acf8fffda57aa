package cuda_test

// Tests of the GPU data pipeline through tsimcne's API. They live here, in
// an external test package of engine/cuda, because make test runs only
// engine/cuda's tests on the emulator (elsewhere --device auto must keep
// meaning the CPU).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/cuda"
	"github.com/tsimcne/tsimcne-go/loader/loadertest"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// needCUDA skips without a CUDA driver, or fails when the run requires one
// (make test sets TSIMCNE_REQUIRE_GPU with the cudasim emulator).
func needCUDA(t *testing.T) {
	t.Helper()
	if _, err := cuda.Available(); err != nil {
		if os.Getenv("TSIMCNE_REQUIRE_GPU") != "" {
			t.Fatalf("no CUDA device, and TSIMCNE_REQUIRE_GPU is set: %v", err)
		}
		t.Skipf("no CUDA device: %v", cuda.Reason(err))
	}
}

// blobs is loadertest.Blobs.
var blobs = loadertest.Blobs

// TestCUDAPipelineFitResume trains through the GPU data pipeline (loader
// Source8 → device augmentation → ForwardBuf → device loss, the loss read
// a step late), embeds through it, and requires a run cancelled and
// resumed from its checkpoint to end with the uninterrupted run's
// embedding bit for bit — the late loss is flushed before every
// checkpoint, so the saved state is exact.
func TestCUDAPipelineFitResume(t *testing.T) {
	needCUDA(t)
	data := blobs(64)
	cfg := tsimcne.Config{Epochs: []int{2, 1, 1}, BatchSize: 16, Backbone: "resnet_w4_b1111_h16", PretrainOutDim: 8,
		Seed: 3, Threads: 1, Workers: 2, LR: []float64{0.05}, Device: "cuda"}
	var logs []string
	ref, err := tsimcne.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref.Logf = func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	var losses []float64
	ref.OnEpoch = func(es tsimcne.EpochStats) { losses = append(losses, es.Loss) }
	want, err := ref.FitTransform(context.Background(), data, tsimcne.TransformOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(logs, "\n"); !strings.Contains(all, "backend: cuda") || !strings.Contains(all, "data pipeline: GPU") {
		t.Fatalf("the run does not say it trains on CUDA through the GPU pipeline:\n%s", all)
	}
	if len(losses) != 4 {
		t.Fatalf("%d epochs reported, want 4", len(losses))
	}
	for i, l := range losses {
		if !(l > 0) || math.IsInf(l, 0) {
			t.Fatalf("epoch %d: loss %v", i, l)
		}
	}

	m, _ := tsimcne.New(cfg)
	m.RunDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	epochs := 0
	m.OnEpoch = func(tsimcne.EpochStats) {
		if epochs++; epochs == 1 {
			cancel()
		}
	}
	if err := m.Fit(ctx, data); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fit after cancel: %v", err)
	}
	m2, err := tsimcne.Load(filepath.Join(m.RunDir, "checkpoint.safetensors"), tsimcne.LoadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m2.BackendName(), "cuda") {
		t.Fatalf("resumed on %q, want the saved device cuda", m2.BackendName())
	}
	m2.RunDir = m.RunDir
	got, err := m2.FitTransform(context.Background(), data, tsimcne.TransformOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Y {
		if want.Y[i] != got.Y[i] {
			t.Fatalf("coordinate %d: %v resumed, %v uninterrupted", i, got.Y[i], want.Y[i])
		}
	}
}

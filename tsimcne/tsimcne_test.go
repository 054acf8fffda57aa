package tsimcne

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/loader/loadertest"
)

func TestDefaultsAreTheReference(t *testing.T) {
	c := Config{}.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Epochs) != 3 || c.Epochs[0] != 1000 || c.Epochs[1] != 50 || c.Epochs[2] != 450 ||
		c.BatchSize != 512 || c.OutDim != 2 || c.PretrainOutDim != 128 || c.Metric != "euclidean" || c.Backbone != "resnet18_simclr" {
		t.Fatalf("defaults %+v", c)
	}
	// docs/ALGORITHM.md's check values at batch 512.
	for _, v := range []struct {
		stage, epoch int
		want         float64
	}{{0, 1, 0.0066667}, {0, 11, 0.0599998}, {0, 500, 0.030523}, {0, 999, 6.03e-7}, {1, 1, 0.0599431}, {1, 49, 2.27e-4}, {2, 9, 6e-5}} {
		got := c.LRTable(v.stage)[v.epoch]
		if math.Abs(got-v.want) > 3e-3*v.want+1e-9 { // the check values are rounded
			t.Errorf("stage %d epoch %d: lr %g, want %g", v.stage+1, v.epoch, got, v.want)
		}
	}
	if c.StageWarmup(0) != 10 || c.StageWarmup(1) != 0 || c.StageWarmup(2) != 10 {
		t.Errorf("auto warm-up %d %d %d, want 10 0 10 at the default epochs", c.StageWarmup(0), c.StageWarmup(1), c.StageWarmup(2))
	}
	short := Config{Epochs: []int{20, 5, 10}}.Defaults()
	if short.StageWarmup(0) != 0 || short.StageWarmup(2) != 0 {
		t.Error("auto warm-up of short stages should be 0")
	}
	if one := (Config{Epochs: []int{7}}).Defaults(); one.FinalOutDim() != 128 || one.Stages() != 1 {
		t.Errorf("a single epoch count trains stage 1 only with a 128-D output")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Epochs: []int{1, 2}},
		{Epochs: []int{0, 1, 1}},
		{BatchSize: 1},
		{Metric: "manhattan"},
		{Backbone: "vgg16"},
		{LR: []float64{0.1, 0.2}},
		{Warmup: []int{1}},
		{Device: "tpu"},
		{LR: []float64{math.NaN()}},
	} {
		c = c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// blobs is loadertest.Blobs.
var blobs = loadertest.Blobs

func smallConfig() Config {
	return Config{Epochs: []int{2, 1, 1}, BatchSize: 16, Backbone: "resnet_w4_b1111_h16", PretrainOutDim: 8,
		Seed: 3, Threads: 1, Workers: 2, LR: []float64{0.05}}
}

func TestFitTransformSaveLoad(t *testing.T) {
	data := blobs(64)
	m, err := New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.RunDir = t.TempDir()
	var epochs []EpochStats
	m.OnEpoch = func(e EpochStats) { epochs = append(epochs, e) }
	emb, err := m.FitTransform(context.Background(), data, TransformOptions{Features: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != 4 || epochs[3].Stage != 3 || epochs[3].GlobalEpoch != 3 {
		t.Fatalf("epochs %+v", epochs)
	}
	if emb.N != 64 || emb.Dim != 2 || len(emb.Y) != 128 || emb.FeatureDim != 32 || len(emb.Features) != 64*32 {
		t.Fatalf("embedding %d×%d, features %d", emb.N, emb.Dim, emb.FeatureDim)
	}
	for i := range 64 {
		if emb.Labels[i] != int32(i%4) {
			t.Fatalf("label %d = %d: not in dataset order", i, emb.Labels[i])
		}
	}
	for _, v := range emb.Y {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite coordinate")
		}
	}
	if !m.State().Done {
		t.Fatal("state not done after Fit")
	}
	if err := m.Fit(context.Background(), data); err == nil {
		t.Error("Fit on a finished model should say so")
	}
	// Save and Load give the same embedding.
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(p); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(p, LoadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	emb2, err := m2.Transform(context.Background(), data, TransformOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range emb.Y {
		if emb.Y[i] != emb2.Y[i] {
			t.Fatalf("coordinate %d: %v after Load, %v before", i, emb2.Y[i], emb.Y[i])
		}
	}
	ms, err := ReadMetrics(m.RunDir)
	if err != nil || len(ms) != 4 {
		t.Fatalf("metrics: %v, %d epochs", err, len(ms))
	}
}

// A cancelled Fit checkpoints; Fit on the loaded checkpoint continues and
// ends with the weights of an uninterrupted run.
func TestCancelAndResume(t *testing.T) {
	data := blobs(64)
	ref, _ := New(smallConfig())
	want, err := ref.FitTransform(context.Background(), data, TransformOptions{})
	if err != nil {
		t.Fatal(err)
	}

	m, _ := New(smallConfig())
	m.RunDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	m.OnEpoch = func(EpochStats) {
		steps++
		if steps == 2 {
			cancel()
		}
	}
	if err := m.Fit(ctx, data); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fit after cancel: %v", err)
	}
	m2, err := Load(filepath.Join(m.RunDir, "checkpoint.safetensors"), LoadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := m2.State(); st.Stage != 0 || st.Epoch != 2 {
		// Cancelled after stage 1's second epoch: the checkpoint is at the
		// stage boundary.
		if !(st.Stage == 1 && st.Epoch == 0) {
			t.Fatalf("checkpoint state %+v", st)
		}
	}
	m2.RunDir = m.RunDir
	got, err := m2.FitTransform(context.Background(), data, TransformOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Y {
		if want.Y[i] != got.Y[i] {
			t.Fatalf("coordinate %d: %v resumed, %v uninterrupted", i, got.Y[i], want.Y[i])
		}
	}
}

func TestTrainSubsetIsSeededAndSorted(t *testing.T) {
	d := blobs(100)
	a := trainSubset(d, 30, 1).(*subset)
	b := trainSubset(d, 30, 1).(*subset)
	c := trainSubset(d, 30, 2).(*subset)
	if len(a.idx) != 30 {
		t.Fatalf("%d indices", len(a.idx))
	}
	same := true
	for i := range a.idx {
		if a.idx[i] != b.idx[i] {
			t.Fatal("same seed, different subset")
		}
		if i > 0 && a.idx[i] <= a.idx[i-1] {
			t.Fatal("subset not sorted")
		}
		same = same && a.idx[i] == c.idx[i]
	}
	if same {
		t.Fatal("different seeds, same subset")
	}
	if trainSubset(d, 0, 1) != Dataset(d) || trainSubset(d, 100, 1) != Dataset(d) {
		t.Fatal("k = 0 or k ≥ n should return the dataset itself")
	}
}

// TestDivergedLossStops: a loss that turns NaN stops Fit with ErrDiverged
// before any checkpoint holds the NaN weights (issue 16).
func TestDivergedLossStops(t *testing.T) {
	m, err := New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	d := blobs(64)
	if err := m.Prepare(d); err != nil {
		t.Fatal(err)
	}
	sd := m.Net().StateDict()
	for name, v := range sd {
		if v.DType == "F32" && strings.HasSuffix(name, "weight") {
			f, _ := v.Float32s()
			for i := range f {
				f[i] = float32(math.NaN())
			}
			sd[name] = safetensors.F32(f, v.Shape...)
		}
	}
	if err := m.Net().LoadStateDict(sd, true); err != nil {
		t.Fatal(err)
	}
	m.RunDir = t.TempDir()
	err = m.Fit(t.Context(), d)
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "stage 1 epoch 1") {
		t.Fatalf("Fit with NaN weights: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.RunDir, CheckpointFile)); err == nil {
		t.Fatal("a checkpoint was written with NaN weights")
	}
}

// TestPrepareRefusesOtherData: a model that has trained refuses other data
// (ErrOtherData) and a batch larger than the data; SetEpochs keeps
// finished stages.
func TestPrepareRefusesOtherData(t *testing.T) {
	m, err := New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Prepare(blobs(10)); err == nil || !strings.Contains(err.Error(), "batch size 16") {
		t.Fatalf("batch 16 on 10 images: %v", err)
	}
	if err := m.Prepare(blobs(64)); err != nil {
		t.Fatal(err)
	}
	if err := m.Prepare(blobs(65)); !errors.Is(err, ErrOtherData) {
		t.Fatalf("65 images after 64: %v", err)
	}
	if err := m.SetEpochs([]int{2, 1}); err == nil {
		t.Fatal("SetEpochs changed the number of stages")
	}
	if err := m.SetEpochs([]int{3, 0, 1}); err == nil {
		t.Fatal("SetEpochs accepted a stage of 0 epochs")
	}
	if err := m.SetEpochs([]int{3, 2, 1}); err != nil || m.Config().Epochs[0] != 3 {
		t.Fatalf("SetEpochs before training: %v", err)
	}
}

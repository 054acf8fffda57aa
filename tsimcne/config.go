// Package tsimcne is the Go API of t-SimCNE: train a ResNet contrastively
// with the Cauchy kernel of t-SNE and map every image of a dataset to a
// point in 2D. It mirrors the reference Python package (TSimCNE with fit,
// transform and fit_transform) and adds what its users asked for: seeded,
// reproducible runs; saving, loading and resuming; labels and outputs always
// in dataset order.
//
// In outline (Example runs it, with error handling):
//
//	data, err := tsimcne.OpenPacked("mnist.tscn", 0)
//	m, err := tsimcne.New(tsimcne.Config{Epochs: []int{100, 10, 40}, Seed: 1})
//	emb, err := m.FitTransform(ctx, data, tsimcne.TransformOptions{})
//	// emb.Y[2*i], emb.Y[2*i+1] are image i's coordinates
//
// docs/ALGORITHM.md describes what Fit computes: the model, the loss, the
// three stages and their learning rates, the augmentations.
package tsimcne

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/loader"
)

// Config is a run's configuration. The zero value means the reference's
// defaults; Defaults fills them in.
type Config struct {
	// Epochs per stage: [1000, 50, 450] by default. A single value trains
	// stage 1 only, whose output has PretrainOutDim dimensions.
	Epochs []int `json:"epochs"`
	// BatchSize is images per step (each gives two views); 512 by default.
	BatchSize int `json:"batch_size"`
	// OutDim is the dimension of the final map (2).
	OutDim int `json:"out_dim"`
	// PretrainOutDim is the stage-1 output dimension (128).
	PretrainOutDim int `json:"pretrain_out_dim"`
	// Metric is euclidean (the Cauchy kernel, default) or cosine.
	Metric engine.Metric `json:"metric"`
	// Backbone names the architecture (engine.ArchNames); resnet18_simclr
	// by default.
	Backbone string `json:"backbone"`
	// LR is the base learning rate: empty = "auto_batch" (0.03·BatchSize/256
	// for stages 1 and 2, a thousandth of it for stage 3); one value = that
	// base, stage 3 again a thousandth; one value per stage = exactly those.
	LR []float64 `json:"lr,omitempty"`
	// Warmup is the number of warm-up epochs per stage. Empty = "auto": 10
	// for a stage of at least 100 epochs, else 0, and always 0 in stage 2.
	// (The reference documents this rule but applies [10, 0, 10] whatever
	// the length; on short runs that spends most of a stage warming up.)
	Warmup []int `json:"warmup,omitempty"`
	// Seed makes the whole run reproducible: initialisation, visiting order,
	// augmentations, the stage-2 layer.
	Seed uint64 `json:"seed"`
	// Workers is the number of loader goroutines (default GOMAXPROCS).
	Workers int `json:"workers"`
	// Threads is the number of GEMM threads (default GOMAXPROCS).
	Threads int `json:"threads"`
	// Device is cpu, cuda or auto (default).
	Device engine.Device `json:"device"`
	// ImageSize is the side of the square views; 0 = the data's image size.
	ImageSize int `json:"image_size"`
	// TrainSubset trains on that many images drawn at random (by Seed)
	// instead of all; 0 = all. Transform always covers the whole dataset.
	TrainSubset int `json:"train_subset,omitempty"`
	// Augment overrides the view augmentation (rotation for medical images,
	// normalisation, other strengths); nil = the reference's.
	Augment *augment.Config `json:"augment,omitempty"`
	// CheckpointEvery writes a checkpoint every that many epochs (besides
	// the end of each stage); 0 = only at stage ends.
	CheckpointEvery int `json:"checkpoint_every"`
	// Order is how every epoch visits the images: OrderShuffle (default)
	// or OrderQuasiRandom, for packs larger than memory or than the
	// reader's chunk cache, where a uniform shuffle reads and decompresses
	// a whole chunk for almost every image.
	Order string `json:"order,omitempty"`
	// Window is the quasi-random window in chunks (default
	// loader.DefaultWindow); only for OrderQuasiRandom.
	Window int `json:"window,omitempty"`
}

// The visiting orders of Config.Order.
const (
	// OrderShuffle visits a fresh uniform permutation of the images every
	// epoch (the reference's order).
	OrderShuffle = "shuffle"
	// OrderQuasiRandom shuffles the chunks of a packed file and draws the
	// images uniformly from a sliding window of Window chunks, so that each
	// chunk is read and decompressed about once per epoch
	// (loader.QuasiRandom). A pack written in class order then gives
	// batches of few classes: pack it with --shuffle.
	OrderQuasiRandom = "quasi-random"
)

// loaderOrder returns the loader's mode for c.Order (validated).
func (c *Config) loaderOrder() loader.Mode {
	if c.Order == OrderQuasiRandom {
		return loader.QuasiRandom
	}
	return loader.Shuffle
}

// Defaults returns c with every unset field at the reference's default.
func (c Config) Defaults() Config {
	if len(c.Epochs) == 0 {
		c.Epochs = []int{1000, 50, 450}
	}
	if c.BatchSize == 0 {
		c.BatchSize = 512
	}
	if c.OutDim == 0 {
		c.OutDim = 2
	}
	if c.PretrainOutDim == 0 {
		c.PretrainOutDim = 128
	}
	if c.Metric == "" {
		c.Metric = engine.MetricEuclidean
	}
	if c.Backbone == "" {
		c.Backbone = engine.DefaultArch
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Threads == 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.Device == "" {
		c.Device = engine.DeviceAuto
	}
	if c.Order == "" {
		c.Order = OrderShuffle
	}
	if c.Order == OrderQuasiRandom && c.Window == 0 {
		c.Window = loader.DefaultWindow
	}
	return c
}

// Validate reports the first invalid setting of a defaulted Config. It is
// where the settings given by name (Metric, Device, Backbone) are checked.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("tsimcne: %w", err)
	}
	return nil
}

// validate is Validate without the package prefix, for callers that add
// context (the checkpoint's path) after it.
func (c *Config) validate() error {
	if len(c.Epochs) != 1 && len(c.Epochs) != 3 {
		return fmt.Errorf("epochs: %v: want one value (stage 1 only) or three (one per stage)", c.Epochs)
	}
	for i, e := range c.Epochs {
		if e < 1 {
			return fmt.Errorf("epochs: %v: stage %d has %d epochs; every stage needs at least one (a single value trains stage 1 only)", c.Epochs, i+1, e)
		}
	}
	if c.BatchSize < 2 {
		return fmt.Errorf("batch size %d: want at least 2", c.BatchSize)
	}
	if c.OutDim < 1 || c.PretrainOutDim < 1 {
		return fmt.Errorf("out dim %d, pretrain out dim %d: want ≥ 1", c.OutDim, c.PretrainOutDim)
	}
	if m, err := engine.ParseMetric(string(c.Metric)); err != nil || m != c.Metric {
		return fmt.Errorf("metric %q: want euclidean or cosine", c.Metric)
	}
	if _, err := engine.ParseArch(c.Backbone); err != nil {
		return err
	}
	if n := len(c.LR); n != 0 && n != 1 && n != len(c.Epochs) {
		return fmt.Errorf("lr: %v: want none (auto), one value or one per stage", c.LR)
	}
	for _, lr := range c.LR {
		if !(lr >= 0) || lr > 100 {
			return fmt.Errorf("lr: %v: want non-negative rates", c.LR)
		}
	}
	if n := len(c.Warmup); n != 0 && n != len(c.Epochs) {
		return fmt.Errorf("warmup: %v: want none (auto) or one per stage", c.Warmup)
	}
	for _, w := range c.Warmup {
		if w < 0 {
			return fmt.Errorf("warmup: %v: negative", c.Warmup)
		}
	}
	if d, err := engine.ParseDevice(string(c.Device)); err != nil || d != c.Device {
		return fmt.Errorf("device %q: want auto, cpu or cuda", c.Device)
	}
	if c.ImageSize < 0 || c.TrainSubset < 0 || c.CheckpointEvery < 0 || c.Workers < 0 || c.Threads < 0 {
		return errors.New("image size, train subset, checkpoint interval, workers and threads must not be negative")
	}
	switch c.Order {
	case OrderShuffle:
		if c.Window != 0 {
			return fmt.Errorf("window %d: the window belongs to the %s order", c.Window, OrderQuasiRandom)
		}
	case OrderQuasiRandom:
		if c.TrainSubset > 0 {
			return fmt.Errorf("order %s with a train subset: the subset's images are drawn from every chunk, so there are no chunks to visit; use the %s order", OrderQuasiRandom, OrderShuffle)
		}
	default:
		return fmt.Errorf("order %q: want %s or %s", c.Order, OrderShuffle, OrderQuasiRandom)
	}
	if c.Window < 0 {
		return fmt.Errorf("window %d: want a positive number of chunks (0 = %d)", c.Window, loader.DefaultWindow)
	}
	if c.Augment != nil {
		if err := c.Augment.Validate(); err != nil {
			return fmt.Errorf("augment: %w", err)
		}
	}
	return nil
}

// Stages returns the number of stages the run trains.
func (c *Config) Stages() int { return len(c.Epochs) }

// StageLR returns the base learning rate of stage s (0-based).
func (c *Config) StageLR(s int) float64 {
	switch len(c.LR) {
	case 0:
		base := engine.BaseLR(c.BatchSize)
		if s == 2 {
			return base / 1000
		}
		return base
	case 1:
		if s == 2 {
			return c.LR[0] / 1000
		}
		return c.LR[0]
	}
	return c.LR[s]
}

// StageWarmup returns the warm-up epochs of stage s (0-based).
func (c *Config) StageWarmup(s int) int {
	if len(c.Warmup) > 0 {
		return c.Warmup[s]
	}
	if s == 1 || c.Epochs[s] < 100 {
		return 0
	}
	return 10
}

// StageOutDim returns the output dimension during stage s (0-based).
func (c *Config) StageOutDim(s int) int {
	if s == 0 {
		return c.PretrainOutDim
	}
	return c.OutDim
}

// FinalOutDim is the dimension of the trained model's output.
func (c *Config) FinalOutDim() int {
	if len(c.Epochs) == 1 {
		return c.PretrainOutDim
	}
	return c.OutDim
}

// LRTable returns stage s's per-epoch learning rates (docs/ALGORITHM.md,
// "Learning-rate schedule").
func (c *Config) LRTable(s int) []float64 {
	return engine.LRTable(c.Epochs[s], c.StageWarmup(s), c.StageLR(s))
}

// Command train trains a t-SimCNE model on a packed dataset.
//
//	train DATA -o RUN_DIR [flags]
//	train --resume -o RUN_DIR DATA
//
// RUN_DIR receives config.json, metrics.csv (one line per epoch),
// checkpoint.safetensors (the latest, written atomically every
// --checkpoint-every epochs, at each stage's end and on Ctrl-C),
// stageN.safetensors (each stage's end) and loss.png.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/internal/cli"
	"github.com/tsimcne/tsimcne-go/internal/mpi"
	"github.com/tsimcne/tsimcne-go/loader"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

func main() { cli.Main("train", newRoot()) }

type flags struct {
	out, epochs, lr, warmup, backbone, metric, device string
	order                                             string
	batch, outDim, pretrainDim, workers, threads      int
	imageSize, subset, every, window                  int
	seed                                              uint64
	resume, quiet, changeEpochs, localBN              bool
	budget                                            time.Duration
	scaleMin, flipP                                   float64
}

func newRoot() *cobra.Command {
	c, _ := newCommand()
	return c
}

// newCommand returns the root command and the flags it parses into.
func newCommand() (*cobra.Command, *flags) {
	var f flags
	// The defaults are tsimcne's and augment's own, so that they are stated
	// once; Workers and Threads stay 0 ("CPUs"), which Defaults resolves
	// per machine.
	def := tsimcne.Config{}.Defaults()
	defAug := augment.DefaultConfig(1, 1)
	c := &cobra.Command{
		Use:   "train DATA -o RUN_DIR",
		Short: "Train t-SimCNE on a packed dataset",
		Long: fmt.Sprintf(`train fits t-SimCNE (a ResNet trained contrastively with the Cauchy kernel)
to a packed dataset (see pack) in three stages: 128-D pre-training, a new 2-D
output layer alone, then everything at a lower learning rate. Defaults are the
reference's ([%s] epochs, batch %d, %s); a run is
reproducible from --seed. Interrupt with Ctrl-C: a checkpoint is saved and
--resume continues to exactly the weights an uninterrupted run would have.`, strings.ReplaceAll(joinInts(def.Epochs), ",", ", "), def.BatchSize, def.Backbone),
		Example: `  train mnist.tscn -o runs/mnist --backbone resnet_tiny --epochs 20,10,5 --batch 256
  train --resume -o runs/mnist mnist.tscn`,
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, args[0], &f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "run directory (checkpoints, metrics, plots); required unless --resume")
	fl.BoolVar(&f.resume, "resume", false, "continue the run in the directory given with -o (training flags given with it must match the run's)")
	fl.BoolVar(&f.changeEpochs, "change-epochs", false, "with --resume: accept a different --epochs (finished stages keep theirs)")
	fl.StringVar(&f.epochs, "epochs", joinInts(def.Epochs), "epochs per stage (one value: stage 1 only)")
	fl.DurationVar(&f.budget, "time", 0, "train for about this long (e.g. 5m) instead of a number of epochs: the epochs are scaled from --epochs's proportions to the speed measured on the first steps, and recorded in config.json")
	fl.IntVar(&f.batch, "batch", def.BatchSize, "images per step (each gives two views)")
	fl.IntVar(&f.outDim, "out-dim", def.OutDim, "dimension of the final map")
	fl.IntVar(&f.pretrainDim, "pretrain-out-dim", def.PretrainOutDim, "stage-1 output dimension")
	fl.StringVar(&f.metric, "metric", fmt.Sprint(def.Metric), "euclidean (Cauchy kernel) or cosine")
	fl.StringVar(&f.backbone, "backbone", def.Backbone, "backbone: "+strings.Join(engine.ArchNames(), ", "))
	fl.StringVar(&f.lr, "lr", "auto", "base learning rate: auto (0.03·batch/256, stage 3 a thousandth), one value, or one per stage")
	fl.StringVar(&f.warmup, "warmup", "auto", "warm-up epochs per stage: auto (10 for stages of ≥ 100 epochs, none in stage 2) or one per stage")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of everything random in the run")
	fl.IntVar(&f.workers, "workers", 0, "loader goroutines (default: CPUs)")
	fl.IntVar(&f.threads, "threads", 0, "GEMM threads (default: CPUs)")
	fl.StringVar(&f.device, "device", fmt.Sprint(def.Device), "auto, cpu or cuda")
	fl.IntVar(&f.imageSize, "image-size", 0, "side of the square views (default: the data's)")
	fl.IntVar(&f.subset, "train-subset", 0, "train on this many images drawn by the seed (0 = all)")
	fl.StringVar(&f.order, "order", orderAuto, "visiting order: shuffle, quasi-random (chunks shuffled, images drawn from a window of chunks: for packs larger than memory), or auto (quasi-random when the compressed chunks, decompressed, exceed the reader's chunk cache, or the file exceeds half of the memory)")
	fl.IntVar(&f.window, "window", 0, fmt.Sprintf("quasi-random window in chunks (default %d)", loader.DefaultWindow))
	fl.IntVar(&f.every, "checkpoint-every", 10, "checkpoint every N epochs (stage ends always)")
	fl.Float64Var(&f.scaleMin, "crop-scale-min", defAug.ScaleMin, "smallest crop area fraction of the random resized crop")
	fl.Float64Var(&f.flipP, "flip-p", defAug.FlipP, "probability of a horizontal flip (0 for data where mirror images differ, such as digits)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bars")
	fl.BoolVar(&f.localBN, "local-bn", false, "under mpirun: per-rank BatchNorm statistics instead of synchronised ones")
	return c, &f
}

// joinInts writes ints as a comma-separated flag value.
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("--%s %q: want integers separated by commas", name, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseFloats(name, s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: want numbers separated by commas", name, s)
		}
		out = append(out, v)
	}
	return out, nil
}

// configFrom turns the flags cmd parsed into f into a Config. Values that
// Config would read as "default" (a batch of 0) are refused here, naming the
// flag, instead of being replaced silently. The augmentation is overridden
// only when one of its flags was given (even with its default value).
func configFrom(cmd *cobra.Command, f *flags) (tsimcne.Config, error) {
	c := tsimcne.Config{
		BatchSize: f.batch, OutDim: f.outDim, PretrainOutDim: f.pretrainDim, Metric: engine.Metric(f.metric),
		Backbone: f.backbone, Seed: f.seed, Workers: f.workers, Threads: f.threads, Device: engine.Device(f.device),
		ImageSize: f.imageSize, TrainSubset: f.subset, CheckpointEvery: f.every,
		Window: f.window,
	}
	switch { // Validate checks the order and the window
	case f.order != orderAuto:
		c.Order = f.order
	case f.window > 0: // a window asks for the quasi-random order
		c.Order = tsimcne.OrderQuasiRandom
	} // else resolved once the data is open (resolveOrder)
	for _, v := range []struct {
		name     string
		val, min int
	}{{"batch", f.batch, 2}, {"out-dim", f.outDim, 1}, {"pretrain-out-dim", f.pretrainDim, 1},
		{"image-size", f.imageSize, 0}, {"train-subset", f.subset, 0}, {"checkpoint-every", f.every, 0},
		{"workers", f.workers, 0}, {"threads", f.threads, 0}, {"window", f.window, 0}} {
		if v.val < v.min {
			return c, fmt.Errorf("--%s %d: want at least %d", v.name, v.val, v.min)
		}
	}
	var err error
	if c.Epochs, err = parseInts("epochs", f.epochs); err != nil {
		return c, err
	}
	for i, e := range c.Epochs {
		if e < 1 {
			return c, fmt.Errorf("--epochs %s: stage %d has %d epochs; every stage needs at least one (one value trains stage 1 only)", f.epochs, i+1, e)
		}
	}
	if f.lr != "auto" {
		if c.LR, err = parseFloats("lr", f.lr); err != nil {
			return c, err
		}
	}
	if f.warmup != "auto" {
		if c.Warmup, err = parseInts("warmup", f.warmup); err != nil {
			return c, err
		}
	}
	if cmd.Flags().Changed("crop-scale-min") || cmd.Flags().Changed("flip-p") {
		if f.scaleMin <= 0 || f.scaleMin > 1 {
			return c, fmt.Errorf("--crop-scale-min %g: want a value in (0, 1]", f.scaleMin)
		}
		if f.flipP < 0 || f.flipP > 1 {
			return c, fmt.Errorf("--flip-p %g: want a probability in [0, 1]", f.flipP)
		}
		a := augment.DefaultConfig(32, 32) // tsimcne sets the view size from the data
		a.ScaleMin, a.FlipP = f.scaleMin, f.flipP
		c.Augment = &a
	}
	c = c.Defaults()
	return c, c.Validate()
}

// orderAuto is --order's default: resolveOrder chooses.
const orderAuto = "auto"

// orderLimits are what --order auto weighs a pack against.
type orderLimits struct {
	cache  int64 // the reader's decompressed-chunk cache (tsimcne.OpenPacked: format.DefaultCacheBytes)
	memory int64 // physical memory; 0 = unknown
}

// resolveOrder chooses the visiting order for --order auto. Quasi-random
// when a uniform shuffle would read far more than the data: when the
// pack's compressed chunks, decompressed, exceed the chunk cache (each
// image would cost a whole chunk's decompression, about 40 times the data
// for lz4 chunks of 128 KiB and 32×32 images), or when the file is larger
// than half of the memory (the page cache cannot hold it, and each image
// would cost a read from the disk). Shuffle otherwise, and always for a
// --train-subset (not stored in chunks). It says what it chose and why,
// and warns when the pack is in dataset order.
func resolveOrder(r *format.Reader, cfg *tsimcne.Config, lim orderLimits, logf func(string, ...any)) string {
	var compressed int64 // decompressed bytes of the chunks that go through the cache
	for c := range r.NumChunks() {
		if ch := r.Chunk(c); ch.Codec != format.CodecNone {
			compressed += int64(ch.Raw)
		}
	}
	var why string
	switch {
	case cfg.TrainSubset > 0:
	case compressed > lim.cache:
		why = fmt.Sprintf("the compressed chunks take %.1f MB decompressed, more than the %.1f MB chunk cache", float64(compressed)/1e6, float64(lim.cache)/1e6)
	case lim.memory > 0 && r.Size() > lim.memory/2:
		why = fmt.Sprintf("the file's %.1f GB exceed half of the %.1f GB of memory", float64(r.Size())/1e9, float64(lim.memory)/1e9)
	}
	if why == "" {
		return tsimcne.OrderShuffle
	}
	logf("order: quasi-random, window %d chunks (%s; --order shuffle to change)", loader.DefaultWindow, why)
	if !r.Schema().Shuffled {
		logf("warning: %s is stored in dataset order, not shuffled: if that is class order, every batch draws from few classes; repack with pack --shuffle", r.Path())
	}
	return tsimcne.OrderQuasiRandom
}

// outputs are the files train writes in the run directory besides the
// stageN checkpoints.
var outputs = []string{"config.json", tsimcne.MetricsFile, tsimcne.CheckpointFile, tsimcne.PrevCheckpointFile, "loss.png"}

// lockFile keeps two trainings out of one run directory.
const lockFile = ".lock"

// checkNotOutput refuses a DATA that is one of the files train writes in
// runDir (by identity: links count).
func checkNotOutput(runDir, data string, stages int) error {
	names := append([]string(nil), outputs...)
	for s := 1; s <= max(stages, 3); s++ {
		names = append(names, fmt.Sprintf("stage%d.safetensors", s))
	}
	for _, n := range names {
		if err := atomicfile.CheckNotInput("-o", filepath.Join(runDir, n), data); err != nil {
			return fmt.Errorf("DATA %s is the run's own %s: refusing to overwrite an input; choose another run directory", data, n)
		}
	}
	return nil
}

func run(cmd *cobra.Command, data string, f *flags) error {
	j, err := mpi.StartJob()
	if err != nil {
		return err
	}
	return j.Finish("train", runJob(cmd, data, f, j))
}

func runJob(cmd *cobra.Command, data string, f *flags, j *mpi.Job) error {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if !j.Writer() {
		// One rank speaks for the job.
		logf = func(string, ...any) {}
	}
	if j.Size() > 1 {
		logf("mpi: training data-parallel on %d ranks (global batch %d, %d per rank)", j.Size(), f.batch, f.batch/max(j.Size(), 1))
		shareCPUs(f, logf)
	}
	runDir := f.out
	if f.resume && runDir == "" {
		return errors.New("--resume needs the run directory: train --resume -o RUN_DIR DATA")
	}
	if runDir == "" {
		return errors.New("-o RUN_DIR is required")
	}
	if f.budget != 0 && f.resume {
		return errors.New("--time plans a new run; a resumed run keeps its schedule (change it with --epochs and --change-epochs)")
	}
	if f.budget < 0 {
		return fmt.Errorf("--time %v: want a positive duration such as 5m", f.budget)
	}
	if f.budget != 0 && j.Size() > 1 {
		return errors.New("--time is for one process: under mpirun give the epochs with --epochs")
	}
	if f.changeEpochs && !f.resume {
		return errors.New("--change-epochs is for --resume: it lets a resumed run take a different --epochs")
	}
	// Flags are checked before anything is opened or written.
	cfg, err := configFrom(cmd, f)
	if err != nil {
		return err
	}
	if err := checkNotOutput(runDir, data, len(cfg.Epochs)); err != nil {
		return err
	}
	ds, err := tsimcne.OpenPacked(data, 0)
	if err != nil {
		return err
	}
	defer ds.Close()
	if f.order == orderAuto && f.window == 0 && !f.resume {
		cfg.Order = resolveOrder(ds.Reader(), &cfg, orderLimits{cache: format.DefaultCacheBytes, memory: physicalMemory()}, logf)
		cfg = cfg.Defaults() // the window of a quasi-random order
	}
	if ds.Reader().Schema().Image.Encoded {
		// The two decoders differ by a few levels; say which one runs.
		logf("JPEG decoder: %s", loader.JPEGDecoder(loader.Options{}))
	}

	var m *tsimcne.Model
	ckpt := filepath.Join(runDir, tsimcne.CheckpointFile)
	if f.resume {
		if st, err := os.Stat(runDir); err != nil || !st.IsDir() {
			return fmt.Errorf("resume: %s is not a run directory", runDir)
		}
		if j.Writer() {
			unlock, err := atomicfile.Lock(filepath.Join(runDir, lockFile))
			if err != nil {
				return fmt.Errorf("resume: %w (another train is running there)", err)
			}
			defer unlock()
			// Temporary files of a train killed while writing, including
			// one killed after its last checkpoint, whose run is complete.
			atomicfile.RemoveStaleDir(runDir)
		}
		m, err = tsimcne.Load(ckpt, tsimcne.LoadOptions{Device: engine.Device(f.device), Threads: f.threads, Workers: f.workers}, logf)
		if err != nil {
			return resumeLoadError(runDir, ckpt, err)
		}
		st := m.State()
		if st.Done {
			logf("%s: the run is already complete", runDir)
			// A train killed between its last checkpoint and the loss
			// plot left no loss.png: draw it now.
			lossPath := filepath.Join(runDir, "loss.png")
			if _, err := os.Stat(lossPath); errors.Is(err, fs.ErrNotExist) && j.Writer() {
				if perr := tsimcne.LossPlot(runDir, m.Config(), lossPath); perr != nil {
					logf("loss plot: %v", perr)
				}
			}
			return nil
		}
		if err := checkResumeFlags(cmd, f, cfg, m); err != nil {
			return err
		}
		if m.Data() == nil {
			logf("warning: %s was written before checkpoints recorded their data; cannot check that %s is the same data", ckpt, data)
		}
		if err := m.Prepare(ds); err != nil {
			if errors.Is(err, tsimcne.ErrOtherData) {
				return fmt.Errorf("resume: DATA %s is %w; give the data the run started with", data, err)
			}
			return fmt.Errorf("resume: %w", err)
		}
		if j.Writer() {
			if err := writeJSON(filepath.Join(runDir, "config.json"), map[string]any{"config": m.Config(), "data": data, "data_id": m.Data()}); err != nil {
				return err
			}
		}
		logf("resuming %s at stage %d, epoch %d (image %d of the epoch)", runDir, st.Stage+1, st.Epoch, st.Pos)
	} else {
		if _, err := os.Stat(ckpt); err == nil {
			return fmt.Errorf("%s already holds a run; use --resume to continue it or choose another directory", runDir)
		}
		if m, err = tsimcne.New(cfg); err != nil {
			return err
		}
		m.Logf = logf
		if err := checkBatch(f, cfg, ds); err != nil {
			return err
		}
		// The network is built before the run directory is touched, so
		// that settings the data cannot take leave nothing behind.
		if err := m.Prepare(ds); err != nil {
			if f.imageSize != 0 {
				return fmt.Errorf("--image-size %d: %w", f.imageSize, err)
			}
			return err
		}
		var plan *tsimcne.TimePlan
		if f.budget > 0 {
			logf("--time %v: measuring the training speed of each stage", f.budget)
			p, err := m.PlanTime(ctx, ds, f.budget)
			if err != nil {
				return fmt.Errorf("--time %v: %w", f.budget, err)
			}
			plan = &p
			logf("--time %v: %s images/s per stage; training %s epochs (about %.0fs; the same run as --epochs %s --warmup %s)",
				f.budget, joinFloats(p.ImagesPerSec), joinInts(p.Epochs), p.PlannedSeconds, joinInts(p.Epochs), joinInts(p.Warmup))
		}
		if j.Writer() {
			if err := os.MkdirAll(runDir, 0o755); err != nil {
				return err
			}
			unlock, err := atomicfile.Lock(filepath.Join(runDir, lockFile))
			if err != nil {
				return fmt.Errorf("%w (another train is running there)", err)
			}
			defer unlock()
			if _, err := os.Stat(ckpt); err == nil { // another train got there first
				return fmt.Errorf("%s already holds a run; use --resume to continue it or choose another directory", runDir)
			}
			meta := map[string]any{"config": m.Config(), "data": data, "data_id": m.Data()}
			if plan != nil {
				meta["time_plan"] = plan
				meta["repeat_with"] = "--epochs " + joinInts(plan.Epochs) + " --warmup " + joinInts(plan.Warmup)
			}
			if err := writeJSON(filepath.Join(runDir, "config.json"), meta); err != nil {
				return err
			}
		}
	}
	m.Dist = dist(j, f.localBN)
	if j.Writer() {
		m.RunDir = runDir
	}
	if !f.quiet && j.Writer() {
		m.Progress = stderr
	}
	m.OnEpoch = func(es tsimcne.EpochStats) {
		if f.quiet {
			return
		}
		logf("stage %d epoch %d: loss %.4f, lr %.3g, %.0f images/s, %.1fs", es.Stage, es.Epoch, es.Loss, es.LR, es.ImagesPerSec, es.Seconds)
	}
	err = m.Fit(ctx, ds)
	// A run that failed before its first epoch (no device, bad data) has
	// no metrics to plot: its error is the whole story.
	if _, serr := os.Stat(filepath.Join(runDir, tsimcne.MetricsFile)); serr == nil && j.Writer() {
		if perr := tsimcne.LossPlot(runDir, m.Config(), filepath.Join(runDir, "loss.png")); perr != nil {
			logf("loss plot: %v", perr)
		}
	}
	if errors.Is(err, context.Canceled) {
		logf("interrupted: checkpoint saved in %s; continue with: train --resume -o %s %s", runDir, runDir, data)
		return err
	}
	if err != nil {
		if _, _, serr := safetensors.Read(ckpt); serr == nil {
			return fmt.Errorf("%w\nthe last checkpoint %s is intact; once the cause is fixed, continue with: train --resume -o %s %s",
				err, ckpt, runDir, data)
		}
		return err
	}
	if !j.Writer() {
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %s: checkpoint %s (backend %s)\n", runDir, ckpt, m.BackendName())
	return nil
}

// checkBatch refuses a batch larger than the training images, naming the
// flags that decide both.
func checkBatch(f *flags, cfg tsimcne.Config, ds *tsimcne.Packed) error {
	n, from := ds.Len(), "DATA's"
	if cfg.TrainSubset > 0 && cfg.TrainSubset < n {
		n, from = cfg.TrainSubset, "--train-subset's"
	}
	if cfg.BatchSize > n {
		return fmt.Errorf("--batch %d is larger than %s %d training images: the learning rate would be scaled for a batch that never happens; lower --batch", cfg.BatchSize, from, n)
	}
	return nil
}

// resumeLoadError explains a checkpoint that cannot be resumed from, and
// points to the previous one when that one is intact.
func resumeLoadError(runDir, ckpt string, err error) error {
	if !errors.Is(err, safetensors.ErrDamaged) {
		return fmt.Errorf("resume: %w", err)
	}
	prev := filepath.Join(runDir, tsimcne.PrevCheckpointFile)
	if _, perr := tsimcne.Load(prev, tsimcne.LoadOptions{Device: "cpu", Threads: 1}, nil); perr == nil {
		return fmt.Errorf("resume: %s is damaged: %w\nthe previous checkpoint %s is intact; to continue from it: mv %s %s", ckpt, err, prev, prev, ckpt)
	}
	return fmt.Errorf("resume: %s is damaged and there is no intact previous checkpoint: %w", ckpt, err)
}

// resumeChecked are the training flags a resumed run must not change, with
// how to read each from a configuration.
var resumeChecked = []struct {
	flag string
	val  func(c tsimcne.Config, size int) string
}{
	{"batch", func(c tsimcne.Config, _ int) string { return strconv.Itoa(c.BatchSize) }},
	{"out-dim", func(c tsimcne.Config, _ int) string { return strconv.Itoa(c.OutDim) }},
	{"pretrain-out-dim", func(c tsimcne.Config, _ int) string { return strconv.Itoa(c.PretrainOutDim) }},
	{"metric", func(c tsimcne.Config, _ int) string { return c.Metric.String() }},
	{"backbone", func(c tsimcne.Config, _ int) string { return c.Backbone }},
	{"seed", func(c tsimcne.Config, _ int) string { return strconv.FormatUint(c.Seed, 10) }},
	{"train-subset", func(c tsimcne.Config, _ int) string { return strconv.Itoa(c.TrainSubset) }},
	{"image-size", func(c tsimcne.Config, size int) string {
		if c.ImageSize == 0 && size > 0 {
			return strconv.Itoa(size)
		}
		return strconv.Itoa(c.ImageSize)
	}},
	{"lr", func(c tsimcne.Config, _ int) string { return fmt.Sprint(c.LR) }},
	{"warmup", func(c tsimcne.Config, _ int) string { return fmt.Sprint(c.Warmup) }},
	{"crop-scale-min", func(c tsimcne.Config, _ int) string { return fmt.Sprint(augmentOf(c).ScaleMin) }},
	{"flip-p", func(c tsimcne.Config, _ int) string { return fmt.Sprint(augmentOf(c).FlipP) }},
	{"checkpoint-every", func(c tsimcne.Config, _ int) string { return strconv.Itoa(c.CheckpointEvery) }},
	{"epochs", func(c tsimcne.Config, _ int) string { return fmt.Sprint(c.Epochs) }},
	{"order", func(c tsimcne.Config, _ int) string { return c.Order }},
	{"window", func(c tsimcne.Config, _ int) string { return strconv.Itoa(c.Window) }},
}

func augmentOf(c tsimcne.Config) augment.Config {
	if c.Augment != nil {
		return *c.Augment
	}
	return augment.DefaultConfig(32, 32)
}

// checkResumeFlags refuses training flags given with --resume that differ
// from the run's: a resumed run continues the run it was, or it is a
// different run. --epochs may change with --change-epochs.
func checkResumeFlags(cmd *cobra.Command, f *flags, given tsimcne.Config, m *tsimcne.Model) error {
	have := m.Config()
	size := 0
	if net := m.Net(); net != nil {
		size = net.Options().ImageSize
	}
	var conflicts []string
	for _, r := range resumeChecked {
		if !cmd.Flags().Changed(r.flag) || (r.flag == "order" && f.order == orderAuto) {
			continue
		}
		g, h := r.val(given, 0), r.val(have, size)
		if r.flag == "image-size" {
			g = strconv.Itoa(given.ImageSize)
		}
		if g == h {
			continue
		}
		if r.flag == "epochs" && f.changeEpochs {
			if err := m.SetEpochs(given.Epochs); err != nil {
				return fmt.Errorf("resume: --epochs %s: %w", f.epochs, err)
			}
			continue
		}
		flagVal := cmd.Flags().Lookup(r.flag).Value.String()
		msg := fmt.Sprintf("--%s %s (the run has %s)", r.flag, flagVal, h)
		if r.flag == "epochs" {
			msg += "; add --change-epochs to change the schedule"
		}
		conflicts = append(conflicts, msg)
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("resume: a resumed run keeps the settings it started with; these flags differ: %s", strings.Join(conflicts, "; "))
	}
	return nil
}

func writeJSON(path string, v any) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

func joinFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, ",")
}

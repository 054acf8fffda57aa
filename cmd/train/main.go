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
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/internal/cli"
	"github.com/tsimcne/tsimcne-go/internal/mpi"
	"github.com/tsimcne/tsimcne-go/loader"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

func main() { cli.Main("train", newRoot()) }

type flags struct {
	out, epochs, lr, warmup, backbone, metric, device string
	batch, outDim, pretrainDim, workers, threads      int
	imageSize, subset, every                          int
	seed                                              uint64
	resume, quiet, localBN                            bool
	scaleMin, flipP                                   float64
}

func newRoot() *cobra.Command {
	var f flags
	c := &cobra.Command{
		Use:   "train DATA -o RUN_DIR",
		Short: "Train t-SimCNE on a packed dataset",
		Long: `train fits t-SimCNE (a ResNet trained contrastively with the Cauchy kernel)
to a packed dataset (see pack) in three stages: 128-D pre-training, a new 2-D
output layer alone, then everything at a lower learning rate. Defaults are the
reference's ([1000, 50, 450] epochs, batch 512, resnet18_simclr); a run is
reproducible from --seed. Interrupt with Ctrl-C: a checkpoint is saved and
--resume continues to exactly the weights an uninterrupted run would have.`,
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
	fl.BoolVar(&f.resume, "resume", false, "continue the run in the directory given with -o")
	fl.StringVar(&f.epochs, "epochs", "1000,50,450", "epochs per stage (one value: stage 1 only)")
	fl.IntVar(&f.batch, "batch", 512, "images per step (each gives two views)")
	fl.IntVar(&f.outDim, "out-dim", 2, "dimension of the final map")
	fl.IntVar(&f.pretrainDim, "pretrain-out-dim", 128, "stage-1 output dimension")
	fl.StringVar(&f.metric, "metric", "euclidean", "euclidean (Cauchy kernel) or cosine")
	fl.StringVar(&f.backbone, "backbone", "resnet18_simclr", "backbone: resnet18_simclr, resnet10_simclr, resnet_small, resnet_tiny or resnet_w<W>_b<b1b2b3b4>[_h<H>]")
	fl.StringVar(&f.lr, "lr", "auto", "base learning rate: auto (0.03·batch/256, stage 3 a thousandth), one value, or one per stage")
	fl.StringVar(&f.warmup, "warmup", "auto", "warm-up epochs per stage: auto (10 for stages of ≥ 100 epochs, none in stage 2) or one per stage")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of everything random in the run")
	fl.IntVar(&f.workers, "workers", 0, "loader goroutines (default: CPUs)")
	fl.IntVar(&f.threads, "threads", 0, "GEMM threads (default: CPUs)")
	fl.StringVar(&f.device, "device", "auto", "auto, cpu or cuda")
	fl.IntVar(&f.imageSize, "image-size", 0, "side of the square views (default: the data's)")
	fl.IntVar(&f.subset, "train-subset", 0, "train on this many images drawn by the seed (0 = all)")
	fl.IntVar(&f.every, "checkpoint-every", 10, "checkpoint every N epochs (stage ends always)")
	fl.Float64Var(&f.scaleMin, "crop-scale-min", 0.2, "smallest crop area fraction of the random resized crop")
	fl.Float64Var(&f.flipP, "flip-p", 0.5, "probability of a horizontal flip (0 for data where mirror images differ, such as digits)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bars")
	fl.BoolVar(&f.localBN, "local-bn", false, "under mpirun: per-rank BatchNorm statistics instead of synchronised ones")
	return c
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

// configFrom turns the flags into a Config.
func configFrom(f *flags) (tsimcne.Config, error) {
	c := tsimcne.Config{
		BatchSize: f.batch, OutDim: f.outDim, PretrainOutDim: f.pretrainDim, Metric: f.metric,
		Backbone: f.backbone, Seed: f.seed, Workers: f.workers, Threads: f.threads, Device: f.device,
		ImageSize: f.imageSize, TrainSubset: f.subset, CheckpointEvery: f.every,
	}
	var err error
	if c.Epochs, err = parseInts("epochs", f.epochs); err != nil {
		return c, err
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
	if f.scaleMin != 0.2 || f.flipP != 0.5 {
		if f.scaleMin <= 0 || f.scaleMin > 1 {
			return c, fmt.Errorf("--crop-scale-min %g: want a value in (0, 1]", f.scaleMin)
		}
		if f.flipP < 0 || f.flipP > 1 {
			return c, fmt.Errorf("--flip-p %g: want a probability in [0, 1]", f.flipP)
		}
		// The view size is filled in when the data is known.
		a := augment.DefaultConfig(32, 32) // tsimcne sets the view size from the data
		a.ScaleMin, a.FlipP = f.scaleMin, f.flipP
		c.Augment = &a
	}
	c = c.Defaults()
	return c, c.Validate()
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
	ds, err := tsimcne.OpenPacked(data, 0)
	if err != nil {
		return err
	}
	defer ds.Close()
	if ds.Reader().Schema().Image.Encoded {
		// The two decoders differ by a few levels; say which one runs.
		logf("JPEG decoder: %s", loader.JPEGDecoder(loader.Options{}))
	}

	var m *tsimcne.Model
	ckpt := filepath.Join(runDir, "checkpoint.safetensors")
	if f.resume {
		m, err = tsimcne.Load(ckpt, tsimcne.LoadOptions{Device: f.device, Threads: f.threads, Workers: f.workers}, logf)
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		st := m.State()
		if st.Done {
			logf("%s: the run is already complete", runDir)
			return nil
		}
		logf("resuming %s at stage %d, epoch %d (image %d of the epoch)", runDir, st.Stage+1, st.Epoch, st.Pos)
	} else {
		if _, err := os.Stat(ckpt); err == nil {
			return fmt.Errorf("%s already holds a run; use --resume to continue it or choose another directory", runDir)
		}
		cfg, err := configFrom(f)
		if err != nil {
			return err
		}
		if m, err = tsimcne.New(cfg); err != nil {
			return err
		}
		m.Logf = logf
		if j.Writer() {
			if err := os.MkdirAll(runDir, 0o755); err != nil {
				return err
			}
			if err := writeJSON(filepath.Join(runDir, "config.json"), map[string]any{"config": m.Config(), "data": data}); err != nil {
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
		return err
	}
	if !j.Writer() {
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %s: checkpoint %s (backend %s)\n", runDir, ckpt, m.BackendName())
	return nil
}

func writeJSON(path string, v any) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

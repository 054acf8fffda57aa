// Command embed maps every image of a packed dataset with a trained model
// and writes the map as an Arrow IPC file, plus optional plots.
//
//	embed RUN_DIR DATA -o emb.arrow|emb.parquet [--plot emb.png] [--thumbs fig.png] [--features]
//
// The Arrow file has the columns index (dataset order), label, class
// (dictionary of class names), x and y (or embedding for out_dim ≠ 2) and,
// with --features, features (the 512-D backbone output). With labels, embed
// prints the kNN accuracy of the map (k = 15, stratified test split).
package main

import (
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsimcne/tsimcne-go/embedio"
	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/internal/cli"
	"github.com/tsimcne/tsimcne-go/internal/mpi"
	"github.com/tsimcne/tsimcne-go/internal/sampleimg"
	"github.com/tsimcne/tsimcne-go/knn"
	"github.com/tsimcne/tsimcne-go/plot"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

func main() { cli.Main("embed", newRoot()) }

type flags struct {
	out, plotPath, device   string
	thumbsPath              string
	features, quiet, noKNN  bool
	otherShape              bool
	threads, workers, batch int
}

func newRoot() *cobra.Command {
	var f flags
	c := &cobra.Command{
		Use:   "embed RUN_DIR|CHECKPOINT DATA -o emb.arrow",
		Short: "Embed a packed dataset with a trained model into an Arrow file and a plot",
		Example: `  embed runs/mnist mnist.tscn -o mnist.arrow --plot mnist.png
  python -c "import pyarrow.ipc as ipc; print(ipc.open_file('mnist.arrow').read_pandas().head())"`,
		Args:          cobra.ExactArgs(2),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, args[0], args[1], &f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "Arrow IPC file to write, or Parquet when it ends in .parquet (required)")
	fl.StringVar(&f.plotPath, "plot", "", "also draw the map as PNG here (and the loss curve next to it as NAME-loss.png)")
	fl.StringVar(&f.thumbsPath, "thumbs", "", "also draw the map with a grid of image thumbnails as PNG here (print resolution)")
	fl.BoolVar(&f.features, "features", false, "add the backbone features as a fixed-size list column")
	fl.BoolVar(&f.noKNN, "no-knn", false, "skip the kNN accuracy")
	fl.StringVar(&f.device, "device", "", "auto, cpu or cuda (default: as trained)")
	fl.IntVar(&f.threads, "threads", 0, "GEMM threads (default: as trained)")
	fl.IntVar(&f.workers, "workers", 0, "loader goroutines (default: as trained)")
	fl.IntVar(&f.batch, "batch", 0, "images per forward pass (default: twice the training batch)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar")
	fl.BoolVar(&f.otherShape, "allow-other-shape", false, "embed data whose image size or channels differ from the training data's (resized and converted)")
	c.MarkFlagRequired("output")
	return c
}

func run(cmd *cobra.Command, model, data string, f *flags) error {
	j, err := mpi.StartJob()
	if err != nil {
		return err
	}
	return j.Finish("embed", runJob(cmd, model, data, f, j))
}

// runJob embeds; under mpirun each rank embeds its block of the data and
// rank 0 alone writes the files (the others stop after the gather).
func runJob(cmd *cobra.Command, model, data string, f *flags, j *mpi.Job) error {
	ctx := cmd.Context()
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if !j.Writer() {
		logf = func(string, ...any) {}
	}
	if j.Size() > 1 {
		logf("mpi: embedding on %d ranks", j.Size())
	}
	for _, v := range []struct {
		name string
		val  int
	}{{"batch", f.batch}, {"threads", f.threads}, {"workers", f.workers}} {
		if v.val < 0 {
			return fmt.Errorf("--%s %d: want a positive number (or 0 for the default)", v.name, v.val)
		}
	}
	ckpt, runDir := model, ""
	if st, err := os.Stat(model); err == nil && st.IsDir() {
		runDir, ckpt = model, filepath.Join(model, tsimcne.CheckpointFile)
	}
	if err := checkArgs(model, ckpt, data); err != nil {
		return err
	}
	lossPath := ""
	if f.plotPath != "" && runDir != "" {
		lossPath = strings.TrimSuffix(f.plotPath, filepath.Ext(f.plotPath)) + "-loss.png"
	}
	if err := checkOutputs(f, lossPath, ckpt, data, runDir); err != nil {
		return err
	}
	m, err := tsimcne.Load(ckpt, tsimcne.LoadOptions{Device: engine.Device(f.device), Threads: f.threads, Workers: f.workers}, logf)
	if err != nil {
		return err
	}
	if !m.State().Done {
		logf("warning: %s is a checkpoint of an unfinished run (stage %d, epoch %d)", ckpt, m.State().Stage+1, m.State().Epoch)
	}
	ds, err := tsimcne.OpenPacked(data, 0)
	if err != nil {
		return err
	}
	defer ds.Close()
	if err := checkShape(m, ds, data, f.otherShape); err != nil {
		return err
	}
	if !f.quiet && j.Writer() {
		m.Progress = stderr
	}
	if j.Size() > 1 {
		m.Dist = &tsimcne.Distributed{Comm: j.Comm}
	}
	t0 := time.Now()
	emb, err := m.Transform(ctx, ds, tsimcne.TransformOptions{Features: f.features, BatchSize: f.batch})
	if err != nil {
		return err
	}
	if !j.Writer() {
		return nil
	}
	secs := time.Since(t0).Seconds()

	cfg := m.Config()
	meta := map[string]string{
		"model":          cfg.Backbone,
		"stage_epochs":   joinInts(cfg.Epochs),
		"seed":           strconv.FormatUint(cfg.Seed, 10),
		"metric":         cfg.Metric.String(),
		"batch_size":     strconv.Itoa(cfg.BatchSize),
		"source_dataset": data,
		"source_kind":    ds.Reader().Schema().Source.Kind,
		"checkpoint":     ckpt,
		"created_by":     "embed",
		// Which dataset this map belongs to: view refuses a pack that
		// does not match.
		embedio.MetaSourceSamples:     strconv.Itoa(ds.Reader().Len()),
		embedio.MetaSourceFingerprint: embedio.SourceFingerprint(ds.Reader().Len(), ds.Reader().Schema().Classes, ds.Reader().Label, ds.Reader().Name),
	}
	note := ""
	if !f.noKNN && hasLabels(emb) && emb.N >= 14 {
		acc, testSize, err := knn.Score(emb.Y, emb.Dim, emb.Labels, knn.DefaultSplitSeed)
		if err != nil {
			return fmt.Errorf("kNN accuracy: %w", err)
		}
		meta["knn_accuracy"] = strconv.FormatFloat(acc, 'f', 4, 64)
		note = fmt.Sprintf("kNN accuracy %.3f (k=15, %d test points)", acc, testSize)
		fmt.Fprintf(stdout, "kNN accuracy of the map: %.4f (k = 15, stratified test split of %d of %d images)\n", acc, testSize, emb.N)
	}
	out := &embedio.Embedding{Labels: emb.Labels, Classes: emb.Classes, Coords: emb.Y, Dim: emb.Dim,
		Features: emb.Features, FeatureDim: emb.FeatureDim, Meta: meta}
	if err := embedio.WriteFile(f.out, out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "embedded %d images in %.1fs -> %s\n", emb.N, secs, f.out)
	if f.thumbsPath != "" {
		if err := thumbFigure(f.thumbsPath, ds.Reader(), emb, data); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "thumbnail figure -> %s\n", f.thumbsPath)
	}
	if f.plotPath != "" {
		if emb.Dim != 2 {
			logf("--plot: the map has %d dimensions; plotting needs 2", emb.Dim)
		} else {
			title := fmt.Sprintf("t-SimCNE map of %s (%d images)", filepath.Base(data), emb.N)
			if err := plot.Scatter(f.plotPath, emb.Y, emb.Labels, emb.Classes, plot.ScatterOptions{Title: title, Note: note}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "map -> %s\n", f.plotPath)
			if lossPath != "" {
				if err := tsimcne.LossPlot(runDir, cfg, lossPath); err != nil {
					logf("loss plot: %v", err)
				} else {
					fmt.Fprintf(stdout, "loss curve -> %s\n", lossPath)
				}
			}
		}
	}
	return nil
}

// thumbFigure draws the map with one image per occupied grid cell, the
// look of the t-SimCNE paper's figures.
func thumbFigure(path string, r *format.Reader, emb *tsimcne.Embedding, data string) error {
	if emb.Dim != 2 {
		return fmt.Errorf("--thumbs: the map has %d dimensions; the figure needs 2", emb.Dim)
	}
	thumb := func(i int) (image.Image, error) {
		s, err := r.Get(i)
		if err != nil {
			return nil, err
		}
		return sampleimg.Image(&s)
	}
	title := fmt.Sprintf("t-SimCNE map of %s (%d images)", filepath.Base(data), emb.N)
	return plot.ThumbnailFigure(path, emb.Y, emb.Labels, emb.Classes, thumb, plot.ThumbnailOptions{Title: title})
}

// checkArgs catches swapped arguments (a packed file given as the model, a
// run directory or checkpoint as the data) before their parsers would
// report something obscure about the wrong file.
func checkArgs(model, ckpt, data string) error {
	if isPacked(model) {
		return fmt.Errorf("RUN_DIR|CHECKPOINT %s is a packed dataset, not a model: the arguments are swapped? usage: embed RUN_DIR|CHECKPOINT DATA -o OUT", model)
	}
	if st, err := os.Stat(data); err == nil && st.IsDir() {
		if _, err := os.Stat(filepath.Join(data, tsimcne.CheckpointFile)); err == nil {
			return fmt.Errorf("DATA %s is a run directory, not a packed dataset: the arguments are swapped? usage: embed RUN_DIR|CHECKPOINT DATA -o OUT", data)
		}
		return fmt.Errorf("DATA %s is a directory; give the packed dataset file (see pack)", data)
	}
	if !isPacked(data) && isSafetensors(data) {
		return fmt.Errorf("DATA %s is a checkpoint, not a packed dataset: the arguments are swapped? usage: embed RUN_DIR|CHECKPOINT DATA -o OUT", data)
	}
	if _, err := os.Stat(ckpt); err != nil {
		if model != ckpt {
			return fmt.Errorf("RUN_DIR %s holds no %s: not a run directory, or its training has not written a checkpoint yet", model, tsimcne.CheckpointFile)
		}
		return fmt.Errorf("CHECKPOINT: %w", err)
	}
	return nil
}

// checkOutputs refuses outputs that would replace an input (the checkpoint,
// the data, the run's metrics) or each other.
func checkOutputs(f *flags, lossPath, ckpt, data, runDir string) error {
	inputs := []string{ckpt, data}
	if runDir != "" {
		inputs = append(inputs, filepath.Join(runDir, tsimcne.MetricsFile), filepath.Join(runDir, "config.json"))
	}
	outs := []struct{ what, path string }{{"-o", f.out}, {"--plot", f.plotPath}, {"--thumbs", f.thumbsPath}, {"the loss plot", lossPath}}
	for i, o := range outs {
		if o.path == "" {
			continue
		}
		if err := atomicfile.CheckNotInput(o.what, o.path, inputs...); err != nil {
			return err
		}
		for _, p := range outs[:i] {
			if p.path != "" && (filepath.Clean(p.path) == filepath.Clean(o.path) || atomicfile.SameFile(p.path, o.path)) {
				return fmt.Errorf("%s %s and %s %s are the same file; give each output its own name", p.what, p.path, o.what, o.path)
			}
		}
	}
	return nil
}

// checkShape refuses data whose images differ in size or channels from the
// data the model was trained on, unless allowed: the model would see
// resized or converted images it never learnt, with no word said.
func checkShape(m *tsimcne.Model, ds *tsimcne.Packed, data string, allow bool) error {
	trained := m.Data()
	if trained == nil || trained.Height == 0 {
		return nil // a checkpoint from before the data was recorded
	}
	id := tsimcne.Identify(ds)
	if id.Height == trained.Height && id.Width == trained.Width && id.Channels == trained.Channels {
		return nil
	}
	have := "images of different sizes"
	if id.Height > 0 {
		have = fmt.Sprintf("%dx%dx%d images", id.Width, id.Height, id.Channels)
	}
	msg := fmt.Sprintf("DATA %s holds %s; the model was trained on %dx%dx%d images (%s)", data, have,
		trained.Width, trained.Height, trained.Channels, trained.Path)
	if !allow {
		return fmt.Errorf("%s: add --allow-other-shape to embed it anyway (resized and converted)", msg)
	}
	fmt.Fprintf(os.Stderr, "warning: %s; embedding it resized and converted (--allow-other-shape)\n", msg)
	return nil
}

// isPacked reports whether path starts with the packed-file magic.
func isPacked(path string) bool {
	return hasPrefix(path, func(b []byte) bool { return string(b) == format.Magic })
}

// isSafetensors reports whether path looks like a safetensors file: a
// little-endian header length that fits, then '{'.
func isSafetensors(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 9)
	if _, err := io.ReadFull(f, b); err != nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && binary.LittleEndian.Uint64(b) < uint64(st.Size()) && b[8] == '{'
}

func hasPrefix(path string, ok func([]byte) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, len(format.Magic))
	if _, err := io.ReadFull(f, b); err != nil {
		return false
	}
	return ok(b)
}

func hasLabels(e *tsimcne.Embedding) bool {
	for _, l := range e.Labels {
		if l != e.Labels[0] {
			return true
		}
	}
	return false
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

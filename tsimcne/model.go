package tsimcne

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/engine"
	// The CUDA backend registers itself as engine.DeviceCUDA.
	_ "github.com/tsimcne/tsimcne-go/engine/cuda"
	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/internal/progress"
	"github.com/tsimcne/tsimcne-go/loader"
)

// State is how far training has got: the stage in progress (0-based), the
// epochs it has completed, and, for a run interrupted mid-epoch, the images
// of the current epoch already trained on with their running loss. Together
// with the seed it determines everything that follows, which is what makes a
// resumed run end with exactly the weights of an uninterrupted one.
type State struct {
	Stage   int     `json:"stage"`
	Epoch   int     `json:"epoch"`
	Pos     int     `json:"pos"`
	LossSum float64 `json:"loss_sum"`
	Steps   int     `json:"steps"`
	Done    bool    `json:"done"`
}

// EpochStats summarises one finished epoch.
type EpochStats struct {
	Stage        int     `json:"stage"` // 1-based
	Epoch        int     `json:"epoch"` // 0-based within the stage
	GlobalEpoch  int     `json:"global_epoch"`
	Loss         float64 `json:"loss"` // mean over the epoch's steps
	LR           float64 `json:"lr"`
	Images       int     `json:"images"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_s"`
}

// Model is a t-SimCNE model and its training state: the Go counterpart of
// the reference's TSimCNE.
type Model struct {
	cfg   Config
	be    engine.Backend
	net   *engine.Model
	tr    *engine.Trainer
	state State
	size  int
	feed  feeder // how batches reach the model during Fit
	// data identifies what the model was trained on (nil before Fit, or
	// for a checkpoint written before it was recorded).
	data *DataID

	// Progress receives a progress bar per epoch (nil = silent).
	Progress io.Writer
	// RunDir, when set, receives checkpoints (checkpoint.safetensors, the
	// latest; stageN.safetensors at each stage's end) and metrics.csv.
	RunDir string
	// OnEpoch, when set, is called after every epoch.
	OnEpoch func(EpochStats)
	// Logf receives one-line notices (backend in use, resumption).
	Logf func(format string, args ...any)
	// Dist, when set, makes Fit data-parallel across MPI ranks
	// (distributed.go).
	Dist *Distributed
	comm *timedComm // Dist.Comm, timed
}

// New returns an untrained model. The network is built by Fit, when the
// image size is known (or now, when Config.ImageSize is set).
func New(cfg Config) (*Model, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, Logf: func(string, ...any) {}}
	return m, nil
}

// Config returns the model's configuration, defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// State returns the training progress.
func (m *Model) State() State { return m.state }

// Net returns the engine model (nil before Fit or Load).
func (m *Model) Net() *engine.Model { return m.net }

// BackendName says which arithmetic runs the model.
func (m *Model) BackendName() string {
	if m.be == nil {
		return ""
	}
	return m.be.Name()
}

// backend opens the configured device's backend (once) and logs which one
// runs, its GEMM and why.
func (m *Model) backend() (engine.Backend, error) {
	if m.be != nil {
		return m.be, nil
	}
	be, fallback, err := engine.OpenBackend(m.cfg.Device, engine.DeviceOptions{Threads: m.cfg.Threads, Ordinal: gpuOrdinal()})
	if err != nil {
		return nil, err
	}
	if fallback != "" {
		m.Logf("device %s: %s", m.cfg.Device, fallback)
	}
	m.be = be
	m.Logf("backend: %s", be.Describe())
	return be, nil
}

// build creates the network for views of size×size.
func (m *Model) build(size int) error {
	if m.net != nil {
		if size != m.size {
			return fmt.Errorf("tsimcne: the model was built for %d×%d images, the data has %d×%d", m.size, m.size, size, size)
		}
		return nil
	}
	be, err := m.backend()
	if err != nil {
		return err
	}
	opts := engine.Options{Arch: m.cfg.Backbone, Seed: m.cfg.Seed, ImageSize: size, OutDim: m.cfg.PretrainOutDim,
		ColsLimit: be.ColsLimit()}
	net, err := engine.NewModel(be, opts)
	if err != nil {
		return err
	}
	m.net, m.tr, m.size = net, engine.NewTrainer(net, m.cfg.Metric), size
	return nil
}

// viewSize decides the side of the square views for d.
func (m *Model) viewSize(d Dataset) (int, error) {
	if m.cfg.ImageSize > 0 {
		return m.cfg.ImageSize, nil
	}
	if m.size > 0 {
		return m.size, nil
	}
	h, w, err := imageShape(d)
	if err != nil {
		return 0, err
	}
	if h != w {
		return 0, fmt.Errorf("tsimcne: images are %dx%d (WxH); views are square: set the image size", w, h)
	}
	return h, nil
}

func (m *Model) augmentConfig(size int) augment.Config {
	if m.cfg.Augment != nil {
		a := *m.cfg.Augment
		a.OutH, a.OutW = size, size
		return a
	}
	return augment.DefaultConfig(size, size)
}

// SetEpochs changes the epochs per stage of a model that has started
// training (a resumed run given more, or fewer, epochs). Stages already
// finished must keep theirs, the stage in progress must keep more than it
// has done, and the number of stages cannot change. The learning-rate
// schedule of the unfinished stages follows the new lengths.
func (m *Model) SetEpochs(epochs []int) error {
	c := m.cfg
	c.Epochs = append([]int(nil), epochs...)
	if err := c.Validate(); err != nil {
		return err
	}
	if len(epochs) != len(m.cfg.Epochs) {
		return fmt.Errorf("tsimcne: epochs %v: the run has %d stage(s); their number cannot change", epochs, len(m.cfg.Epochs))
	}
	if m.state.Done {
		return fmt.Errorf("tsimcne: epochs %v: the run is complete", epochs)
	}
	for s := 0; s < m.state.Stage; s++ {
		if epochs[s] != m.cfg.Epochs[s] {
			return fmt.Errorf("tsimcne: epochs %v: stage %d is finished with %d epochs; it cannot change", epochs, s+1, m.cfg.Epochs[s])
		}
	}
	if s := m.state.Stage; epochs[s] <= m.state.Epoch {
		return fmt.Errorf("tsimcne: epochs %v: stage %d has already trained %d epoch(s); give it more", epochs, s+1, m.state.Epoch)
	}
	m.cfg = c
	return nil
}

// Data returns the identity of the data the model was trained on (nil
// before Fit, and for checkpoints written before it was recorded).
func (m *Model) Data() *DataID { return m.data }

// Prepare checks that the model can train on d and builds its network: the
// view size, the data's identity (a model that has trained refuses other
// data, wrapping ErrOtherData), and that a batch fits in the training
// images. Fit calls it; calling it first finds bad settings before anything
// is written.
func (m *Model) Prepare(d Dataset) error {
	id := Identify(d)
	if m.data != nil && !m.data.Same(id) {
		return fmt.Errorf("%w: it was trained on %v; this is %v", ErrOtherData, m.data, id)
	}
	size, err := m.viewSize(d)
	if err != nil {
		return err
	}
	if err := m.build(size); err != nil {
		return err
	}
	n := d.Len()
	if m.cfg.TrainSubset > 0 && m.cfg.TrainSubset < n {
		n = m.cfg.TrainSubset
	}
	if m.cfg.BatchSize > n {
		return fmt.Errorf("tsimcne: batch size %d is larger than the %d training images: every step would see fewer images than the learning rate is scaled for; lower the batch size", m.cfg.BatchSize, n)
	}
	if m.data == nil {
		m.data = &id
	} else {
		m.data.Path = id.Path // the same data, perhaps moved
	}
	return nil
}

// Fit trains the model on d, continuing from its State (so a model loaded
// from a checkpoint resumes). When ctx is cancelled, Fit stops after the
// step in flight, writes a checkpoint to RunDir (if set) and returns
// ctx.Err(); Fit on the same model later continues where it stopped. A
// loss that turns NaN or infinite stops training with an error, before it
// reaches a checkpoint.
func (m *Model) Fit(ctx context.Context, d Dataset) error {
	if m.state.Done {
		return errors.New("tsimcne: the model is already trained (all stages done)")
	}
	if err := m.Prepare(d); err != nil {
		return err
	}
	size := m.size
	train := trainSubset(d, m.cfg.TrainSubset, m.cfg.Seed)
	lopt := loader.Options{
		BatchSize: m.cfg.BatchSize, Views: 2, Workers: m.cfg.Workers,
		Seed: m.cfg.Seed, Augment: m.augmentConfig(size),
		Order: m.cfg.loaderOrder(), Window: m.cfg.Window,
	}
	if err := m.setupDist(train, &lopt); err != nil {
		return err
	}
	feed, err := m.newFeeder(train, &lopt, 2)
	if err != nil {
		return err
	}
	ld, err := loader.New(train, lopt)
	if err != nil {
		feed.close()
		return err
	}
	defer ld.Close()
	defer feed.close() // before ld.Close: it hands the last slots back
	m.feed = feed
	if m.RunDir != "" {
		if err := os.MkdirAll(m.RunDir, 0o755); err != nil {
			return err
		}
		if err := m.trimMetrics(); err != nil {
			return err
		}
		// Temporary files of a process killed while writing a checkpoint.
		atomicfile.RemoveStaleDir(m.RunDir)
	}
	m.net.Reserve(2 * lopt.BatchSize)

	for m.state.Stage < m.cfg.Stages() {
		if m.stopAgreed(ctx) { // all ranks stop here together
			if err := ctx.Err(); err != nil {
				return err
			}
			return context.Canceled
		}
		s := m.state.Stage
		if m.cfg.Epochs[s] <= 0 {
			// Validate refuses these; a stage without epochs would never
			// advance.
			return fmt.Errorf("tsimcne: stage %d has %d epochs", s+1, m.cfg.Epochs[s])
		}
		if m.state.Epoch == 0 && m.state.Pos == 0 && s > 0 {
			if err := m.tr.StartStage(s+1, m.cfg.StageOutDim(s)); err != nil {
				return err
			}
		}
		table := m.cfg.LRTable(s)
		for m.state.Epoch < m.cfg.Epochs[s] {
			if err := m.epoch(ctx, ld, table[m.state.Epoch], train.Len()); err != nil {
				return err
			}
			stageEnd := m.state.Epoch == m.cfg.Epochs[s]
			if stageEnd {
				m.state.Stage, m.state.Epoch = s+1, 0
				m.state.Done = m.state.Stage == m.cfg.Stages()
				if err := m.checkpoint(fmt.Sprintf("stage%d.safetensors", s+1)); err != nil {
					return err
				}
				break
			}
			if m.cfg.CheckpointEvery > 0 && m.globalEpoch()%m.cfg.CheckpointEvery == 0 {
				if err := m.checkpoint(""); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (m *Model) globalEpoch() int {
	g := m.state.Epoch
	for s := 0; s < m.state.Stage && s < len(m.cfg.Epochs); s++ {
		g += m.cfg.Epochs[s]
	}
	return g
}

// epoch trains one epoch (or its rest, after a mid-epoch stop).
func (m *Model) epoch(ctx context.Context, ld *loader.Loader, lr float64, n int) error {
	st := &m.state
	global := m.globalEpoch()
	it, err := ld.Epoch(ctx, global, m.localPos(st.Pos))
	if err != nil {
		return err
	}
	defer it.Close()
	label := fmt.Sprintf("stage %d epoch %d/%d", st.Stage+1, st.Epoch+1, m.cfg.Epochs[st.Stage])
	bar := progress.New(m.Progress, label, int64(n), "img")
	bar.Set(int64(st.Pos), 0)
	start := time.Now()
	startPos := st.Pos
	// A loss that turns NaN or infinite stops the epoch before anything
	// reaches a checkpoint. On the GPU a step's loss arrives one step late,
	// so the error names the position reached, not the exact step.
	var diverged error
	account := func(loss float64) {
		if diverged != nil {
			return
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			diverged = fmt.Errorf("%w: stage %d epoch %d: the loss is %v by image %d of the epoch (learning rate %.3g); the last checkpoint is kept; try a lower learning rate",
				ErrDiverged, st.Stage+1, st.Epoch+1, loss, st.Pos, lr)
			return
		}
		st.LossSum += loss
		st.Steps++
		bar.SetExtra(fmt.Sprintf("loss %.4f lr %.3g", st.LossSum/float64(st.Steps), lr))
	}
	for {
		if m.stopAgreed(ctx) {
			bar.Finish()
			if err := m.feed.flush(account); err != nil {
				return err
			}
			if diverged != nil {
				return diverged
			}
			cause := ctx.Err()
			if cause == nil {
				cause = context.Canceled // another rank was interrupted
			}
			if err := m.checkpoint(""); err != nil {
				return fmt.Errorf("tsimcne: %w (and the checkpoint failed: %v)", cause, err)
			}
			return cause
		}
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				continue // the loop head saves and returns
			}
			return err
		}
		images := m.stepImages(b.N, st.Pos, n)
		err = m.feed.step(b, lr, account)
		st.Pos += images
		if err != nil {
			return err
		}
		if diverged != nil {
			bar.Finish()
			return diverged
		}
		bar.Set(int64(st.Pos), 0)
	}
	if err := m.feed.flush(account); err != nil {
		return err
	}
	if diverged != nil {
		bar.Finish()
		return diverged
	}
	bar.Finish()
	secs := time.Since(start).Seconds()
	es := EpochStats{Stage: st.Stage + 1, Epoch: st.Epoch, GlobalEpoch: global, LR: lr, Images: n, Seconds: secs}
	if st.Steps > 0 {
		es.Loss = st.LossSum / float64(st.Steps)
	}
	if secs > 0 {
		es.ImagesPerSec = float64(st.Pos-startPos) / secs
	}
	m.reportComm(st.Steps)
	st.Epoch++
	st.Pos, st.LossSum, st.Steps = 0, 0, 0
	if err := m.logMetrics(es); err != nil {
		return err
	}
	if m.OnEpoch != nil {
		m.OnEpoch(es)
	}
	return nil
}

// ErrDiverged is wrapped by Fit's error when the loss stops being finite.
var ErrDiverged = errors.New("tsimcne: training diverged")

// checkpointMeta is what a checkpoint stores besides the weights.
type checkpointMeta struct {
	Config Config  `json:"config"`
	State  State   `json:"state"`
	Data   *DataID `json:"data,omitempty"`
}

// Checkpoint file names in a run directory: the latest, and the one before
// it, kept so that a checkpoint damaged on disk is never the only one.
const (
	CheckpointFile     = "checkpoint.safetensors"
	PrevCheckpointFile = "checkpoint.prev.safetensors"
)

// checkpoint writes RunDir/checkpoint.safetensors and, when extra is set,
// a copy under that name. Without a RunDir it does nothing. The checkpoint
// it replaces becomes checkpoint.prev.safetensors if it verifies (so a
// damaged one never displaces a good one); each step is an atomic rename
// or link, so at every moment checkpoint.safetensors is a complete file.
func (m *Model) checkpoint(extra string) error {
	if m.RunDir == "" {
		return nil
	}
	// The stage file first: a run killed between the two resumes from the
	// older checkpoint and writes both again.
	if extra != "" {
		if err := m.Save(filepath.Join(m.RunDir, extra)); err != nil {
			return err
		}
	}
	cur := filepath.Join(m.RunDir, CheckpointFile)
	if err := rotate(cur, filepath.Join(m.RunDir, PrevCheckpointFile)); err != nil {
		m.Logf("warning: %v", err)
	}
	return m.Save(cur)
}

// Save writes the model, its optimiser state, its configuration and its
// training state to path (safetensors with PyTorch state_dict names; the
// write is atomic).
func (m *Model) Save(path string) error {
	if m.net == nil {
		return errors.New("tsimcne: save: the model has not been built (call Fit first)")
	}
	js, err := json.Marshal(checkpointMeta{Config: m.cfg, State: m.state, Data: m.data})
	if err != nil {
		return err
	}
	g := m.globalEpoch()
	return engine.SaveCheckpoint(path, m.net, m.tr.Opt, engine.CheckpointMeta{Epoch: g, Config: js})
}

// LoadOptions adjusts a loaded model's run-time settings.
type LoadOptions struct {
	Device  engine.Device // "" keeps the saved one
	Threads int           // 0 keeps the saved one
	Workers int           // 0 keeps the saved one
}

// Load reads a model saved by Save (or a run's checkpoint). Fit on it
// resumes training; Transform embeds. logf (nil = silent) hears which
// backend runs it.
func Load(path string, o LoadOptions, logf func(string, ...any)) (*Model, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// The run's configuration decides the backend (its thread count too:
	// reductions split by thread, so the same count reproduces the same
	// bits), so the checkpoint is read and its metadata decoded before the
	// weights go to a backend.
	ck, err := engine.ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	var cm checkpointMeta
	if err := json.Unmarshal(ck.Meta.Config, &cm); err != nil || len(cm.Config.Epochs) == 0 {
		return nil, fmt.Errorf("tsimcne: %s: not a tsimcne run checkpoint (no configuration in its metadata)", path)
	}
	m := &Model{Logf: logf, cfg: cm.Config.Defaults(), state: cm.State, data: cm.Data}
	if o.Device != "" {
		m.cfg.Device = o.Device
	}
	if o.Threads > 0 {
		m.cfg.Threads = o.Threads
	}
	if o.Workers > 0 {
		m.cfg.Workers = o.Workers
	}
	if err := m.cfg.validate(); err != nil {
		return nil, fmt.Errorf("tsimcne: %s: %w", path, err)
	}
	be, err := m.backend()
	if err != nil {
		return nil, err
	}
	net, opt, err := ck.Load(be, engine.Options{ColsLimit: be.ColsLimit()})
	if err != nil {
		return nil, err
	}
	m.net, m.size = net, net.Options().ImageSize
	m.tr = engine.NewTrainer(net, m.cfg.Metric)
	m.tr.Opt = opt
	return m, nil
}

// rotate makes prev a hard link to cur's file when cur verifies (through a
// temporary name renamed over prev, so prev is always whole). A missing cur
// is no error; a damaged one is reported and left out of the rotation.
func rotate(cur, prev string) error {
	if _, err := os.Stat(cur); err != nil {
		return nil
	}
	if _, _, err := safetensors.Read(cur); err != nil {
		return fmt.Errorf("tsimcne: not keeping %s as the previous checkpoint: %w", cur, err)
	}
	dir, base := filepath.Split(prev)
	tmp := filepath.Join(dir, "."+base+".link.tmp") // a leftover is removed as stale
	os.Remove(tmp)
	if err := os.Link(cur, tmp); err != nil {
		return fmt.Errorf("tsimcne: keep the previous checkpoint: %w", err)
	}
	if err := os.Rename(tmp, prev); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tsimcne: keep the previous checkpoint: %w", err)
	}
	return nil
}

package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
)

// CheckpointFormat names the layout written by SaveCheckpoint.
const CheckpointFormat = "tsimcne-go/1"

// momentumPrefix prefixes optimiser momentum tensors; PyTorch users drop
// these keys before load_state_dict.
const momentumPrefix = "optimizer.momentum."

// CheckpointMeta is the JSON metadata stored in a checkpoint's
// "__metadata__" under the key "tsimcne".
type CheckpointMeta struct {
	Format         string `json:"format"`
	Arch           string `json:"arch"`
	ImageSize      int    `json:"image_size"`
	OutDim         int    `json:"out_dim"`
	Stage          int    `json:"stage"`
	Epoch          int    `json:"epoch"`
	Seed           uint64 `json:"seed"`
	OptimizerSteps int    `json:"optimizer_steps"`
	// Config is the run's configuration, opaque to the engine.
	Config json.RawMessage `json:"config,omitempty"`
}

// toTorch converts a host copy of an engine tensor to PyTorch layout:
// convolution weights go from (out, kh, kw, in) to (out, in, kh, kw).
func toTorch(p *Param, v []float32) []float32 {
	if !p.conv {
		return v
	}
	oc, c, k := p.Shape[0], p.Shape[1], p.Shape[2]
	out := make([]float32, len(v))
	for o := 0; o < oc; o++ {
		for i := 0; i < c; i++ {
			for y := 0; y < k; y++ {
				for x := 0; x < k; x++ {
					out[((o*c+i)*k+y)*k+x] = v[((o*k+y)*k+x)*c+i]
				}
			}
		}
	}
	return out
}

// fromTorch is the inverse of toTorch.
func fromTorch(p *Param, v []float32) []float32 {
	if !p.conv {
		return v
	}
	oc, c, k := p.Shape[0], p.Shape[1], p.Shape[2]
	out := make([]float32, len(v))
	for o := 0; o < oc; o++ {
		for i := 0; i < c; i++ {
			for y := 0; y < k; y++ {
				for x := 0; x < k; x++ {
					out[((o*k+y)*k+x)*c+i] = v[((o*c+i)*k+y)*k+x]
				}
			}
		}
	}
	return out
}

func (m *Model) host(b Buf, n int) []float32 {
	v := make([]float32, n)
	m.be.Download(v, b)
	return v
}

// StateDict returns host copies of all weights and BatchNorm buffers with
// the names, shapes and layouts of the equivalent PyTorch module's
// state_dict (torchvision ResNet naming under "backbone.", the head as
// nn.Sequential under "head.").
func (m *Model) StateDict() map[string]safetensors.Tensor {
	out := map[string]safetensors.Tensor{}
	for _, p := range m.params {
		out[p.Name] = safetensors.F32(toTorch(p, m.host(p.Data, p.Size())), p.Shape...)
	}
	for _, l := range m.bns {
		out[l.name+".running_mean"] = safetensors.F32(m.host(l.runMean, l.c), l.c)
		out[l.name+".running_var"] = safetensors.F32(m.host(l.runVar, l.c), l.c)
		out[l.name+".num_batches_tracked"] = safetensors.I64([]int64{l.tracked})
	}
	return out
}

// GradDict returns host copies of all parameter gradients in PyTorch layout.
func (m *Model) GradDict() map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range m.params {
		out[p.Name] = toTorch(p, m.host(p.Grad, p.Size()))
	}
	return out
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// LoadStateDict copies PyTorch-layout tensors into the model. With strict,
// every model key must be present and no unknown key may appear (keys under
// "optimizer." are ignored), as PyTorch's load_state_dict(strict=True).
func (m *Model) LoadStateDict(t map[string]safetensors.Tensor, strict bool) error {
	used := map[string]bool{}
	var missing []string
	loadF := func(name string, shape []int, dst Buf, p *Param) error {
		v, ok := t[name]
		if !ok {
			missing = append(missing, name)
			return nil
		}
		used[name] = true
		if !sameShape(v.Shape, shape) {
			return fmt.Errorf("engine: %s has shape %v, model wants %v", name, v.Shape, shape)
		}
		f, err := v.Float32s()
		if err != nil {
			return fmt.Errorf("engine: %s: %w", name, err)
		}
		if p != nil {
			f = fromTorch(p, f)
		}
		m.be.Upload(dst, f)
		return nil
	}
	for _, p := range m.params {
		if err := loadF(p.Name, p.Shape, p.Data, p); err != nil {
			return err
		}
	}
	for _, l := range m.bns {
		if err := loadF(l.name+".running_mean", []int{l.c}, l.runMean, nil); err != nil {
			return err
		}
		if err := loadF(l.name+".running_var", []int{l.c}, l.runVar, nil); err != nil {
			return err
		}
		name := l.name + ".num_batches_tracked"
		if v, ok := t[name]; ok {
			used[name] = true
			iv, err := v.Int64s()
			if err != nil || len(iv) != 1 {
				return fmt.Errorf("engine: %s: want one int64: %v", name, err)
			}
			l.tracked = iv[0]
		} else {
			missing = append(missing, name)
		}
	}
	if !strict {
		return nil
	}
	var unexpected []string
	for k := range t {
		if !used[k] && !strings.HasPrefix(k, "optimizer.") {
			unexpected = append(unexpected, k)
		}
	}
	sort.Strings(unexpected)
	if len(missing) > 0 || len(unexpected) > 0 {
		return fmt.Errorf("engine: state dict does not match %s: missing %v, unexpected %v", m.arch.Name, missing, unexpected)
	}
	return nil
}

// SaveCheckpoint writes weights, BatchNorm statistics, the optimiser's
// momentum (if opt is non-nil) and meta to a safetensors file, atomically.
// meta's architecture fields are filled in from the model.
func SaveCheckpoint(path string, m *Model, opt *Optimizer, meta CheckpointMeta) error {
	t := m.StateDict()
	if opt != nil {
		for _, p := range m.params {
			if b, ok := opt.MomentumBuf(p); ok && p.Trainable {
				t[momentumPrefix+p.Name] = safetensors.F32(toTorch(p, m.host(b, p.Size())), p.Shape...)
			}
		}
		meta.OptimizerSteps = opt.Steps()
	}
	meta.Format = CheckpointFormat
	meta.Arch = m.arch.Name
	meta.ImageSize = m.opts.ImageSize
	meta.OutDim = m.outDim
	meta.Stage = m.stage
	meta.Seed = m.opts.Seed
	js, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("engine: checkpoint metadata: %w", err)
	}
	if err := safetensors.Write(path, t, map[string]string{"tsimcne": string(js), "format": "pt"}); err != nil {
		return fmt.Errorf("engine: save checkpoint: %w", err)
	}
	return nil
}

// checkFinite reports the first float tensor holding NaN or ±Inf (in
// name order): such weights come from a run that diverged, and every output
// computed from them would be NaN.
func checkFinite(t map[string]safetensors.Tensor) error {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := t[n]
		if v.DType != "F32" && v.DType != "F64" {
			continue
		}
		f, err := v.Float32s()
		if err != nil {
			return fmt.Errorf("tensor %s: %w", n, err) // wrapped by the caller
		}
		for i, x := range f {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("tensor %s holds %v at element %d: the weights are not finite (the run diverged; lower the learning rate and train again)", n, x, i)
			}
		}
	}
	return nil
}

// LoadCheckpoint rebuilds a model (architecture, stage, output size) and its
// optimiser from a checkpoint written by SaveCheckpoint. opts supplies
// run-time settings (ColsLimit); its architecture fields are ignored.
func LoadCheckpoint(path string, be Backend, opts Options) (*Model, *Optimizer, CheckpointMeta, error) {
	c, err := ReadCheckpoint(path)
	if err != nil {
		return nil, nil, CheckpointMeta{}, err
	}
	m, opt, err := c.Load(be, opts)
	return m, opt, c.Meta, err
}

// LoadCheckpointBytes is LoadCheckpoint of a file held in memory; name
// stands for its path in errors.
func LoadCheckpointBytes(name string, raw []byte, be Backend, opts Options) (*Model, *Optimizer, CheckpointMeta, error) {
	c, err := ParseCheckpoint(name, raw)
	if err != nil {
		return nil, nil, CheckpointMeta{}, err
	}
	m, opt, err := c.Load(be, opts)
	return m, opt, c.Meta, err
}

// Checkpoint is a checkpoint read and verified (checksum, finite weights,
// metadata) but not yet on a backend: a program reads its run settings in
// Meta, chooses the backend from them, then calls Load, reading the file
// once.
type Checkpoint struct {
	// Meta is the checkpoint's metadata.
	Meta CheckpointMeta
	name string
	t    map[string]safetensors.Tensor
}

// ReadCheckpoint reads and verifies a checkpoint written by SaveCheckpoint.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	t, md, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("engine: load checkpoint: %w", err)
	}
	return readCheckpoint(path, t, md)
}

// ParseCheckpoint is ReadCheckpoint of a file held in memory; name stands
// for its path in errors.
func ParseCheckpoint(name string, raw []byte) (*Checkpoint, error) {
	t, md, err := safetensors.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("engine: load checkpoint %s: %w", name, err)
	}
	return readCheckpoint(name, t, md)
}

func readCheckpoint(path string, t map[string]safetensors.Tensor, md map[string]string) (*Checkpoint, error) {
	var meta CheckpointMeta
	if _, ok := md[safetensors.ChecksumKey]; !ok {
		return nil, fmt.Errorf("engine: load checkpoint %s: %w: no %s checksum in its metadata (damaged, or written by a version before checksums)", path, safetensors.ErrDamaged, safetensors.ChecksumKey)
	}
	if err := checkFinite(t); err != nil {
		return nil, fmt.Errorf("engine: load checkpoint %s: %w", path, err)
	}
	js, ok := md["tsimcne"]
	if !ok {
		return nil, fmt.Errorf("engine: load checkpoint %s: no tsimcne metadata (use Model.LoadStateDict for plain state dicts)", path)
	}
	if err := json.Unmarshal([]byte(js), &meta); err != nil {
		return nil, fmt.Errorf("engine: load checkpoint %s: metadata: %w", path, err)
	}
	if meta.Format != CheckpointFormat {
		return nil, fmt.Errorf("engine: load checkpoint %s: format %q, want %q", path, meta.Format, CheckpointFormat)
	}
	return &Checkpoint{Meta: meta, name: path, t: t}, nil
}

// Load builds the checkpoint's model and optimiser on be. opts supplies
// run-time settings (ColsLimit); its architecture fields are ignored.
func (c *Checkpoint) Load(be Backend, opts Options) (*Model, *Optimizer, error) {
	path, t, meta := c.name, c.t, c.Meta
	opts.Arch, opts.ImageSize, opts.OutDim, opts.Seed = meta.Arch, meta.ImageSize, meta.OutDim, meta.Seed
	m, err := NewModel(be, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: load checkpoint %s: %w", path, err)
	}
	if err := m.LoadStateDict(t, true); err != nil {
		return nil, nil, fmt.Errorf("engine: load checkpoint %s: %w", path, err)
	}
	switch meta.Stage {
	case 1, 3:
		m.stage = meta.Stage
	case 2:
		for _, p := range m.params {
			p.Trainable = p == m.fc2.w || p == m.fc2.b
		}
		m.stage = 2
	default:
		return nil, nil, fmt.Errorf("engine: load checkpoint %s: stage %d", path, meta.Stage)
	}
	opt := NewOptimizer(be)
	for _, p := range m.params {
		v, ok := t[momentumPrefix+p.Name]
		if !ok {
			continue
		}
		f, err := v.Float32s()
		if err == nil && !sameShape(v.Shape, p.Shape) {
			err = fmt.Errorf("shape %v, want %v", v.Shape, p.Shape)
		}
		if err == nil {
			err = opt.SetMomentum(p, fromTorch(p, f), meta.OptimizerSteps)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("engine: load checkpoint %s: momentum of %s: %w", path, p.Name, err)
		}
	}
	return m, opt, nil
}

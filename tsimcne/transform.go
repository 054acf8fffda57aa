package tsimcne

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tsimcne/tsimcne-go/internal/progress"
	"github.com/tsimcne/tsimcne-go/loader"
)

// Embedding is the result of Transform, in dataset order.
type Embedding struct {
	N   int
	Dim int
	// Y holds N×Dim coordinates, row-major: image i is Y[i*Dim:(i+1)*Dim].
	Y []float32
	// Labels[i] is image i's label.
	Labels []int32
	// Classes names the labels, when the dataset does.
	Classes []string
	// Features holds N×FeatureDim backbone features when asked for.
	Features   []float32
	FeatureDim int
}

// TransformOptions adjusts Transform.
type TransformOptions struct {
	// Features also returns the backbone features h (512-D for the default
	// backbone).
	Features bool
	// BatchSize is images per forward pass; 0 = twice the training batch
	// (no backward pass needs memory).
	BatchSize int
}

// Transform embeds every image of d, in dataset order, with no
// augmentation and BatchNorm in evaluation mode (running statistics).
func (m *Model) Transform(ctx context.Context, d Dataset, o TransformOptions) (*Embedding, error) {
	if m.net == nil {
		return nil, errors.New("tsimcne: transform: the model is not trained (call Fit or Load first)")
	}
	size, err := m.viewSize(d)
	if err != nil {
		return nil, err
	}
	if size != m.size {
		return nil, fmt.Errorf("tsimcne: transform: the model takes %d×%d images, the data gives %d×%d", m.size, m.size, size, size)
	}
	bs := o.BatchSize
	if bs <= 0 {
		bs = 2 * m.cfg.BatchSize
	}
	lopt := loader.Options{
		BatchSize: bs, Views: 1, Workers: m.cfg.Workers, Seed: m.cfg.Seed,
		Order: loader.Sequential, NoAugment: true, Augment: m.augmentConfig(size),
	}
	rank, ranks := m.ranks()
	if ranks > 1 {
		// Each rank embeds its contiguous block of the dataset.
		lopt.Rank, lopt.World = rank, ranks
	}
	pipe, err := m.embedPipeline(d, &lopt)
	if err != nil {
		return nil, err
	}
	if pipe != nil {
		defer pipe.Close()
	}
	ld, err := loader.New(d, lopt)
	if err != nil {
		return nil, err
	}
	defer ld.Close()
	n := d.Len()
	e := &Embedding{N: n, Dim: m.net.OutDim(), Labels: make([]int32, n), Classes: classesOf(d)}
	e.Y = make([]float32, n*e.Dim)
	if o.Features {
		e.FeatureDim = m.net.FeatureDim()
		e.Features = make([]float32, n*e.FeatureDim)
	}
	it, err := ld.Epoch(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	bar := progress.New(m.Progress, "embed", int64(n), "img")
	z := make([]float32, bs*e.Dim)
	var h []float32
	if o.Features {
		h = make([]float32, bs*e.FeatureDim)
	}
	done := 0
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rows := b.Views * b.N
		if err := m.forwardBatch(pipe, b); err != nil {
			b.Release()
			return nil, err
		}
		m.net.Z(z, rows)
		if o.Features {
			m.net.H(h, rows)
		}
		for r := 0; r < b.N; r++ {
			i := int(b.Indices[r])
			e.Labels[i] = b.Labels[r]
			copy(e.Y[i*e.Dim:(i+1)*e.Dim], z[r*e.Dim:(r+1)*e.Dim])
			if o.Features {
				copy(e.Features[i*e.FeatureDim:(i+1)*e.FeatureDim], h[r*e.FeatureDim:(r+1)*e.FeatureDim])
			}
		}
		done += b.N
		b.Release()
		bar.Set(int64(done), 0)
	}
	bar.Finish()
	if ranks > 1 {
		done = m.gatherEmbedding(e, done)
	}
	if done != n {
		return nil, fmt.Errorf("tsimcne: transform: embedded %d of %d images", done, n)
	}
	bad, first := 0, -1
	for i := range n {
		for _, v := range e.Y[i*e.Dim : (i+1)*e.Dim] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				if first < 0 {
					first = i
				}
				bad++
				break
			}
		}
	}
	if bad > 0 {
		return nil, fmt.Errorf("tsimcne: transform: %d of %d images map to NaN or infinite coordinates (the first is image %d): the model's outputs are not finite", bad, n, first)
	}
	return e, nil
}

// FitTransform trains on d, then embeds it.
func (m *Model) FitTransform(ctx context.Context, d Dataset, o TransformOptions) (*Embedding, error) {
	if err := m.Fit(ctx, d); err != nil {
		return nil, err
	}
	return m.Transform(ctx, d, o)
}

package engine

import (
	"fmt"
	"math"
)

// SGD hyper-parameters of t-SimCNE (docs/ALGORITHM.md, "Optimiser").
const (
	DefaultMomentum    = 0.9
	DefaultWeightDecay = 5e-4
	DefaultClip        = 4
)

// Optimizer is SGD with momentum 0.9, weight decay 5e-4 and element-wise
// gradient clamping to ±4, as t-SimCNE trains. Frozen parameters are skipped
// entirely (no decay, no momentum).
type Optimizer struct {
	Momentum, WeightDecay, Clip float32
	be                          Backend
	bufs                        map[*Param]Buf // p.Size() each, p's momentum
	steps                       int
}

// NewOptimizer returns a fresh optimiser (zero momentum) with t-SimCNE's
// hyper-parameters.
func NewOptimizer(be Backend) *Optimizer {
	return &Optimizer{Momentum: DefaultMomentum, WeightDecay: DefaultWeightDecay, Clip: DefaultClip,
		be: be, bufs: map[*Param]Buf{}}
}

// Steps is the number of updates since the optimiser was created (a new
// stage starts a new one: Trainer.StartStage).
func (o *Optimizer) Steps() int { return o.steps }

// Momentum returns the momentum buffer of p, allocating it on first use.
func (o *Optimizer) momentum(p *Param) Buf {
	b, ok := o.bufs[p]
	if !ok {
		b = o.be.Alloc(p.Size())
		o.bufs[p] = b
	}
	return b
}

// MomentumBuf exposes p's momentum buffer (for checkpoints and tests); ok is
// false when p has not been stepped.
func (o *Optimizer) MomentumBuf(p *Param) (Buf, bool) {
	b, ok := o.bufs[p]
	return b, ok
}

// SetMomentum installs a momentum buffer loaded from a checkpoint and
// marks the optimiser as already started.
func (o *Optimizer) SetMomentum(p *Param, v []float32, steps int) error {
	if len(v) != p.Size() {
		return fmt.Errorf("engine: momentum for %s has %d values, want %d", p.Name, len(v), p.Size())
	}
	o.be.Upload(o.momentum(p), v)
	o.steps = steps
	return nil
}

// Step updates every trainable parameter from its gradient with learning rate lr.
func (o *Optimizer) Step(params []*Param, lr float64) {
	args := SGDArgs{LR: float32(lr), Momentum: o.Momentum, WeightDecay: o.WeightDecay, Clip: o.Clip,
		First: o.steps == 0}
	for _, p := range params {
		if !p.Trainable {
			continue
		}
		o.be.SGD(p.Data, p.Grad, o.momentum(p), p.Size(), args)
	}
	o.steps++
}

// BaseLR is t-SimCNE's batch-size-scaled learning rate 0.03·batch/256, where
// batch counts images (not views).
func BaseLR(batchImages int) float64 { return 0.03 * float64(batchImages) / 256 }

// LRTable is the per-epoch learning rate of one stage of n epochs with w
// warm-up epochs: linspace(0, base, w) followed by base·½·(1+cos(πk/D)) for
// k = 0…D−1, D = n+1−w. Epoch e uses table[e]. With n < w the table is the
// warm-up alone (padded to n entries if needed).
func LRTable(n, w int, base float64) []float64 {
	if n < 0 {
		n = 0
	}
	if w < 0 {
		w = 0
	}
	t := make([]float64, 0, max(n+1, w))
	for i := 0; i < w; i++ {
		if w == 1 {
			t = append(t, 0)
		} else {
			t = append(t, base*float64(i)/float64(w-1))
		}
	}
	d := n + 1 - w
	for k := 0; k < d; k++ {
		t = append(t, base*0.5*(1+math.Cos(math.Pi*float64(k)/float64(d))))
	}
	for len(t) < n {
		t = append(t, base)
	}
	return t
}

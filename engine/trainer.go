package engine

import "fmt"

// Trainer runs t-SimCNE training steps: forward of both views in one batch,
// the loss, backward, and the SGD update.
type Trainer struct {
	Model *Model
	Opt   *Optimizer
	// Metric is the loss's similarity; the zero Metric is euclidean.
	Metric Metric
	// Dist, when set with more than one rank, makes every step
	// data-parallel: the loss spans the views of all ranks and the
	// gradients are summed across them before the update (dist.go).
	Dist Collective
	// HostAlloc, when set, allocates the host staging buffer of the
	// gradient all-reduce (a GPU backend's pinned memory, so the copies
	// from and to the device are direct); nil uses the Go heap.
	HostAlloc func(n int) []float32
	dist      distState
}

// NewTrainer pairs a model with a fresh optimiser.
func NewTrainer(m *Model, metric Metric) *Trainer {
	return &Trainer{Model: m, Opt: NewOptimizer(m.Backend()), Metric: metric}
}

// Step trains on one batch of n views (NHWC; view 1 of all images, then
// view 2 of all images, so rows i and i+n/2 are positives) at learning rate
// lr and returns the loss before the update.
func (t *Trainer) Step(x []float32, n int, lr float64) (float64, error) {
	if err := t.Model.Forward(x, n, true); err != nil {
		return 0, err
	}
	wait, err := t.finish(n, lr)
	if err != nil {
		return 0, err
	}
	l, err := wait.Wait()
	if err != nil {
		return 0, err
	}
	return l, nil
}

// StepBuf is Step on views already on the backend (ForwardBuf). On a
// backend that computes the loss itself (DeviceLoss) it only queues the
// step and returns at once: the result's Wait waits for the loss, so
// a caller can queue the next step first and keep the device busy.
func (t *Trainer) StepBuf(x Buf, n int, lr float64) (PendingLoss, error) {
	if err := t.Model.ForwardBuf(x, n, true); err != nil {
		return nil, err
	}
	return t.finish(n, lr)
}

// finish runs the loss, the backward pass and the update of the last
// Forward.
func (t *Trainer) finish(n int, lr float64) (PendingLoss, error) {
	m := t.Model
	lossT, allreduceT, sgdT := m.timer("loss"), m.timer("allreduce"), m.timer("sgd")
	t0 := lossT.start()
	if err := t.Metric.check(); err != nil {
		return nil, err
	}
	distributed := t.Dist != nil && t.Dist.Size() > 1
	var wait PendingLoss
	var err error
	if distributed {
		wait, err = t.distLoss(n)
	} else {
		wait, err = m.queueLoss(t.Metric, n)
	}
	if err != nil {
		return nil, err // prefixed by the engine or the backend
	}
	lossT.stop(t0)
	m.backward(n)
	if distributed {
		t0 = allreduceT.start()
		t.allreduceGrads()
		allreduceT.stop(t0)
	}
	t0 = sgdT.start()
	t.Opt.Step(m.Params(), lr)
	sgdT.stop(t0)
	return wait, nil
}

// StartStage configures the model for stage 2 (new 2-D output layer, all
// else frozen; outDim is its size) or stage 3 (all trainable), and resets
// the optimiser's momentum as docs/ALGORITHM.md ("Training stages") requires.
func (t *Trainer) StartStage(stage, outDim int) error {
	switch stage {
	case 1:
	case 2:
		if err := t.Model.SetStage2(outDim); err != nil {
			return err
		}
	case 3:
		t.Model.SetStage3()
	default:
		return fmt.Errorf("engine: no stage %d (want 1, 2 or 3)", stage)
	}
	// The old momentum buffers belong to replaced or frozen parameters.
	t.Opt = NewOptimizer(t.Model.Backend())
	return nil
}

package tsimcne

import (
	"fmt"

	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/loader"
)

// feeder runs training steps on loader batches: on the host backend from
// float views, or through the GPU pipeline.
type feeder interface {
	// step trains on b, releasing it, and reports the loss of each step
	// that has finished through done (the GPU reports a step's loss one
	// step later, so that waiting for it never leaves the device idle).
	step(b *loader.Batch, lr float64, done func(loss float64)) error
	// flush waits for every queued step and reports its loss.
	flush(done func(loss float64)) error
	close() error
}

// hostFeeder: the loader augments on the CPU, Step uploads the views.
type hostFeeder struct{ tr *engine.Trainer }

func (f hostFeeder) step(b *loader.Batch, lr float64, done func(float64)) error {
	loss, err := f.tr.Step(b.X, b.Views*b.N, lr)
	b.Release()
	if err != nil {
		return err
	}
	done(loss)
	return nil
}

func (hostFeeder) flush(func(float64)) error { return nil }
func (hostFeeder) close() error              { return nil }

// deviceFeeder: uint8 regions and Params go to the GPU, which augments and
// trains; the loss of step k is collected after step k+1 is queued.
type deviceFeeder struct {
	tr      *engine.Trainer
	pipe    engine.ViewPipeline
	pending engine.PendingLoss
}

func (f *deviceFeeder) step(b *loader.Batch, lr float64, done func(float64)) error {
	rows := b.Views * b.N
	x, err := f.pipe.Submit(b.X8, b.Params, b.N, b.Release)
	if err != nil {
		b.Release()
		return err
	}
	pl, err := f.tr.StepBuf(x, rows, lr)
	if err != nil {
		return err
	}
	if err := f.pipe.Consumed(); err != nil {
		return err
	}
	if err := f.flush(done); err != nil {
		return err
	}
	f.pending = pl
	// The previous step has run, so its batch was copied: make sure its
	// slot is back with the loader before the loop asks for the next one.
	return f.pipe.WaitReleased(1)
}

func (f *deviceFeeder) flush(done func(float64)) error {
	if f.pending == nil {
		return nil
	}
	l, err := f.pending.Wait()
	f.pending = nil
	if err != nil {
		return err
	}
	done(l)
	return nil
}

func (f *deviceFeeder) close() error { return f.pipe.Close() }

// newFeeder picks how batches reach the model and adjusts the loader's
// options to it: on a backend that augments on the device
// (engine.ViewAugmenter) the GPU pipeline (loader Output = Source8 into
// pinned memory), unless the augmentation rotates or the images have no
// common size, which keep the CPU augmentation.
func (m *Model) newFeeder(d Dataset, lo *loader.Options, views int) (feeder, error) {
	be, ok := m.be.(engine.ViewAugmenter)
	if !ok {
		return hostFeeder{m.tr}, nil
	}
	if lo.Augment.RotationDeg > 0 && !lo.NoAugment {
		m.Logf("data pipeline: CPU augmentation (the GPU kernels do not rotate), float views uploaded")
		return hostFeeder{m.tr}, nil
	}
	h, w, err := imageShape(d)
	if err != nil {
		m.Logf("data pipeline: CPU augmentation (%v), float views uploaded", err)
		return hostFeeder{m.tr}, nil
	}
	pipe, err := be.NewViewPipeline(engine.ViewPipelineOptions{Augment: lo.Augment, SrcH: h, SrcW: w, Images: lo.BatchSize, Views: views})
	if err != nil {
		return nil, fmt.Errorf("tsimcne: GPU data pipeline: %w", err)
	}
	lo.Output, lo.SourceH, lo.SourceW, lo.Allocator = loader.Source8, h, w, be.PinnedAllocator()
	m.Logf("data pipeline: GPU (uint8 %dx%d images in pinned slots, augmentation and loss on the device, 2 batches in flight)", w, h)
	return &deviceFeeder{tr: m.tr, pipe: pipe}, nil
}

// embedPipeline is newFeeder for Transform: the GPU pipeline with one
// unaugmented view per image (nil on the host, or when the images have no
// common size).
func (m *Model) embedPipeline(d Dataset, lo *loader.Options) (engine.ViewPipeline, error) {
	be, ok := m.be.(engine.ViewAugmenter)
	if !ok {
		return nil, nil
	}
	h, w, err := imageShape(d)
	if err != nil {
		m.Logf("data pipeline: resizing on the CPU (%v), float images uploaded", err)
		return nil, nil
	}
	cfg := lo.Augment
	cfg.RotationDeg = 0 // unaugmented views: the rotation setting is unused
	pipe, err := be.NewViewPipeline(engine.ViewPipelineOptions{Augment: cfg, SrcH: h, SrcW: w, Images: lo.BatchSize, Views: 1})
	if err != nil {
		return nil, fmt.Errorf("tsimcne: GPU data pipeline: %w", err)
	}
	lo.Output, lo.SourceH, lo.SourceW, lo.Allocator = loader.Source8, h, w, be.PinnedAllocator()
	return pipe, nil
}

// forwardBatch runs b's images through the network for Transform, from
// the GPU pipeline when there is one. b stays the caller's to release.
func (m *Model) forwardBatch(pipe engine.ViewPipeline, b *loader.Batch) error {
	rows := b.Views * b.N
	if pipe == nil {
		return m.net.Forward(b.X, rows, false)
	}
	x, err := pipe.Submit(b.X8, b.Params, b.N, nil)
	if err != nil {
		return err
	}
	if err := m.net.ForwardBuf(x, rows, false); err != nil {
		return err
	}
	return pipe.Consumed()
}

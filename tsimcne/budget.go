package tsimcne

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// TimePlan is the schedule PlanTime chose for a time budget: the epochs
// (and warm-up epochs) per stage that the measured speed fits into the
// budget, and the measurements behind them. A run trained with
// Config.Epochs = Epochs and Config.Warmup = Warmup (train --epochs …
// --warmup …) is the same run, bit for bit: the measurement trains a
// separate throwaway model, so the planned run starts from the same state
// as one given its epochs directly.
type TimePlan struct {
	Budget time.Duration `json:"-"`
	// BudgetText is Budget as given (for config.json).
	BudgetText string `json:"budget"`
	// Epochs and Warmup are the planned schedule, stage by stage.
	Epochs []int `json:"epochs"`
	Warmup []int `json:"warmup"`
	// Base is the schedule whose proportions the plan keeps.
	Base []int `json:"base_epochs"`
	// ImagesPerSec is the measured training speed of each stage (stages
	// train different layers and so run at different speeds).
	ImagesPerSec []float64 `json:"images_per_s"`
	// ProbeSeconds is the time the measurement took (part of the budget).
	ProbeSeconds float64 `json:"probe_seconds"`
	// PlannedSeconds is the training time the plan predicts.
	PlannedSeconds float64 `json:"planned_seconds"`
}

// probeSteps is the number of steps each measured epoch of the probe
// takes. Each stage trains two such epochs and only the second is timed:
// the first builds buffers and fills the loader's pipeline.
const probeSteps = 6

// budgetShare is the part of the budget left after the measurement that
// the plan fills: epochs also log, checkpoint and draw a progress bar, and
// a budget is a limit, so the plan stays a little under it.
const budgetShare = 0.97

// PlanTime chooses the run's epochs from a training-time budget: it
// measures the speed of each stage on a throwaway copy of the model (the
// same network, batch, backend and data pipeline, a few steps on a few
// batches of d), then scales the configured epochs by the largest factor
// whose predicted training time, with the measurement, fits in budget.
// The stage proportions are kept (each stage gets at least one epoch);
// explicit warm-up epochs are scaled with their stage. The plan replaces
// the model's epochs, so call it after Prepare and before Fit, on a model
// that has not trained.
func (m *Model) PlanTime(ctx context.Context, d Dataset, budget time.Duration) (TimePlan, error) {
	if m.state != (State{}) {
		return TimePlan{}, errors.New("tsimcne: a time budget plans a new run; this model has started training")
	}
	if budget <= 0 {
		return TimePlan{}, fmt.Errorf("tsimcne: time budget %v: want a positive duration", budget)
	}
	if err := m.Prepare(d); err != nil {
		return TimePlan{}, err
	}
	start := time.Now()
	ips, err := m.measureStages(ctx, d)
	if err != nil {
		return TimePlan{}, fmt.Errorf("tsimcne: measuring the training speed: %w", err)
	}
	probe := time.Since(start)
	n := d.Len()
	if m.cfg.TrainSubset > 0 && m.cfg.TrainSubset < n {
		n = m.cfg.TrainSubset
	}
	epochSecs := make([]float64, len(ips))
	for s, v := range ips {
		epochSecs[s] = float64(n) / v
	}
	left := budgetShare * (budget - probe).Seconds()
	epochs, secs, ok := scaleEpochs(m.cfg.Epochs, epochSecs, left)
	if !ok {
		return TimePlan{}, fmt.Errorf("tsimcne: time budget %v: one epoch per stage takes about %s at the measured speed (%s images/s per stage; measuring took %.1fs); give a longer --time or train on fewer images (--train-subset)",
			budget, fmtSeconds(secs+probe.Seconds()), fmtRates(ips), probe.Seconds())
	}
	plan := TimePlan{
		Budget: budget, BudgetText: budget.String(), Epochs: epochs, Base: append([]int(nil), m.cfg.Epochs...),
		ImagesPerSec: ips, ProbeSeconds: probe.Seconds(), PlannedSeconds: secs,
	}
	for s := range epochs {
		w := m.cfg.StageWarmup(s)
		if len(m.cfg.Warmup) > 0 {
			// Scaled with its stage; a stage keeps at least one epoch at
			// the full rate.
			f := float64(epochs[s]) / float64(m.cfg.Epochs[s])
			w = min(int(math.Round(f*float64(w))), epochs[s]-1)
		} else {
			// The automatic rule, applied to the new length.
			c := m.cfg
			c.Epochs = epochs
			w = c.StageWarmup(s)
		}
		plan.Warmup = append(plan.Warmup, w)
	}
	c := m.cfg
	c.Epochs, c.Warmup = plan.Epochs, plan.Warmup
	if err := c.Validate(); err != nil {
		return TimePlan{}, fmt.Errorf("tsimcne: time budget %v: the planned schedule %v: %w", budget, plan.Epochs, err)
	}
	m.cfg = c
	return plan, nil
}

// scaleEpochs returns max(1, round(f·base[s])) epochs per stage for the
// largest factor f whose total time Σ epochs[s]·epochSecs[s] fits in
// left seconds, with that time; ok is false when even one epoch per stage
// does not fit (secs is then that minimum's time).
func scaleEpochs(base []int, epochSecs []float64, left float64) (epochs []int, secs float64, ok bool) {
	at := func(f float64) ([]int, float64) {
		e := make([]int, len(base))
		t := 0.0
		for s, b := range base {
			e[s] = max(1, int(math.Round(f*float64(b))))
			t += float64(e[s]) * epochSecs[s]
		}
		return e, t
	}
	_, minSecs := at(0)
	if minSecs > left {
		return nil, minSecs, false
	}
	// The total grows with f in steps; bisect for the largest f that fits.
	lo, hi := 0.0, 1.0
	for {
		if _, t := at(hi); t > left {
			break
		}
		lo, hi = hi, 2*hi
		if hi > 1e9 {
			break
		}
	}
	for range 60 {
		mid := (lo + hi) / 2
		if _, t := at(mid); t <= left {
			lo = mid
		} else {
			hi = mid
		}
	}
	epochs, secs = at(lo) // lo always fits: it starts at 0, checked above
	return epochs, secs, true
}

// measureStages trains a throwaway model of the same configuration for
// two short epochs per stage on probeSteps batches of d and returns each
// stage's images per second over its second epoch.
func (m *Model) measureStages(ctx context.Context, d Dataset) ([]float64, error) {
	c := m.cfg
	c.Epochs = make([]int, len(m.cfg.Epochs))
	for s := range c.Epochs {
		c.Epochs[s] = 2
	}
	c.Warmup = nil
	c.CheckpointEvery = 0
	c.TrainSubset = min(probeSteps*c.BatchSize, d.Len())
	probe, err := New(c)
	if err != nil {
		return nil, err
	}
	// The same backend (one GPU context, one thread pool).
	probe.be = m.be
	probe.Logf = func(string, ...any) {}
	ips := make([]float64, len(c.Epochs))
	probe.OnEpoch = func(es EpochStats) {
		if es.Epoch == 1 {
			ips[es.Stage-1] = es.ImagesPerSec
		}
	}
	if err := probe.Fit(ctx, d); err != nil {
		return nil, err
	}
	for s, v := range ips {
		if !(v > 0) {
			return nil, fmt.Errorf("stage %d: no speed measured", s+1)
		}
	}
	return ips, nil
}

func fmtSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func fmtRates(ips []float64) string {
	out := ""
	for i, v := range ips {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%.0f", v)
	}
	return out
}

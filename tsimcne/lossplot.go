package tsimcne

import (
	"fmt"
	"math"

	"github.com/tsimcne/tsimcne-go/plot"
)

// LossPlot draws the loss and learning-rate curves of the metrics log in
// runDir as a PNG at path, with the stage boundaries of cfg marked.
func LossPlot(runDir string, cfg Config, path string) error {
	ms, err := ReadMetrics(runDir)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("tsimcne: %s: the metrics log is empty", runDir)
	}
	loss := plot.Series{Name: "loss (epoch mean)", Panel: 0}
	lr := plot.Series{Name: "learning rate", Panel: 1}
	for i, e := range ms {
		x := float64(e.GlobalEpoch + 1)
		if i > 0 && e.Stage != ms[i-1].Stage {
			// The loss changes meaning at a stage switch (128-D to 2-D):
			// break the lines there rather than draw a jump.
			nan := math.NaN()
			loss.X, loss.Y = append(loss.X, x-0.5), append(loss.Y, nan)
			lr.X, lr.Y = append(lr.X, x-0.5), append(lr.Y, nan)
		}
		loss.X, loss.Y = append(loss.X, x), append(loss.Y, e.Loss)
		lr.X, lr.Y = append(lr.X, x), append(lr.Y, e.LR)
	}
	var ends []float64
	sum := 0
	for _, e := range cfg.Epochs[:len(cfg.Epochs)-1] {
		sum += e
		ends = append(ends, float64(sum)+0.5)
	}
	return plot.LossCurve(path, []plot.Series{loss, lr}, plot.LossOptions{
		Title: "t-SimCNE training", StageEnds: ends,
		StageNames: []string{"stage 1 (128-D)", "stage 2 (2-D output layer)", "stage 3 (all layers)"},
	})
}

package tsimcne

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// MetricsFile is the per-epoch log in a run directory, CSV with a header
// line so that pandas, polars, R and a spreadsheet read it as it is.
const MetricsFile = "metrics.csv"

const metricsHeader = "stage,epoch,global_epoch,loss,lr,images,seconds,images_per_s"

func (m *Model) logMetrics(es EpochStats) error {
	if m.RunDir == "" {
		return nil
	}
	path := filepath.Join(m.RunDir, MetricsFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		fmt.Fprintln(f, metricsHeader)
	}
	_, err = fmt.Fprintf(f, "%d,%d,%d,%.6f,%.8g,%d,%.3f,%.1f\n", es.Stage, es.Epoch, es.GlobalEpoch, es.Loss, es.LR, es.Images, es.Seconds, es.ImagesPerSec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tsimcne: %s: %w", path, err)
	}
	return nil
}

// trimMetrics drops log lines of epochs at or after the current global
// epoch: a run killed after logging an epoch but before checkpointing it
// repeats that epoch on resume, and must not log it twice.
func (m *Model) trimMetrics() error {
	path := filepath.Join(m.RunDir, MetricsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	g := m.globalEpoch()
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Split(line, ",")
		if len(f) >= 3 {
			if ge, err := strconv.Atoi(f[2]); err == nil && ge >= g {
				continue
			}
		}
		keep.WriteString(line + "\n")
	}
	if keep.Len() == len(b) {
		return nil
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { _, err := w.Write(keep.Bytes()); return err })
}

// ReadMetrics reads a run directory's metrics log.
func ReadMetrics(runDir string) ([]EpochStats, error) {
	path := filepath.Join(runDir, MetricsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []EpochStats
	for n, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if n == 0 || line == "" {
			continue
		}
		var es EpochStats
		if _, err := fmt.Sscanf(line, "%d,%d,%d,%g,%g,%d,%g,%g", &es.Stage, &es.Epoch, &es.GlobalEpoch, &es.Loss, &es.LR, &es.Images, &es.Seconds, &es.ImagesPerSec); err != nil {
			return nil, fmt.Errorf("tsimcne: %s line %d: %w", path, n+1, err)
		}
		out = append(out, es)
	}
	return out, nil
}

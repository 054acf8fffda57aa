package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
)

// The MPI tests run the train binary under mpirun with two ranks on this
// machine (oversubscribed: CI has 2 cores), as a cluster would.

// mpirunArgs is the mpirun prefix for n ranks. Without mpirun the test
// fails under CI (which installs Open MPI) and is skipped elsewhere.
func mpirunArgs(t *testing.T, n int) []string {
	t.Helper()
	p, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mpirun not found: CI=true requires Open MPI (apt-get install openmpi-bin libopenmpi3)")
		}
		t.Skip("mpirun not installed (apt-get install openmpi-bin libopenmpi3)")
	}
	// --allow-run-as-root: CI runs as root; harmless otherwise.
	return []string{p, "--oversubscribe", "--allow-run-as-root", "-np", fmt.Sprint(n)}
}

// runMPI runs the train binary on n ranks.
func runMPI(t *testing.T, n int, env []string, args ...string) (string, error) {
	t.Helper()
	all := append(mpirunArgs(t, n), filepath.Join(bins, "train"))
	all = append(all, args...)
	cmd := exec.Command(all[0], all[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// equivArgs: resnet_tiny at 16×16, global batch 64, 192 images: 3 steps.
func equivArgs(data, dir string, threads int, extra ...string) []string {
	return append([]string{data, "-o", dir, "-q", "--backbone", "resnet_tiny", "--image-size", "16",
		"--epochs", "1", "--batch", "64", "--train-subset", "192", "--seed", "3", "--workers", "1",
		"--threads", fmt.Sprint(threads), "--lr", "0.5"}, extra...)
}

// maxRelDiff compares the weights and BatchNorm statistics of two
// checkpoints (not the optimiser state, whose head.2.bias momentum is a sum
// of gradients that cancel to ~1e-7): the largest |a−b| relative to the
// largest |a| of the tensor, the scale at which float32 sums round.
func maxRelDiff(t *testing.T, a, b string) (float64, string) {
	t.Helper()
	ta, _, err := safetensors.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := safetensors.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	worst, where := 0.0, ""
	for name, x := range ta {
		y, ok := tb[name]
		if !ok {
			t.Fatalf("%s lacks %s", b, name)
		}
		if x.DType != "F32" || strings.HasPrefix(name, "optimizer.") {
			continue // weights and BatchNorm statistics only
		}
		xv, _ := x.Float32s()
		yv, _ := y.Float32s()
		scale := 0.0
		for _, v := range xv {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range xv {
			r := math.Abs(float64(xv[i])-float64(yv[i])) / math.Max(scale, 1e-30)
			if r > worst {
				worst, where = r, fmt.Sprintf("%s[%d]: %g vs %g, tensor max %g", name, i, xv[i], yv[i], scale)
			}
		}
	}
	return worst, where
}

// TestMPITwoRanksEqualOneProcess: 2 ranks × 1 thread at global batch 64
// end 3 steps with the weights of 1 process × 2 threads (synchronised
// BatchNorm), within 1e-5 relative; with --local-bn they differ.
func TestMPITwoRanksEqualOneProcess(t *testing.T) {
	mpirunArgs(t, 2)
	data := smallData(t)
	dir := t.TempDir()
	one, two, local := filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "local")
	mustBin(t, "train", equivArgs(data, one, 2)...)
	out, err := runMPI(t, 2, nil, equivArgs(data, two, 1)...)
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	if !strings.Contains(out, "data-parallel on 2 ranks") {
		t.Fatalf("the run does not say it runs on 2 ranks:\n%s", out)
	}
	ck := "checkpoint.safetensors"
	rel, where := maxRelDiff(t, filepath.Join(one, ck), filepath.Join(two, ck))
	t.Logf("2 ranks vs 1 process after 3 steps: max relative difference %.3g (%s)", rel, where)
	if rel > 1e-5 {
		t.Fatalf("2 ranks differ from 1 process by %.3g relative (%s)", rel, where)
	}
	out, err = runMPI(t, 2, nil, equivArgs(data, local, 1, "--local-bn")...)
	if err != nil {
		t.Fatalf("mpirun --local-bn: %v\n%s", err, out)
	}
	if rel, _ := maxRelDiff(t, filepath.Join(one, ck), filepath.Join(local, ck)); rel < 1e-4 {
		t.Fatalf("--local-bn changed nothing (%.3g): BatchNorm was not per-rank", rel)
	}
}

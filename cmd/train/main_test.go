package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/embedio"
	"github.com/tsimcne/tsimcne-go/engine/cuda"
	"github.com/tsimcne/tsimcne-go/pack"
	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// The CLI tests run the real binaries: pack a small generated CIFAR-10
// dataset, train a narrow network for a few short epochs, embed.

var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tsimcne-bin")
	if err != nil {
		panic(err)
	}
	bins = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/train", "../../cmd/embed")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		panic("building the binaries: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// smallData packs 6×50 = 300 CIFAR-format images.
func smallData(t *testing.T) string { return packCIFAR(t, 7, "small.tscn") }

// packCIFAR packs 300 CIFAR-format images made from seed into a file
// named name in a temporary directory.
func packCIFAR(t *testing.T, seed int64, name string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "cifar")
	if _, _, err := sourcetest.WriteCIFAR10(src, 50, seed); err != nil {
		t.Fatal(err)
	}
	ds, err := source.Open([]string{src}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	out := filepath.Join(dir, name)
	if _, err := pack.Pack(t.Context(), ds, []string{src}, out, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	return out
}

// trainArgs is a run small enough for a test: 300 images of 16×16, batch
// 50, a 4-wide ResNet, [3, 2, 2] epochs, two threads.
func trainArgs(data, runDir string) []string {
	return []string{data, "-o", runDir, "-q", "--backbone", "resnet_w4_b1111_h32", "--epochs", "3,2,2",
		"--batch", "50", "--image-size", "16", "--seed", "5", "--threads", "2", "--workers", "2",
		"--pretrain-out-dim", "16", "--checkpoint-every", "1", "--lr", "0.05,0.05,0.01"}
}

func runBin(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustBin(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runBin(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func TestTrainEmbedEndToEnd(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	mustBin(t, "train", trainArgs(data, run)...)
	for _, f := range []string{"config.json", "metrics.csv", "checkpoint.safetensors", "stage1.safetensors", "stage2.safetensors", "stage3.safetensors", "loss.png"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	metrics, _ := os.ReadFile(filepath.Join(run, "metrics.csv"))
	if lines := strings.Count(string(metrics), "\n"); lines != 1+7 {
		t.Fatalf("metrics.csv has %d lines, want a header and 7 epochs:\n%s", lines, metrics)
	}
	arrow := filepath.Join(dir, "emb.arrow")
	out := mustBin(t, "embed", run, data, "-o", arrow, "--plot", filepath.Join(dir, "emb.png"), "--features", "-q")
	if !strings.Contains(out, "kNN accuracy of the map") {
		t.Errorf("embed did not report the kNN accuracy:\n%s", out)
	}
	e, err := embedio.Read(arrow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 300 || e.Dim != 2 || e.FeatureDim != 32 || len(e.Classes) != 10 {
		t.Fatalf("embedding: %d rows, dim %d, features %d, %d classes", e.Len(), e.Dim, e.FeatureDim, len(e.Classes))
	}
	for i, ix := range e.Index {
		if ix != int64(i) {
			t.Fatalf("row %d holds index %d: rows are not in dataset order", i, ix)
		}
	}
	if e.Meta["model"] != "resnet_w4_b1111_h32" || e.Meta["stage_epochs"] != "3,2,2" || e.Meta["seed"] != "5" {
		t.Errorf("metadata %v", e.Meta)
	}
	for _, p := range []string{"emb.png", "emb-loss.png"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("no %s", p)
		}
	}

	// The same seed gives the same embedding bit for bit.
	run2 := filepath.Join(dir, "run2")
	mustBin(t, "train", trainArgs(data, run2)...)
	arrow2 := filepath.Join(dir, "emb2.arrow")
	mustBin(t, "embed", run2, data, "-o", arrow2, "-q")
	e2, err := embedio.Read(arrow2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.Coords {
		if e.Coords[i] != e2.Coords[i] {
			t.Fatalf("same seed, different embedding at %d: %v vs %v", i, e.Coords[i], e2.Coords[i])
		}
	}
}

// TestResumeAfterSIGKILL kills training in the middle of an epoch, resumes
// it, and requires the final weights to equal an uninterrupted run's.
func TestResumeAfterSIGKILL(t *testing.T) { testResume(t, syscall.SIGKILL) }

// TestResumeAfterInterrupt stops training with SIGINT (Ctrl-C), which saves
// a mid-epoch checkpoint, and requires the same.
func TestResumeAfterInterrupt(t *testing.T) { testResume(t, syscall.SIGINT) }

func testResume(t *testing.T, sig syscall.Signal) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX signals")
	}
	data := smallData(t)
	dir := t.TempDir()
	// Batches of 10 give 30 steps per epoch, so a kill lands mid-epoch.
	args := append(trainArgs(data, filepath.Join(dir, "killed")), "--batch", "10")
	refArgs := append(trainArgs(data, filepath.Join(dir, "ref")), "--batch", "10")
	mustBin(t, "train", refArgs...)
	want, err := os.ReadFile(filepath.Join(dir, "ref", "stage3.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "killed")
	killedMidEpoch := false
	{
		cmd := exec.Command(filepath.Join(bins, "train"), args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the second epoch's checkpoint, then kill somewhere inside
		// the next epoch.
		waitInThirdEpoch(run)
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		if err == nil {
			t.Fatal("training finished before it could be killed; the test needs a slower run")
		}
		if ee, ok := err.(*exec.ExitError); sig == syscall.SIGINT && (!ok || ee.ExitCode() != 130) {
			t.Fatalf("after Ctrl-C train exited with %v, want status 130", err)
		}
		b, _ := os.ReadFile(filepath.Join(run, "metrics.csv"))
		killedMidEpoch = strings.Count(string(b), "\n") < 8
		out, err := runBin(t, "train", "--resume", "-o", run, data)
		if err != nil || !strings.Contains(out, "resuming") {
			t.Fatalf("resume: %v\n%s", err, out)
		}
	}
	if !killedMidEpoch {
		t.Fatal("the kill did not interrupt the run")
	}
	got, err := os.ReadFile(filepath.Join(run, "stage3.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the resumed run's final checkpoint differs from the uninterrupted run's")
	}
	// The metrics log has each epoch once.
	b, _ := os.ReadFile(filepath.Join(run, "metrics.csv"))
	if n := strings.Count(string(b), "\n"); n != 8 {
		t.Fatalf("metrics.csv of the resumed run has %d lines, want 8:\n%s", n, b)
	}
}

// waitInThirdEpoch returns once the run in directory run has logged its
// second epoch (metrics.csv: a header and two rows), plus 150 ms: a kill
// then lands inside the third epoch of a trainArgs run with batch 10 (30
// steps per epoch). It gives up after two minutes; the caller finds out.
func waitInThirdEpoch(run string) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(run, "metrics.csv"))
		if strings.Count(string(b), "\n") >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
}

func TestBadArguments(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	for _, c := range []struct {
		bin  string
		args []string
		want string
	}{
		{"train", []string{data}, "-o RUN_DIR is required"},
		{"train", []string{filepath.Join(dir, "missing.tscn"), "-o", dir + "/r"}, "no such file"},
		{"train", []string{data, "-o", dir + "/r", "--epochs", "10,x"}, "--epochs"},
		{"train", []string{data, "-o", dir + "/r", "--epochs", "1,2"}, "one value (stage 1 only) or three"},
		{"train", []string{data, "-o", dir + "/r", "--backbone", "vgg"}, "unknown backbone"},
		{"train", []string{data, "-o", dir + "/r", "--device", "tpu"}, "device"},
		{"train", []string{"--resume", "-o", dir + "/none", data}, "resume"},
		{"embed", []string{dir + "/none", data, "-o", dir + "/e.arrow"}, "no such file"},
		{"embed", []string{data, data, "-o", dir + "/e.arrow"}, ""},
	} {
		out, err := runBin(t, c.bin, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s %v: %v, output %q; want an error containing %q", c.bin, c.args, err, out, c.want)
		}
	}
	if _, err := os.Stat(dir + "/e.arrow"); err == nil {
		t.Error("a failed embed left an output file")
	}
}

// TestDeviceCUDA runs train and embed with --device cuda. Without a driver
// (TSIMCNE_CUDA_LIB pointing nowhere), train must fail with a clear CUDA
// error and nothing else (no complaint about the loss plot of a run that
// never started). On the cudasim emulator (bin/cudasim, which make test
// builds first; the subprocesses alone get it through LD_LIBRARY_PATH, so
// the other tests keep --device auto on the CPU) or a real driver, the run
// must say it trains on CUDA through the GPU pipeline, and embed must work.
func TestDeviceCUDA(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	args := func(run string) []string {
		return append(trainArgs(data, run), "--device", "cuda", "--epochs", "1,1,1")
	}
	out, err := runBinEnv(t, []string{"TSIMCNE_CUDA_LIB=" + filepath.Join(dir, "no-libcuda.so.1")}, "train", args(filepath.Join(dir, "nodev"))...)
	if err == nil || !strings.Contains(out, "device cuda") || strings.Contains(out, "loss plot") {
		t.Fatalf("train --device cuda without a driver: %v; want only a clear CUDA error, got:\n%s", err, out)
	}

	var env []string
	if sim, _ := filepath.Abs("../../bin/cudasim"); fileExists(filepath.Join(sim, "libcuda.so.1")) {
		env = []string{"LD_LIBRARY_PATH=" + sim + ":" + os.Getenv("LD_LIBRARY_PATH")}
	} else if _, aerr := cuda.Available(); aerr != nil {
		t.Fatalf("no CUDA driver and no emulator (run make cudasim): %v", cuda.Reason(aerr))
	}
	run := filepath.Join(dir, "run")
	out, err = runBinEnv(t, env, "train", args(run)...)
	if err != nil {
		t.Fatalf("train --device cuda: %v\n%s", err, out)
	}
	for _, want := range []string{"backend: cuda", "data pipeline: GPU", "trained"} {
		if !strings.Contains(out, want) {
			t.Errorf("train --device cuda output lacks %q:\n%s", want, out)
		}
	}
	arrow := filepath.Join(dir, "emb.arrow")
	out, err = runBinEnv(t, env, "embed", run, data, "-o", arrow, "--device", "cuda")
	if err != nil || !strings.Contains(out, "backend: cuda") || !strings.Contains(out, "kNN accuracy of the map") {
		t.Fatalf("embed --device cuda: %v\n%s", err, out)
	}
	e, err := embedio.Read(arrow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 300 || e.Dim != 2 {
		t.Fatalf("embedding: %d rows, dim %d", e.Len(), e.Dim)
	}
}

// runBinEnv is runBin with extra environment variables.
func runBinEnv(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins, name), args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestTimeBudget: --time measures the speed, scales --epochs's proportions
// into the budget, records the plan in config.json, and the run is the
// same, bit for bit, as one given the planned --epochs and --warmup.
func TestTimeBudget(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	runA := filepath.Join(dir, "a")
	args := trainArgs(data, runA)
	// Proportions 3:1:2 and an explicit warm-up, which scales with its stage.
	args = append(args, "--epochs", "30,10,20", "--warmup", "6,0,4", "--time", "5s")
	out := mustBin(t, "train", args...)
	if !strings.Contains(out, "images/s per stage") {
		t.Errorf("train --time did not report what it measured:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(runA, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Config tsimcne.Config   `json:"config"`
		Plan   tsimcne.TimePlan `json:"time_plan"`
		Repeat string           `json:"repeat_with"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Plan
	if p.BudgetText != "5s" || len(p.Epochs) != 3 || len(p.ImagesPerSec) != 3 || !slices.Equal(p.Base, []int{30, 10, 20}) {
		t.Fatalf("time_plan %+v", p)
	}
	if !slices.Equal(cfg.Config.Epochs, p.Epochs) || !slices.Equal(cfg.Config.Warmup, p.Warmup) {
		t.Fatalf("config %v/%v is not the plan %v/%v", cfg.Config.Epochs, cfg.Config.Warmup, p.Epochs, p.Warmup)
	}
	if p.PlannedSeconds+p.ProbeSeconds > 5 {
		t.Errorf("planned %.1fs + measuring %.1fs exceeds the 5s budget", p.PlannedSeconds, p.ProbeSeconds)
	}
	// The proportions, up to the rounding of each stage to whole epochs.
	f := float64(p.Epochs[0]) / 30
	for s, base := range []int{30, 10, 20} {
		if d := math.Abs(float64(p.Epochs[s]) - f*float64(base)); d > 1 && p.Epochs[s] > 1 {
			t.Errorf("stage %d: %d epochs, want about %.1f (%v from %v)", s+1, p.Epochs[s], f*float64(base), p.Epochs, p.Base)
		}
	}
	if p.Warmup[1] != 0 || p.Warmup[0] >= p.Epochs[0] && p.Epochs[0] > 0 {
		t.Errorf("warm-up %v for epochs %v", p.Warmup, p.Epochs)
	}
	want := "--epochs " + joinInts(p.Epochs) + " --warmup " + joinInts(p.Warmup)
	if cfg.Repeat != want {
		t.Errorf("repeat_with %q, want %q", cfg.Repeat, want)
	}

	// The same run from the recorded schedule.
	runB := filepath.Join(dir, "b")
	argsB := append(trainArgs(data, runB), strings.Fields(cfg.Repeat)...)
	mustBin(t, "train", argsB...)
	a, _ := os.ReadFile(filepath.Join(runA, "checkpoint.safetensors"))
	b, _ := os.ReadFile(filepath.Join(runB, "checkpoint.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		if d, where := maxRelDiff(t, filepath.Join(runA, "checkpoint.safetensors"), filepath.Join(runB, "checkpoint.safetensors")); d != 0 {
			t.Fatalf("--time run and its --epochs repetition differ: %g at %s", d, where)
		}
		t.Fatalf("--time run and its --epochs repetition: checkpoints differ (not in the weights)")
	}

	// A budget too small for one epoch per stage, and --time with --resume.
	out, err = runBin(t, "train", append(trainArgs(data, filepath.Join(dir, "c")), "--time", "1ms")...)
	if err == nil || !strings.Contains(out, "one epoch per stage takes about") {
		t.Errorf("--time 1ms: %v\n%s", err, out)
	}
	out, err = runBin(t, "train", "--resume", "-o", runA, data, "--time", "1m")
	if err == nil || !strings.Contains(out, "--time plans a new run") {
		t.Errorf("--time with --resume: %v\n%s", err, out)
	}
}

// TestQuasiRandomOrder trains with --order quasi-random: config.json
// records the order and window, the same seed gives the same checkpoint bit
// for bit, the order really changes the run (its checkpoint differs from
// the shuffle run's), and a run killed mid-epoch refuses a resume that asks
// for another order (naming the flag) and resumes to the uninterrupted
// run's weights.
func TestQuasiRandomOrder(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	qr := func(name string) []string {
		return append(trainArgs(data, filepath.Join(dir, name)), "--order", "quasi-random", "--window", "3", "--batch", "10")
	}
	mustBin(t, "train", qr("a")...)
	mustBin(t, "train", qr("b")...)
	mustBin(t, "train", append(trainArgs(data, filepath.Join(dir, "shuffle")), "--batch", "10")...)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name, "stage3.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(read("a"), read("b")) {
		t.Fatal("two quasi-random runs of the same seed differ")
	}
	if bytes.Equal(read("a"), read("shuffle")) {
		t.Fatal("the quasi-random run equals the shuffle run: the order was not used")
	}
	var cfg struct {
		Config struct {
			Order  string `json:"order"`
			Window int    `json:"window"`
		} `json:"config"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "a", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Order != "quasi-random" || cfg.Config.Window != 3 {
		t.Errorf("config.json records order %q window %d, want quasi-random 3:\n%s", cfg.Config.Order, cfg.Config.Window, b)
	}
	// Killed mid-epoch and resumed: the uninterrupted run's weights.
	run := filepath.Join(dir, "killed")
	cmd := exec.Command(filepath.Join(bins, "train"), qr("killed")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitInThirdEpoch(run)
	cmd.Process.Kill()
	if cmd.Wait() == nil {
		t.Fatal("training finished before it could be killed")
	}
	out, err := runBin(t, "train", "--resume", "-o", run, data, "--order", "shuffle")
	if err == nil || !strings.Contains(out, "--order shuffle (the run has quasi-random)") {
		t.Errorf("resume with another order: %v\n%s", err, out)
	}
	if out, err := runBin(t, "train", "--resume", "-o", run, data); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !bytes.Equal(read("killed"), read("a")) {
		t.Fatal("the resumed quasi-random run's final checkpoint differs from the uninterrupted run's")
	}
}

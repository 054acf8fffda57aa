package hostile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// TestTrainBadFlags: every bad flag is refused before anything is written,
// naming the flag, within seconds (the 0-epoch stage used to spin forever).
func TestTrainBadFlags(t *testing.T) {
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--epochs", "1,0,1"}, []string{"--epochs", "stage 2 has 0 epochs"}},
		{[]string{"--epochs", "1,1,0"}, []string{"--epochs", "stage 3"}},
		{[]string{"--epochs", "0"}, []string{"--epochs"}},
		{[]string{"--epochs", "-3"}, []string{"--epochs"}},
		{[]string{"--epochs", "1,1"}, []string{"epochs"}},
		{[]string{"--epochs", "a,b"}, []string{"--epochs"}},
		{[]string{"--batch", "0"}, []string{"--batch 0"}},
		{[]string{"--batch", "1"}, []string{"--batch 1"}},
		{[]string{"--batch", "-5"}, []string{"--batch -5"}},
		{[]string{"--batch", "501"}, []string{"--batch 501", "500"}},
		{[]string{"--batch", "64", "--train-subset", "50"}, []string{"--batch 64", "--train-subset", "50"}},
		{[]string{"--image-size", "1"}, []string{"--image-size 1"}},
		{[]string{"--image-size", "-8"}, []string{"--image-size"}},
		{[]string{"--image-size", "100000"}, []string{"--image-size"}},
		{[]string{"--out-dim", "0"}, []string{"--out-dim"}},
		{[]string{"--pretrain-out-dim", "-1"}, []string{"--pretrain-out-dim"}},
		{[]string{"--lr", "-1"}, []string{"lr"}},
		{[]string{"--lr", "NaN"}, []string{"lr"}},
		{[]string{"--lr", "fast"}, []string{"--lr"}},
		{[]string{"--lr", "0.1,0.1"}, []string{"lr"}},
		{[]string{"--warmup", "-1,0,0"}, []string{"warmup"}},
		{[]string{"--backbone", "resnet1000"}, []string{"resnet1000"}},
		{[]string{"--metric", "manhattan"}, []string{"manhattan"}},
		{[]string{"--device", "tpu"}, []string{"tpu"}},
		{[]string{"--crop-scale-min", "0"}, []string{"--crop-scale-min"}},
		{[]string{"--flip-p", "2"}, []string{"--flip-p"}},
		{[]string{"--train-subset", "-1"}, []string{"--train-subset"}},
		{[]string{"--checkpoint-every", "-1"}, []string{"--checkpoint-every"}},
		{[]string{"--workers", "-2"}, []string{"--workers"}},
		{[]string{"--change-epochs"}, []string{"--change-epochs"}},
		{[]string{"--order", "random"}, []string{"order", "random"}},
		{[]string{"--window", "-1"}, []string{"--window -1"}},
		{[]string{"--order", "shuffle", "--window", "4"}, []string{"window 4", "quasi-random"}},
		{[]string{"--order", "quasi-random", "--train-subset", "50"}, []string{"quasi-random", "train subset"}},
	} {
		args := append([]string{fx.tiny, "-o", runDir}, trainFlags...)
		args = append(args, "--epochs", "1,1,1")
		r := run(t, quick, dir, "train", append(args, c.args...)...)
		r.fails(t, 1, c.want...)
		if r.took > 10*time.Second {
			t.Fatalf("%v took %v", c.args, r.took)
		}
		if strings.Contains(r.err, "loss plot") {
			t.Fatalf("a stray loss-plot line:\n%s", r)
		}
		if _, err := os.Stat(runDir); err == nil {
			t.Fatalf("%v left %s behind", c.args, runDir)
		}
	}
}

// TestTrainBadData: missing, foreign and damaged data, and DATA that is one
// of the run's own outputs.
func TestTrainBadData(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("words, not images, words, not images, words, not images, words"), 0o644)
	b, _ := os.ReadFile(fx.small)
	trunc := filepath.Join(dir, "trunc.tscn")
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	for _, data := range []string{filepath.Join(dir, "missing.tscn"), text, trunc, dir} {
		args := append([]string{data, "-o", filepath.Join(dir, "run")}, trainFlags...)
		run(t, quick, dir, "train", args...).fails(t, 1, filepath.Base(data))
	}
	run(t, quick, dir, "train", fx.tiny).fails(t, 1, "-o")
	run(t, quick, dir, "train", "--resume", fx.tiny).fails(t, 1, "-o RUN_DIR")
	run(t, quick, dir, "train", "--resume", "-o", filepath.Join(dir, "nothing"), fx.tiny).fails(t, 1, "nothing")

	// DATA that the run would overwrite: refused, untouched.
	runDir := filepath.Join(dir, "r")
	os.Mkdir(runDir, 0o755)
	in := copyFile(t, fx.tiny, runDir)
	os.Rename(in, filepath.Join(runDir, "metrics.csv"))
	before := sum(t, filepath.Join(runDir, "metrics.csv"))
	args := append([]string{filepath.Join(runDir, "metrics.csv"), "-o", runDir, "--epochs", "1,1,1"}, trainFlags...)
	run(t, quick, dir, "train", args...).fails(t, 1, "refusing to overwrite an input")
	if sum(t, filepath.Join(runDir, "metrics.csv")) != before {
		t.Fatal("DATA overwritten")
	}
}

// TestResumeRefusesOtherData: a run resumed on another pack (same size,
// other content; fewer images; another shape) is refused naming both.
func TestResumeRefusesOtherData(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	args := append([]string{fx.tiny, "-o", runDir, "--epochs", "1,1,1"}, trainFlags...)
	run(t, 2*quick, "", "train", args...).ok(t)
	rewind(t, runDir)
	st1, _ := os.Stat(fx.tiny)
	st2, _ := os.Stat(fx.tiny2)
	if st1.Size() != st2.Size() {
		t.Fatalf("fixture: tiny2 has %d bytes, tiny %d", st2.Size(), st1.Size())
	}
	for _, data := range []string{fx.tiny2, fx.small, fx.cifar} {
		r := run(t, quick, "", "train", "--resume", "-o", runDir, data, "-q")
		r.fails(t, 1, "DATA "+data, "not the data the run was trained on", fx.tiny)
	}
	// The same data under another name is the same data.
	moved := copyFile(t, fx.tiny, t.TempDir())
	run(t, 2*quick, "", "train", "--resume", "-o", runDir, moved, "-q").ok(t)
}

// rewind makes a finished run unfinished, as if it had stopped after stage
// 1: the stage-1 checkpoint becomes the latest (resume trims metrics.csv).
func rewind(t *testing.T, runDir string) {
	t.Helper()
	s1 := filepath.Join(runDir, "stage1.safetensors")
	b, err := os.ReadFile(s1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(runDir, tsimcne.CheckpointFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRefusesConflictingFlags: training flags given with --resume
// that differ from the run's are refused, each named; --epochs may change
// with --change-epochs; run-time flags (threads, workers) may change.
func TestResumeRefusesConflictingFlags(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	args := append([]string{fx.tiny, "-o", runDir, "--epochs", "1,1,1"}, trainFlags...)
	run(t, 2*quick, "", "train", args...).ok(t)
	rewind(t, runDir)
	r := run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny, "--batch", "16", "--backbone", "resnet_small", "--epochs", "1,2,2", "--seed", "9", "--lr", "0.5")
	r.fails(t, 1, "--batch 16 (the run has 32)", "--backbone resnet_small", "--epochs 1,2,2", "--change-epochs", "--seed 9", "--lr 0.5")
	// The same values as the run's are no conflict.
	r = run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny, "--batch", "32", "--epochs", "1,1,1", "--image-size", "8", "--threads", "2", "--workers", "2", "-q")
	r.ok(t)
	// A finished stage cannot change, even with --change-epochs.
	rewind(t, runDir)
	run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny, "--epochs", "2,1,1", "--change-epochs").fails(t, 1, "stage 1 is finished")
	run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny, "--epochs", "1,3,2", "--change-epochs", "-q").ok(t)
	ms, err := tsimcne.ReadMetrics(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("after --change-epochs 1,3,2: %d epochs in metrics.csv, want 6", len(ms))
	}
	// A complete run whose train was killed while drawing the loss plot
	// (no loss.png, the dead writer's temporary file left) and is resumed:
	// nothing to train, said so; the leftover goes and the plot is drawn.
	lossPath := filepath.Join(runDir, "loss.png")
	os.Remove(lossPath)
	stale := filepath.Join(runDir, ".loss.png.123456.tmp")
	if err := os.WriteFile(stale, []byte("\x89PNG half"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny)
	r.ok(t)
	if !strings.Contains(r.err, "already complete") {
		t.Fatalf("complete run: %s", r)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the dead writer's %s is still there (%v)", stale, err)
	}
	if _, err := os.Stat(lossPath); err != nil {
		t.Fatalf("loss.png not drawn again: %v", err)
	}
}

// TestResumeDamagedCheckpoint: a checkpoint with one flipped byte, or 4 KiB
// of 0xFF, is refused by --resume and by embed, naming the file; the
// previous checkpoint is intact and named.
func TestResumeDamagedCheckpoint(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	args := append([]string{fx.tiny, "-o", runDir, "--epochs", "2,1,1", "--checkpoint-every", "1"}, trainFlags...)
	run(t, 2*quick, "", "train", args...).ok(t)
	rewind(t, runDir)
	ck := filepath.Join(runDir, tsimcne.CheckpointFile)
	prev := filepath.Join(runDir, tsimcne.PrevCheckpointFile)
	if _, _, err := safetensors.Read(prev); err != nil {
		t.Fatalf("the previous checkpoint: %v", err)
	}
	good, _ := os.ReadFile(ck)
	for _, damage := range []func(b []byte){
		func(b []byte) { b[len(b)/2] ^= 1 },
		func(b []byte) { b[20] ^= 4 },  // in the JSON header
		func(b []byte) { b[3] = 0x7f }, // the header length
		func(b []byte) {
			for i := len(b) / 3; i < len(b)/3+4096; i++ {
				b[i] = 0xff
			}
		},
		func(b []byte) { b[len(b)-1] ^= 0x80 },
	} {
		b := append([]byte(nil), good...)
		damage(b)
		os.WriteFile(ck, b, 0o644)
		r := run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny, "-q")
		r.fails(t, 1, ck, "damaged")
		if strings.Contains(r.err, "nan") || strings.Contains(r.err, "NaN") {
			t.Fatalf("trained on:\n%s", r)
		}
		if !strings.Contains(r.err, prev) {
			t.Fatalf("the intact previous checkpoint is not named:\n%s", r)
		}
		run(t, quick, "", "embed", runDir, fx.tiny, "-o", filepath.Join(t.TempDir(), "e.arrow"), "-q").fails(t, 1, ck)
	}
	// Truncated: too.
	os.WriteFile(ck, good[:len(good)-1000], 0o644)
	run(t, quick, "", "train", "--resume", "-o", runDir, fx.tiny, "-q").fails(t, 1, ck)
	// Following the advice continues the run.
	if err := os.Rename(prev, ck); err != nil {
		t.Fatal(err)
	}
	run(t, 2*quick, "", "train", "--resume", "-o", runDir, fx.tiny, "-q").ok(t)
}

// TestTrainConcurrentRuns: a second train into a run directory in use is
// refused, and the first finishes.
func TestTrainConcurrentRuns(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	args := append([]string{fx.mnist, "-o", runDir, "--epochs", "3,1,1", "--train-subset", "3000"}, trainFlags...)
	first := make(chan result, 1)
	go func() { first <- run(t, 2*quick, "", "train", args...) }()
	// Wait for the first to hold the directory.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(runDir, "config.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first train never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := run(t, quick, "", "train", "--resume", "-o", runDir, fx.mnist, "-q")
	r2 := run(t, quick, "", "train", append([]string{fx.mnist, "-o", runDir}, trainFlags...)...)
	f := <-first
	f.ok(t)
	for _, r := range []result{r, r2} {
		if r.code == 0 {
			t.Fatalf("a second train into a busy run directory succeeded:\n%s", r)
		}
		noPanic(t, r)
	}
	if !strings.Contains(r.err, "in use") && !strings.Contains(r.err, "already") && !strings.Contains(r.err, "no such file") {
		t.Fatalf("resume of a busy run: %s", r)
	}
}

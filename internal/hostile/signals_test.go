package hostile

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// start starts a binary without waiting for it.
func start(t *testing.T, prog string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, prog), args...)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &se
}

// startedWriter passes what it is given to w and closes ready once the
// output contains marker.
type startedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	seen   []byte
	marker string
	ready  chan struct{}
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready != nil {
		s.seen = append(s.seen, p...)
		if bytes.Contains(s.seen, []byte(s.marker)) {
			close(s.ready)
			s.ready, s.seen = nil, nil
		}
	}
	return s.w.Write(p)
}

// startTraining starts train and returns once it has built its model (it
// has printed its backend): from then on its signal handler is installed,
// so a signal tests the program's handling of it rather than whether the
// Go runtime had started (on a loaded machine that can take longer than
// the test's shortest delay, and a signal before it kills the process).
func startTraining(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "train"), args...)
	var se bytes.Buffer
	ready := make(chan struct{})
	cmd.Stderr = &startedWriter{w: &se, marker: "backend:", ready: ready}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("train did not start within a minute\n%s", se.String())
	}
	return cmd, &se
}

// wait waits for cmd at most limit (a hang fails the test) and returns its
// exit status (-1 for death by signal).
func wait(t *testing.T, cmd *exec.Cmd, se *bytes.Buffer, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("hang: %v did not stop within %v of the signal\n%s", cmd.Args, limit, se)
	}
	noPanic(t, result{args: cmd.Args, err: se.String()})
	return cmd.ProcessState.ExitCode()
}

// tensorsOf reads a checkpoint's tensors (the checksum verified).
func tensorsOf(t *testing.T, path string) map[string]safetensors.Tensor {
	t.Helper()
	ts, _, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestTrainSignals interrupts training with SIGINT and SIGTERM at random
// moments: it stops within seconds with status 130 and a checkpoint, and
// resuming ends with exactly the weights of an uninterrupted run.
func TestTrainSignals(t *testing.T) {
	args := func(runDir string) []string {
		return append([]string{fx.tiny, "-o", runDir, "--epochs", "3,1,2", "--checkpoint-every", "1"}, trainFlags...)
	}
	ref := filepath.Join(t.TempDir(), "ref")
	run(t, 2*quick, "", "train", args(ref)...).ok(t)
	want := tensorsOf(t, filepath.Join(ref, tsimcne.CheckpointFile))

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGINT} {
		runDir := filepath.Join(t.TempDir(), "run")
		cmd, se := startTraining(t, args(runDir)...)
		delay := time.Duration(50+rng.IntN(700)) * time.Millisecond
		time.Sleep(delay)
		cmd.Process.Signal(sig)
		code := wait(t, cmd, se, 10*time.Second)
		t.Logf("round %d: %v after %v: exit %d", i, sig, delay, code)
		if code != 130 && code != 0 {
			t.Fatalf("%v after %v: exit %d, want 130 (or 0 if it had finished)\n%s", sig, delay, code, se)
		}
		if _, err := os.Stat(filepath.Join(runDir, tsimcne.CheckpointFile)); err != nil {
			// Stopped before the first checkpoint: start again.
			os.RemoveAll(runDir)
			run(t, 2*quick, "", "train", args(runDir)...).ok(t)
		} else {
			run(t, 2*quick, "", "train", "--resume", "-o", runDir, fx.tiny, "-q").ok(t)
		}
		got := tensorsOf(t, filepath.Join(runDir, tsimcne.CheckpointFile))
		for name, w := range want {
			if !bytes.Equal(got[name].Data, w.Data) {
				t.Fatalf("round %d: %s differs from the uninterrupted run's after %v at %v", i, name, sig, delay)
			}
		}
		if tm := temps(t, runDir); len(tm) > 0 {
			t.Fatalf("leftovers %v", tm)
		}
	}
}

// TestSecondInterruptExits: a second Ctrl-C ends the program at once, even
// while the first is being handled.
func TestSecondInterruptExits(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	cmd, se := startTraining(t, append([]string{fx.mnist, "-o", runDir, "--epochs", "50"}, trainFlags...)...)
	time.Sleep(400 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Process.Signal(syscall.SIGINT)
	if code := wait(t, cmd, se, 10*time.Second); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, se)
	}
}

// TestKillLeavesNoLeftovers kills pack and train with SIGKILL at random
// moments, five times each: temporary files never accumulate (the next run
// removes a dead writer's), and the work completes afterwards.
func TestKillLeavesNoLeftovers(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	dir := t.TempDir()
	out := filepath.Join(dir, "mnist.tscn")
	for i := range 5 {
		cmd, se := start(t, "pack", fx.mnistIn, "-o", out, "-q", "--codec", "zstd", "--workers", "1")
		time.Sleep(time.Duration(30+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill()
		wait(t, cmd, se, 10*time.Second)
		if tm := temps(t, dir); len(tm) > 1 {
			t.Fatalf("after kill %d: %d temporary files: %v", i+1, len(tm), tm)
		}
	}
	run(t, 4*quick, dir, "pack", fx.mnistIn, "-o", out, "-q").ok(t)
	if tm := temps(t, dir); len(tm) > 0 {
		t.Fatalf("leftovers after a complete pack: %v", tm)
	}
	run(t, quick, dir, "pack", "verify", "-q", out).ok(t)

	runDir := filepath.Join(dir, "run")
	args := append([]string{fx.tiny, "-o", runDir, "--epochs", "4,2,2", "--checkpoint-every", "1"}, trainFlags...)
	for i := range 5 {
		a := args
		if _, err := os.Stat(filepath.Join(runDir, tsimcne.CheckpointFile)); err == nil {
			a = []string{"--resume", "-o", runDir, fx.tiny, "-q"}
		} else {
			os.RemoveAll(runDir)
		}
		cmd, se := start(t, "train", a...)
		time.Sleep(time.Duration(50+rng.IntN(500)) * time.Millisecond)
		cmd.Process.Kill()
		wait(t, cmd, se, 10*time.Second)
		if tm := temps(t, runDir); len(tm) > 2 {
			t.Fatalf("after kill %d: %v", i+1, tm)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, tsimcne.CheckpointFile)); err == nil {
		run(t, 2*quick, "", "train", "--resume", "-o", runDir, fx.tiny, "-q").ok(t)
	} else {
		os.RemoveAll(runDir)
		run(t, 2*quick, "", "train", args...).ok(t)
	}
	if tm := temps(t, runDir); len(tm) > 0 {
		t.Fatalf("leftovers after a complete run: %v", tm)
	}
}

// TestPackInterrupted: Ctrl-C during pack exits 130 and writes nothing.
func TestPackInterrupted(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "mnist.tscn")
	cmd, se := start(t, "pack", fx.mnistIn, "-o", out, "-q", "--codec", "zstd", "--workers", "1")
	// Interrupt it while it writes: once its temporary output exists (its
	// signal handler is installed by then; packing 70,000 images with zstd
	// on one worker takes seconds more).
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m, _ := filepath.Glob(filepath.Join(dir, ".mnist.tscn.*.tmp")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("pack wrote no temporary file within a minute\n%s", se)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	code := wait(t, cmd, se, 10*time.Second)
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, se)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left %d files", len(ents))
	}
}

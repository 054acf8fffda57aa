package hostile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// bin holds the binaries; fx the shared inputs, built once. Tests copy an
// input before they could change it.
var (
	bin string
	fx  struct {
		idxDir  string // IDX source: 400 + 100 gzip-compressed 12×12 images
		tiny    string // its pack, codec none (500 images)
		tiny2   string // a different dataset, same size, same file size
		small   string // 100 images
		cifar   string // 32×32×3 CIFAR-format pack (120 images)
		mnist   string // the real MNIST t10k, 10,000 images (2.8 MiB)
		mnistIn string // its source directory
	}
)

// trainFlags train a tiny network fast: every test run finishes in about
// a second on 2 cores.
var trainFlags = []string{"--backbone", "resnet_tiny", "--image-size", "8", "--batch", "32",
	"--threads", "1", "--workers", "1", "-q", "--seed", "1"}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile: setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	root, err := os.MkdirTemp("", "hostile")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	bin = filepath.Join(root, "bin")
	cmd := exec.Command("go", "build", "-o", bin+"/", "../../cmd/pack", "../../cmd/train", "../../cmd/embed")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build: %v\n%s", err, out)
	}
	d := filepath.Join(root, "data")
	fx.idxDir = filepath.Join(d, "idx")
	if _, _, err := sourcetest.WriteIDX(fx.idxDir, 400, 100, 12, 12, true, 1); err != nil {
		return 0, err
	}
	idx2, idx3 := filepath.Join(d, "id2"), filepath.Join(d, "id3") // same length as "idx": same pack size
	if _, _, err := sourcetest.WriteIDX(idx2, 400, 100, 12, 12, true, 2); err != nil {
		return 0, err
	}
	if _, _, err := sourcetest.WriteIDX(idx3, 80, 20, 12, 12, true, 3); err != nil {
		return 0, err
	}
	cif := filepath.Join(d, "cifar")
	if _, _, err := sourcetest.WriteCIFAR10(cif, 20, 3); err != nil {
		return 0, err
	}
	fx.mnistIn, err = sourcetest.MNISTDir()
	if err != nil {
		return 0, err
	}
	fx.tiny, fx.tiny2, fx.small = filepath.Join(d, "tiny.tscn"), filepath.Join(d, "tinz.tscn"), filepath.Join(d, "small.tscn")
	fx.cifar, fx.mnist = filepath.Join(d, "cifar.tscn"), filepath.Join(d, "mnist-t10k.tscn")
	for _, p := range [][]string{
		{fx.idxDir, "-o", fx.tiny, "--codec", "none"},
		{idx2, "-o", fx.tiny2, "--codec", "none"},
		{idx3, "-o", fx.small},
		{cif, "-o", fx.cifar},
		{filepath.Join(fx.mnistIn, "t10k-images-idx3-ubyte.gz"), "-o", fx.mnist},
	} {
		if out, err := exec.Command(filepath.Join(bin, "pack"), append(p, "-q")...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("pack %v: %v\n%s", p, err, out)
		}
	}
	return m.Run(), nil
}

// result is one run of a binary.
type result struct {
	args     []string
	code     int
	out, err string
	took     time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("%v: exit %d after %v\nstdout: %s\nstderr: %s", r.args, r.code, r.took.Round(time.Millisecond), r.out, r.err)
}

// run runs a binary in dir (the test's temporary directory when empty)
// with a time limit; a run past it is a hang, and fails the test.
func run(t *testing.T, limit time.Duration, dir, prog string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, prog), args...)
	cmd.Dir = dir
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	r := result{args: append([]string{prog}, args...), out: so.String(), err: se.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("hang: %s did not finish within %v\n%s", prog, limit, r)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", r.args, err)
	}
	noPanic(t, r)
	return r
}

// noPanic fails on a Go panic or runtime error (whose exit status, 2, is
// also pack verify's "damaged").
func noPanic(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "runtime error", "fatal error"} {
		if strings.Contains(r.err, s) || strings.Contains(r.out, s) {
			t.Fatalf("crash (%q):\n%s", s, r)
		}
	}
}

// fails asserts exit status code (non-zero) and an error that mentions
// every one of want, on one line "prog: ...", and no extra "exit status"
// line.
func (r result) fails(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit status %d:\n%s", code, r)
	}
	for _, w := range want {
		if !strings.Contains(r.err, w) {
			t.Fatalf("the error does not mention %q:\n%s", w, r)
		}
	}
	if strings.Contains(r.err, "exit status") {
		t.Fatalf("a stray exit-status line:\n%s", r)
	}
}

// ok asserts success.
func (r result) ok(t *testing.T) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("want success:\n%s", r)
	}
}

// sum is a file's SHA-256 ("" when missing).
func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return fmt.Sprintf("%x", h)
}

// copyFile copies src into dir and returns the copy's path.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyDir copies the regular files of src into a new directory under dir.
func copyDir(t *testing.T, src, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			copyFile(t, filepath.Join(src, e.Name()), dst)
		}
	}
	return dst
}

// temps lists the temporary files (.*.tmp) left in dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	return m
}

// trained returns a finished run directory (epochs 2,1,1 on tiny) in a new
// temporary directory.
func trained(t *testing.T, extra ...string) string {
	t.Helper()
	runDir := filepath.Join(t.TempDir(), "run")
	args := append([]string{fx.tiny, "-o", runDir, "--epochs", "2,1,1"}, trainFlags...)
	run(t, 60*time.Second, "", "train", append(args, extra...)...).ok(t)
	return runDir
}

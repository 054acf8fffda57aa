package format

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// appendSample is sample k of the tests' datasets: 8×8 RGB of
// pseudo-random pixels, label k%3, named "s<k>".
func appendSample(k int) *Sample {
	rng := rand.New(rand.NewPCG(uint64(k), 1))
	pix := make([]byte, 8*8*3)
	for i := range pix {
		pix[i] = byte(rng.IntN(256))
	}
	return &Sample{Index: k, Label: int32(k % 3), Label2: -1, Height: 8, Width: 8, Channels: 3, Data: pix, Name: "s" + strconv.Itoa(k)}
}

func writeBase(t *testing.T, path string, n int) {
	t.Helper()
	w, err := Create(path, Schema{Classes: []string{"a", "b", "c"}, HasNames: true}, &WriterOptions{ChunkSize: 1000, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < n; k++ {
		if err := w.Add(appendSample(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkSamples verifies path and that it holds samples 0..n-1 exactly.
func checkSamples(t *testing.T, path string, want int) {
	t.Helper()
	if err := VerifyFile(path, nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != want {
		t.Fatalf("%d samples, want %d", r.Len(), want)
	}
	// Every sample of small files; a spread of 500 (and the last) of large
	// ones, which Verify has checked whole.
	step := max(1, want/500)
	for k := 0; k < want; k += step {
		k := k
		if k+step >= want {
			k = want - 1
		}
		s, err := r.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		e := appendSample(k)
		if !bytes.Equal(s.Data, e.Data) || s.Label != e.Label || r.Name(k) != e.Name {
			t.Fatalf("sample %d differs after append", k)
		}
	}
}

func TestAppend(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.tscn")
	writeBase(t, p, 50)
	before, err := Open(p, nil) // opened before the append: must stay valid
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	w, err := Append(p, &WriterOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 50 {
		t.Fatalf("Len %d", w.Len())
	}
	if err := w.SetClasses([]string{"a", "c"}); err == nil {
		t.Error("SetClasses accepted a list that drops a class")
	}
	if err := w.SetClasses([]string{"a", "b", "c", "d"}); err != nil {
		t.Fatal(err)
	}
	for k := 50; k < 130; k++ {
		if err := w.Add(appendSample(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkSamples(t, p, 130)
	r, _ := Open(p, nil)
	if got := r.Schema().Classes; strings.Join(got, ",") != "a,b,c,d" {
		t.Errorf("classes %v", got)
	}
	r.Close()
	// The reader opened before still reads the old version, all of it.
	if before.Len() != 50 {
		t.Fatalf("old reader: %d samples", before.Len())
	}
	if err := before.Verify(nil); err != nil {
		t.Fatalf("old reader after the append: %v", err)
	}
	for k := 0; k < 50; k++ {
		s, err := before.Get(k)
		if err != nil || !bytes.Equal(s.Data, appendSample(k).Data) {
			t.Fatalf("old reader, sample %d: %v", k, err)
		}
	}
	// A wrong shape is refused by the fixed-shape check; an abort leaves
	// the file as it was.
	w, err = Append(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := appendSample(130)
	bad.Height, bad.Data = 4, bad.Data[:4*8*3]
	if err := w.Add(bad); err == nil || !strings.Contains(err.Error(), "fixed") {
		t.Errorf("wrong shape: %v", err)
	}
	w.Abort()
	checkSamples(t, p, 130)
	if _, err := Append(p, &WriterOptions{Codec: "zstd"}); err == nil {
		t.Error("a different codec was accepted")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// TestAppendConcurrent: a second append to a file while one is under way
// is refused, naming the file (it would copy the old version, and its
// commit would drop the first one's samples); once the first commits, the
// next append sees its samples and adds after them.
func TestAppendConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.tscn")
	writeBase(t, p, 20)
	w1, err := Append(p, &WriterOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for k := 20; k < 30; k++ {
		if err := w1.Add(appendSample(k)); err != nil {
			t.Fatal(err)
		}
	}
	if w2, err := Append(p, nil); err == nil {
		w2.Abort()
		t.Fatal("a second append while the first is under way was accepted")
	} else if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "another process is appending") {
		t.Fatalf("second append: %v", err)
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := Append(p, nil)
	if err != nil {
		t.Fatalf("append after the first committed: %v", err)
	}
	if w2.Len() != 30 {
		t.Fatalf("the second append sees %d samples, want 30", w2.Len())
	}
	for k := 30; k < 35; k++ {
		if err := w2.Add(appendSample(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	checkSamples(t, p, 35)
	// An aborted append releases the file too.
	w3, err := Append(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	w3.Abort()
	w4, err := Append(p, nil)
	if err != nil {
		t.Fatalf("append after an abort: %v", err)
	}
	w4.Abort()
}

// The kill -9 test's child: append samples n0..n1-1 to the file, slowly
// enough (a pause every few samples) that the parent's kill lands in every
// phase: the copy, the chunks, the metadata, the rename.
func TestMain(m *testing.M) {
	if p := os.Getenv("TSIMCNE_APPEND_CHILD"); p != "" {
		var n0, n1 int
		fmt.Sscan(os.Getenv("TSIMCNE_APPEND_RANGE"), &n0, &n1)
		w, err := Append(p, &WriterOptions{Workers: 2})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		for k := n0; k < n1; k++ {
			if err := w.Add(appendSample(k)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			if k%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if err := w.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAppendKill9 kills a real child process (this test binary, re-run as
// an appender) with SIGKILL at random points of an append, many times:
// after each kill the file must verify clean and hold either exactly the
// previous version or exactly the new one.
func TestAppendKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "k.tscn")
	n := 2000
	writeBase(t, p, n)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := func(n0, n1 int) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "TSIMCNE_APPEND_CHILD="+p, fmt.Sprintf("TSIMCNE_APPEND_RANGE=%d %d", n0, n1))
		return cmd
	}
	// One uninterrupted run times an append, so that the kills spread
	// over all of it (process start included).
	const step = 3000
	start := time.Now()
	if out, err := child(n, n+step).CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	full := time.Since(start)
	n += step
	checkSamples(t, p, n)
	rng := rand.New(rand.NewPCG(42, 0))
	kills, completed := 0, 0
	for try := 0; try < 25; try++ {
		cmd := child(n, n+step)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Float64() * 1.1 * float64(full)))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		r, oerr := Open(p, nil)
		if oerr != nil {
			t.Fatalf("try %d: after kill -9 the file does not open: %v", try, oerr)
		}
		got := r.Len()
		r.Close()
		switch {
		case got == n+step:
			completed++
			n += step
		case got == n:
			kills++
		default:
			t.Fatalf("try %d: %d samples, want %d or %d (child: %v)", try, got, n, n+step, err)
		}
		checkSamples(t, p, n)
	}
	t.Logf("%d appends killed midway, %d completed before the kill; uninterrupted append %v", kills, completed, full)
	if kills < 5 {
		t.Errorf("only %d of 25 kills landed during an append", kills)
	}
}

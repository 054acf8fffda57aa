package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteCommitsOrLeavesOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	if err := Write(p, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Write(p, 0o644, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "one" {
		t.Fatalf("content %q after a failed write, want the old one", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left %d files behind", len(ents))
	}
}

// TestStaleTempRemoved: a temporary file whose writer died (no lock) is
// removed by the next write to the same path; one a live writer holds is
// left alone (issue 16: leftovers of kill -9 never accumulate).
func TestStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	for i := range 3 {
		os.WriteFile(filepath.Join(dir, ".out.bin."+string(rune('a'+i))+".tmp"), make([]byte, 1000), 0o600)
	}
	live, err := CreateTemp(p) // a writer still at work
	if err != nil {
		t.Fatal(err)
	}
	defer Discard(live)
	if err := Write(p, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(ents) != 2 {
		t.Fatalf("left %v, want out.bin and the live writer's temporary file", names)
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Fatalf("the live writer's file was removed: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ".stage1.safetensors.x.tmp"), nil, 0o600)
	if n := RemoveStaleDir(dir); n != 1 {
		t.Fatalf("RemoveStaleDir removed %d, want 1 (not the live one)", n)
	}
}

// TestCheckNotInput: an output that is an input by another name, a hard
// link or a symbolic link is refused; a new file or another file is not.
func TestCheckNotInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.WriteFile(in, []byte("data"), 0o644)
	os.Link(in, filepath.Join(dir, "hard"))
	os.Symlink(in, filepath.Join(dir, "soft"))
	os.WriteFile(filepath.Join(dir, "other"), nil, 0o644)
	for _, out := range []string{in, filepath.Join(dir, ".", "in"), filepath.Join(dir, "hard"), filepath.Join(dir, "soft")} {
		if err := CheckNotInput("-o", out, in); !errors.Is(err, ErrIsInput) {
			t.Errorf("%s: %v", out, err)
		}
	}
	for _, out := range []string{filepath.Join(dir, "new"), filepath.Join(dir, "other")} {
		if err := CheckNotInput("-o", out, in); err != nil {
			t.Errorf("%s: %v", out, err)
		}
	}
}

// TestLockBusy: a second Lock of the same file fails until the first is
// released.
func TestLockBusy(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".lock")
	release, err := Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(p); !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: %v", err)
	}
	release()
	r2, err := Lock(p)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2()
}

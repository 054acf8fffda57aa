package hostile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// TestPackFolders: image folders with damaged files, odd names and flags
// that do not apply.
func TestPackFolders(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "my photos ünïcode")
	if _, err := sourcetest.WriteImageFolder(root, sourcetest.FolderOptions{Seed: 1, Broken: true}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out put.tscn")
	// A damaged image fails the pack, naming the file.
	r := run(t, quick, dir, "pack", root, "-o", out, "--resize", "16x16")
	r.fails(t, 1)
	if !strings.Contains(r.err, "truncated.jpg") && !strings.Contains(r.err, "garbage.png") && !strings.Contains(r.err, "empty.jpg") {
		t.Fatalf("the error does not name the damaged image:\n%s", r)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a failed pack wrote its output")
	}
	// --skip-bad packs the rest and lists all three.
	r = run(t, quick, dir, "pack", root, "-o", out, "--resize", "16x16", "--skip-bad", "-q")
	r.ok(t)
	for _, name := range []string{"truncated.jpg", "garbage.png", "empty.jpg"} {
		if !strings.Contains(r.err, name) {
			t.Fatalf("--skip-bad does not list %s:\n%s", name, r)
		}
	}
	run(t, quick, dir, "pack", "verify", "-q", out).ok(t)
	// Flags that contradict each other or do not apply.
	run(t, quick, dir, "pack", root, "-o", out, "--keep-encoded", "--resize", "8x8").fails(t, 1, "keep-encoded")
	run(t, quick, dir, "pack", root, "-o", out, "--workers", "-1").fails(t, 1, "--workers -1")
	// A class directory that is a symbolic-link loop does not hang.
	os.Symlink(root, filepath.Join(root, "cat", "loop"))
	run(t, quick, dir, "pack", root, "-o", filepath.Join(dir, "loop.tscn"), "--resize", "16x16", "--skip-bad", "-q")
}

// TestEmbedBadFlags: negative sizes are refused, not read as defaults.
func TestEmbedBadFlags(t *testing.T) {
	runDir := trained(t)
	out := filepath.Join(t.TempDir(), "e.arrow")
	for _, f := range []string{"--batch", "--threads", "--workers"} {
		run(t, quick, "", "embed", runDir, fx.tiny, "-o", out, f, "-3").fails(t, 1, f+" -3")
	}
	run(t, quick, "", "embed", runDir, fx.tiny, "-o", out, "--device", "tpu").fails(t, 1, "tpu")
}

package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppendAndResumeFlags drives --append, --commit-every and --resume
// through the command line.
func TestAppendAndResumeFlags(t *testing.T) {
	dir := t.TempDir()
	mk := func(root string, classes ...string) {
		for ci, c := range classes {
			os.MkdirAll(filepath.Join(root, c), 0o755)
			for k := 0; k < 5; k++ {
				img := image.NewRGBA(image.Rect(0, 0, 4, 4))
				for i := range img.Pix {
					img.Pix[i] = byte(ci*50 + k*9 + i)
				}
				var b bytes.Buffer
				png.Encode(&b, img)
				os.WriteFile(filepath.Join(root, c, fmt.Sprintf("%d.png", k)), b.Bytes(), 0o644)
			}
		}
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mk(a, "cat", "dog")
	mk(b, "dog", "emu")
	out := filepath.Join(dir, "o.tscn")
	mustRun(t, a, "-o", out, "-q", "--commit-every", "3", "--resume")
	got := mustRun(t, a, "-o", out, "-q", "--commit-every", "3", "--resume")
	if !strings.Contains(got, "nothing to append: all 10 source samples are already in") {
		t.Errorf("second --resume: %q", got)
	}
	got = mustRun(t, "--append", out, b, "-q")
	if !strings.Contains(got, "which held 10 samples") {
		t.Errorf("--append: %q", got)
	}
	info := mustRun(t, "info", out, "--json")
	if !strings.Contains(info, `"emu"`) || !strings.Contains(info, `"samples": 20`) {
		t.Errorf("info after append: %s", info)
	}
	mustRun(t, "verify", out)
	if _, _, err := run(t, "--append", out, "-o", filepath.Join(dir, "x.tscn"), b); err == nil {
		t.Error("--append with a different -o accepted")
	}
	if _, _, err := run(t, b); err == nil || !strings.Contains(err.Error(), "--append") {
		t.Errorf("no -o: %v", err)
	}
}

package hostile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// smallDisk mounts a tmpfs of size (mount's syntax: "1m") at a new
// directory, for as long as the test runs. It needs root (CI runs as root);
// elsewhere the test is skipped.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs (root, but not allowed here?): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func resize(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
}

// TestFullDisk: pack, embed and train on a disk that fills up fail with an
// error naming the file and the cause, exit non-zero, leave no partial
// output and no temporary file, and keep the last good checkpoint; training
// resumes once there is room.
func TestFullDisk(t *testing.T) {
	disk := smallDisk(t, "1m")

	out := filepath.Join(disk, "mnist.tscn")
	r := run(t, quick, disk, "pack", filepath.Join(fx.mnistIn, "t10k-images-idx3-ubyte.gz"), "-o", out, "-q")
	r.fails(t, 1, "no space left on device", "mnist.tscn")
	if ents, _ := os.ReadDir(disk); len(ents) != 0 {
		t.Fatalf("a full disk kept %d files", len(ents))
	}

	runDir := trained(t)
	emb := filepath.Join(disk, "e.arrow")
	r = run(t, quick, disk, "embed", runDir, fx.mnist, "-o", emb, "--features", "--allow-other-shape", "-q")
	r.fails(t, 1, "no space left on device", "e.arrow")
	if ents, _ := os.ReadDir(disk); len(ents) != 0 {
		t.Fatalf("a full disk kept %d files", len(ents))
	}

	// A resnet_tiny checkpoint is 4.4 MiB: 10 MiB holds the first one and
	// the stage-1 copy, not the third write.
	resize(t, disk, "10m")
	rd := filepath.Join(disk, "run")
	args := append([]string{fx.tiny, "-o", rd, "--epochs", "3,1,1", "--checkpoint-every", "1"}, trainFlags...)
	r = run(t, 2*quick, "", "train", args...)
	r.fails(t, 1, "no space left on device")
	t.Logf("train on a full disk: %s", strings.TrimSpace(r.err))
	if !strings.Contains(r.err, ".safetensors") {
		t.Fatalf("the error does not name the checkpoint:\n%s", r)
	}
	if _, _, err := safetensors.Read(filepath.Join(rd, tsimcne.CheckpointFile)); err != nil {
		t.Fatalf("the last checkpoint after a full disk: %v", err)
	}
	if tm := temps(t, rd); len(tm) > 0 {
		t.Fatalf("leftovers %v", tm)
	}
	resize(t, disk, "64m")
	run(t, 2*quick, "", "train", "--resume", "-o", rd, fx.tiny, "-q").ok(t)
}

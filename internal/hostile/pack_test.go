package hostile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

const quick = 30 * time.Second

// TestPackOutputIsInput: -o naming a source file, by the same name, another
// spelling, a hard link or a symbolic link, is refused and the file is
// untouched (issue 16, data loss with exit 0).
func TestPackOutputIsInput(t *testing.T) {
	dir := t.TempDir()
	src := copyDir(t, fx.idxDir, dir)
	img := filepath.Join(src, "train-images-idx3-ubyte.gz")
	lab := filepath.Join(src, "t10k-labels-idx1-ubyte.gz")
	os.Link(lab, filepath.Join(dir, "hard.gz"))
	os.Symlink(img, filepath.Join(dir, "soft.gz"))
	before := map[string]string{img: sum(t, img), lab: sum(t, lab)}
	for _, c := range []struct{ args []string }{
		{[]string{src, "-o", img}},
		{[]string{src, "-o", filepath.Join(src, ".", "..", "idx", "train-images-idx3-ubyte.gz")}},
		{[]string{src, "-o", filepath.Join(dir, "hard.gz")}},
		{[]string{src, "-o", filepath.Join(dir, "soft.gz")}},
		{[]string{img, "-o", img}},
		{[]string{src, "-o", lab, "--shuffle", "--codec", "zstd"}},
	} {
		r := run(t, quick, dir, "pack", c.args...)
		r.fails(t, 1, "refusing to overwrite an input", "nothing was written")
	}
	for p, s := range before {
		if sum(t, p) != s {
			t.Fatalf("%s changed", p)
		}
	}
	if tm := temps(t, src); len(tm) > 0 {
		t.Fatalf("leftovers %v", tm)
	}
	// Writing a new pack into the source directory, twice, is fine.
	out := filepath.Join(src, "p.tscn")
	run(t, quick, dir, "pack", src, "-o", out, "-q").ok(t)
	run(t, quick, dir, "pack", src, "-o", out, "-q").ok(t)
}

// TestPackBadArguments: bad paths, flags and sources give one clear line
// naming what is wrong, exit status 1, and nothing written.
func TestPackBadArguments(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello"), 0o644)
	out := filepath.Join(dir, "out.tscn")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{filepath.Join(dir, "missing"), "-o", out}, []string{"missing"}},
		{[]string{empty, "-o", out}, []string{"empty"}},
		{[]string{text, "-o", out}, []string{"notes.txt"}},
		{[]string{fx.idxDir}, []string{"output"}},
		{[]string{fx.idxDir, "-o", dir}, []string{"is a directory"}},
		{[]string{fx.idxDir, "-o", filepath.Join(dir, "no", "such", "dir", "x.tscn")}, []string{"x.tscn"}},
		{[]string{fx.idxDir, "-o", out, "--chunk-size", "0"}, []string{"--chunk-size"}},
		{[]string{fx.idxDir, "-o", out, "--chunk-size", "lots"}, []string{"--chunk-size"}},
		{[]string{fx.idxDir, "-o", out, "--chunk-size", "9GiB"}, []string{"--chunk-size"}},
		{[]string{fx.idxDir, "-o", out, "--codec", "brotli"}, []string{"--codec"}},
		{[]string{fx.idxDir, "-o", out, "--resize", "0x5"}, []string{"--resize"}},
		{[]string{fx.idxDir, "-o", out, "--resize", "big"}, []string{"--resize"}},
		{[]string{fx.idxDir, "-o", out, "--from", "imagenet"}, []string{"imagenet"}},
		{[]string{fx.idxDir, "-o", out, "--from", "cifar10"}, []string{"CIFAR-10", "data_batch_1.bin"}},
		{[]string{fx.idxDir, "-o", out, "--channels", "2"}, []string{"channels"}},
		{[]string{fx.idxDir, "-o", out, "--workers", "x"}, []string{"--workers"}},
		{[]string{fx.idxDir, "-o", out, "--bogus"}, []string{"--bogus"}},
	} {
		r := run(t, quick, dir, "pack", c.args...)
		r.fails(t, 1, c.want...)
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v wrote %s", c.args, out)
		}
	}
}

// TestPackDamagedSources: truncated, mislabelled and inconsistent IDX and
// CIFAR inputs are refused naming the file (and record), never packed.
func TestPackDamagedSources(t *testing.T) {
	hdr := func(magic uint32, dims ...uint32) []byte {
		b := []byte{byte(magic >> 24), byte(magic >> 16), byte(magic >> 8), byte(magic)}
		for _, d := range dims {
			b = append(b, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
		}
		return b
	}
	px := make([]byte, 4*3*3)
	cases := []struct {
		name           string
		images, labels []byte
		want           []string
	}{
		{"label 200", append(hdr(0x803, 4, 3, 3), px...), append(hdr(0x801, 4), 1, 200, 3, 4), []string{"labels-idx1-ubyte", "record 1", "label 200", "10..199"}},
		{"truncated images", append(hdr(0x803, 4, 3, 3), px[:20]...), append(hdr(0x801, 4), 1, 2, 3, 4), []string{"images-idx3-ubyte"}},
		{"extra image bytes", append(hdr(0x803, 4, 3, 3), append(px, 9)...), append(hdr(0x801, 4), 1, 2, 3, 4), []string{"images-idx3-ubyte"}},
		{"count mismatch", append(hdr(0x803, 4, 3, 3), px...), append(hdr(0x801, 3), 1, 2, 3), []string{"3 labels", "4 images"}},
		{"huge claimed count", append(hdr(0x803, 0xffffffff, 3, 3), px...), append(hdr(0x801, 4), 1, 2, 3, 4), []string{"images-idx3-ubyte"}},
		{"wrong magic", append(hdr(0x801, 4, 3, 3), px...), append(hdr(0x801, 4), 1, 2, 3, 4), []string{"images-idx3-ubyte"}},
		{"zero-size images", hdr(0x803, 4, 0, 3), append(hdr(0x801, 4), 1, 2, 3, 4), []string{"images-idx3-ubyte"}},
		{"empty labels file", append(hdr(0x803, 4, 3, 3), px...), nil, []string{"labels-idx1-ubyte"}},
		{"bad gzip", append(hdr(0x803, 4, 3, 3), px...), []byte{0x1f, 0x8b, 8, 0, 1, 2}, []string{"labels-idx1-ubyte"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), c.images, 0o644)
			os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), c.labels, 0o644)
			r := run(t, quick, dir, "pack", dir, "-o", filepath.Join(dir, "out.tscn"))
			r.fails(t, 1, c.want...)
			if _, err := os.Stat(filepath.Join(dir, "out.tscn")); err == nil {
				t.Fatal("a pack was written")
			}
		})
	}
	t.Run("cifar label 200", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := sourcetest.WriteCIFAR10(dir, 3, 1); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "data_batch_2.bin")
		b, _ := os.ReadFile(p)
		b[3073] = 200 // the second record's label
		os.WriteFile(p, b, 0o644)
		run(t, quick, dir, "pack", dir, "-o", filepath.Join(dir, "out.tscn")).fails(t, 1, "data_batch_2.bin", "record 1", "label 200")
	})
	t.Run("cifar truncated", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := sourcetest.WriteCIFAR10(dir, 3, 1); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "test_batch.bin")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)-100], 0o644)
		run(t, quick, dir, "pack", dir, "-o", filepath.Join(dir, "out.tscn")).fails(t, 1, "test_batch.bin", "truncated")
	})
}

// TestPackInspect: verify, info and get on missing, damaged, truncated and
// foreign files, and indices out of range.
func TestPackInspect(t *testing.T) {
	dir := t.TempDir()
	good := copyFile(t, fx.small, dir)
	b, _ := os.ReadFile(good)
	bad := filepath.Join(dir, "bad.tscn")
	nb := append([]byte(nil), b...)
	nb[len(nb)/3] ^= 0x10
	os.WriteFile(bad, nb, 0o644)
	trunc := filepath.Join(dir, "trunc.tscn")
	os.WriteFile(trunc, b[:len(b)-50], 0o644)
	empty := filepath.Join(dir, "empty.tscn")
	os.WriteFile(empty, nil, 0o644)
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a pack at all, just some words"), 0o644)

	run(t, quick, dir, "pack", "verify", "-q", good).ok(t)
	// Not there, or not a file: an error (1), not "DAMAGED" (2).
	for _, p := range []string{filepath.Join(dir, "missing.tscn"), dir} {
		r := run(t, quick, dir, "pack", "verify", p)
		r.fails(t, 1, filepath.Base(p))
		if strings.Contains(r.err, "DAMAGED") {
			t.Fatalf("a missing file reported as damaged:\n%s", r)
		}
	}
	// A damaged pack: 2, naming the file and what is damaged.
	run(t, quick, dir, "pack", "verify", "-q", bad).fails(t, 2, "DAMAGED", "bad.tscn", "chunk")
	run(t, quick, dir, "pack", "verify", "-q", trunc).fails(t, 2, "DAMAGED", "trunc.tscn")
	// Not a pack at all: 1.
	for _, p := range []string{empty, text} {
		run(t, quick, dir, "pack", "verify", "-q", p).fails(t, 1, filepath.Base(p), "not a packed dataset file")
	}
	for _, p := range []string{bad, trunc, empty, text} {
		// info reads the metadata only: the flipped chunk byte passes it,
		// but every other file is refused.
		r := run(t, quick, dir, "pack", "info", p)
		if p != bad {
			r.fails(t, 1, filepath.Base(p))
		}
	}
	r := run(t, quick, dir, "pack", "get", good, "-1")
	r.fails(t, 1, "INDEX -1")
	run(t, quick, dir, "pack", "get", good, "100").fails(t, 1, "sample 100", "100")
	run(t, quick, dir, "pack", "get", good, "1e3").fails(t, 1, "INDEX")
	run(t, quick, dir, "pack", "get", good, "99999999999999999999").fails(t, 1, "INDEX")
	before := sum(t, good)
	run(t, quick, dir, "pack", "get", good, "3", "-o", good).fails(t, 1, "refusing to overwrite an input")
	if sum(t, good) != before {
		t.Fatal("pack get -o overwrote its input")
	}
	run(t, quick, dir, "pack", "get", good, "3", "-o", filepath.Join(dir, "s.png")).ok(t)
	run(t, quick, dir, "pack", "get", bad, "99", "-o", filepath.Join(dir, "t.png"))
}

// TestPackConcurrentWriters: four packs racing to one output all finish;
// the file left is a complete, verified pack, and no temporary file is
// left behind.
func TestPackConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.tscn")
	done := make(chan result, 4)
	for i := range 4 {
		go func() {
			args := []string{fx.idxDir, "-o", out, "-q"}
			if i%2 == 1 {
				args = append(args, "--shuffle", "--seed", "3")
			}
			done <- run(t, 2*quick, dir, "pack", args...)
		}()
	}
	for range 4 {
		(<-done).ok(t)
	}
	run(t, quick, dir, "pack", "verify", "-q", out).ok(t)
	if tm := temps(t, dir); len(tm) > 0 {
		t.Fatalf("leftovers %v", tm)
	}
}

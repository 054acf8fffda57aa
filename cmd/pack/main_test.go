package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/cli"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// run executes the pack CLI in-process and returns stdout, stderr and the
// error Execute returned.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	// Packing prints its summary with fmt.Printf; capture os.Stdout too.
	old := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	err := root.Execute()
	w.Close()
	os.Stdout = old
	out.Write(<-done)
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, err := run(t, args...)
	if err != nil {
		t.Fatalf("pack %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return out
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// rgbOf returns an image's pixels as HWC RGB bytes.
func rgbOf(img image.Image) []byte {
	b := img.Bounds()
	out := make([]byte, 0, b.Dx()*b.Dy()*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			out = append(out, byte(r>>8), byte(g>>8), byte(bl>>8))
		}
	}
	return out
}

// TestCIFAR10Acceptance is the acceptance path on a full-size
// CIFAR-10-format directory: 60,000 samples in one file, info, verify,
// single-byte damage anywhere, truncation, and get returning the exact
// source pixels.
func TestCIFAR10Acceptance(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "cifar-10-batches-bin")
	pixels, labels, err := sourcetest.WriteCIFAR10(src, 10000, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cifar10.tscn")
	mustRun(t, src, "-o", out, "-q", "--shuffle", "--seed", "3")

	var info Info
	if err := json.Unmarshal([]byte(mustRun(t, "info", out, "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Samples != 60000 || len(info.Classes) != 10 || info.Codec != "lz4" || info.Chunks < 2 || len(info.Fields) < 3 {
		t.Fatalf("info: %+v", info)
	}
	if s := mustRun(t, "verify", out, "-q"); !strings.Contains(s, "OK") {
		t.Fatalf("verify: %q", s)
	}
	human := mustRun(t, "info", out)
	for _, want := range []string{"samples:  60000", "classes:  10", "codec lz4", "shuffled"} {
		if !strings.Contains(human, want) {
			t.Errorf("info lacks %q:\n%s", want, human)
		}
	}

	// get: exact source pixels and label for indices spread over all six
	// batches, including the first and last.
	rng := rand.New(rand.NewPCG(1, 1))
	idx := []int{0, 9999, 10000, 49999, 50000, 59999}
	for range 20 {
		idx = append(idx, rng.IntN(60000))
	}
	png := filepath.Join(dir, "s.png")
	for _, i := range idx {
		s := mustRun(t, "get", out, itoa(i), "-o", png)
		if !strings.Contains(s, "label "+itoa(int(labels[i]))+" ") {
			t.Fatalf("get %d: %q, want label %d", i, s, labels[i])
		}
		if got := rgbOf(readPNG(t, png)); !bytes.Equal(got, pixels[i]) {
			t.Fatalf("get %d: pixels differ from the source", i)
		}
	}
	// Every sample through the reader, for completeness.
	r, err := format.Open(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60000 {
		s, err := r.Get(i)
		if err != nil || !bytes.Equal(s.Data, pixels[i]) || s.Label != labels[i] {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	r.Close()

	orig, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Single-byte changes: every byte of the header, the metadata and the
	// footer, and bytes spread through the chunks (all of them would take
	// hours; the in-package sweep flips every byte of a smaller file).
	ft := orig[len(orig)-format.FooterSize:]
	dataEnd := int(binary.LittleEndian.Uint64(ft[24:]))
	var positions []int
	for p := range format.HeaderSize {
		positions = append(positions, p)
	}
	for p := dataEnd; p < len(orig); p += max(1, (len(orig)-dataEnd)/600) {
		positions = append(positions, p)
	}
	for p := len(orig) - format.FooterSize; p < len(orig); p++ {
		positions = append(positions, p)
	}
	for range 200 {
		positions = append(positions, format.HeaderSize+rng.IntN(dataEnd-format.HeaderSize))
	}
	bad := filepath.Join(dir, "bad.tscn")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(orig)
	f.Close()
	for _, p := range positions {
		flip(t, bad, p, orig[p]^0x40)
		if err := format.VerifyFile(bad, nil); err == nil {
			t.Fatalf("a change at byte %d of %d is not detected", p, len(orig))
		}
		flip(t, bad, p, orig[p])
	}
	// Through the CLI: exit status 2 and the damaged part named.
	ci := chunkOffset(t, out, 5)
	flip(t, bad, int(ci), orig[ci]^1)
	_, errs, err := run(t, "verify", bad, "-q")
	var ee cli.ExitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(errs, "chunk 5 is damaged") {
		t.Fatalf("verify of a damaged chunk: %v, %q", err, errs)
	}
	// Truncated files fail verify with a clear message.
	for _, n := range []int{len(orig) - 1, len(orig) - format.FooterSize, dataEnd, len(orig) / 2, 100, 10, 0} {
		os.WriteFile(bad, orig[:n], 0o644)
		_, errs, err := run(t, "verify", bad, "-q")
		if err == nil || !(strings.Contains(errs+err.Error(), "truncated") || strings.Contains(errs+err.Error(), "not a packed dataset file")) {
			t.Fatalf("verify of a file truncated to %d bytes: %v %q", n, err, errs)
		}
	}
}

func chunkOffset(t *testing.T, path string, c int) int64 {
	r, err := format.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ci := r.Chunk(c)
	return ci.Offset + int64(ci.Stored)/2
}

func flip(t *testing.T, path string, p int, b byte) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b}, int64(p)); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + formatInt(i)) }

func formatInt(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestCIFAR100TarRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tgz := filepath.Join(dir, "cifar-100-binary.tar.gz")
	pixels, fine, coarse, err := sourcetest.WriteCIFAR100Tar(tgz, 300, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "c100.tscn")
	mustRun(t, tgz, "-o", out, "-q", "--codec", "zstd")
	r, err := format.Open(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != 400 || r.Schema().Label2Name != "coarse_label" || len(r.Schema().Classes) != 100 || len(r.Schema().Classes2) != 20 {
		t.Fatalf("schema %+v, %d samples", r.Schema(), r.Len())
	}
	for i := range 400 {
		s, err := r.Get(i)
		if err != nil || !bytes.Equal(s.Data, pixels[i]) || s.Label != fine[i] || s.Label2 != coarse[i] {
			t.Fatalf("sample %d: %v %d/%d vs %d/%d", i, err, s.Label, s.Label2, fine[i], coarse[i])
		}
	}
}

// readIDXgz is an independent IDX reader for the round-trip oracle.
func readIDXgz(t *testing.T, path string) (dims []int, data []byte) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	nd := int(b[3])
	for d := range nd {
		dims = append(dims, int(binary.BigEndian.Uint32(b[4+4*d:])))
	}
	return dims, b[4+4*nd:]
}

// TestRealIDXRoundTrip packs MNIST (from the GoMNIST module) and
// Fashion-MNIST (Debian's dataset-fashion-mnist) and compares every pixel
// and label with an independent reading of the IDX files.
func TestRealIDXRoundTrip(t *testing.T) {
	mnist, err := sourcetest.MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	fashion, err := sourcetest.FashionMNISTDir()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("Fashion-MNIST not installed here (CI installs it): %v", err)
		}
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, first string
	}{{mnist, "0"}, {fashion, "T-shirt/top"}} {
		out := filepath.Join(t.TempDir(), "idx.tscn")
		mustRun(t, c.dir, "-o", out, "-q")
		r, err := format.Open(out, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != 70000 || r.Schema().Classes[0] != c.first {
			t.Fatalf("%s: %d samples, classes %v", c.dir, r.Len(), r.Schema().Classes)
		}
		i := 0
		for _, part := range []string{"train", "t10k"} {
			dims, px := readIDXgz(t, filepath.Join(c.dir, part+"-images-idx3-ubyte.gz"))
			_, lb := readIDXgz(t, filepath.Join(c.dir, part+"-labels-idx1-ubyte.gz"))
			n, sz := dims[0], dims[1]*dims[2]
			for k := range n {
				s, err := r.Get(i)
				if err != nil || s.Height != 28 || s.Width != 28 || s.Channels != 1 ||
					!bytes.Equal(s.Data, px[k*sz:(k+1)*sz]) || s.Label != int32(lb[k]) {
					t.Fatalf("%s: sample %d (%s #%d) differs: %v", c.dir, i, part, k, err)
				}
				i++
			}
		}
		if i != 70000 {
			t.Fatalf("%s: compared %d samples", c.dir, i)
		}
		r.Close()
	}
}

// TestImageFolder: mixed formats and sizes with broken files fail the pack
// naming the file and leaving nothing; --skip-bad skips and lists them;
// --resize and --keep-encoded store what they say.
func TestImageFolder(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "photos")
	fo, err := sourcetest.WriteImageFolder(root, sourcetest.FolderOptions{Seed: 4, Broken: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "photos.tscn")
	_, _, err = run(t, root, "-o", out, "-q")
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("pack of a folder with broken files: %v", err)
	}
	named := false
	for _, s := range fo.Samples {
		if s.Broken != "" && strings.Contains(err.Error(), filepath.Base(s.Name)) {
			named = true
		}
	}
	if !named {
		t.Fatalf("error does not name a broken file: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("a failed pack left files behind: %v", ents)
	}

	_, errs, err := run(t, root, "-o", out, "-q", "--skip-bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fo.Samples {
		if s.Broken != "" && !strings.Contains(errs, s.Name) {
			t.Errorf("skip list lacks %s:\n%s", s.Name, errs)
		}
	}
	good := fo.Good()
	r, err := format.Open(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != len(good) || r.Schema().Image.Fixed {
		t.Fatalf("%d samples (want %d), fixed=%v for mixed sizes", r.Len(), len(good), r.Schema().Image.Fixed)
	}
	for i, g := range good {
		s, err := r.Get(i)
		if err != nil || s.Name != g.Name || s.Label != g.Label || s.Width != g.Width || s.Height != g.Height || s.Channels != 3 {
			t.Fatalf("sample %d: %+v %v, want %s %dx%d label %d", i, s.Name, err, g.Name, g.Width, g.Height, g.Label)
		}
		if !g.Lossy && !bytes.Equal(s.Data, g.RGB) {
			t.Fatalf("sample %d (%s): lossless pixels differ", i, g.Name)
		}
	}
	r.Close()

	// --resize: fixed shape.
	mustRun(t, root, "-o", out, "-q", "--skip-bad", "--resize", "24x16")
	r, _ = format.Open(out, nil)
	if im := r.Schema().Image; !im.Fixed || im.Width != 24 || im.Height != 16 || im.Channels != 3 || r.Len() != len(good) {
		t.Fatalf("--resize: %+v", im)
	}
	r.Close()

	// --keep-encoded: the original bytes, and get decodes them.
	mustRun(t, root, "-o", out, "-q", "--skip-bad", "--keep-encoded")
	r, _ = format.Open(out, nil)
	if !r.Schema().Image.Encoded || r.Schema().Codec != "none" {
		t.Fatalf("--keep-encoded: %+v", r.Schema())
	}
	for i, g := range good {
		s, _ := r.Get(i)
		orig, _ := os.ReadFile(filepath.Join(root, filepath.FromSlash(g.Name)))
		if !bytes.Equal(s.Data, orig) || s.Format.String() != g.Format {
			t.Fatalf("sample %d (%s): stored bytes differ from the file", i, g.Name)
		}
		if !g.Lossy && !g.Alpha {
			png := filepath.Join(dir, "g.png")
			mustRun(t, "get", out, itoa(i), "-o", png)
			if got := rgbOf(readPNG(t, png)); !bytes.Equal(got, g.RGB) {
				t.Fatalf("get %d (%s): pixels differ", i, g.Name)
			}
		}
	}
	r.Close()
}

func TestBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dir, "-o", filepath.Join(dir, "x")}, "looked for"},
		{[]string{filepath.Join(dir, "missing"), "-o", filepath.Join(dir, "x")}, "missing"},
		{[]string{dir, "-o", filepath.Join(dir, "x"), "--chunk-size", "big"}, "--chunk-size"},
		{[]string{dir, "-o", filepath.Join(dir, "x"), "--codec", "gzip"}, "--codec"},
		{[]string{dir, "-o", filepath.Join(dir, "x"), "--resize", "64"}, "--resize"},
		{[]string{"info", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"get", filepath.Join(dir, "missing"), "x"}, "not an integer"},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pack %v: %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

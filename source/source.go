// Package source opens the input datasets that pack converts into a packed
// file: CIFAR-10 and CIFAR-100 in their binary distribution, IDX files (MNIST,
// Fashion-MNIST) and image folders laid out as root/<class>/**/<image>.
//
// Every Dataset exposes its samples by index in dataset order, which is part
// of the contract because the packed file keeps each sample's original index
// and users map results back through it:
//
//   - CIFAR-10: data_batch_1.bin … data_batch_5.bin, then test_batch.bin, in
//     that numbered order whatever the order of the arguments or of the
//     members of a .tar.gz archive; records in file order.
//   - CIFAR-100: train.bin, then test.bin; records in file order.
//   - IDX: the train-* pair, then the t10k-* pair, then any other pairs in
//     the order given; images in file order.
//   - Image folders: roots in the order given; within a root, samples sorted
//     by class name, then by the path relative to the class directory
//     (byte order of the slash-separated path).
//
// Pixels are always uint8 in HWC order (height, width, channels).
//
// CIFAR and IDX files are read into memory once at Open (the largest, all of
// CIFAR-10, is 184 MB), so Load is a copy (IDX) or a CHW→HWC transpose
// (CIFAR) with no allocation once the Sample has capacity. Gzip files and
// .tar.gz archives are decompressed at Open.
//
// Image folders are decoded at Load, which makes them decode-bound. Colour
// handling follows torchvision's ImageFolder, which calls PIL's
// Image.convert("RGB"):
//
//   - grayscale images (8- or 16-bit) are replicated to three channels;
//   - RGBA, NRGBA and paletted images are converted to RGB by dropping the
//     alpha channel (the stored colour is kept, not composited on a
//     background); premultiplied sources are un-premultiplied first;
//   - CMYK JPEGs are converted with Go's CMYK→RGB rule;
//   - 16-bit images keep their high byte;
//   - lossy WebP is converted to RGB as libwebp does (limited-range BT.601
//     with interpolated chroma), bit-exact with PIL; x/image/webp returns it
//     as a full-range image.YCbCr, whose own conversion is off by up to ~24
//     levels (golang/go#40173);
//   - animated GIFs give their first frame.
//
// With Options.Channels == 1 every image is converted to one luminance
// channel exactly as PIL's convert("L") does (ITU-R 601-2 weights in fixed
// point: L = (R·19595 + G·38470 + B·7471 + 2^15) >> 16); grayscale images
// are kept as they are.
//
// With a resize (Options.ResizeW, ResizeH) the image is first converted to
// RGB as above, then scaled with a bilinear filter that widens when
// shrinking (like PIL's BILINEAR, which torchvision's Resize uses), then
// reduced to luminance when Channels is 1.
package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Source kinds, the values of Options.Kind and Dataset.Kind. They are the
// words the pack command's --from flag accepts.
const (
	KindCIFAR10  = "cifar10"
	KindCIFAR100 = "cifar100"
	KindIDX      = "idx"
	KindFolder   = "folder"
)

// Kinds lists every source kind in the order Detect tries them.
var Kinds = []string{KindCIFAR10, KindCIFAR100, KindIDX, KindWebDataset, KindParquet, KindArrow, KindFolder}

// Sample is one decoded (or passed-through) source image.
//
// Load overwrites every field. It reuses the capacity of Pixels (and of
// Encoded with KeepEncoded), so a caller that loads into the same Sample
// repeatedly allocates nothing for CIFAR and IDX sources. The slices it
// leaves therefore alias the Sample's former buffers: a caller that keeps
// them past the next Load into the same Sample must copy them.
type Sample struct {
	// Label is the class index into Dataset.Classes (CIFAR-100: the fine
	// label).
	Label int32
	// Label2 is the secondary label, the CIFAR-100 coarse label into
	// Dataset.Classes2; -1 when the source has none.
	Label2 int32
	// Name identifies the sample in its source, for error messages and the
	// packed file's optional name field: the slash-separated path relative
	// to the root for folders (prefixed by the root when several roots are
	// given), "data_batch_1.bin#17" for CIFAR and
	// "train-images-idx3-ubyte.gz#5" for IDX (record numbers from 0).
	Name string
	// Height, Width and Channels describe Pixels (HWC, uint8). Channels is
	// 1 or 3. With KeepEncoded they describe the image Encoded decodes to
	// under the same conversion rules.
	Height, Width, Channels int
	// Pixels holds Height*Width*Channels bytes in HWC order; nil when
	// Encoded is set.
	Pixels []byte
	// Encoded holds the original file bytes when Options.KeepEncoded is
	// set; nil otherwise.
	Encoded []byte
	// Format names the image's encoding as detected from its content:
	// "jpeg", "png", "gif", "bmp" or "webp" for folder images; "" for CIFAR
	// and IDX samples, which have none.
	Format string
}

// Options control how Open reads a source. The zero value detects the kind
// and keeps every image as it is (RGB, original size).
type Options struct {
	// Kind forces the source kind (one of the Kind* constants); "" detects
	// it with Detect.
	Kind string
	// ResizeW and ResizeH, for image folders, resize every image to exactly
	// ResizeW×ResizeH with bilinear interpolation that widens its filter
	// when shrinking (golang.org/x/image/draw.BiLinear, the equivalent of
	// PIL's BILINEAR that torchvision's Resize uses), without keeping the
	// aspect ratio. Both zero keeps each image's size; setting only one is
	// an error. Not valid with KeepEncoded.
	ResizeW, ResizeH int
	// KeepEncoded, for image folders, keeps each file's original bytes in
	// Sample.Encoded instead of pixels. Load still decodes every image once,
	// so that a broken file is reported at pack time and the dimensions are
	// known.
	KeepEncoded bool
	// Channels, for image folders, is the channel count of the pixels: 0 or
	// 3 gives RGB (grayscale replicated, like torchvision's ImageFolder), 1
	// gives luminance. There is no automatic choice of 1 for all-gray
	// folders because that would need every image decoded at Open.
	Channels int
	// GoJPEG decodes JPEGs with Go's image/jpeg even when libjpeg-turbo
	// (libturbojpeg.so.0) can be loaded; JPEGDecoder says which one runs.
	GoJPEG bool
	// ImageColumn and LabelColumn name the columns of a Parquet or Arrow
	// source; "" picks them (see Open).
	ImageColumn, LabelColumn string
	// Fashion, for IDX sources, names the classes with Fashion-MNIST's
	// names even when no path mentions "fashion" (see Open).
	Fashion bool
}

// Dataset is an opened source. Its indices are dataset order (see the
// package documentation).
type Dataset interface {
	// Kind returns the source kind, one of the Kind* constants.
	Kind() string
	// Len returns the number of samples.
	Len() int
	// Classes returns the class names; a label is an index into it.
	Classes() []string
	// Classes2 returns the names of the secondary labels (CIFAR-100 coarse
	// classes); nil when the source has none.
	Classes2() []string
	// Description describes the source for humans and for the packed
	// file's header: its kind and paths.
	Description() string
	// Load fills s with sample i. It is safe for concurrent use by many
	// goroutines (each with its own Sample) and reuses s's buffers. Its
	// errors name the file or sample and what is wrong with it.
	Load(i int, s *Sample) error
	// Close releases what Open holds. Load must not be called after it.
	Close() error
}

// Open opens the source at paths as a Dataset. With opt.Kind empty the kind
// is detected by Detect.
//
// CIFAR-10 takes a directory holding data_batch_1.bin … data_batch_5.bin and
// test_batch.bin (all six must be present), some of those files given
// directly, or the distributed cifar-10-binary.tar.gz. Class names come from
// batches.meta.txt when present, else "0" … "9".
//
// CIFAR-100 takes a directory holding train.bin and test.bin, those files,
// or cifar-100-binary.tar.gz; names come from fine_label_names.txt and
// coarse_label_names.txt when present, else numbers.
//
// IDX takes directories (every *-images-idx3-ubyte[.gz] pair in them) or
// image files, each paired with the labels file next to it or given
// alongside (train-images-idx3-ubyte → train-labels-idx1-ubyte, with or
// without .gz). Class names are "0" … "N-1" for the largest label N-1 (at
// least ten), or Fashion-MNIST's ten names when opt.Fashion is set or any
// path contains "fashion" (case-insensitive), as Debian's
// /usr/share/datasets/fashion-mnist does.
//
// Image folders take one or more roots whose subdirectories are the
// classes; see the package documentation for order and colour rules.
// Classes are the sorted union of the class directory names of all roots.
func Open(paths []string, opt Options) (Dataset, error) {
	if len(paths) == 0 {
		return nil, errors.New("source: no paths given")
	}
	kind := opt.Kind
	if kind == "" {
		k, err := Detect(paths)
		if err != nil {
			return nil, err
		}
		kind = k
	}
	if !DecodesImages(kind) {
		if opt.ResizeW != 0 || opt.ResizeH != 0 || opt.KeepEncoded || opt.Channels != 0 {
			return nil, fmt.Errorf("source: resize, keep-encoded and channels apply only to image folders, Parquet, Arrow and WebDataset sources, not to %s", kind)
		}
	}
	if (opt.ImageColumn != "" || opt.LabelColumn != "") && kind != KindParquet && kind != KindArrow {
		return nil, fmt.Errorf("source: image and label columns apply only to Parquet and Arrow sources, not to %s", kind)
	}
	if kind != KindIDX && opt.Fashion {
		return nil, fmt.Errorf("source: the Fashion option applies only to IDX sources, not to %s", kind)
	}
	switch kind {
	case KindCIFAR10:
		return openCIFAR(paths, cifar10Layout)
	case KindCIFAR100:
		return openCIFAR(paths, cifar100Layout)
	case KindIDX:
		return openIDX(paths, opt)
	case KindFolder:
		return openFolder(paths, opt)
	case KindWebDataset:
		return openWebDataset(paths, opt)
	case KindParquet, KindArrow:
		return openTable(kind, paths, opt)
	default:
		return nil, fmt.Errorf("source: unknown kind %q (want one of %s)", kind, strings.Join(Kinds, ", "))
	}
}

// Detect returns the kind of the source at paths. Every path must be of the
// same kind. It looks for, in this order: a directory holding
// data_batch_1.bin or files named data_batch_N.bin / test_batch.bin
// (cifar10); a directory holding train.bin and test.bin or files of those
// names (cifar100); files or directory entries named *idx3-ubyte* or
// *idx1-ubyte* (idx); a .tar.gz or .tgz archive holding CIFAR-10 or
// CIFAR-100 batch files (cifar10, cifar100); a directory with a
// subdirectory holding a JPEG, PNG, GIF, BMP or WebP file (folder).
func Detect(paths []string) (string, error) {
	if len(paths) == 0 {
		return "", errors.New("source: no paths given")
	}
	kind := ""
	first := ""
	for _, p := range paths {
		k, err := detectOne(p)
		if err != nil {
			return "", err
		}
		if kind != "" && k != kind {
			return "", fmt.Errorf("source: %s is %s but %s is %s; give sources of one kind", first, kind, p, k)
		}
		kind, first = k, p
	}
	return kind, nil
}

// lookedFor is the list of what Detect recognises, for its error message.
const lookedFor = "looked for: a directory with data_batch_1.bin (CIFAR-10), " +
	"a directory with train.bin and test.bin (CIFAR-100), *-idx3-ubyte[.gz] files (IDX), " +
	"a CIFAR .tar.gz archive, WebDataset .tar shards, .parquet files, Arrow .arrow files, or a directory of class subdirectories holding " +
	".jpg/.jpeg/.png/.gif/.bmp/.webp images (image folder)"

func detectOne(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	if !fi.IsDir() {
		base := filepath.Base(p)
		switch {
		case cifar10Layout.fileRank(base) >= 0:
			return KindCIFAR10, nil
		case cifar100Layout.fileRank(base) >= 0:
			return KindCIFAR100, nil
		case isIDXName(base):
			return KindIDX, nil
		case isTarName(base):
			return KindWebDataset, nil
		case isParquetName(base):
			return KindParquet, nil
		case isArrowName(base):
			return KindArrow, nil
		case isTarGz(base):
			k, err := detectTar(p)
			if err != nil {
				return "", err
			}
			return k, nil
		}
		return "", fmt.Errorf("source: cannot tell the kind of file %s; %s", p, lookedFor)
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	switch {
	case names["data_batch_1.bin"]:
		return KindCIFAR10, nil
	case names["train.bin"] && names["test.bin"]:
		return KindCIFAR100, nil
	}
	for _, e := range entries {
		if !e.IsDir() && isIDXName(e.Name()) {
			return KindIDX, nil
		}
	}
	for _, e := range entries {
		switch {
		case e.IsDir() || isHidden(e.Name()):
		case isTarName(e.Name()):
			return KindWebDataset, nil
		case isParquetName(e.Name()):
			return KindParquet, nil
		case isArrowName(e.Name()):
			return KindArrow, nil
		}
	}
	// A folder of classes: some (non-hidden) subdirectory holds an image
	// somewhere below it. Stop at the first image found, so detection stays
	// cheap on large trees.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if isHidden(e.Name()) {
			continue
		}
		sub := filepath.Join(p, e.Name())
		if !isDirFollow(sub, e) {
			continue
		}
		if hasImage(sub) {
			return KindFolder, nil
		}
	}
	return "", fmt.Errorf("source: cannot tell the kind of directory %s; %s", p, lookedFor)
}

// errFound stops a directory walk early.
var errFound = errors.New("found")

func hasImage(dir string) bool {
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts do not decide detection
		}
		if path != dir && isHidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && isImageName(d.Name()) {
			return errFound
		}
		return nil
	})
	return err == errFound
}

func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

func isTarGz(name string) bool {
	l := strings.ToLower(name)
	return strings.HasSuffix(l, ".tar.gz") || strings.HasSuffix(l, ".tgz")
}

// numericNames returns "0" … "n-1", sliced from one string: a source of
// integer labels may have up to 2^20 classes, and one fmt.Sprint string
// each made a damaged label cost a third of a second (FuzzArrowIPC spent
// most of its time here).
func numericNames(n int) []string {
	b := make([]byte, 0, 7*n) // up to 10^7 classes
	for i := range n {
		b = strconv.AppendInt(b, int64(i), 10)
	}
	all := string(b)
	out := make([]string, n)
	start, width, next := 0, 1, 10
	for i := range out {
		if i == next {
			width, next = width+1, next*10
		}
		out[i], start = all[start:start+width], start+width
	}
	return out
}

// grow returns b resized to n bytes, reusing its capacity when it suffices.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}

// checkIndex reports an index outside [0, n).
func checkIndex(i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("source: index %d out of range [0, %d)", i, n)
	}
	return nil
}

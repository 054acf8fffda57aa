package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// cifarPixels is the size of a CIFAR image: 32×32×3, stored CHW.
const (
	cifarSide   = 32
	cifarPlane  = cifarSide * cifarSide
	cifarPixels = 3 * cifarPlane
)

// cifarLayout describes one of the two CIFAR binary distributions.
type cifarLayout struct {
	kind       string
	title      string
	files      []string // every batch file, in dataset order
	labelBytes int      // 1 (CIFAR-10) or 2 (coarse, fine: CIFAR-100)
	nFine      int      // classes of Label
	nCoarse    int      // classes of Label2; 0 when absent
	metaFine   string   // file naming the Label classes
	metaCoarse string   // file naming the Label2 classes; "" when absent
}

var cifar10Layout = &cifarLayout{
	kind:       KindCIFAR10,
	title:      "CIFAR-10 binary",
	files:      []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"},
	labelBytes: 1,
	nFine:      10,
	metaFine:   "batches.meta.txt",
}

var cifar100Layout = &cifarLayout{
	kind:       KindCIFAR100,
	title:      "CIFAR-100 binary",
	files:      []string{"train.bin", "test.bin"},
	labelBytes: 2,
	nFine:      100,
	nCoarse:    20,
	metaFine:   "fine_label_names.txt",
	metaCoarse: "coarse_label_names.txt",
}

// recordSize is the size of one record: the label bytes and the image.
func (l *cifarLayout) recordSize() int { return l.labelBytes + cifarPixels }

// fileRank returns the position of a batch file name in dataset order, or
// -1 when base is not one of the layout's file names.
func (l *cifarLayout) fileRank(base string) int {
	for i, f := range l.files {
		if f == base {
			return i
		}
	}
	return -1
}

// cifarFile is one batch file held in memory.
type cifarFile struct {
	name  string // base name, used in sample names and errors
	path  string // where it came from, for errors
	data  []byte
	first int // dataset index of its first record
	n     int // records
}

// cifarDataset is a Dataset over CIFAR batch files held in memory.
type cifarDataset struct {
	layout   *cifarLayout
	files    []cifarFile
	n        int
	names    []string // sample names, built once so Load does not allocate
	classes  []string
	classes2 []string
	desc     string
}

// cifarInput is a batch file found at Open, before it is parsed.
type cifarInput struct {
	base, path string
	rank       int // fileRank, or len(files)+argument position for unknown names
	data       []byte
}

func openCIFAR(paths []string, l *cifarLayout) (Dataset, error) {
	var inputs []cifarInput
	meta := map[string][]byte{} // meta file name → contents (first found wins)
	seen := map[string]string{} // base name → path, to reject duplicates
	add := func(base, path string, data []byte, rank int) error {
		if prev, ok := seen[base]; ok {
			return fmt.Errorf("source: %s given twice: %s and %s", base, prev, path)
		}
		seen[base] = path
		inputs = append(inputs, cifarInput{base: base, path: path, rank: rank, data: data})
		return nil
	}
	for argi, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		switch {
		case fi.IsDir():
			var missing []string
			for _, f := range l.files {
				if _, err := os.Stat(filepath.Join(p, f)); err != nil {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				return nil, fmt.Errorf("source: %s directory %s lacks %s (it needs %s)",
					l.title, p, strings.Join(missing, ", "), strings.Join(l.files, ", "))
			}
			for rank, f := range l.files {
				fp := filepath.Join(p, f)
				data, err := os.ReadFile(fp)
				if err != nil {
					return nil, fmt.Errorf("source: %w", err)
				}
				if err := add(f, fp, data, rank); err != nil {
					return nil, err
				}
			}
			if err := readMetaFiles(l, p, meta); err != nil {
				return nil, err
			}
		case isTarGz(filepath.Base(p)):
			f, err := os.Open(p)
			if err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
			members, err := readCIFARTar(f, l)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("source: %s: %w", p, err)
			}
			var missing []string
			for _, name := range l.files {
				if _, ok := members[name]; !ok {
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				return nil, fmt.Errorf("source: %s archive %s lacks %s", l.title, p, strings.Join(missing, ", "))
			}
			for rank, name := range l.files {
				if err := add(name, p+"/"+name, members[name], rank); err != nil {
					return nil, err
				}
			}
			for _, name := range []string{l.metaFine, l.metaCoarse} {
				if data, ok := members[name]; ok && name != "" && meta[name] == nil {
					meta[name] = data
				}
			}
		default:
			base := filepath.Base(p)
			rank := l.fileRank(base)
			if rank < 0 {
				// A renamed batch file still parses; it goes after the
				// known ones, in the order given.
				rank = len(l.files) + argi
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
			if err := add(base, p, data, rank); err != nil {
				return nil, err
			}
			if err := readMetaFiles(l, filepath.Dir(p), meta); err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(inputs, func(i, j int) bool { return inputs[i].rank < inputs[j].rank })
	files := make([]cifarFile, len(inputs))
	for i, in := range inputs {
		files[i] = cifarFile{name: in.base, path: in.path, data: in.data}
	}
	ds, err := newCIFARDataset(l, files, meta[l.metaFine], meta[l.metaCoarse])
	if err != nil {
		return nil, err
	}
	ds.desc = fmt.Sprintf("%s from %s (%s)", l.title, strings.Join(paths, ", "), strings.Join(fileNames(files), ", "))
	return ds, nil
}

func fileNames(files []cifarFile) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.name
	}
	return out
}

// newCIFARDataset checks the batch files' sizes and the class-name files
// (nil when absent) and builds the dataset. It is separate from openCIFAR
// so that the fuzz target can reach it without files.
func newCIFARDataset(l *cifarLayout, files []cifarFile, metaFine, metaCoarse []byte) (*cifarDataset, error) {
	ds := &cifarDataset{layout: l, files: files}
	rs := l.recordSize()
	for i := range files {
		f := &files[i]
		if len(f.data)%rs != 0 {
			return nil, fmt.Errorf("source: %s: size %d bytes is not a multiple of the %d-byte %s record (%d label byte(s) + %d pixel bytes); the file is truncated or not a %s batch",
				f.path, len(f.data), rs, l.title, l.labelBytes, cifarPixels, l.title)
		}
		f.first = ds.n
		f.n = len(f.data) / rs
		ds.n += f.n
	}
	var err error
	if ds.classes, err = classNames(metaFine, l.metaFine, l.nFine); err != nil {
		return nil, err
	}
	if l.nCoarse > 0 {
		if ds.classes2, err = classNames(metaCoarse, l.metaCoarse, l.nCoarse); err != nil {
			return nil, err
		}
	}
	prefixes := make([]string, len(files))
	counts := make([]int, len(files))
	for i, f := range files {
		prefixes[i], counts[i] = f.name, f.n
	}
	ds.names = indexedNames(prefixes, counts)
	return ds, nil
}

// readMetaFiles reads the layout's class-name files from dir into meta
// unless an earlier path supplied them.
func readMetaFiles(l *cifarLayout, dir string, meta map[string][]byte) error {
	for _, name := range []string{l.metaFine, l.metaCoarse} {
		if name == "" || meta[name] != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		meta[name] = data
	}
	return nil
}

// classNames parses a class-name file (one name a line, blank lines
// skipped, as in batches.meta.txt whose names are followed by empty lines);
// nil data gives numeric names.
func classNames(data []byte, file string, n int) ([]string, error) {
	if data == nil {
		return numericNames(n), nil
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			names = append(names, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("source: %s: %w", file, err)
	}
	if len(names) != n {
		return nil, fmt.Errorf("source: %s lists %d class names, want %d", file, len(names), n)
	}
	return names, nil
}

// indexedNames builds "prefix#k" for every record of every file, in one
// string so that the names cost two allocations in all.
func indexedNames(prefixes []string, counts []int) []string {
	total := 0
	for _, c := range counts {
		total += c
	}
	buf := make([]byte, 0, total*24)
	ends := make([]int, 0, total)
	for i, p := range prefixes {
		for k := 0; k < counts[i]; k++ {
			buf = append(buf, p...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(k), 10)
			ends = append(ends, len(buf))
		}
	}
	all := string(buf)
	names := make([]string, total)
	start := 0
	for i, e := range ends {
		names[i] = all[start:e]
		start = e
	}
	return names
}

// readCIFARTar returns the members of a .tar.gz archive that the layout
// knows (batch files and class-name files), by base name.
func readCIFARTar(r io.Reader, l *cifarLayout) (map[string][]byte, error) {
	if _, ok := r.(io.ByteReader); !ok {
		// A file gets a large buffer; a reader that is already buffered
		// or in memory does not (FuzzCIFARTar spent most of its time
		// allocating 1 MiB per input).
		r = bufio.NewReaderSize(r, 1<<20)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzip file: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	members := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		base := pathBase(h.Name)
		if l.fileRank(base) < 0 && base != l.metaFine && (l.metaCoarse == "" || base != l.metaCoarse) {
			continue
		}
		if _, dup := members[base]; dup {
			return nil, fmt.Errorf("archive holds %s twice", base)
		}
		// Grow as the data arrives rather than trusting the header's size,
		// so a damaged header cannot make us allocate gigabytes.
		var b bytes.Buffer
		if h.Size > 0 && h.Size < 256<<20 {
			b.Grow(int(h.Size))
		}
		if _, err := io.Copy(&b, tr); err != nil {
			return nil, fmt.Errorf("reading %s from the archive: %w", h.Name, err)
		}
		members[base] = b.Bytes()
	}
	return members, nil
}

// detectTar returns cifar10 or cifar100 from the first batch file found in
// a .tar.gz archive.
func detectTar(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return "", fmt.Errorf("source: %s: not a gzip file: %w", p, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("source: %s: reading the archive: %w", p, err)
		}
		base := pathBase(h.Name)
		switch {
		case cifar10Layout.fileRank(base) >= 0:
			return KindCIFAR10, nil
		case cifar100Layout.fileRank(base) >= 0:
			return KindCIFAR100, nil
		}
	}
	return "", fmt.Errorf("source: archive %s holds no CIFAR-10 (data_batch_N.bin, test_batch.bin) or CIFAR-100 (train.bin, test.bin) batch file", p)
}

// pathBase is the last element of a slash-separated archive path.
func pathBase(name string) string {
	name = strings.TrimRight(name, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

func (d *cifarDataset) Kind() string        { return d.layout.kind }
func (d *cifarDataset) Len() int            { return d.n }
func (d *cifarDataset) Classes() []string   { return d.classes }
func (d *cifarDataset) Classes2() []string  { return d.classes2 }
func (d *cifarDataset) Description() string { return d.desc }

// Close drops the file contents.
func (d *cifarDataset) Close() error {
	d.files = nil
	return nil
}

// Load transposes record i from CHW to HWC into s.Pixels.
func (d *cifarDataset) Load(i int, s *Sample) error {
	if err := checkIndex(i, d.n); err != nil {
		return err
	}
	files := d.files
	if files == nil {
		return errors.New("source: Load after Close")
	}
	// Six files at most: a linear scan beats a binary search.
	fi := 0
	for fi+1 < len(files) && files[fi+1].first <= i {
		fi++
	}
	f := &files[fi]
	k := i - f.first
	rs := d.layout.recordSize()
	rec := f.data[k*rs : (k+1)*rs]
	l := d.layout
	var fine, coarse int32 = 0, -1
	if l.labelBytes == 1 {
		fine = int32(rec[0])
	} else {
		coarse, fine = int32(rec[0]), int32(rec[1])
		if int(coarse) >= l.nCoarse {
			return fmt.Errorf("source: %s record %d: coarse label %d out of range [0, %d)", f.name, k, coarse, l.nCoarse)
		}
	}
	if int(fine) >= l.nFine {
		return fmt.Errorf("source: %s record %d: label %d out of range [0, %d)", f.name, k, fine, l.nFine)
	}
	px := grow(s.Pixels, cifarPixels)
	chwToHWC(px, rec[l.labelBytes:])
	*s = Sample{
		Label: fine, Label2: coarse, Name: d.names[i],
		Height: cifarSide, Width: cifarSide, Channels: 3,
		Pixels: px, Encoded: nil,
	}
	return nil
}

// chwToHWC interleaves the three 1024-byte planes of a CIFAR image.
func chwToHWC(dst, src []byte) {
	r := src[0:cifarPlane:cifarPlane]
	g := src[cifarPlane : 2*cifarPlane : 2*cifarPlane]
	b := src[2*cifarPlane : 3*cifarPlane : 3*cifarPlane]
	dst = dst[:cifarPixels:cifarPixels]
	for k := 0; k < cifarPlane; k++ {
		d := dst[3*k : 3*k+3 : 3*k+3]
		d[0], d[1], d[2] = r[k], g[k], b[k]
	}
}

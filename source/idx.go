package source

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// IDX magic numbers: two zero bytes, the element type (0x08, unsigned
// byte) and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// FashionMNISTClasses are Fashion-MNIST's class names, label order.
var FashionMNISTClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// maxIDXImage bounds height×width so that a damaged header cannot make the
// size arithmetic overflow; 2^28 pixels is far beyond any IDX dataset.
const maxIDXImage = 1 << 28

// isIDXName reports whether base names an IDX images or labels file.
func isIDXName(base string) bool {
	l := strings.ToLower(base)
	return strings.Contains(l, "idx3-ubyte") || strings.Contains(l, "idx1-ubyte")
}

func isIDXImages(base string) bool { return strings.Contains(strings.ToLower(base), "idx3-ubyte") }

// idxStem is base without a .gz suffix.
func idxStem(base string) string {
	if strings.HasSuffix(strings.ToLower(base), ".gz") {
		return base[:len(base)-3]
	}
	return base
}

// idxLabelsStem maps an images stem to its labels stem:
// train-images-idx3-ubyte → train-labels-idx1-ubyte.
func idxLabelsStem(stem string) string {
	s := strings.Replace(stem, "idx3-ubyte", "idx1-ubyte", 1)
	return strings.Replace(s, "images", "labels", 1)
}

// idxSplitRank orders train before t10k (or test) before anything else.
func idxSplitRank(base string) int {
	l := strings.ToLower(base)
	switch {
	case strings.HasPrefix(l, "train"):
		return 0
	case strings.HasPrefix(l, "t10k"), strings.HasPrefix(l, "test"):
		return 1
	}
	return 2
}

// idxPart is one images file with its labels, held in memory.
type idxPart struct {
	imagesName, labelsName string // base names
	imagesPath, labelsPath string
	n, h, w                int
	pixels                 []byte // n*h*w bytes
	labels                 []byte // n bytes
	first                  int    // dataset index of its first image
}

// idxDataset is a Dataset over IDX pairs held in memory.
type idxDataset struct {
	parts   []idxPart
	n       int
	names   []string
	classes []string
	desc    string
}

type idxPair struct {
	images, labels string
	rank, order    int
}

func openIDX(paths []string, opt Options) (Dataset, error) {
	var images []string
	givenLabels := map[string]string{} // stem → path of labels files given directly
	fashion := opt.Fashion
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil && strings.Contains(strings.ToLower(abs), "fashion") {
			fashion = true
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if !fi.IsDir() {
			base := filepath.Base(p)
			switch {
			case isIDXImages(base):
				images = append(images, p)
			case isIDXName(base):
				givenLabels[idxStem(base)] = p
			default:
				return nil, fmt.Errorf("source: %s is not named like an IDX file (*-images-idx3-ubyte[.gz] or *-labels-idx1-ubyte[.gz])", p)
			}
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		found := 0
		for _, e := range entries { // ReadDir sorts by name
			if !e.IsDir() && !isHidden(e.Name()) && isIDXImages(e.Name()) {
				images = append(images, filepath.Join(p, e.Name()))
				found++
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("source: directory %s holds no *-images-idx3-ubyte[.gz] file", p)
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("source: no IDX images file among %s (labels files need their *-images-idx3-ubyte[.gz] file)", strings.Join(paths, ", "))
	}
	pairs := make([]idxPair, 0, len(images))
	stems := map[string]string{}
	usedLabels := map[string]bool{}
	for order, img := range images {
		stem := idxStem(filepath.Base(img))
		key := filepath.Join(filepath.Dir(img), stem)
		if prev, ok := stems[key]; ok {
			return nil, fmt.Errorf("source: %s and %s hold the same images; give only one of them", prev, img)
		}
		stems[key] = img
		lstem := idxLabelsStem(stem)
		lab, ok := givenLabels[lstem]
		if !ok {
			dir := filepath.Dir(img)
			var cands []string
			for _, c := range []string{lstem, lstem + ".gz"} {
				if _, err := os.Stat(filepath.Join(dir, c)); err == nil {
					cands = append(cands, filepath.Join(dir, c))
				}
			}
			switch len(cands) {
			case 0:
				return nil, fmt.Errorf("source: no labels file for %s (looked for %s[.gz] next to it)", img, lstem)
			case 2:
				return nil, fmt.Errorf("source: both %s and %s hold the labels of %s; give the one to use", cands[0], cands[1], img)
			}
			lab = cands[0]
		}
		usedLabels[lstem] = true
		pairs = append(pairs, idxPair{images: img, labels: lab, rank: idxSplitRank(stem), order: order})
	}
	for stem, p := range givenLabels {
		if !usedLabels[stem] {
			return nil, fmt.Errorf("source: labels file %s has no images file (want %s[.gz])", p, strings.Replace(strings.Replace(stem, "idx1-ubyte", "idx3-ubyte", 1), "labels", "images", 1))
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].rank < pairs[j].rank })

	parts := make([]idxPart, 0, len(pairs))
	var desc []string
	for _, pr := range pairs {
		part, err := readIDXPair(pr.images, pr.labels)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
		desc = append(desc, part.imagesName+" + "+part.labelsName)
	}
	ds, err := newIDXDataset(parts, fashion, opt.Fashion)
	if err != nil {
		return nil, err
	}
	title := "IDX"
	if fashion {
		title = "IDX (Fashion-MNIST class names)"
	}
	ds.desc = fmt.Sprintf("%s from %s (%s)", title, strings.Join(paths, ", "), strings.Join(desc, ", "))
	return ds, nil
}

// readIDXPair reads an images file and its labels file.
func readIDXPair(imagesPath, labelsPath string) (idxPart, error) {
	dims, pixels, err := readIDXFile(imagesPath, idxImagesMagic)
	if err != nil {
		return idxPart{}, err
	}
	ldims, labels, err := readIDXFile(labelsPath, idxLabelsMagic)
	if err != nil {
		return idxPart{}, err
	}
	part := idxPart{
		imagesName: filepath.Base(imagesPath), labelsName: filepath.Base(labelsPath),
		imagesPath: imagesPath, labelsPath: labelsPath,
	}
	if err := part.set(dims, pixels, ldims, labels); err != nil {
		return idxPart{}, err
	}
	return part, nil
}

// set checks that images and labels agree and fills the part.
func (p *idxPart) set(dims []int, pixels []byte, ldims []int, labels []byte) error {
	p.n, p.h, p.w = dims[0], dims[1], dims[2]
	if ldims[0] != p.n {
		return fmt.Errorf("source: %s holds %d labels but %s holds %d images", p.labelsPath, ldims[0], p.imagesPath, p.n)
	}
	p.pixels, p.labels = pixels, labels
	return nil
}

// readIDXFile reads a plain or gzip-compressed IDX file (told apart by the
// gzip magic 0x1f8b) and returns its dimensions and payload.
func readIDXFile(path string, magic uint32) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	dims, data, err := decodeIDX(f, fi.Size(), magic)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %s: %w", path, err)
	}
	return dims, data, nil
}

// decodeIDX parses an IDX stream of size bytes (used only when it is not
// gzip-compressed). It checks the magic, the dimensions and that the
// payload is exactly as long as the dimensions say. It allocates according
// to the data that arrives, never to what a header claims, so that damaged
// input cannot exhaust memory.
func decodeIDX(r io.Reader, size int64, magic uint32) ([]int, []byte, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(2)
	gz := len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b
	var in io.Reader = br
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		in = zr
	}
	ndims := int(magic & 0xff)
	hdr := make([]byte, 4+4*ndims)
	if n, err := io.ReadFull(in, hdr); err != nil {
		return nil, nil, fmt.Errorf("header: %d of %d bytes, %w", n, len(hdr), truncErr(err))
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		what := "images (unsigned bytes, 3 dimensions)"
		if magic == idxLabelsMagic {
			what = "labels (unsigned bytes, 1 dimension)"
		}
		return nil, nil, fmt.Errorf("magic 0x%08x, want 0x%08x for IDX %s", got, magic, what)
	}
	dims := make([]int, ndims)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(hdr[4+4*i:]))
		dims[i] = int(d)
		if i > 0 {
			if d == 0 {
				return nil, nil, fmt.Errorf("dimension %d is 0", i)
			}
			total *= d
			if total > maxIDXImage {
				return nil, nil, fmt.Errorf("image of %v pixels is too large (at most %d)", dims[1:i+1], maxIDXImage)
			}
		}
	}
	total *= int64(dims[0]) // < 2^32 · 2^28: no overflow
	if !gz && size >= 0 && size != int64(len(hdr))+total {
		return nil, nil, fmt.Errorf("size %d bytes, but the header's dimensions %v need %d", size, dims, int64(len(hdr))+total)
	}
	var buf bytes.Buffer
	if !gz && total < 1<<31 {
		buf.Grow(int(total)) // the file size has been checked
	}
	n, err := io.Copy(&buf, io.LimitReader(in, total+1))
	if err != nil {
		return nil, nil, fmt.Errorf("after %d payload bytes: %w", n, truncErr(err))
	}
	if n != total {
		if n > total {
			return nil, nil, fmt.Errorf("more data than the header's dimensions %v need (%d bytes)", dims, total)
		}
		return nil, nil, fmt.Errorf("truncated: %d payload bytes, the header's dimensions %v need %d", n, dims, total)
	}
	return dims, buf.Bytes(), nil
}

// truncErr names an unexpected end of data as truncation.
func truncErr(err error) error {
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return fmt.Errorf("truncated (%w)", err)
	}
	return err
}

// newIDXDataset builds the dataset over parsed parts. fashion selects
// Fashion-MNIST's names; strict makes a label beyond them an error rather
// than a fallback to numeric names.
func newIDXDataset(parts []idxPart, fashion, strict bool) (*idxDataset, error) {
	ds := &idxDataset{parts: parts}
	maxLabel := -1
	prefixes := make([]string, len(parts))
	counts := make([]int, len(parts))
	for i := range parts {
		p := &parts[i]
		p.first = ds.n
		ds.n += p.n
		for _, l := range p.labels {
			maxLabel = max(maxLabel, int(l))
		}
		prefixes[i], counts[i] = p.imagesName, p.n
	}
	if maxLabel >= 10 && (!fashion || !strict) {
		if err := checkLabelGaps(parts, maxLabel); err != nil {
			return nil, err
		}
	}
	switch {
	case fashion && maxLabel < len(FashionMNISTClasses):
		ds.classes = append([]string(nil), FashionMNISTClasses...)
	case fashion && strict:
		return nil, fmt.Errorf("source: label %d found, but Fashion-MNIST has %d classes", maxLabel, len(FashionMNISTClasses))
	default:
		ds.classes = numericNames(max(10, maxLabel+1))
	}
	ds.names = indexedNames(prefixes, counts)
	return ds, nil
}

// checkLabelGaps refuses labels beyond the ten of MNIST-like data unless
// they continue 0..9 without gaps: one stray byte of 200 among digits
// would otherwise become a dataset of 201 classes, 190 of them empty. The
// error names the file and record of the first label past a gap.
func checkLabelGaps(parts []idxPart, maxLabel int) error {
	var seen [256]bool
	for i := range parts {
		for _, l := range parts[i].labels {
			seen[l] = true
		}
	}
	gap := -1
	for l := 10; l <= maxLabel; l++ {
		if !seen[l] {
			gap = l
			break
		}
	}
	if gap < 0 {
		return nil
	}
	end := gap
	for !seen[end] {
		end++
	}
	for i := range parts {
		for k, l := range parts[i].labels {
			if int(l) > gap {
				return fmt.Errorf("source: %s record %d: label %d, but no record has a label in %d..%d: labels must number the classes 0..K-1; the labels file is damaged or not an IDX labels file",
					parts[i].labelsPath, k, l, gap, end-1)
			}
		}
	}
	return nil
}

func (d *idxDataset) Kind() string        { return KindIDX }
func (d *idxDataset) Len() int            { return d.n }
func (d *idxDataset) Classes() []string   { return d.classes }
func (d *idxDataset) Classes2() []string  { return nil }
func (d *idxDataset) Description() string { return d.desc }

// Close drops the file contents.
func (d *idxDataset) Close() error {
	d.parts = nil
	return nil
}

// Load copies image i into s.Pixels (one channel).
func (d *idxDataset) Load(i int, s *Sample) error {
	if err := checkIndex(i, d.n); err != nil {
		return err
	}
	parts := d.parts
	if parts == nil {
		return fmt.Errorf("source: Load after Close")
	}
	pi := 0
	for pi+1 < len(parts) && parts[pi+1].first <= i {
		pi++
	}
	p := &parts[pi]
	k := i - p.first
	sz := p.h * p.w
	px := grow(s.Pixels, sz)
	copy(px, p.pixels[k*sz:(k+1)*sz])
	*s = Sample{
		Label: int32(p.labels[k]), Label2: -1, Name: d.names[i],
		Height: p.h, Width: p.w, Channels: 1,
		Pixels: px,
	}
	return nil
}

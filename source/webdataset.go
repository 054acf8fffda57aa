package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// KindWebDataset is a WebDataset: plain (uncompressed) tar shards whose
// members are grouped into samples by key, the member's path up to the
// first dot of its file name: key.jpg (or .jpeg, .png, .webp, .gif, .bmp)
// is the image and key.cls its class, a decimal label or a class name.
const KindWebDataset = "webdataset"

// wdsImageExt are the image extensions of a WebDataset sample, in the
// order of preference when a sample has several.
var wdsImageExt = []string{"jpg", "jpeg", "png", "webp", "gif", "bmp"}

// maxClsBytes bounds a .cls member, which holds one label.
const maxClsBytes = 4096

// wdsItem is one sample of a shard: where its image lies in the shard.
type wdsItem struct {
	shard  int
	off    int64 // of the image member's content
	size   int64
	name   string // shard#key.ext, Sample.Name
	cls    string // the .cls member's text, trimmed
	hasCls bool
}

type wdsDataset struct {
	shards  []fileReader
	paths   []string
	items   []wdsItem
	labels  []int32
	classes []string
	conv    converter
	desc    string
	scratch sync.Pool // *folderScratch
}

// isTarName reports a plain tar file name (not .tar.gz, which holds CIFAR).
func isTarName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".tar")
}

// openWebDataset indexes the shards at paths (files, or directories whose
// *.tar files are taken in name order): one pass over each shard's headers,
// reading only the .cls members; the images are read at Load with ReadAt.
// Samples are in shard order, then member order. Labels: when every .cls
// is a decimal integer, the classes are "0" … max; otherwise every .cls is
// a class name and the classes are the sorted names.
func openWebDataset(paths []string, opt Options) (Dataset, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(p, "*.tar"))
		if len(m) == 0 {
			return nil, fmt.Errorf("source: webdataset directory %s holds no .tar shards", p)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	return newWebDataset(strings.Join(paths, ", "), files, opt, openFileReader)
}

// newWebDataset indexes the shards files, each opened with open (an
// *os.File, or a bytes.Reader over a shard in memory: the fuzzer's); src
// names the source in the description. See openWebDataset.
func newWebDataset(src string, files []string, opt Options, open func(string) (fileReader, error)) (Dataset, error) {
	conv, err := newConverter(opt)
	if err != nil {
		return nil, err
	}
	ds := &wdsDataset{conv: conv, paths: files}
	ds.scratch.New = func() any { return new(folderScratch) }
	for si, p := range files {
		f, err := open(p)
		if err != nil {
			ds.Close()
			return nil, fmt.Errorf("source: %w", err)
		}
		ds.shards = append(ds.shards, f)
		if err := ds.index(si, f, p); err != nil {
			ds.Close()
			return nil, err
		}
	}
	if len(ds.items) == 0 {
		ds.Close()
		return nil, fmt.Errorf("source: no samples (key.jpg|png|webp with key.cls) in %s", strings.Join(files, ", "))
	}
	if err := ds.label(); err != nil {
		ds.Close()
		return nil, err
	}
	ds.desc = fmt.Sprintf("webdataset %s (%d shards, %d classes, %s)", src, len(files), len(ds.classes), conv.describe())
	return ds, nil
}

// index reads one shard's headers. A tar reader over an *os.File skips
// member contents with Seek, so indexing reads little more than the
// headers and the .cls members.
func (ds *wdsDataset) index(si int, f fileReader, p string) error {
	tr := tar.NewReader(f)
	byKey := map[string]int{} // key → index into ds.items, within this shard
	var pending []string      // keys in first-seen order
	cls := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("source: %s: reading the tar shard: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		dir, base := path.Split(h.Name)
		if strings.HasPrefix(base, ".") {
			continue
		}
		dot := strings.IndexByte(base, '.')
		if dot < 0 {
			continue
		}
		key, ext := dir+base[:dot], strings.ToLower(base[dot+1:])
		switch {
		case ext == "cls":
			if h.Size > maxClsBytes {
				return fmt.Errorf("source: %s: %s is %d bytes; a .cls member holds one label", p, h.Name, h.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("source: %s: %s: %w", p, h.Name, err)
			}
			cls[key] = strings.TrimSpace(string(b))
			if _, ok := byKey[key]; !ok {
				pending = append(pending, key)
				byKey[key] = -1
			}
		case isWdsImage(ext):
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return fmt.Errorf("source: %s: %w", p, err)
			}
			it := wdsItem{shard: si, off: off, size: h.Size, name: filepath.Base(p) + "#" + h.Name}
			if k, ok := byKey[key]; ok && k >= 0 {
				// A second image for the key: keep the preferred extension.
				prev := &ds.items[k]
				if extRank(ext) < extRank(prev.name[strings.LastIndexByte(prev.name, '.')+1:]) {
					prev.off, prev.size, prev.name = it.off, it.size, it.name
				}
				continue
			}
			if _, ok := byKey[key]; !ok {
				pending = append(pending, key)
			}
			byKey[key] = len(ds.items)
			ds.items = append(ds.items, it)
		}
	}
	for _, key := range pending {
		k := byKey[key]
		if k < 0 {
			return fmt.Errorf("source: %s: sample %q has a .cls but no image (want %s)", p, key, strings.Join(wdsImageExt, ", "))
		}
		c, ok := cls[key]
		if !ok {
			return fmt.Errorf("source: %s: sample %q (%s) has no .cls member with its label", p, key, ds.items[k].name)
		}
		ds.items[k].cls, ds.items[k].hasCls = c, true
	}
	return nil
}

func isWdsImage(ext string) bool { return extRank(ext) < len(wdsImageExt) }

func extRank(ext string) int {
	for i, e := range wdsImageExt {
		if e == ext {
			return i
		}
	}
	return len(wdsImageExt)
}

// label turns the .cls texts into labels and classes.
func (ds *wdsDataset) label() error {
	numeric := true
	maxL := -1
	for _, it := range ds.items {
		v, err := strconv.Atoi(it.cls)
		if err != nil || v < 0 || v > 1<<20 {
			numeric = false
			break
		}
		maxL = max(maxL, v)
	}
	ds.labels = make([]int32, len(ds.items))
	if numeric {
		ds.classes = numericNames(maxL + 1)
		for i, it := range ds.items {
			v, _ := strconv.Atoi(it.cls)
			ds.labels[i] = int32(v)
		}
		return nil
	}
	set := map[string]int32{}
	for _, it := range ds.items {
		if it.cls == "" {
			return fmt.Errorf("source: %s: empty .cls", it.name)
		}
		set[it.cls] = 0
	}
	for c := range set {
		ds.classes = append(ds.classes, c)
	}
	sort.Strings(ds.classes)
	for i, c := range ds.classes {
		set[c] = int32(i)
	}
	for i, it := range ds.items {
		ds.labels[i] = set[it.cls]
	}
	return nil
}

func (ds *wdsDataset) Kind() string        { return KindWebDataset }
func (ds *wdsDataset) Len() int            { return len(ds.items) }
func (ds *wdsDataset) Classes() []string   { return ds.classes }
func (ds *wdsDataset) Classes2() []string  { return nil }
func (ds *wdsDataset) Description() string { return ds.desc }

// Close closes the shards.
func (ds *wdsDataset) Close() error {
	var errs []error
	for _, f := range ds.shards {
		errs = append(errs, closeReader(f))
	}
	ds.shards = nil
	return errors.Join(errs...)
}

// Load reads sample i's image from its shard and decodes it. Errors name
// the shard and the member.
func (ds *wdsDataset) Load(i int, s *Sample) error {
	if err := checkIndex(i, len(ds.items)); err != nil {
		return err
	}
	it := &ds.items[i]
	sc := ds.scratch.Get().(*folderScratch)
	defer ds.scratch.Put(sc)
	var buf []byte
	if ds.conv.keep {
		buf = grow(s.Encoded, int(it.size))
	} else {
		sc.file = grow(sc.file, int(it.size))
		buf = sc.file
	}
	if _, err := ds.shards[it.shard].ReadAt(buf, it.off); err != nil {
		return fmt.Errorf("source: %s: %w", it.name, err)
	}
	if err := ds.conv.fill(buf, sc, ds.labels[i], it.name, s); err != nil {
		return fmt.Errorf("source: %s: %w", it.name, err)
	}
	return nil
}

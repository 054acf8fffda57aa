package source

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Table source kinds: Parquet files (the Hugging Face datasets layout among
// others) and Arrow IPC files, both read with arrow-go.
const (
	KindParquet = "parquet"
	KindArrow   = "arrow"
)

// The Hugging Face datasets layout: an image column that is a struct
// {bytes: binary, path: string} and a ClassLabel column, an integer whose
// class names are in the schema metadata under "huggingface":
// {"info": {"features": {"label": {"_type": "ClassLabel", "names": [...]}}}}.
const hfMetaKey = "huggingface"

// tableBackend reads one file's groups of rows (Parquet row groups, Arrow
// record batches).
type tableBackend interface {
	schema() *arrow.Schema
	meta(key string) (string, bool)
	groups() int
	// column reads top-level column col of group g.
	column(g, col int) (arrow.Array, error)
	close() error
}

// tableFile is one opened file of a table source.
type tableFile struct {
	path   string
	be     tableBackend
	start  []int // first row (dataset index) of each group; last entry = end
	imgCol int
	mu     sync.Mutex // backends are not safe for concurrent reads
}

// tableDataset is a Dataset over the rows of Parquet or Arrow files: labels
// are read at Open, images group by group at Load, with a small cache of
// decoded groups (samples are loaded roughly in order, a few workers at a
// time, so a handful of groups serves them all).
type tableDataset struct {
	kind    string
	files   []*tableFile
	start   []int // first dataset index of each file; last entry = total
	labels  []int32
	classes []string
	conv    converter
	desc    string
	scratch sync.Pool // *folderScratch

	cacheMu sync.Mutex
	cache   map[[2]int]*groupImages
	lru     [][2]int
}

// groupImages is one group's image column, read once.
type groupImages struct {
	once sync.Once
	arr  arrow.Array // binary-like
	err  error
}

const groupCacheSize = 8

func isParquetName(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".parquet") }

func isArrowName(name string) bool {
	l := strings.ToLower(name)
	return strings.HasSuffix(l, ".arrow") || strings.HasSuffix(l, ".feather") || strings.HasSuffix(l, ".ipc")
}

// openTable opens Parquet or Arrow IPC files (or directories of them, taken
// in name order). Every file must have the same image and label columns;
// rows are samples in file order. Columns: opt.ImageColumn, else "image",
// "img", or the only column holding binary data or {bytes, path} structs;
// opt.LabelColumn, else "label", "labels", "class" or the only ClassLabel
// column. Class names: the label column's ClassLabel names from the
// Hugging Face metadata; for string labels the sorted names; otherwise
// "0" … max label.
func openTable(kind string, paths []string, opt Options) (Dataset, error) {
	want := isParquetName
	if kind == KindArrow {
		want = isArrowName
	}
	var names []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if !fi.IsDir() {
			names = append(names, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		var m []string
		for _, e := range ents {
			if !e.IsDir() && want(e.Name()) {
				m = append(m, filepath.Join(p, e.Name()))
			}
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("source: directory %s holds no %s files", p, kind)
		}
		sort.Strings(m)
		names = append(names, m...)
	}
	return newTableDataset(kind, strings.Join(paths, ", "), names, opt, openFileReader)
}

// fileReader is the bytes of one table file or WebDataset shard: the
// *os.File of a path, or a bytes.Reader over a file already in memory (the
// fuzzers' inputs: no temporary file per execution), read by the same code.
type fileReader interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// openFileReader opens path p as a fileReader (closed with the dataset).
func openFileReader(p string) (fileReader, error) { return os.Open(p) }

// closeReader closes r when it holds a resource (an *os.File).
func closeReader(r fileReader) error {
	if c, ok := r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// newTableDataset reads the table files names, each opened with open; src
// names the source in the description. See openTable.
func newTableDataset(kind, src string, names []string, opt Options, open func(string) (fileReader, error)) (Dataset, error) {
	conv, err := newConverter(opt)
	if err != nil {
		return nil, err
	}
	ds := &tableDataset{kind: kind, conv: conv, cache: map[[2]int]*groupImages{}}
	ds.scratch.New = func() any { return new(folderScratch) }
	fail := func(err error) (Dataset, error) {
		ds.Close()
		return nil, err
	}
	var rawLabels []arrow.Array // per file, concatenated later
	var hfNames []string
	labelName, imageName := "", ""
	for _, p := range names {
		r, err := open(p)
		if err != nil {
			return fail(fmt.Errorf("source: %w", err))
		}
		be, err := safeOpen(kind, r)
		if err != nil {
			closeReader(r)
			return fail(fmt.Errorf("source: %s: %w", p, err))
		}
		tf := &tableFile{path: p, be: be}
		ds.files = append(ds.files, tf)
		sc := be.schema()
		ic, lc, err := pickColumns(sc, opt.ImageColumn, opt.LabelColumn, be)
		if err != nil {
			return fail(fmt.Errorf("source: %s: %w", p, err))
		}
		if imageName == "" {
			imageName, labelName = sc.Field(ic).Name, sc.Field(lc).Name
			hfNames = classLabelNames(be, labelName)
		} else if sc.Field(ic).Name != imageName || sc.Field(lc).Name != labelName {
			return fail(fmt.Errorf("source: %s: image and label columns %q, %q differ from the first file's %q, %q",
				p, sc.Field(ic).Name, sc.Field(lc).Name, imageName, labelName))
		}
		tf.imgCol = ic
		rows := 0
		for g := 0; g < be.groups(); g++ {
			tf.start = append(tf.start, rows)
			a, err := safeColumn(be, g, lc)
			if err != nil {
				return fail(fmt.Errorf("source: %s: reading column %q: %w", p, labelName, err))
			}
			rows += a.Len()
			rawLabels = append(rawLabels, a)
		}
		tf.start = append(tf.start, rows)
		total := 0
		if len(ds.start) > 0 {
			total = ds.start[len(ds.start)-1]
		}
		if len(ds.start) == 0 {
			ds.start = append(ds.start, 0)
		}
		ds.start = append(ds.start, total+rows)
	}
	if ds.start[len(ds.start)-1] == 0 {
		return fail(fmt.Errorf("source: %s: no rows", strings.Join(names, ", ")))
	}
	if err := ds.setLabels(rawLabels, hfNames, labelName); err != nil {
		return fail(err)
	}
	for _, a := range rawLabels {
		a.Release()
	}
	ds.desc = fmt.Sprintf("%s %s (image column %q, label column %q, %d classes, %s)", kind, src,
		imageName, labelName, len(ds.classes), conv.describe())
	return ds, nil
}

// imageColumnOK reports a column pack can read images from: binary data,
// or a struct with a binary "bytes" field (Hugging Face's Image feature).
func imageColumnOK(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType:
		return true
	case *arrow.StructType:
		if i, ok := t.FieldIdx("bytes"); ok {
			return imageColumnOK(t.Field(i).Type)
		}
	}
	return false
}

func labelColumnOK(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.STRING, arrow.LARGE_STRING, arrow.DICTIONARY:
		return true
	}
	return false
}

func pickColumns(sc *arrow.Schema, image, label string, be tableBackend) (ic, lc int, err error) {
	var cols []string
	for _, f := range sc.Fields() {
		cols = append(cols, fmt.Sprintf("%s (%s)", f.Name, f.Type))
	}
	list := strings.Join(cols, ", ")
	find := func(flag, name string, ok func(arrow.DataType) bool, defaults []string, what string) (int, error) {
		if name != "" {
			idx := sc.FieldIndices(name)
			if len(idx) == 0 {
				return -1, fmt.Errorf("%s %q: no such column (columns: %s)", flag, name, list)
			}
			if !ok(sc.Field(idx[0]).Type) {
				return -1, fmt.Errorf("%s %q: column of type %s cannot hold %s", flag, name, sc.Field(idx[0]).Type, what)
			}
			return idx[0], nil
		}
		for _, d := range defaults {
			if idx := sc.FieldIndices(d); len(idx) > 0 && ok(sc.Field(idx[0]).Type) {
				return idx[0], nil
			}
		}
		found := -1
		for i, f := range sc.Fields() {
			if ok(f.Type) {
				if found >= 0 {
					return -1, fmt.Errorf("several columns could hold %s (%s, %s); choose one with %s (columns: %s)",
						what, sc.Field(found).Name, f.Name, flag, list)
				}
				found = i
			}
		}
		if found < 0 {
			return -1, fmt.Errorf("no column holds %s; name it with %s (columns: %s)", what, flag, list)
		}
		return found, nil
	}
	if ic, err = find("--image-column", image, imageColumnOK, []string{"image", "img", "jpg", "png", "webp"},
		"images (binary, or a struct with binary \"bytes\")"); err != nil {
		return
	}
	labelOK := func(t arrow.DataType) bool { return labelColumnOK(t) }
	defaults := []string{"label", "labels", "class", "cls"}
	if label == "" {
		// A ClassLabel column named in the Hugging Face metadata wins.
		for _, f := range sc.Fields() {
			if classLabelNames(be, f.Name) != nil {
				defaults = append([]string{f.Name}, defaults...)
				break
			}
		}
	}
	if lc, err = find("--label-column", label, labelOK, defaults, "labels (integers or class names)"); err != nil {
		return
	}
	if lc == ic {
		return -1, -1, fmt.Errorf("the image and label columns are the same column %q", sc.Field(ic).Name)
	}
	return ic, lc, nil
}

// classLabelNames returns the ClassLabel names of column col from the
// Hugging Face metadata, or nil.
func classLabelNames(be tableBackend, col string) []string {
	v, ok := be.meta(hfMetaKey)
	if !ok {
		return nil
	}
	var md struct {
		Info struct {
			Features map[string]struct {
				Type  string   `json:"_type"`
				Names []string `json:"names"`
			} `json:"features"`
		} `json:"info"`
	}
	if json.Unmarshal([]byte(v), &md) != nil {
		return nil
	}
	f, ok := md.Info.Features[col]
	if !ok || f.Type != "ClassLabel" || len(f.Names) == 0 {
		return nil
	}
	return f.Names
}

// setLabels turns the label columns into labels and classes.
func (ds *tableDataset) setLabels(cols []arrow.Array, hfNames []string, colName string) error {
	n := ds.start[len(ds.start)-1]
	ds.labels = make([]int32, 0, n)
	var strs []string
	isStr := false
	row := 0
	where := func(r int) string {
		f := sort.SearchInts(ds.start, r+1) - 1
		return fmt.Sprintf("%s row %d", ds.files[f].path, r-ds.start[f])
	}
	for _, a := range cols {
		if d, ok := a.(*array.Dictionary); ok {
			a = d.Dictionary() // handled below by index
			_ = a
			return fmt.Errorf("source: label column %q: dictionary-encoded labels are not supported; cast them to string or integer", colName)
		}
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				return fmt.Errorf("source: %s: label column %q is null", where(row), colName)
			}
			var v int64
			switch a := a.(type) {
			case *array.Int8:
				v = int64(a.Value(i))
			case *array.Int16:
				v = int64(a.Value(i))
			case *array.Int32:
				v = int64(a.Value(i))
			case *array.Int64:
				v = a.Value(i)
			case *array.Uint8:
				v = int64(a.Value(i))
			case *array.Uint16:
				v = int64(a.Value(i))
			case *array.Uint32:
				v = int64(a.Value(i))
			case *array.Uint64:
				v = int64(min(a.Value(i), 1<<62))
			case *array.String:
				isStr = true
				strs = append(strs, a.Value(i))
				row++
				continue
			case *array.LargeString:
				isStr = true
				strs = append(strs, a.Value(i))
				row++
				continue
			default:
				return fmt.Errorf("source: label column %q has type %s", colName, a.DataType())
			}
			if v < 0 || v > 1<<20 || (hfNames != nil && v >= int64(len(hfNames))) {
				lim := "0 … 2^20"
				if hfNames != nil {
					lim = fmt.Sprintf("0 … %d (the ClassLabel names)", len(hfNames)-1)
				}
				return fmt.Errorf("source: %s: label %d in column %q is outside %s (unlabelled rows, -1 in Hugging Face test splits, cannot be packed)",
					where(row), v, colName, lim)
			}
			ds.labels = append(ds.labels, int32(v))
			row++
		}
	}
	if isStr {
		if len(strs) != n {
			return fmt.Errorf("source: label column %q mixes strings and integers across files", colName)
		}
		set := map[string]int32{}
		for _, s := range strs {
			set[s] = 0
		}
		for s := range set {
			ds.classes = append(ds.classes, s)
		}
		sort.Strings(ds.classes)
		for i, c := range ds.classes {
			set[c] = int32(i)
		}
		ds.labels = ds.labels[:0]
		for _, s := range strs {
			ds.labels = append(ds.labels, set[s])
		}
		return nil
	}
	if hfNames != nil {
		ds.classes = hfNames
		return nil
	}
	maxL := int32(0)
	for _, l := range ds.labels {
		maxL = max(maxL, l)
	}
	ds.classes = numericNames(int(maxL) + 1)
	return nil
}

func (ds *tableDataset) Kind() string        { return ds.kind }
func (ds *tableDataset) Len() int            { return ds.start[len(ds.start)-1] }
func (ds *tableDataset) Classes() []string   { return ds.classes }
func (ds *tableDataset) Classes2() []string  { return nil }
func (ds *tableDataset) Description() string { return ds.desc }

// Close closes the files and drops the cached groups.
func (ds *tableDataset) Close() error {
	ds.cacheMu.Lock()
	for _, g := range ds.cache {
		g.once.Do(func() {})
		if g.arr != nil {
			g.arr.Release()
		}
	}
	ds.cache, ds.lru = nil, nil
	ds.cacheMu.Unlock()
	var errs []error
	for _, f := range ds.files {
		errs = append(errs, f.be.close())
	}
	ds.files = nil
	return errors.Join(errs...)
}

// group returns group g of file f's image column, reading it at most once
// while it stays in the cache.
func (ds *tableDataset) group(f, g int) (arrow.Array, error) {
	key := [2]int{f, g}
	ds.cacheMu.Lock()
	if ds.cache == nil {
		ds.cacheMu.Unlock()
		return nil, errors.New("dataset is closed")
	}
	e, ok := ds.cache[key]
	if !ok {
		e = &groupImages{}
		ds.cache[key] = e
		ds.lru = append(ds.lru, key)
		if len(ds.lru) > groupCacheSize {
			// The evicted array stays valid for goroutines still using
			// it: Go's allocator backs it, so the GC frees it after them.
			delete(ds.cache, ds.lru[0])
			ds.lru = ds.lru[1:]
		}
	}
	ds.cacheMu.Unlock()
	e.once.Do(func() {
		tf := ds.files[f]
		tf.mu.Lock()
		a, err := safeColumn(tf.be, g, tf.imgCol)
		tf.mu.Unlock()
		if err != nil {
			e.err = err
			return
		}
		if st, ok := a.(*array.Struct); ok {
			t := st.DataType().(*arrow.StructType)
			i, _ := t.FieldIdx("bytes")
			b := st.Field(i)
			b.Retain()
			a.Release()
			a = b
		}
		e.arr = a
	})
	return e.arr, e.err
}

// Load reads row i's image and decodes it. Errors name the file and row.
func (ds *tableDataset) Load(i int, s *Sample) error {
	if err := checkIndex(i, ds.Len()); err != nil {
		return err
	}
	f := sort.SearchInts(ds.start, i+1) - 1
	tf := ds.files[f]
	r := i - ds.start[f]
	g := sort.SearchInts(tf.start, r+1) - 1
	name := ds.Name(i)
	a, err := ds.group(f, g)
	if err != nil {
		return fmt.Errorf("source: %s: reading row group %d: %w", tf.path, g, err)
	}
	k := r - tf.start[g]
	if k >= a.Len() {
		// Rows are counted on the label column; a damaged Arrow batch can
		// hold fewer images (found by FuzzArrowIPC).
		return fmt.Errorf("source: %s row %d: group %d has %d images for %d labels (damaged file)", tf.path, r, g, a.Len(), tf.start[g+1]-tf.start[g])
	}
	if a.IsNull(k) {
		return fmt.Errorf("source: %s row %d: the image is null (an image given only by path is not read)", tf.path, r)
	}
	var data []byte
	switch a := a.(type) {
	case *array.Binary:
		data = a.Value(k)
	case *array.LargeBinary:
		data = a.Value(k)
	case *array.BinaryView:
		data = a.Value(k)
	default:
		return fmt.Errorf("source: %s: image column of type %s", tf.path, a.DataType())
	}
	sc := ds.scratch.Get().(*folderScratch)
	defer ds.scratch.Put(sc)
	if ds.conv.keep { // the Sample owns its Encoded bytes
		buf := grow(s.Encoded, len(data))
		copy(buf, data)
		data = buf
	}
	if err := ds.conv.fill(data, sc, ds.labels[i], name, s); err != nil {
		return fmt.Errorf("source: %s row %d: %w", tf.path, r, err)
	}
	return nil
}

// parquetBackend reads a Parquet file's row groups: plain columns with
// pqarrow, the image bytes of a struct column with parquet's column reader
// (see imageLeaf).
type parquetBackend struct {
	pf  *file.Reader
	fr  *pqarrow.FileReader
	sc  *arrow.Schema
	mem memory.Allocator // bounded: see newBoundedAllocator
}

// checkParquetChunk refuses column chunk c of row group g when its bytes
// are not inside the file. arrow-go checks that only for files from old
// writers; otherwise, opening the chunk, it makes a buffer of the length
// the metadata gives: a negative length panics (FuzzParquet found one), and
// a huge one (say 1 TiB) is a fatal out-of-memory error that no recover
// catches, so column checks the bounds before every chunk it opens.
func checkParquetChunk(pf *file.Reader, g, c int) error {
	md := pf.MetaData()
	col, err := md.RowGroup(g).ColumnChunk(c)
	if err != nil {
		return fmt.Errorf("row group %d, column %d: %w", g, c, err)
	}
	size := md.GetSourceFileSize()
	start := col.DataPageOffset()
	if col.HasDictionaryPage() && col.DictionaryPageOffset() > 0 && start > col.DictionaryPageOffset() {
		start = col.DictionaryPageOffset()
	}
	n := col.TotalCompressedSize()
	if start < 0 || n < 0 || start > size || n > size-start {
		return fmt.Errorf("row group %d, column %d: its pages (offset %d, %d bytes) are not inside the %d-byte file", g, c, start, n, size)
	}
	return nil
}

// openParquetBackend reads r's footer and schema; on an error the caller
// closes r.
func openParquetBackend(r fileReader) (tableBackend, error) {
	mem, err := newBoundedAllocator(r)
	if err != nil {
		return nil, err
	}
	pf, err := file.NewParquetReader(r, file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		return nil, fmt.Errorf("not a readable Parquet file: %w", err)
	}
	if v := pf.MetaData().KeyValueMetadata().FindValue("ARROW:schema"); v != nil {
		dec, err := base64.StdEncoding.DecodeString(*v)
		if len(dec) == 0 || err != nil {
			dec, err = base64.RawStdEncoding.DecodeString(*v)
		}
		if err == nil {
			err = checkArrowSchemaMeta(dec)
		}
		if err != nil {
			return nil, fmt.Errorf("parquet: the ARROW:schema metadata: %w", err)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, fmt.Errorf("parquet schema: %w", err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return nil, fmt.Errorf("parquet schema: %w", err)
	}
	return &parquetBackend{pf: pf, fr: fr, sc: sc, mem: mem}, nil
}

func (b *parquetBackend) schema() *arrow.Schema { return b.sc }
func (b *parquetBackend) groups() int           { return b.pf.NumRowGroups() }
func (b *parquetBackend) close() error          { return b.pf.Close() } // closes the fileReader

func (b *parquetBackend) meta(key string) (string, bool) {
	kv := b.pf.MetaData().KeyValueMetadata()
	if kv == nil {
		return "", false
	}
	v := kv.FindValue(key)
	if v == nil {
		return "", false
	}
	return *v, true
}

// column reads one top-level column of row group g. A plain column goes
// through pqarrow, which (with Parallel off) reads it in this goroutine, so
// safeColumn's recover covers it. A struct column (the Hugging Face image
// {bytes, path}) does not: pqarrow builds a struct's child readers in
// errgroup goroutines, and building one opens its column chunk, so a panic
// there on a damaged file would kill the process. Its bytes leaf is read
// here instead, by imageLeaf.
func (b *parquetBackend) column(g, col int) (arrow.Array, error) {
	f := &b.fr.Manifest.Fields[col]
	name := f.Field.Name
	leaf := f
	for !leaf.IsLeaf() { // an image struct: its bytes leaf
		var next *pqarrow.SchemaField
		for i := range leaf.Children {
			if c := &leaf.Children[i]; c.Field != nil && c.Field.Name == "bytes" {
				next = c
			}
		}
		if next == nil {
			return nil, fmt.Errorf("column %q: a struct with no \"bytes\" field", name)
		}
		leaf, name = next, name+".bytes"
	}
	if err := checkParquetChunk(b.pf, g, leaf.ColIndex); err != nil {
		return nil, fmt.Errorf("column %q: %w", name, err)
	}
	if leaf != f {
		return b.imageLeaf(g, leaf.ColIndex, name)
	}
	tbl, err := b.fr.ReadRowGroups(context.Background(), []int{f.ColIndex}, []int{g})
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	ch := tbl.Column(0).Data()
	return concat(ch)
}

// imageLeafBatch is how many levels imageLeaf reads at a time.
const imageLeafBatch = 1024

// imageLeaf reads the image bytes of a struct column in row group g, leaf
// column leaf (named name in errors), with parquet's column chunk reader in
// the calling goroutine, as a Binary
// array with a null wherever the struct or its bytes are null. ReadBatch
// hands back one batch of values (arrow-go v18.8 copies them out of the
// page into Go memory; ReadBatchInPage would alias the page buffer); the
// builder copies each into buffers of the backend's bounded allocator, so
// the array owns its data and a huge declared size is refused.
func (b *parquetBackend) imageLeaf(g, leaf int, name string) (arrow.Array, error) {
	rg := b.pf.RowGroup(g)
	cr, err := rg.Column(leaf)
	if err != nil {
		return nil, fmt.Errorf("column %q: %w", name, err)
	}
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("column %q: physical type %s, not BYTE_ARRAY: cannot hold images", name, cr.Type())
	}
	d := br.Descriptor()
	maxDef := d.MaxDefinitionLevel()
	if d.MaxRepetitionLevel() > 0 {
		return nil, fmt.Errorf("column %q: the image bytes are repeated (repetition level %d), not one per row", name, d.MaxRepetitionLevel())
	}
	rows := rg.NumRows()
	bb := array.NewBinaryBuilder(b.mem, arrow.BinaryTypes.Binary)
	defer bb.Release()
	var (
		vals = make([]parquet.ByteArray, imageLeafBatch)
		defs = make([]int16, imageLeafBatch)
		size int64 // bytes appended
		read int64 // rows appended
	)
	for read < rows {
		n, nv, err := br.ReadBatch(min(rows-read, imageLeafBatch), vals, defs, nil)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		if n == 0 {
			break
		}
		if maxDef == 0 && n != int64(nv) {
			return nil, fmt.Errorf("column %q: %d values for %d required rows (damaged file)", name, nv, n)
		}
		v := 0
		for k := range n {
			if maxDef > 0 && defs[k] < maxDef {
				bb.AppendNull()
				continue
			}
			if v >= nv {
				return nil, fmt.Errorf("column %q: fewer values than the definition levels declare (damaged file)", name)
			}
			if size += int64(len(vals[v])); size > math.MaxInt32 {
				return nil, fmt.Errorf("column %q: row group %d holds more than 2 GiB of images; write smaller row groups", name, g)
			}
			bb.Append(vals[v])
			v++
		}
		if v != nv {
			return nil, fmt.Errorf("column %q: more values than the definition levels declare (damaged file)", name)
		}
		read += n
	}
	if err := br.Err(); err != nil {
		return nil, fmt.Errorf("column %q: %w", name, err)
	}
	if read != rows {
		return nil, fmt.Errorf("column %q: %d values for the %d rows of the row group (damaged file)", name, read, rows)
	}
	return bb.NewBinaryArray(), nil
}

// concat returns a chunked column as one array.
func concat(ch *arrow.Chunked) (arrow.Array, error) {
	if len(ch.Chunks()) == 1 {
		a := ch.Chunk(0)
		a.Retain()
		return a, nil
	}
	return array.Concatenate(ch.Chunks(), memory.DefaultAllocator)
}

// arrowBackend reads an Arrow IPC file's record batches.
type arrowBackend struct {
	r  fileReader
	fr *ipc.FileReader
	n  int // record batches, read from the footer under safeOpen's recover
}

// openArrowBackend reads r's footer and schema; on an error the caller
// closes r.
func openArrowBackend(r fileReader) (tableBackend, error) {
	mem, err := newBoundedAllocator(r)
	if err == nil {
		err = checkArrowFooter(r, int64(mem.size))
	}
	var fr *ipc.FileReader
	if err == nil {
		fr, err = ipc.NewFileReader(r, ipc.WithAllocator(mem))
	}
	if err != nil {
		return nil, fmt.Errorf("not an Arrow IPC file (the random-access format with footer; a stream must be converted): %w", err)
	}
	return &arrowBackend{r: r, fr: fr, n: fr.NumRecords()}, nil
}

func (b *arrowBackend) schema() *arrow.Schema { return b.fr.Schema() }
func (b *arrowBackend) groups() int           { return b.n }

func (b *arrowBackend) close() error {
	b.fr.Close()
	return closeReader(b.r)
}

func (b *arrowBackend) meta(key string) (string, bool) {
	md := b.fr.Schema().Metadata()
	i := md.FindKey(key)
	if i < 0 {
		return "", false
	}
	return md.Values()[i], true
}

func (b *arrowBackend) column(g, col int) (arrow.Array, error) {
	rec, err := b.fr.RecordBatchAt(g)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	a := rec.Column(col)
	a.Retain()
	return a, nil
}

// safeColumn reads a column, turning a panic inside arrow-go (possible on
// damaged files) into an error: bad input must never crash pack.
func safeColumn(be tableBackend, g, col int) (a arrow.Array, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("damaged file: the reader failed: %v", r)
		}
	}()
	if a, err = be.column(g, col); err != nil {
		return nil, err
	}
	// arrow-go's full validation (buffer sizes, offsets within their data
	// and non-decreasing, struct children, dictionaries) before Value or
	// IsNull index anything: IPC readers take the buffers as the file gives
	// them, and FuzzArrowIPC found label offsets 7 MB past their data and
	// image offsets going backwards, both panics. (An array's own Validate
	// is not enough: Struct's checks only its children's lengths.)
	if err := array.ValidateFull(a); err != nil {
		a.Release()
		return nil, fmt.Errorf("damaged column: %w", err)
	}
	return a, nil
}

// safeOpen opens a backend, turning a panic into an error like safeColumn.
func safeOpen(kind string, r fileReader) (be tableBackend, err error) {
	defer func() {
		if r := recover(); r != nil {
			be, err = nil, fmt.Errorf("damaged file: the reader failed: %v", r)
		}
	}()
	if kind == KindParquet {
		return openParquetBackend(r)
	}
	return openArrowBackend(r)
}

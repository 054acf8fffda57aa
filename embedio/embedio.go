// Package embedio stores an embedding as an Arrow IPC file: the random-access
// "file" format (magic, record batches, footer), which pyarrow.ipc.open_file,
// apache-arrow's tableFromIPC, DuckDB and polars.read_ipc all open.
//
// Columns, one row per image in dataset order:
//
//	index     int64                              position in the dataset
//	label     int32                              class label (omitted when there are no labels)
//	class     dictionary<int32, utf8>            class name of label (null for a negative label)
//	x, y      float32                            when the embedding is 2-D
//	embedding fixed_size_list<float32>[dim]      instead of x, y for any other dimension
//	features  fixed_size_list<float32>[D]        optional backbone features
//
// String metadata on the schema records how the embedding was made (model,
// stage epochs, seed, source dataset, ...); see the Meta* keys.
//
// Write streams the rows in record batches of BatchRows so that a file of
// millions of rows never needs a second copy of the whole embedding, and it
// commits the file atomically: a reader sees the old file or the complete new
// one, never a torn file whose footer happens to parse.
package embedio

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// Column names of the file.
const (
	ColIndex     = "index"
	ColLabel     = "label"
	ColClass     = "class"
	ColX         = "x"
	ColY         = "y"
	ColEmbedding = "embedding"
	ColFeatures  = "features"
)

// Well-known metadata keys. Write stores whatever Embedding.Meta holds; these
// are the names the embed command should use so that tools can rely on
// them. Plain words, because they are what a user sees in pyarrow, polars or
// DuckDB.
const (
	MetaModel       = "model"        // backbone and head, e.g. "resnet18 + mlp"
	MetaStageEpochs = "stage_epochs" // e.g. "1000,50,450"
	MetaSeed        = "seed"         // decimal
	MetaSource      = "source"       // path or name of the dataset that was embedded
	MetaOutDim      = "out_dim"      // decimal; Write sets it from Dim
	MetaFormat      = "format"       // "tsimcne-embedding/" + layout version; Write sets it
)

// formatName is the value of MetaFormat. Bump its version when the column
// layout changes so that readers can tell old files apart.
const formatName = "tsimcne-embedding/1"

// BatchRows is the number of rows per record batch. 64 Ki rows of a 2-D map
// with 512 features is about 140 MB of column data per batch at most, and
// small maps (the usual case) fit in one or two batches, which readers
// concatenate without cost.
const BatchRows = 1 << 16

// maxUnnamedClasses bounds the labels of an embedding without class names.
const maxUnnamedClasses = 1 << 16

// Embedding is one embedding with its labels, in dataset order.
type Embedding struct {
	// Index is the dataset position of each row. Nil means 0..n-1.
	Index []int64
	// Labels is the class label of each row, or nil when the data has none.
	// A negative label means "no label" and gives a null class.
	Labels []int32
	// Classes names the labels: Classes[label]. When empty, the class
	// column holds the label's decimal text.
	Classes []string
	// Coords is the embedding, n×Dim, row-major.
	Coords []float32
	// Dim is the embedding dimension (out_dim); 2 gives x and y columns.
	Dim int
	// Features are the backbone features, n×FeatureDim row-major, or nil.
	Features []float32
	// FeatureDim is the feature dimension (512 for ResNet-18); 0 when
	// Features is nil.
	FeatureDim int
	// Meta is stored as schema metadata, in key order; Write adds
	// MetaOutDim and MetaFormat (replacing any values given for them).
	Meta map[string]string
}

// Len is the number of rows, len(Coords)/Dim.
func (e *Embedding) Len() int {
	if e.Dim <= 0 {
		return 0
	}
	return len(e.Coords) / e.Dim
}

// Validate reports the first inconsistency between the lengths of the
// fields, or a label that Classes cannot name.
func (e *Embedding) Validate() error {
	if e == nil {
		return errors.New("embedio: nil embedding")
	}
	if e.Dim <= 0 {
		return fmt.Errorf("embedio: embedding dimension %d, want ≥ 1", e.Dim)
	}
	if e.Dim > math.MaxInt32 || e.FeatureDim > math.MaxInt32 {
		return fmt.Errorf("embedio: dimension %d×%d too large for a fixed-size list", e.Dim, e.FeatureDim)
	}
	if len(e.Coords)%e.Dim != 0 {
		return fmt.Errorf("embedio: %d coordinates are not a whole number of %d-dimensional rows", len(e.Coords), e.Dim)
	}
	n := len(e.Coords) / e.Dim
	if e.Index != nil && len(e.Index) != n {
		return fmt.Errorf("embedio: %d index values for %d rows", len(e.Index), n)
	}
	if e.Labels != nil && len(e.Labels) != n {
		return fmt.Errorf("embedio: %d labels for %d rows", len(e.Labels), n)
	}
	for i, l := range e.Labels {
		switch {
		case len(e.Classes) > 0 && int(l) >= len(e.Classes):
			return fmt.Errorf("embedio: row %d: label %d outside the %d classes", i, l, len(e.Classes))
		case len(e.Classes) == 0 && l >= maxUnnamedClasses:
			// Without names the dictionary lists 0..max label; a stray
			// huge label must not make it billions of strings long.
			return fmt.Errorf("embedio: row %d: label %d without class names (at most %d unnamed classes)", i, l, maxUnnamedClasses)
		}
	}
	switch {
	case e.Features == nil && e.FeatureDim != 0:
		return fmt.Errorf("embedio: feature dimension %d without features", e.FeatureDim)
	case e.Features != nil && e.FeatureDim <= 0:
		return fmt.Errorf("embedio: %d features with feature dimension %d", len(e.Features), e.FeatureDim)
	case e.Features != nil && len(e.Features) != n*e.FeatureDim:
		return fmt.Errorf("embedio: %d feature values for %d rows of %d, want %d", len(e.Features), n, e.FeatureDim, n*e.FeatureDim)
	}
	return nil
}

// Write stores e at path as an Arrow IPC file, atomically: the bytes go to a
// temporary file in the same directory, which is synced and renamed over
// path only when complete. On error path is left as it was.
func Write(path string, e *Embedding) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return Encode(w, e) }); err != nil {
		return fmt.Errorf("embedio: write %s: %w", path, err)
	}
	return nil
}

// Schema is the Arrow schema Write uses for e (which must be valid).
func Schema(e *Embedding) *arrow.Schema {
	var fields []arrow.Field
	fields = append(fields, arrow.Field{Name: ColIndex, Type: arrow.PrimitiveTypes.Int64})
	if e.Labels != nil {
		fields = append(fields,
			arrow.Field{Name: ColLabel, Type: arrow.PrimitiveTypes.Int32},
			arrow.Field{Name: ColClass, Type: classType, Nullable: true})
	}
	if e.Dim == 2 {
		fields = append(fields,
			arrow.Field{Name: ColX, Type: arrow.PrimitiveTypes.Float32},
			arrow.Field{Name: ColY, Type: arrow.PrimitiveTypes.Float32})
	} else {
		fields = append(fields, arrow.Field{Name: ColEmbedding, Type: arrow.FixedSizeListOfNonNullable(int32(e.Dim), arrow.PrimitiveTypes.Float32)})
	}
	if e.Features != nil {
		fields = append(fields, arrow.Field{Name: ColFeatures, Type: arrow.FixedSizeListOfNonNullable(int32(e.FeatureDim), arrow.PrimitiveTypes.Float32)})
	}
	meta := maps.Clone(e.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[MetaOutDim] = strconv.Itoa(e.Dim)
	meta[MetaFormat] = formatName
	keys := slices.Sorted(maps.Keys(meta))
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = meta[k]
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &md)
}

var classType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// Encode writes e to w in the Arrow IPC file format. It does not make the
// write atomic; Write does.
func Encode(w io.Writer, e *Embedding) (err error) {
	if err := e.Validate(); err != nil {
		return err
	}
	schema := Schema(e)
	fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return fmt.Errorf("embedio: arrow writer: %w", err)
	}
	// The writer's Close writes the footer. After a failure it is not
	// called, so that what reached w never parses as a complete file.
	defer func() {
		if err != nil {
			return
		}
		if cerr := fw.Close(); cerr != nil {
			err = fmt.Errorf("embedio: arrow footer: %w", cerr)
		}
	}()
	return writeRows(schema, e, fw.Write, "rows")
}

// classDictionary is the class-name dictionary: Classes, or the decimal text
// of 0..max label when there are no names.
func classDictionary(e *Embedding) arrow.Array {
	names := e.Classes
	if len(names) == 0 {
		hi := int32(-1)
		for _, l := range e.Labels {
			hi = max(hi, l)
		}
		names = make([]string, hi+1)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(names, nil)
	return b.NewArray()
}

// writeRows hands e's rows to write in batches of BatchRows. Every batch
// shares one class dictionary: the IPC file format allows a single
// dictionary per field, and the writers skip re-sending a dictionary whose
// data they have already written. An empty embedding still gets one empty
// batch, so that readers that look at the first batch work. what names the
// rows in errors.
func writeRows(schema *arrow.Schema, e *Embedding, write func(arrow.RecordBatch) error, what string) error {
	var dict arrow.Array
	if e.Labels != nil {
		dict = classDictionary(e)
		defer dict.Release()
	}
	n := e.Len()
	for lo := 0; ; lo += BatchRows {
		hi := min(lo+BatchRows, n)
		rec := batch(schema, e, dict, lo, hi)
		err := write(rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("embedio: %s %d..%d: %w", what, lo, hi, err)
		}
		if hi >= n {
			return nil
		}
	}
}

// batch builds rows lo..hi. The int32/int64/float32 columns point straight
// into e's slices (no copy); only x/y (de-interleaved), a generated index and
// the class validity bitmap are new memory, bounded by BatchRows.
func batch(schema *arrow.Schema, e *Embedding, dict arrow.Array, lo, hi int) arrow.RecordBatch {
	m := hi - lo
	var cols []arrow.Array
	release := func() {
		for _, c := range cols {
			c.Release()
		}
	}
	defer release()

	idx := make([]int64, m)
	if e.Index != nil {
		copy(idx, e.Index[lo:hi])
	} else {
		for i := range idx {
			idx[i] = int64(lo + i)
		}
	}
	cols = append(cols, primitive(arrow.PrimitiveTypes.Int64, m, arrow.Int64Traits.CastToBytes(idx), nil, 0))

	if e.Labels != nil {
		labels := e.Labels[lo:hi]
		cols = append(cols, primitive(arrow.PrimitiveTypes.Int32, m, arrow.Int32Traits.CastToBytes(labels), nil, 0))
		// Negative labels are "no label": null class entries. The index
		// buffer under a null slot must still be a valid dictionary
		// index for strict readers, so those slots get 0.
		var valid []byte
		nulls := 0
		codes := labels
		for i, l := range labels {
			if l < 0 {
				if valid == nil {
					valid = make([]byte, (m+7)/8)
					for j := range valid {
						valid[j] = 0xff
					}
					codes = slices.Clone(labels)
				}
				valid[i/8] &^= 1 << (i % 8)
				codes[i] = 0
				nulls++
			}
		}
		ind := array.NewData(arrow.PrimitiveTypes.Int32, m,
			[]*memory.Buffer{bufOrNil(valid), memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(codes))}, nil, nulls, 0)
		d := array.NewDataWithDictionary(classType, m, ind.Buffers(), nulls, 0, dict.Data().(*array.Data))
		ind.Release()
		cols = append(cols, array.MakeFromData(d))
		d.Release()
	}

	c := e.Coords[lo*e.Dim : hi*e.Dim]
	if e.Dim == 2 {
		x, y := make([]float32, m), make([]float32, m)
		for i := range m {
			x[i], y[i] = c[2*i], c[2*i+1]
		}
		cols = append(cols,
			primitive(arrow.PrimitiveTypes.Float32, m, arrow.Float32Traits.CastToBytes(x), nil, 0),
			primitive(arrow.PrimitiveTypes.Float32, m, arrow.Float32Traits.CastToBytes(y), nil, 0))
	} else {
		cols = append(cols, fixedList(schema.Field(len(cols)).Type, m, c))
	}
	if e.Features != nil {
		f := e.Features[lo*e.FeatureDim : hi*e.FeatureDim]
		cols = append(cols, fixedList(schema.Field(len(cols)).Type, m, f))
	}
	return array.NewRecordBatch(schema, cols, int64(m))
}

func bufOrNil(b []byte) *memory.Buffer {
	if b == nil {
		return nil
	}
	return memory.NewBufferBytes(b)
}

func primitive(t arrow.DataType, n int, values, valid []byte, nulls int) arrow.Array {
	d := array.NewData(t, n, []*memory.Buffer{bufOrNil(valid), memory.NewBufferBytes(values)}, nil, nulls, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func fixedList(t arrow.DataType, n int, values []float32) arrow.Array {
	child := array.NewData(arrow.PrimitiveTypes.Float32, len(values),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float32Traits.CastToBytes(values))}, nil, 0, 0)
	defer child.Release()
	d := array.NewData(t, n, []*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

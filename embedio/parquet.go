package embedio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
)

// IsParquet reports whether path names a Parquet file by its extension
// (.parquet or .pq, any case): WriteFile uses it to choose the format.
func IsParquet(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return true
	}
	return false
}

// WriteFile stores e at path as Parquet when the extension says so
// (IsParquet) and as an Arrow IPC file otherwise, atomically either way.
func WriteFile(path string, e *Embedding) error {
	if IsParquet(path) {
		return WriteParquet(path, e)
	}
	return Write(path, e)
}

// ReadFile loads an embedding from an Arrow IPC file or a Parquet file,
// told apart by their leading magic bytes rather than by the name, so a
// renamed file still opens.
func ReadFile(path string) (*Embedding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("embedio: %w", err)
	}
	var head [4]byte
	_, err = io.ReadFull(f, head[:])
	f.Close()
	if err == nil && string(head[:]) == "PAR1" {
		return ReadParquet(path)
	}
	return Read(path)
}

// WriteParquet stores e at path as a Parquet file with the same columns and
// schema metadata as the Arrow file (the metadata becomes Parquet key-value
// metadata, and the Arrow schema is stored too so that Arrow-based readers
// get the dictionary and fixed-size list types back). One row group per
// BatchRows rows, zstd-compressed; rows stay in dataset order. The write is
// atomic like Write's.
func WriteParquet(path string, e *Embedding) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return EncodeParquet(w, e) }); err != nil {
		return fmt.Errorf("embedio: write %s: %w", path, err)
	}
	return nil
}

// EncodeParquet writes e to w as Parquet. It does not make the write
// atomic; WriteParquet does.
func EncodeParquet(w io.Writer, e *Embedding) (err error) {
	if err := e.Validate(); err != nil {
		return err
	}
	schema := Schema(e)
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(BatchRows),
		parquet.WithCreatedBy("tsimcne-go embedio"))
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("embedio: parquet writer: %w", err)
	}
	if err := writeRows(schema, e, fw.Write, "parquet rows"); err != nil {
		return err
	}
	if e.Labels != nil {
		names, _ := json.Marshal(classNames(e))
		if err := fw.AppendKeyValueMetadata(metaClasses, string(names)); err != nil {
			return fmt.Errorf("embedio: parquet metadata: %w", err)
		}
	}
	// Close writes the footer; without it the file does not parse, which
	// is what a failed write should leave behind (atomicfile drops it).
	if err := fw.Close(); err != nil {
		return fmt.Errorf("embedio: parquet footer: %w", err)
	}
	return nil
}

// ReadParquet loads a Parquet file written by WriteParquet (or any Parquet
// file with the same columns) into memory.
func ReadParquet(path string) (e *Embedding, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("embedio: %w", err)
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("embedio: read %s: damaged Parquet file: %v", path, r)
		}
	}()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: BatchRows}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, BatchRows)
	defer tr.Release()
	src := &recordList{schema: tbl.Schema()}
	defer src.release()
	for tr.Next() {
		rec := tr.RecordBatch()
		rec.Retain()
		src.recs = append(src.recs, rec)
	}
	if err := tr.Err(); err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	e, err = decode(src)
	if err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	// Checked before the class names are looked up: classesFromRows grows
	// its list to the largest label, which Validate bounds.
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w (reading %s)", err, path)
	}
	// The Parquet key-value metadata is the embedding's metadata, less
	// the keys that carry the Arrow schema and the class names.
	e.Meta = map[string]string{}
	kv := pr.MetaData().KeyValueMetadata()
	for i, k := range kv.Keys() {
		if k != "ARROW:schema" && k != metaClasses {
			e.Meta[k] = kv.Values()[i]
		}
	}
	// A Parquet dictionary holds only the names that occur, in an order
	// the reader chooses, so the names in label order come from the
	// metadata, or else from the rows themselves (a foreign file).
	if e.Labels != nil {
		if v := kv.FindValue(metaClasses); v != nil {
			var names []string
			if err := json.Unmarshal([]byte(*v), &names); err != nil {
				return nil, fmt.Errorf("embedio: read %s: metadata %q: %w", path, metaClasses, err)
			}
			e.Classes = names
		} else if e.Classes, err = classesFromRows(src, e.Labels); err != nil {
			return nil, fmt.Errorf("embedio: read %s: %w", path, err)
		}
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w (reading %s)", err, path)
	}
	return e, nil
}

// metaClasses is the Parquet key-value metadata key that lists the class
// names in label order, as JSON.
const metaClasses = "classes"

// classNames is what the class dictionary holds: Classes, or the decimal
// text of 0..max label.
func classNames(e *Embedding) []string {
	d := classDictionary(e).(*array.String)
	defer d.Release()
	names := make([]string, d.Len())
	for i := range names {
		names[i] = d.Value(i)
	}
	return names
}

// classesFromRows names each label by the class string of its rows.
func classesFromRows(src *recordList, labels []int32) ([]string, error) {
	iClass := src.schema.FieldIndices(ColClass)
	if len(iClass) == 0 {
		return nil, nil
	}
	var names []string
	row := 0
	for _, rec := range src.recs {
		col := rec.Column(iClass[0])
		for j := 0; j < col.Len(); j, row = j+1, row+1 {
			l := labels[row]
			if l < 0 || col.IsNull(j) {
				continue
			}
			var name string
			switch c := col.(type) {
			case *array.Dictionary:
				name = c.Dictionary().(*array.String).Value(c.GetValueIndex(j))
			case *array.String:
				name = c.Value(j)
			default:
				return nil, fmt.Errorf("column %q is %s, want strings", ColClass, col.DataType())
			}
			for int(l) >= len(names) {
				names = append(names, strconv.Itoa(len(names)))
			}
			names[l] = name
		}
	}
	return names, nil
}

// recordList is a batchSource over record batches already in memory.
type recordList struct {
	schema *arrow.Schema
	recs   []arrow.RecordBatch
}

func (l *recordList) Schema() *arrow.Schema { return l.schema }
func (l *recordList) NumRecords() int       { return len(l.recs) }
func (l *recordList) RecordBatch(i int) (arrow.RecordBatch, error) {
	return l.recs[i], nil
}
func (l *recordList) release() {
	for _, r := range l.recs {
		r.Release()
	}
}

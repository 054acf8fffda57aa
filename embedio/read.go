package embedio

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Read loads a file written by Write (or any Arrow IPC file with the same
// columns) into memory. It is meant for tests and tools: it holds the whole
// embedding at once. Truncated files and files without the Arrow magic give
// an error; Read does not defend against deliberate damage inside the
// metadata, which arrow-go trusts (Write's atomic commit is what keeps torn
// files from existing).
func Read(path string) (e *Embedding, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("embedio: %w", err)
	}
	defer f.Close()
	// arrow-go checks the trailing magic only; a file that does not start
	// with it was not written whole by an Arrow file writer.
	var head [8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil || string(head[:6]) != "ARROW1" {
		return nil, fmt.Errorf("embedio: read %s: not an Arrow IPC file (no leading ARROW1 magic)", path)
	}
	// arrow-go validates block offsets, but a damaged flatbuffer can still
	// make it index out of range; a damaged file is an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("embedio: read %s: damaged Arrow file: %v", path, r)
		}
	}()
	fr, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	defer fr.Close()
	e, err = decode(fr)
	if err != nil {
		return nil, fmt.Errorf("embedio: read %s: %w", path, err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w (reading %s)", err, path)
	}
	return e, nil
}

// batchSource is what decode reads: an Arrow IPC file reader, or the
// record batches of a Parquet file.
type batchSource interface {
	Schema() *arrow.Schema
	NumRecords() int
	RecordBatch(i int) (arrow.RecordBatch, error)
}

func decode(fr batchSource) (*Embedding, error) {
	s := fr.Schema()
	e := &Embedding{Meta: map[string]string{}}
	md := s.Metadata()
	for i, k := range md.Keys() {
		e.Meta[k] = md.Values()[i]
	}
	col := func(name string) (int, arrow.DataType) {
		ix := s.FieldIndices(name)
		if len(ix) == 0 {
			return -1, nil
		}
		return ix[0], s.Field(ix[0]).Type
	}
	iIndex, tIndex := col(ColIndex)
	if iIndex < 0 || tIndex.ID() != arrow.INT64 {
		return nil, fmt.Errorf("no int64 %q column", ColIndex)
	}
	iLabel, tLabel := col(ColLabel)
	if iLabel >= 0 && tLabel.ID() != arrow.INT32 {
		return nil, fmt.Errorf("column %q is %s, want int32", ColLabel, tLabel)
	}
	iClass, tClass := col(ColClass)
	if iClass >= 0 && !arrow.TypeEqual(tClass, classType) {
		return nil, fmt.Errorf("column %q is %s, want %s", ColClass, tClass, classType)
	}
	iX, tX := col(ColX)
	iY, tY := col(ColY)
	iEmb, tEmb := col(ColEmbedding)
	switch {
	case iX >= 0 && iY >= 0:
		if tX.ID() != arrow.FLOAT32 || tY.ID() != arrow.FLOAT32 {
			return nil, fmt.Errorf("columns x, y are %s, %s, want float32", tX, tY)
		}
		e.Dim = 2
	case iEmb >= 0:
		d, err := f32ListDim(tEmb)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", ColEmbedding, err)
		}
		e.Dim = d
	default:
		return nil, errors.New("neither x, y nor embedding columns")
	}
	iFeat, tFeat := col(ColFeatures)
	if iFeat >= 0 {
		d, err := f32ListDim(tFeat)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", ColFeatures, err)
		}
		e.FeatureDim = d
		e.Features = []float32{}
	}
	if iLabel >= 0 {
		e.Labels = []int32{}
	}
	e.Index = []int64{}
	e.Coords = []float32{}

	for b := 0; b < fr.NumRecords(); b++ {
		rec, err := fr.RecordBatch(b)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", b, err)
		}
		e.Index = append(e.Index, rec.Column(iIndex).(*array.Int64).Int64Values()...)
		if iLabel >= 0 {
			e.Labels = append(e.Labels, rec.Column(iLabel).(*array.Int32).Int32Values()...)
		}
		if iClass >= 0 && e.Classes == nil {
			d := rec.Column(iClass).(*array.Dictionary).Dictionary().(*array.String)
			e.Classes = make([]string, d.Len())
			for i := range e.Classes {
				e.Classes[i] = d.Value(i)
			}
		}
		if e.Dim == 2 && iEmb < 0 {
			x := rec.Column(iX).(*array.Float32).Float32Values()
			y := rec.Column(iY).(*array.Float32).Float32Values()
			for i := range x {
				e.Coords = append(e.Coords, x[i], y[i])
			}
		} else {
			e.Coords = append(e.Coords, listValues(rec.Column(iEmb), e.Dim)...)
		}
		if iFeat >= 0 {
			e.Features = append(e.Features, listValues(rec.Column(iFeat), e.FeatureDim)...)
		}
		// Write sets the same Data for every batch of a dictionary, but
		// a foreign file could replace it; catching that would need the
		// IPC reader's help, and the file format forbids it anyway.
	}
	return e, nil
}

func f32ListDim(t arrow.DataType) (int, error) {
	l, ok := t.(*arrow.FixedSizeListType)
	if !ok || l.Elem().ID() != arrow.FLOAT32 {
		return 0, fmt.Errorf("type %s, want fixed_size_list<float32>", t)
	}
	return int(l.Len()), nil
}

// listValues returns the float32 values of a fixed-size list array,
// honouring the array's offset into its child.
func listValues(a arrow.Array, dim int) []float32 {
	l := a.(*array.FixedSizeList)
	v := l.ListValues().(*array.Float32).Float32Values()
	off := l.Data().Offset()
	return v[off*dim : (off+l.Len())*dim]
}

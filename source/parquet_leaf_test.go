package source

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// fuzzSeed reads the one []byte of a `go test fuzz v1` corpus file.
func fuzzSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a one-[]byte fuzz corpus file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// hfParquet writes the Hugging Face seed record (image struct {bytes,
// path}, n rows) as Parquet, in row groups of rows rows, plain-encoded so
// that the image bytes lie in the data pages.
func hfParquet(t *testing.T, n int, rows int64) []byte {
	t.Helper()
	recs := tableSeedRecords(n)
	defer recs[1].Release()
	rec := recs[0]
	defer rec.Release()
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rows), parquet.WithDictionaryDefault(false))
	if err := pqarrow.WriteTable(array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec}), &buf, rows, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageChunk returns where row group 0's image.bytes column chunk lies in
// the Parquet file data.
func imageChunk(t *testing.T, data []byte) (off, n int64) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	md := pf.MetaData()
	leaf := md.Schema.ColumnIndexByName("image.bytes")
	if leaf < 0 {
		t.Fatal("no image.bytes leaf")
	}
	cc, err := md.RowGroup(0).ColumnChunk(leaf)
	if err != nil {
		t.Fatal(err)
	}
	off = cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < off {
		off = cc.DictionaryPageOffset()
	}
	return off, cc.TotalCompressedSize()
}

// patchChunkSize rewrites, in the footer of the Parquet file data, the
// total_compressed_size of row group 0's image.bytes chunk from n to m (a
// compact-thrift field 7 right after total_uncompressed_size, field 6, both
// n in an uncompressed file) and checks the result.
func patchChunkSize(t *testing.T, data []byte, n, m int64) []byte {
	t.Helper()
	zz := func(v int64) []byte { return binary.AppendUvarint(nil, uint64(v<<1^v>>63)) }
	flen := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	fstart := len(data) - 8 - flen
	footer := data[fstart : len(data)-8]
	field := func(v int64) []byte { return append([]byte{0x16}, zz(v)...) } // delta 1, i64
	pat := append(field(n), field(n)...)
	at := bytes.Index(footer, pat)
	if at < 0 {
		t.Fatal("total_compressed_size not found in the footer")
	}
	var nf []byte
	nf = append(nf, footer[:at]...)
	nf = append(nf, field(n)...)
	nf = append(nf, field(m)...)
	nf = append(nf, footer[at+len(pat):]...)
	out := append(bytes.Clone(data[:fstart]), nf...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(nf)))
	out = append(out, "PAR1"...)
	if _, got := imageChunk(t, out); got != m {
		t.Fatalf("patched chunk size %d, want %d", got, m)
	}
	return out
}

// openAndLoad opens data as a Parquet table source and loads every row; it
// returns the first error, nil if the file opened and every row loaded.
func openAndLoad(data []byte) error {
	ds, err := newTableDataset(KindParquet, "f.parquet", []string{"f.parquet"}, Options{}, inMemory(data))
	if err != nil {
		return err
	}
	defer ds.Close()
	var s Sample
	for i := range ds.Len() {
		if err := ds.Load(i, &s); err != nil {
			return err
		}
	}
	return nil
}

// TestParquetImageLeafHostile opens damaged Parquet files whose image
// struct column cannot be read: the chunk bounds checked before the chunk
// is opened and the image bytes read in the calling goroutine (imageLeaf)
// turn each into an error. Through pqarrow's struct reader, without a
// bounds check, the first of them (the FuzzParquet crasher) killed the
// test binary: the panic came from an errgroup goroutine, out of
// safeColumn's reach.
func TestParquetImageLeafHostile(t *testing.T) {
	good := hfParquet(t, 6, 3)
	if err := openAndLoad(good); err != nil {
		t.Fatalf("the undamaged file: %v", err)
	}
	off, n := imageChunk(t, good)
	if n < 64 {
		t.Fatalf("image chunk of %d bytes", n)
	}

	// The column chunk's pages overwritten with garbage: page headers and
	// levels that mean nothing.
	garbage := bytes.Clone(good)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := off; i < off+n; i++ {
		garbage[i] = byte(rng.Uint32())
	}

	// Plain-encoded values whose first length prefix claims 2 GiB: the
	// page header and levels are intact, the value runs far past its page.
	longValue := bytes.Clone(good)
	first := binary.LittleEndian.AppendUint32(nil, uint32(len(tinyPNGs(1)[0])))
	first = append(first, tinyPNGs(1)[0]...)
	at := bytes.Index(longValue[off:off+n], first)
	if at < 0 {
		t.Fatal("no plain-encoded PNG in the image chunk")
	}
	binary.LittleEndian.PutUint32(longValue[off+int64(at):], 0x7fffffff)

	// The footer's total_compressed_size of the chunk made negative (like
	// the FuzzParquet seed, but on the image bytes leaf itself) and made
	// far larger than the file.
	negative := patchChunkSize(t, good, n, -n)
	huge := patchChunkSize(t, good, n, 1<<40)

	for _, c := range []struct {
		name string
		data []byte
	}{
		{"fuzz seed 730388aa1225d8ac (negative chunk length)", fuzzSeed(t, filepath.Join("testdata", "fuzz", "FuzzParquet", "730388aa1225d8ac"))},
		{"garbage pages", garbage},
		{"value length past its page", longValue},
		{"negative chunk length", negative},
		{"chunk length past the end of the file", huge},
	} {
		err := openAndLoad(c.data)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
}

// TestParquetImageLeafNulls: a null image struct and a null bytes field in
// a present struct both read as a null image (Load names the row), the
// other rows load, across row groups.
func TestParquetImageLeafNulls(t *testing.T) {
	imgs := tinyPNGs(5)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "image", Type: hfImageType, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	sb := rb.Field(0).(*array.StructBuilder)
	for k, b := range imgs {
		switch k {
		case 1: // null struct
			sb.AppendNull()
		case 3: // present struct, null bytes
			sb.Append(true)
			sb.FieldBuilder(0).AppendNull()
			sb.FieldBuilder(1).(*array.StringBuilder).Append("x.png")
		default:
			sb.Append(true)
			sb.FieldBuilder(0).(*array.BinaryBuilder).Append(b)
			sb.FieldBuilder(1).(*array.StringBuilder).Append("x.png")
		}
		rb.Field(1).(*array.Int64Builder).Append(int64(k % 2))
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	if err := pqarrow.WriteTable(array.NewTableFromRecords(sc, []arrow.RecordBatch{rec}), &buf, 2,
		parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(2)), pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
	ds, err := newTableDataset(KindParquet, "n.parquet", []string{"n.parquet"}, Options{KeepEncoded: true}, inMemory(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if ds.Len() != 5 {
		t.Fatalf("%d rows, want 5", ds.Len())
	}
	var s Sample
	for i := range 5 {
		err := ds.Load(i, &s)
		if i == 1 || i == 3 {
			if err == nil || !strings.Contains(err.Error(), "n.parquet row "+strconv.Itoa(i)+": the image is null") {
				t.Errorf("row %d: %v, want a null image error", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if !bytes.Equal(s.Encoded, imgs[i]) || s.Label != int32(i%2) {
			t.Errorf("row %d: %d encoded bytes (want %d), label %d", i, len(s.Encoded), len(imgs[i]), s.Label)
		}
	}
}

package source

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// tinyPNGs returns n small PNGs of different sizes and colours, the images
// of the table and WebDataset seeds.
func tinyPNGs(n int) [][]byte {
	var out [][]byte
	for k := range n {
		m := image.NewRGBA(image.Rect(0, 0, 2+k%3, 3))
		for i := range m.Pix {
			m.Pix[i] = byte(37*k + 11*i)
		}
		m.Set(0, 0, color.RGBA{255, 0, 0, 255})
		var buf bytes.Buffer
		png.Encode(&buf, m)
		out = append(out, buf.Bytes())
	}
	return out
}

// hfImageType is Hugging Face's Image feature as Arrow stores it.
var hfImageType = arrow.StructOf(
	arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
	arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true})

// tableSeedRecords returns the two table layouts the fuzzers start from:
// the Hugging Face one (image struct {bytes, path}, ClassLabel names in the
// schema's "huggingface" metadata) and a plain binary image column with
// string labels. Each is one record of n rows.
func tableSeedRecords(n int) []arrow.RecordBatch {
	mem := memory.DefaultAllocator
	imgs := tinyPNGs(n)

	hfMeta, _ := json.Marshal(map[string]any{"info": map[string]any{"features": map[string]any{
		"image": map[string]any{"_type": "Image"},
		"label": map[string]any{"_type": "ClassLabel", "names": []string{"cat", "dog", "emu"}},
	}}})
	hfSchema := arrow.NewSchema([]arrow.Field{
		{Name: "image", Type: hfImageType, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64},
	}, func() *arrow.Metadata {
		m := arrow.NewMetadata([]string{hfMetaKey}, []string{string(hfMeta)})
		return &m
	}())
	hb := array.NewRecordBuilder(mem, hfSchema)
	defer hb.Release()
	sb := hb.Field(0).(*array.StructBuilder)
	for k, b := range imgs {
		sb.Append(true)
		sb.FieldBuilder(0).(*array.BinaryBuilder).Append(b)
		sb.FieldBuilder(1).(*array.StringBuilder).Append("img" + string(rune('a'+k)) + ".png")
		hb.Field(1).(*array.Int64Builder).Append(int64(k % 3))
	}

	plainSchema := arrow.NewSchema([]arrow.Field{
		{Name: "img", Type: arrow.BinaryTypes.Binary},
		{Name: "class", Type: arrow.BinaryTypes.String},
	}, nil)
	pb := array.NewRecordBuilder(mem, plainSchema)
	defer pb.Release()
	for k, b := range imgs {
		pb.Field(0).(*array.BinaryBuilder).Append(b)
		pb.Field(1).(*array.StringBuilder).Append([]string{"x", "y"}[k%2])
	}
	return []arrow.RecordBatch{hb.NewRecordBatch(), pb.NewRecordBatch()}
}

// inMemory opens data as the one file of a source, whatever its name:
// the readers openTable and openWebDataset use on an *os.File run over the
// bytes themselves (a temporary file per execution made the fuzzers spend
// most of their time in mkdir, write and unlink).
func inMemory(data []byte) func(string) (fileReader, error) {
	return func(string) (fileReader, error) { return bytes.NewReader(data), nil }
}

// fuzzTable opens data as one file named name of a table source of kind,
// then loads samples: an error or a sample, never a panic.
func fuzzTable(t *testing.T, kind, name string, data []byte) {
	ds, err := newTableDataset(kind, name, []string{name}, Options{}, inMemory(data))
	if err != nil {
		return
	}
	defer ds.Close()
	if len(ds.Classes()) == 0 {
		t.Fatalf("a dataset of %d rows with no classes", ds.Len())
	}
	loadSome(t, ds)
}

// FuzzParquet feeds arbitrary bytes as a .parquet file to the table source.
func FuzzParquet(f *testing.F) {
	for _, rec := range tableSeedRecords(3) {
		for _, rows := range []int64{3, 2} { // one row group, then two
			var buf bytes.Buffer
			props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rows))
			if err := pqarrow.WriteTable(array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec}), &buf, rows, props,
				pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes())
			if rows == 3 {
				f.Add(buf.Bytes()[:buf.Len()/2])
			}
		}
		rec.Release()
	}
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzTable(t, KindParquet, "f.parquet", data)
	})
}

// FuzzArrowIPC feeds arbitrary bytes as an Arrow IPC (.arrow) file to the
// table source.
func FuzzArrowIPC(f *testing.F) {
	for _, rec := range tableSeedRecords(3) {
		var buf bytes.Buffer
		w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(rec.Schema()))
		if err != nil {
			f.Fatal(err)
		}
		// Two record batches: rows 0-1 and row 2.
		for _, r := range []arrow.RecordBatch{rec.NewSlice(0, 2), rec.NewSlice(2, 3)} {
			if err := w.Write(r); err != nil {
				f.Fatal(err)
			}
			r.Release()
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()-16])
		rec.Release()
	}
	f.Add([]byte("ARROW1\x00\x00ARROW1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzTable(t, KindArrow, "f.arrow", data)
	})
}

// wdsSeed returns a tar shard of key.png + key.cls pairs; cls gives the
// labels' text. With jpg the images are JPEGs (libjpeg-turbo's path in
// the converter when it is installed).
func wdsSeed(cls []string, jpg bool) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for k, img := range tinyPNGs(len(cls)) {
		key := "s/" + string(rune('a'+k))
		ext := ".png"
		if jpg {
			m, _ := png.Decode(bytes.NewReader(img))
			var b bytes.Buffer
			jpeg.Encode(&b, m, nil)
			img, ext = b.Bytes(), ".jpg"
		}
		for _, m := range []struct {
			name string
			data []byte
		}{{key + ext, img}, {key + ".cls", []byte(cls[k])}} {
			tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
			tw.Write(m.data)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzWebDataset feeds arbitrary bytes as a WebDataset tar shard.
func FuzzWebDataset(f *testing.F) {
	f.Add(wdsSeed([]string{"0", "2", "1"}, false))
	f.Add(wdsSeed([]string{"cat", "dog\n"}, false))
	f.Add(wdsSeed([]string{"cat", "dog"}, true))
	b := wdsSeed([]string{"1", "1"}, false)
	f.Add(b[:len(b)-1024-100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := newWebDataset("shard.tar", []string{"shard.tar"}, Options{}, inMemory(data))
		if err != nil {
			return
		}
		defer ds.Close()
		if len(ds.Classes()) == 0 {
			t.Fatalf("%d samples with no classes", ds.Len())
		}
		loadSome(t, ds)
	})
}

// TestTableSeedsOpen checks that the fuzzers' seed files open and load
// (so the fuzzers start from valid files, and the length guards of
// tableguard.go accept what arrow-go writes). The crashers the fuzzers
// found are seeds in testdata/fuzz, run by go test.
func TestTableSeedsOpen(t *testing.T) {
	dir := t.TempDir()
	for k, rec := range tableSeedRecords(3) {
		var pq, ar bytes.Buffer
		if err := pqarrow.WriteTable(array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec}), &pq, 2,
			parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(2)), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err != nil {
			t.Fatal(err)
		}
		w, err := ipc.NewFileWriter(&ar, ipc.WithSchema(rec.Schema()))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		w.Close()
		rec.Release()
		for _, c := range []struct {
			kind, ext string
			data      []byte
		}{{KindParquet, ".parquet", pq.Bytes()}, {KindArrow, ".arrow", ar.Bytes()}} {
			p := filepath.Join(dir, string(rune('a'+k))+c.ext)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			ds, err := openTable(c.kind, []string{p}, Options{})
			if err != nil {
				t.Fatalf("seed %d %s: %v", k, c.kind, err)
			}
			var s Sample
			for i := range ds.Len() {
				if err := ds.Load(i, &s); err != nil {
					t.Fatalf("seed %d %s row %d: %v", k, c.kind, i, err)
				}
			}
			if ds.Len() != 3 {
				t.Fatalf("seed %d %s: %d rows", k, c.kind, ds.Len())
			}
			ds.Close()
		}
	}
}

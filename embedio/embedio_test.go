package embedio

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

var digits = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// sample is an embedding of n rows with labels cycling through 10 classes.
func sample(n, dim, featDim int, seed uint64) *Embedding {
	r := rand.New(rand.NewPCG(seed, 1))
	e := &Embedding{
		Labels:  make([]int32, n),
		Classes: digits,
		Coords:  make([]float32, n*dim),
		Dim:     dim,
		Meta: map[string]string{
			MetaModel:       "resnet18 + mlp",
			MetaStageEpochs: "1000,50,450",
			MetaSeed:        "42",
			MetaSource:      "mnist.tscn",
			"custom":        "héllo, wörld",
		},
	}
	for i := range e.Labels {
		e.Labels[i] = int32(r.IntN(10))
	}
	for i := range e.Coords {
		e.Coords[i] = float32(r.NormFloat64() * 50)
	}
	if featDim > 0 {
		e.FeatureDim = featDim
		e.Features = make([]float32, n*featDim)
		for i := range e.Features {
			e.Features[i] = r.Float32()
		}
	}
	return e
}

func roundTrip(t *testing.T, e *Embedding) (*Embedding, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "emb.arrow")
	if err := Write(p, e); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return got, p
}

func checkSame(t *testing.T, want, got *Embedding) {
	t.Helper()
	n := want.Len()
	if got.Len() != n || got.Dim != want.Dim {
		t.Fatalf("read %d rows of dim %d, want %d of dim %d", got.Len(), got.Dim, n, want.Dim)
	}
	for i, v := range got.Index {
		wi := int64(i)
		if want.Index != nil {
			wi = want.Index[i]
		}
		if v != wi {
			t.Fatalf("index[%d] = %d, want %d", i, v, wi)
		}
	}
	if !slices.Equal(got.Labels, want.Labels) {
		t.Fatal("labels differ")
	}
	if len(want.Classes) > 0 && !slices.Equal(got.Classes, want.Classes) {
		t.Fatalf("classes %q, want %q", got.Classes, want.Classes)
	}
	if !bitsEqual(got.Coords, want.Coords) {
		t.Fatal("coordinates differ")
	}
	if got.FeatureDim != want.FeatureDim || !bitsEqual(got.Features, want.Features) {
		t.Fatal("features differ")
	}
	for k, v := range want.Meta {
		if got.Meta[k] != v {
			t.Fatalf("meta[%q] = %q, want %q", k, got.Meta[k], v)
		}
	}
}

// bitsEqual compares float slices bit for bit, so NaN payloads count.
func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name        string
		n, dim, fd  int
		wantColumns []string
	}{
		{"2d", 1000, 2, 0, []string{"index", "label", "class", "x", "y"}},
		{"128d", 1000, 128, 0, []string{"index", "label", "class", "embedding"}},
		{"1d", 10, 1, 0, []string{"index", "label", "class", "embedding"}},
		{"2d+features", 300, 2, 512, []string{"index", "label", "class", "x", "y", "features"}},
		{"3d+features", 300, 3, 7, []string{"index", "label", "class", "embedding", "features"}},
		{"empty", 0, 2, 0, []string{"index", "label", "class", "x", "y"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := sample(c.n, c.dim, c.fd, 1)
			got, p := roundTrip(t, e)
			checkSame(t, e, got)
			s := fileSchema(t, p)
			var names []string
			for _, f := range s.Fields() {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, c.wantColumns) {
				t.Fatalf("columns %q, want %q", names, c.wantColumns)
			}
		})
	}
}

func fileSchema(t *testing.T, p string) *arrow.Schema {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatalf("not an Arrow IPC file: %v", err)
	}
	defer r.Close()
	return r.Schema()
}

func TestSchemaTypesAndMetadata(t *testing.T) {
	e := sample(10, 2, 512, 2)
	_, p := roundTrip(t, e)
	s := fileSchema(t, p)
	want := map[string]string{
		"index":    "int64",
		"label":    "int32",
		"class":    "dictionary<values=utf8, indices=int32, ordered=false>",
		"x":        "float32",
		"y":        "float32",
		"features": "fixed_size_list<item: float32>[512]",
	}
	for _, f := range s.Fields() {
		if got := f.Type.String(); got != want[f.Name] {
			t.Errorf("%s: type %s, want %s", f.Name, got, want[f.Name])
		}
	}
	md := s.Metadata()
	for k, v := range e.Meta {
		if i := md.FindKey(k); i < 0 || md.Values()[i] != v {
			t.Errorf("metadata %q missing or wrong", k)
		}
	}
	if i := md.FindKey(MetaOutDim); i < 0 || md.Values()[i] != "2" {
		t.Errorf("metadata %s missing", MetaOutDim)
	}
	if !slices.IsSorted(md.Keys()) {
		t.Errorf("metadata keys %q not sorted (the file would depend on map order)", md.Keys())
	}

	e128 := sample(10, 128, 0, 2)
	_, p = roundTrip(t, e128)
	f := fileSchema(t, p).Field(3)
	if f.Name != "embedding" || f.Type.String() != "fixed_size_list<item: float32>[128]" {
		t.Errorf("embedding column %s %s", f.Name, f.Type)
	}
}

// 70,000 rows span two record batches; the second batch must continue the
// index and share the class dictionary.
func TestSeventyThousandRows(t *testing.T) {
	e := sample(70000, 2, 0, 3)
	got, p := roundTrip(t, e)
	checkSame(t, e, got)
	f, _ := os.Open(p)
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRecords() != 2 || r.NumDictionaries() != 1 {
		t.Fatalf("%d batches, %d dictionaries; want 2 and 1", r.NumRecords(), r.NumDictionaries())
	}
}

func TestDeterministicBytes(t *testing.T) {
	e := sample(2000, 2, 16, 4)
	var a, b bytes.Buffer
	if err := Encode(&a, e); err != nil {
		t.Fatal(err)
	}
	if err := Encode(&b, e); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same embedding encoded to different bytes")
	}
}

func TestSpecialValues(t *testing.T) {
	// Explicit index, a negative ("no") label, NaN and ±Inf coordinates,
	// no class names.
	e := &Embedding{
		Index:  []int64{5, 6, 7, 8},
		Labels: []int32{0, -1, 2, 1},
		Coords: []float32{1, 2, float32(math.NaN()), 3, float32(math.Inf(1)), float32(math.Inf(-1)), -0.0, 1e-45},
		Dim:    2,
	}
	got, _ := roundTrip(t, e)
	checkSame(t, e, got)
	if !slices.Equal(got.Classes, []string{"0", "1", "2"}) {
		t.Fatalf("classes %q, want decimal names", got.Classes)
	}
	// Only "no label" labels and no names: an empty dictionary.
	e.Labels = []int32{-1, -1, -1, -1}
	got, _ = roundTrip(t, e)
	checkSame(t, e, got)
	if len(got.Classes) != 0 {
		t.Fatalf("classes %q, want none", got.Classes)
	}
	// No labels at all: no label or class column.
	e.Labels = nil
	got, p := roundTrip(t, e)
	checkSame(t, e, got)
	if s := fileSchema(t, p); s.HasField("label") || s.HasField("class") {
		t.Fatal("label/class columns without labels")
	}
}

func TestInvalid(t *testing.T) {
	good := func() *Embedding { return sample(10, 2, 4, 5) }
	cases := map[string]func(e *Embedding){
		"nil coords ok but dim 0": func(e *Embedding) { e.Dim = 0 },
		"ragged coords":           func(e *Embedding) { e.Coords = e.Coords[:19] },
		"short labels":            func(e *Embedding) { e.Labels = e.Labels[:9] },
		"short index":             func(e *Embedding) { e.Index = make([]int64, 3) },
		"label beyond classes":    func(e *Embedding) { e.Labels[4] = 10 },
		"huge unnamed label":      func(e *Embedding) { e.Classes = nil; e.Labels[2] = 1 << 30 },
		"short features":          func(e *Embedding) { e.Features = e.Features[:39] },
		"features without dim":    func(e *Embedding) { e.FeatureDim = 0 },
		"dim without features":    func(e *Embedding) { e.Features = nil },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "e.arrow")
			e := good()
			breakIt(e)
			err := Write(p, e)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "embedio") {
				t.Errorf("error %q lacks context", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("left %d files after a failed write", len(ents))
			}
		})
	}
	if err := Write(filepath.Join(t.TempDir(), "e.arrow"), nil); err == nil {
		t.Fatal("nil embedding written")
	}
}

// A failed write leaves the previous file in place, and Read rejects
// truncated files and files without the Arrow magic with an error.
func TestAtomicAndDamaged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "e.arrow")
	e := sample(500, 2, 0, 6)
	if err := Write(p, e); err != nil {
		t.Fatal(err)
	}
	bad := sample(10, 2, 0, 6)
	bad.Labels[0] = 99
	if err := Write(p, bad); err == nil {
		t.Fatal("bad write succeeded")
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, e, got)
	if err := Write(filepath.Join(dir, "no", "such", "dir.arrow"), e); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}

	whole, _ := os.ReadFile(p)
	for _, cut := range []int{0, 6, 100, len(whole) / 2, len(whole) - 1} {
		q := filepath.Join(dir, "cut.arrow")
		os.WriteFile(q, whole[:cut], 0o644)
		if _, err := Read(q); err == nil {
			t.Errorf("read a file cut to %d of %d bytes", cut, len(whole))
		}
	}
	// A damaged magic number at either end is caught. (Random damage
	// inside the flatbuffers is not: arrow-go trusts their counts and can
	// try to allocate terabytes, which no recover catches. Write's atomic
	// commit is what keeps such files from existing.)
	for _, at := range []int{0, 3, len(whole) - 1, len(whole) - 4} {
		b := slices.Clone(whole)
		b[at] ^= 0x20
		q := filepath.Join(dir, "flip.arrow")
		os.WriteFile(q, b, 0o644)
		if _, err := Read(q); err == nil {
			t.Errorf("read a file with byte %d of %d flipped", at, len(whole))
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.arrow")); err == nil {
		t.Fatal("read a missing file")
	}
}

// readarrowSummary is what scripts/arrow/readarrow.mjs prints.
type readarrowSummary struct {
	Format  string
	Rows    int
	Batches int
	Columns []struct {
		Name, Type string
		Nullable   bool
	}
	Metadata          map[string]string
	Classes           []string
	IndexIsRange      bool
	ClassMatchesLabel bool
	First, Last       map[string]any
	All               []map[string]any
}

// TestNodeApacheArrow reads files with apache-arrow for JavaScript, an
// independent implementation. It needs node and `npm ci` in scripts/arrow;
// CI provides both, elsewhere the test is skipped with the reason.
func TestNodeApacheArrow(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "scripts", "arrow", "readarrow.mjs")
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "apache-arrow")); err != nil {
		t.Skip("run `cd scripts/arrow && npm ci` to enable")
	}
	run := func(p string, all bool) readarrowSummary {
		t.Helper()
		args := []string{script, p}
		if all {
			args = append(args, "--all")
		}
		cmd := exec.Command(node, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("readarrow: %v: %s", err, stderr.String())
		}
		var s readarrowSummary
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("readarrow output: %v", err)
		}
		return s
	}

	t.Run("70000 rows 2d", func(t *testing.T) {
		e := sample(70000, 2, 0, 8)
		_, p := roundTrip(t, e)
		s := run(p, false)
		if s.Format != "file" || s.Rows != 70000 || s.Batches != 2 || !s.IndexIsRange || !s.ClassMatchesLabel {
			t.Fatalf("summary %+v", s)
		}
		var types []string
		for _, c := range s.Columns {
			types = append(types, c.Name+":"+c.Type)
		}
		want := []string{"index:Int64", "label:Int32", "class:Dictionary<Int32, Utf8>", "x:Float32", "y:Float32"}
		if !slices.Equal(types, want) {
			t.Fatalf("columns %q, want %q", types, want)
		}
		if !slices.Equal(s.Classes, digits) {
			t.Fatalf("classes %q", s.Classes)
		}
		for k, v := range e.Meta {
			if s.Metadata[k] != v {
				t.Fatalf("metadata %q = %q, want %q", k, s.Metadata[k], v)
			}
		}
		checkRow(t, e, 0, s.First)
		checkRow(t, e, 69999, s.Last)
	})
	t.Run("every row 128d features nulls", func(t *testing.T) {
		e := sample(300, 128, 512, 9)
		e.Labels[7] = -1
		got, p := roundTrip(t, e)
		checkSame(t, e, got)
		s := run(p, true)
		if s.Rows != 300 || !s.IndexIsRange || !s.ClassMatchesLabel || len(s.All) != 300 {
			t.Fatalf("summary rows %d index %v classes %v", s.Rows, s.IndexIsRange, s.ClassMatchesLabel)
		}
		if s.Columns[3].Type != "FixedSizeList[128]<Float32>" || s.Columns[4].Type != "FixedSizeList[512]<Float32>" {
			t.Fatalf("list types %+v", s.Columns)
		}
		for i, r := range s.All {
			checkRow(t, e, i, r)
		}
		if s.All[7]["class"] != nil {
			t.Fatalf("row 7 class %v, want null", s.All[7]["class"])
		}
	})
}

// checkRow compares one row as JavaScript printed it with the embedding.
// float32 → JS double → JSON → float64 → float32 is exact, so the
// coordinates compare bit for bit.
func checkRow(t *testing.T, e *Embedding, i int, r map[string]any) {
	t.Helper()
	num := func(v any) float32 { f, _ := v.(float64); return float32(f) }
	if int(r["index"].(float64)) != i || int32(r["label"].(float64)) != e.Labels[i] {
		t.Fatalf("row %d: %v", i, r)
	}
	if l := e.Labels[i]; l >= 0 && r["class"] != e.Classes[l] {
		t.Fatalf("row %d: class %v, want %s", i, r["class"], e.Classes[l])
	}
	var coords []float32
	if e.Dim == 2 {
		coords = []float32{num(r["x"]), num(r["y"])}
	} else {
		for _, v := range r["embedding"].([]any) {
			coords = append(coords, num(v))
		}
	}
	if !reflect.DeepEqual(coords, e.Coords[i*e.Dim:(i+1)*e.Dim]) {
		t.Fatalf("row %d: coordinates %v, want %v", i, coords, e.Coords[i*e.Dim:(i+1)*e.Dim])
	}
	if e.Features != nil {
		var f []float32
		for _, v := range r["features"].([]any) {
			f = append(f, num(v))
		}
		if !reflect.DeepEqual(f, e.Features[i*e.FeatureDim:(i+1)*e.FeatureDim]) {
			t.Fatalf("row %d: features differ", i)
		}
	}
}

func BenchmarkWrite70000(b *testing.B) {
	e := sample(70000, 2, 0, 10)
	p := filepath.Join(b.TempDir(), "e.arrow")
	for b.Loop() {
		if err := Write(p, e); err != nil {
			b.Fatal(err)
		}
	}
}

// failAfter fails every write once n bytes have gone through.
type failAfter struct {
	n   int
	buf bytes.Buffer
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.buf.Len()+len(p) > f.n {
		return 0, os.ErrClosed
	}
	return f.buf.Write(p)
}

// An encode that fails part way leaves no footer behind, so the bytes that
// did get out never read as a complete (shorter) file.
func TestEncodeFailureNoFooter(t *testing.T) {
	e := sample(70000, 2, 0, 11)
	w := &failAfter{n: 300_000}
	if err := Encode(w, e); err == nil {
		t.Fatal("no error from a failing writer")
	}
	b := w.buf.Bytes()
	if len(b) >= 6 && string(b[len(b)-6:]) == "ARROW1" {
		t.Fatal("partial output ends with the Arrow footer magic")
	}
}

package embedio

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

func TestParquetRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name       string
		n, dim, fd int
	}{
		{"2d", 1000, 2, 0},
		{"70000 rows", 70000, 2, 0},
		{"128d", 500, 128, 0},
		{"2d+features", 300, 2, 64},
		{"empty", 0, 2, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := sample(c.n, c.dim, c.fd, 3)
			if c.n > 10 {
				e.Labels[5] = -1 // a null class survives too
			}
			p := filepath.Join(t.TempDir(), "emb.parquet")
			if err := WriteFile(p, e); err != nil {
				t.Fatal(err)
			}
			head, _ := os.ReadFile(p)
			if len(head) < 4 || string(head[:4]) != "PAR1" {
				t.Fatalf("%s is not Parquet (starts %q)", p, head[:min(4, len(head))])
			}
			got, err := ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, e, got)
			if got.Meta[MetaFormat] != formatName {
				t.Fatalf("format metadata %q", got.Meta[MetaFormat])
			}
		})
	}
}

// ReadFile goes by content, not name: an Arrow file called .parquet and a
// Parquet file called .arrow both open.
func TestReadFileSniffs(t *testing.T) {
	e := sample(50, 2, 0, 4)
	d := t.TempDir()
	a, p := filepath.Join(d, "a.parquet"), filepath.Join(d, "p.arrow")
	if err := Write(a, e); err != nil {
		t.Fatal(err)
	}
	if err := WriteParquet(p, e); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{a, p} {
		got, err := ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, e, got)
	}
	if err := os.WriteFile(a, []byte("PAR1 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(a); err == nil {
		t.Fatal("damaged Parquet file read without error")
	}
}

// TestDuckDBParquet has DuckDB (an independent Parquet reader, from npm)
// read the Parquet output and compares every row with the Arrow file's.
func TestDuckDBParquet(t *testing.T) {
	node, err := exec.LookPath("node")
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "scripts", "arrow")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api"))
	if err != nil || modErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: node (%v) and scripts/arrow/node_modules/@duckdb/node-api (%v) are required (make arrow-deps)", err, modErr)
		}
		t.Skip("needs node and `make arrow-deps` (@duckdb/node-api)")
	}
	e := sample(70000, 2, 0, 11)
	e.Labels[3] = -1
	d := t.TempDir()
	pq, ar := filepath.Join(d, "emb.parquet"), filepath.Join(d, "emb.arrow")
	if err := WriteFile(pq, e); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(ar, e); err != nil {
		t.Fatal(err)
	}
	md := duckdbCompare(t, node, dir, pq, ar, 70000)
	for k, v := range e.Meta {
		if md[k] != v {
			t.Fatalf("Parquet key-value metadata %q = %q, want %q", k, md[k], v)
		}
	}
}

// duckdbCompare has DuckDB read the Parquet file pq and checks that it sees
// the rows of the Arrow file ar, in order, with the same values.
func duckdbCompare(t *testing.T, node, dir, pq, ar string, n int) map[string]string {
	t.Helper()
	cmd := exec.Command(node, filepath.Join(dir, "duckdb.mjs"), pq)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb.mjs: %v: %s", err, stderr.String())
	}
	var s struct {
		Rows     int               `json:"rows"`
		Columns  []string          `json:"columns"`
		Types    []string          `json:"types"`
		Metadata map[string]string `json:"metadata"`
		Index    []int64           `json:"index"`
		Label    []int32           `json:"label"`
		Class    []*string         `json:"class"`
		X, Y     []float32
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("duckdb.mjs output: %v", err)
	}
	if s.Rows != n || !slices.Equal(s.Columns, []string{"index", "label", "class", "x", "y"}) {
		t.Fatalf("DuckDB sees %d rows, columns %q %q", s.Rows, s.Columns, s.Types)
	}
	a, err := ReadFile(ar)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if s.Index[i] != a.Index[i] || s.Label[i] != a.Labels[i] || s.X[i] != a.Coords[2*i] || s.Y[i] != a.Coords[2*i+1] {
			t.Fatalf("row %d: DuckDB %d %d %v %v, Arrow file %d %d %v %v", i, s.Index[i], s.Label[i], s.X[i], s.Y[i],
				a.Index[i], a.Labels[i], a.Coords[2*i], a.Coords[2*i+1])
		}
		l := a.Labels[i]
		switch {
		case l < 0 && s.Class[i] != nil:
			t.Fatalf("row %d: class %q, want null", i, *s.Class[i])
		case l >= 0 && (s.Class[i] == nil || *s.Class[i] != a.Classes[l]):
			t.Fatalf("row %d: class %v, want %s", i, s.Class[i], a.Classes[l])
		}
	}
	return s.Metadata
}

// TestDuckDBDemo checks the demo's Parquet file (embed -o
// demo/mnist.parquet) against its Arrow file when TSV_DEMO names the demo
// folder.
func TestDuckDBDemo(t *testing.T) {
	demo := os.Getenv("TSV_DEMO")
	if demo == "" {
		t.Skip("set TSV_DEMO to the folder with mnist.parquet and mnist.arrow")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "scripts", "arrow")
	duckdbCompare(t, node, dir, filepath.Join(demo, "mnist.parquet"), filepath.Join(demo, "mnist.arrow"), 70000)
}

package source

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/internal/photos"
)

// requireTool skips without an external writer, except on CI (CI=true),
// whose .ci/run and `make test` install them: there a missing tool fails.
func requireTool(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing on CI", what)
	}
	t.Skipf("%s is missing", what)
}

// repoRoot is the repository root (the package's parent directory).
func repoRoot(t *testing.T) string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(f))
}

// photoFolder cuts n JPEG crops of real photographs into dir/<class>/.
func photoFolder(t *testing.T, dir string, n int) {
	t.Helper()
	if _, err := photos.Cut(dir, photos.Options{N: n, MinSide: 60, MaxSide: 120, Seed: 11}); err != nil {
		requireTool(t, photos.Package+" ("+err.Error()+")", false)
	}
}

// nodeWriter runs scripts/ingest/write.mjs (DuckDB or apache-arrow).
func nodeWriter(t *testing.T, mode, root, out string) {
	t.Helper()
	_, err := exec.LookPath("node")
	requireTool(t, "node", err == nil)
	ing := filepath.Join(repoRoot(t), "scripts", "ingest")
	_, err = os.Stat(filepath.Join(ing, "node_modules", "@duckdb", "node-api"))
	requireTool(t, "scripts/ingest/node_modules (make ingest-deps)", err == nil)
	cmd := exec.Command("node", filepath.Join(ing, "write.mjs"), mode, root, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node write.mjs %s: %v\n%s", mode, err, b)
	}
}

// sameAsFolder checks that ds holds the folder's images, in the folder's
// order, with the same class names, labels and pixels.
func sameAsFolder(t *testing.T, ds Dataset, folder string, opt Options) {
	t.Helper()
	ref, err := Open([]string{folder}, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if ds.Len() != ref.Len() {
		t.Fatalf("%d samples, folder %d", ds.Len(), ref.Len())
	}
	if !slices.Equal(ds.Classes(), ref.Classes()) {
		t.Fatalf("classes %v, folder %v", ds.Classes(), ref.Classes())
	}
	var a, b Sample
	for i := 0; i < ds.Len(); i++ {
		if err := ds.Load(i, &a); err != nil {
			t.Fatal(err)
		}
		if err := ref.Load(i, &b); err != nil {
			t.Fatal(err)
		}
		if a.Label != b.Label || a.Height != b.Height || a.Width != b.Width || a.Channels != b.Channels ||
			string(a.Pixels) != string(b.Pixels) || string(a.Encoded) != string(b.Encoded) || a.Format != b.Format {
			t.Fatalf("sample %d (%s vs %s): label %d/%d, %dx%d/%dx%d, pixels equal %v",
				i, a.Name, b.Name, a.Label, b.Label, a.Height, a.Width, b.Height, b.Width, string(a.Pixels) == string(b.Pixels))
		}
	}
}

// TestParquetHuggingFaceDuckDB: a Parquet file in the Hugging Face layout
// written by DuckDB (an independent writer) packs with the right class names
// (from the ClassLabel metadata), labels and pixels.
func TestParquetHuggingFaceDuckDB(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "f")
	photoFolder(t, folder, 60)
	for _, mode := range []string{"parquet-hf", "parquet-plain", "arrow"} {
		t.Run(mode, func(t *testing.T) {
			ext := ".parquet"
			if mode == "arrow" {
				ext = ".arrow"
			}
			out := filepath.Join(dir, mode+ext)
			nodeWriter(t, mode, folder, out)
			k, err := Detect([]string{out})
			if err != nil || k != strings.TrimPrefix(ext, ".") {
				t.Fatalf("Detect = %q, %v", k, err)
			}
			for _, opt := range []Options{{ResizeW: 24, ResizeH: 16}, {KeepEncoded: true}, {Channels: 1}} {
				ds, err := Open([]string{out}, opt)
				if err != nil {
					t.Fatal(err)
				}
				sameAsFolder(t, ds, folder, opt)
				ds.Close()
			}
		})
	}
}

// TestParquetBadRowAndColumns: an undecodable row is reported by file and
// row; wrong column names are reported with the columns there are.
func TestParquetBadRowAndColumns(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "f")
	photoFolder(t, folder, 12)
	// Sorted after the crops of its class: the last row of class Aqua.
	if err := os.WriteFile(filepath.Join(folder, "Aqua", "zz-broken.jpg"), []byte("\xff\xd8\xffnot a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "hf.parquet")
	nodeWriter(t, "parquet-hf", folder, out)
	ds, err := Open([]string{out}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	var s Sample
	bad := -1
	for i := 0; i < ds.Len(); i++ {
		if err := ds.Load(i, &s); err != nil {
			if bad >= 0 {
				t.Fatalf("second bad row %d: %v", i, err)
			}
			bad = i
			if !strings.Contains(err.Error(), "hf.parquet row 1:") {
				t.Errorf("error does not name the file and row: %v", err)
			}
		}
	}
	if bad != 1 {
		t.Fatalf("bad row %d, want 1 (the second row of class Aqua)", bad)
	}
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{ImageColumn: "nope"}, `--image-column "nope": no such column (columns: image`},
		{Options{LabelColumn: "image"}, `--label-column "image": column of type struct`},
		{Options{LabelColumn: "nope", Kind: KindFolder}, "apply only to Parquet and Arrow"},
	} {
		paths := []string{out}
		if c.opt.Kind == KindFolder {
			paths = []string{folder}
		}
		_, err := Open(paths, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opt, err, c.want)
		}
	}
}

// TestWebDatasetTar: WebDataset shards written by tar (key.jpg + key.cls,
// keys in directories, a PNG and a WebP-less shard) pack like the folder.
func TestWebDatasetTar(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	requireTool(t, "tar", err == nil)
	dir := t.TempDir()
	folder := filepath.Join(dir, "f")
	photoFolder(t, folder, 30)
	ref, err := Open([]string{folder}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fd := ref.(*folderDataset)
	// Stage two shards: the first 17 samples and the rest, as
	// part/<k>.jpg + part/<k>.cls with class names as labels.
	var shards []string
	for si, rng := range [][2]int{{0, 17}, {17, len(fd.items)}} {
		stage := filepath.Join(dir, "stage", string(rune('a'+si)))
		var members []string
		for i := rng[0]; i < rng[1]; i++ {
			it := fd.items[i]
			key := filepath.Join("part", strings.Repeat("0", 3)+string(rune('a'+i/26))+string(rune('a'+i%26)))
			b, err := os.ReadFile(it.path)
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(stage, "part"), 0o755)
			if err := os.WriteFile(filepath.Join(stage, key+".jpg"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(stage, key+".cls"), []byte(fd.classes[it.label]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			members = append(members, key+".cls", key+".jpg")
		}
		shard := filepath.Join(dir, "shards", "shard-"+string(rune('0'+si))+".tar")
		os.MkdirAll(filepath.Dir(shard), 0o755)
		cmd := exec.Command(tarBin, append([]string{"-cf", shard, "-C", stage}, members...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, b)
		}
		shards = append(shards, shard)
	}
	for _, paths := range [][]string{shards, {filepath.Join(dir, "shards")}} {
		if k, err := Detect(paths); err != nil || k != KindWebDataset {
			t.Fatalf("Detect(%v) = %q, %v", paths, k, err)
		}
		for _, opt := range []Options{{ResizeW: 20, ResizeH: 20}, {KeepEncoded: true}} {
			ds, err := Open(paths, opt)
			if err != nil {
				t.Fatal(err)
			}
			sameAsFolder(t, ds, folder, opt)
			var s Sample
			ds.Load(17, &s)
			if s.Name != "shard-1.tar#part/000ar.jpg" {
				t.Errorf("name %q", s.Name)
			}
			ds.Close()
		}
	}
	// A sample without its .cls is named.
	bad := filepath.Join(dir, "bad.tar")
	stage := filepath.Join(dir, "stage", "a")
	cmd := exec.Command(tarBin, "-cf", bad, "-C", stage, "part/000aa.jpg")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
	if _, err := Open([]string{bad}, Options{}); err == nil || !strings.Contains(err.Error(), `"part/000aa" (bad.tar#part/000aa.jpg) has no .cls`) {
		t.Errorf("missing .cls: %v", err)
	}
}

package source_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

func TestCIFAR10Dir(t *testing.T) {
	dir := t.TempDir()
	pixels, labels, err := sourcetest.WriteCIFAR10(dir, 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	kind, err := source.Detect([]string{dir})
	if err != nil || kind != source.KindCIFAR10 {
		t.Fatalf("Detect = %q, %v; want cifar10", kind, err)
	}
	ds := open(t, []string{dir}, source.Options{})
	if ds.Kind() != source.KindCIFAR10 {
		t.Errorf("Kind = %q", ds.Kind())
	}
	if !slices.Equal(ds.Classes(), sourcetest.CIFAR10Classes) {
		t.Errorf("Classes = %q, want batches.meta.txt's %q", ds.Classes(), sourcetest.CIFAR10Classes)
	}
	if ds.Classes2() != nil {
		t.Errorf("Classes2 = %q, want nil", ds.Classes2())
	}
	checkRaw(t, ds, 32, 32, 3, pixels, labels, nil)

	// Names say file and record; the order is data_batch_1..5, test_batch.
	var s source.Sample
	for i, want := range map[int]string{0: "data_batch_1.bin#0", 6: "data_batch_1.bin#6", 7: "data_batch_2.bin#0", 41: "test_batch.bin#6"} {
		if err := ds.Load(i, &s); err != nil || s.Name != want {
			t.Errorf("Load(%d): name %q, %v; want %q", i, s.Name, err, want)
		}
	}
	if err := ds.Load(42, &s); err == nil {
		t.Error("Load(Len) succeeded")
	}
	if err := ds.Load(-1, &s); err == nil {
		t.Error("Load(-1) succeeded")
	}
	loadConcurrently(t, ds)
}

func TestCIFAR10FilesAnyOrderNoMeta(t *testing.T) {
	dir := t.TempDir()
	pixels, labels, err := sourcetest.WriteCIFAR10(dir, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "batches.meta.txt"))
	// Arguments in scrambled order: dataset order stays the numbered one.
	var paths []string
	for _, i := range []int{5, 2, 0, 4, 1, 3} {
		paths = append(paths, filepath.Join(dir, sourcetest.CIFAR10Files[i]))
	}
	ds := open(t, paths, source.Options{})
	if !slices.Equal(ds.Classes(), []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}) {
		t.Errorf("Classes without batches.meta.txt = %q, want numbers", ds.Classes())
	}
	checkRaw(t, ds, 32, 32, 3, pixels, labels, nil)

	// A subset of the files, given directly, is allowed.
	ds2 := open(t, []string{paths[0], paths[2]}, source.Options{}) // test_batch, data_batch_1
	checkRaw(t, ds2, 32, 32, 3, append(slices.Clone(pixels[:3]), pixels[15:]...), append(slices.Clone(labels[:3]), labels[15:]...), nil)
}

func TestCIFAR10Tar(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cifar-10-binary.tar.gz")
	pixels, labels, err := sourcetest.WriteCIFAR10Tar(path, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	kind, err := source.Detect([]string{path})
	if err != nil || kind != source.KindCIFAR10 {
		t.Fatalf("Detect = %q, %v; want cifar10", kind, err)
	}
	ds := open(t, []string{path}, source.Options{})
	if !slices.Equal(ds.Classes(), sourcetest.CIFAR10Classes) {
		t.Errorf("Classes = %q", ds.Classes())
	}
	checkRaw(t, ds, 32, 32, 3, pixels, labels, nil)
}

func TestCIFAR100(t *testing.T) {
	dir := t.TempDir()
	pixels, fine, coarse, err := sourcetest.WriteCIFAR100(dir, 9, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	kind, err := source.Detect([]string{dir})
	if err != nil || kind != source.KindCIFAR100 {
		t.Fatalf("Detect = %q, %v; want cifar100", kind, err)
	}
	ds := open(t, []string{dir}, source.Options{})
	if !slices.Equal(ds.Classes(), sourcetest.CIFAR100Fine) || !slices.Equal(ds.Classes2(), sourcetest.CIFAR100Coarse) {
		t.Errorf("Classes = %q, Classes2 = %q", ds.Classes(), ds.Classes2())
	}
	checkRaw(t, ds, 32, 32, 3, pixels, fine, coarse)
	loadConcurrently(t, ds)

	// Files given directly, test first: train.bin still comes first.
	ds2 := open(t, []string{filepath.Join(dir, "test.bin"), filepath.Join(dir, "train.bin")}, source.Options{})
	checkRaw(t, ds2, 32, 32, 3, pixels, fine, coarse)
	var s source.Sample
	if err := ds2.Load(9, &s); err != nil || s.Name != "test.bin#0" {
		t.Errorf("Load(9): %q, %v; want test.bin#0", s.Name, err)
	}

	tgz := filepath.Join(t.TempDir(), "cifar-100-binary.tar.gz")
	pixels, fine, coarse, err = sourcetest.WriteCIFAR100Tar(tgz, 5, 6, 5)
	if err != nil {
		t.Fatal(err)
	}
	if kind, err := source.Detect([]string{tgz}); err != nil || kind != source.KindCIFAR100 {
		t.Fatalf("Detect(tar) = %q, %v; want cifar100", kind, err)
	}
	ds3 := open(t, []string{tgz}, source.Options{})
	checkRaw(t, ds3, 32, 32, 3, pixels, fine, coarse)
	if !slices.Equal(ds3.Classes(), sourcetest.CIFAR100Fine) {
		t.Errorf("tar Classes = %q", ds3.Classes())
	}
}

func TestCIFARErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := sourcetest.WriteCIFAR10(dir, 2, 6); err != nil {
		t.Fatal(err)
	}
	b1 := filepath.Join(dir, "data_batch_1.bin")
	data, _ := os.ReadFile(b1)

	t.Run("size", func(t *testing.T) {
		os.WriteFile(b1, data[:len(data)-1], 0o644)
		defer os.WriteFile(b1, data, 0o644)
		openErr(t, []string{dir}, source.Options{}, "data_batch_1.bin", "6145", "multiple of the 3073-byte")
	})
	t.Run("label", func(t *testing.T) {
		bad := slices.Clone(data)
		bad[3073] = 12 // record 1's label
		os.WriteFile(b1, bad, 0o644)
		defer os.WriteFile(b1, data, 0o644)
		ds := open(t, []string{dir}, source.Options{})
		var s source.Sample
		if err := ds.Load(0, &s); err != nil {
			t.Fatalf("record 0: %v", err)
		}
		err := ds.Load(1, &s)
		if err == nil || !contains(err.Error(), "data_batch_1.bin", "record 1", "label 12") {
			t.Errorf("Load of a record with label 12: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		p := filepath.Join(dir, "data_batch_4.bin")
		os.Rename(p, p+".x")
		defer os.Rename(p+".x", p)
		openErr(t, []string{dir}, source.Options{}, "lacks data_batch_4.bin")
	})
	t.Run("meta", func(t *testing.T) {
		m := filepath.Join(dir, "batches.meta.txt")
		old, _ := os.ReadFile(m)
		os.WriteFile(m, []byte("a\nb\n"), 0o644)
		defer os.WriteFile(m, old, 0o644)
		openErr(t, []string{dir}, source.Options{}, "batches.meta.txt", "2 class names, want 10")
	})
	t.Run("twice", func(t *testing.T) {
		openErr(t, []string{dir, b1}, source.Options{}, "given twice")
	})
	t.Run("options", func(t *testing.T) {
		openErr(t, []string{dir}, source.Options{ResizeW: 8, ResizeH: 8}, "only to image folders")
	})
	t.Run("coarse", func(t *testing.T) {
		d := t.TempDir()
		if _, _, _, err := sourcetest.WriteCIFAR100(d, 2, 1, 7); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "test.bin")
		b, _ := os.ReadFile(p)
		b[0] = 20
		os.WriteFile(p, b, 0o644)
		ds := open(t, []string{d}, source.Options{})
		var s source.Sample
		if err := ds.Load(2, &s); err == nil || !contains(err.Error(), "test.bin record 0", "coarse label 20") {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("tar", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.tar.gz")
		os.WriteFile(p, sourcetest.Gzip([]byte("not a tar archive, but long enough to look at")), 0o644)
		openErr(t, []string{p}, source.Options{Kind: source.KindCIFAR10}, "x.tar.gz")
		openErr(t, []string{p}, source.Options{}, "x.tar.gz")
	})
}

// contains reports whether s contains every sub.
func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestDetect(t *testing.T) {
	root := t.TempDir()
	c10 := filepath.Join(root, "c10")
	c100 := filepath.Join(root, "c100")
	idx := filepath.Join(root, "idx")
	if _, _, err := sourcetest.WriteCIFAR10(c10, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := sourcetest.WriteCIFAR100(c100, 1, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sourcetest.WriteIDX(idx, 2, 1, 3, 3, true, 1); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(root, "empty")
	os.MkdirAll(filepath.Join(empty, "class"), 0o755)
	os.WriteFile(filepath.Join(empty, "class", "a.txt"), []byte("x"), 0o644)
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{c10}, source.KindCIFAR10},
		{[]string{filepath.Join(c10, "test_batch.bin")}, source.KindCIFAR10},
		{[]string{c100}, source.KindCIFAR100},
		{[]string{filepath.Join(c100, "train.bin")}, source.KindCIFAR100},
		{[]string{idx}, source.KindIDX},
		{[]string{filepath.Join(idx, "t10k-images-idx3-ubyte.gz")}, source.KindIDX},
	} {
		got, err := source.Detect(tc.paths)
		if err != nil || got != tc.want {
			t.Errorf("Detect(%v) = %q, %v; want %q", tc.paths, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{empty}, {filepath.Join(empty, "class", "a.txt")}, {c10, idx}, {filepath.Join(root, "nope")}, nil} {
		if got, err := source.Detect(bad); err == nil {
			t.Errorf("Detect(%v) = %q, want an error", bad, got)
		} else {
			t.Logf("Detect(%v): %v", bad, err)
		}
	}
	if _, err := source.Detect([]string{empty}); err == nil || !strings.Contains(err.Error(), "looked for") {
		t.Errorf("Detect error does not list what it looked for: %v", err)
	}
	openErr(t, []string{c10}, source.Options{Kind: "png"}, "unknown kind")
}

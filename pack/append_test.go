package pack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/source"
)

// pngFolder writes root/<class>/<k>.png, 6×5 images whose pixels encode
// (seed, class, k), n per class.
func pngFolder(t *testing.T, root string, seed int, classes []string, n int) {
	t.Helper()
	for ci, c := range classes {
		os.MkdirAll(filepath.Join(root, c), 0o755)
		for k := 0; k < n; k++ {
			img := image.NewRGBA(image.Rect(0, 0, 6, 5))
			for i := range img.Pix {
				img.Pix[i] = byte(seed*31 + ci*17 + k*7 + i)
			}
			var b bytes.Buffer
			png.Encode(&b, img)
			if err := os.WriteFile(filepath.Join(root, c, fmt.Sprintf("%03d.png", k)), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func openDS(t *testing.T, root string) source.Dataset {
	t.Helper()
	ds, err := source.Open([]string{root}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

type packed struct {
	classes []string
	names   []string
	labels  []string // class names
	data    [][]byte
}

func readPacked(t *testing.T, p string) packed {
	t.Helper()
	if err := format.VerifyFile(p, nil); err != nil {
		t.Fatal(err)
	}
	r, err := format.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := packed{classes: r.Schema().Classes}
	for i := range r.Len() {
		s, err := r.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		out.names = append(out.names, r.Name(i))
		out.labels = append(out.labels, out.classes[s.Label])
		out.data = append(out.data, slices.Clone(s.Data))
	}
	return out
}

// TestAppendMergesClasses: old samples keep their indices; the new
// source's classes are matched by name and unknown ones added at the end.
func TestAppendMergesClasses(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	pngFolder(t, a, 1, []string{"cat", "dog"}, 4)
	pngFolder(t, b, 2, []string{"bird", "dog"}, 3)
	out := filepath.Join(dir, "o.tscn")
	if _, err := Pack(context.Background(), openDS(t, a), []string{a}, out, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	old := readPacked(t, out)
	rep, err := Pack(context.Background(), openDS(t, b), []string{b}, out, Options{Workers: 2, Append: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Existing != 8 || rep.Samples != 6 {
		t.Fatalf("report %+v", rep)
	}
	got := readPacked(t, out)
	if !slices.Equal(got.classes, []string{"cat", "dog", "bird"}) {
		t.Fatalf("classes %v", got.classes)
	}
	for i := range old.names {
		if got.names[i] != old.names[i] || got.labels[i] != old.labels[i] || !bytes.Equal(got.data[i], old.data[i]) {
			t.Fatalf("old sample %d changed", i)
		}
	}
	want := []string{"bird", "bird", "bird", "dog", "dog", "dog"}
	if !slices.Equal(got.labels[8:], want) || got.names[8] != "bird/000.png" {
		t.Fatalf("appended labels %v, names %v", got.labels[8:], got.names[8:])
	}
	// Appending raw pixels to a file of encoded images is refused.
	if _, err := Pack(context.Background(), openDS(t, b), nil, out, Options{Append: true, KeepEncoded: true}); err == nil {
		t.Error("keep-encoded append to a raw file accepted")
	}
}

// cancelAfter cancels the pack once `after` samples were loaded, keeping
// the dataset's Name (so that append can skip what is there).
type cancelAfter struct {
	source.Dataset
	cancel context.CancelFunc
	after  int
	loads  int
}

func (s *cancelAfter) Name(i int) string { return s.Dataset.(Namer).Name(i) }

func (s *cancelAfter) Load(i int, out *source.Sample) error {
	if s.loads++; s.loads == s.after {
		s.cancel()
	}
	return s.Dataset.Load(i, out)
}

// TestResumeInterruptedPack: a pack with CommitEvery that is interrupted
// keeps its committed samples, and the same pack run with Append
// continues it into exactly the file an uninterrupted pack writes.
func TestResumeInterruptedPack(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	pngFolder(t, src, 3, []string{"a", "b", "c"}, 20)
	full := filepath.Join(dir, "full.tscn")
	if _, err := Pack(context.Background(), openDS(t, src), nil, full, Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "part.tscn")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Pack(ctx, &cancelAfter{Dataset: openDS(t, src), cancel: cancel, after: 40}, nil, out,
		Options{Workers: 1, CommitEvery: 16})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pack: %v", err)
	}
	part := readPacked(t, out)
	if len(part.names) == 0 || len(part.names)%16 != 0 || len(part.names) >= 60 {
		t.Fatalf("the interrupted pack kept %d samples, want a multiple of 16 below 60", len(part.names))
	}
	rep, err := Pack(context.Background(), openDS(t, src), nil, out, Options{Workers: 2, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.AlreadyPacked != len(part.names) || rep.Samples != 60-len(part.names) {
		t.Fatalf("resume report %+v after %d committed", rep, len(part.names))
	}
	a, b := readPacked(t, full), readPacked(t, out)
	if !slices.Equal(a.names, b.names) || !slices.Equal(a.labels, b.labels) || !slices.Equal(a.classes, b.classes) {
		t.Fatalf("resumed file differs from the uninterrupted one:\n%v\n%v", a.names, b.names)
	}
	for i := range a.data {
		if !bytes.Equal(a.data[i], b.data[i]) {
			t.Fatalf("sample %d differs", i)
		}
	}
	// Running it once more appends nothing and succeeds.
	rep, err = Pack(context.Background(), openDS(t, src), nil, out, Options{Resume: true})
	if err != nil || rep.Samples != 0 || rep.AlreadyPacked != 60 {
		t.Fatalf("second resume: %+v, %v", rep, err)
	}
	// Resuming with another source is refused.
	if _, err := Pack(context.Background(), openDS(t, src), []string{"elsewhere"}, out, Options{Resume: true}); err == nil {
		t.Error("resume of another source accepted")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

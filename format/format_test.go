package format

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testSample makes deterministic pixels for sample i: a smooth gradient plus
// noise, so that lz4 and zstd find something to compress, like real images.
func testSample(i, h, w, c int) Sample {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	px := make([]byte, h*w*c)
	for y := range h {
		for x := range w {
			for k := range c {
				v := (x/4)*16 + (y/4)*8 + k*40 + i
				if rng.IntN(8) == 0 {
					v += rng.IntN(16)
				}
				px[(y*w+x)*c+k] = byte(v)
			}
		}
	}
	return Sample{Index: i, Label: int32(i % 10), Label2: int32(i % 3), Height: h, Width: w, Channels: c, Data: px,
		Name: fmt.Sprintf("class%d/img%05d.png", i%10, i)}
}

func classes(n int) []string {
	c := make([]string, n)
	for i := range c {
		c[i] = fmt.Sprintf("class%d", i)
	}
	return c
}

// writeFile packs n samples of h×w×c, in storage order perm (nil = dataset order).
func writeFile(t testing.TB, path string, n, h, w, c int, perm []int, opt *WriterOptions) []Sample {
	t.Helper()
	schema := Schema{Image: ImageSpec{Fixed: true, Height: h, Width: w, Channels: c}, Classes: classes(10),
		Label2Name: "coarse_label", Classes2: classes(3), HasNames: true, Source: Source{Kind: "test"}}
	wr, err := Create(path, schema, opt)
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]Sample, n)
	for i := range n {
		samples[i] = testSample(i, h, w, c)
	}
	for p := range n {
		i := p
		if perm != nil {
			i = perm[p]
		}
		if err := wr.Add(&samples[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	return samples
}

func checkSample(t testing.TB, r *Reader, want Sample) {
	t.Helper()
	got, err := r.Get(want.Index)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != want.Index || got.Label != want.Label || got.Label2 != want.Label2 || got.Name != want.Name ||
		got.Height != want.Height || got.Width != want.Width || got.Channels != want.Channels || got.Encoded != want.Encoded {
		t.Fatalf("sample %d: got %+v, want %+v", want.Index, meta(got), meta(want))
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("sample %d: pixels differ", want.Index)
	}
}

func meta(s Sample) Sample { s.Data = nil; return s }

func TestRoundTripCodecs(t *testing.T) {
	for _, codec := range []string{"none", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.tscn")
			n := 1000
			perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
			want := writeFile(t, path, n, 32, 32, 3, perm, &WriterOptions{Codec: codec, ChunkSize: 64 << 10, Shuffled: true, ShuffleSeed: 9})
			r, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Len() != n {
				t.Fatalf("Len = %d, want %d", r.Len(), n)
			}
			s := r.Schema()
			if s.Codec != codec || !s.Shuffled || s.ShuffleSeed != 9 || len(s.Classes) != 10 || s.Label2Name != "coarse_label" {
				t.Fatalf("schema %+v", s)
			}
			for i := range n {
				checkSample(t, r, want[i])
			}
			// Storage order is the permutation the samples were added in, and
			// chunks partition it.
			seen := 0
			for c := range r.NumChunks() {
				for _, i := range r.ChunkSamples(c) {
					if int(i) != perm[seen] {
						t.Fatalf("storage position %d holds %d, want %d", seen, i, perm[seen])
					}
					if r.ChunkOf(int(i)) != c {
						t.Fatalf("ChunkOf(%d) = %d, want %d", i, r.ChunkOf(int(i)), c)
					}
					seen++
				}
				if r.ChunkSize(c) > 64<<10 {
					t.Fatalf("chunk %d has %d bytes, over the 64 KiB target", c, r.ChunkSize(c))
				}
			}
			if seen != n {
				t.Fatalf("chunks hold %d samples, want %d", seen, n)
			}
			if err := r.Verify(nil); err != nil {
				t.Fatal(err)
			}
			// ReadChunk + SampleIn agree with Get.
			var buf []byte
			for c := range r.NumChunks() {
				buf, err = r.ReadChunk(c, buf)
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range r.ChunkSamples(c) {
					s, err := r.SampleIn(int(i), buf)
					if err != nil || !bytes.Equal(s.Data, want[i].Data) {
						t.Fatalf("SampleIn(%d): %v", i, err)
					}
				}
			}
		})
	}
}

func TestCompressedSmaller(t *testing.T) {
	dir := t.TempDir()
	size := map[string]int64{}
	for _, codec := range []string{"none", "lz4", "zstd"} {
		p := filepath.Join(dir, codec)
		writeFile(t, p, 500, 32, 32, 3, nil, &WriterOptions{Codec: codec})
		st, _ := os.Stat(p)
		size[codec] = st.Size()
	}
	if !(size["zstd"] < size["lz4"] && size["lz4"] < size["none"]) {
		t.Fatalf("sizes %v: want zstd < lz4 < none", size)
	}
}

func TestVariableShapesEncodedAndLargeSamples(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enc.tscn")
	schema := Schema{Image: ImageSpec{Encoded: true}, Classes: classes(2), Source: Source{Kind: "folder"}}
	w, err := Create(path, schema, &WriterOptions{ChunkSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []Sample
	for i, size := range []int{10, 500, 2500, 30, 999, 1000, 1001, 7, 10000} {
		data := bytes.Repeat([]byte{byte(i + 1)}, size)
		s := Sample{Index: i, Label: int32(i % 2), Label2: -1, Height: i + 1, Width: 2*i + 1, Channels: 3, Data: data, Encoded: true, Format: FormatPNG}
		if err := w.Add(&s); err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Schema().Codec != "none" {
		t.Errorf("encoded images default to codec %q, want none", r.Schema().Codec)
	}
	for _, s := range want {
		checkSample(t, r, s)
		g, _ := r.Get(s.Index)
		if g.Format != FormatPNG {
			t.Errorf("sample %d: format %v", s.Index, g.Format)
		}
		// A sample larger than a chunk sits alone in its chunk.
		if len(s.Data) > 1000 && len(r.ChunkSamples(r.ChunkOf(s.Index))) != 1 {
			t.Errorf("sample %d of %d bytes shares its chunk", s.Index, len(s.Data))
		}
	}
	for c := range r.NumChunks() {
		if ci := r.Chunk(c); ci.Raw > 1000 && ci.Count != 1 {
			t.Errorf("chunk %d: %d bytes holding %d samples", c, ci.Raw, ci.Count)
		}
	}
	if err := r.Verify(nil); err != nil {
		t.Fatal(err)
	}
}

// Keys with gaps (skipped samples) become dense dataset indices in key order.
func TestKeysWithGapsBecomeDense(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gaps.tscn")
	schema := Schema{Image: ImageSpec{Fixed: true, Height: 2, Width: 2, Channels: 1}, Classes: classes(10), HasNames: true}
	w, err := Create(path, schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := []int{40, 3, 17, 5}
	for _, k := range keys {
		if err := w.Add(&Sample{Index: k, Label: int32(k % 10), Height: 2, Width: 2, Channels: 1, Data: []byte{byte(k), 0, 0, 0}, Name: fmt.Sprint(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, k := range []int{3, 5, 17, 40} {
		s, err := r.Get(i)
		if err != nil || s.Data[0] != byte(k) || s.Name != fmt.Sprint(k) {
			t.Fatalf("Get(%d) = %+v, %v; want key %d", i, s, err, k)
		}
	}
}

func TestWriterErrorsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.tscn")
	schema := Schema{Image: ImageSpec{Fixed: true, Height: 2, Width: 2, Channels: 3}, Classes: classes(2)}
	cases := []struct {
		name string
		s    Sample
		want string
	}{
		{"shape", Sample{Height: 3, Width: 2, Channels: 3, Data: make([]byte, 18)}, "differs from the file's fixed"},
		{"bytes", Sample{Height: 2, Width: 2, Channels: 3, Data: make([]byte, 5)}, "5 pixel bytes"},
		{"label", Sample{Label: 7, Height: 2, Width: 2, Channels: 3, Data: make([]byte, 12)}, "label 7 outside the 2 classes"},
		{"encoded", Sample{Height: 2, Width: 2, Channels: 3, Data: make([]byte, 12), Encoded: true, Format: FormatJPEG}, "encoded=true"},
	}
	for _, c := range cases {
		w, err := Create(path, schema, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.s.Index = 4
		c.s.Name = "cat/x.png"
		err = w.Add(&c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cat/x.png") {
			t.Errorf("%s: error %v, want one naming the sample and %q", c.name, err, c.want)
		}
		w.Abort()
	}
	// Duplicate keys fail at Close.
	w, _ := Create(path, schema, nil)
	for range 2 {
		w.Add(&Sample{Index: 1, Height: 2, Width: 2, Channels: 3, Data: make([]byte, 12)})
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "same index 1") {
		t.Errorf("duplicate keys: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("failed writes left %v behind", ents)
	}
}

func TestEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.tscn")
	w, err := Create(path, Schema{Classes: []string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := VerifyFile(path, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := Open(path, nil)
	defer r.Close()
	if _, err := r.Get(0); !errors.Is(err, ErrIndex) {
		t.Fatalf("Get(0) on an empty file: %v", err)
	}
}

func TestConcurrentGet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.tscn")
	n := 2000
	want := writeFile(t, path, n, 16, 16, 3, rand.New(rand.NewPCG(3, 4)).Perm(n), &WriterOptions{Codec: "lz4", ChunkSize: 8 << 10})
	// A cache far smaller than the data forces evictions while others read.
	r, err := Open(path, &ReaderOptions{CacheBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			for range 3000 {
				i := rng.IntN(n)
				s, err := r.Get(i)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(s.Data, want[i].Data) || s.Label != want[i].Label {
					errs <- fmt.Errorf("sample %d differs", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if used, _, _ := r.CacheStats(); used > 32<<10 {
		t.Fatalf("cache holds %d bytes, bound is %d", used, 32<<10)
	}
}

func TestNotAPackedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.txt")
	os.WriteFile(p, []byte(strings.Repeat("hello world\n", 30)), 0o644)
	if _, err := Open(p, nil); err == nil || !strings.Contains(err.Error(), "not a packed dataset file") || !strings.Contains(err.Error(), p) {
		t.Fatalf("Open(text file): %v", err)
	}
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Open(dir): %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(missing): %v", err)
	}
}

// A file written by a future major version, or with an unknown required
// flag, is refused with a message saying so.
func TestVersionRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.tscn")
	writeFile(t, path, 10, 4, 4, 3, nil, nil)
	data, _ := os.ReadFile(path)
	for _, c := range []struct {
		h    header
		want string
	}{
		{header{Major: 2}, "knows major version 1"},
		{header{Major: 1, Flags: 1 << 5}, "required feature flags"},
		{header{Major: 1, Minor: 7, Flags: FlagNames | FlagLabel2 | 1<<30}, ""}, // newer minor, unknown optional flag: fine
	} {
		d := append([]byte(nil), data...)
		copy(d, c.h.encode())
		// Re-bind the footer to the new header so only the version rules speak.
		var ft footer
		ft, _ = decodeFooter(d[len(d)-FooterSize:])
		ft.HeaderCRC = checksum(d[:60])
		copy(d[len(d)-FooterSize:], ft.encode())
		_, err := newReader("v", d, &ReaderOptions{})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("header %+v: error %v, want %q", c.h, err, c.want)
		}
	}
}

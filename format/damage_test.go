package format

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallFile packs a file small enough to mutate byte by byte but with every
// part present: several chunks of each codec, names, a secondary label and
// a shuffled order.
func smallFile(t testing.TB, codec string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.tscn")
	n := 40
	writeFile(t, path, n, 4, 4, 3, rand.New(rand.NewPCG(5, 6)).Perm(n), &WriterOptions{Codec: codec, ChunkSize: 256, Shuffled: true})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyBytes is Open + Verify over bytes in memory.
func verifyBytes(b []byte) error {
	r, err := newReader("mem", b, &ReaderOptions{NoChunkCheck: true})
	if err != nil {
		return err
	}
	return r.Verify(nil)
}

// regionOf names the part of the file that offset p lies in.
func regionOf(t testing.TB, b []byte, p int) string {
	ft, err := decodeFooter(b[len(b)-FooterSize:])
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case p < HeaderSize:
		return "header"
	case uint64(p) < ft.DataEnd:
		return "chunk"
	case p >= len(b)-FooterSize:
		return "footer"
	}
	for i, s := range ft.Sections {
		if uint64(p) >= s.Off && uint64(p) < s.Off+s.Len {
			return sectionNames[i]
		}
	}
	t.Fatalf("offset %d is in no region", p)
	return ""
}

// TestEveryByteChangeDetected flips every byte of the file, one at a time,
// with several patterns, and requires Verify to fail and name the region.
func TestEveryByteChangeDetected(t *testing.T) {
	for _, codec := range []string{"none", "lz4", "zstd"} {
		b := smallFile(t, codec)
		if err := verifyBytes(b); err != nil {
			t.Fatalf("%s: intact file fails: %v", codec, err)
		}
		regions := map[string]int{}
		for p := range b {
			for _, x := range []byte{0x01, 0x80, 0xFF} {
				m := append([]byte(nil), b...)
				m[p] ^= x
				err := verifyBytes(m)
				if err == nil {
					t.Fatalf("%s: changing byte %d (%s) by ^%#x is not detected", codec, p, regionOf(t, b, p), x)
				}
				var de *DamageError
				if !errors.As(err, &de) && !strings.Contains(err.Error(), "not a packed") && !strings.Contains(err.Error(), "version") && !strings.Contains(err.Error(), "flags") {
					t.Fatalf("%s: byte %d: error %q names no damaged part", codec, p, err)
				}
			}
			regions[regionOf(t, b, p)]++
		}
		for _, r := range []string{"header", "chunk", "schema", "chunk table", "order", "index", "names", "footer"} {
			if regions[r] == 0 {
				t.Errorf("%s: the sweep covered no byte of the %s", codec, r)
			}
		}
	}
}

// A damaged chunk is named by Verify and turns Get into an error.
func TestDamagedChunkNamed(t *testing.T) {
	b := smallFile(t, "lz4")
	r, _ := newReader("mem", b, &ReaderOptions{})
	ci := r.Chunk(2)
	m := append([]byte(nil), b...)
	m[ci.Offset+int64(ci.Stored)/2] ^= 0x10
	err := verifyBytes(m)
	if err == nil || !strings.Contains(err.Error(), "chunk 2 is damaged") {
		t.Fatalf("Verify: %v", err)
	}
	r2, err := newReader("mem", m, &ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range r2.ChunkSamples(2) {
		if _, err := r2.Get(int(i)); err == nil || !strings.Contains(err.Error(), "chunk 2 is damaged") {
			t.Fatalf("Get(%d) from a damaged chunk: %v", i, err)
		}
	}
	// The same for an uncompressed file, read straight from the map.
	b = smallFile(t, "none")
	r, _ = newReader("mem", b, &ReaderOptions{})
	ci = r.Chunk(1)
	m = append([]byte(nil), b...)
	m[ci.Offset] ^= 0x10
	r2, _ = newReader("mem", m, &ReaderOptions{})
	i := r2.ChunkSamples(1)[0]
	if _, err := r2.Get(int(i)); err == nil || !strings.Contains(err.Error(), "chunk 1 is damaged") {
		t.Fatalf("Get(%d) from a damaged raw chunk: %v", i, err)
	}
}

// TestTruncationAtEveryLength cuts the file at every length and requires a
// clear error from Open or Verify, never a panic.
func TestTruncationAtEveryLength(t *testing.T) {
	b := smallFile(t, "lz4")
	for n := range len(b) {
		err := verifyBytes(b[:n:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: not detected", n, len(b))
		}
		msg := err.Error()
		if !strings.Contains(msg, "truncated") && !strings.Contains(msg, "not a packed dataset file") {
			t.Fatalf("truncated to %d bytes: unclear error %q", n, msg)
		}
	}
	// On disk too, through the public API.
	path := filepath.Join(t.TempDir(), "t.tscn")
	os.WriteFile(path, b[:len(b)-1], 0o644)
	if err := VerifyFile(path, nil); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("VerifyFile(truncated): %v", err)
	}
}

// FuzzOpen feeds arbitrary bytes to Open, Get and Verify: errors are fine,
// panics are not. The seed corpus is real files of each codec and mutations.
func FuzzOpen(f *testing.F) {
	for _, codec := range []string{"none", "lz4", "zstd"} {
		b := smallFile(f, codec)
		f.Add(b)
		f.Add(b[:len(b)/2])
		m := append([]byte(nil), b...)
		m[HeaderSize+3] ^= 1
		f.Add(m)
	}
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := newReader("fuzz", b, &ReaderOptions{CacheBytes: 1 << 16})
		if err != nil {
			return
		}
		for i := range min(r.Len(), 64) {
			r.Get(i)
			r.Name(i)
		}
		for c := range min(r.NumChunks(), 16) {
			r.ChunkSamples(c)
			r.ReadChunk(c, nil)
		}
		r.Verify(nil)
	})
}

package loader

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/format"
)

// writePacked writes src (raw or encoded samples of one size) as a packed file.
func writePacked(tb testing.TB, path string, src *MemorySource, chunkSize int) {
	tb.Helper()
	s0 := src.Samples[0]
	schema := format.Schema{
		Image:   format.ImageSpec{Encoded: s0.Encoded, Fixed: !s0.Encoded, Height: s0.Height, Width: s0.Width, Channels: s0.Channels},
		Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
	}
	if s0.Encoded {
		schema.Image.Height, schema.Image.Width, schema.Image.Channels = 0, 0, 0
	}
	w, err := format.Create(path, schema, &format.WriterOptions{ChunkSize: chunkSize})
	if err != nil {
		tb.Fatal(err)
	}
	for i, s := range src.Samples {
		fs := &format.Sample{Index: i, Label: s.Label, Label2: -1, Height: s.Height, Width: s.Width,
			Channels: s.Channels, Data: s.Data, Encoded: s.Encoded}
		if s.Encoded {
			fs.Format = format.FormatJPEG
		}
		if err := w.Add(fs); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// jpegSource encodes n synthetic h×w images as JPEG (quality 90).
func jpegSource(n, h, w int) *MemorySource {
	raw := synth(n, h, w, 3)
	m := &MemorySource{}
	for _, s := range raw.Samples {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for p := 0; p < h*w; p++ {
			img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = s.Data[3*p], s.Data[3*p+1], s.Data[3*p+2], 255
		}
		var buf bytes.Buffer
		_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		m.Samples = append(m.Samples, Sample{Label: s.Label, Height: h, Width: w, Channels: 3, Data: buf.Bytes(), Encoded: true})
	}
	return m
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestQuasiRandomMemoryBound reads a packed lz4 file 11× larger than the
// reader's chunk cache. In quasi-random order every chunk is decompressed
// about once (the window fits in the cache) and the live heap stays within
// cache + batch slots + slack, far below the file size; in full-shuffle
// order the same cache thrashes.
func TestQuasiRandomMemoryBound(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "big.tsc")
	src := synth(2400, 48, 48, 3) // 6,912 bytes each: 16.6 MB raw
	for _, s := range src.Samples {
		for k := range s.Data { // posterise, so that lz4 compresses the chunks
			s.Data[k] &= 0xC0
		}
	}
	writePacked(t, path, src, 64<<10)
	src = nil
	const cache = 3 << 19 // 1.5 MiB: 23 chunks
	r, err := format.Open(path, &format.ReaderOptions{CacheBytes: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fileRaw := 0
	for c := 0; c < r.NumChunks(); c++ {
		fileRaw += r.ChunkSize(c)
		if r.Chunk(c).Codec == format.CodecNone {
			t.Fatalf("chunk %d is stored uncompressed; the test needs the chunk cache", c)
		}
	}
	if fileRaw < 10*cache {
		t.Fatalf("test file has %d raw bytes, want ≥ 10× the %d-byte cache", fileRaw, cache)
	}
	const window = 4 // 4 × 64 KiB chunks: a quarter of the cache
	base := liveHeap()
	// The cache must hold the window plus the chunks of the images in flight
	// (Slots·BatchSize positions ≈ 64 images ≈ 7 chunks here): 11 of its 23,
	// with headroom for workers running ahead.
	l, err := New(FromReader(r), Options{BatchSize: 32, Slots: 2, Workers: 2, Order: QuasiRandom, Window: window,
		Augment: augment.DefaultConfig(16, 16)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	slotBytes := uint64(2 * 2 * 32 * 16 * 16 * 3 * 4)
	var peak uint64
	n := 0
	eachBatch(t, l, 0, func(b *Batch) {
		n += b.N
		if b.Step%4 == 0 {
			peak = max(peak, liveHeap())
		}
	})
	if n != r.Len() {
		t.Fatalf("epoch delivered %d of %d images", n, r.Len())
	}
	used, _, misses := r.CacheStats()
	grown := int64(peak) - int64(base)
	bound := int64(cache) + int64(slotBytes) + 4<<20
	t.Logf("file %.1f MB raw in %d chunks; cache %d KB holds %d KB; %d chunk loads; live heap +%.1f MB (bound %.1f MB)",
		float64(fileRaw)/1e6, r.NumChunks(), cache>>10, used>>10, misses, float64(grown)/1e6, float64(bound)/1e6)
	if used > cache {
		t.Fatalf("cache holds %d bytes, bound %d", used, cache)
	}
	if grown > bound {
		t.Fatalf("live heap grew by %d bytes, bound %d (file %d)", grown, bound, fileRaw)
	}
	if misses > int64(r.NumChunks())*5/4 {
		t.Fatalf("%d chunk loads for %d chunks: the window does not fit the cache", misses, r.NumChunks())
	}

	// The same cache in full-shuffle order reloads chunks over and over.
	l2, _ := New(FromReader(r), Options{BatchSize: 64, Workers: 2, Order: Shuffle, Augment: augment.DefaultConfig(16, 16)})
	defer l2.Close()
	_, _, before := r.CacheStats()
	if _, err := epochDigestErr(l2); err != nil {
		t.Fatal(err)
	}
	_, _, after := r.CacheStats()
	t.Logf("full shuffle with the same cache: %d chunk loads", after-before)
	if after-before < 3*int64(r.NumChunks()) {
		t.Fatalf("full shuffle loaded only %d chunks; the test file is too small to show the difference", after-before)
	}
}

// TestPackedDamagedChunk: a corrupted chunk ends the epoch with an error that
// names the chunk, and no goroutine is left behind.
func TestPackedDamagedChunk(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "damaged.tsc")
	writePacked(t, path, synth(300, 16, 16, 3), 8<<10)
	r, err := format.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ci := r.Chunk(5)
	r.Close()
	b, _ := os.ReadFile(path)
	b[ci.Offset+int64(ci.Stored)/2] ^= 0x55
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = format.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, mode := range []Mode{Sequential, Shuffle, QuasiRandom} {
		l, err := New(FromReader(r), Options{BatchSize: 32, Workers: 2, Order: mode})
		if err != nil {
			t.Fatal(err)
		}
		_, err = epochDigestErr(l)
		if err == nil || !strings.Contains(err.Error(), "chunk 5") {
			t.Fatalf("%v: damaged chunk gave %v", mode, err)
		}
		l.Close()
	}
}

// TestPackedMatchesMemory: the same images from a packed file and from memory
// give the same batches, raw and JPEG.
func TestPackedMatchesMemory(t *testing.T) {
	noLeaks(t)
	for _, src := range []*MemorySource{synth(130, 32, 32, 3), synth(50, 28, 28, 1), jpegSource(20, 60, 50)} {
		path := filepath.Join(t.TempDir(), "m.tsc")
		writePacked(t, path, src, 16<<10)
		opt := Options{BatchSize: 32, Workers: 2, Seed: 9, Augment: augment.DefaultConfig(24, 24)}
		lm, _ := New(src, opt)
		lf, err := OpenFile(path, 1<<20, opt)
		if err != nil {
			t.Fatal(err)
		}
		dm, _ := epochDigest(t, lm, 1)
		df, _ := epochDigest(t, lf, 1)
		lm.Close()
		if err := lf.Close(); err != nil {
			t.Fatalf("closing the loader and its file: %v", err)
		}
		if dm != df {
			t.Fatalf("%dx%d images: packed file and memory give different batches", src.Samples[0].Height, src.Samples[0].Width)
		}
	}
}

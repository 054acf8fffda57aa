package loader

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/format"
)

// Benchmarks: one op is one batch of 512 images (1,024 views) taken from a
// running epoch and released; images/s counts source images (each gives two
// views). Workers = GOMAXPROCS, so `-cpu 1,2` gives the 1- and 2-core figures.
// Allocations happen only when an epoch starts (its order, goroutines and
// channels), never per batch with raw images (TestNoAllocationsPerBatch):
// allocs/op spreads the epoch starts over the batches, allocs/batch counts
// the steady state alone (for JPEG it is the standard library decoder's
// allocations, about 7 per image).
//
//	go test ./loader -run '^$' -bench TwoView -cpu 1,2 -benchtime 40x

var (
	benchDir  string
	benchOnce sync.Mutex
	benchData = map[string]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchImage fills an h×w×3 image with a smooth pattern and mild noise
// (natural-image-like for the colour code's branches and for JPEG), cheaply:
// separable sines from per-row/column tables plus a hash.
func benchImage(i, h, w int, pix []byte) {
	for k := 0; k < 3; k++ {
		fx := make([]float64, w)
		for x := range fx {
			fx[x] = 60 * math.Sin(float64(x+i)/(3+float64(k)))
		}
		for y := 0; y < h; y++ {
			fy := 127.5 + 60*math.Sin(float64(y)/(5+2*float64(k))+float64(i%7))
			for x := 0; x < w; x++ {
				n := float64(augment.U64(uint64(i), uint64((y*w+x)*3+k))>>59) - 16
				pix[(y*w+x)*3+k] = uint8(min(255, max(0, fy+fx[x]+n)))
			}
		}
	}
}

// benchFile writes (once per process) a packed file of n h×w images, raw or
// JPEG (quality 90), and returns its path.
func benchFile(b *testing.B, n, h, w int, encoded, compressible bool) string {
	benchOnce.Lock()
	defer benchOnce.Unlock()
	name := fmt.Sprintf("%dx%dx%d-%v-%v", n, h, w, encoded, compressible)
	if p, ok := benchData[name]; ok {
		return p
	}
	if benchDir == "" {
		d, err := os.MkdirTemp("", "loaderbench")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	src := &MemorySource{}
	pix := make([]byte, h*w*3)
	for i := 0; i < n; i++ {
		benchImage(i, h, w, pix)
		if compressible { // drop the noisy low bits, so that lz4 has something to do
			for k := range pix {
				pix[k] &= 0xF0
			}
		}
		s := Sample{Label: int32(i % 10), Height: h, Width: w, Channels: 3, Data: append([]byte(nil), pix...)}
		if encoded {
			img := image.NewRGBA(image.Rect(0, 0, w, h))
			for p := 0; p < h*w; p++ {
				img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = pix[3*p], pix[3*p+1], pix[3*p+2], 255
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
				b.Fatal(err)
			}
			s.Data, s.Encoded = buf.Bytes(), true
		}
		src.Samples = append(src.Samples, s)
	}
	p := filepath.Join(benchDir, name+".tsc")
	writePacked(b, p, src, 0)
	benchData[name] = p
	return p
}

// benchTwoView measures batches of 512 two-view pairs from src.
func benchTwoView(b *testing.B, src Source, cfg augment.Config) {
	benchTwoViewOrder(b, src, cfg, Shuffle)
}

// benchTwoViewOrder is benchTwoView in the given visiting order.
func benchTwoViewOrder(b *testing.B, src Source, cfg augment.Config, order Mode) {
	l, err := New(src, Options{BatchSize: 512, Seed: 1, Augment: cfg, GoJPEG: benchGoJPEG, Order: order})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	epoch := 0
	it, err := l.Epoch(context.Background(), epoch, 0)
	if err != nil {
		b.Fatal(err)
	}
	// Warm-up batch: worker buffers grow, the pipeline fills.
	if bt, err := it.Next(); err == nil {
		bt.Release()
	}
	images := 0
	// allocs/op (b.ReportAllocs) includes the epoch starts; allocs/batch
	// counts only what happens between them, the steady state.
	var ms runtime.MemStats
	var startAllocs uint64
	b.ReportAllocs()
	runtime.ReadMemStats(&ms)
	m0 := ms.Mallocs
	b.ResetTimer()
	c0 := cpuTime()
	inEpoch := 1 // batches taken from the current epoch (the warm-up one)
	for range b.N {
		if inEpoch == it.Steps() { // epoch boundary: its end and the next start
			runtime.ReadMemStats(&ms)
			a := ms.Mallocs
			if _, err := it.Next(); err != io.EOF {
				b.Fatalf("after the last batch: %v", err)
			}
			epoch++
			if it, err = l.Epoch(context.Background(), epoch, 0); err != nil {
				b.Fatal(err)
			}
			runtime.ReadMemStats(&ms)
			startAllocs += ms.Mallocs - a
			inEpoch = 0
		}
		bt, err := it.Next()
		inEpoch++
		if err != nil {
			b.Fatal(err)
		}
		images += bt.N
		bt.Release()
	}
	b.StopTimer()
	cpu := cpuTime() - c0
	runtime.ReadMemStats(&ms)
	it.Close()
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	// CPU time of the whole process (workers, reader, the consumer) per
	// image: less inflated than images/s when other jobs load the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(images), "cpu-µs/image")
	b.ReportMetric(float64(ms.Mallocs-m0-startAllocs)/float64(b.N), "allocs/batch")
}

func openBench(b *testing.B, path string) *format.Reader {
	r, err := format.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// BenchmarkTwoViewCIFAR: 32×32 RGB from a packed file (10,240 images),
// 32×32 views, the reference augmentation. Like generated CIFAR data the
// images have noisy low bits, which lz4 cannot compress: the writer stores
// the chunks raw and the reader serves them from the memory map.
func BenchmarkTwoViewCIFAR(b *testing.B) {
	r := openBench(b, benchFile(b, 10240, 32, 32, false, false))
	benchTwoView(b, FromReader(r), augment.DefaultConfig(32, 32))
}

// BenchmarkTwoViewCIFARLZ4 is BenchmarkTwoViewCIFAR with images whose low
// bits are dropped, so the chunks are lz4-compressed and go through the
// reader's chunk cache (default size, which holds the whole file after the
// first epoch).
func BenchmarkTwoViewCIFARLZ4(b *testing.B) {
	path := benchFile(b, 10240, 32, 32, false, true)
	r := openBench(b, path)
	if r.Chunk(0).Codec == format.CodecNone {
		b.Fatal("benchmark file is not compressed")
	}
	benchTwoView(b, FromReader(r), augment.DefaultConfig(32, 32))
}

// BenchmarkTwoViewCIFARLZ4SmallCache is BenchmarkTwoViewCIFARLZ4 with a
// chunk cache of an eighth of the decompressed images, as for a pack larger
// than the cache (train's --order auto then chooses quasi-random), in both
// orders: a uniform shuffle decompresses a 128 KiB chunk for almost every
// image; the quasi-random order each chunk about once per epoch.
func BenchmarkTwoViewCIFARLZ4SmallCache(b *testing.B) {
	path := benchFile(b, 10240, 32, 32, false, true)
	for _, order := range []Mode{Shuffle, QuasiRandom} {
		b.Run(order.String(), func(b *testing.B) {
			r, err := format.Open(path, &format.ReaderOptions{CacheBytes: 10240 * 32 * 32 * 3 / 8})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			benchTwoViewOrder(b, FromReader(r), augment.DefaultConfig(32, 32), order)
			_, hits, misses := r.CacheStats()
			b.ReportMetric(float64(misses)/float64(hits+misses), "chunk-misses/image")
		})
	}
}

// BenchmarkTwoViewCIFARMemory is BenchmarkTwoViewCIFAR from memory (no file).
func BenchmarkTwoViewCIFARMemory(b *testing.B) {
	src := &MemorySource{}
	pix := make([]byte, 32*32*3)
	for i := 0; i < 10240; i++ {
		benchImage(i, 32, 32, pix)
		src.Samples = append(src.Samples, Sample{Label: int32(i % 10), Height: 32, Width: 32, Channels: 3, Data: append([]byte(nil), pix...)})
	}
	benchTwoView(b, src, augment.DefaultConfig(32, 32))
}

// BenchmarkTwoView96: 96×96 RGB raw (STL-10-like, 3,072 images), 96×96 views.
func BenchmarkTwoView96(b *testing.B) {
	r := openBench(b, benchFile(b, 3072, 96, 96, false, false))
	benchTwoView(b, FromReader(r), augment.DefaultConfig(96, 96))
}

// BenchmarkTwoViewJPEG: 256×256 JPEG-encoded (1,536 images), 64×64 views;
// each image is decoded once for both views.
func BenchmarkTwoViewJPEG(b *testing.B) {
	r := openBench(b, benchFile(b, 1536, 256, 256, true, false))
	benchTwoView(b, FromReader(r), augment.DefaultConfig(64, 64))
}

// benchGoJPEG makes benchTwoView decode with image/jpeg instead of
// libjpeg-turbo (BenchmarkTwoViewJPEGGo, the before/after comparison).
var benchGoJPEG bool

// BenchmarkTwoViewJPEGGo is BenchmarkTwoViewJPEG with Go's image/jpeg.
func BenchmarkTwoViewJPEGGo(b *testing.B) {
	benchGoJPEG = true
	defer func() { benchGoJPEG = false }()
	BenchmarkTwoViewJPEG(b)
}

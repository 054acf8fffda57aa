package format_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/pack"
	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// benchFiles packs 60,000 32×32×3 images once per codec and shares the
// files between benchmarks. The images are real: MNIST digits (from the
// GoMNIST module) padded to 32×32 and tinted per sample into three
// channels, so that the codecs see natural-image redundancy. (The generated
// CIFAR-format files of sourcetest carry noise in their low bits, which
// neither lz4 nor zstd can shrink, so their chunks would all be stored
// uncompressed and the codec paths would go unmeasured.)
var benchFiles struct {
	once  sync.Once
	paths map[string]string
	err   error
}

func cifarFile(b *testing.B, codec string) string {
	benchFiles.once.Do(func() { benchFiles.paths, benchFiles.err = makeBenchFiles() })
	if benchFiles.err != nil {
		b.Fatal(benchFiles.err)
	}
	return benchFiles.paths[codec]
}

func makeBenchFiles() (map[string]string, error) {
	mnist, err := sourcetest.MNISTDir()
	if err != nil {
		return nil, err
	}
	ds, err := source.Open([]string{mnist}, source.Options{})
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	const n, side = 60000, 32
	imgs := make([][]byte, n)
	labels := make([]int32, n)
	var s source.Sample
	for i := range n {
		if err := ds.Load(i, &s); err != nil {
			return nil, err
		}
		px := make([]byte, side*side*3)
		tint := [3]int{255 - i%97, 128 + i%127, 64 + i%191}
		for y := range 28 {
			for x := range 28 {
				v := int(s.Pixels[y*28+x])
				for c := range 3 {
					px[((y+2)*side+x+2)*3+c] = byte(v * tint[c] / 255)
				}
			}
		}
		imgs[i], labels[i] = px, s.Label
	}
	dir, err := os.MkdirTemp("", "formatbench")
	if err != nil {
		return nil, err
	}
	perm := pack.Permutation(n, 1)
	paths := map[string]string{}
	for _, codec := range []string{"none", "lz4", "zstd"} {
		p := filepath.Join(dir, codec+".tscn")
		w, err := format.Create(p, format.Schema{Image: format.ImageSpec{Fixed: true, Height: side, Width: side, Channels: 3},
			Classes: ds.Classes()}, &format.WriterOptions{Codec: codec, Shuffled: true, ShuffleSeed: 1})
		if err != nil {
			return nil, err
		}
		for _, i := range perm {
			if err := w.Add(&format.Sample{Index: i, Label: labels[i], Height: side, Width: side, Channels: 3, Data: imgs[i]}); err != nil {
				return nil, err
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		paths[codec] = p
	}
	return paths, nil
}

// BenchmarkGet reads 32×32×3 samples with Get, in the loader's chunk-by-chunk
// order and uniformly at random, for each codec, on GOMAXPROCS goroutines.
// Random reads bound the cache to a quarter of the decompressed data.
// The metric images/s counts samples returned.
func BenchmarkGet(b *testing.B) {
	for _, codec := range []string{"none", "lz4", "zstd"} {
		for _, order := range []string{"chunk", "random"} {
			b.Run(codec+"/"+order, func(b *testing.B) {
				path := cifarFile(b, codec)
				opt := &format.ReaderOptions{}
				if order == "random" {
					opt.CacheBytes = 60000 * 3072 / 4
				}
				r, err := format.Open(path, opt)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				n := r.Len()
				// The visiting order: storage order (chunk by chunk) or a
				// uniform shuffle of dataset indices.
				idx := r.StorageOrder(nil, 0, n)
				if order == "random" {
					rng := rand.New(rand.NewPCG(1, 2))
					rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
				}
				procs := runtime.GOMAXPROCS(0)
				var next atomic.Int64
				var sink atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for range procs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var sum int64
						for {
							k := next.Add(1) - 1
							if k >= int64(b.N) {
								break
							}
							s, err := r.Get(int(idx[k%int64(n)]))
							if err != nil {
								b.Error(err)
								return
							}
							sum += int64(s.Data[0])
						}
						sink.Add(sum)
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
				_, hits, misses := r.CacheStats()
				if hits+misses > 0 {
					b.ReportMetric(float64(hits)/float64(hits+misses), "cache-hit-ratio")
				}
			})
		}
	}
}

// BenchmarkFileSize reports the packed size relative to the source bytes
// for each codec: on the 32×32×3 MNIST-derived set of BenchmarkGet (no
// names) and on real MNIST packed by pack (with names).
func BenchmarkFileSize(b *testing.B) {
	mnist, err := sourcetest.MNISTDir()
	if err != nil {
		b.Fatal(err)
	}
	for _, data := range []string{"mnist32x32x3", "mnist"} {
		for _, codec := range []string{"none", "lz4", "zstd"} {
			b.Run(fmt.Sprintf("%s/%s", data, codec), func(b *testing.B) {
				var path string
				var srcBytes int64
				if data == "mnist" {
					path = filepath.Join(b.TempDir(), "m.tscn")
					for range 1 {
						ds, err := source.Open([]string{mnist}, source.Options{})
						if err != nil {
							b.Fatal(err)
						}
						rep, err := pack.Pack(b.Context(), ds, nil, path, pack.Options{Codec: codec})
						if err != nil {
							b.Fatal(err)
						}
						srcBytes = rep.InBytes
						ds.Close()
					}
				} else {
					path = cifarFile(b, codec)
					srcBytes = 60000 * 32 * 32 * 3
				}
				st, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.Size())/float64(srcBytes), "size/raw")
			})
		}
	}
}

// BenchmarkBaselineCopy is the ceiling Get is measured against: copying
// 3,072-byte images out of one flat in-memory array, in order and at random,
// on GOMAXPROCS goroutines.
func BenchmarkBaselineCopy(b *testing.B) {
	const n, size = 60000, 3072
	flat := make([]byte, n*size)
	for i := range flat {
		flat[i] = byte(i * 7)
	}
	for _, order := range []string{"seq", "random"} {
		b.Run(order, func(b *testing.B) {
			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			if order == "random" {
				rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range runtime.GOMAXPROCS(0) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, size)
					for {
						k := next.Add(1) - 1
						if k >= int64(b.N) {
							return
						}
						i := idx[k%n]
						copy(buf, flat[i*size:(i+1)*size])
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

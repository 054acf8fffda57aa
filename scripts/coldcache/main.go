// Command coldcache measures the loader over a packed file larger than its
// chunk cache with a cold page cache, against a plain sequential read of
// the same file in the same run (docs/BENCHMARKS.md, "Cold cache"):
//
//	go run ./scripts/coldcache -o /tmp/cold.tscn -n 400000
//
// It writes (once) a pack of n raw 32×32 RGB images (smooth synthetic
// pixels, lz4), then, each time after evicting the file from the page cache
// with posix_fadvise(DONTNEED):
//
//  1. reads the file sequentially (4 MiB reads, FADV_SEQUENTIAL): the disk's rate;
//  2. runs one QuasiRandom epoch of the loader with readahead (the default),
//     views = the whole image (NoAugment, uint8 crops), so the loader's I/O
//     path, not augmentation, is what is measured;
//  3. the same epoch without readahead;
//  4. a normal two-view augmented epoch with readahead, for context.
//
// The loader's chunk cache is -cache bytes (default: an eighth of the file).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/loader"
)

func main() {
	out := flag.String("o", "/tmp/coldcache.tscn", "packed file (written if missing)")
	n := flag.Int("n", 400000, "images")
	cache := flag.Int64("cache", 0, "loader chunk cache in bytes (0 = file size / 8)")
	workers := flag.Int("workers", 2, "loader workers")
	skipAug := flag.Bool("skip-augmented", false, "skip the augmented epoch")
	rounds := flag.Int("rounds", 1, "repeat the measurements (sequential read, then the epochs) this many times")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the loader epochs")
	flag.StringVar(&codec, "codec", "lz4", "codec of a file written here: lz4, zstd or none (raw pixels: nothing to decode)")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "coldcache:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*out, *n, *cache, *workers, *skipAug, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "coldcache:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(path string, n int, cache int64, workers int, skipAug bool, rounds int) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := write(path, n); err != nil {
			return err
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	size := st.Size()
	if cache == 0 {
		cache = size / 8
	}
	fmt.Printf("file %s: %.1f MB; loader chunk cache %.1f MB (file / %.1f); %d CPUs, %d loader workers\n",
		path, float64(size)/1e6, float64(cache)/1e6, float64(size)/float64(cache), runtime.NumCPU(), workers)

	var seq float64

	epoch := func(name string, readahead int, aug bool) (float64, error) {
		if err := evict(path); err != nil {
			return 0, err
		}
		opt := loader.Options{BatchSize: 512, Workers: workers, Order: loader.QuasiRandom, Seed: 1,
			Output: loader.Crops8, NoAugment: true, Augment: augment.DefaultConfig(32, 32), Readahead: readahead}
		if aug {
			opt.NoAugment, opt.Output = false, loader.Floats
		}
		l, err := loader.OpenFile(path, cache, opt)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		t := time.Now()
		it, err := l.Epoch(context.Background(), 0, 0)
		if err != nil {
			return 0, err
		}
		imgs := 0
		for {
			b, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, err
			}
			imgs += b.N
			b.Release()
		}
		sec := time.Since(t).Seconds()
		rate := float64(size) / 1e6 / sec
		fmt.Printf("%s: %.0f MB/s of the file (%.0f images/s), %.1f%% of the sequential read\n",
			name, rate, float64(imgs)/sec, 100*rate/seq)
		return rate, nil
	}
	for r := 0; r < rounds; r++ {
		fmt.Printf("round %d\n", r+1)
		if err := evict(path); err != nil {
			return err
		}
		t0 := time.Now()
		if err := seqRead(path); err != nil {
			return err
		}
		seq = float64(size) / 1e6 / time.Since(t0).Seconds()
		fmt.Printf("sequential read, cold: %.0f MB/s\n", seq)
		if _, err := epoch("quasi-random epoch, cold, readahead", 0, false); err != nil {
			return err
		}
		if _, err := epoch("quasi-random epoch, cold, no readahead", -1, false); err != nil {
			return err
		}
	}
	if !skipAug {
		if _, err := epoch("quasi-random epoch, cold, readahead, two augmented float views", 0, true); err != nil {
			return err
		}
	}
	return nil
}

// write packs n smooth synthetic 32×32 images (lz4 compresses them about
// as much as natural images).
// codec is the -codec flag: the codec of a file this program writes.
var codec string

func write(path string, n int) error {
	w, err := format.Create(path, format.Schema{Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		&format.WriterOptions{Codec: codec})
	if err != nil {
		return err
	}
	pix := make([]byte, 32*32*3)
	for i := 0; i < n; i++ {
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				for c := 0; c < 3; c++ {
					v := 128 + 60*math.Sin(float64(x+i%97)/(3+float64(c))) + 50*math.Cos(float64(y+i%89)/(4+float64(c)))
					v += float64((i*7919+y*131+x*31+c*17)%23) - 11 // mild noise
					pix[(y*32+x)*3+c] = uint8(min(255, max(0, v)))
				}
			}
		}
		if err := w.Add(&format.Sample{Index: i, Label: int32(i % 10), Label2: -1, Height: 32, Width: 32, Channels: 3, Data: pix}); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

// evict drops the file's pages from the page cache (they are clean after
// the fsync, so DONTNEED really drops them).
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func seqRead(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Tell the kernel the read is sequential (it doubles its readahead
	// window), and read in large pieces: the strongest plain sequential
	// read, as cat or dd would do it.
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	buf := make([]byte, 4<<20)
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

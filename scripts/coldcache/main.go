// Command coldcache measures the loader over a packed file larger than its
// chunk cache with a cold page cache, against a plain sequential read of
// the same file in the same run (docs/BENCHMARKS.md, "Cold cache"):
//
//	go run ./scripts/coldcache -o /tmp/cold.tscn -n 400000
//
// It writes (once) a pack of n raw 32×32 RGB images (smooth synthetic
// pixels, lz4 or -codec, chunks of -chunk bytes), reads it once without
// timing it (on a virtual machine the host then caches the file too, so
// that every timed read below meets the same storage, not a slow first
// read and a fast rest), then each round, every step after evicting the
// file from the page cache with posix_fadvise(DONTNEED):
//
//  1. reads the file sequentially (4 MiB reads, FADV_SEQUENTIAL): the disk's rate;
//  2. runs one QuasiRandom epoch of the loader with readahead (the default),
//     views = the whole image (NoAugment, uint8 crops), so the loader's I/O
//     path, not augmentation, is what is measured;
//  3. reads the file sequentially;
//  4. runs the same epoch without readahead;
//  5. reads the file sequentially.
//
// Each epoch's rate is given as a percentage of the mean of the two
// sequential reads around it, and the rounds' median at the end. After the
// rounds, a normal two-view augmented epoch with readahead, for context.
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
	"slices"
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
	flag.IntVar(&chunkSize, "chunk", 0, "chunk size in bytes of a file written here (0 = format.DefaultChunkSize)")
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
		fmt.Printf("%s: %.0f MB/s of the file (%.0f images/s)\n", name, rate, float64(imgs)/sec)
		return rate, nil
	}
	seqRate := func(name string) (float64, error) {
		if err := evict(path); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := seqRead(path); err != nil {
			return 0, err
		}
		r := float64(size) / 1e6 / time.Since(t0).Seconds()
		fmt.Printf("%s: %.0f MB/s\n", name, r)
		return r, nil
	}
	if _, err := seqRate("untimed warm-up read (the host's cache)"); err != nil {
		return err
	}
	// Sequential reads and loader epochs alternate (seq, loader with
	// readahead, seq, loader without, seq, ...), and each epoch is compared
	// with the two reads on either side of it: on a shared virtual disk the
	// storage's speed changes within a minute (up to 5× here), and only a
	// neighbour measures what the epoch met.
	prev, err := seqRate("sequential read, cold")
	if err != nil {
		return err
	}
	var withRA, withoutRA []float64
	for r := 0; r < rounds; r++ {
		for _, readahead := range []int{0, -1} {
			name := "quasi-random epoch, cold, readahead"
			if readahead < 0 {
				name = "quasi-random epoch, cold, no readahead"
			}
			rate, err := epoch(name, readahead, false)
			if err != nil {
				return err
			}
			next, err := seqRate("sequential read, cold")
			if err != nil {
				return err
			}
			ratio := 2 * rate / (prev + next)
			fmt.Printf("round %d: %.1f%% of the mean of the reads around it (%.0f, %.0f MB/s)\n", r+1, 100*ratio, prev, next)
			if readahead < 0 {
				withoutRA = append(withoutRA, ratio)
			} else {
				withRA = append(withRA, ratio)
			}
			prev = next
		}
	}
	if rounds > 0 {
		fmt.Printf("loader against the sequential reads around it, %d rounds: with readahead median %.1f%% (min %.1f%%, max %.1f%%); without readahead median %.1f%% (min %.1f%%, max %.1f%%)\n",
			rounds, 100*median(withRA), 100*slices.Min(withRA), 100*slices.Max(withRA),
			100*median(withoutRA), 100*slices.Min(withoutRA), 100*slices.Max(withoutRA))
	}
	if !skipAug {
		if _, err := epoch("quasi-random epoch, cold, readahead, two augmented float views", 0, true); err != nil {
			return err
		}
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// write packs n smooth synthetic 32×32 images (lz4 compresses them about
// as much as natural images).
// codec and chunkSize are the -codec and -chunk flags: how a file this
// program writes is stored.
var (
	codec     string
	chunkSize int
)

func write(path string, n int) error {
	w, err := format.Create(path, format.Schema{Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		&format.WriterOptions{Codec: codec, ChunkSize: chunkSize})
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

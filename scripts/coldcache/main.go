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
//  2. in an order shuffled per round, each followed by a sequential read:
//     one QuasiRandom epoch of the loader with readahead (the default),
//     views = the whole image (NoAugment, uint8 crops), so that the
//     loader's I/O path, not augmentation, is measured; the same epoch
//     without readahead; every chunk read whole in a shuffled order, 8 at
//     a time, nothing done with the bytes (the storage's rate for the
//     loader's access pattern).
//
// Each rate is given as a percentage of the mean of the two sequential
// reads around it; at the end, the medians of every kind of measurement
// and their ratios. After the rounds, a normal two-view augmented epoch
// with readahead, for context.
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
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
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
	flag.IntVar(&readaheadBytes, "readahead", 0, "loader readahead in stored bytes for the readahead epochs (0 = loader.DefaultReadahead)")
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
	// Each round runs three measurements in a shuffled order (seeded by the
	// round), a sequential read after each, and compares each with the two
	// reads around it: on this shared virtual disk the sequential rate
	// changes up to 4× within a minute, and the host's cache keeps some
	// memory of the previous read (with a fixed order, the read right after
	// a loader epoch with readahead ran at 3 GB/s and the one after an
	// epoch without at 0.8 GB/s, round after round).
	type measure struct {
		name          string
		run           func(round int) (float64, error)
		rates, ratios []float64 // MB/s; against the reads around them
	}
	bare := &measure{name: "the chunks read whole in a shuffled order (no loader)",
		run: func(r int) (float64, error) { return randomChunks(path, int64(r)) }}
	withRA := &measure{name: "loader with readahead",
		run: func(int) (float64, error) { return epoch("quasi-random epoch, cold, readahead", readaheadBytes, false) }}
	withoutRA := &measure{name: "loader without readahead",
		run: func(int) (float64, error) { return epoch("quasi-random epoch, cold, no readahead", -1, false) }}
	prev, err := seqRate("sequential read, cold")
	if err != nil {
		return err
	}
	var seqAll []float64 // the reads after each measurement
	for r := 0; r < rounds; r++ {
		ms := []*measure{bare, withRA, withoutRA}
		rand.New(rand.NewPCG(uint64(r), 11)).Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		for _, m := range ms {
			rate, err := m.run(r)
			if err != nil {
				return err
			}
			next, err := seqRate("sequential read, cold")
			if err != nil {
				return err
			}
			ratio := 2 * rate / (prev + next)
			fmt.Printf("round %d: %.1f%% of the mean of the reads around it (%.0f, %.0f MB/s)\n", r+1, 100*ratio, prev, next)
			m.rates, m.ratios = append(m.rates, rate), append(m.ratios, ratio)
			seqAll = append(seqAll, next)
			prev = next
		}
	}
	if rounds > 0 {
		fmt.Printf("medians of %d rounds: sequential read %.0f MB/s (%.0f–%.0f), shuffled whole chunks %.0f MB/s (%.0f–%.0f), loader with readahead %.0f MB/s (%.0f–%.0f)\n",
			rounds, median(seqAll), slices.Min(seqAll), slices.Max(seqAll), median(bare.rates), slices.Min(bare.rates), slices.Max(bare.rates),
			median(withRA.rates), slices.Min(withRA.rates), slices.Max(withRA.rates))
		fmt.Printf("loader with readahead against the medians: %.1f%% of the sequential read, %.1f%% of the shuffled whole-chunk read\n",
			100*median(withRA.rates)/median(seqAll), 100*median(withRA.rates)/median(bare.rates))
		for _, m := range []*measure{bare, withRA, withoutRA} {
			fmt.Printf("%s against the sequential reads around it: median %.1f%% (min %.1f%%, max %.1f%%)\n",
				m.name, 100*median(m.ratios), 100*slices.Min(m.ratios), 100*slices.Max(m.ratios))
		}
	}
	if !skipAug {
		if _, err := epoch("quasi-random epoch, cold, readahead, two augmented float views", 0, true); err != nil {
			return err
		}
	}
	return nil
}

// randomChunks reads every chunk of the file at path whole, in a shuffled
// order, with 8 concurrent preads (the loader's readahead concurrency), and
// returns the rate in MB/s of the file: what the storage gives the loader's
// access pattern before the loader does any work.
func randomChunks(path string, seed int64) (float64, error) {
	r, err := format.Open(path, nil)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if err := evict(path); err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	order := rand.New(rand.NewPCG(uint64(seed), 7)).Perm(r.NumChunks())
	t := time.Now()
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for c := range jobs {
				ci := r.Chunk(c)
				if cap(buf) < ci.Stored {
					buf = make([]byte, ci.Stored)
				}
				if _, err := f.ReadAt(buf[:ci.Stored], ci.Offset); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, c := range order {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	rate := float64(r.Size()) / 1e6 / time.Since(t).Seconds()
	fmt.Printf("chunks read whole in a shuffled order, cold: %.0f MB/s\n", rate)
	return rate, nil
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
	// readaheadBytes is the -readahead flag.
	readaheadBytes int
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

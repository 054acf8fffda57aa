// Package pack turns a source dataset (CIFAR binaries, IDX files, image
// folders) into a packed file: parallel loading and decoding, samples handed
// to the format writer in storage order, bad images reported or skipped.
package pack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/progress"
	"github.com/tsimcne/tsimcne-go/source"
)

// Options configures Pack. The zero value packs in dataset order with lz4,
// default chunks and one worker per CPU, failing on the first bad image.
type Options struct {
	// Codec is "none", "lz4" or "zstd"; "" picks the format's default
	// (lz4 for raw pixels, none for encoded images).
	Codec string
	// ChunkSize is the target uncompressed chunk size; 0 = format default.
	ChunkSize int
	// Workers loads and decodes samples in parallel; 0 = GOMAXPROCS.
	Workers int
	// Shuffle stores samples in a random order drawn from Seed, so that every
	// chunk mixes classes; dataset indices are unaffected.
	Shuffle bool
	Seed    uint64
	// SkipBad skips samples that fail to load and lists them in the report,
	// instead of failing the whole pack.
	SkipBad bool
	// KeepEncoded must match the source.Options the dataset was opened
	// with: the file then stores encoded images.
	KeepEncoded bool
	// Progress receives a progress bar or lines; nil is silent.
	Progress io.Writer
	// CreatedBy is recorded in the schema.
	CreatedBy string
}

// Skipped is a sample left out with SkipBad.
type Skipped struct {
	Index int    // position in the source's dataset order
	Name  string // the file or record
	Err   error  // why
}

// Report says what Pack did.
type Report struct {
	Samples   int       // samples written
	Skipped   []Skipped // with SkipBad, every sample left out, in dataset order
	InBytes   int64     // image bytes read from the source (pixels or encoded files)
	OutBytes  int64     // size of the packed file
	Elapsed   time.Duration
	Chunks    int
	SourceLen int
}

// MBPerSecond is the packing throughput over source image bytes.
func (r *Report) MBPerSecond() float64 {
	return float64(r.InBytes) / 1e6 / r.Elapsed.Seconds()
}

// Permutation returns the storage order Pack uses for n samples and seed:
// position p stores source sample perm[p].
func Permutation(n int, seed uint64) []int {
	return rand.New(rand.NewPCG(seed, 0x7453434e45)).Perm(n)
}

// Schema builds the packed file's schema for a dataset.
func Schema(ds source.Dataset, paths []string, keepEncoded bool, createdBy string) format.Schema {
	s := format.Schema{
		Image:     format.ImageSpec{Encoded: keepEncoded},
		Classes:   ds.Classes(),
		HasNames:  true,
		Source:    format.Source{Kind: ds.Kind(), Description: ds.Description(), Paths: paths},
		CreatedBy: createdBy,
	}
	if c2 := ds.Classes2(); len(c2) > 0 {
		s.Label2Name, s.Classes2 = "coarse_label", c2
	}
	return s
}

type slot struct {
	s    source.Sample
	err  error
	done chan struct{}
}

// Pack writes ds to out. Nothing appears at out unless it succeeds; on
// failure the error names the bad sample.
func Pack(ctx context.Context, ds source.Dataset, paths []string, out string, opt Options) (*Report, error) {
	start := time.Now()
	n := ds.Len()
	if n == 0 {
		return nil, fmt.Errorf("%s: the source holds no images", ds.Description())
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var perm []int
	if opt.Shuffle {
		perm = Permutation(n, opt.Seed)
	}
	at := func(p int) int {
		if perm == nil {
			return p
		}
		return perm[p]
	}
	w, err := format.Create(out, Schema(ds, paths, opt.KeepEncoded, opt.CreatedBy), &format.WriterOptions{
		Codec: opt.Codec, ChunkSize: opt.ChunkSize, Workers: workers,
		Shuffled: opt.Shuffle, ShuffleSeed: opt.Seed,
	})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()

	// Workers fill slots; the loop below consumes them in storage order. A
	// token per slot bounds the positions in flight to len(slots), so slot
	// p%K is free again before position p+K is handed out.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k := 4 * workers
	slots := make([]slot, k)
	for i := range slots {
		slots[i].done = make(chan struct{}, 1)
	}
	tokens := make(chan struct{}, k)
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		for p := range n {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	finished := make(chan struct{})
	for range workers {
		go func() {
			defer func() { finished <- struct{}{} }()
			for p := range jobs {
				sl := &slots[p%k]
				sl.s.Name = "" // a failed Load may not set it; never report a stale one
				sl.err = ds.Load(at(p), &sl.s)
				sl.done <- struct{}{}
			}
		}()
	}
	waitWorkers := func() {
		cancel()
		for range jobs { // drain so the producer exits
		}
		for range workers {
			<-finished
		}
	}

	rep := &Report{SourceLen: n}
	bar := progress.New(opt.Progress, "pack", int64(n), "images")
	var fs format.Sample
	var loopErr error
	for p := range n {
		sl := &slots[p%k]
		select {
		case <-sl.done:
		case <-ctx.Done():
			loopErr = ctx.Err()
		}
		if loopErr != nil {
			break
		}
		i := at(p)
		if sl.err != nil {
			if !opt.SkipBad {
				loopErr = fmt.Errorf("sample %d: %w", i, sl.err)
				break
			}
			rep.Skipped = append(rep.Skipped, Skipped{Index: i, Name: sl.s.Name, Err: sl.err})
		} else {
			toFormat(&sl.s, i, &fs)
			if err := w.Add(&fs); err != nil {
				loopErr = err
				break
			}
			rep.InBytes += int64(len(fs.Data))
		}
		<-tokens
		bar.Add(1)
	}
	waitWorkers()
	if loopErr != nil {
		if errors.Is(loopErr, context.Canceled) && ctx.Err() != nil {
			loopErr = fmt.Errorf("pack interrupted: %w", loopErr)
		}
		return nil, loopErr
	}
	rep.Samples = w.Len()
	if rep.Samples == 0 {
		return nil, fmt.Errorf("%s: every image failed to load; nothing to pack", ds.Description())
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	ok = true
	bar.Finish()
	slices.SortFunc(rep.Skipped, func(a, b Skipped) int { return cmp.Compare(a.Index, b.Index) })
	rep.Elapsed = time.Since(start)
	rep.Chunks = w.NumChunks()
	if st, err := os.Stat(out); err == nil {
		rep.OutBytes = st.Size()
	}
	return rep, nil
}

func toFormat(s *source.Sample, i int, f *format.Sample) {
	*f = format.Sample{Index: i, Label: s.Label, Label2: s.Label2, Height: s.Height, Width: s.Width,
		Channels: s.Channels, Data: s.Pixels, Name: s.Name}
	if s.Encoded != nil {
		f.Data, f.Encoded = s.Encoded, true
		f.Format, _ = format.ParseImageFormat(s.Format)
	}
}

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
	// Append adds the dataset's samples to the existing packed file at out
	// (format.Append): old samples keep their indices, new ones follow in
	// dataset order, classes merge by name (new names are added at the
	// end).
	Append bool
	// Resume is an Append that continues an interrupted pack of the same
	// source (the file's recorded source paths must equal paths): samples
	// whose name the file already holds are skipped without being loaded.
	// It needs names in the file and a dataset that can name a sample
	// without loading it (folders, WebDataset, Parquet, Arrow).
	Resume bool
	// CommitEvery, when > 0, commits the file after every CommitEvery
	// samples written (the first part with Create, the others with
	// Append), so that an interrupted pack keeps what it committed and
	// Append continues it. Each commit copies the file written so far
	// (in the kernel; a reflink where the file system has them). Not with
	// Shuffle, whose storage order spans the whole dataset.
	CommitEvery int
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
	// Existing is the number of samples the file held before an Append, and
	// AlreadyPacked the source samples skipped because the file had them.
	Existing, AlreadyPacked int
	// Commits counts the commits made (1 without CommitEvery).
	Commits int
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

// Namer is implemented by datasets that can name sample i without loading
// it; Append uses it to skip samples the file already holds.
type Namer interface {
	Name(i int) string
}

// Pack writes ds to out. Nothing appears at out unless it succeeds (with
// CommitEvery: nothing beyond the last commit); on failure the error names
// the bad sample.
func Pack(ctx context.Context, ds source.Dataset, paths []string, out string, opt Options) (*Report, error) {
	start := time.Now()
	srcN := ds.Len()
	if srcN == 0 {
		return nil, fmt.Errorf("pack: %s: the source holds no images", ds.Description())
	}
	if opt.CommitEvery > 0 && opt.Shuffle {
		return nil, errors.New("pack: commit-every and shuffle exclude each other (a shuffle's storage order spans the whole dataset)")
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	open := func(appending bool) (*format.Writer, error) {
		if appending {
			return format.Append(out, &format.WriterOptions{Codec: opt.Codec, Workers: workers})
		}
		return format.Create(out, Schema(ds, paths, opt.KeepEncoded, opt.CreatedBy), &format.WriterOptions{
			Codec: opt.Codec, ChunkSize: opt.ChunkSize, Workers: workers,
			Shuffled: opt.Shuffle, ShuffleSeed: opt.Seed,
		})
	}
	if opt.Resume {
		// The same command starts the pack and continues it.
		if _, err := os.Stat(out); errors.Is(err, os.ErrNotExist) {
			opt.Resume = false
		} else {
			opt.Append = true
		}
	}
	w, err := open(opt.Append)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	// src lists the source samples to write, in dataset order; remap turns
	// a source label into the file's; base is the first new dataset index.
	src, remap, base, skippedOld, err := plan(ds, paths, w, opt)
	if err != nil {
		return nil, err
	}
	n := len(src)
	if n == 0 { // an append whose every sample is there: done already
		w.Abort()
		ok = true
		return &Report{SourceLen: srcN, Existing: base, AlreadyPacked: skippedOld, Elapsed: time.Since(start)}, nil
	}
	var perm []int
	if opt.Shuffle {
		perm = Permutation(n, opt.Seed)
	}
	// pos(p) is the position in src of the sample stored p-th.
	pos := func(p int) int {
		if perm == nil {
			return p
		}
		return perm[p]
	}
	at := func(p int) int { return src[pos(p)] }

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

	rep := &Report{SourceLen: srcN, Existing: base, AlreadyPacked: skippedOld, Commits: 1}
	bar := progress.New(opt.Progress, "pack", int64(n), "images")
	sinceCommit := 0
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
				loopErr = fmt.Errorf("pack: sample %d: %w", i, sl.err)
				break
			}
			rep.Skipped = append(rep.Skipped, Skipped{Index: i, Name: sl.s.Name, Err: sl.err})
		} else {
			toFormat(&sl.s, base+pos(p), &fs)
			fs.Label = remap[fs.Label]
			if err := w.Add(&fs); err != nil {
				loopErr = err
				break
			}
			rep.InBytes += int64(len(fs.Data))
			rep.Samples++
			if sinceCommit++; opt.CommitEvery > 0 && sinceCommit == opt.CommitEvery && p+1 < n {
				// Commit what is written and carry on appending. The
				// samples in flight stay in their slots meanwhile.
				sinceCommit = 0
				if err := w.Close(); err != nil {
					loopErr = err
					break
				}
				rep.Commits++
				if w, err = open(true); err != nil {
					loopErr = err
					break
				}
			}
		}
		<-tokens
		bar.Add(1)
	}
	waitWorkers()
	if loopErr != nil {
		if errors.Is(loopErr, context.Canceled) && ctx.Err() != nil {
			loopErr = fmt.Errorf("pack: interrupted: %w", loopErr)
		}
		return nil, loopErr
	}
	if rep.Samples == 0 {
		return nil, fmt.Errorf("pack: %s: every image failed to load; nothing to pack", ds.Description())
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

// plan chooses the source samples to write and the label mapping. For a
// new file: every sample, labels unchanged. For an append: every sample
// (Resume: those whose name the file lacks), labels mapped by class name
// onto the file's class list, which gains the new names.
func plan(ds source.Dataset, paths []string, w *format.Writer, opt Options) (src []int, remap []int32, base, skipped int, err error) {
	n := ds.Len()
	classes := ds.Classes()
	remap = make([]int32, len(classes))
	for i := range remap {
		remap[i] = int32(i)
	}
	if !opt.Append {
		src = make([]int, n)
		for i := range src {
			src[i] = i
		}
		return src, remap, 0, 0, nil
	}
	sc := w.Schema()
	base = w.Len()
	if sc.Image.Encoded != opt.KeepEncoded {
		want := "raw pixels (leave out --keep-encoded)"
		if sc.Image.Encoded {
			want = "encoded images (use --keep-encoded)"
		}
		return nil, nil, 0, 0, fmt.Errorf("pack: the file stores %s", want)
	}
	if c2 := ds.Classes2(); (sc.Label2Name != "") != (len(c2) > 0) || (len(c2) > 0 && !slices.Equal(c2, sc.Classes2)) {
		return nil, nil, 0, 0, fmt.Errorf("pack: the source's secondary classes %v differ from the file's %v", c2, sc.Classes2)
	}
	merged := slices.Clone(sc.Classes)
	idx := make(map[string]int32, len(merged))
	for i, c := range merged {
		idx[c] = int32(i)
	}
	for i, c := range classes {
		j, ok := idx[c]
		if !ok {
			j = int32(len(merged))
			merged = append(merged, c)
			idx[c] = j
		}
		remap[i] = j
	}
	if err := w.SetClasses(merged); err != nil {
		return nil, nil, 0, 0, err
	}
	have := map[string]bool{}
	namer, canName := ds.(Namer)
	if opt.Resume {
		switch {
		case !slices.Equal(paths, sc.Source.Paths):
			return nil, nil, 0, 0, fmt.Errorf("pack: resume continues the pack of %q, not of %q (use append to add another source)",
				sc.Source.Paths, paths)
		case !canName || !sc.HasNames:
			return nil, nil, 0, 0, fmt.Errorf("pack: cannot resume a pack of %s: its samples cannot be matched by name (pack it again, or append)", ds.Kind())
		}
		for _, name := range w.Names() {
			have[name] = true
		}
	}
	for i := range n {
		if opt.Resume && have[namer.Name(i)] {
			skipped++
			continue
		}
		src = append(src, i)
	}
	return src, remap, base, skipped, nil
}

func toFormat(s *source.Sample, i int, f *format.Sample) {
	*f = format.Sample{Index: i, Label: s.Label, Label2: s.Label2, Height: s.Height, Width: s.Width,
		Channels: s.Channels, Data: s.Pixels, Name: s.Name}
	if s.Encoded != nil {
		f.Data, f.Encoded = s.Encoded, true
		f.Format, _ = format.ParseImageFormat(s.Format)
	}
}

// Package loader turns a dataset into batches of t-SimCNE view pairs: a
// deterministic visiting order (Order), then a goroutine pipeline that reads
// each sample, decodes it once, cuts both augmented views from it and writes
// them into preallocated batch slots that the caller hands back with Release.
//
// # Batch layout (the contract with the engine)
//
// A batch of N images has Views·N rows (Views = 2 for training). Row r = v·N + i
// is view v of image i: all first views, then all second views, so rows i
// and i+N are a positive pair (docs/ALGORITHM.md, "Loss"). Each row is one H×W×3 image, NHWC,
// float32 in [0, 1] (or normalised, if the augmentation asks for it):
//
//	X[((r·H + y)·W + x)·3 + c]
//
// Labels[i] and Indices[i] (the dataset index, for putting outputs back in
// dataset order) belong to image i, and Params[r] are the augmentation
// parameters drawn for row r. With Output = Crops8 the rows are in X8
// instead, as uint8 crops (geometry applied, colour not), for a GPU that
// applies augment's colour operations itself using Params. With Output =
// Source8, X8 holds one uint8 region per image instead (see Source8), for a
// GPU that does the whole augmentation. Gray sources are replicated to 3
// channels.
//
// # Determinism
//
// A view depends only on (seed, epoch, dataset index, view) and the
// visiting order only on (seed, epoch, rank, world, mode, window), so batches
// are bit-identical whatever the number of workers and however the
// goroutines are scheduled.
//
// # Memory
//
// The loader allocates Slots batch buffers once (New) and nothing per batch
// after warm-up: per worker one Augmenter and, for encoded images, one decode
// buffer. What else stays alive is the source's business: a packed file
// keeps at most its reader's CacheBytes of decompressed chunks. For files
// larger than memory use QuasiRandom order and size the cache to hold the
// window plus the chunks of the images in flight:
//
//	CacheBytes ≥ (Window + Slots·BatchSize / imagesPerChunk + Workers) · chunk size
//
// Then every chunk is decompressed about once per epoch (for a file 11× the
// cache, 267 loads for 267 chunks in TestQuasiRandomMemoryBound, against
// about 2,200 in full-shuffle order with the same cache). A file written in class order makes
// quasi-random batches clump by class (each batch draws from about Window
// chunks): write it shuffled (format.WriterOptions.Shuffled) or widen the
// window.
//
// # Lifecycle
//
// New → Epoch → Next … (io.EOF) → Epoch … → Close. One epoch runs at a time;
// an iterator abandoned before io.EOF keeps its goroutines until its Close
// (or the Loader's). Close must not race with Next.
package loader

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/augment"
)

// Output selects what the batches carry.
type Output uint8

const (
	// Floats: finished views as float32 NHWC in X.
	Floats Output = iota
	// Crops8: uint8 NHWC crops (crop, resize, flip and rotation applied) in
	// X8 plus the drawn Params, for colour operations on a GPU.
	Crops8
	// Source8: per image, the pixels both views' crops need (the union of
	// the crop boxes, or the whole image for NoAugment) as uint8 RGB in X8,
	// image i at X8[i·SrcH·SrcW·3:] with rows of SrcW·3 bytes, the region
	// at its top-left corner; Params' crop boxes are relative to that
	// corner. A GPU does crop, resize, flip and colour from them. Rotation
	// is not supported (its crops read outside their boxes).
	Source8
)

// Options configures a Loader. Zero values pick the defaults noted.
type Options struct {
	BatchSize int  // images per batch (each gives Views rows); 0 = 512
	Views     int  // views per image: 2 for training, 1 for embedding; 0 = 2
	DropLast  bool // drop the last partial batch (kept by default, as the reference)
	// Workers is the number of goroutines that read, decode and augment;
	// 0 = GOMAXPROCS. When the model trains on the same CPU, fewer leave it
	// room: at 32×32 one worker makes about 30,000 image pairs per second.
	Workers int
	// Slots is the number of batch buffers: batches being filled plus those
	// the caller holds. 0 = 3. A caller that holds k batches at once needs
	// Slots > k (with every slot held, Next fails instead of waiting forever).
	Slots int
	// ItemSize is the number of images a worker takes at a time; 0 = 32.
	ItemSize int

	Seed        uint64
	Rank, World int // data-parallel position; 0, 0 = single process
	// EvenShards truncates every rank's epoch to the smallest rank's length,
	// so that all ranks take the same number of steps (data-parallel training
	// deadlocks otherwise). Shards differ by at most one sample in Shuffle
	// and Sequential order but by up to one chunk in QuasiRandom order; the
	// few samples dropped change from epoch to epoch.
	EvenShards bool
	Order      Mode   // Shuffle (default), QuasiRandom or Sequential
	Window     int    // QuasiRandom window in chunks; 0 = DefaultWindow
	Output     Output // Floats (default), Crops8 or Source8
	// SourceH, SourceW bound the region an image contributes with Output
	// = Source8 (the slot size); 0, 0 = the size of sample 0, which fits
	// every image of a fixed-size source. A larger region is an error
	// naming the sample.
	SourceH, SourceW int

	// BatchShards shards every global batch instead of the epoch: the
	// epoch's one-process order (any Mode) is cut into global batches of
	// World·BatchSize images and rank r takes the r-th of World equal parts
	// of each (of the last, shorter one too; a last batch of fewer than
	// World images is dropped). Together the ranks' k-th batches are exactly
	// the one-process k-th batch at batch size World·BatchSize, which makes
	// data-parallel training equal to one process.
	BatchShards bool

	// Augment is the view augmentation; a zero value (OutH == 0) means
	// augment.DefaultConfig at the source's image size (which must then be
	// fixed). NoAugment turns it off (embedding): every view is the whole
	// image resized to OutH×OutW, unflipped and uncoloured, still normalised
	// if Augment.Normalize is set.
	Augment   augment.Config
	NoAugment bool

	Allocator Allocator // batch memory; nil = HeapAllocator

	// Readahead is how many stored bytes a Sequential or QuasiRandom epoch
	// over a packed file fetches ahead of the images being handed out, from
	// a few goroutines, so that a file larger than memory streams from disk
	// instead of stalling the workers on page faults; 0 = DefaultReadahead,
	// negative = off. Shuffle order touches every chunk at once and does
	// not read ahead.
	Readahead int

	// GoJPEG decodes JPEG samples with Go's image/jpeg even when
	// libjpeg-turbo loads (JPEGDecoder says which one runs).
	GoJPEG bool
}

// Batch is one batch of images and their views; see the package comment for
// the layout. It belongs to the caller until Release.
type Batch struct {
	Epoch, Step int // Step counts batches from the start of the rank's epoch
	Pos         int // position of the first image in the rank's visiting order
	N           int // images in this batch (≤ BatchSize; less for the last one)
	Views       int
	H, W        int // view size; rows are H×W×3

	X  []float32 // Floats: Views·N·H·W·3 values
	X8 []uint8   // Crops8: Views·N·H·W·3 bytes; Source8: N·SrcH·SrcW·3
	// SrcH, SrcW are the Source8 slot size of one image (0 otherwise).
	SrcH, SrcW int
	Params     []augment.Params // Views·N, row order
	Labels     []int32          // N
	Indices    []int32          // N dataset indices

	slot *slot
}

// Release hands the batch's memory back to the loader. The batch must not be
// used afterwards. Releasing twice is a no-op.
func (b *Batch) Release() {
	s := b.slot
	if s == nil || !s.held.CompareAndSwap(true, false) {
		return
	}
	s.l.held.Add(-1)
	s.l.free <- s
}

// slot is one preallocated batch buffer and the bookkeeping of its filling.
type slot struct {
	l   *Loader
	b   Batch
	raw []byte // the allocator's buffer behind X or X8
	// rawParams is the allocator's buffer behind Params (Crops8, Source8).
	rawParams []byte
	pending   atomic.Int32  // work items not yet finished
	done      chan struct{} // receives once when pending reaches 0
	errMu     sync.Mutex
	err       error
	held      atomic.Bool // handed to the caller, not yet released
}

func (s *slot) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// Loader produces epochs of batches from a Source.
type Loader struct {
	src         Source
	chunks      [][]uint32 // QuasiRandom: dataset indices per chunk, read once
	opt         Options
	aug         augment.Config
	viewLen     int
	slots       []*slot
	free        chan *slot
	mu          sync.Mutex
	active      *Iter
	workerState []*worker
	closed      bool
	held        atomic.Int32 // batches handed out and not yet released
	prepH       int          // image size the workers' augmenters are prepared for
	prepW       int
	srcH, srcW  int       // Source8 slot size of one image
	closer      io.Closer // the file OpenFile opened, closed with the Loader
}

// New checks the options, reads the chunk layout when needed and allocates
// the batch slots.
func New(src Source, opt Options) (*Loader, error) {
	if src == nil {
		return nil, errors.New("loader: nil source")
	}
	if opt.BatchSize == 0 {
		opt.BatchSize = 512
	}
	if opt.Views == 0 {
		opt.Views = 2
	}
	if opt.Workers == 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Slots == 0 {
		opt.Slots = 3
	}
	if opt.ItemSize == 0 {
		opt.ItemSize = 32
	}
	if opt.Allocator == nil {
		opt.Allocator = HeapAllocator{}
	}
	switch {
	case opt.BatchSize < 0, opt.Views < 1, opt.Views > 2, opt.Workers < 0, opt.Slots < 1, opt.ItemSize < 1:
		return nil, fmt.Errorf("loader: invalid options (batch %d, views %d, workers %d, slots %d, item %d)",
			opt.BatchSize, opt.Views, opt.Workers, opt.Slots, opt.ItemSize)
	case opt.Output > Source8:
		return nil, fmt.Errorf("loader: unknown output %d", opt.Output)
	case opt.Order > Sequential:
		return nil, fmt.Errorf("loader: unknown order mode %d", opt.Order)
	}
	if w := max(opt.World, 1); opt.Rank < 0 || opt.Rank >= w {
		return nil, fmt.Errorf("loader: rank %d outside a world of %d", opt.Rank, w)
	}
	cfg := opt.Augment
	if cfg.OutH == 0 {
		h, w, err := fixedSize(src)
		if err != nil {
			return nil, err
		}
		cfg = augment.DefaultConfig(h, w)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Loader{src: src, opt: opt, aug: cfg, viewLen: cfg.OutH * cfg.OutW * 3}
	if opt.Output == Source8 {
		if cfg.RotationDeg > 0 && !opt.NoAugment {
			return nil, errors.New("loader: Source8 output does not support rotation (a rotated crop reads outside its box)")
		}
		l.srcH, l.srcW = opt.SourceH, opt.SourceW
		if l.srcH <= 0 || l.srcW <= 0 {
			h, w, err := fixedSize(src)
			if err != nil {
				return nil, err
			}
			l.srcH, l.srcW = h, w
		}
	}
	if src.Len() > 0 { // raw images of one size: workers prepare for it
		if s, err := src.Get(0); err == nil && !s.Encoded && s.Height > 0 && s.Width > 0 {
			l.prepH, l.prepW = s.Height, s.Width
		}
	}
	if opt.Order == QuasiRandom {
		c, ok := src.(Chunked)
		if !ok {
			return nil, errors.New("loader: quasi-random order needs a chunked source")
		}
		l.chunks = make([][]uint32, c.NumChunks())
		for i := range l.chunks {
			l.chunks[i] = c.ChunkSamples(i)
		}
	}
	if err := l.allocSlots(); err != nil {
		l.freeSlots()
		return nil, err
	}
	return l, nil
}

// fixedSize finds the image size of a source whose images all have the same
// size, from its first sample.
func fixedSize(src Source) (h, w int, err error) {
	if src.Len() == 0 {
		return 0, 0, errors.New("loader: empty source and no Augment.OutH/OutW to size the views")
	}
	s, err := src.Get(0)
	if err != nil {
		return 0, 0, fmt.Errorf("loader: sizing views from sample 0: %w", err)
	}
	if s.Height <= 0 || s.Width <= 0 {
		return 0, 0, errors.New("loader: sample 0 has no size; set Options.Augment")
	}
	return s.Height, s.Width, nil
}

func (l *Loader) allocSlots() error {
	rows := l.opt.Views * l.opt.BatchSize
	n := rows * l.viewLen
	if l.opt.Output == Source8 {
		n = l.opt.BatchSize * l.srcH * l.srcW * 3
	}
	l.free = make(chan *slot, l.opt.Slots)
	for range l.opt.Slots {
		s := &slot{l: l, done: make(chan struct{}, 1)}
		var err error
		if l.opt.Output == Floats {
			if s.raw, err = l.opt.Allocator.Alloc(4 * n); err == nil {
				s.b.X, err = asFloat32(s.raw)
			}
		} else {
			s.raw, err = l.opt.Allocator.Alloc(n)
			s.b.X8 = s.raw
		}
		if err != nil {
			return fmt.Errorf("loader: allocating a %d-byte batch slot: %w", len(s.raw), err)
		}
		if len(s.raw) < n {
			return fmt.Errorf("loader: allocator returned %d bytes, want %d", len(s.raw), n)
		}
		if l.opt.Output == Floats {
			s.b.Params = make([]augment.Params, rows)
		} else { // the GPU copies them too: from the allocator's (pinned) memory
			pb := rows * int(unsafe.Sizeof(augment.Params{}))
			if s.rawParams, err = l.opt.Allocator.Alloc(pb); err == nil {
				s.b.Params, err = asParams(s.rawParams)
			}
			if err == nil && len(s.b.Params) < rows {
				err = fmt.Errorf("allocator returned %d bytes, want %d", len(s.rawParams), pb)
			}
			if err != nil {
				return fmt.Errorf("loader: allocating the parameters of a batch slot: %w", err)
			}
		}
		s.b.Labels = make([]int32, l.opt.BatchSize)
		s.b.Indices = make([]int32, l.opt.BatchSize)
		s.b.slot = s
		l.slots = append(l.slots, s)
		l.free <- s
	}
	return nil
}

func (l *Loader) freeSlots() {
	for _, s := range l.slots {
		if s.raw != nil {
			l.opt.Allocator.Free(s.raw)
			s.raw, s.b.X, s.b.X8 = nil, nil, nil
		}
		if s.rawParams != nil {
			l.opt.Allocator.Free(s.rawParams)
			s.rawParams, s.b.Params = nil, nil
		}
	}
}

// AugmentConfig returns the augmentation in use.
func (l *Loader) AugmentConfig() augment.Config { return l.aug }

// Order returns this rank's visiting order of an epoch (truncated with
// EvenShards).
func (l *Loader) Order(epoch int) ([]int32, error) {
	o := OrderOptions{Seed: l.opt.Seed, Epoch: epoch, Rank: l.opt.Rank, World: l.opt.World,
		Mode: l.opt.Order, Window: l.opt.Window}
	if l.opt.BatchShards && l.opt.World > 1 {
		o.Rank, o.World = 0, 1
		global, err := Order(l.src.Len(), l.chunks, o)
		if err != nil {
			return nil, err
		}
		return batchShard(global, l.opt.BatchSize, l.opt.Rank, l.opt.World), nil
	}
	order, err := Order(l.src.Len(), l.chunks, o)
	if err != nil || !l.opt.EvenShards || l.opt.World <= 1 {
		return order, err
	}
	// Every rank can compute every other rank's order: Order is pure.
	shortest := len(order)
	for r := 0; r < l.opt.World; r++ {
		if r == l.opt.Rank {
			continue
		}
		o.Rank = r
		other, err := Order(l.src.Len(), l.chunks, o)
		if err != nil {
			return nil, err
		}
		shortest = min(shortest, len(other))
	}
	return order[:shortest:shortest], nil
}

// Steps returns the number of batches of an epoch of n images.
func (l *Loader) Steps(n int) int {
	if l.opt.DropLast {
		return n / l.opt.BatchSize
	}
	return (n + l.opt.BatchSize - 1) / l.opt.BatchSize
}

// Close stops a running epoch and frees the batch memory. Batches still held
// become invalid.
func (l *Loader) Close() error {
	l.mu.Lock()
	it := l.active
	l.closed = true
	l.mu.Unlock()
	if it != nil {
		it.Close()
	}
	l.freeSlots()
	if l.closer != nil {
		err := l.closer.Close()
		l.closer = nil
		return err
	}
	return nil
}

func errIndex(i, n int) error { return fmt.Errorf("loader: sample %d out of range 0..%d", i, n-1) }

// batchShard is rank's part of every global batch of world·b images of
// order (Options.BatchShards).
func batchShard(order []int32, b, rank, world int) []int32 {
	g := world * b
	out := make([]int32, 0, (len(order)+world-1)/world)
	for k := 0; k < len(order); k += g {
		l := min(g, len(order)-k)
		if l < world {
			break
		}
		out = append(out, order[k+rank*l/world:k+(rank+1)*l/world]...)
	}
	return out
}

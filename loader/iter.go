package loader

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"sync"
	"sync/atomic"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// Iter delivers the batches of one epoch in order. Its methods must be called
// from one goroutine.
type Iter struct {
	l      *Loader
	ctx    context.Context
	cancel context.CancelFunc
	done   <-chan struct{} // ctx.Done(), fetched once: the first call allocates
	epoch  int
	order  []int32 // the rank's order from the start position on
	first  int     // position of order[0] in the rank's full order
	steps  int
	next   int // batches delivered

	ready chan *slot    // slots in batch order, handed from dispatcher to Next
	work  chan workItem // image ranges for the workers
	wg    sync.WaitGroup
	cur   *slot // slot Next is waiting on, returned to the free list on failure
	err   error // sticky: io.EOF or the first failure
	once  sync.Once

	// Readahead (readahead.go): the position in order of the batch being
	// dispatched, and a nudge each time it moves.
	handed atomic.Int64
	moved  chan struct{}
}

type workItem struct {
	s      *slot
	lo, hi int // image range within the batch
}

// worker is the per-goroutine state, kept across epochs so that its scratch
// buffers are allocated once.
type worker struct {
	aug *augment.Augmenter
	dec decoder
	tj  *turbojpeg.Decoder // libjpeg-turbo handle, made at the first JPEG (turbo.go)
}

// Epoch starts epoch epoch at position pos of this rank's visiting order
// (0 for a fresh epoch; k·BatchSize resumes before batch k and reproduces the
// uninterrupted run's batches exactly). Only one epoch runs at a time: finish
// it (Next returns io.EOF or an error) or Close it first. Cancelling ctx
// stops the epoch; Next then returns an error wrapping ctx.Err().
func (l *Loader) Epoch(ctx context.Context, epoch, pos int) (*Iter, error) {
	order, err := l.Order(epoch)
	if err != nil {
		return nil, err
	}
	if pos < 0 || pos > len(order) {
		return nil, fmt.Errorf("loader: epoch %d: start position %d outside 0..%d", epoch, pos, len(order))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("loader: Epoch after Close")
	}
	if l.active != nil {
		return nil, fmt.Errorf("loader: epoch %d is still running; Close it first", l.active.epoch)
	}
	workers := l.opt.Workers
	for len(l.workerState) < workers {
		a, err := augment.New(l.aug)
		if err != nil {
			return nil, err
		}
		if l.prepH > 0 {
			a.Prepare(l.prepH, l.prepW)
		}
		l.workerState = append(l.workerState, &worker{aug: a})
	}
	it := &Iter{l: l, epoch: epoch, order: order[pos:], first: pos,
		ready: make(chan *slot, l.opt.Slots), work: make(chan workItem, 2*workers)}
	it.steps = l.Steps(len(it.order))
	it.ctx, it.cancel = context.WithCancel(ctx)
	it.done = it.ctx.Done()
	it.wg.Add(1 + workers)
	if pf, ok := l.src.(Prefetcher); ok && l.opt.Readahead >= 0 && l.opt.Order != Shuffle {
		budget := l.opt.Readahead
		if budget == 0 {
			budget = DefaultReadahead
		}
		it.moved = make(chan struct{}, 1)
		it.wg.Add(1)
		go it.readahead(pf, budget)
	}
	go it.dispatch()
	for i := 0; i < workers; i++ {
		go it.run(l.workerState[i])
	}
	l.active = it
	return it, nil
}

// Steps is the number of batches this iterator delivers.
func (it *Iter) Steps() int { return it.steps }

// dispatch assigns batches to free slots in order and splits them into work
// items. It runs ahead of the consumer by up to Slots batches, which is what
// pipelines work across batch boundaries.
func (it *Iter) dispatch() {
	defer it.wg.Done()
	defer close(it.work)
	l := it.l
	bs, item, views := l.opt.BatchSize, l.opt.ItemSize, l.opt.Views
	for k := 0; k < it.steps; k++ {
		var s *slot
		select {
		case s = <-l.free:
		case <-it.done:
			return
		}
		lo := k * bs
		n := min(bs, len(it.order)-lo)
		if it.moved != nil {
			it.handed.Store(int64(lo))
			select {
			case it.moved <- struct{}{}:
			default:
			}
		}
		b := &s.b
		b.Epoch, b.Step, b.Pos, b.N, b.Views = it.epoch, (it.first+lo)/bs, it.first+lo, n, views
		b.H, b.W = l.aug.OutH, l.aug.OutW
		rows := views * n
		switch l.opt.Output {
		case Floats:
			b.X = b.X[:cap(b.X)][:rows*l.viewLen]
		case Crops8:
			b.X8 = b.X8[:cap(b.X8)][:rows*l.viewLen]
		case Source8:
			b.X8 = b.X8[:cap(b.X8)][:n*l.srcH*l.srcW*3]
			b.SrcH, b.SrcW = l.srcH, l.srcW
		}
		b.Params = b.Params[:cap(b.Params)][:rows]
		b.Labels = b.Labels[:cap(b.Labels)][:n]
		b.Indices = b.Indices[:cap(b.Indices)][:n]
		copy(b.Indices, it.order[lo:lo+n])
		s.err = nil
		select { // a token left by an abandoned epoch
		case <-s.done:
		default:
		}
		items := (n + item - 1) / item
		s.pending.Store(int32(items))
		it.ready <- s // never blocks: ready holds at most Slots slots
		for i := 0; i < items; i++ {
			select {
			case it.work <- workItem{s, i * item, min((i+1)*item, n)}:
			case <-it.done:
				return
			}
		}
	}
}

// run is a worker goroutine.
func (it *Iter) run(w *worker) {
	defer it.wg.Done()
	for {
		select {
		case <-it.done:
			return
		case wi, ok := <-it.work:
			if !ok {
				return
			}
			if err := it.fill(w, wi); err != nil {
				wi.s.fail(err)
			}
			if wi.s.pending.Add(-1) == 0 {
				wi.s.done <- struct{}{}
			}
		}
	}
}

// fill reads, decodes and augments images lo..hi-1 of a batch.
func (it *Iter) fill(w *worker, wi workItem) error {
	l := it.l
	b := &wi.s.b
	vl := l.viewLen
	for j := wi.lo; j < wi.hi; j++ {
		select { // non-blocking check; ctx.Err() would take a mutex per image
		case <-it.done:
			return context.Cause(it.ctx)
		default:
		}
		idx := int(b.Indices[j])
		smp, err := l.src.Get(idx)
		if err != nil {
			return fmt.Errorf("sample %d: %w", idx, err)
		}
		if smp.Encoded { // JPEGs with libjpeg-turbo when it loads (turbo.go)
			if ok, err := it.fillTurbo(w, b, j, idx, smp); err != nil {
				return err
			} else if ok {
				continue
			}
		}
		img, dec, err := w.open(smp)
		if err != nil {
			return fmt.Errorf("sample %d: %w", idx, err)
		}
		h, wd := img.H, img.W
		if dec != nil {
			h, wd = dec.Bounds().Dy(), dec.Bounds().Dx()
		}
		b.Labels[j] = smp.Label
		// Draw every view's parameters first: they depend only on the
		// image size, and their crop boxes say which pixels are needed.
		box := image.Rectangle{}
		for v := 0; v < b.Views; v++ {
			p := &b.Params[v*b.N+j]
			if l.opt.NoAugment {
				*p = augment.Params{CropH: int32(h), CropW: int32(wd), Brightness: 1, Contrast: 1, Saturation: 1}
			} else {
				*p = augment.Draw(&l.aug, augment.ViewKey(l.opt.Seed, it.epoch, idx, v), h, wd)
			}
			r := image.Rect(int(p.Left), int(p.Top), int(p.Left+p.CropW), int(p.Top+p.CropH))
			if p.Angle != 0 { // a rotated crop samples outside its box
				r = image.Rect(0, 0, wd, h)
			}
			box = box.Union(r)
		}
		if l.opt.Output == Source8 {
			if err := it.source8(w, b, j, img, dec, box); err != nil {
				return fmt.Errorf("sample %d: %w", idx, err)
			}
			continue
		}
		if dec != nil {
			img = w.dec.pixels(dec, box) // decoded images: convert the boxes' union only
		} else {
			box = image.Rectangle{} // raw images are used in place
		}
		for v := 0; v < b.Views; v++ {
			row := v*b.N + j
			p := b.Params[row] // made relative to the converted region
			if p.Angle == 0 {
				p.Top -= int32(box.Min.Y)
				p.Left -= int32(box.Min.X)
			}
			if l.opt.Output == Floats {
				err = w.aug.Apply(b.X[row*vl:(row+1)*vl], img, &p)
			} else {
				err = w.crop8(b.X8[row*vl:(row+1)*vl], img, &p, l.aug.OutH, l.aug.OutW)
			}
			if err != nil {
				return fmt.Errorf("sample %d view %d: %w", idx, v, err)
			}
		}
	}
	return nil
}

// source8 writes the region box of image j (raw img, or decoded dec) into
// its Source8 slot as RGB and makes the views' crop boxes relative to it.
func (it *Iter) source8(w *worker, b *Batch, j int, img augment.Image, dec image.Image, box image.Rectangle) error {
	l := it.l
	if dec != nil {
		img = w.dec.pixels(dec, box)
	} else {
		if img.Stride == 0 {
			img.Stride = img.W * img.C
		}
		img.Pix = img.Pix[box.Min.Y*img.Stride+box.Min.X*img.C:]
		img.H, img.W = box.Dy(), box.Dx()
	}
	if img.H > l.srcH || img.W > l.srcW {
		return fmt.Errorf("its views need a %dx%d region (WxH), larger than the %dx%d source slot (loader.Options.SourceW/SourceH)",
			img.W, img.H, l.srcW, l.srcH)
	}
	if img.Stride == 0 {
		img.Stride = img.W * img.C
	}
	slot := b.X8[j*l.srcH*l.srcW*3:]
	for y := 0; y < img.H; y++ {
		dst := slot[y*l.srcW*3 : y*l.srcW*3+img.W*3]
		src := img.Pix[y*img.Stride:]
		if img.C == 3 {
			copy(dst, src[:img.W*3])
			continue
		}
		for x := 0; x < img.W; x++ { // gray: replicate to RGB
			v := src[x]
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	}
	for v := 0; v < b.Views; v++ {
		p := &b.Params[v*b.N+j]
		p.Top -= int32(box.Min.Y)
		p.Left -= int32(box.Min.X)
	}
	return nil
}

// open checks a raw sample and returns it as an image (RGBA loses its alpha
// into the worker's buffer), or decodes an encoded one (dec; its pixels are
// converted later, once the crops are known).
func (w *worker) open(smp Sample) (img augment.Image, dec image.Image, err error) {
	if smp.Encoded {
		if dec, err = w.dec.decode(smp.Data); err != nil {
			return img, nil, fmt.Errorf("decoding %d-byte image: %w", len(smp.Data), err)
		}
		return img, dec, nil
	}
	h, wd, c := smp.Height, smp.Width, smp.Channels
	if c < 1 || c > 4 || c == 2 || h <= 0 || wd <= 0 || len(smp.Data) != h*wd*c {
		return img, nil, fmt.Errorf("raw image of %d bytes does not match %dx%dx%d (want 1, 3 or 4 channels)", len(smp.Data), h, wd, c)
	}
	if c == 4 {
		return w.dec.dropAlpha(smp.Data, h, wd), nil, nil
	}
	return augment.Image{Pix: smp.Data, H: h, W: wd, C: c}, nil, nil
}

// Next returns the next batch, io.EOF after the last one, or the error that
// ended the epoch (a damaged or undecodable sample, cancellation). After an
// error or io.EOF the epoch's goroutines have exited and Next keeps
// returning the same error.
func (it *Iter) Next() (*Batch, error) {
	if it.err != nil {
		return nil, it.err
	}
	if it.next == it.steps {
		it.stop(io.EOF)
		return nil, io.EOF
	}
	if h := it.l.held.Load(); int(h) >= it.l.opt.Slots {
		// Every slot is with the caller: waiting would never end.
		return nil, fmt.Errorf("loader: all %d batch slots are held by the caller; Release one before Next (or raise Options.Slots)", h)
	}
	select {
	case it.cur = <-it.ready:
	case <-it.done:
		return nil, it.stop(it.ctxErr())
	}
	select {
	case <-it.cur.done:
	case <-it.done:
		return nil, it.stop(it.ctxErr())
	}
	s := it.cur
	if s.err != nil {
		return nil, it.stop(fmt.Errorf("loader: epoch %d, batch %d: %w", it.epoch, s.b.Step, s.err))
	}
	it.cur = nil
	it.next++
	s.held.Store(true)
	it.l.held.Add(1)
	return &s.b, nil
}

func (it *Iter) ctxErr() error {
	return fmt.Errorf("loader: epoch %d stopped after %d of %d batches: %w", it.epoch, it.next, it.steps, context.Cause(it.ctx))
}

// Close stops the epoch (if still running) and waits for its goroutines.
// Batches already returned stay valid until released. Close is idempotent.
func (it *Iter) Close() error {
	it.stop(errors.New("loader: iterator closed"))
	return nil
}

// stop ends the epoch once: cancel, wait for every goroutine, return the
// slots that never reached the caller to the free list.
func (it *Iter) stop(err error) error {
	it.once.Do(func() {
		it.err = err
		it.cancel()
		it.wg.Wait()
		free := it.l.free
		if it.cur != nil {
			free <- it.cur
			it.cur = nil
		}
		for {
			select {
			case s := <-it.ready:
				free <- s
				continue
			default:
			}
			break
		}
		it.l.mu.Lock()
		if it.l.active == it {
			it.l.active = nil
		}
		it.l.mu.Unlock()
	})
	return it.err
}

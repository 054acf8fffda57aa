package loader

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/augment"
)

// synth makes n smooth, noisy h×w×c images labelled i%10.
func synth(n, h, w, c int) *MemorySource {
	m := &MemorySource{ChunkLen: 64}
	for i := 0; i < n; i++ {
		pix := make([]byte, h*w*c)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for k := 0; k < c; k++ {
					v := 127.5 + 90*math.Sin(float64(x+i)/(3+float64(k))+float64(y)/(5+2*float64(k))+float64(i%7)) +
						20*(augment.Float64(uint64(i), uint64((y*w+x)*c+k))-0.5)
					pix[(y*w+x)*c+k] = uint8(min(255, max(0, v)))
				}
			}
		}
		m.Samples = append(m.Samples, Sample{Label: int32(i % 10), Height: h, Width: w, Channels: c, Data: pix})
	}
	return m
}

// noLeaks fails the test if goroutines started during it are still running
// shortly after it ends (a hand-rolled goleak).
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("%d goroutines leaked (before %d):\n%s", runtime.NumGoroutine()-before, before, buf[:n])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func f32bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

// epochDigest runs one epoch and hashes every batch's views, labels and indices.
func epochDigest(t *testing.T, l *Loader, epoch int) (uint64, int) {
	t.Helper()
	h := fnv.New64a()
	batches := 0
	eachBatch(t, l, epoch, func(b *Batch) {
		h.Write(f32bytes(b.X))
		h.Write(b.X8)
		for i := 0; i < b.N; i++ {
			h.Write([]byte{byte(b.Labels[i]), byte(b.Indices[i]), byte(b.Indices[i] >> 8)})
		}
		batches++
	})
	return h.Sum64(), batches
}

// eachBatch runs epoch epoch of l to its end, calling f on every batch
// before releasing it; an error fails the test.
func eachBatch(t *testing.T, l *Loader, epoch int, f func(*Batch)) {
	t.Helper()
	it, err := l.Epoch(context.Background(), epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for {
		b, err := it.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f(b)
		b.Release()
	}
}

func TestBitIdenticalAcrossWorkers(t *testing.T) {
	noLeaks(t)
	src := synth(300, 32, 32, 3)
	for _, out := range []Output{Floats, Crops8, Source8} {
		var want uint64
		for _, workers := range []int{1, 2, 8} {
			l, err := New(src, Options{BatchSize: 64, Workers: workers, Seed: 11, ItemSize: 7, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			got, n := epochDigest(t, l, 3)
			l.Close()
			if n != 5 {
				t.Fatalf("%d batches, want 5 (the last partial one kept)", n)
			}
			if workers == 1 {
				want = got
			} else if got != want {
				t.Fatalf("output %d: %d workers give different batches than 1 worker", out, workers)
			}
		}
	}
}

func TestEpochContents(t *testing.T) {
	noLeaks(t)
	src := synth(150, 20, 24, 3)
	l, err := New(src, Options{BatchSize: 32, Workers: 2, Seed: 4, Augment: augment.DefaultConfig(16, 16)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d0, _ := epochDigest(t, l, 0)
	d1, _ := epochDigest(t, l, 1)
	if d0 == d1 {
		t.Fatal("epochs 0 and 1 give identical batches")
	}
	it, _ := l.Epoch(context.Background(), 2, 0)
	seen := make([]int, src.Len())
	a, _ := augment.New(l.AugmentConfig())
	view := make([]float32, a.ViewLen())
	for step := 0; ; step++ {
		b, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Step != step || b.H != 16 || b.W != 16 || b.Views != 2 || len(b.X) != 2*b.N*16*16*3 {
			t.Fatalf("batch %d: step %d, %dx%d, %d views, %d floats", step, b.Step, b.H, b.W, b.Views, len(b.X))
		}
		for i := 0; i < b.N; i++ {
			idx := int(b.Indices[i])
			seen[idx]++
			if b.Labels[i] != int32(idx%10) {
				t.Fatalf("label of sample %d is %d", idx, b.Labels[i])
			}
			// Rows i and i+N are the two views of image i, as augment makes them.
			for v := 0; v < 2; v++ {
				s := src.Samples[idx]
				p := a.Draw(augment.ViewKey(4, 2, idx, v), s.Height, s.Width)
				if p != b.Params[v*b.N+i] {
					t.Fatalf("params of sample %d view %d differ", idx, v)
				}
				_ = a.Apply(view, augment.Image{Pix: s.Data, H: s.Height, W: s.Width, C: 3}, &p)
				row := b.X[(v*b.N+i)*len(view) : (v*b.N+i+1)*len(view)]
				if string(f32bytes(row)) != string(f32bytes(view)) {
					t.Fatalf("row %d of batch %d is not view %d of sample %d", v*b.N+i, step, v, idx)
				}
			}
		}
		b.Release()
		b.Release() // double release is harmless
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("sample %d seen %d times in an epoch", i, c)
		}
	}
}

func TestDropLastAndResume(t *testing.T) {
	noLeaks(t)
	src := synth(100, 8, 8, 3)
	l, _ := New(src, Options{BatchSize: 16, Workers: 2, DropLast: true, Seed: 1})
	_, n := epochDigest(t, l, 0)
	l.Close()
	if n != 6 {
		t.Fatalf("DropLast: %d batches, want 6", n)
	}
	// Resuming at batch 3 reproduces batches 3.. of the full epoch.
	l, _ = New(src, Options{BatchSize: 16, Workers: 2, Seed: 1})
	defer l.Close()
	var full [][]float32
	it, _ := l.Epoch(context.Background(), 5, 0)
	for {
		b, err := it.Next()
		if err != nil {
			break
		}
		full = append(full, append([]float32(nil), b.X...))
		b.Release()
	}
	it, _ = l.Epoch(context.Background(), 5, 3*16)
	for k := 3; ; k++ {
		b, err := it.Next()
		if err == io.EOF {
			if k != len(full) {
				t.Fatalf("resumed epoch ended after batch %d of %d", k, len(full))
			}
			break
		}
		if b.Step != k || string(f32bytes(b.X)) != string(f32bytes(full[k])) {
			t.Fatalf("resumed batch %d (step %d) differs", k, b.Step)
		}
		b.Release()
	}
}

func TestGraySourceAndNoAugment(t *testing.T) {
	noLeaks(t)
	src := synth(40, 28, 28, 1)
	l, err := New(src, Options{BatchSize: 40, Workers: 2, NoAugment: true, Order: Sequential, Views: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	it, _ := l.Epoch(context.Background(), 0, 0)
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if b.Indices[i] != int32(i) {
			t.Fatalf("sequential order: position %d holds %d", i, b.Indices[i])
		}
		pix := src.Samples[i].Data
		for p, v := range pix {
			for c := 0; c < 3; c++ {
				if got := b.X[(i*784+p)*3+c]; math.Abs(float64(got)-float64(v)/255) > 1e-6 {
					t.Fatalf("image %d pixel %d channel %d: %g, want %g", i, p, c, got, float64(v)/255)
				}
			}
		}
	}
	b.Release()
	if _, err := it.Next(); err != io.EOF {
		t.Fatalf("after the last batch: %v", err)
	}
}

func TestEncodedImages(t *testing.T) {
	noLeaks(t)
	raw := synth(24, 40, 48, 3)
	m := &MemorySource{}
	for i, s := range raw.Samples {
		img := image.NewRGBA(image.Rect(0, 0, 48, 40))
		for p := 0; p < 40*48; p++ {
			img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = s.Data[3*p], s.Data[3*p+1], s.Data[3*p+2], 255
		}
		var buf bytes.Buffer
		switch i % 3 {
		case 0:
			_ = png.Encode(&buf, img)
		case 1:
			_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		default:
			g := image.NewGray(image.Rect(0, 0, 48, 40))
			for p := range g.Pix {
				g.Pix[p] = s.Data[3*p]
			}
			g.Set(0, 0, color.Gray{Y: 7})
			_ = png.Encode(&buf, g)
		}
		m.Samples = append(m.Samples, Sample{Label: s.Label, Height: 40, Width: 48, Data: buf.Bytes(), Encoded: true})
	}
	for _, workers := range []int{1, 3} {
		l, err := New(m, Options{BatchSize: 10, Workers: workers, Seed: 2, Augment: augment.DefaultConfig(24, 24)})
		if err != nil {
			t.Fatal(err)
		}
		d, n := epochDigest(t, l, 0)
		l.Close()
		if n != 3 {
			t.Fatalf("%d batches", n)
		}
		if workers == 1 {
			m.ChunkLen = int(d % 1000) // stash the digest
		} else if int(d%1000) != m.ChunkLen {
			t.Fatal("encoded images: worker count changes the batches")
		}
	}
	// PNG decodes exactly: the NoAugment view equals the raw pixels.
	l, _ := New(&MemorySource{Samples: m.Samples[:1]}, Options{BatchSize: 1, Views: 1, NoAugment: true, Augment: augment.DefaultConfig(40, 48)})
	defer l.Close()
	it, _ := l.Epoch(context.Background(), 0, 0)
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	for p, v := range raw.Samples[0].Data {
		if math.Abs(float64(b.X[p])-float64(v)/255) > 1e-6 {
			t.Fatalf("decoded PNG value %d: %g, want %g", p, b.X[p], float64(v)/255)
		}
	}
	b.Release()
	it.Close()
}

type failingSource struct {
	*MemorySource
	bad int
}

func (f failingSource) Get(i int) (Sample, error) {
	if i == f.bad {
		return Sample{}, errors.New("chunk 3 is damaged: checksum mismatch")
	}
	return f.MemorySource.Get(i)
}

func TestErrorEndsEpoch(t *testing.T) {
	noLeaks(t)
	src := synth(200, 8, 8, 3)
	for _, workers := range []int{1, 4} {
		l, _ := New(failingSource{src, 137}, Options{BatchSize: 16, Workers: workers, Order: Sequential})
		it, _ := l.Epoch(context.Background(), 0, 0)
		var err error
		good := 0
		for err == nil {
			var b *Batch
			if b, err = it.Next(); err == nil {
				good++
				b.Release()
			}
		}
		if !strings.Contains(err.Error(), "sample 137") || !strings.Contains(err.Error(), "chunk 3 is damaged") {
			t.Fatalf("error does not name the sample and chunk: %v", err)
		}
		if good != 137/16 {
			t.Fatalf("%d good batches before the damaged one, want %d", good, 137/16)
		}
		if _, err2 := it.Next(); err2 != err {
			t.Fatalf("error is not sticky: %v then %v", err, err2)
		}
		// The loader is usable again after a failed epoch.
		if _, err := l.Epoch(context.Background(), 1, 0); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	// A raw sample whose bytes do not match its shape.
	bad := synth(10, 8, 8, 3)
	bad.Samples[4].Data = bad.Samples[4].Data[:50]
	l, _ := New(bad, Options{BatchSize: 4, Workers: 2})
	_, err := epochDigestErr(l)
	if err == nil || !strings.Contains(err.Error(), "sample 4") {
		t.Fatalf("short raw sample: %v", err)
	}
	l.Close()
	// An undecodable encoded sample.
	enc := &MemorySource{Samples: []Sample{{Data: []byte("not an image"), Encoded: true}}}
	l, _ = New(enc, Options{BatchSize: 4, Augment: augment.DefaultConfig(8, 8)})
	_, err = epochDigestErr(l)
	if err == nil || !strings.Contains(err.Error(), "sample 0: decoding") {
		t.Fatalf("undecodable sample: %v", err)
	}
	l.Close()
}

func epochDigestErr(l *Loader) (int, error) {
	it, err := l.Epoch(context.Background(), 0, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		b, err := it.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		b.Release()
	}
}

func TestCancellationAndClose(t *testing.T) {
	noLeaks(t)
	src := synth(2000, 16, 16, 3)
	l, _ := New(src, Options{BatchSize: 32, Workers: 3})
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	it, _ := l.Epoch(ctx, 0, 0)
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	cancel()
	var errs int
	for {
		b, err := it.Next()
		if err == nil {
			b.Release() // batches finished before the cancel may still arrive
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
		errs++
		break
	}
	// Closing mid-epoch, with batches in flight and one held by the caller.
	it, err = l.Epoch(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := it.Next()
	it.Close()
	held.Release()
	// Holding every slot makes Next fail instead of hanging.
	it, _ = l.Epoch(context.Background(), 2, 0)
	var hold []*Batch
	for range 3 {
		b, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, b)
	}
	if _, err := it.Next(); err == nil || !strings.Contains(err.Error(), "slots are held") {
		t.Fatalf("Next with every slot held: %v", err)
	}
	for _, b := range hold {
		b.Release()
	}
	if _, err := it.Next(); err != nil {
		t.Fatalf("Next after releasing: %v", err)
	}
	it.Close()
}

func TestNoAllocationsPerBatch(t *testing.T) {
	src := synth(4096, 32, 32, 3)
	l, _ := New(src, Options{BatchSize: 128, Workers: 2})
	defer l.Close()
	it, _ := l.Epoch(context.Background(), 0, 0)
	defer it.Close()
	for range 3 { // warm-up: worker scratch buffers grow
		b, _ := it.Next()
		b.Release()
	}
	allocs := testing.AllocsPerRun(20, func() {
		b, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch in steady state", allocs)
	}
}

func TestOptionErrors(t *testing.T) {
	src := synth(4, 8, 8, 3)
	bad := []Options{
		{BatchSize: -1}, {Views: 3}, {Rank: 1}, {Order: Mode(7)}, {Output: Output(4)},
		{Augment: augment.Config{OutH: 8, OutW: 8}}, // zero scale range
	}
	for i, o := range bad {
		if _, err := New(src, o); err == nil {
			t.Errorf("options %d accepted: %+v", i, o)
		}
	}
	if _, err := New(&MemorySource{}, Options{}); err == nil {
		t.Error("empty source without a view size accepted")
	}
	l, _ := New(src, Options{})
	defer l.Close()
	if _, err := l.Epoch(context.Background(), 0, 5); err == nil {
		t.Error("start position past the end accepted")
	}
	it, _ := l.Epoch(context.Background(), 0, 0)
	if _, err := l.Epoch(context.Background(), 1, 0); err == nil {
		t.Error("second concurrent epoch accepted")
	}
	it.Close()
}

// TestCrops8PlusColorMatchesFloats: finishing the uint8 crops with the drawn
// Params (what a GPU backend does) gives the float views within the uint8
// rounding (0.5 level) as the jitter amplifies it: each blend by up to
// |f| + |1−f| = 1.8, the hue rotation by up to about 2 (min and chroma both
// carry the error), so at most 0.5·1.8·1.8·1.4·2 ≈ 4.5 levels.
func TestCrops8PlusColorMatchesFloats(t *testing.T) {
	noLeaks(t)
	src := synth(64, 32, 32, 3)
	get := func(out Output) *Batch {
		l, _ := New(src, Options{BatchSize: 64, Output: out, Seed: 3, Slots: 1})
		t.Cleanup(func() { l.Close() })
		it, _ := l.Epoch(context.Background(), 0, 0)
		b, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fb, cb := get(Floats), get(Crops8)
	a, _ := augment.New(augment.DefaultConfig(32, 32))
	v := make([]float32, a.ViewLen())
	var worst float64
	for r := 0; r < 2*fb.N; r++ {
		if fb.Params[r] != cb.Params[r] {
			t.Fatalf("row %d: params differ between outputs", r)
		}
		for i := range v {
			v[i] = float32(cb.X8[r*len(v)+i]) / 255
		}
		a.Color(v, &cb.Params[r])
		for i := range v {
			worst = max(worst, math.Abs(float64(v[i]-fb.X[r*len(v)+i])))
		}
	}
	if worst > 4.5/255 {
		t.Fatalf("uint8 path off by %.4f (%.2f levels)", worst, worst*255)
	}
	t.Logf("uint8 crops + Color vs float views: max |Δ| = %.2f/255", worst*255)
}

// TestSource8ApplyMatchesFloats: the Source8 regions with their relative
// Params give, through augment's Apply (what the GPU kernel computes), the
// very views of Output = Floats: bit for bit for RGB sources, within 1e-6
// for gray ones (replicated to RGB, they take the 3-channel resampling
// path, whose rounding differs slightly from the 1-channel one).
func TestSource8ApplyMatchesFloats(t *testing.T) {
	noLeaks(t)
	for _, tc := range []struct {
		name string
		src  Source
		cfg  augment.Config
		tol  float64
	}{
		{"rgb 32→32", synth(40, 32, 32, 3), augment.DefaultConfig(32, 32), 0},
		{"rgb 40x48→16", synth(40, 40, 48, 3), augment.DefaultConfig(16, 16), 0},
		{"gray 28→20", synth(40, 28, 28, 1), augment.DefaultConfig(20, 20), 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get := func(out Output) *Batch {
				l, err := New(tc.src, Options{BatchSize: 40, Output: out, Seed: 5, Slots: 1, Augment: tc.cfg})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				it, _ := l.Epoch(context.Background(), 1, 0)
				b, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			fb, sb := get(Floats), get(Source8)
			a, _ := augment.New(tc.cfg)
			v := make([]float32, a.ViewLen())
			smp, _ := tc.src.Get(0)
			if sb.SrcH != smp.Height || sb.SrcW != smp.Width {
				t.Fatalf("slot %dx%d, want the source size %dx%d", sb.SrcW, sb.SrcH, smp.Width, smp.Height)
			}
			var worst float64
			for r := 0; r < 2*fb.N; r++ {
				pf, ps := fb.Params[r], sb.Params[r]
				if pf.CropH != ps.CropH || pf.CropW != ps.CropW || pf.Flip != ps.Flip || pf.Hue != ps.Hue || ps.Top < 0 || ps.Left < 0 {
					t.Fatalf("row %d: params %+v, Floats has %+v", r, ps, pf)
				}
				i := r % fb.N
				slot := augment.Image{Pix: sb.X8[i*sb.SrcH*sb.SrcW*3 : (i+1)*sb.SrcH*sb.SrcW*3], H: sb.SrcH, W: sb.SrcW, C: 3}
				if err := a.Apply(v, slot, &ps); err != nil {
					t.Fatal(err)
				}
				for k := range v {
					worst = max(worst, math.Abs(float64(v[k]-fb.X[r*len(v)+k])))
				}
			}
			if worst > tc.tol {
				t.Fatalf("Source8 + Apply off by %g (tolerance %g)", worst, tc.tol)
			}
		})
	}
	// A region larger than the slot is an error naming the sample.
	l, err := New(synth(4, 32, 32, 3), Options{BatchSize: 4, Output: Source8, SourceH: 8, SourceW: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	it, _ := l.Epoch(context.Background(), 0, 0)
	if _, err := it.Next(); err == nil || !strings.Contains(err.Error(), "sample") || !strings.Contains(err.Error(), "source slot") {
		t.Fatalf("oversized region: %v", err)
	}
	it.Close()
	if _, err := New(synth(4, 32, 32, 3), Options{Output: Source8, Augment: func() augment.Config {
		c := augment.DefaultConfig(32, 32)
		c.RotationDeg = 10
		return c
	}()}); err == nil {
		t.Fatal("Source8 with rotation accepted")
	}
}

// TestEvenShards: with EvenShards every rank of a quasi-random epoch has the
// same length, and the ranks stay disjoint.
func TestEvenShards(t *testing.T) {
	src := synth(1000, 4, 4, 3)
	src.ChunkLen = 37
	for _, even := range []bool{false, true} {
		lens := map[int]bool{}
		seen := map[int32]int{}
		for r := 0; r < 3; r++ {
			l, err := New(src, Options{Order: QuasiRandom, Window: 2, Rank: r, World: 3, EvenShards: even, Seed: 8})
			if err != nil {
				t.Fatal(err)
			}
			o, err := l.Order(4)
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			lens[len(o)] = true
			for _, i := range o {
				seen[i]++
			}
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("sample %d on %d ranks", i, c)
			}
		}
		if even && len(lens) != 1 {
			t.Fatalf("EvenShards: rank lengths %v", lens)
		}
		if !even && len(lens) == 1 {
			t.Fatalf("test data gives equal shards anyway (%v); it shows nothing", lens)
		}
	}
}

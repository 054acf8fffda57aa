package loader

import (
	"syscall"
	"testing"
	"time"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// BenchmarkJPEGStages splits BenchmarkTwoViewJPEG's per-image work (its
// 1,536 packed 256×256 q90 JPEGs, 64×64 views, the reference augmentation,
// seed 1, epoch 0) into the loader's two stages on libjpeg-turbo, each in
// µs/image on the calling goroutine (run with -cpu 1):
//
//   - decode: the TurboJPEG header and the decode at the DCT scale the
//     loader picks for the image's two crops (fillTurbo);
//   - views: both views of an image decoded that way (crop boxes scaled to
//     the decoded size, resize, flip, colour jitter, grayscale), from 64
//     images decoded beforehand.
//
// The crops are drawn beforehand for both, as the loader draws them. Besides
// the wall-clock µs/image, cpu-µs/image is the process's CPU time per image
// (getrusage), which on a shared machine is much less inflated by the other
// processes' load than the wall clock (time spent waiting for a CPU is not
// counted; shared caches still are).
func BenchmarkJPEGStages(b *testing.B) {
	if err := turbojpeg.Available(); err != nil {
		b.Skip(err)
	}
	r := openBench(b, benchFile(b, 1536, 256, 256, true, false))
	cfg := augment.DefaultConfig(64, 64)
	n := r.Len()
	data := make([][]byte, n)
	params := make([][2]augment.Params, n)
	scale := make([]turbojpeg.Scale, n)
	for i := range n {
		s, err := r.Get(i)
		if err != nil {
			b.Fatal(err)
		}
		data[i] = append([]byte(nil), s.Data...)
		minH, minW := s.Height, s.Width
		for v := range 2 {
			p := augment.Draw(&cfg, augment.ViewKey(1, 0, i, v), s.Height, s.Width)
			params[i][v] = p
			minH, minW = min(minH, int(p.CropH)), min(minW, int(p.CropW))
		}
		scale[i] = turbojpeg.ScaleFor(minW, minH, cfg.OutW, cfg.OutH)
	}
	dec, err := turbojpeg.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	decode := func(i int, sf turbojpeg.Scale, dst []byte) ([]byte, int, int) {
		hd, err := dec.Header(data[i])
		if err != nil {
			b.Fatal(err)
		}
		sh, sw := sf.Apply(hd.Height), sf.Apply(hd.Width)
		dst = grow8(dst, sh*sw*3)
		if err := dec.Decode(data[i], hd, sf, dst, 3); err != nil {
			b.Fatal(err)
		}
		return dst, sh, sw
	}
	b.Run("decode", func(b *testing.B) {
		var pix []byte
		i := 0
		c0 := cpuTime()
		for b.Loop() {
			pix, _, _ = decode(i%n, scale[i%n], pix)
			i++
		}
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/image")
		b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N), "µs/image")
	})
	b.Run("views", func(b *testing.B) {
		// Four images decoded at every scale the loader picks for them, so
		// that they stay in the cache as the one just decoded does in the
		// loader; the crops of all images are applied to them in turn.
		const m = 4
		imgs := map[[2]int]augment.Image{}
		for i := range n {
			key := [2]int{i % m, scale[i].Denom}
			if _, ok := imgs[key]; !ok {
				pix, sh, sw := decode(i%m, scale[i], nil)
				imgs[key] = augment.Image{Pix: pix, H: sh, W: sw, C: 3}
			}
		}
		a, err := augment.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, a.ViewLen())
		i := 0
		c0 := cpuTime()
		for b.Loop() {
			img := imgs[[2]int{i % m, scale[i%n].Denom}]
			for v := range 2 {
				p := params[i%n][v]
				if img.H != 256 || img.W != 256 {
					scaleBox(&p, 256, 256, img.H, img.W)
				}
				if err := a.Apply(dst, img, &p); err != nil {
					b.Fatal(err)
				}
			}
			i++
		}
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/image")
		b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N), "µs/image")
	})
}

// cpuTime is the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

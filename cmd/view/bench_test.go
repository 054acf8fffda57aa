package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tsimcne/tsimcne-go/internal/sampleimg"
)

// BenchmarkThumbs measures thumbnail requests per second over HTTP, 64
// concurrent clients asking for random samples of the demo's MNIST pack
// (TSV_DEMO=dir with mnist.arrow and mnist.tscn):
//
//   - pack-nocache: every request reads the sample from the pack and
//     encodes its PNG (the cache is off);
//   - pack: the server as it runs, with its bounded PNG cache, from cold;
//   - pack-warm: the same with every thumbnail already cached;
//   - folder: the baseline, the same 70,000 PNG files (the bytes `pack get`
//     writes) served from a folder by net/http's file server.
func BenchmarkThumbs(b *testing.B) {
	dir := os.Getenv("TSV_DEMO")
	if dir == "" {
		b.Skip("set TSV_DEMO to the folder holding mnist.arrow and mnist.tscn")
	}
	d, err := loadMap(filepath.Join(dir, "mnist.arrow"), filepath.Join(dir, "mnist.tscn"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.pack.Close()
	n := d.pack.Len()
	folder := filepath.Join(b.TempDir(), "png")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		s, err := d.pack.Get(i)
		if err != nil {
			b.Fatal(err)
		}
		img, err := sampleimg.Image(&s)
		if err != nil {
			b.Fatal(err)
		}
		png, err := sampleimg.EncodePNG(img)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(folder, strconv.Itoa(i)+".png"), png, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, h http.Handler, url func(i int) string) {
		ts := httptest.NewServer(h)
		defer ts.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
		var seed atomic.Uint64
		b.SetParallelism(32) // 64 clients on 2 CPUs
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(seed.Add(1), 3))
			for pb.Next() {
				r, err := client.Get(ts.URL + url(rng.IntN(n)))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if r.StatusCode != 200 {
					b.Errorf("status %d", r.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	thumbURL := func(i int) string { return fmt.Sprintf("/api/thumb/%d", i) }
	b.Run("pack-nocache", func(b *testing.B) {
		s, _ := newServer(d)
		s.cache = newPNGCache(0)
		run(b, s, thumbURL)
	})
	b.Run("pack", func(b *testing.B) {
		s, _ := newServer(d)
		run(b, s, thumbURL)
	})
	// pack-warm: the cache already holds every thumbnail (MNIST's 70,000
	// PNGs take about 20 MB of its 64 MiB), as after a while of use.
	warm, _ := newServer(d)
	for i := range n {
		if _, err := warm.thumbPNG(int64(i), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("pack-warm", func(b *testing.B) { run(b, warm, thumbURL) })
	b.Run("folder", func(b *testing.B) {
		run(b, http.FileServer(http.Dir(folder)), func(i int) string { return "/" + strconv.Itoa(i) + ".png" })
	})
}

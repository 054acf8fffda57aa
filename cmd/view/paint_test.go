package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tsimcne/tsimcne-go/embedio"
)

// TestFirstPaint measures the time from navigation to the first frame
// with every point drawn, in headless chromium, for maps of 70,000 and
// 1,000,000 points (ten Gaussian blobs, no pack): each size is loaded five
// times (TSV_PAINT_LOADS, default 1 in the test suite) and the median
// reported (go test -v shows it). The test asserts that every point is
// drawn; the time is a measurement, not an assertion (timings belong in
// docs/BENCHMARKS.md, where the 2 s bound for 1,000,000 points is
// recorded with the load it was measured under): run
// TSV_PAINT_LOADS=5 go test ./cmd/view/ -run TestFirstPaint -v.
// -short skips the test.
func TestFirstPaint(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: first-paint measurement skipped")
	}
	ctx := newBrowser(t, 1400, 900)
	for _, n := range []int{70000, 1000000} {
		labels := make([]int32, n)
		rng := rand.New(rand.NewPCG(5, uint64(n)))
		for i := range labels {
			labels[i] = int32(rng.IntN(10))
		}
		e := &embedio.Embedding{Labels: labels, Classes: classNames10, Coords: blobs(labels, 3), Dim: 2}
		p := filepath.Join(t.TempDir(), "m.arrow")
		if err := embedio.Write(p, e); err != nil {
			t.Fatal(err)
		}
		d, err := loadMap(p, "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := newServer(d)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s)
		var times []float64
		for range paintLoads() {
			tab := ctx
			must(t, tab, chromedp.Navigate("about:blank"))
			must(t, tab, chromedp.Navigate(ts.URL+"/"))
			waitReady(t, tab)
			fp := must(t, tab, chromedp.Evaluate[float64](`tsView.firstPaint`))
			tm := must(t, tab, chromedp.Evaluate[map[string]float64](`tsView.timings`))
			t.Logf("%d points: data in at %.0f ms, prepared at %.0f ms, painted at %.0f ms", n, tm["data"], tm["prepared"], tm["painted"])
			if drawn := must(t, tab, chromedp.Evaluate[int](`tsView.drawn`)); drawn != n {
				t.Fatalf("%d points: drew %d", n, drawn)
			}
			times = append(times, fp)
		}
		ts.Close()
		slices.Sort(times)
		med := times[len(times)/2]
		t.Logf("first paint, %d points: median %.0f ms (min %.0f, max %.0f) over %d loads", n, med, times[0], times[len(times)-1], len(times))
	}
}

// paintLoads is how many times TestFirstPaint loads each map.
func paintLoads() int {
	if n, err := strconv.Atoi(os.Getenv("TSV_PAINT_LOADS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// TestDemoScreenshots writes the README's screenshots of the demo map
// (TSV_DEMO=dir holding mnist.arrow and mnist.tscn, TSV_SHOTS=out dir).
func TestDemoScreenshots(t *testing.T) {
	dir, out := os.Getenv("TSV_DEMO"), os.Getenv("TSV_SHOTS")
	if dir == "" || out == "" {
		t.Skip("set TSV_DEMO and TSV_SHOTS to make the README screenshots")
	}
	d, err := loadMap(filepath.Join(dir, "mnist.arrow"), filepath.Join(dir, "mnist.tscn"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(d)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx := newBrowser(t, 1400, 900)
	must(t, ctx, chromedp.Navigate(ts.URL+"/"))
	waitReady(t, ctx)
	// Hover a point of the 6 cluster near its middle.
	best, bd := -1, math.Inf(1)
	var mx, my float64
	k := 0
	for i, l := range d.emb.Labels {
		if l == 6 {
			mx, my, k = mx+float64(d.emb.Coords[2*i]), my+float64(d.emb.Coords[2*i+1]), k+1
		}
	}
	mx, my = mx/float64(k), my/float64(k)
	for i, l := range d.emb.Labels {
		if l == 6 {
			if dd := math.Hypot(float64(d.emb.Coords[2*i])-mx, float64(d.emb.Coords[2*i+1])-my); dd < bd {
				best, bd = i, dd
			}
		}
	}
	p := must(t, ctx, chromedp.Evaluate[map[string]float64](fmt.Sprintf(`tsView.screenOf(%d)`, best)))
	must(t, ctx, chromedp.MouseEvent(chromedp.MouseMoved, p["x"], p["y"]))
	must(t, ctx, chromedp.Poll[bool](`(() => { const i = document.getElementById('card-img'); return !document.getElementById('card').hidden && i.complete && i.naturalWidth > 0; })()`))
	time.Sleep(300 * time.Millisecond)
	saveShot(t, ctx, filepath.Join(out, "view-mnist.png"))
	// Zoomed in between two clusters: images in place of dots.
	must(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`tsView.zoomOn(%d, 24)`, best)))
	must(t, ctx, chromedp.MouseClickXY(700, 450))
	must(t, ctx, chromedp.Poll[bool](`tsView.imageMode && tsView.thumbsDrawn > 0`))
	time.Sleep(1500 * time.Millisecond)
	must(t, ctx, chromedp.Evaluate[chromedp.Void](`tsView.draw()`))
	saveShot(t, ctx, filepath.Join(out, "view-mnist-zoom.png"))
}

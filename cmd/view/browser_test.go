package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser for the tests: $CHROMIUM, or Debian's
// chromium. Under CI (CI=true, where .ci/run installs it) a missing browser
// fails the test; elsewhere it skips.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI: chromium is required for the browser tests (apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium): browser tests skipped")
	return ""
}

// newBrowser starts headless chromium with the flags that keep it from
// reaching out or stalling, and a fresh profile.
func newBrowser(t testing.TB, w, h int) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func must[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitReady(t testing.TB, ctx context.Context) {
	t.Helper()
	// Evaluate rather than Poll: right after a navigation the old
	// document's context can vanish under a poll.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](`!!(window.tsView && (window.tsView.ready || window.tsView.error))`))
		cancel()
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("page not ready after 60 s (last error %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e := must(t, ctx, chromedp.Evaluate[*string](`window.tsView.error`)); e != nil {
		t.Fatalf("page: %s", *e)
	}
}

// classPixels counts, per class, the canvas pixels whose colour is that
// class's colour blended over white: their "ink" (255 − value) points in
// the direction of the class colour's ink, whatever the opacity.
const classPixelsJS = `(() => {
  const c = document.getElementById('map');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const cols = tsView.colors().map(k => { const v = k.map(x => 255 - x); const l = Math.hypot(...v); return v.map(x => x / l); });
  const counts = new Array(cols.length).fill(0);
  for (let p = 0; p < d.length; p += 4) {
    const a = 255 - d[p], b = 255 - d[p + 1], e = 255 - d[p + 2], l = Math.hypot(a, b, e);
    if (l < 40) continue;
    let best = -1, bc = 0.998;
    for (let k = 0; k < cols.length; k++) {
      const cs = (a * cols[k][0] + b * cols[k][1] + e * cols[k][2]) / l;
      if (cs > bc) { bc = cs; best = k; }
    }
    if (best >= 0) counts[best]++;
  }
  return counts;
})()`

// TestBrowser drives the page in headless chromium: it loads and paints
// every class in its colour; hovering a point shows its thumbnail with the
// pixels `pack get` writes; hiding a class removes its points; a box
// selection exports exactly the indices inside the box.
func TestBrowser(t *testing.T) {
	f := newFixture(t, 2000, 10, 3, true)
	ts, _ := newTestServer(t, f, true)
	ctx := newBrowser(t, 1200, 800)
	must(t, ctx, chromedp.Navigate(ts.URL+"/"))
	waitReady(t, ctx)

	if drawn := must(t, ctx, chromedp.Evaluate[int](`tsView.drawn`)); drawn != 2000 {
		t.Fatalf("drew %d points, want 2000", drawn)
	}
	counts := must(t, ctx, chromedp.Evaluate[[]int](classPixelsJS))
	for c := range 10 {
		if counts[c] < 200 {
			t.Fatalf("class %d has %d pixels of its colour (%v)", c, counts[c], counts)
		}
	}
	if shot := os.Getenv("TSV_SHOTS"); shot != "" {
		saveShot(t, ctx, filepath.Join(shot, "browser-test.png"))
	}

	// Positions of every point on screen: [index, class, x, y].
	type pt struct {
		ix, cls int
		x, y    float64
	}
	screen := func() []pt {
		raw := must(t, ctx, chromedp.Evaluate[[][]float64](`tsView.screenAll()`))
		out := make([]pt, len(raw))
		for i, r := range raw {
			out[i] = pt{int(r[0]), int(r[1]), r[2], r[3]}
		}
		return out
	}
	pts := screen()

	t.Run("hover shows the pack's pixels", func(t *testing.T) {
		// A point with no other within 3 px, so the cursor on it picks it.
		target := -1
		for _, p := range pts[100:] {
			lonely := true
			for _, q := range pts {
				if q.ix != p.ix && math.Hypot(q.x-p.x, q.y-p.y) < 3 {
					lonely = false
					break
				}
			}
			if lonely {
				target = p.ix
				break
			}
		}
		if target < 0 {
			t.Fatal("no isolated point to hover")
		}
		p := pts[target]
		must(t, ctx, chromedp.MouseEvent(chromedp.MouseMoved, p.x, p.y))
		must(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`(() => { const c = document.getElementById('card'); const i = document.getElementById('card-img');
			return !c.hidden && c.dataset.index === '%d' && i.complete && i.naturalWidth > 0; })()`, target)))
		text := must(t, ctx, chromedp.Evaluate[string](`document.getElementById('card-text').textContent`))
		if want := fmt.Sprintf("#%d · %s", target, classNames10[f.e.Labels[target]]); !strings.HasPrefix(text, want) {
			t.Fatalf("card says %q, want %q", text, want)
		}
		must(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`document.getElementById('card-text').textContent.includes('img/%d.png')`, target)))
		px := must(t, ctx, chromedp.Evaluate[[]int](`(() => { const i = document.getElementById('card-img');
			const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
			const x = c.getContext('2d'); x.drawImage(i, 0, 0);
			return [c.width, c.height, ...x.getImageData(0, 0, c.width, c.height).data]; })()`))
		if px[0] != f.side || px[1] != f.side {
			t.Fatalf("card image is %dx%d, the sample %dx%d", px[0], px[1], f.side, f.side)
		}
		want := f.images[target]
		for k := range f.side * f.side {
			got := px[2+4*k : 2+4*k+3]
			if got[0] != int(want[3*k]) || got[1] != int(want[3*k+1]) || got[2] != int(want[3*k+2]) {
				t.Fatalf("card image pixel %d is %v, the pack holds %v", k, got, want[3*k:3*k+3])
			}
		}
		if src := must(t, ctx, chromedp.Evaluate[string](`document.getElementById('card-img').src`)); !strings.HasSuffix(src, fmt.Sprintf("/api/thumb/%d", target)) {
			t.Fatalf("card image from %q", src)
		}
		must(t, ctx, chromedp.MouseEvent(chromedp.MouseMoved, 5, 5))
	})

	t.Run("click shows neighbours", func(t *testing.T) {
		p := pts[7]
		must(t, ctx, chromedp.MouseClickXY(p.x, p.y))
		must(t, ctx, chromedp.Poll[bool](`document.querySelectorAll('#detail .nn[data-space="features"] figure').length === 12`))
		got := must(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#detail .nn[data-space="map"] figure')).map(f => f.dataset.index)`))
		picked := must(t, ctx, chromedp.Evaluate[string](`document.querySelector('#detail p').textContent`))
		ix, _ := strconv.Atoi(strings.TrimPrefix(strings.Fields(picked)[0], "#"))
		want := bruteNeighbors(f.e, ix, 12, false)
		for j, s := range got {
			if s != strconv.Itoa(want[j]) {
				t.Fatalf("map neighbours of %d: %v, want %v", ix, got, want)
			}
		}
	})

	t.Run("hiding a class removes its points", func(t *testing.T) {
		must(t, ctx, chromedp.Click(chromedp.CSS(`#legend li[data-class="3"]`)))
		per := must(t, ctx, chromedp.Evaluate[[]int](`tsView.drawnPerClass`))
		after := must(t, ctx, chromedp.Evaluate[[]int](classPixelsJS))
		n3 := 0
		for _, l := range f.e.Labels {
			if l == 3 {
				n3++
			}
		}
		if per[3] != 0 || after[3] > counts[3]/100 {
			t.Fatalf("class 3 hidden, yet %d points drawn and %d of its pixels (%d before)", per[3], after[3], counts[3])
		}
		if drawn := must(t, ctx, chromedp.Evaluate[int](`tsView.drawn`)); drawn != 2000-n3 {
			t.Fatalf("drew %d points, want %d", drawn, 2000-n3)
		}
		for c := range 10 {
			if c != 3 && after[c] < counts[c]*9/10 {
				t.Fatalf("class %d lost pixels: %d → %d", c, counts[c], after[c])
			}
		}
	})

	t.Run("box selection exports the indices inside", func(t *testing.T) {
		// A box over the middle of class 5's blob and beyond, moved until
		// no point lies within a pixel of its edges.
		var cx, cy float64
		k := 0
		for _, p := range pts {
			if p.cls == 5 {
				cx, cy, k = cx+p.x, cy+p.y, k+1
			}
		}
		cx, cy = math.Round(cx/float64(k)), math.Round(cy/float64(k))
		var x0, y0, x1, y1 float64
		for shift := 0.0; ; shift++ {
			x0, y0, x1, y1 = cx-70+shift, cy-50, cx+40+shift, cy+60
			clear := true
			for _, p := range pts {
				if near(p.x, x0, y0, y1, p.y) || near(p.x, x1, y0, y1, p.y) || near(p.y, y0, x0, x1, p.x) || near(p.y, y1, x0, x1, p.x) {
					clear = false
					break
				}
			}
			if clear {
				break
			}
			if shift > 40 {
				t.Fatal("no clear box")
			}
		}
		var want []int
		hidden := 0
		for _, p := range pts {
			if p.x > x0 && p.x < x1 && p.y > y0 && p.y < y1 {
				if p.cls == 3 {
					hidden++
					continue
				}
				want = append(want, p.ix)
			}
		}
		slices.Sort(want)
		shift := chromedp.ButtonModifiers(chromedp.ModifierShift)
		must(t, ctx, chromedp.Steps(
			chromedp.MouseEvent(chromedp.MouseMoved, x0, y0, shift),
			chromedp.MouseEvent(chromedp.MousePressed, x0, y0, chromedp.ButtonLeft, shift, chromedp.ClickCount(1)),
			chromedp.MouseEvent(chromedp.MouseMoved, (x0+x1)/2, (y0+y1)/2, chromedp.ButtonLeft, shift),
			chromedp.MouseEvent(chromedp.MouseMoved, x1, y1, chromedp.ButtonLeft, shift),
			chromedp.MouseEvent(chromedp.MouseReleased, x1, y1, chromedp.ButtonLeft, shift, chromedp.ClickCount(1)),
		))
		must(t, ctx, chromedp.Click(chromedp.CSS(`#sel-json`)))
		raw := must(t, ctx, chromedp.Evaluate[string](`tsView.lastExport.text`))
		var got struct {
			Indices []int `json:"indices"`
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if len(want) < 20 || !slices.Equal(got.Indices, want) {
			t.Fatalf("selection exported %d indices %v…, want %d %v… (%d of hidden class 3 left out)", len(got.Indices), head(got.Indices), len(want), head(want), hidden)
		}
		must(t, ctx, chromedp.Click(chromedp.CSS(`#sel-csv`)))
		csv := must(t, ctx, chromedp.Evaluate[string](`tsView.lastExport.text`))
		lines := strings.Split(strings.TrimSpace(csv), "\n")
		if lines[0] != "index,class" || len(lines) != len(want)+1 || lines[1] != fmt.Sprintf("%d,%s", want[0], classNames10[f.e.Labels[want[0]]]) {
			t.Fatalf("CSV export: %q…", lines[:min(3, len(lines))])
		}
	})

	t.Run("lasso selection exports the indices inside", func(t *testing.T) {
		var cx, cy float64
		k := 0
		for _, p := range pts {
			if p.cls == 8 {
				cx, cy, k = cx+p.x, cy+p.y, k+1
			}
		}
		cx, cy = math.Round(cx/float64(k)), math.Round(cy/float64(k))
		// A quadrilateral over the blob, moved until no point lies within
		// a pixel of its edges.
		var poly [][2]float64
		found := false
		for tries := 0; tries < 2500 && !found; tries++ {
			sx, sy := float64(tries%50-25), float64(tries/50-25)
			poly = [][2]float64{{cx - 60 + sx, cy + 45 + sy}, {cx + 50 + sx, cy + 55 + sy}, {cx + 10 + sx, cy - 65 + sy}, {cx - 40 + sx, cy - 20 + sy}}
			found = true
			for _, p := range pts {
				for a := range poly {
					if segDist(p.x, p.y, poly[a], poly[(a+1)%len(poly)]) < 1 {
						found = false
					}
				}
			}
		}
		if !found {
			t.Fatal("no clear polygon")
		}
		var want []int
		for _, p := range pts {
			if p.cls != 3 && inPolygon(p.x, p.y, poly) {
				want = append(want, p.ix)
			}
		}
		slices.Sort(want)
		alt := chromedp.ButtonModifiers(chromedp.ModifierAlt)
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.MouseEvent(chromedp.MouseMoved, poly[0][0], poly[0][1], alt),
			chromedp.MouseEvent(chromedp.MousePressed, poly[0][0], poly[0][1], chromedp.ButtonLeft, alt, chromedp.ClickCount(1)),
		}
		for _, v := range poly[1:] {
			steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, v[0], v[1], chromedp.ButtonLeft, alt))
		}
		last := poly[len(poly)-1]
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, last[0], last[1], chromedp.ButtonLeft, alt, chromedp.ClickCount(1)))
		must(t, ctx, chromedp.Steps(steps...))
		must(t, ctx, chromedp.Click(chromedp.CSS(`#sel-json`)))
		raw := must(t, ctx, chromedp.Evaluate[string](`tsView.lastExport.text`))
		var got struct {
			Indices []int `json:"indices"`
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if len(want) < 20 || !slices.Equal(got.Indices, want) {
			t.Fatalf("lasso exported %d indices %v…, want %d %v…", len(got.Indices), head(got.Indices), len(want), head(want))
		}
	})

	t.Run("search by class and index", func(t *testing.T) {
		must(t, ctx, chromedp.Steps(chromedp.SetValue(chromedp.CSS(`#q`), "seven"), chromedp.Click(chromedp.CSS(`#search button`))))
		per := must(t, ctx, chromedp.Evaluate[[]int](`tsView.drawnPerClass`))
		for c, v := range per[:10] {
			if (c == 7) != (v > 0) {
				t.Fatalf("after searching seven: drawn per class %v", per)
			}
		}
		must(t, ctx, chromedp.Steps(chromedp.SetValue(chromedp.CSS(`#q`), "1234"), chromedp.Click(chromedp.CSS(`#search button`))))
		must(t, ctx, chromedp.Poll[bool](`document.querySelector('#detail p') && document.querySelector('#detail p').textContent.startsWith('#1234 ')`))
		// Zoomed in on it, images replace the dots.
		must(t, ctx, chromedp.Poll[bool](`tsView.imageMode && tsView.thumbsDrawn > 0`))
		if shot := os.Getenv("TSV_SHOTS"); shot != "" {
			saveShot(t, ctx, filepath.Join(shot, "browser-test-zoom.png"))
		}
	})
}

func near(v, edge, lo, hi, other float64) bool {
	return math.Abs(v-edge) < 1.5 && other > lo-1.5 && other < hi+1.5
}

// segDist is the distance from (x, y) to the segment a–b.
func segDist(x, y float64, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	u := ((x-a[0])*dx + (y-a[1])*dy) / (dx*dx + dy*dy)
	u = max(0, min(1, u))
	return math.Hypot(x-a[0]-u*dx, y-a[1]-u*dy)
}

// inPolygon is the even-odd test.
func inPolygon(x, y float64, p [][2]float64) bool {
	in := false
	for a, b := 0, len(p)-1; a < len(p); b, a = a, a+1 {
		if (p[a][1] > y) != (p[b][1] > y) && x < (p[b][0]-p[a][0])*(y-p[a][1])/(p[b][1]-p[a][1])+p[a][0] {
			in = !in
		}
	}
	return in
}

func head(v []int) []int { return v[:min(5, len(v))] }

func saveShot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	b := must(t, ctx, chromedp.CaptureScreenshot())
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReportOffline opens an exported report from disk with the network
// blocked: it shows every point, and thumbnails from the file itself.
func TestReportOffline(t *testing.T) {
	f := newFixture(t, 1500, 10, 1, false)
	d, err := loadMap(f.emb, f.pack)
	if err != nil {
		t.Fatal(err)
	}
	defer d.pack.Close()
	path := filepath.Join(f.dir, "report.html")
	kept, err := writeReport(d, path, 400)
	if err != nil || kept != 400 {
		t.Fatalf("report: %d thumbnails, %v", kept, err)
	}
	ctx := newBrowser(t, 1100, 750)
	var mu sync.Mutex
	var requests []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}}); err != nil {
		t.Fatal(err)
	}
	must(t, ctx, chromedp.Navigate("file://"+path))
	waitReady(t, ctx)
	if drawn := must(t, ctx, chromedp.Evaluate[int](`tsView.drawn`)); drawn != 1500 {
		t.Fatalf("report drew %d points, want 1500", drawn)
	}
	// Zoom on a point that has a thumbnail in the report: images appear.
	var some int
	for k := range 1500 {
		if must(t, ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!TSV_REPORT.thumbs[%d]`, k))) {
			some = k
			break
		}
	}
	must(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`tsView.zoomOn(%d, 10)`, some)))
	must(t, ctx, chromedp.Poll[bool](`tsView.imageMode && tsView.thumbsDrawn > 0`))
	p := must(t, ctx, chromedp.Evaluate[map[string]float64](fmt.Sprintf(`tsView.screenOf(%d)`, some)))
	must(t, ctx, chromedp.MouseEvent(chromedp.MouseMoved, p["x"], p["y"]))
	must(t, ctx, chromedp.Poll[bool](`(() => { const i = document.getElementById('card-img'); return !document.getElementById('card').hidden && i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/png;base64,'); })()`))
	if shot := os.Getenv("TSV_SHOTS"); shot != "" {
		saveShot(t, ctx, filepath.Join(shot, "report-test.png"))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range requests {
		if !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "blob:") {
			t.Fatalf("the report requested %s", u)
		}
	}
}

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tsimcne/tsimcne-go/embedio"
	"github.com/tsimcne/tsimcne-go/internal/sampleimg"
)

func newTestServer(t testing.TB, f *fixture, withPack bool) (*httptest.Server, *server) {
	t.Helper()
	pack := ""
	if withPack {
		pack = f.pack
	}
	d, err := loadMap(f.emb, pack)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(d)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		if d.pack != nil {
			d.pack.Close()
		}
	})
	return ts, s
}

func get(t testing.TB, url string) (int, string, []byte) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, r.Header.Get("Content-Type"), b
}

// packGetPNG runs what `pack get` does for sample i: the same image
// wrapping and the same encoder, into memory.
func packGetPNG(t testing.TB, f *fixture, i int) []byte {
	t.Helper()
	d, err := loadMap(f.emb, f.pack)
	if err != nil {
		t.Fatal(err)
	}
	defer d.pack.Close()
	s, err := d.pack.Get(i)
	if err != nil {
		t.Fatal(err)
	}
	img, err := sampleimg.Image(&s)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAPI(t *testing.T) {
	f := newFixture(t, 500, 12, 3, true)
	ts, _ := newTestServer(t, f, true)

	code, ct, b := get(t, ts.URL+"/api/meta")
	var m metaJSON
	if code != 200 || ct != "application/json" || json.Unmarshal(b, &m) != nil {
		t.Fatalf("meta: %d %s %s", code, ct, b)
	}
	total := 0
	for _, c := range m.Counts {
		total += c
	}
	if m.Rows != 500 || total != 500 || len(m.Classes) != 10 || len(m.Colors) != 10 || m.Pack == nil || m.Pack.Samples != 500 || m.FeatureDim != 8 || m.Metadata["model"] != "test" {
		t.Fatalf("meta %+v", m)
	}

	code, _, b = get(t, ts.URL+"/api/points")
	if code != 200 || len(b) != 16+16*500 || string(b[:4]) != "TSVP" || binary.LittleEndian.Uint32(b[8:]) != 500 {
		t.Fatalf("points: %d, %d bytes", code, len(b))
	}
	for i := range 500 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(b[16+4*i:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(b[16+4*500+4*i:]))
		l := int32(binary.LittleEndian.Uint32(b[16+8*500+4*i:]))
		ix := int32(binary.LittleEndian.Uint32(b[16+12*500+4*i:]))
		if x != f.e.Coords[2*i] || y != f.e.Coords[2*i+1] || l != f.e.Labels[i] || ix != int32(i) {
			t.Fatalf("point %d: %v %v %d %d", i, x, y, l, ix)
		}
	}

	// Every thumbnail is byte for byte what `pack get` writes.
	for _, i := range []int{0, 1, 250, 499} {
		code, ct, b := get(t, fmt.Sprintf("%s/api/thumb/%d", ts.URL, i))
		if code != 200 || ct != "image/png" || !bytes.Equal(b, packGetPNG(t, f, i)) {
			t.Fatalf("thumb %d: %d %s, equal to pack get: %v", i, code, ct, bytes.Equal(b, packGetPNG(t, f, i)))
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		side := f.side
		for p := range side * side {
			r, g, bb, _ := img.At(p%side, p/side).RGBA()
			if s := f.images[i][3*p:]; byte(r>>8) != s[0] || byte(g>>8) != s[1] || byte(bb>>8) != s[2] {
				t.Fatalf("thumb %d: pixel %d is %d,%d,%d, stored %v", i, p, r>>8, g>>8, bb>>8, s[:3])
			}
		}
	}
	code, _, b = get(t, ts.URL+"/api/thumb/7?size=48")
	if img, err := png.Decode(bytes.NewReader(b)); code != 200 || err != nil || img.Bounds().Dx() != 48 {
		t.Fatalf("sized thumb: %d %v", code, err)
	}

	code, _, b = get(t, ts.URL+"/api/sample/42")
	var smp map[string]any
	if code != 200 || json.Unmarshal(b, &smp) != nil || smp["name"] != "img/42.png" || smp["class"] != classNames10[f.e.Labels[42]] {
		t.Fatalf("sample: %d %s", code, b)
	}

	for _, space := range []string{"map", "features"} {
		code, _, b = get(t, ts.URL+"/api/neighbors/3?k=5&space="+space)
		var nb struct {
			Neighbors []neighbor `json:"neighbors"`
		}
		if code != 200 || json.Unmarshal(b, &nb) != nil || len(nb.Neighbors) != 5 {
			t.Fatalf("neighbors %s: %d %s", space, code, b)
		}
		want := bruteNeighbors(f.e, 3, 5, space == "features")
		for j, e := range nb.Neighbors {
			if e.Index != int64(want[j]) {
				t.Fatalf("%s neighbours of 3: %v, want %v", space, nb.Neighbors, want)
			}
		}
	}
}

func bruteNeighbors(e *embedio.Embedding, r, k int, features bool) []int {
	dim, v := 2, e.Coords
	if features {
		dim, v = e.FeatureDim, e.Features
	}
	type c struct {
		i int
		d float64
	}
	var all []c
	for i := range e.Len() {
		if i == r {
			continue
		}
		var s float64
		for j := range dim {
			t := float64(v[i*dim+j] - v[r*dim+j])
			s += t * t
		}
		all = append(all, c{i, s})
	}
	for a := range all { // selection sort of the first k: small inputs
		for b := a + 1; b < len(all); b++ {
			if all[b].d < all[a].d {
				all[a], all[b] = all[b], all[a]
			}
		}
		if a == k {
			break
		}
	}
	out := make([]int, k)
	for j := range out {
		out[j] = all[j].i
	}
	return out
}

// Bad indices and path tricks get a JSON 4xx, never a file or a crash.
func TestAPIErrors(t *testing.T) {
	f := newFixture(t, 50, 8, 1, false)
	ts, _ := newTestServer(t, f, true)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		path string
		code int
	}{
		{"/api/thumb/50", 404},
		{"/api/thumb/-1", 404},
		{"/api/thumb/99999999999999999999", 400},
		{"/api/thumb/abc", 400},
		{"/api/thumb/1.5", 400},
		{"/api/thumb/0x10", 400},
		{"/api/thumb/..%2F..%2Fetc%2Fpasswd", 400},
		{"/api/thumb/%2e%2e", 400},
		{"/api/thumb/../../../etc/passwd", 400},
		{"/api/thumb/1/../../etc/passwd", 400},
		{"//etc/passwd", 404}, // parsed as host "etc", path "/passwd"
		{"/api/thumb/3?size=0", 400},
		{"/api/thumb/3?size=100000", 400},
		{"/api/thumb/3?size=x", 400},
		{"/api/sample/50", 404},
		{"/api/neighbors/-5", 404},
		{"/api/neighbors/3?k=0", 400},
		{"/api/neighbors/3?k=100000", 400},
		{"/api/neighbors/3?space=features", 404},
		{"/api/neighbors/3?space=pixels", 400},
		{"/etc/passwd", 404},
		{"/api/nothing", 404},
		{"/static/view.js", 404},
	} {
		req, _ := http.NewRequest("GET", ts.URL+c.path, nil)
		req.URL.Opaque, _, _ = strings.Cut(c.path, "?") // send the path exactly as written
		r, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		var e map[string]string
		if r.StatusCode != c.code || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil || e["error"] == "" {
			t.Errorf("%s: %d %s %q, want %d with a JSON error", c.path, r.StatusCode, r.Header.Get("Content-Type"), b, c.code)
		}
	}
}

func TestWithoutPack(t *testing.T) {
	f := newFixture(t, 40, 8, 1, false)
	ts, _ := newTestServer(t, f, false)
	code, _, b := get(t, ts.URL+"/api/meta")
	var m metaJSON
	if code != 200 || json.Unmarshal(b, &m) != nil || m.Pack != nil || !strings.Contains(m.ThumbsNote, "need the pack") {
		t.Fatalf("meta without pack: %s", b)
	}
	code, _, b = get(t, ts.URL+"/api/thumb/3")
	if code != 404 || !strings.Contains(string(b), "need the pack") {
		t.Fatalf("thumb without pack: %d %s", code, b)
	}
	if code, _, _ := get(t, ts.URL+"/api/points"); code != 200 {
		t.Fatalf("points without pack: %d", code)
	}
}

// A map of one pack shown with another is refused, naming the mismatch.
func TestRefusesForeignPack(t *testing.T) {
	a := newFixture(t, 60, 8, 1, false)
	b := newFixture(t, 61, 8, 1, false)
	if _, err := loadMap(a.emb, b.pack); err == nil || !strings.Contains(err.Error(), "does not belong") || !strings.Contains(err.Error(), "61") {
		t.Fatalf("map of 60 with pack of 61: %v", err)
	}
	// Same count, other content: the fingerprint tells them apart.
	c := newFixture(t, 60, 8, 1, false)
	c.e.Labels[0] = (c.e.Labels[0] + 1) % 10
	other := filepath.Join(c.dir, "other.tscn")
	if err := os.Rename(c.pack, other); err != nil {
		t.Fatal(err)
	}
	d := newFixture(t, 60, 8, 3, false) // same labels (same seed), other pixels and channels
	_ = d
	e2 := *a.e
	e2.Meta = map[string]string{embedio.MetaSourceFingerprint: "00000000000000000000000000000000", embedio.MetaSourceSamples: "60"}
	p := filepath.Join(a.dir, "fp.arrow")
	if err := embedio.Write(p, &e2); err != nil {
		t.Fatal(err)
	}
	if _, err := loadMap(p, a.pack); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("wrong fingerprint: %v", err)
	}
	// No recorded identity (an older file): the labels must still agree.
	e3 := *a.e
	e3.Meta = nil
	e3.Labels = append([]int32(nil), a.e.Labels...)
	e3.Labels[10] = (e3.Labels[10] + 1) % 10
	if err := embedio.Write(p, &e3); err != nil {
		t.Fatal(err)
	}
	if _, err := loadMap(p, a.pack); err == nil || !strings.Contains(err.Error(), "sample 10 has label") {
		t.Fatalf("wrong labels: %v", err)
	}
	// Parquet is accepted like Arrow.
	pq := filepath.Join(a.dir, "emb.parquet")
	if err := embedio.WriteFile(pq, a.e); err != nil {
		t.Fatal(err)
	}
	if d, err := loadMap(pq, a.pack); err != nil || d.n != 60 {
		t.Fatalf("parquet: %v", err)
	} else {
		d.pack.Close()
	}
}

// TestConcurrentClients hits every endpoint from 64 clients at once (run
// under -race by make test) with a cache smaller than the thumbnails, so
// that eviction runs concurrently too.
func TestConcurrentClients(t *testing.T) {
	f := newFixture(t, 300, 16, 3, true)
	ts, s := newTestServer(t, f, true)
	s.cache = newPNGCache(20 << 10)
	want := make([][]byte, 300)
	for i := range want {
		want[i] = packGetPNG(t, f, i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := range 64 {
		wg.Go(func() {
			for k := range 40 {
				i := (c*41 + k*7) % 300
				var path string
				switch k % 5 {
				case 0, 1:
					path = fmt.Sprintf("/api/thumb/%d", i)
				case 2:
					path = fmt.Sprintf("/api/thumb/%d?size=%d", i, 8+k%3*8)
				case 3:
					path = fmt.Sprintf("/api/neighbors/%d?k=4", i)
				case 4:
					path = fmt.Sprintf("/api/thumb/%d", 300+i) // out of range
				}
				r, err := http.Get(ts.URL + path)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				switch {
				case k%5 == 4 && r.StatusCode != 404:
					errs <- fmt.Errorf("%s: %d", path, r.StatusCode)
				case k%5 < 2 && !bytes.Equal(b, want[i]):
					errs <- fmt.Errorf("%s: not the pack get bytes", path)
				case k%5 != 4 && r.StatusCode != 200:
					errs <- fmt.Errorf("%s: %d %s", path, r.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, used := s.cache.stats(); used > 20<<10 || n == 0 {
		t.Fatalf("cache holds %d entries, %d bytes (limit %d)", n, used, 20<<10)
	}
}

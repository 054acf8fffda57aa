package main

import (
	"container/list"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/tsimcne/tsimcne-go/internal/sampleimg"
)

//go:embed static
var staticFiles embed.FS

// Limits of the API.
const (
	maxThumbSize   = 512 // pixels, longer side
	maxNeighbors   = 200
	defaultK       = 12
	thumbCacheSize = 64 << 20 // bytes of encoded PNGs kept
)

// server answers the page and its API. Every handler only reads mapData;
// the thumbnail cache is the one shared mutable state, behind its mutex.
type server struct {
	d     *mapData
	meta  []byte // /api/meta body
	cache *pngCache
	mux   *http.ServeMux
}

func newServer(d *mapData) (*server, error) {
	meta, err := json.Marshal(d.meta())
	if err != nil {
		return nil, err
	}
	s := &server{d: d, meta: meta, cache: newPNGCache(thumbCacheSize), mux: http.NewServeMux()}
	static, _ := fs.Sub(staticFiles, "static")
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveStatic(w, static, "index.html", "text/html; charset=utf-8")
	})
	s.mux.HandleFunc("GET /view.js", func(w http.ResponseWriter, r *http.Request) {
		serveStatic(w, static, "view.js", "text/javascript; charset=utf-8")
	})
	s.mux.HandleFunc("GET /view.css", func(w http.ResponseWriter, r *http.Request) {
		serveStatic(w, static, "view.css", "text/css; charset=utf-8")
	})
	s.mux.HandleFunc("GET /api/meta", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.meta)
	})
	s.mux.HandleFunc("GET /api/points", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(d.points)))
		w.Write(d.points)
	})
	s.mux.HandleFunc("GET /api/thumb/{index}", s.thumb)
	s.mux.HandleFunc("GET /api/sample/{index}", s.sample)
	s.mux.HandleFunc("GET /api/neighbors/{index}", s.neighbors)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		jsonError(w, http.StatusNotFound, "no such page or API: see README (view)")
	})
	return s, nil
}

// ServeHTTP refuses any path that is not already clean (dot segments,
// doubled or encoded slashes) with a JSON 400 instead of letting the mux
// redirect it: nothing here maps a request path to a file, and a request
// that tries to look like one gets told so.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, raw := r.URL.Path, strings.ToLower(r.URL.RawPath)
	if p == "" || p[0] != '/' || path.Clean(p) != p || strings.Contains(p, "\\") ||
		strings.Contains(raw, "%2f") || strings.Contains(raw, "%2e") || strings.Contains(raw, "%5c") {
		jsonError(w, http.StatusBadRequest, "malformed path")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func serveStatic(w http.ResponseWriter, fsys fs.FS, name, ctype string) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "view: embedded "+name+" missing")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(b)
}

// index parses the {index} path value as a decimal dataset index and finds
// its row; it writes the error itself and returns ok=false on failure.
func (s *server) index(w http.ResponseWriter, r *http.Request) (ix int64, row int, ok bool) {
	v := r.PathValue("index")
	ix, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("index %q is not an integer", v))
		return 0, 0, false
	}
	row, err = s.d.row(ix)
	if err != nil {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("index %d is not in the map (%d points)", ix, s.d.n))
		return 0, 0, false
	}
	return ix, row, true
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer in %d..%d", name, v, lo, hi)
	}
	return n, nil
}

// thumb serves sample {index} as PNG: with no size, exactly the file `pack
// get DATA index` writes; with size=S, scaled so its longer side is S.
func (s *server) thumb(w http.ResponseWriter, r *http.Request) {
	ix, _, ok := s.index(w, r)
	if !ok {
		return
	}
	if s.d.pack == nil {
		jsonError(w, http.StatusNotFound, "thumbnails need the pack: start view with EMB DATA")
		return
	}
	size, err := intParam(r, "size", 0, 1, maxThumbSize)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, err := s.thumbPNG(ix, size)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(b)
}

// thumbPNG encodes sample ix at size (0: as stored), through the cache.
func (s *server) thumbPNG(ix int64, size int) ([]byte, error) {
	key := pngKey{ix, size}
	if b, ok := s.cache.get(key); ok {
		return b, nil
	}
	smp, err := s.d.pack.Get(int(ix))
	if err != nil {
		return nil, err
	}
	img, err := sampleimg.Image(&smp)
	if err != nil {
		return nil, fmt.Errorf("sample %d: %w", ix, err)
	}
	if size > 0 {
		img = sampleimg.ScaleToFit(img, size)
	}
	b, err := sampleimg.EncodePNG(img)
	if err != nil {
		return nil, fmt.Errorf("sample %d: png: %w", ix, err)
	}
	s.cache.put(key, b)
	return b, nil
}

// sample serves what the page's card shows about one point.
func (s *server) sample(w http.ResponseWriter, r *http.Request) {
	ix, row, ok := s.index(w, r)
	if !ok {
		return
	}
	out := map[string]any{"index": ix, "x": s.d.emb.Coords[2*row], "y": s.d.emb.Coords[2*row+1]}
	if s.d.emb.Labels != nil {
		l := s.d.emb.Labels[row]
		out["label"] = l
		if names := classNames(s.d.emb); l >= 0 && int(l) < len(names) {
			out["class"] = names[l]
		}
	}
	if s.d.pack != nil {
		out["name"] = s.d.pack.Name(int(ix))
	}
	writeJSON(w, out)
}

// neighbors serves the k nearest points of {index} in the map, and in
// feature space when the file has features (space=features).
func (s *server) neighbors(w http.ResponseWriter, r *http.Request) {
	ix, row, ok := s.index(w, r)
	if !ok {
		return
	}
	k, err := intParam(r, "k", defaultK, 1, maxNeighbors)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	space := r.URL.Query().Get("space")
	switch space {
	case "", "map":
		space = "map"
	case "features":
		if s.d.emb.Features == nil {
			jsonError(w, http.StatusNotFound, "the embedding file has no features column (embed --features)")
			return
		}
	default:
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("space=%q: want map or features", space))
		return
	}
	writeJSON(w, map[string]any{"index": ix, "space": space, "neighbors": s.d.neighbors(row, k, space == "features")})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// pngCache is a least-recently-used cache of encoded thumbnails bounded by
// their total size, so a client walking the whole map cannot grow memory
// without bound.
type pngCache struct {
	mu    sync.Mutex
	limit int
	used  int
	ll    *list.List
	m     map[pngKey]*list.Element
}

type pngKey struct {
	ix   int64
	size int
}

type pngEntry struct {
	key pngKey
	b   []byte
}

func newPNGCache(limit int) *pngCache {
	return &pngCache{limit: limit, ll: list.New(), m: map[pngKey]*list.Element{}}
}

func (c *pngCache) get(k pngKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*pngEntry).b, true
	}
	return nil, false
}

func (c *pngCache) put(k pngKey, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok || len(b) > c.limit {
		return
	}
	c.m[k] = c.ll.PushFront(&pngEntry{k, b})
	c.used += len(b)
	for c.used > c.limit {
		e := c.ll.Back()
		en := e.Value.(*pngEntry)
		c.ll.Remove(e)
		delete(c.m, en.key)
		c.used -= len(en.b)
	}
}

// stats reports the cache's entries and bytes (for tests).
func (c *pngCache) stats() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.used
}

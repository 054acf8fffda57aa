package source_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// luma is PIL's convert("L"), written out independently of the package.
func luma(r, g, b byte) byte {
	return byte((int(r)*19595 + int(g)*38470 + int(b)*7471 + 1<<15) >> 16)
}

// comparePixels checks got against want exactly, or for lossy formats
// with a mean and maximum absolute difference.
func comparePixels(t *testing.T, name string, got, want []byte, lossy bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", name, len(got), len(want))
	}
	if !lossy {
		if !bytes.Equal(got, want) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			t.Errorf("%s: pixels differ first at byte %d: %d, want %d", name, i, got[i], want[i])
		}
		return
	}
	sum, worst := 0, 0
	for i := range got {
		d := int(got[i]) - int(want[i])
		d = max(d, -d)
		sum += d
		worst = max(worst, d)
	}
	if mean := float64(sum) / float64(len(got)); mean > 4 || worst > 48 {
		t.Errorf("%s: lossy pixels too far: mean abs diff %.2f, max %d", name, mean, worst)
	}
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	fx, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	kind, err := source.Detect([]string{dir})
	if err != nil || kind != source.KindFolder {
		t.Fatalf("Detect = %q, %v; want folder", kind, err)
	}
	ds := open(t, []string{dir}, source.Options{})
	if !slices.Equal(ds.Classes(), fx.Classes) || ds.Classes2() != nil {
		t.Errorf("Classes = %q, want %q", ds.Classes(), fx.Classes)
	}
	if ds.Len() != len(fx.Samples) {
		t.Fatalf("Len = %d, want %d (hidden, .txt and root-level files must be ignored: %q)", ds.Len(), len(fx.Samples), fx.Ignored)
	}
	formats := map[string]bool{}
	var s source.Sample
	for i, want := range fx.Samples {
		if err := ds.Load(i, &s); err != nil {
			t.Fatalf("Load(%d): %v", i, err)
		}
		if s.Name != want.Name || s.Label != want.Label || s.Label2 != -1 || s.Format != want.Format {
			t.Fatalf("sample %d: %q label %d/%d format %q; want %q label %d format %q", i, s.Name, s.Label, s.Label2, s.Format, want.Name, want.Label, want.Format)
		}
		if s.Width != want.Width || s.Height != want.Height || s.Channels != 3 || s.Encoded != nil {
			t.Fatalf("%s: %dx%dx%d, want %dx%dx3", s.Name, s.Width, s.Height, s.Channels, want.Width, want.Height)
		}
		comparePixels(t, s.Name, s.Pixels, want.RGB, want.Lossy)
		if want.Decoded != nil {
			// Lossy WebP: as libwebp decodes it, not as Go's YCbCr would.
			if d := maxDiff(s.Pixels, want.Decoded); d > 1 {
				t.Errorf("%s: differs from libwebp's decoding by up to %d", s.Name, d)
			}
		}
		formats[s.Format] = true
	}
	for _, f := range []string{"jpeg", "png", "gif", "bmp", "webp"} {
		if !formats[f] {
			t.Errorf("no %s image in the fixture", f)
		}
	}
	// Order: class, then path in byte order (a nested path sorts by its
	// full relative path).
	var names []string
	for i := 0; i < 5; i++ {
		ds.Load(i, &s)
		names = append(names, s.Name)
	}
	if want := []string{"bird/gray.jpg", "bird/gray.png", "bird/gray16.png", "bird/sub/deep/paletted.gif", "bird/x.BMP"}; !slices.Equal(names, want) {
		t.Errorf("first names %q, want %q", names, want)
	}
	loadConcurrently(t, ds)
}

func maxDiff(a, b []byte) int {
	worst := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		worst = max(worst, d, -d)
	}
	return worst
}

func TestFolderGray(t *testing.T) {
	dir := t.TempDir()
	fx, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	ds := open(t, []string{dir}, source.Options{Channels: 1})
	var s source.Sample
	for i, want := range fx.Samples {
		if err := ds.Load(i, &s); err != nil {
			t.Fatal(err)
		}
		if s.Channels != 1 || len(s.Pixels) != want.Width*want.Height {
			t.Fatalf("%s: %d channels, %d bytes", s.Name, s.Channels, len(s.Pixels))
		}
		exp := make([]byte, want.Width*want.Height)
		for k := range exp {
			p := want.RGB[3*k : 3*k+3]
			if want.Gray {
				exp[k] = p[0]
			} else {
				exp[k] = luma(p[0], p[1], p[2])
			}
		}
		comparePixels(t, s.Name, s.Pixels, exp, want.Lossy)
	}
}

func TestFolderKeepEncoded(t *testing.T) {
	dir := t.TempDir()
	fx, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ds := open(t, []string{dir}, source.Options{KeepEncoded: true})
	var s source.Sample
	for i, want := range fx.Samples {
		if err := ds.Load(i, &s); err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(want.Name)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Encoded, file) || s.Pixels != nil {
			t.Fatalf("%s: Encoded is not the file's bytes (or Pixels set)", s.Name)
		}
		if s.Width != want.Width || s.Height != want.Height || s.Channels != 3 || s.Format != want.Format {
			t.Fatalf("%s: %dx%dx%d %s", s.Name, s.Width, s.Height, s.Channels, s.Format)
		}
	}
	loadConcurrently(t, ds)
}

func TestFolderResize(t *testing.T) {
	dir := t.TempDir()
	fx, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	// dog/a.png is 6×6: a resize to its own size must not change it.
	ds := open(t, []string{dir}, source.Options{ResizeW: 6, ResizeH: 6})
	var s source.Sample
	for i, want := range fx.Samples {
		if err := ds.Load(i, &s); err != nil {
			t.Fatal(err)
		}
		if s.Width != 6 || s.Height != 6 || s.Channels != 3 || len(s.Pixels) != 108 {
			t.Fatalf("%s: %dx%dx%d, %d bytes; want 6x6x3", s.Name, s.Width, s.Height, s.Channels, len(s.Pixels))
		}
		if want.Name == "dog/a.png" {
			comparePixels(t, "identity resize of "+s.Name, s.Pixels, want.RGB, false)
		}
		// Bilinear resizing keeps each channel's mean close.
		for c := 0; c < 3; c++ {
			if d := channelMean(s.Pixels, c) - channelMean(want.RGB, c); d > 12 || d < -12 {
				t.Errorf("%s channel %d: mean moved by %.1f after resizing %dx%d to 6x6", s.Name, c, d, want.Width, want.Height)
			}
		}
	}
	loadConcurrently(t, ds)

	// A flat image stays flat when shrunk, also to one channel.
	flat := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 37, 23))
	for k := 0; k < len(img.Pix); k += 4 {
		copy(img.Pix[k:], []byte{200, 100, 50, 255})
	}
	writePNG(t, filepath.Join(flat, "c", "flat.png"), img)
	for _, ch := range []int{3, 1} {
		ds := open(t, []string{flat}, source.Options{ResizeW: 5, ResizeH: 4, Channels: ch})
		if err := ds.Load(0, &s); err != nil {
			t.Fatal(err)
		}
		want := []byte{200, 100, 50}
		if ch == 1 {
			want = []byte{luma(200, 100, 50)}
		}
		for k := 0; k < 20; k++ {
			if !bytes.Equal(s.Pixels[k*ch:(k+1)*ch], want) {
				t.Fatalf("channels %d: pixel %d = %v, want %v", ch, k, s.Pixels[k*ch:(k+1)*ch], want)
			}
		}
	}
}

// TestFolderResizeMatchesPIL compares resizing with PIL's
// Image.resize(BILINEAR) (scripts/source/make_resize_ref.py), shrinking,
// mixed and enlarging.
func TestFolderResizeMatchesPIL(t *testing.T) {
	root := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "resize_src.png"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "c"), 0o755)
	os.WriteFile(filepath.Join(root, "c", "src.png"), src, 0o644)
	for _, sz := range [][2]int{{8, 6}, {13, 29}, {64, 48}} {
		want, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("resize_%dx%d.rgb", sz[0], sz[1])))
		if err != nil {
			t.Fatal(err)
		}
		ds := open(t, []string{root}, source.Options{ResizeW: sz[0], ResizeH: sz[1]})
		var s source.Sample
		if err := ds.Load(0, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Pixels) != len(want) {
			t.Fatalf("%v: %d bytes, PIL %d", sz, len(s.Pixels), len(want))
		}
		if d := maxDiff(s.Pixels, want); d > 1 {
			t.Errorf("resize to %dx%d differs from PIL's BILINEAR by up to %d", sz[0], sz[1], d)
		}
	}
}

func channelMean(px []byte, c int) float64 {
	sum := 0
	for k := c; k < len(px); k += 3 {
		sum += int(px[k])
	}
	return float64(sum) / float64(len(px)/3)
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFolderBroken(t *testing.T) {
	dir := t.TempDir()
	fx, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 5, Broken: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []source.Options{{}, {KeepEncoded: true}, {ResizeW: 4, ResizeH: 4}} {
		ds := open(t, []string{dir}, opt)
		if ds.Len() != len(fx.Samples) {
			t.Fatalf("Len = %d, want %d", ds.Len(), len(fx.Samples))
		}
		broken := 0
		var s source.Sample
		for i, want := range fx.Samples {
			err := ds.Load(i, &s)
			if want.Broken == "" {
				if err != nil {
					t.Errorf("%s: %v", want.Name, err)
				}
				continue
			}
			broken++
			path := filepath.Join(dir, filepath.FromSlash(want.Name))
			if err == nil {
				t.Errorf("%s (%s): Load succeeded", want.Name, want.Broken)
			} else if !strings.Contains(err.Error(), path) {
				t.Errorf("%s: error %q does not name the file", want.Name, err)
			} else {
				t.Logf("%s: %v", want.Broken, err)
			}
		}
		if broken != 3 {
			t.Errorf("%d broken files, want 3", broken)
		}
	}
}

func TestFolderHugeHeader(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	// IHDR data starts at byte 16 (8 signature, 4 length, 4 type); its CRC
	// covers type and data, bytes 12..28.
	binary.BigEndian.PutUint32(b[16:], 100000)
	binary.BigEndian.PutUint32(b[20:], 100000)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	os.MkdirAll(filepath.Join(dir, "c"), 0o755)
	os.WriteFile(filepath.Join(dir, "c", "huge.png"), b, 0o644)
	ds := open(t, []string{dir}, source.Options{})
	var s source.Sample
	if err := ds.Load(0, &s); err == nil || !strings.Contains(err.Error(), "100000x100000") {
		t.Errorf("Load of a 100000×100000 header: %v", err)
	}
}

func TestFolderRoots(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	fa, err := sourcetest.WriteImageFolder(a, sourcetest.FolderOptions{Seed: 6})
	if err != nil {
		t.Fatal(err)
	}
	// The second root has an extra class "ant" that sorts first: labels
	// come from the union of class names.
	writePNG(t, filepath.Join(b, "ant", "x.png"), image.NewGray(image.Rect(0, 0, 2, 2)))
	writePNG(t, filepath.Join(b, "dog", "y.png"), image.NewGray(image.Rect(0, 0, 3, 2)))
	ds := open(t, []string{a, b}, source.Options{})
	if want := []string{"ant", "bird", "cat", "dog"}; !slices.Equal(ds.Classes(), want) {
		t.Fatalf("Classes = %q, want %q", ds.Classes(), want)
	}
	if ds.Len() != len(fa.Samples)+2 {
		t.Fatalf("Len = %d, want %d", ds.Len(), len(fa.Samples)+2)
	}
	var s source.Sample
	prefix := filepath.ToSlash(filepath.Clean(a)) + "/"
	for i, want := range fa.Samples {
		if err := ds.Load(i, &s); err != nil {
			t.Fatal(err)
		}
		if s.Name != prefix+want.Name || s.Label != want.Label+1 {
			t.Fatalf("sample %d: %q label %d; want %q label %d", i, s.Name, s.Label, prefix+want.Name, want.Label+1)
		}
	}
	n := len(fa.Samples)
	for k, want := range []struct {
		name  string
		label int32
	}{{"ant/x.png", 0}, {"dog/y.png", 3}} {
		if err := ds.Load(n+k, &s); err != nil {
			t.Fatal(err)
		}
		if s.Name != filepath.ToSlash(filepath.Clean(b))+"/"+want.name || s.Label != want.label {
			t.Errorf("sample %d: %q label %d, want %s label %d", n+k, s.Name, s.Label, want.name, want.label)
		}
	}
}

func TestFolderSymlinkedClass(t *testing.T) {
	elsewhere, root := t.TempDir(), t.TempDir()
	writePNG(t, filepath.Join(elsewhere, "n", "b.png"), image.NewGray(image.Rect(0, 0, 2, 3)))
	writePNG(t, filepath.Join(root, "a", "x.png"), image.NewGray(image.Rect(0, 0, 1, 1)))
	if err := os.Symlink(elsewhere, filepath.Join(root, "linked")); err != nil {
		t.Skip(err)
	}
	ds := open(t, []string{root}, source.Options{})
	if !slices.Equal(ds.Classes(), []string{"a", "linked"}) || ds.Len() != 2 {
		t.Fatalf("Classes %q, Len %d; want [a linked], 2", ds.Classes(), ds.Len())
	}
	var s source.Sample
	if err := ds.Load(1, &s); err != nil || s.Name != "linked/n/b.png" || s.Label != 1 || s.Width != 2 || s.Height != 3 {
		t.Errorf("Load(1): %q label %d %dx%d, %v", s.Name, s.Label, s.Width, s.Height, err)
	}
}

func TestFolderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	openErr(t, []string{dir}, source.Options{ResizeW: 4, ResizeH: 4, KeepEncoded: true}, "exclude each other")
	openErr(t, []string{dir}, source.Options{ResizeW: 4}, "both width and height")
	openErr(t, []string{dir}, source.Options{Channels: 2}, "channels 2")
	openErr(t, []string{dir}, source.Options{Kind: source.KindFolder, Fashion: true}, "only to IDX")
	noClasses := t.TempDir()
	os.WriteFile(filepath.Join(noClasses, "a.png"), nil, 0o644)
	openErr(t, []string{noClasses}, source.Options{Kind: source.KindFolder}, "no class subdirectories")
	noImages := t.TempDir()
	os.MkdirAll(filepath.Join(noImages, "c", "d"), 0o755)
	openErr(t, []string{noImages}, source.Options{Kind: source.KindFolder}, "no images")
	openErr(t, []string{filepath.Join(dir, "dog", "a.png")}, source.Options{Kind: source.KindFolder}, "not a directory")
}

package sourcetest

import (
	"bytes"
	"embed"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/image/bmp"
	_ "golang.org/x/image/webp" // for DecodeConfig of the WebP fixtures
)

// webpFixtures are the WebP files made by scripts/source/make_webp.py (Go
// cannot encode WebP), each with NAME.rgb: the RGB pixels it was encoded
// from.
//
//go:embed testdata/*.webp testdata/*.rgb
var webpFixtures embed.FS

// FolderOptions controls WriteImageFolder.
type FolderOptions struct {
	// Seed makes the pixels; the file set is the same for every seed.
	Seed int64
	// Broken adds three damaged images that Load must reject: a JPEG cut in
	// half (cat/truncated.jpg), random bytes named .png (dog/garbage.png)
	// and an empty file (bird/empty.jpg).
	Broken bool
}

// FolderSample is what a reader must make of one file of the folder.
type FolderSample struct {
	// Name is the path relative to the root, slash-separated:
	// "<class>/<path in class>".
	Name string
	// Label indexes Folder.Classes.
	Label int32
	// Format is the encoding: "jpeg", "png", "gif", "bmp" or "webp".
	Format string
	// Width and Height are the image's size.
	Width, Height int
	// Gray is set for images stored with one channel.
	Gray bool
	// Alpha is set for images stored with an alpha channel.
	Alpha bool
	// Lossy is set for JPEG and lossy WebP: RGB holds the pixels before
	// encoding and decoded ones only come close to them.
	Lossy bool
	// RGB is the image as HWC RGB bytes: alpha dropped (the stored colour
	// kept), gray replicated to three channels.
	RGB []byte
	// Decoded, for lossy WebP, is what libwebp (through PIL) decodes the
	// file to: a reader that converts colours as libwebp does matches it
	// within rounding. Nil for other files.
	Decoded []byte
	// Broken, when not empty, says how the file is damaged; a reader must
	// fail on it. The other fields are then zero but Name and Label.
	Broken string
}

// Folder describes an image folder written by WriteImageFolder.
type Folder struct {
	// Root is the directory holding the class directories.
	Root string
	// Classes are the class directory names, sorted.
	Classes []string
	// Samples are every image file in dataset order (class, then path in
	// byte order), broken ones included.
	Samples []FolderSample
	// Ignored are files a reader must skip (hidden files and directories,
	// non-image extensions), relative to Root.
	Ignored []string
}

// Good returns the samples that are not broken, in dataset order.
func (f *Folder) Good() []FolderSample {
	var out []FolderSample
	for _, s := range f.Samples {
		if s.Broken == "" {
			out = append(out, s)
		}
	}
	return out
}

// WriteImageFolder writes an image folder root/<class>/**/<image> into
// dir with classes "bird", "cat" and "dog" and, among them, every format
// and colour type a reader must handle: grayscale PNG (8- and 16-bit) and
// JPEG, RGB and RGBA PNG, a paletted PNG with transparency, a paletted GIF,
// BMP, colour JPEG, WebP (lossless, lossy, each with and without alpha),
// images in nested directories, an upper-case extension, and files to
// ignore (hidden files, a hidden directory, a .txt). Sizes differ between
// images. See FolderOptions for broken files.
func WriteImageFolder(dir string, opt FolderOptions) (*Folder, error) {
	r := newRand(opt.Seed)
	f := &Folder{Root: dir, Classes: []string{"bird", "cat", "dog"}}
	label := map[string]int32{"bird": 0, "cat": 1, "dog": 2}
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	add := func(name string, s FolderSample, data []byte) error {
		s.Name = name
		class, _, _ := strings.Cut(name, "/")
		s.Label = label[class]
		f.Samples = append(f.Samples, s)
		return write(name, data)
	}

	type gen struct {
		name string
		make func(r *rand.Rand) (FolderSample, []byte, error)
	}
	gens := []gen{
		{"bird/gray.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return grayImage(9, 7, r, "png")
		}},
		{"bird/gray16.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return gray16PNG(5, 4, r)
		}},
		{"bird/gray.jpg", func(r *rand.Rand) (FolderSample, []byte, error) {
			return grayImage(16, 16, r, "jpeg")
		}},
		{"bird/sub/deep/paletted.gif", func(r *rand.Rand) (FolderSample, []byte, error) {
			return palettedImage(10, 8, r, "gif")
		}},
		{"bird/x.BMP", func(r *rand.Rand) (FolderSample, []byte, error) {
			return rgbImage(8, 5, r, "bmp")
		}},
		{"cat/rgb.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return rgbImage(12, 10, r, "png")
		}},
		{"cat/rgba.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return rgbaPNG(7, 9, r)
		}},
		{"cat/photo.jpg", func(r *rand.Rand) (FolderSample, []byte, error) {
			return rgbImage(20, 14, r, "jpeg")
		}},
		{"cat/paletted_alpha.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return palettedImage(6, 11, r, "png")
		}},
		{"cat/webp/lossless.webp", webpGen("lossless", false, false)},
		{"cat/webp/lossy.webp", webpGen("lossy", true, false)},
		{"cat/webp/alpha_lossless.webp", webpGen("alpha_lossless", false, true)},
		{"cat/webp/alpha_lossy.webp", webpGen("alpha_lossy", true, true)},
		{"dog/a.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return rgbImage(6, 6, r, "png")
		}},
		{"dog/b/c.png", func(r *rand.Rand) (FolderSample, []byte, error) {
			return rgbImage(5, 3, r, "png")
		}},
		{"dog/z.bmp", func(r *rand.Rand) (FolderSample, []byte, error) {
			return grayImage(4, 6, r, "bmp")
		}},
	}
	for _, g := range gens {
		s, data, err := g.make(r)
		if err != nil {
			return nil, fmt.Errorf("sourcetest: %s: %w", g.name, err)
		}
		if err := add(g.name, s, data); err != nil {
			return nil, err
		}
	}
	if opt.Broken {
		_, jpg, err := rgbImage(16, 16, r, "jpeg")
		if err != nil {
			return nil, err
		}
		garbage := make([]byte, 300)
		for i := range garbage {
			garbage[i] = byte(r.Uint32())
		}
		for _, b := range []struct {
			name, how string
			data      []byte
		}{
			{"cat/truncated.jpg", "JPEG cut in half", jpg[:len(jpg)/2]},
			{"dog/garbage.png", "random bytes", garbage},
			{"bird/empty.jpg", "empty file", nil},
		} {
			if err := add(b.name, FolderSample{Broken: b.how}, b.data); err != nil {
				return nil, err
			}
		}
	}
	for _, ig := range []string{"dog/.hidden.png", ".hiddenclass/a.png", "dog/.hiddendir/x.png", "dog/notes.txt", "cat/README", "stray.png"} {
		_, data, err := rgbImage(4, 4, r, "png")
		if err != nil {
			return nil, err
		}
		if err := write(ig, data); err != nil {
			return nil, err
		}
		f.Ignored = append(f.Ignored, ig)
	}
	sort.Slice(f.Samples, func(i, j int) bool {
		a, b := f.Samples[i], f.Samples[j]
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		return a.Name < b.Name
	})
	return f, nil
}

// rgbPixels returns an h×w smooth RGB image.
func rgbPixels(w, h int, r *rand.Rand) []byte {
	px := make([]byte, w*h*3)
	fillImage(px, h, w, 3, 3, r)
	return px
}

// encode writes img in format ("png", "jpeg", "gif", "bmp").
func encode(img image.Image, format string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	case "bmp":
		err = bmp.Encode(&buf, img)
	default:
		err = fmt.Errorf("unknown format %s", format)
	}
	return buf.Bytes(), err
}

func rgbImage(w, h int, r *rand.Rand, format string) (FolderSample, []byte, error) {
	px := rgbPixels(w, h, r)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for k := 0; k < w*h; k++ {
		copy(img.Pix[4*k:4*k+3], px[3*k:3*k+3])
		img.Pix[4*k+3] = 0xff
	}
	data, err := encode(img, format)
	return FolderSample{Format: format, Width: w, Height: h, Lossy: format == "jpeg", RGB: px}, data, err
}

func grayImage(w, h int, r *rand.Rand, format string) (FolderSample, []byte, error) {
	img := image.NewGray(image.Rect(0, 0, w, h))
	fillImage(img.Pix, h, w, 1, 3, r)
	data, err := encode(img, format)
	return FolderSample{Format: format, Width: w, Height: h, Gray: true, Lossy: format == "jpeg", RGB: replicate(img.Pix)}, data, err
}

func gray16PNG(w, h int, r *rand.Rand) (FolderSample, []byte, error) {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	hi := make([]byte, w*h)
	fillImage(hi, h, w, 1, 3, r)
	for k := range hi {
		img.Pix[2*k], img.Pix[2*k+1] = hi[k], byte(r.Uint32())
	}
	data, err := encode(img, "png")
	return FolderSample{Format: "png", Width: w, Height: h, Gray: true, RGB: replicate(hi)}, data, err
}

func replicate(gray []byte) []byte {
	out := make([]byte, 3*len(gray))
	for k, v := range gray {
		out[3*k], out[3*k+1], out[3*k+2] = v, v, v
	}
	return out
}

func rgbaPNG(w, h int, r *rand.Rand) (FolderSample, []byte, error) {
	px := rgbPixels(w, h, r)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for k := 0; k < w*h; k++ {
		copy(img.Pix[4*k:4*k+3], px[3*k:3*k+3])
		img.Pix[4*k+3] = byte(1 + r.IntN(255)) // translucent, never fully transparent
	}
	data, err := encode(img, "png")
	return FolderSample{Format: "png", Width: w, Height: h, Alpha: true, RGB: px}, data, err
}

// palettedImage makes a 16-colour paletted image; for PNG some palette
// entries are translucent (a tRNS chunk).
func palettedImage(w, h int, r *rand.Rand, format string) (FolderSample, []byte, error) {
	pal := make(color.Palette, 16)
	alpha := format == "png"
	for i := range pal {
		c := color.NRGBA{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), 0xff}
		if alpha && i%3 == 1 {
			c.A = byte(64 + r.IntN(128))
		}
		pal[i] = c
	}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for k := range img.Pix {
		img.Pix[k] = byte(r.IntN(len(pal)))
	}
	data, err := encode(img, format)
	px := make([]byte, 3*w*h)
	for k, idx := range img.Pix {
		// The colour the file stores: PNG's encoder writes the palette
		// un-premultiplied, as NRGBAModel computes it.
		c := color.NRGBAModel.Convert(pal[idx]).(color.NRGBA)
		px[3*k], px[3*k+1], px[3*k+2] = c.R, c.G, c.B
	}
	return FolderSample{Format: format, Width: w, Height: h, Alpha: alpha, RGB: px}, data, err
}

// webpGen copies an embedded WebP fixture.
func webpGen(name string, lossy, alpha bool) func(*rand.Rand) (FolderSample, []byte, error) {
	return func(*rand.Rand) (FolderSample, []byte, error) {
		data, err := webpFixtures.ReadFile("testdata/" + name + ".webp")
		if err != nil {
			return FolderSample{}, nil, err
		}
		rgb, err := webpFixtures.ReadFile("testdata/" + name + ".rgb")
		if err != nil {
			return FolderSample{}, nil, err
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return FolderSample{}, nil, err
		}
		if format != "webp" || cfg.Width*cfg.Height*3 != len(rgb) {
			return FolderSample{}, nil, fmt.Errorf("fixture %s: %s %dx%d does not match %d RGB bytes", name, format, cfg.Width, cfg.Height, len(rgb))
		}
		var decoded []byte
		if lossy {
			if decoded, err = webpFixtures.ReadFile("testdata/" + name + ".libwebp.rgb"); err != nil {
				return FolderSample{}, nil, err
			}
		}
		return FolderSample{Format: "webp", Width: cfg.Width, Height: cfg.Height, Lossy: lossy, Alpha: alpha, RGB: rgb, Decoded: decoded}, data, nil
	}
}

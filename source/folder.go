package source

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	// Decoders for the formats image folders may hold; image.Decode picks
	// one by the file's content, not its extension.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"golang.org/x/image/draw"

	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// ImageExtensions are the file extensions (lower case) that image folders
// take as images; other files are ignored, as are hidden files and
// directories (names starting with ".").
var ImageExtensions = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}

// imageFormats are the formats image folders may hold, as image.Decode
// names them; they are the values of Sample.Format.
var imageFormats = []string{"jpeg", "png", "gif", "bmp", "webp"}

// MaxImagePixels bounds width×height of a folder image. Load checks the
// header against it before decoding, so that a small damaged or hostile
// file cannot make the decoder allocate gigabytes.
const MaxImagePixels = 1 << 27

func isImageName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range ImageExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// isDirFollow reports whether the entry at path is a directory, following
// a symbolic link (class directories are often links to elsewhere).
func isDirFollow(path string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// folderItem is one image file found at Open.
type folderItem struct {
	path  string // on disk, for reading and for errors
	name  string // Sample.Name
	label int32
}

// folderDataset is a Dataset over image files decoded at Load.
type folderDataset struct {
	items   []folderItem
	classes []string
	conv    converter
	desc    string
	scratch sync.Pool // *folderScratch
}

// folderScratch holds per-goroutine buffers that Load reuses.
type folderScratch struct {
	file []byte // file contents when not kept
	rgb  []byte // RGB before a resize
	src  *image.RGBA
	dst  *image.RGBA
	tj   *turbojpeg.Decoder // nil until the first JPEG; freed by its finalizer
}

func openFolder(paths []string, opt Options) (Dataset, error) {
	switch {
	case opt.ResizeW < 0 || opt.ResizeH < 0:
		return nil, fmt.Errorf("source: negative resize %dx%d", opt.ResizeW, opt.ResizeH)
	case (opt.ResizeW == 0) != (opt.ResizeH == 0):
		return nil, fmt.Errorf("source: resize %dx%d: give both width and height", opt.ResizeW, opt.ResizeH)
	case opt.ResizeW > 0 && opt.KeepEncoded:
		return nil, errors.New("source: resize and keep-encoded exclude each other (encoded bytes are stored as they are)")
	case opt.ResizeW*opt.ResizeH > MaxImagePixels:
		return nil, fmt.Errorf("source: resize %dx%d is larger than %d pixels", opt.ResizeW, opt.ResizeH, MaxImagePixels)
	}
	channels := opt.Channels
	switch channels {
	case 0:
		channels = 3
	case 1, 3:
	default:
		return nil, fmt.Errorf("source: channels %d: want 1 or 3 (0 for the default, 3)", opt.Channels)
	}

	// Classes are the union of every root's class directories, so a label
	// means the same class whatever root its image came from.
	rootClasses := make([][]string, len(paths))
	union := map[string]bool{}
	for ri, root := range paths {
		fi, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("source: image folder root %s is not a directory", root)
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		for _, e := range entries {
			if isHidden(e.Name()) || !isDirFollow(filepath.Join(root, e.Name()), e) {
				continue
			}
			rootClasses[ri] = append(rootClasses[ri], e.Name())
			union[e.Name()] = true
		}
		if len(rootClasses[ri]) == 0 {
			return nil, fmt.Errorf("source: image folder %s has no class subdirectories (want root/<class>/<image>)", root)
		}
	}
	classes := make([]string, 0, len(union))
	for c := range union {
		classes = append(classes, c)
	}
	sort.Strings(classes) // byte order
	label := make(map[string]int32, len(classes))
	for i, c := range classes {
		label[c] = int32(i)
	}

	var items []folderItem
	for ri, root := range paths {
		prefix := ""
		if len(paths) > 1 {
			prefix = filepath.ToSlash(filepath.Clean(root)) + "/"
		}
		sort.Strings(rootClasses[ri])
		for _, class := range rootClasses[ri] {
			dir := filepath.Join(root, class)
			// WalkDir does not descend into a link, so a linked class
			// directory is walked at its target; paths stay under dir.
			walkDir, err := filepath.EvalSymlinks(dir)
			if err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
			var rels []string
			err = filepath.WalkDir(walkDir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if path == walkDir {
					return nil
				}
				if isHidden(d.Name()) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				// Links to directories below a class are not followed, so
				// that a link cycle cannot make the walk endless.
				if d.IsDir() || !isImageName(d.Name()) {
					return nil
				}
				rel, err := filepath.Rel(walkDir, path)
				if err != nil {
					return err
				}
				rels = append(rels, filepath.ToSlash(rel))
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("source: listing %s: %w", dir, err)
			}
			sort.Strings(rels)
			for _, rel := range rels {
				items = append(items, folderItem{
					path:  filepath.Join(dir, filepath.FromSlash(rel)),
					name:  prefix + class + "/" + rel,
					label: label[class],
				})
			}
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("source: no images (%s) under %s", strings.Join(ImageExtensions, " "), strings.Join(paths, ", "))
	}
	ds := &folderDataset{
		items: items, classes: classes,
		conv: converter{channels: channels, resizeW: opt.ResizeW, resizeH: opt.ResizeH,
			keep: opt.KeepEncoded, goJPEG: opt.GoJPEG},
	}
	ds.scratch.New = func() any { return new(folderScratch) }
	var how []string
	switch {
	case opt.KeepEncoded:
		how = append(how, "encoded bytes kept")
	case opt.ResizeW > 0:
		how = append(how, fmt.Sprintf("resized to %dx%d (bilinear)", opt.ResizeW, opt.ResizeH))
	}
	if channels == 1 {
		how = append(how, "luminance")
	} else {
		how = append(how, "RGB")
	}
	ds.desc = fmt.Sprintf("image folder %s (%d classes, %s)", strings.Join(paths, ", "), len(classes), strings.Join(how, ", "))
	return ds, nil
}

func (d *folderDataset) Kind() string        { return KindFolder }
func (d *folderDataset) Len() int            { return len(d.items) }
func (d *folderDataset) Classes() []string   { return d.classes }
func (d *folderDataset) Classes2() []string  { return nil }
func (d *folderDataset) Description() string { return d.desc }

// Close releases nothing: files are opened only during Load.
func (d *folderDataset) Close() error { return nil }

// Load reads and decodes image i. Its errors name the file's path.
func (d *folderDataset) Load(i int, s *Sample) error {
	if err := checkIndex(i, len(d.items)); err != nil {
		return err
	}
	it := &d.items[i]
	sc := d.scratch.Get().(*folderScratch)
	defer d.scratch.Put(sc)

	var err error
	var data []byte
	if d.conv.keep {
		data, err = readFileInto(it.path, s.Encoded)
	} else {
		sc.file, err = readFileInto(it.path, sc.file)
		data = sc.file
	}
	if err != nil {
		return fmt.Errorf("source: %s: %w", it.path, err)
	}
	if err := d.conv.fill(data, sc, it.label, it.name, s); err != nil {
		return fmt.Errorf("source: %s: %w", it.path, err)
	}
	return nil
}

// readFileInto reads the file at path into buf's storage.
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	buf = grow(buf, int(fi.Size()))
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	// A file that shrank while we read it gives what was there; one that
	// grew is read to its end.
	buf = buf[:n]
	if err == nil {
		var more bytes.Buffer
		if _, err := more.ReadFrom(f); err != nil {
			return nil, err
		}
		buf = append(buf, more.Bytes()...)
	}
	return buf, nil
}

// decodeImage decodes an encoded image after checking its size, and never
// panics: a panic inside a decoder is returned as an error.
func decodeImage(data []byte) (img image.Image, format string, err error) {
	if len(data) == 0 {
		return nil, "", errors.New("empty file")
	}
	defer func() {
		if r := recover(); r != nil {
			img, format, err = nil, "", fmt.Errorf("decoder failed: %v", r)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("not a readable image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", fmt.Errorf("%s image of %dx%d pixels", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, "", fmt.Errorf("%s image of %dx%d pixels is larger than %d pixels", format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	if !slices.Contains(imageFormats, format) {
		// Another package of the program registered this decoder; the
		// packed file has no name for it.
		return nil, "", fmt.Errorf("unsupported image format %q (want one of %s)", format, strings.Join(imageFormats, ", "))
	}
	img, format, err = image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("decoding %s: %w", format, err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, "", fmt.Errorf("%s image of %dx%d pixels", format, b.Dx(), b.Dy())
	}
	return img, format, nil
}

// isGray reports whether img holds one channel.
func isGray(img image.Image) bool {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return true
	}
	return false
}

// toHWC converts img to channels (1 or 3) HWC bytes in buf's storage,
// following the rules in the package documentation.
func toHWC(img image.Image, channels int, buf []byte) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := grow(buf, w*h*channels)
	if channels == 1 {
		if isGray(img) {
			grayTo(out, img)
			return out
		}
		// Convert to RGB row by row, then to luminance, without a buffer
		// of the whole image.
		row := make([]byte, 3*w)
		for y := 0; y < h; y++ {
			rgbRow(row, img, b.Min.Y+y)
			o := out[y*w : (y+1)*w]
			for x := range o {
				o[x] = luma(row[3*x], row[3*x+1], row[3*x+2])
			}
		}
		return out
	}
	if isGray(img) {
		g := out[2*w*h:] // the last third, then expand forwards
		grayTo(g, img)
		for k := 0; k < w*h; k++ {
			v := g[k]
			d := out[3*k : 3*k+3 : 3*k+3]
			d[0], d[1], d[2] = v, v, v
		}
		return out
	}
	for y := 0; y < h; y++ {
		rgbRow(out[3*w*y:3*w*(y+1)], img, b.Min.Y+y)
	}
	return out
}

// luma is PIL's convert("L") for one pixel: ITU-R 601-2 weights in 16-bit
// fixed point, rounded.
func luma(r, g, b byte) byte {
	return byte((uint32(r)*19595 + uint32(g)*38470 + uint32(b)*7471 + 0x8000) >> 16)
}

// grayTo writes a Gray or Gray16 image's values (16-bit: high byte).
func grayTo(out []byte, img image.Image) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			copy(out[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+w])
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			o := out[y*w : (y+1)*w]
			for x := range o {
				o[x] = row[2*x]
			}
		}
	}
}

// rgbRow writes row y (absolute) of img as RGB into dst (3×width bytes),
// dropping alpha: non-premultiplied sources keep their colour values,
// premultiplied ones are un-premultiplied.
func rgbRow(dst []byte, img image.Image, y int) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrRow(dst, m, y)
		return
	case *image.NYCbCrA:
		ycbcrRow(dst, &m.YCbCr, y)
		return
	case *image.NRGBA:
		src := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := 0; x < w; x++ {
			s := src[4*x : 4*x+3 : 4*x+3]
			d := dst[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = s[0], s[1], s[2]
		}
		return
	case *image.RGBA:
		src := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := 0; x < w; x++ {
			s := src[4*x : 4*x+4 : 4*x+4]
			d := dst[3*x : 3*x+3 : 3*x+3]
			if s[3] == 0xff {
				d[0], d[1], d[2] = s[0], s[1], s[2]
			} else {
				c := color.NRGBAModel.Convert(color.RGBA{s[0], s[1], s[2], s[3]}).(color.NRGBA)
				d[0], d[1], d[2] = c.R, c.G, c.B
			}
		}
		return
	case *image.Paletted:
		var lut [256][3]byte
		for i, c := range m.Palette {
			if i >= 256 {
				break
			}
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]byte{n.R, n.G, n.B}
		}
		src := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := 0; x < w; x++ {
			// An index beyond the palette (possible in damaged files)
			// reads as black, as the zero lut entry.
			c := lut[src[x]]
			d := dst[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = c[0], c[1], c[2]
		}
		return
	}
	for x := 0; x < w; x++ {
		c := color.NRGBAModel.Convert(img.At(b.Min.X+x, y)).(color.NRGBA)
		d := dst[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2] = c.R, c.G, c.B
	}
}

// ycbcrRow converts row y of a YCbCr image (any subsampling) to RGB.
func ycbcrRow(dst []byte, m *image.YCbCr, y int) {
	x0 := m.Rect.Min.X
	for x := 0; x < m.Rect.Dx(); x++ {
		yi := m.YOffset(x0+x, y)
		ci := m.COffset(x0+x, y)
		r, g, b := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
		d := dst[3*x : 3*x+3 : 3*x+3]
		d[0], d[1], d[2] = r, g, b
	}
}

// resize converts img as toHWC does, then scales it to the dataset's size
// with x/image/draw's BiLinear kernel (widened when shrinking, so it
// averages rather than aliases).
func (d *converter) resize(img image.Image, sc *folderScratch, buf []byte) []byte {
	b := img.Bounds()
	// Convert first, so that alpha is dropped exactly as without a resize
	// and the scaler only sees an opaque image it has a fast path for.
	sc.rgb = toHWC(img, 3, sc.rgb)
	return d.resizeRGB(sc.rgb, b.Dx(), b.Dy(), isGray(img), sc, buf)
}

// resizeRGB scales w×h RGB pixels (sc.rgb's storage may be rgb) to the
// dataset's size, then reduces them to luminance when the dataset has one
// channel (gray: the source image was gray, so R = G = B already).
func (d *converter) resizeRGB(rgb []byte, w, h int, gray bool, sc *folderScratch, buf []byte) []byte {
	if sc.src == nil || cap(sc.src.Pix) < 4*w*h {
		sc.src = &image.RGBA{Pix: make([]byte, 4*w*h)}
	}
	src := sc.src
	src.Pix, src.Stride, src.Rect = src.Pix[:4*w*h], 4*w, image.Rect(0, 0, w, h)
	for k := 0; k < w*h; k++ {
		s := rgb[3*k : 3*k+3 : 3*k+3]
		p := src.Pix[4*k : 4*k+4 : 4*k+4]
		p[0], p[1], p[2], p[3] = s[0], s[1], s[2], 0xff
	}
	W, H := d.resizeW, d.resizeH
	if sc.dst == nil || cap(sc.dst.Pix) < 4*W*H {
		sc.dst = &image.RGBA{Pix: make([]byte, 4*W*H)}
	}
	dst := sc.dst
	dst.Pix, dst.Stride, dst.Rect = dst.Pix[:4*W*H], 4*W, image.Rect(0, 0, W, H)
	draw.BiLinear.Scale(dst, dst.Rect, src, src.Rect, draw.Src, nil)

	out := grow(buf, W*H*d.channels)
	if d.channels == 1 {
		for k := 0; k < W*H; k++ {
			p := dst.Pix[4*k : 4*k+3 : 4*k+3]
			if gray {
				out[k] = p[0]
			} else {
				out[k] = luma(p[0], p[1], p[2])
			}
		}
		return out
	}
	for k := 0; k < W*H; k++ {
		p := dst.Pix[4*k : 4*k+3 : 4*k+3]
		o := out[3*k : 3*k+3 : 3*k+3]
		o[0], o[1], o[2] = p[0], p[1], p[2]
	}
	return out
}

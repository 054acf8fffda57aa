package source

import (
	"fmt"
	"image"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// converter turns one encoded image into a Sample under a dataset's
// options (channels, resize, keep-encoded). Image folders, Parquet, Arrow
// and WebDataset sources share it, so that an image gives the same pixels
// whatever container it came in.
type converter struct {
	channels         int // 1 or 3
	resizeW, resizeH int
	keep             bool
	goJPEG           bool // never use libjpeg-turbo
}

// JPEGDecoder says which JPEG decoder Load uses with these options: the
// program prints it, because the two give slightly different pixels.
func JPEGDecoder(opt Options) string {
	if opt.GoJPEG {
		return "Go image/jpeg (asked for)"
	}
	return turbojpeg.Name()
}

// DecodesImages reports whether sources of kind hold encoded images that
// Load decodes (so the JPEG decoder matters), as opposed to raw pixels.
func DecodesImages(kind string) bool {
	switch kind {
	case KindCIFAR10, KindCIFAR100, KindIDX:
		return false
	}
	return true
}

// fill decodes data into s (see Dataset.Load), with libjpeg-turbo for
// JPEGs when it is available, else with the registered Go decoders.
func (d *converter) fill(data []byte, sc *folderScratch, label int32, name string, s *Sample) error {
	if ok, err := d.fillTurbo(data, sc, label, name, s); ok || err != nil {
		return err
	}
	img, format, err := decodeImage(data)
	if err != nil {
		return err
	}
	if format == "webp" {
		// x/image/webp returns lossy files in a colour range that Go
		// misreads; convert them as libwebp does (see webpRGBA).
		var yc *image.YCbCr
		switch m := img.(type) {
		case *image.YCbCr:
			yc = m
		case *image.NYCbCrA:
			yc = &m.YCbCr
		}
		if yc != nil {
			if rgba := webpRGBA(yc); rgba != nil {
				img = rgba
			}
		}
	}
	b := img.Bounds()
	out := Sample{Label: label, Label2: -1, Name: name, Channels: d.channels, Format: format}
	switch {
	case d.keep:
		out.Height, out.Width = b.Dy(), b.Dx()
		out.Encoded = data
	case d.resizeW > 0:
		out.Height, out.Width = d.resizeH, d.resizeW
		out.Pixels = d.resize(img, sc, s.Pixels)
	default:
		out.Height, out.Width = b.Dy(), b.Dx()
		out.Pixels = toHWC(img, d.channels, s.Pixels)
	}
	*s = out
	return nil
}

// isJPEG reports a JPEG's start-of-image marker.
func isJPEG(data []byte) bool {
	return len(data) > 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF
}

// fillTurbo is fill for a JPEG with libjpeg-turbo. ok is false when it
// leaves the image to image/jpeg: the library is missing, the JPEG is CMYK
// or YCCK, or the library failed or warned (a damaged file then gets
// image/jpeg's verdict and error message, as without libjpeg-turbo).
//
// With a resize it decodes in the DCT domain at the smallest scale that is
// still at least the target size (1/2, 1/4 or 1/8 of a photograph four to
// eight times larger), then resizes bilinearly as the Go path does. The
// DCT scaling averages blocks where a full decode and a wider bilinear
// filter would average pixels, so the result differs from the Go path's by
// a few levels (the tests bound it). With keep-encoded it decodes at 1/8:
// every coefficient is still entropy-decoded, so damage is still found.
func (d *converter) fillTurbo(data []byte, sc *folderScratch, label int32, name string, s *Sample) (ok bool, err error) {
	if d.goJPEG || !isJPEG(data) || turbojpeg.Available() != nil {
		return false, nil
	}
	if sc.tj == nil {
		if sc.tj, err = turbojpeg.NewDecoder(); err != nil {
			return false, nil
		}
	}
	hd, err := sc.tj.Header(data)
	if err != nil || !hd.Convertible || hd.Width <= 0 || hd.Height <= 0 ||
		int64(hd.Width)*int64(hd.Height) > MaxImagePixels {
		return false, nil // image/jpeg reports it as before
	}
	out := Sample{Label: label, Label2: -1, Name: name, Channels: d.channels, Format: "jpeg"}
	switch {
	case d.keep:
		sf := turbojpeg.ScaleFor(hd.Width, hd.Height, 1, 1)
		w, h := sf.Apply(hd.Width), sf.Apply(hd.Height)
		sc.rgb = grow(sc.rgb, w*h)
		if sc.tj.Decode(data, hd, sf, sc.rgb, 1) != nil {
			return false, nil
		}
		out.Height, out.Width = hd.Height, hd.Width
		out.Encoded = data
	case d.resizeW > 0:
		sf := turbojpeg.ScaleFor(hd.Width, hd.Height, d.resizeW, d.resizeH)
		w, h := sf.Apply(hd.Width), sf.Apply(hd.Height)
		sc.rgb = grow(sc.rgb, w*h*3)
		if sc.tj.Decode(data, hd, sf, sc.rgb, 3) != nil {
			return false, nil
		}
		out.Height, out.Width = d.resizeH, d.resizeW
		out.Pixels = d.resizeRGB(sc.rgb, w, h, hd.Gray, sc, s.Pixels)
	default:
		w, h := hd.Width, hd.Height
		out.Height, out.Width = h, w
		if d.channels == 3 || hd.Gray {
			// A gray JPEG decodes to R = G = B or to its one channel,
			// as the Go path's replication does.
			out.Pixels = grow(s.Pixels, w*h*d.channels)
			if sc.tj.Decode(data, hd, turbojpeg.Scale{Num: 1, Denom: 1}, out.Pixels, d.channels) != nil {
				return false, nil
			}
			break
		}
		// Colour to luminance: RGB first, then PIL's convert("L"), as
		// the Go path does (libjpeg's own gray output is the Y plane,
		// which rounds differently).
		sc.rgb = grow(sc.rgb, w*h*3)
		if sc.tj.Decode(data, hd, turbojpeg.Scale{Num: 1, Denom: 1}, sc.rgb, 3) != nil {
			return false, nil
		}
		out.Pixels = grow(s.Pixels, w*h)
		for k := range out.Pixels {
			out.Pixels[k] = luma(sc.rgb[3*k], sc.rgb[3*k+1], sc.rgb[3*k+2])
		}
	}
	if out.Pixels == nil && out.Encoded == nil {
		return false, fmt.Errorf("internal error: no pixels")
	}
	*s = out
	return true, nil
}

// newConverter checks the conversion options every image source shares.
func newConverter(opt Options) (converter, error) {
	switch {
	case opt.ResizeW < 0 || opt.ResizeH < 0:
		return converter{}, fmt.Errorf("source: negative resize %dx%d", opt.ResizeW, opt.ResizeH)
	case (opt.ResizeW == 0) != (opt.ResizeH == 0):
		return converter{}, fmt.Errorf("source: resize %dx%d: give both width and height", opt.ResizeW, opt.ResizeH)
	case opt.ResizeW > 0 && opt.KeepEncoded:
		return converter{}, fmt.Errorf("source: resize and keep-encoded exclude each other (encoded bytes are stored as they are)")
	case opt.ResizeW*opt.ResizeH > MaxImagePixels:
		return converter{}, fmt.Errorf("source: resize %dx%d is larger than %d pixels", opt.ResizeW, opt.ResizeH, MaxImagePixels)
	}
	c := converter{channels: opt.Channels, resizeW: opt.ResizeW, resizeH: opt.ResizeH, keep: opt.KeepEncoded, goJPEG: opt.GoJPEG}
	switch c.channels {
	case 0:
		c.channels = 3
	case 1, 3:
	default:
		return converter{}, fmt.Errorf("source: channels %d: want 1 or 3 (0 for the default, 3)", opt.Channels)
	}
	return c, nil
}

// describe says how images are converted, for Description.
func (d *converter) describe() string {
	var how []string
	switch {
	case d.keep:
		how = append(how, "encoded bytes kept")
	case d.resizeW > 0:
		how = append(how, fmt.Sprintf("resized to %dx%d (bilinear)", d.resizeW, d.resizeH))
	}
	if d.channels == 1 {
		how = append(how, "luminance")
	} else {
		how = append(how, "RGB")
	}
	return strings.Join(how, ", ")
}

// Name returns sample i's name (Sample.Name) without loading it; pack's
// append uses it to skip samples a file already holds.
func (d *folderDataset) Name(i int) string { return d.items[i].name }

// Name returns sample i's name (Sample.Name) without loading it.
func (ds *wdsDataset) Name(i int) string { return ds.items[i].name }

// Name returns sample i's name (Sample.Name) without loading it.
func (ds *tableDataset) Name(i int) string {
	f := sort.SearchInts(ds.start, i+1) - 1
	return fmt.Sprintf("%s#row%d", filepath.Base(ds.files[f].path), i-ds.start[f])
}

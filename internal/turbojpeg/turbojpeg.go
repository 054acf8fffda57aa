// Package turbojpeg decodes JPEG images with libjpeg-turbo's TurboJPEG API
// (Debian's libturbojpeg0), loaded at run time with purego so that the
// binaries stay CGO_ENABLED=0. Go's image/jpeg remains the fallback: callers
// ask Available and use this package only when it says yes.
//
// Why: image/jpeg takes about 60% of the time of a JPEG pipeline, and
// libjpeg-turbo's SIMD decoder is several times faster; it can also decode in
// the DCT domain at 1/2, 1/4 or 1/8 of the size (ScaleFor), which is far
// cheaper than decoding everything and throwing most pixels away in a
// resize.
//
// The results differ from image/jpeg's by a few levels per pixel: both use
// an integer IDCT but not the same one, and the colour conversion rounds
// differently. Decode asks for "fast upsampling" (chroma replicated, as
// image/jpeg and the project's YCbCr→RGB conversion do) rather than
// libjpeg's smooth default, which keeps the two within the tolerance the
// tests check (see TestMatchesImageJPEG).
//
// The TurboJPEG 2.x API (Debian bookworm ships 2.1.5) has no region
// decoding; tj3SetCroppingRegion arrived in 3.0. Decoding only what the
// crops need is therefore done through the scale factor, not a region.
package turbojpeg

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// EnvLib names the TurboJPEG library file(s) to try instead of libNames
// (comma-separated). Pointing it at a missing file simulates a machine
// without libjpeg-turbo, so the image/jpeg fallback can be tested anywhere.
const EnvLib = "TSIMCNE_TURBOJPEG_LIB"

// libNames are tried in order; Debian's libturbojpeg0 provides the first.
var libNames = []string{"libturbojpeg.so.0", "libturbojpeg.so"}

// Pixel formats (enum TJPF).
const (
	pfRGB  = 0
	pfGray = 6
)

// Decompression flags (TJFLAG_*).
const (
	flagFastUpsample = 256
	flagAccurateDCT  = 4096
)

// Colour spaces (enum TJCS) reported by the header.
const (
	csRGB   = 0
	csYCbCr = 1
	csGray  = 2
)

var (
	once    sync.Once
	loadErr error
	libName string

	fnInit, fnHeader, fnDecompress, fnDestroy uintptr
	scales                                    []Scale
	// The two calls that return C pointers go through RegisterLibFunc,
	// which converts them without uintptr→pointer arithmetic here; they
	// are not on the per-image path (errors, and once at load).
	tjGetErrorStr2      func(h uintptr) string
	tjGetScalingFactors func(n *int32) unsafe.Pointer
)

// Scale is a DCT-domain scaling factor Num/Denom.
type Scale struct{ Num, Denom int }

// Apply returns the size of a dimension scaled by s, rounded up as
// libjpeg-turbo does (TJSCALED).
func (s Scale) Apply(d int) int { return (d*s.Num + s.Denom - 1) / s.Denom }

func load() {
	names := libNames
	if v := strings.TrimSpace(os.Getenv(EnvLib)); v != "" {
		names = strings.Split(v, ",")
	}
	var lib uintptr
	var errs []string
	for _, name := range names {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			lib, libName = h, name
			break
		}
		errs = append(errs, err.Error())
	}
	if lib == 0 {
		loadErr = fmt.Errorf("turbojpeg: dlopen: %s", strings.Join(errs, "; "))
		return
	}
	for _, s := range []struct {
		p    *uintptr
		name string
	}{
		{&fnInit, "tjInitDecompress"},
		{&fnHeader, "tjDecompressHeader3"},
		{&fnDecompress, "tjDecompress2"},
		{&fnDestroy, "tjDestroy"},
		{new(uintptr), "tjGetErrorStr2"},
		{new(uintptr), "tjGetScalingFactors"},
	} {
		p, err := purego.Dlsym(lib, s.name)
		if err != nil {
			loadErr = fmt.Errorf("turbojpeg: %s: %s lacks %s (need the TurboJPEG 2.x API): %w", libName, libName, s.name, err)
			return
		}
		*s.p = p
	}
	purego.RegisterLibFunc(&tjGetErrorStr2, lib, "tjGetErrorStr2")
	purego.RegisterLibFunc(&tjGetScalingFactors, lib, "tjGetScalingFactors")
	var n int32
	r := tjGetScalingFactors(&n)
	if r == nil || n <= 0 || n > 64 {
		loadErr = fmt.Errorf("turbojpeg: %s: tjGetScalingFactors failed", libName)
		return
	}
	// tjscalingfactor is {int num; int denom;}, read from the library's
	// static array.
	arr := unsafe.Slice((*int32)(r), 2*int(n))
	for i := 0; i < int(n); i++ {
		scales = append(scales, Scale{int(arr[2*i]), int(arr[2*i+1])})
	}
}

// Available reports whether libjpeg-turbo could be loaded; the error says
// why not.
func Available() error {
	once.Do(load)
	return loadErr
}

// Name describes the decoder that runs, for the programs' output: the
// library file, or why image/jpeg is used instead.
func Name() string {
	if err := Available(); err != nil {
		return "Go image/jpeg (libjpeg-turbo not loaded: " + err.Error() + ")"
	}
	return "libjpeg-turbo (" + libName + ", DCT-domain scaling)"
}

// ScaleFor returns the smallest of the scaling factors 1/2, 1/4 and 1/8
// with which a w×h image is still at least minW×minH, so that a resize to
// minW×minH (or a crop that large) loses nothing a full decode would have
// given it beyond the DCT's own averaging; 1/1 when none fits or the
// library is missing. libjpeg-turbo offers every n/8, but only 1/2, 1/4 and
// 1/8 have SIMD inverse DCTs: on a 256×256 q90 JPEG 7/8, 3/4 and 5/8 took
// 340, 291 and 275 µs against 201 µs at full size (1/2: 190, 1/4: 149).
func ScaleFor(w, h, minW, minH int) Scale {
	best := Scale{1, 1}
	if Available() != nil {
		return best
	}
	for _, s := range scales {
		if s.Num != 1 || (s.Denom != 2 && s.Denom != 4 && s.Denom != 8) {
			continue
		}
		if s.Apply(w) >= minW && s.Apply(h) >= minH && s.Denom > best.Denom {
			best = s
		}
	}
	return best
}

// Header is what a JPEG's header says.
type Header struct {
	Width, Height int
	// Gray is true for single-component JPEGs.
	Gray bool
	// Convertible is false for colour spaces Decode does not turn into RGB
	// (CMYK, YCCK); callers use image/jpeg for those.
	Convertible bool
}

// Decoder is one TurboJPEG decompression handle. It is not safe for
// concurrent use: give each goroutine its own.
type Decoder struct {
	h uintptr
}

// NewDecoder returns a decoder, or the reason libjpeg-turbo is unavailable.
func NewDecoder() (*Decoder, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	h, _, _ := purego.SyscallN(fnInit)
	if h == 0 {
		return nil, errors.New("turbojpeg: tjInitDecompress failed")
	}
	d := &Decoder{h: h}
	runtime.SetFinalizer(d, (*Decoder).Close)
	return d, nil
}

// Close frees the handle; the decoder must not be used afterwards.
func (d *Decoder) Close() {
	if d.h != 0 {
		purego.SyscallN(fnDestroy, d.h)
		d.h = 0
	}
	runtime.SetFinalizer(d, nil)
}

// errorf returns the library's error for the failed call and replaces the
// handle with a fresh one. TurboJPEG 2.x leaves a handle whose call failed
// (a damaged header, say) mid-way through libjpeg's state machine: every
// later tjDecompressHeader3 on it failed too ("Bogus Huffman table
// definition" for every good JPEG after one truncated one) or reported a
// 0×0 image, so one damaged file silently sent all the files after it to
// the image/jpeg fallback. Found by FuzzTurboJPEG.
func (d *Decoder) errorf(what string) error {
	msg := tjGetErrorStr2(d.h)
	if msg == "" {
		msg = "unknown error"
	}
	purego.SyscallN(fnDestroy, d.h)
	d.h, _, _ = purego.SyscallN(fnInit)
	return fmt.Errorf("turbojpeg: %s: %s", what, msg)
}

// errBroken is returned once a handle could not be renewed after an error.
var errBroken = errors.New("turbojpeg: tjInitDecompress failed after an error; the decoder is unusable")

// Header reads a JPEG's header.
func (d *Decoder) Header(data []byte) (Header, error) {
	if d.h == 0 {
		return Header{}, errBroken
	}
	if len(data) == 0 {
		return Header{}, errors.New("turbojpeg: empty data")
	}
	var w, h, sub, cs int32
	r, _, _ := purego.SyscallN(fnHeader, d.h, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)),
		uintptr(unsafe.Pointer(&w)), uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&sub)), uintptr(unsafe.Pointer(&cs)))
	runtime.KeepAlive(data)
	if int32(r) != 0 {
		return Header{}, d.errorf("reading the header")
	}
	if w <= 0 || h <= 0 {
		return Header{}, fmt.Errorf("turbojpeg: reading the header: image size %dx%d", w, h)
	}
	return Header{Width: int(w), Height: int(h), Gray: cs == csGray,
		Convertible: cs == csGray || cs == csYCbCr || cs == csRGB}, nil
}

// Decode decodes data at scale s into dst, which must hold exactly
// s.Apply(width)×s.Apply(height)×channels bytes (HWC; channels 3 = RGB,
// 1 = gray). A JPEG the library warns about (a truncated file, say) is an
// error too, so that callers can retry with image/jpeg and keep its
// behaviour for damaged files.
func (d *Decoder) Decode(data []byte, hd Header, s Scale, dst []byte, channels int) error {
	w, h := s.Apply(hd.Width), s.Apply(hd.Height)
	pf := pfRGB
	if channels == 1 {
		pf = pfGray
	} else if channels != 3 {
		return fmt.Errorf("turbojpeg: %d channels; want 1 or 3", channels)
	}
	if d.h == 0 {
		return errBroken
	}
	if w <= 0 || h <= 0 || len(dst) != w*h*channels || len(data) == 0 {
		return fmt.Errorf("turbojpeg: destination of %d bytes for %dx%dx%d", len(dst), w, h, channels)
	}
	r, _, _ := purego.SyscallN(fnDecompress, d.h, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)),
		uintptr(unsafe.Pointer(&dst[0])), uintptr(w), uintptr(w*channels), uintptr(h), uintptr(pf),
		uintptr(flagFastUpsample|flagAccurateDCT))
	runtime.KeepAlive(data)
	runtime.KeepAlive(dst)
	if int32(r) != 0 {
		return d.errorf("decoding")
	}
	return nil
}

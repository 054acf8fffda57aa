// Package photos cuts real photographs shipped by a Debian package into
// many JPEGs of ImageNet-like sizes, for tests and benchmarks of the JPEG
// paths: synthetic images (gradients, noise) compress and decode unlike
// photographs, and nothing may be downloaded at test time.
//
// The photographs are the nature wallpapers of Debian's mate-backgrounds
// package (/usr/share/backgrounds/mate/nature/*.jpg, twelve photographs of
// 1280×1024 to 2560×1920); each one becomes a class.
package photos

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	xdraw "golang.org/x/image/draw"

	"github.com/tsimcne/tsimcne-go/internal/turbojpeg"
)

// Dir is where Debian's mate-backgrounds installs its photographs.
const Dir = "/usr/share/backgrounds/mate/nature"

// Package is the Debian package that provides Dir.
const Package = "mate-backgrounds"

// Sources lists the photographs in Dir, sorted; an error says how to get
// them when the package is missing.
func Sources() ([]string, error) {
	m, _ := filepath.Glob(filepath.Join(Dir, "*.jpg"))
	if len(m) == 0 {
		return nil, fmt.Errorf("photos: no photographs in %s; apt-get install %s", Dir, Package)
	}
	sort.Strings(m)
	return m, nil
}

// Options say what Cut makes.
type Options struct {
	// N is the number of JPEGs, spread evenly over the classes.
	N int
	// MinSide and MaxSide bound each crop's width and height, drawn
	// independently (ImageNet's average image is about 400×350; 0 gives
	// 300 and 500).
	MinSide, MaxSide int
	// Square, when > 0, makes every image Square×Square: a crop of a
	// random size between 1.5 and 4 times that, scaled down.
	Square int
	// Quality is the JPEG quality (0 gives 90).
	Quality int
	// Seed picks the crops.
	Seed uint64
	// Workers encode in parallel (0 = 2).
	Workers int
}

// Cut writes opt.N JPEG crops of the photographs into out/<class>/<k>.jpg,
// the class being the photograph's name, and returns the class names.
func Cut(out string, opt Options) ([]string, error) {
	srcs, err := Sources()
	if err != nil {
		return nil, err
	}
	if opt.N <= 0 {
		return nil, errors.New("photos: N must be positive")
	}
	if opt.MinSide == 0 {
		opt.MinSide = 300
	}
	if opt.MaxSide == 0 {
		opt.MaxSide = 500
	}
	if opt.Quality == 0 {
		opt.Quality = 90
	}
	if opt.Workers <= 0 {
		opt.Workers = 2
	}
	classes := make([]string, len(srcs))
	imgs, err := decoded(srcs)
	if err != nil {
		return nil, err
	}
	for i, p := range srcs {
		classes[i] = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		if err := os.MkdirAll(filepath.Join(out, classes[i]), 0o755); err != nil {
			return nil, fmt.Errorf("photos: %w", err)
		}
	}
	jobs := make(chan int)
	errc := make(chan error, opt.Workers)
	var wg sync.WaitGroup
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for k := range jobs {
				if err := cutOne(&buf, out, classes, imgs, k, &opt); err != nil {
					errc <- err
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for k := range opt.N {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	return classes, nil
}

var (
	decodeOnce sync.Once
	decodedImg []*image.RGBA
	decodeErr  error
)

// decoded decodes the photographs once per process (tests cut several
// folders), with libjpeg-turbo when it loads: image/jpeg takes seconds for
// the twelve photographs, and far longer under the race detector.
func decoded(srcs []string) ([]*image.RGBA, error) {
	decodeOnce.Do(func() {
		var tj *turbojpeg.Decoder
		if turbojpeg.Available() == nil {
			tj, _ = turbojpeg.NewDecoder()
		}
		for _, p := range srcs {
			data, err := os.ReadFile(p)
			if err != nil {
				decodeErr = fmt.Errorf("photos: %w", err)
				return
			}
			if tj != nil {
				if hd, err := tj.Header(data); err == nil && hd.Convertible && !hd.Gray {
					rgb := make([]byte, hd.Width*hd.Height*3)
					if tj.Decode(data, hd, turbojpeg.Scale{Num: 1, Denom: 1}, rgb, 3) == nil {
						rgba := image.NewRGBA(image.Rect(0, 0, hd.Width, hd.Height))
						for k := 0; k < hd.Width*hd.Height; k++ {
							rgba.Pix[4*k], rgba.Pix[4*k+1], rgba.Pix[4*k+2], rgba.Pix[4*k+3] = rgb[3*k], rgb[3*k+1], rgb[3*k+2], 255
						}
						decodedImg = append(decodedImg, rgba)
						continue
					}
				}
			}
			m, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				decodeErr = fmt.Errorf("photos: %s: %w", p, err)
				return
			}
			rgba := image.NewRGBA(m.Bounds())
			draw.Draw(rgba, rgba.Rect, m, m.Bounds().Min, draw.Src)
			decodedImg = append(decodedImg, rgba)
		}
		if tj != nil {
			tj.Close()
		}
	})
	if decodeErr == nil && len(decodedImg) != len(srcs) {
		return nil, errors.New("photos: the photographs changed while the process ran")
	}
	return decodedImg, decodeErr
}

func cutOne(buf *bytes.Buffer, out string, classes []string, imgs []*image.RGBA, k int, opt *Options) error {
	c := k % len(imgs)
	src := imgs[c]
	rng := rand.New(rand.NewPCG(opt.Seed, uint64(k)))
	b := src.Rect
	var m image.Image
	if opt.Square > 0 {
		side := opt.Square + rng.IntN(3*opt.Square)
		side = min(side, b.Dx(), b.Dy())
		x, y := rng.IntN(b.Dx()-side+1), rng.IntN(b.Dy()-side+1)
		dst := image.NewRGBA(image.Rect(0, 0, opt.Square, opt.Square))
		xdraw.BiLinear.Scale(dst, dst.Rect, src, image.Rect(x, y, x+side, y+side), xdraw.Src, nil)
		m = dst
	} else {
		w := min(opt.MinSide+rng.IntN(opt.MaxSide-opt.MinSide+1), b.Dx())
		h := min(opt.MinSide+rng.IntN(opt.MaxSide-opt.MinSide+1), b.Dy())
		x, y := rng.IntN(b.Dx()-w+1), rng.IntN(b.Dy()-h+1)
		m = src.SubImage(image.Rect(x, y, x+w, y+h))
	}
	buf.Reset()
	if err := jpeg.Encode(buf, m, &jpeg.Options{Quality: opt.Quality}); err != nil {
		return fmt.Errorf("photos: encoding crop %d: %w", k, err)
	}
	p := filepath.Join(out, classes[c], fmt.Sprintf("%06d.jpg", k))
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("photos: %w", err)
	}
	return nil
}

package source

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// loadSome loads up to 2000 samples of ds, spread over it; the parsers
// must answer every index with a sample or an error, never a panic.
func loadSome(t *testing.T, ds Dataset) {
	n := ds.Len()
	step := max(1, n/2000)
	var s Sample
	for i := 0; i < n; i += step {
		if err := ds.Load(i, &s); err == nil {
			if len(s.Pixels) != s.Height*s.Width*s.Channels {
				t.Fatalf("sample %d: %d bytes for %dx%dx%d", i, len(s.Pixels), s.Height, s.Width, s.Channels)
			}
		}
	}
	ds.Load(-1, &s)
	ds.Load(n, &s)
}

// FuzzCIFAR feeds arbitrary bytes as a CIFAR-10 or CIFAR-100 batch file
// with an arbitrary class-name file.
func FuzzCIFAR(f *testing.F) {
	px, labels, _ := sourcetestImages(3)
	f.Add(sourcetest.EncodeCIFARBatch(px, labels, nil), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"), false)
	f.Add(sourcetest.EncodeCIFARBatch(px, labels, []int32{1, 19, 20}), []byte{}, true)
	f.Add([]byte{10}, []byte(nil), false)
	f.Add(bytes.Repeat([]byte{255}, 3074*2), []byte("\r\n"), true)
	f.Fuzz(func(t *testing.T, data, meta []byte, hundred bool) {
		l := cifar10Layout
		if hundred {
			l = cifar100Layout
		}
		if len(meta) == 0 {
			meta = nil
		}
		ds, err := newCIFARDataset(l, []cifarFile{{name: l.files[0], path: l.files[0], data: data}}, meta, meta)
		if err != nil {
			return
		}
		if len(ds.Classes()) != l.nFine {
			t.Fatalf("%d classes", len(ds.Classes()))
		}
		loadSome(t, ds)
	})
}

// sourcetestImages returns n random 32×32 RGB images and labels.
func sourcetestImages(n int) ([][]byte, []int32, error) {
	dir, err := os.MkdirTemp("", "fuzzseed")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	px, labels, err := sourcetest.WriteCIFAR10(dir, n, 1)
	if err != nil {
		return nil, nil, err
	}
	return px[:n], labels[:n], nil
}

// FuzzCIFARTar feeds arbitrary bytes as a CIFAR .tar.gz archive.
func FuzzCIFARTar(f *testing.F) {
	dir := f.TempDir()
	p10 := filepath.Join(dir, "c10.tar.gz")
	p100 := filepath.Join(dir, "c100.tar.gz")
	if _, _, err := sourcetest.WriteCIFAR10Tar(p10, 1, 1); err != nil {
		f.Fatal(err)
	}
	if _, _, _, err := sourcetest.WriteCIFAR100Tar(p100, 1, 1, 1); err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{p10, p100} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add(sourcetest.Gzip([]byte("garbage")))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []*cifarLayout{cifar10Layout, cifar100Layout} {
			members, err := readCIFARTar(bytes.NewReader(data), l)
			if err != nil {
				continue
			}
			var files []cifarFile
			for _, name := range l.files {
				if b, ok := members[name]; ok {
					files = append(files, cifarFile{name: name, path: name, data: b})
				}
			}
			ds, err := newCIFARDataset(l, files, members[l.metaFine], members[l.metaCoarse])
			if err != nil {
				continue
			}
			loadSome(t, ds)
		}
	})
}

// FuzzIDX feeds arbitrary bytes as an IDX images file and labels file,
// each possibly gzip-compressed.
func FuzzIDX(f *testing.F) {
	px := [][]byte{{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}}
	img := sourcetest.EncodeIDXImages(px, 2, 3)
	lab := sourcetest.EncodeIDXLabels([]int32{3, 200})
	f.Add(img, lab)
	f.Add(sourcetest.Gzip(img), sourcetest.Gzip(lab))
	f.Add(img[:17], lab[:7])
	f.Add(sourcetest.EncodeIDXImages(nil, 0, 0), sourcetest.EncodeIDXLabels(nil))
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, lab)
	f.Add([]byte{0x1f, 0x8b}, []byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		dims, pix, err := decodeIDX(bytes.NewReader(images), int64(len(images)), idxImagesMagic)
		if err != nil {
			return
		}
		if len(pix) != dims[0]*dims[1]*dims[2] {
			t.Fatalf("%d payload bytes for dims %v", len(pix), dims)
		}
		ldims, lab, err := decodeIDX(bytes.NewReader(labels), int64(len(labels)), idxLabelsMagic)
		if err != nil {
			return
		}
		p := idxPart{imagesName: "i", labelsName: "l", imagesPath: "i", labelsPath: "l"}
		if err := p.set(dims, pix, ldims, lab); err != nil {
			return
		}
		for _, fashion := range []bool{false, true} {
			ds, err := newIDXDataset([]idxPart{p}, fashion, fashion)
			if err != nil {
				continue
			}
			loadSome(t, ds)
		}
	})
}

// FuzzDecodeImage feeds arbitrary bytes to the folder decoder and the
// colour conversions: errors, never panics.
func FuzzDecodeImage(f *testing.F) {
	dir := f.TempDir()
	fx, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 1, Broken: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fx.Samples {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.Name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var buf bytes.Buffer
	png.Encode(&buf, image.NewPaletted(image.Rect(0, 0, 3, 2), color.Palette{color.Black}))
	f.Add(buf.Bytes())
	ds := &converter{channels: 3, resizeW: 3, resizeH: 2}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, format, err := decodeImage(data)
		if err != nil {
			return
		}
		if format == "webp" {
			if m, ok := img.(*image.YCbCr); ok {
				if rgba := webpRGBA(m); rgba != nil {
					img = rgba
				}
			}
		}
		b := img.Bounds()
		for _, ch := range []int{1, 3} {
			if px := toHWC(img, ch, nil); len(px) != b.Dx()*b.Dy()*ch {
				t.Fatalf("%d bytes for %v×%d", len(px), b, ch)
			}
		}
		if px := ds.resize(img, &folderScratch{}, nil); len(px) != 18 {
			t.Fatalf("resize gave %d bytes", len(px))
		}
	})
}

// TestNumericNames checks the class names of integer labels, which the
// table fuzzers made one string (see numericNames), across the digit
// boundaries.
func TestNumericNames(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 99, 100, 101, 12345} {
		got := numericNames(n)
		if len(got) != n {
			t.Fatalf("numericNames(%d): %d names", n, len(got))
		}
		for i, s := range got {
			if s != strconv.Itoa(i) {
				t.Fatalf("numericNames(%d)[%d] = %q", n, i, s)
			}
		}
	}
}

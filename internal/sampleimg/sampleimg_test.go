package sampleimg

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/tsimcne/tsimcne-go/format"
)

func TestImage(t *testing.T) {
	gray := &format.Sample{Height: 2, Width: 3, Channels: 1, Data: []byte{1, 2, 3, 4, 5, 6}}
	rgb := &format.Sample{Height: 1, Width: 2, Channels: 3, Data: []byte{10, 20, 30, 40, 50, 60}}
	rgba := &format.Sample{Height: 1, Width: 1, Channels: 4, Data: []byte{1, 2, 3, 4}}
	img, err := Image(gray)
	if err != nil || img.(*image.Gray).GrayAt(2, 1).Y != 6 {
		t.Fatalf("gray: %v", err)
	}
	img, err = Image(rgb)
	if err != nil || img.At(1, 0) != (color.NRGBA{40, 50, 60, 255}) {
		t.Fatalf("rgb: %v %v", err, img.At(1, 0))
	}
	img, err = Image(rgba)
	if err != nil || img.At(0, 0) != (color.NRGBA{1, 2, 3, 4}) {
		t.Fatalf("rgba: %v", err)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	enc := &format.Sample{Height: 1, Width: 1, Channels: 4, Encoded: true, Format: format.FormatPNG, Data: b.Bytes()}
	if img, err := Image(enc); err != nil || img.Bounds().Dx() != 1 {
		t.Fatalf("png: %v", err)
	}
	for _, bad := range []*format.Sample{
		{Height: 2, Width: 2, Channels: 1, Data: []byte{1}},
		{Height: 1, Width: 1, Channels: 2, Data: []byte{1, 2}},
		{Encoded: true, Format: format.FormatPNG, Data: []byte("not a png")},
	} {
		if _, err := Image(bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

func TestScaleToFit(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 4, 2))
	g.Pix = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	s := ScaleToFit(g, 8).(*image.Gray)
	if s.Bounds().Dx() != 8 || s.Bounds().Dy() != 4 || s.GrayAt(7, 3).Y != 8 || s.GrayAt(0, 0).Y != 1 {
		t.Fatalf("scaled %v", s.Pix)
	}
	if ScaleToFit(g, 4) != image.Image(g) {
		t.Fatal("an image already at size was copied")
	}
}

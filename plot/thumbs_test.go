package plot

import (
	"bytes"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
)

// Each point's thumbnail is a solid colour naming the point, so the figure
// shows which points were chosen: one per occupied cell with enough
// points, each drawn, none for sparse cells.
func TestThumbnailImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	xy := make([]float32, 2*n)
	labels := make([]int32, n)
	for i := range n {
		labels[i] = int32(i % 3)
		xy[2*i] = float32(float64(labels[i])*10 + rng.NormFloat64())
		xy[2*i+1] = float32(rng.NormFloat64())
	}
	colorOf := func(i int) color.RGBA { return color.RGBA{uint8(i), uint8(i >> 8), 200, 255} }
	var asked []int
	thumb := func(i int) (image.Image, error) {
		asked = append(asked, i)
		img := image.NewRGBA(image.Rect(0, 0, 8, 8))
		for p := 0; p < len(img.Pix); p += 4 {
			c := colorOf(i)
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = c.R, c.G, c.B, 255
		}
		return img, nil
	}
	img, err := ThumbnailImage(xy, labels, []string{"a", "b", "c"}, thumb, ThumbnailOptions{Width: 1200, Cells: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) < 10 {
		t.Fatalf("only %d thumbnails drawn", len(asked))
	}
	seen := map[int]bool{}
	for _, i := range asked {
		if seen[i] {
			t.Fatalf("point %d drawn twice", i)
		}
		seen[i] = true
		want := colorOf(i)
		found := false
		for p := 0; p < len(img.Pix) && !found; p += 4 {
			found = img.Pix[p] == want.R && img.Pix[p+1] == want.G && img.Pix[p+2] == want.B
		}
		if !found {
			t.Fatalf("thumbnail of point %d not in the figure", i)
		}
	}
	// With a threshold no cell reaches, the figure is the plain map.
	asked = nil
	plain, err := ThumbnailImage(xy, labels, []string{"a", "b", "c"}, thumb, ThumbnailOptions{Width: 1200, Cells: 20, MinPoints: n + 1})
	if err != nil || len(asked) != 0 {
		t.Fatalf("%d thumbnails, %v", len(asked), err)
	}
	ref, _, _ := ScatterImage(xy, labels, []string{"a", "b", "c"}, ScatterOptions{Width: 1200, Height: 960})
	if !bytes.Equal(plain.Pix, ref.Pix) {
		t.Fatal("without thumbnails the figure differs from the scatter plot")
	}
	if _, err := ThumbnailImage(xy, labels, nil, thumb, ThumbnailOptions{Width: 1200, Cells: 5000}); err == nil {
		t.Fatal("5000 cells accepted")
	}
}

package tsimcne_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// Train on a packed file and map every image to a point in 2D. The file
// here is a tiny one written on the spot (cmd/pack writes real ones), and
// the schedule and network are shrunk so that the example runs in a second;
// the defaults (Config{}) are the reference's 1000/50/450 epochs of a
// ResNet-18.
func Example() {
	dir, err := os.MkdirTemp("", "tsimcne-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "blobs.tscn")
	if err := writeBlobs(path, 64); err != nil {
		panic(err)
	}

	data, err := tsimcne.OpenPacked(path, 0)
	if err != nil {
		panic(err)
	}
	defer data.Close()
	m, err := tsimcne.New(tsimcne.Config{
		Epochs:    []int{2, 1, 1}, // stage 1 (128-D), stage 2 (the 2-D layer alone), stage 3 (everything)
		BatchSize: 16,
		Backbone:  "resnet_w4_b1111_h16",
		Seed:      1,
	})
	if err != nil {
		panic(err)
	}
	emb, err := m.FitTransform(context.Background(), data, tsimcne.TransformOptions{})
	if err != nil {
		panic(err)
	}
	// Image i's coordinates are emb.Y[2*i], emb.Y[2*i+1], in dataset order.
	fmt.Printf("%d images mapped to %d-D; image 5 is a %s\n", emb.N, emb.Dim, emb.Classes[emb.Labels[5]])
	// Output:
	// 64 images mapped to 2-D; image 5 is a green
}

// writeBlobs packs n 8×8 RGB images of four classes, each a flat colour.
func writeBlobs(path string, n int) error {
	classes := []string{"red", "green", "blue", "yellow"}
	colours := [][3]byte{{220, 30, 30}, {30, 220, 30}, {30, 30, 220}, {220, 220, 30}}
	w, err := format.Create(path, format.Schema{
		Image:   format.ImageSpec{Fixed: true, Height: 8, Width: 8, Channels: 3},
		Classes: classes,
	}, nil)
	if err != nil {
		return err
	}
	for i := range n {
		l := i % 4
		px := make([]byte, 8*8*3)
		for p := range px {
			px[p] = colours[l][p%3] + byte(i%7)
		}
		if err := w.Add(&format.Sample{Index: i, Label: int32(l), Label2: -1, Height: 8, Width: 8, Channels: 3, Data: px}); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

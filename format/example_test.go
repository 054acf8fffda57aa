package format_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tsimcne/tsimcne-go/format"
)

// Write a packed file of three 2×2 RGB images, then read one back by its
// dataset index. Samples may be added in any order: Index is the dataset
// order, which the reader restores.
func Example() {
	dir, err := os.MkdirTemp("", "format-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tiny.tscn")

	w, err := format.Create(path, format.Schema{
		Image:   format.ImageSpec{Fixed: true, Height: 2, Width: 2, Channels: 3},
		Classes: []string{"dark", "light"},
	}, &format.WriterOptions{Codec: "zstd"})
	if err != nil {
		panic(err)
	}
	for _, i := range []int{2, 0, 1} {
		px := make([]byte, 2*2*3)
		for p := range px {
			px[p] = byte(100 * i)
		}
		err := w.Add(&format.Sample{Index: i, Label: int32(i % 2), Label2: -1, Height: 2, Width: 2, Channels: 3, Data: px})
		if err != nil {
			w.Abort()
			panic(err)
		}
	}
	if err := w.Close(); err != nil { // the file appears only now, complete
		panic(err)
	}

	r, err := format.Open(path, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	s, err := r.Get(2)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d samples; sample 2: %s, %dx%dx%d, first pixel %v\n",
		r.Len(), r.Schema().Classes[s.Label], s.Height, s.Width, s.Channels, s.Data[:3])
	if err := r.Verify(nil); err != nil { // decompresses every chunk
		panic(err)
	}
	fmt.Println("every checksum matches")
	// Output:
	// 3 samples; sample 2: dark, 2x2x3, first pixel [200 200 200]
	// every checksum matches
}

package embedio_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tsimcne/tsimcne-go/embedio"
)

// Store a 2-D map of three images as an Arrow file (pyarrow, DuckDB, polars
// and apache-arrow open it; a .parquet name gives Parquet) and read it back.
func ExampleWriteFile() {
	dir, err := os.MkdirTemp("", "embedio-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "map.arrow")

	e := &embedio.Embedding{
		Labels:  []int32{0, 1, 1},
		Classes: []string{"cat", "dog"},
		Coords:  []float32{0.5, -1, 3, 2, 2.5, 2.25}, // x, y of each image in dataset order
		Dim:     2,
		Meta:    map[string]string{embedio.MetaSeed: "1"},
	}
	if err := embedio.WriteFile(path, e); err != nil {
		panic(err)
	}
	back, err := embedio.Read(path)
	if err != nil {
		panic(err)
	}
	for i := range back.Len() {
		fmt.Printf("image %d: %s at (%g, %g)\n", i, back.Classes[back.Labels[i]], back.Coords[2*i], back.Coords[2*i+1])
	}
	// Output:
	// image 0: cat at (0.5, -1)
	// image 1: dog at (3, 2)
	// image 2: dog at (2.5, 2.25)
}

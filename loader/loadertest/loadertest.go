// Package loadertest holds small in-memory datasets for the tests of the
// loader's users (tsimcne, the CUDA backend), so that each test does not
// build its own.
package loadertest

import (
	"math/rand/v2"

	"github.com/tsimcne/tsimcne-go/loader"
)

// Blobs is a tiny dataset that a few epochs can learn: n 8×8 RGB images of
// four classes, image i of class i mod 4, each class a colour (red, green,
// blue, yellow) with uniform noise of ±20 levels, the same for every call.
func Blobs(n int) *loader.MemorySource {
	rng := rand.New(rand.NewPCG(1, 2))
	colours := [4][3]int{{220, 30, 30}, {30, 220, 30}, {30, 30, 220}, {220, 220, 30}}
	src := &loader.MemorySource{}
	for i := range n {
		l := i % 4
		px := make([]byte, 8*8*3)
		for p := range 64 {
			for c := range 3 {
				px[p*3+c] = byte(max(0, min(255, colours[l][c]+rng.IntN(40)-20)))
			}
		}
		src.Samples = append(src.Samples, loader.Sample{Label: int32(l), Height: 8, Width: 8, Channels: 3, Data: px})
	}
	return src
}

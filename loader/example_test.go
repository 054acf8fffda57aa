package loader_test

import (
	"context"
	"fmt"
	"io"

	"github.com/tsimcne/tsimcne-go/augment"
	"github.com/tsimcne/tsimcne-go/loader"
)

// A training epoch: batches of image pairs, rows i and i+N positives.
// With a packed file the source is loader.FromReader(r) for r from format.Open.
func Example() {
	src := &loader.MemorySource{}
	for i := 0; i < 10; i++ {
		src.Samples = append(src.Samples, loader.Sample{Label: int32(i % 2), Height: 8, Width: 8, Channels: 3, Data: make([]byte, 8*8*3)})
	}
	l, err := loader.New(src, loader.Options{BatchSize: 4, Seed: 42, Augment: augment.DefaultConfig(8, 8)})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	for epoch := 0; epoch < 2; epoch++ {
		it, err := l.Epoch(context.Background(), epoch, 0)
		if err != nil {
			panic(err)
		}
		for {
			b, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				panic(err) // a damaged sample, or cancellation
			}
			// b.X holds 2·N rows of 8×8×3 float32: view 1 of images 0..N-1, then view 2.
			fmt.Printf("epoch %d step %d: %d images, %d floats\n", b.Epoch, b.Step, b.N, len(b.X))
			b.Release()
		}
	}
	// Output:
	// epoch 0 step 0: 4 images, 1536 floats
	// epoch 0 step 1: 4 images, 1536 floats
	// epoch 0 step 2: 2 images, 768 floats
	// epoch 1 step 0: 4 images, 1536 floats
	// epoch 1 step 1: 4 images, 1536 floats
	// epoch 1 step 2: 2 images, 768 floats
}

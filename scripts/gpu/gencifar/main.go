// Command gencifar writes a synthetic CIFAR-10 binary directory (five
// data_batch files and test_batch, perBatch images each; 10000 gives the
// real set's 60,000 images) with source/sourcetest's generator, for timing
// an epoch on a machine without the real data:
//
//	gencifar DIR [perBatch]
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gencifar DIR [perBatch]")
		os.Exit(2)
	}
	per := 10000
	if len(os.Args) > 2 {
		v, err := strconv.Atoi(os.Args[2])
		if err != nil || v < 1 {
			fmt.Fprintf(os.Stderr, "gencifar: perBatch %q: want a positive integer\n", os.Args[2])
			os.Exit(2)
		}
		per = v
	}
	if _, _, err := sourcetest.WriteCIFAR10(os.Args[1], per, 1); err != nil {
		fmt.Fprintln(os.Stderr, "gencifar:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d CIFAR-10-format images to %s\n", 6*per, os.Args[1])
}

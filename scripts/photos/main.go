// Command photos writes a folder of JPEG crops of the real photographs in
// Debian's mate-backgrounds package, for benchmarks:
//
//	go run ./scripts/photos -n 5000 -o /tmp/photos            # ImageNet-like sizes
//	go run ./scripts/photos -n 1536 -square 256 -o /tmp/p256   # 256×256, q90
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tsimcne/tsimcne-go/internal/photos"
)

func main() {
	var opt photos.Options
	out := flag.String("o", "", "output folder (class subfolders are created)")
	flag.IntVar(&opt.N, "n", 1000, "number of JPEGs")
	flag.IntVar(&opt.MinSide, "min", 300, "smallest crop side")
	flag.IntVar(&opt.MaxSide, "max", 500, "largest crop side")
	flag.IntVar(&opt.Square, "square", 0, "if > 0, square images of this side (scaled-down crops)")
	flag.IntVar(&opt.Quality, "q", 90, "JPEG quality")
	flag.Uint64Var(&opt.Seed, "seed", 1, "seed of the crops")
	flag.IntVar(&opt.Workers, "workers", 2, "parallel encoders")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "photos: -o is required")
		os.Exit(2)
	}
	classes, err := photos.Cut(*out, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d JPEGs in %d classes to %s\n", opt.N, len(classes), *out)
}

// Command knnsplit writes the kNN test split of docs/ALGORITHM.md ("kNN
// protocol") exactly as the Go code draws it (knn.StratifiedSplit with
// knn.DefaultTestSize), so that scripts/baseline/tsne_pixels.py --split scores the pixel baseline on the
// same 10,000 points as the embed command.
//
//	go run ./scripts/baseline/knnsplit [-seed 0] [-o split.json] DATA
//
// DATA is a packed dataset file or a directory of IDX files (train-* then
// t10k-*, gzipped or not: the order the pack command uses). The output is
// {"n": N, "test_size": T, "seed": S, "test": [ascending indices]}.
package main

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/internal/atomicfile"
	"github.com/tsimcne/tsimcne-go/knn"
)

func main() {
	seed := flag.Uint64("seed", knn.DefaultSplitSeed, "seed of the split")
	out := flag.String("o", "-", "output file (- for stdout)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: knnsplit [-seed S] [-o split.json] DATA (packed file or IDX directory)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *seed, *out); err != nil {
		fmt.Fprintln(os.Stderr, "knnsplit:", err)
		os.Exit(1)
	}
}

func run(data string, seed uint64, out string) error {
	labels, err := loadLabels(data)
	if err != nil {
		return err
	}
	size := knn.DefaultTestSize(len(labels))
	if size == 0 {
		return fmt.Errorf("%s: %d images are too few for a test split", data, len(labels))
	}
	_, test := knn.StratifiedSplit(labels, size, seed)
	doc := map[string]any{"n": len(labels), "test_size": size, "seed": seed, "test": test}
	if out == "-" {
		return json.NewEncoder(os.Stdout).Encode(doc)
	}
	return atomicfile.Write(out, 0o644, func(w io.Writer) error { return json.NewEncoder(w).Encode(doc) })
}

func loadLabels(data string) ([]int32, error) {
	st, err := os.Stat(data)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		r, err := format.Open(data, nil)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", data, err)
		}
		defer r.Close()
		labels := make([]int32, r.Len())
		for i := range labels {
			labels[i] = r.Label(i)
		}
		return labels, nil
	}
	var labels []int32
	for _, name := range []string{"train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"} {
		l, err := readIDXLabels(filepath.Join(data, name))
		if err != nil {
			return nil, err
		}
		labels = append(labels, l...)
	}
	return labels, nil
}

// readIDXLabels reads an IDX1 file of unsigned bytes, trying NAME.gz first.
func readIDXLabels(path string) ([]int32, error) {
	var r io.Reader
	f, err := os.Open(path + ".gz")
	if err == nil {
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s.gz: %w", path, err)
		}
		r = z
	} else if f, err = os.Open(path); err == nil {
		defer f.Close()
		r = f
	} else {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) < 8 || b[0] != 0 || b[1] != 0 || b[2] != 8 || b[3] != 1 {
		return nil, errors.New(path + ": not an IDX1 file of unsigned bytes")
	}
	n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
	if len(b)-8 != n {
		return nil, fmt.Errorf("%s: header says %d labels, file holds %d", path, n, len(b)-8)
	}
	labels := make([]int32, n)
	for i, v := range b[8:] {
		labels[i] = int32(v)
	}
	return labels, nil
}

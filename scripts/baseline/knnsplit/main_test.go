package main

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tsimcne/tsimcne-go/knn"
)

func writeIDX1(t *testing.T, path string, labels []byte, gz bool) {
	t.Helper()
	b := append([]byte{0, 0, 8, 1, 0, 0, byte(len(labels) >> 8), byte(len(labels))}, labels...)
	if !gz {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Create(path + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	z := gzip.NewWriter(f)
	z.Write(b)
	z.Close()
	f.Close()
}

// The split written for an IDX directory is knn.StratifiedSplit over the
// train labels followed by the t10k labels.
func TestRunIDX(t *testing.T) {
	dir := t.TempDir()
	train := make([]byte, 600)
	test := make([]byte, 100)
	for i := range train {
		train[i] = byte(i * 7 % 10)
	}
	for i := range test {
		test[i] = byte(i % 3)
	}
	writeIDX1(t, filepath.Join(dir, "train-labels-idx1-ubyte"), train, true)
	writeIDX1(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), test, false)
	out := filepath.Join(dir, "split.json")
	if err := run(dir, 3, out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		N        int
		TestSize int `json:"test_size"`
		Test     []int
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var labels []int32
	for _, v := range append(train, test...) {
		labels = append(labels, int32(v))
	}
	_, want := knn.StratifiedSplit(labels, knn.DefaultTestSize(700), 3)
	if got.TestSize != 100 || !slices.Equal(got.Test, want) {
		t.Fatalf("split size %d, %d indices; want 100 and knn.StratifiedSplit's", got.TestSize, len(got.Test))
	}
	if err := run(filepath.Join(dir, "missing"), 0, "-"); err == nil {
		t.Fatal("no error for a missing input")
	}
	os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 9, 1}, 0o644)
	if err := run(dir, 0, out); err == nil {
		t.Fatal("no error for a short IDX file")
	}
}

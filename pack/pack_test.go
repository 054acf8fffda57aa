package pack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsimcne/tsimcne-go/format"
	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// slowSource cancels the context once some samples have loaded, like a
// Ctrl-C in the middle of a pack.
type slowSource struct {
	source.Dataset
	cancel context.CancelFunc
	after  int
}

func (s *slowSource) Load(i int, out *source.Sample) error {
	if i == s.after {
		s.cancel()
	}
	return s.Dataset.Load(i, out)
}

func TestCancelLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "cifar")
	if _, _, err := sourcetest.WriteCIFAR10(src, 500, 1); err != nil {
		t.Fatal(err)
	}
	ds, err := source.Open([]string{src}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := filepath.Join(dir, "out.tscn")
	_, err = Pack(ctx, &slowSource{Dataset: ds, cancel: cancel, after: 1000}, nil, out, Options{Workers: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pack after cancel: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("a cancelled pack left %v", ents)
	}
}

// Shuffled packing keeps dataset order for indices and mixes classes in
// every chunk.
func TestShuffleKeepsDatasetOrder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "cifar")
	pixels, labels, err := sourcetest.WriteCIFAR10(src, 200, 2)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := source.Open([]string{src}, source.Options{})
	defer ds.Close()
	out := filepath.Join(dir, "s.tscn")
	if _, err := Pack(context.Background(), ds, nil, out, Options{Shuffle: true, Seed: 4, ChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	r, err := format.Open(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range r.Len() {
		s, _ := r.Get(i)
		if s.Label != labels[i] || string(s.Data) != string(pixels[i]) {
			t.Fatalf("sample %d is not the source's sample %d", i, i)
		}
	}
	for c := range r.NumChunks() {
		seen := map[int32]bool{}
		for _, i := range r.ChunkSamples(c) {
			seen[labels[i]] = true
		}
		if len(r.ChunkSamples(c)) >= 20 && len(seen) < 5 {
			t.Errorf("chunk %d holds only %d classes", c, len(seen))
		}
	}
}

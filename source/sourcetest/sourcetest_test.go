package sourcetest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestEncodeCIFARBatch(t *testing.T) {
	px := make([]byte, 3072)
	for k := 0; k < 1024; k++ {
		px[3*k], px[3*k+1], px[3*k+2] = 1, 2, 3 // R, G, B
	}
	b := EncodeCIFARBatch([][]byte{px}, []int32{7}, nil)
	want := append([]byte{7}, append(bytes.Repeat([]byte{1}, 1024), append(bytes.Repeat([]byte{2}, 1024), bytes.Repeat([]byte{3}, 1024)...)...)...)
	if !bytes.Equal(b, want) {
		t.Error("CIFAR-10 record is not label, then R, G and B planes")
	}
	b = EncodeCIFARBatch([][]byte{px}, []int32{42}, []int32{8})
	if len(b) != 3074 || b[0] != 8 || b[1] != 42 {
		t.Errorf("CIFAR-100 record starts %v, want coarse 8, fine 42", b[:2])
	}
}

func TestWriters(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := WriteCIFAR10(dir, 2, 1); err != nil {
		t.Fatal(err)
	}
	for _, f := range CIFAR10Files {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() != 2*3073 {
			t.Errorf("%s: %v, %v", f, fi, err)
		}
	}
	px, labels, err := WriteIDX(dir, 3, 2, 4, 5, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != 5 || len(labels) != 5 || len(px[0]) != 20 {
		t.Errorf("WriteIDX returned %d images of %d bytes", len(px), len(px[0]))
	}
	if fi, err := os.Stat(filepath.Join(dir, "t10k-images-idx3-ubyte")); err != nil || fi.Size() != 16+2*20 {
		t.Errorf("t10k images: %v, %v", fi, err)
	}
	// The same seed gives the same data.
	px2, _, _ := WriteIDX(t.TempDir(), 3, 2, 4, 5, true, 1)
	if !bytes.Equal(px[4], px2[4]) {
		t.Error("WriteIDX is not deterministic")
	}
	f, err := WriteImageFolder(t.TempDir(), FolderOptions{Seed: 1, Broken: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Samples) != len(f.Good())+3 {
		t.Errorf("%d samples, %d good; want 3 broken", len(f.Samples), len(f.Good()))
	}
	for _, s := range f.Good() {
		if len(s.RGB) != 3*s.Width*s.Height {
			t.Errorf("%s: %d RGB bytes for %dx%d", s.Name, len(s.RGB), s.Width, s.Height)
		}
	}
}

func TestMNISTDir(t *testing.T) {
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

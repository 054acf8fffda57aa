package source_test

import (
	"os"
	"testing"

	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// cifarDir writes a CIFAR-10 directory of the real shape (60,000 records)
// once per benchmark binary.
var cifarDirCache string

func cifarDir(b *testing.B) string {
	b.Helper()
	if cifarDirCache != "" {
		return cifarDirCache
	}
	dir, err := os.MkdirTemp("", "bench-cifar10")
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := sourcetest.WriteCIFAR10(dir, 10000, 1); err != nil {
		b.Fatal(err)
	}
	cifarDirCache = dir
	return dir
}

// BenchmarkCIFAR10Open measures Open of a full-size CIFAR-10 directory
// (reading 184 MB); MB/s counts file bytes.
func BenchmarkCIFAR10Open(b *testing.B) {
	dir := cifarDir(b)
	b.SetBytes(60000 * 3073)
	for b.Loop() {
		ds, err := source.Open([]string{dir}, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ds.Close()
	}
}

// BenchmarkCIFAR10Load measures Load (CHW→HWC) into a reused Sample, in
// dataset order, from as many goroutines as GOMAXPROCS.
func BenchmarkCIFAR10Load(b *testing.B) {
	ds, err := source.Open([]string{cifarDir(b)}, source.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	b.SetBytes(3072)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var s source.Sample
		i := 0
		for pb.Next() {
			if err := ds.Load(i%60000, &s); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

// BenchmarkMNISTOpen measures Open of MNIST's four gzip files (decompression
// included); MB/s counts decompressed bytes.
func BenchmarkMNISTOpen(b *testing.B) {
	dir, err := sourcetest.MNISTDir()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(70000*784 + 70000 + 32)
	for b.Loop() {
		ds, err := source.Open([]string{dir}, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ds.Close()
	}
}

// BenchmarkMNISTLoad measures Load of MNIST samples into a reused Sample.
func BenchmarkMNISTLoad(b *testing.B) {
	dir, err := sourcetest.MNISTDir()
	if err != nil {
		b.Fatal(err)
	}
	ds, err := source.Open([]string{dir}, source.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	b.SetBytes(784)
	b.ReportAllocs()
	var s source.Sample
	i := 0
	for b.Loop() {
		if err := ds.Load(i%70000, &s); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFolderLoad measures decoding the mixed-format fixture folder,
// raw and resized.
func BenchmarkFolderLoad(b *testing.B) {
	dir := b.TempDir()
	if _, err := sourcetest.WriteImageFolder(dir, sourcetest.FolderOptions{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  source.Options
	}{{"raw", source.Options{}}, {"resize32", source.Options{ResizeW: 32, ResizeH: 32}}, {"encoded", source.Options{KeepEncoded: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			ds, err := source.Open([]string{dir}, tc.opt)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var s source.Sample
			i := 0
			for b.Loop() {
				if err := ds.Load(i%ds.Len(), &s); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cifarDirCache != "" {
		os.RemoveAll(cifarDirCache)
	}
	os.Exit(code)
}

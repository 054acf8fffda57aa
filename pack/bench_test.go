package pack_test

import (
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsimcne/tsimcne-go/pack"
	"github.com/tsimcne/tsimcne-go/source"
	"github.com/tsimcne/tsimcne-go/source/sourcetest"
)

// BenchmarkPackCIFAR10 packs a 60,000-image CIFAR-10-format directory
// (184 MB of batch files) end to end: open the source, load, compress with
// lz4, write, commit. MB/s counts the source files' bytes.
func BenchmarkPackCIFAR10(b *testing.B) {
	src := filepath.Join(b.TempDir(), "cifar")
	if _, _, err := sourcetest.WriteCIFAR10(src, 10000, 1); err != nil {
		b.Fatal(err)
	}
	benchPack(b, src, 6*10000*3073)
}

// BenchmarkPackMNIST packs real MNIST (the gzip IDX files of the GoMNIST
// module, 70,000 images): MB/s counts the uncompressed IDX bytes.
func BenchmarkPackMNIST(b *testing.B) {
	dir, err := sourcetest.MNISTDir()
	if err != nil {
		b.Fatal(err)
	}
	benchPack(b, dir, 70000*784+70000+32)
}

func benchPack(b *testing.B, src string, bytes int64) {
	out := filepath.Join(b.TempDir(), "out.tscn")
	b.SetBytes(bytes)
	b.ResetTimer()
	for range b.N {
		ds, err := source.Open([]string{src}, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pack.Pack(b.Context(), ds, []string{src}, out, pack.Options{}); err != nil {
			b.Fatal(err)
		}
		ds.Close()
		os.Remove(out)
	}
}

// BenchmarkBaselineReadCIFAR10 is the ceiling for BenchmarkPackCIFAR10:
// reading the same 184 MB of batch files into memory and checksumming them.
func BenchmarkBaselineReadCIFAR10(b *testing.B) {
	src := filepath.Join(b.TempDir(), "cifar")
	if _, _, err := sourcetest.WriteCIFAR10(src, 10000, 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(6 * 10000 * 3073)
	b.ResetTimer()
	for range b.N {
		for _, f := range sourcetest.CIFAR10Files {
			data, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				b.Fatal(err)
			}
			crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		}
	}
}

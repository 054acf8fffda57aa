package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
)

// fuzzArch is the smallest network: its checkpoint (a few KiB) keeps the
// fuzz target fast, since every execution hashes the whole input.
const fuzzArch = "resnet_w2_b1111_h8"

// microCheckpoint returns the bytes of a small checkpoint with optimiser
// state (issue 16's damage tests).
func microCheckpoint(t testing.TB) []byte { return checkpointOf(t, microArch, microOutDim) }

// checkpointOf returns the bytes of a checkpoint of arch after one step.
func checkpointOf(t testing.TB, arch string, outDim int) []byte {
	t.Helper()
	be, err := NewCPU(CPUOptions{Threads: 1, GEMM: "go"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(be, Options{Arch: arch, OutDim: outDim, Seed: 5, ImageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTrainer(m, "euclidean")
	x := randImages(3, 8, 8)
	if _, err := tr.Step(x, 8, 0.01); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ckpt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "c.safetensors")
	if err := SaveCheckpoint(p, m, tr.Opt, CheckpointMeta{Epoch: 1, Config: []byte(`{"k":1}`)}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckpointEveryByteChecked flips one bit at every fifth byte of the
// header (every byte of the length and the checksum field), and at 300
// random places of the tensor data, and overwrites 4 KiB with 0xFF: every
// change must be refused, never loaded (issue 16). (Each load hashes the
// whole file; every byte of it would take a minute.)
func TestCheckpointEveryByteChecked(t *testing.T) {
	good := microCheckpoint(t)
	be := newCPU(t, "go")
	if _, _, _, err := LoadCheckpointBytes("good", good, be, Options{}); err != nil {
		t.Fatalf("intact checkpoint: %v", err)
	}
	hl := int(binary.LittleEndian.Uint64(good)) + 8
	t.Logf("checkpoint of %d bytes, header %d", len(good), hl)
	rng := rand.New(rand.NewPCG(16, 0))
	positions := make([]int, 0, hl/5+400)
	field := strings.Index(string(good[:hl]), `"`+safetensors.ChecksumKey+`"`)
	for i := range hl {
		if i < 8 || i%5 == 0 || (i >= field && i < field+80) {
			positions = append(positions, i)
		}
	}
	for range 300 {
		positions = append(positions, hl+rng.IntN(len(good)-hl))
	}
	b := make([]byte, len(good))
	for _, pos := range positions {
		copy(b, good)
		b[pos] ^= 1 << rng.IntN(8)
		if _, _, _, err := LoadCheckpointBytes("flipped", b, be, Options{}); err == nil {
			t.Fatalf("a bit flipped at byte %d of %d (header %d bytes) was not detected", pos, len(good), hl)
		}
	}
	copy(b, good)
	for i := len(b) / 2; i < len(b)/2+4096 && i < len(b); i++ {
		b[i] = 0xff
	}
	_, _, _, err := LoadCheckpointBytes("ff", b, be, Options{})
	if !errors.Is(err, safetensors.ErrDamaged) || !strings.Contains(err.Error(), "ff") {
		t.Fatalf("4 KiB of 0xFF: %v", err)
	}
}

// TestCheckpointNotFinite: a checkpoint whose weights hold NaN (a diverged
// run), correctly checksummed, is refused with the tensor's name.
func TestCheckpointNotFinite(t *testing.T) {
	good := microCheckpoint(t)
	tensors, meta, err := safetensors.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	w := tensors["head.0.weight"]
	w.Data = append([]byte(nil), w.Data...)
	binary.LittleEndian.PutUint32(w.Data[8:], math.Float32bits(float32(math.NaN())))
	tensors["head.0.weight"] = w
	delete(meta, safetensors.ChecksumKey)
	p := filepath.Join(t.TempDir(), "nan.safetensors")
	if err := safetensors.Write(p, tensors, meta); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = LoadCheckpoint(p, newCPU(t, "go"), Options{})
	if err == nil || !strings.Contains(err.Error(), "head.0.weight") || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN weights: %v", err)
	}
}

// TestCheckpointWithoutChecksum: a checkpoint without its checksum (an old
// one, or a damaged key) is refused.
func TestCheckpointWithoutChecksum(t *testing.T) {
	good := microCheckpoint(t)
	b := []byte(strings.Replace(string(good), `"`+safetensors.ChecksumKey+`"`, `"sha257"`, 1))
	_, _, _, err := LoadCheckpointBytes("nosum", b, newCPU(t, "go"), Options{})
	if !errors.Is(err, safetensors.ErrDamaged) {
		t.Fatalf("no checksum: %v", err)
	}
}

// FuzzLoadCheckpoint feeds arbitrary bytes to the checkpoint reader, as
// they are and resealed (checksum recomputed) so that the fuzzer reaches
// the parsing behind the checksum: errors are fine, panics are not.
func FuzzLoadCheckpoint(f *testing.F) {
	good := checkpointOf(f, fuzzArch, 4)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:100])
	hl := int(binary.LittleEndian.Uint64(good)) + 8
	f.Add(good[:hl])
	be, err := NewCPU(CPUOptions{Threads: 1, GEMM: "go"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		LoadCheckpointBytes("fuzz", b, be, Options{})
		if safetensors.Seal(b) != nil {
			return
		}
		// Only models as small as the seed's: a crafted header may ask for
		// a full-size network, which is slow to build but no parser bug.
		var hdr struct {
			Meta map[string]string `json:"__metadata__"`
		}
		if len(b) < 8 || json.Unmarshal(b[8:8+binary.LittleEndian.Uint64(b)], &hdr) != nil {
			return
		}
		var cm CheckpointMeta
		if json.Unmarshal([]byte(hdr.Meta["tsimcne"]), &cm) != nil || cm.Arch != fuzzArch || cm.ImageSize > 16 || cm.OutDim > 64 {
			return
		}
		LoadCheckpointBytes("fuzz-sealed", b, be, Options{})
	})
}

package hostile

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// TestEmbedHostile: swapped arguments, outputs that are inputs or each
// other, data of another shape, missing and foreign files, a NaN model.
func TestEmbedHostile(t *testing.T) {
	runDir := trained(t)
	dir := t.TempDir()
	data := copyFile(t, fx.tiny, dir)
	ck := filepath.Join(runDir, tsimcne.CheckpointFile)
	out := filepath.Join(dir, "e.arrow")
	sums := map[string]string{data: sum(t, data), ck: sum(t, ck), filepath.Join(runDir, "metrics.csv"): sum(t, filepath.Join(runDir, "metrics.csv"))}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{data, runDir, "-o", out}, []string{"packed dataset, not a model", "swapped"}},
		{[]string{runDir, ck, "-o", out}, []string{"is a checkpoint, not a packed dataset", "swapped"}},
		{[]string{ck, runDir, "-o", out}, []string{"run directory", "swapped"}},
		{[]string{runDir, data, "-o", data}, []string{"-o " + data, "refusing to overwrite an input"}},
		{[]string{runDir, data, "-o", ck}, []string{"refusing to overwrite an input"}},
		{[]string{runDir, data, "-o", filepath.Join(runDir, "metrics.csv")}, []string{"refusing to overwrite an input"}},
		{[]string{runDir, data, "-o", out, "--plot", data}, []string{"--plot", "refusing to overwrite an input"}},
		{[]string{runDir, data, "-o", out, "--plot", out}, []string{"same file"}},
		{[]string{runDir, data, "-o", out, "--plot", ck}, []string{"--plot", "refusing to overwrite an input"}},
		{[]string{runDir, fx.cifar, "-o", out}, []string{"32x32x3", "12x12x1", "--allow-other-shape"}},
		{[]string{runDir, filepath.Join(dir, "missing.tscn"), "-o", out}, []string{"missing.tscn"}},
		{[]string{filepath.Join(dir, "nothing"), data, "-o", out}, []string{"nothing"}},
		{[]string{dir, data, "-o", out}, []string{"RUN_DIR", "no checkpoint.safetensors"}},
		{[]string{runDir, data}, []string{"output"}},
		{[]string{runDir, dir, "-o", out}, []string{"is a directory"}},
	} {
		run(t, quick, dir, "embed", c.args...).fails(t, 1, c.want...)
	}
	for p, s := range sums {
		if sum(t, p) != s {
			t.Fatalf("%s changed", p)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an output was written by a refused embed")
	}
	// Another shape, allowed explicitly: a warning, and a map.
	r := run(t, quick, dir, "embed", runDir, fx.cifar, "-o", out, "-q", "--allow-other-shape")
	r.ok(t)
	if !strings.Contains(r.err, "warning") {
		t.Fatalf("no warning:\n%s", r)
	}
	// A text file as the model.
	txt := filepath.Join(dir, "model.txt")
	os.WriteFile(txt, []byte("this is not a checkpoint, only text long enough to look at"), 0o644)
	run(t, quick, dir, "embed", txt, data, "-o", out).fails(t, 1, "model.txt", "not a safetensors file")
}

// TestEmbedNaNModel: a checkpoint whose weights are NaN (a diverged run),
// with a correct checksum, is refused naming the tensor, not embedded into
// "0 usable training points".
func TestEmbedNaNModel(t *testing.T) {
	runDir := trained(t)
	ck := filepath.Join(runDir, tsimcne.CheckpointFile)
	tensors, meta, err := safetensors.Read(ck)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range tensors {
		if strings.HasSuffix(name, "weight") && v.DType == "F32" && !strings.HasPrefix(name, "optimizer.") {
			v.Data = append([]byte(nil), v.Data...)
			for i := 0; i < len(v.Data); i += 4 {
				binary.LittleEndian.PutUint32(v.Data[i:], math.Float32bits(float32(math.NaN())))
			}
			tensors[name] = v
		}
	}
	delete(meta, safetensors.ChecksumKey)
	if err := safetensors.Write(ck, tensors, meta); err != nil {
		t.Fatal(err)
	}
	r := run(t, quick, "", "embed", runDir, fx.tiny, "-o", filepath.Join(t.TempDir(), "e.arrow"))
	r.fails(t, 1, ck, "NaN", "not finite")
}

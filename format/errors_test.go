package format

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorPrefix: the errors format makes start with "format: ", once;
// an OS error passes through as it is (an *fs.PathError), as archive/zip's
// do.
func TestErrorPrefix(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tscn")
	w, err := Create(good, Schema{Image: ImageSpec{Fixed: true, Height: 1, Width: 1, Channels: 1}, Classes: []string{"a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(&Sample{Index: 0, Height: 1, Width: 1, Channels: 1, Data: []byte{7}}); err != nil {
		t.Fatal(err)
	}
	badAdd := w.Add(&Sample{Index: 1, Height: 2, Width: 1, Channels: 1, Data: []byte{1, 2}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	notPacked := filepath.Join(dir, "text.tscn")
	if err := os.WriteFile(notPacked, []byte(strings.Repeat("not a packed file ", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, getErr := r.Get(5)
	_, chunkErr := r.ReadChunk(9, nil)
	_, codecErr := ParseCodec("gzip")
	_, openDirErr := Open(dir, nil)
	_, openBadErr := Open(notPacked, nil)
	_, appendBadErr := Append(notPacked, &WriterOptions{Codec: "zstd"})
	_, appendCodecErr := Append(good, &WriterOptions{Codec: "zstd"})
	_, createErr := Create(filepath.Join(dir, "x.tscn"), Schema{Classes2: []string{"b"}}, nil)
	for name, err := range map[string]error{
		"Add": badAdd, "Get": getErr, "ReadChunk": chunkErr, "ParseCodec": codecErr, "Open(dir)": openDirErr,
		"Open(text)": openBadErr, "Append(text)": appendBadErr, "Append(codec)": appendCodecErr, "Create": createErr,
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "format: ") || strings.Count(msg, "format: ") != 1 {
			t.Errorf("%s: %q: want one \"format: \" prefix", name, msg)
		}
	}
	_, missing := Open(filepath.Join(dir, "missing.tscn"), nil)
	var pe *fs.PathError
	if !errors.As(missing, &pe) || !errors.Is(missing, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want the *fs.PathError", missing)
	}
}

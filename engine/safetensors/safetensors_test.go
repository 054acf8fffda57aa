package safetensors

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	in := map[string]Tensor{
		"a": F32([]float32{1, -2.5, 3}, 3),
		"b": I64([]int64{7}),
		"c": F32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
	}
	if err := Write(p, in, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" {
		t.Fatalf("metadata %v", meta)
	}
	for k, v := range in {
		got := out[k]
		if got.DType != v.DType || !reflect.DeepEqual(got.Data, v.Data) || got.Elements() != v.Elements() {
			t.Fatalf("%s: got %+v want %+v", k, got, v)
		}
	}
	f, _ := out["a"].Float32s()
	if f[1] != -2.5 {
		t.Fatal(f)
	}
	i, _ := out["b"].Int64s()
	if i[0] != 7 || len(out["b"].Shape) != 0 {
		t.Fatal(i, out["b"].Shape)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestParseRejectsCorrupt(t *testing.T) {
	for _, raw := range [][]byte{
		nil,
		{1, 0, 0, 0, 0, 0, 0, 0},
		append([]byte{255, 255, 255, 255, 0, 0, 0, 0}, []byte("{}")...),
		append([]byte{2, 0, 0, 0, 0, 0, 0, 0}, []byte("{]")...),
		append([]byte{58, 0, 0, 0, 0, 0, 0, 0}, []byte(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   `)...),
	} {
		if _, _, err := Parse(raw); err == nil {
			t.Errorf("Parse(%q) succeeded", raw)
		}
	}
}

// FuzzParse feeds arbitrary bytes to Parse, as they are and resealed, so
// that the fuzzer reaches the header and offset checks behind the checksum.
func FuzzParse(f *testing.F) {
	p := filepath.Join(f.TempDir(), "x.safetensors")
	if err := Write(p, map[string]Tensor{"a": F32([]float32{1, 2, 3}, 3), "b": I64([]int64{7}), "c": U8([]byte{1, 2}, 2, 1)}, map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:20])
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(b []byte) {
			ts, _, err := Parse(b)
			if err != nil {
				return
			}
			for name, tt := range ts {
				if len(tt.Data) != tt.Elements()*dtypeSize[tt.DType] {
					t.Fatalf("%s: %d bytes for %v %s", name, len(tt.Data), tt.Shape, tt.DType)
				}
				tt.Float32s()
				tt.Int64s()
			}
		}
		check(b)
		if Seal(b) == nil {
			check(b)
		}
	})
}

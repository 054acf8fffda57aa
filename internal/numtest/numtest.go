// Package numtest holds what the engine's tests share on the CPU and on the
// GPU backends: the relative error the oracle tolerances are stated in, and
// reading the safetensors fixtures.
package numtest

import (
	"math"
	"testing"

	"github.com/tsimcne/tsimcne-go/engine/safetensors"
)

// RelErr is ‖got−want‖/‖want‖ in float64 (‖got−want‖ when want is zero),
// the measure the oracle fixtures' tolerances are stated in.
func RelErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// ReadTensors reads a safetensors fixture, failing the test on error.
func ReadTensors(t testing.TB, path string) map[string]safetensors.Tensor {
	t.Helper()
	m, _, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Float32s returns tensor name of a fixture as float32s, failing the test
// when it is missing or of another type.
func Float32s(t testing.TB, m map[string]safetensors.Tensor, name string) []float32 {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("fixture has no tensor %q", name)
	}
	f, err := v.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

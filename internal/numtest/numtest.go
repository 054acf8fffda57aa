// Package numtest holds the numeric comparisons the engine's tests share,
// on the CPU and on the GPU backends.
package numtest

import "math"

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

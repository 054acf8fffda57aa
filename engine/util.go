package engine

import "math"

func sqrtf(n int) float64 { return math.Sqrt(float64(n)) }

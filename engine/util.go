package engine

import (
	"math"
	"strconv"
)

func sqrtf(n int) float64 { return math.Sqrt(float64(n)) }

func strconvF(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

//go:build amd64 && !purego

package augment

import "golang.org/x/sys/cpu"

// useAVX512 selects the assembly kernels of resample_amd64.s (AVX-512F for
// the vertical pass; the horizontal one needs only AVX, which AVX-512F
// implies). A variable so that tests can compare both paths.
var useAVX512 = cpu.X86.HasAVX512F

// vpassAVX512 is vpass for the first n bytes of each row, n a multiple of 16.
//
//go:noescape
func vpassAVX512(dst *float32, src *uint8, stride, n int, w *float32, taps int)

// hpass4AVX is hpass for four rows: dstStride and srcStride are the byte
// distances between consecutive rows (of dst and of src).
//
//go:noescape
func hpass4AVX(dst *float32, dstStride int, src *float32, srcStride int, xs *int32, w *float32, nout, taps int)

// The colour kernels of color_amd64.s; see the Go forms in color.go.

//go:noescape
func affineClampAVX512(v *float32, n int, a, b float32)

//go:noescape
func graySumAVX512(v *float32, npx int, part *[16]float32)

//go:noescape
func saturationAVX512(v *float32, npx int, a, b float32)

//go:noescape
func grayAVX512(v *float32, npx int)

//go:noescape
func hueAVX512(v *float32, npx int, s6 float32)

//go:build amd64 && !purego

package blas

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run gen_avx512.go

// The micro-kernels of kernels_avx512_amd64.s; kernR adds alpha·A[R×k]·B[k×32]
// into C. A is read at a + i·rs + p·ks bytes, B's row p at b + p·bks.
//
//go:noescape
func kern1x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern2x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern3x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern4x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern5x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern6x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern7x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern8x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern9x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern10x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern11x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

//go:noescape
func kern12x32(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32)

// kernels[r] is the r-row micro-kernel.
var kernels = [avxMR + 1]func(k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32){
	nil, kern1x32, kern2x32, kern3x32, kern4x32, kern5x32, kern6x32,
	kern7x32, kern8x32, kern9x32, kern10x32, kern11x32, kern12x32,
}

// avx512Supported reports whether the CPU and the OS support AVX-512F.
func avx512Supported() bool { return cpu.X86.HasAVX512F }

// microKernel runs the rows-row kernel.
func microKernel(rows, k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32) {
	kernels[rows](k, a, rs, ks, b, bks, c, ldc, alpha)
}

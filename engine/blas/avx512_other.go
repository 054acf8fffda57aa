//go:build !amd64 || purego

package blas

import "unsafe"

// avx512Supported is false where the assembly kernels are not built.
func avx512Supported() bool { return false }

// microKernel is never called where avx512Supported is false.
func microKernel(rows, k int, a unsafe.Pointer, rs, ks int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc int, alpha float32) {
	panic("blas: AVX-512 kernels are not built for this platform")
}

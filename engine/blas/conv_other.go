//go:build !amd64 || purego

package blas

// convTileAsm is never called where avx512Supported is false.
func convTileAsm(rows, nb int, a []float32, rs, n1, s1, n2, s2, n3, s3 int, b []float32, bks int, c []float32, ldc int, acc bool) {
	panic("blas: AVX-512 kernels are not built for this platform")
}

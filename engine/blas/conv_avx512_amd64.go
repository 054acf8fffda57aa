//go:build amd64 && !purego

package blas

import "unsafe"

// The tile kernels of conv_avx512_amd64.s (written by gen_avx512.go). All
// strides are in bytes.

//go:noescape
func convK1x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK2x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK3x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK4x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK5x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK6x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK7x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK8x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK9x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK10x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK11x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK12x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK13x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK14x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK15x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK16x16(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK1x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK2x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK3x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK4x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK5x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK6x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK7x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK8x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK9x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK10x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK11x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK12x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK13x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

//go:noescape
func convK14x32(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

type convKernFn = func(a unsafe.Pointer, rs, n1, s1, n2, d2, n3, d3 int, b unsafe.Pointer, bks int, c unsafe.Pointer, ldc, acc int)

// convKernels[nb−1][r] is the r-row kernel with nb vectors of 16 columns.
var convKernels = [2][ConvMaxRows + 1]convKernFn{
	{nil, convK1x16, convK2x16, convK3x16, convK4x16, convK5x16, convK6x16, convK7x16, convK8x16, convK9x16, convK10x16, convK11x16, convK12x16, convK13x16, convK14x16, convK15x16, convK16x16},
	{nil, convK1x32, convK2x32, convK3x32, convK4x32, convK5x32, convK6x32, convK7x32, convK8x32, convK9x32, convK10x32, convK11x32, convK12x32, convK13x32, convK14x32},
}

// convTileAsm runs the assembly kernel; the arguments are checked by ConvTile.
func convTileAsm(rows, nb int, a []float32, rs, n1, s1, n2, s2, n3, s3 int, b []float32, bks int, c []float32, ldc int, acc bool) {
	const f = 4 // bytes per float32
	ac := 0
	if acc {
		ac = 1
	}
	convKernels[nb-1][rows](unsafe.Pointer(&a[0]), rs*f, n1, s1*f, n2, (s2-n1*s1)*f, n3, (s3-n2*s2)*f,
		unsafe.Pointer(&b[0]), bks*f, unsafe.Pointer(&c[0]), ldc*f, ac)
}

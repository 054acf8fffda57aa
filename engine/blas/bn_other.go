//go:build !amd64 || purego

package blas

func bnAsm(c int) bool { return false }

func bnSumsAsm(x *float32, rows, c int, s, ss *float64) { panic("blas: no AVX-512 kernels") }

func bnAffineAsm(x, out, res *float32, rows, c int, sc, sh *float32, flags int) {
	panic("blas: no AVX-512 kernels")
}

func bnBackSumsAsm(x, dy, mask *float32, rows, c int, mean, inv *float32, s1, s2 *float64, hasMask int) {
	panic("blas: no AVX-512 kernels")
}

func bnBackDXAsm(x, dy, mask, dx *float32, rows, c int, mean, inv, k1, k2, k3 *float32, hasMask int) {
	panic("blas: no AVX-512 kernels")
}

func sqDistAsm(zi, zt *float32, n, d int, out *float64) { panic("blas: no AVX-512 kernels") }

func diffAxpyAsm(zr, z *float32, n, d int, coef, acc *float64) { panic("blas: no AVX-512 kernels") }

//go:build amd64 && !purego

package blas

//go:noescape
func bnSumsAsm(x *float32, rows, c int, s, ss *float64)

//go:noescape
func bnAffineAsm(x, out, res *float32, rows, c int, sc, sh *float32, flags int)

//go:noescape
func bnBackSumsAsm(x, dy, mask *float32, rows, c int, mean, inv *float32, s1, s2 *float64, hasMask int)

//go:noescape
func bnBackDXAsm(x, dy, mask, dx *float32, rows, c int, mean, inv, k1, k2, k3 *float32, hasMask int)

// bnAsm reports whether the assembly BatchNorm kernels run for c channels.
func bnAsm(c int) bool { return avx512Supported() && c%16 == 0 && c > 0 }

//go:noescape
func sqDistAsm(zi, zt *float32, n, d int, out *float64)

//go:noescape
func diffAxpyAsm(zr, z *float32, n, d int, coef, acc *float64)

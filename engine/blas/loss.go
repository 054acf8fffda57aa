package blas

// The inner loops of the Cauchy InfoNCE loss, in AVX-512 assembly. Like the
// BatchNorm kernels they return false, doing nothing, where the assembly
// cannot run, and the caller then runs its Go loop (same results).

// SqDist64 writes out[k] = Σ_t float64(zi[t] − zt[t·n+k])² for k < n, the
// sum taken over t in order, where zt is the d×n transpose of the n views
// and d = len(zi). It needs n to be a multiple of 16.
func SqDist64(zi, zt []float32, n int, out []float64) bool {
	d := len(zi)
	if !avx512Supported() || n%16 != 0 || n == 0 || d == 0 {
		return false
	}
	_, _ = zt[d*n-1], out[n-1]
	sqDistAsm(&zi[0], &zt[0], n, d, &out[0])
	return true
}

// DiffAxpy64 adds coef[k]·float64(zr[t] − z[k·d+t]) to g[t] for each k < n
// in order, skipping the k whose coefficient is zero, where d = len(zr). It
// needs d to be a multiple of 16.
func DiffAxpy64(zr, z []float32, n int, coef, g []float64) bool {
	d := len(zr)
	if !avx512Supported() || d%16 != 0 || d == 0 || n == 0 {
		return false
	}
	_, _, _ = z[n*d-1], coef[n-1], g[d-1]
	diffAxpyAsm(&zr[0], &z[0], n, d, &coef[0], &g[0])
	return true
}

package blas

// The BatchNorm row kernels: the CPU backend's BatchNorm loops over rows of
// c channels, in AVX-512 assembly. Each takes whole rows (len(x) = rows·c)
// and returns false, doing nothing, where the assembly cannot run (no
// AVX-512, or c not a multiple of 16): the caller then runs its Go loop,
// which computes the same values. Operands too short panic.

// BNSums adds, per channel j, x[r][j] to s[j] and x[r][j]² to ss[j] in
// float64, over the rows of x.
func BNSums(x []float32, c int, s, ss []float64) bool {
	if !bnAsm(c) {
		return false
	}
	rows := len(x) / c
	if rows == 0 {
		return true
	}
	_, _ = s[c-1], ss[c-1]
	bnSumsAsm(&x[0], rows, c, &s[0], &ss[0])
	return true
}

// BNAffine writes out = x·sc + sh (+ res when res is not empty), then
// max(·, 0) when relu, row by row. out may alias res.
func BNAffine(x, out, res []float32, c int, sc, sh []float32, relu bool) bool {
	if !bnAsm(c) {
		return false
	}
	rows := len(x) / c
	if rows == 0 {
		return true
	}
	_, _, _ = out[rows*c-1], sc[c-1], sh[c-1]
	flags := 0
	if len(res) > 0 {
		_ = res[rows*c-1]
		flags |= 1
	}
	if relu {
		flags |= 2
	}
	bnAffineAsm(&x[0], &out[0], first(res), rows, c, &sc[0], &sh[0], flags)
	return true
}

// BNBackSums adds, per channel j, d to s1[j] and d·(x−mean)·inv to s2[j]
// (the product in float32, the sums in float64), where d is dy, or 0 where
// mask (when not empty) is not positive.
func BNBackSums(x, dy, mask []float32, c int, mean, inv []float32, s1, s2 []float64) bool {
	if !bnAsm(c) {
		return false
	}
	rows := len(x) / c
	if rows == 0 {
		return true
	}
	_, _, _, _, _ = dy[rows*c-1], mean[c-1], inv[c-1], s1[c-1], s2[c-1]
	has := 0
	if len(mask) > 0 {
		_ = mask[rows*c-1]
		has = 1
	}
	bnBackSumsAsm(&x[0], &dy[0], first(mask), rows, c, &mean[0], &inv[0], &s1[0], &s2[0], has)
	return true
}

// BNBackDX writes dx = k1·((d − k2) − (x−mean)·inv·k3) with d as in
// BNBackSums.
func BNBackDX(x, dy, mask, dx []float32, c int, mean, inv, k1, k2, k3 []float32) bool {
	if !bnAsm(c) {
		return false
	}
	rows := len(x) / c
	if rows == 0 {
		return true
	}
	_, _, _, _, _, _, _ = dy[rows*c-1], dx[rows*c-1], mean[c-1], inv[c-1], k1[c-1], k2[c-1], k3[c-1]
	has := 0
	if len(mask) > 0 {
		_ = mask[rows*c-1]
		has = 1
	}
	bnBackDXAsm(&x[0], &dy[0], first(mask), &dx[0], rows, c, &mean[0], &inv[0], &k1[0], &k2[0], &k3[0], has)
	return true
}

// first returns &s[0], or nil for an absent (empty) operand, which the
// kernels never read.
func first(s []float32) *float32 {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

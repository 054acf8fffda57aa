package blas

import "fmt"

// ConvMaxRows is the most rows a ConvTile call takes with 16 columns; with
// 32 columns the limit is ConvMaxRows32. They are what fits the 32 vector
// registers of AVX-512 as accumulators.
const (
	ConvMaxRows   = 16
	ConvMaxRows32 = 14
)

// ConvTileAvailable reports whether ConvTile runs on the AVX-512 assembly
// kernels. Where it does not, ConvTile still works (in pure Go) but is no
// faster than im2col and a GEMM, so callers should keep that path.
func ConvTileAvailable() bool { return avx512Supported() }

// ConvTile computes one tile of a direct convolution (or of its gradients):
// a rows×(16·nb) block
//
//	C[i][j] (+)= Σ_{p3<n3, p2<n2, p1<n1} A[i·rs + p3·s3 + p2·s2 + p1·s1] · B[(p3·n2·n1 + p2·n1 + p1)·bks + j]
//
// written to c[i·ldc + j], or added to it when acc. A is read in place, so
// the input image (zero-padded by the caller) serves as the im2col matrix
// without being copied; B is read one row of 16·nb floats per k step.
// nb is 1 or 2; rows is 1…ConvMaxRows (nb = 1) or 1…ConvMaxRows32 (nb = 2);
// n1, n2, n3 ≥ 1; strides are in elements and non-negative. Operands out of
// range panic: they are programming errors of the caller.
func ConvTile(rows, nb int, a []float32, rs, n1, s1, n2, s2, n3, s3 int, b []float32, bks int, c []float32, ldc int, acc bool) {
	maxRows := ConvMaxRows
	if nb == 2 {
		maxRows = ConvMaxRows32
	}
	w := 16 * nb
	switch {
	case nb != 1 && nb != 2, rows < 1 || rows > maxRows, n1 < 1 || n2 < 1 || n3 < 1,
		rs < 0 || s1 < 0 || s2 < 0 || s3 < 0 || bks < 0 || ldc < 0:
		panic(fmt.Sprintf("blas: ConvTile: bad shape rows=%d nb=%d n=%d,%d,%d strides=%d,%d,%d,%d,%d,%d",
			rows, nb, n1, n2, n3, rs, s1, s2, s3, bks, ldc))
	case (rows-1)*rs+(n1-1)*s1+(n2-1)*s2+(n3-1)*s3 >= len(a),
		(n1*n2*n3-1)*bks+w > len(b), (rows-1)*ldc+w > len(c):
		panic(fmt.Sprintf("blas: ConvTile: operand out of range (len a=%d b=%d c=%d)", len(a), len(b), len(c)))
	}
	if avx512Supported() {
		convTileAsm(rows, nb, a, rs, n1, s1, n2, s2, n3, s3, b, bks, c, ldc, acc)
		return
	}
	convTileGo(rows, nb, a, rs, n1, s1, n2, s2, n3, s3, b, bks, c, ldc, acc)
}

// convTileGo is ConvTile in pure Go, summing in the assembly's order.
func convTileGo(rows, nb int, a []float32, rs, n1, s1, n2, s2, n3, s3 int, b []float32, bks int, c []float32, ldc int, acc bool) {
	w := 16 * nb
	var sum [32]float32
	for i := 0; i < rows; i++ {
		clear(sum[:])
		s := sum[:w]
		k := 0
		for p3 := 0; p3 < n3; p3++ {
			for p2 := 0; p2 < n2; p2++ {
				off := i*rs + p3*s3 + p2*s2
				for p1 := 0; p1 < n1; p1++ {
					av := a[off+p1*s1]
					br := b[k*bks:][:w]
					for j, bv := range br {
						s[j] += av * bv
					}
					k++
				}
			}
		}
		dst := c[i*ldc:][:w]
		if acc {
			for j, v := range s {
				dst[j] += v
			}
		} else {
			copy(dst, s)
		}
	}
}

//go:build amd64 && !purego

#include "textflag.h"

// The colour operations of color.go on whole blocks of 16 interleaved RGB
// pixels (three vectors), AVX-512F. Each gives the bits of its Go form: the
// same operation order, products rounded before they are added (no FMA),
// the Go branches as masked selects. The index tables (permTables) and the
// constants (colorK) are the Go package's variables, read in place.

// R8 = &permTables, R9 = &colorK; Z20…Z25: deinterleave indices;
// Z26…Z31: interleave indices.
#define LOADTABLES \
	LEAQ ·permTables(SB), R8; LEAQ ·colorK(SB), R9; \
	VMOVUPS 0(R8), Z20; VMOVUPS 64(R8), Z21; VMOVUPS 128(R8), Z22; VMOVUPS 192(R8), Z23; \
	VMOVUPS 256(R8), Z24; VMOVUPS 320(R8), Z25; VMOVUPS 384(R8), Z26; VMOVUPS 448(R8), Z27; \
	VMOVUPS 512(R8), Z28; VMOVUPS 576(R8), Z29; VMOVUPS 640(R8), Z30; VMOVUPS 704(R8), Z31

// Z0, Z1, Z2 (48 interleaved floats) → Z3 = R, Z4 = G, Z5 = B; Z6 scratch.
#define DEINTERLEAVE \
	VMOVAPS Z20, Z6; VPERMI2PS Z1, Z0, Z6; VMOVAPS Z21, Z3; VPERMI2PS Z2, Z6, Z3; \
	VMOVAPS Z22, Z6; VPERMI2PS Z1, Z0, Z6; VMOVAPS Z23, Z4; VPERMI2PS Z2, Z6, Z4; \
	VMOVAPS Z24, Z6; VPERMI2PS Z1, Z0, Z6; VMOVAPS Z25, Z5; VPERMI2PS Z2, Z6, Z5

// Z3 = R, Z4 = G, Z5 = B → Z0, Z1, Z2 interleaved; Z6 scratch.
#define INTERLEAVE \
	VMOVAPS Z26, Z6; VPERMI2PS Z4, Z3, Z6; VMOVAPS Z27, Z0; VPERMI2PS Z5, Z6, Z0; \
	VMOVAPS Z28, Z6; VPERMI2PS Z4, Z3, Z6; VMOVAPS Z29, Z1; VPERMI2PS Z5, Z6, Z1; \
	VMOVAPS Z30, Z6; VPERMI2PS Z4, Z3, Z6; VMOVAPS Z31, Z2; VPERMI2PS Z5, Z6, Z2

// The 16 pixels at DI → Z3 = R, Z4 = G, Z5 = B (Z0 … Z2, Z6 scratch).
#define LOADRGB \
	VMOVUPS (DI), Z0; VMOVUPS 64(DI), Z1; VMOVUPS 128(DI), Z2; DEINTERLEAVE

// Z3 = R, Z4 = G, Z5 = B → the 16 pixels at DI (Z0 … Z2, Z6 scratch).
#define STORERGB \
	INTERLEAVE; VMOVUPS Z0, (DI); VMOVUPS Z1, 64(DI); VMOVUPS Z2, 128(DI)

// Z7 = gray(Z3, Z4, Z5) = (lumaR·R + lumaG·G) + lumaB·B; Z8 scratch. K: colorK.
#define GRAY(K) \
	VMULPS 448(K), Z3, Z7; VMULPS 512(K), Z4, Z8; VADDPS Z8, Z7, Z7; \
	VMULPS 576(K), Z5, Z8; VADDPS Z8, Z7, Z7

// func affineClampAVX512(v *float32, n int, a, b float32)
// v[i] = clamp01(a·v[i] + b) for i < n, a multiple of 16.
TEXT ·affineClampAVX512(SB), NOSPLIT, $0-24
	MOVQ v+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS a+16(FP), Z16
	VBROADCASTSS b+20(FP), Z17
	VXORPS Z18, Z18, Z18
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z19
affine64:
	CMPQ CX, $64
	JLT  affine16
	VMULPS (DI), Z16, Z0
	VMULPS 64(DI), Z16, Z1
	VMULPS 128(DI), Z16, Z2
	VMULPS 192(DI), Z16, Z3
	VADDPS Z17, Z0, Z0
	VADDPS Z17, Z1, Z1
	VADDPS Z17, Z2, Z2
	VADDPS Z17, Z3, Z3
	VMAXPS Z18, Z0, Z0
	VMAXPS Z18, Z1, Z1
	VMAXPS Z18, Z2, Z2
	VMAXPS Z18, Z3, Z3
	VMINPS Z19, Z0, Z0
	VMINPS Z19, Z1, Z1
	VMINPS Z19, Z2, Z2
	VMINPS Z19, Z3, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  affine64
affine16:
	CMPQ CX, $16
	JLT  affinedone
	VMULPS (DI), Z16, Z0
	VADDPS Z17, Z0, Z0
	VMAXPS Z18, Z0, Z0
	VMINPS Z19, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  affine16
affinedone:
	VZEROUPPER
	RET

// func graySumAVX512(v *float32, npx int, part *[16]float32)
// part[l] += gray of pixels l, l+16, … in order, for npx pixels (a multiple of 16).
TEXT ·graySumAVX512(SB), NOSPLIT, $0-24
	MOVQ v+0(FP), DI
	MOVQ npx+8(FP), CX
	MOVQ part+16(FP), DX
	LOADTABLES
	VMOVUPS (DX), Z9
graysum:
	LOADRGB
	GRAY(R9)
	VADDPS Z7, Z9, Z9
	ADDQ $192, DI
	SUBQ $16, CX
	JNZ  graysum
	VMOVUPS Z9, (DX)
	VZEROUPPER
	RET

// func saturationAVX512(v *float32, npx int, a, b float32)
// Each channel x of each pixel → clamp01(a·x + b·gray), npx a multiple of 16.
TEXT ·saturationAVX512(SB), NOSPLIT, $0-24
	MOVQ v+0(FP), DI
	MOVQ npx+8(FP), CX
	VBROADCASTSS a+16(FP), Z16
	VBROADCASTSS b+20(FP), Z17
	LOADTABLES
	VXORPS Z18, Z18, Z18
	VMOVUPS 64(R9), Z19
saturation:
	LOADRGB
	GRAY(R9)
	VMULPS Z17, Z7, Z7
	VMULPS Z16, Z3, Z3
	VMULPS Z16, Z4, Z4
	VMULPS Z16, Z5, Z5
	VADDPS Z7, Z3, Z3
	VADDPS Z7, Z4, Z4
	VADDPS Z7, Z5, Z5
	VMAXPS Z18, Z3, Z3
	VMAXPS Z18, Z4, Z4
	VMAXPS Z18, Z5, Z5
	VMINPS Z19, Z3, Z3
	VMINPS Z19, Z4, Z4
	VMINPS Z19, Z5, Z5
	STORERGB
	ADDQ $192, DI
	SUBQ $16, CX
	JNZ  saturation
	VZEROUPPER
	RET

// func grayAVX512(v *float32, npx int)
// Every pixel → its gray level in all three channels, npx a multiple of 16.
TEXT ·grayAVX512(SB), NOSPLIT, $0-16
	MOVQ v+0(FP), DI
	MOVQ npx+8(FP), CX
	LOADTABLES
	VMOVUPS 768(R8), Z26
	VMOVUPS 832(R8), Z27
	VMOVUPS 896(R8), Z28
gray:
	LOADRGB
	GRAY(R9)
	VPERMPS Z7, Z26, Z0
	VPERMPS Z7, Z27, Z1
	VPERMPS Z7, Z28, Z2
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	ADDQ $192, DI
	SUBQ $16, CX
	JNZ  gray
	VZEROUPPER
	RET

// func hueAVX512(v *float32, npx int, s6 float32)
// hueGo on npx pixels (a multiple of 16). colorK rows: 0 … 6 the numbers
// 0 … 6 (byte offset 64·k).
TEXT ·hueAVX512(SB), NOSPLIT, $0-20
	MOVQ v+0(FP), DI
	MOVQ npx+8(FP), CX
	VBROADCASTSS s6+16(FP), Z15
	LOADTABLES
	VXORPS Z16, Z16, Z16
	VMOVUPS 384(R9), Z17 // 6
hue:
	LOADRGB
	VMAXPS Z4, Z3, Z7
	VMAXPS Z5, Z7, Z7     // maxc
	VMINPS Z4, Z3, Z8
	VMINPS Z5, Z8, Z8     // minc
	VSUBPS Z8, Z7, Z9     // c = maxc − minc
	VCMPPS $4, Z16, Z9, K1 // c ≠ 0: the pixels that change
	VSUBPS Z4, Z3, Z10    // default (max is B): num = r − g, off = 4
	VMOVUPS 256(R9), Z11
	VCMPPS $0, Z4, Z7, K2 // max is G: num = b − r, off = 2
	VSUBPS Z3, Z5, K2, Z10
	VMOVUPS 128(R9), K2, Z11
	VCMPPS $0, Z3, Z7, K3 // max is R (first): num = g − b, off = 0
	VSUBPS Z5, Z4, K3, Z10
	VMOVAPS Z16, K3, Z11
	VDIVPS Z9, Z10, Z10
	VADDPS Z10, Z11, Z10  // h6 = off + num/c
	VADDPS Z15, Z10, Z10  // + s6
	VCMPPS $1, Z16, Z10, K4  // h6 < 0
	VCMPPS $13, Z17, Z10, K5 // h6 ≥ 6
	VADDPS Z17, Z10, K4, Z10
	VSUBPS Z17, Z10, K5, Z10
	VCVTTPS2DQ Z10, Z12
	VCVTDQ2PS Z12, Z12
	VSUBPS Z12, Z10, Z12  // f = h6 − sector
	VMULPS Z12, Z9, Z12   // cf = c·f
	VSUBPS Z12, Z7, Z13   // q = maxc − cf
	VADDPS Z12, Z8, Z14   // t = minc + cf
	VCMPPS $1, 64(R9), Z10, K2  // sector < 1
	VCMPPS $1, 128(R9), Z10, K3 // < 2
	VCMPPS $1, 192(R9), Z10, K4 // < 3
	VCMPPS $1, 256(R9), Z10, K5 // < 4
	VCMPPS $1, 320(R9), Z10, K6 // < 5
	// R: sector 5+ maxc, 4 t, 3 and 2 minc, 1 q, 0 maxc
	VMOVAPS Z7, Z0
	VMOVAPS Z14, K6, Z0
	VMOVAPS Z8, K5, Z0
	VMOVAPS Z13, K3, Z0
	VMOVAPS Z7, K2, Z0
	// G: 5+ and 4 minc, 3 q, 2 and 1 maxc, 0 t
	VMOVAPS Z8, Z1
	VMOVAPS Z13, K5, Z1
	VMOVAPS Z7, K4, Z1
	VMOVAPS Z14, K2, Z1
	// B: 5+ q, 4 and 3 maxc, 2 t, 1 and 0 minc
	VMOVAPS Z13, Z2
	VMOVAPS Z7, K6, Z2
	VMOVAPS Z14, K4, Z2
	VMOVAPS Z8, K3, Z2
	VMOVAPS Z0, K1, Z3
	VMOVAPS Z1, K1, Z4
	VMOVAPS Z2, K1, Z5
	STORERGB
	ADDQ $192, DI
	SUBQ $16, CX
	JNZ  hue
	VZEROUPPER
	RET

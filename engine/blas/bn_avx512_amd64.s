//go:build amd64 && !purego

#include "textflag.h"

// The BatchNorm row kernels behind bn.go: the engine's Go loops, sixteen
// channels at a time, with the same operations in the same order (products
// and sums are not fused), so they give the same bits. c is a multiple of
// 16 and rows ≥ 1.

// func bnSumsAsm(x *float32, rows, c int, s, ss *float64)
TEXT ·bnSumsAsm(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ c+16(FP), DX
	MOVQ s+24(FP), R8
	MOVQ ss+32(FP), R9
sumsRow:
	XORQ AX, AX
sumsBlk:
	VCVTPS2PD (SI)(AX*4), Z0
	VCVTPS2PD 32(SI)(AX*4), Z1
	VADDPD (R8)(AX*8), Z0, Z2
	VMOVUPD Z2, (R8)(AX*8)
	VADDPD 64(R8)(AX*8), Z1, Z3
	VMOVUPD Z3, 64(R8)(AX*8)
	VMULPD Z0, Z0, Z0
	VMULPD Z1, Z1, Z1
	VADDPD (R9)(AX*8), Z0, Z0
	VMOVUPD Z0, (R9)(AX*8)
	VADDPD 64(R9)(AX*8), Z1, Z1
	VMOVUPD Z1, 64(R9)(AX*8)
	ADDQ $16, AX
	CMPQ AX, DX
	JLT sumsBlk
	LEAQ (SI)(DX*4), SI
	DECQ CX
	JNZ sumsRow
	VZEROUPPER
	RET

// func bnAffineAsm(x, out, res *float32, rows, c int, sc, sh *float32, flags int)
// flags: 1 adds res, 2 applies the ReLU.
TEXT ·bnAffineAsm(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ out+8(FP), DI
	MOVQ res+16(FP), R13
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ sc+40(FP), R10
	MOVQ sh+48(FP), R11
	MOVQ flags+56(FP), R12
	VPXORD Z31, Z31, Z31
affRow:
	XORQ AX, AX
affBlk:
	VMOVUPS (SI)(AX*4), Z0
	VMULPS (R10)(AX*4), Z0, Z0
	VADDPS (R11)(AX*4), Z0, Z0
	TESTQ $1, R12
	JZ affNoRes
	VADDPS (R13)(AX*4), Z0, Z0
affNoRes:
	TESTQ $2, R12
	JZ affStore
	VMAXPS Z0, Z31, Z0
affStore:
	VMOVUPS Z0, (DI)(AX*4)
	ADDQ $16, AX
	CMPQ AX, DX
	JLT affBlk
	LEAQ (SI)(DX*4), SI
	LEAQ (DI)(DX*4), DI
	LEAQ (R13)(DX*4), R13
	DECQ CX
	JNZ affRow
	VZEROUPPER
	RET

// func bnBackSumsAsm(x, dy, mask *float32, rows, c int, mean, inv *float32, s1, s2 *float64, hasMask int)
TEXT ·bnBackSumsAsm(SB), NOSPLIT, $0-80
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DI
	MOVQ mask+16(FP), R8
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ mean+40(FP), R10
	MOVQ inv+48(FP), R11
	MOVQ s1+56(FP), R12
	MOVQ s2+64(FP), R13
	MOVQ hasMask+72(FP), BX
	VPXORD Z31, Z31, Z31
bsRow:
	XORQ AX, AX
bsBlk:
	VMOVUPS (DI)(AX*4), Z0
	TESTQ BX, BX
	JZ bsNoMask
	VMOVUPS (R8)(AX*4), Z1
	VCMPPS $0x1e, Z31, Z1, K1
	VPXORD Z2, Z2, Z2
	VMOVUPS Z0, K1, Z2
	VMOVAPS Z2, Z0
bsNoMask:
	VCVTPS2PD Y0, Z2
	VEXTRACTF32X8 $1, Z0, Y3
	VCVTPS2PD Y3, Z3
	VADDPD (R12)(AX*8), Z2, Z2
	VMOVUPD Z2, (R12)(AX*8)
	VADDPD 64(R12)(AX*8), Z3, Z3
	VMOVUPD Z3, 64(R12)(AX*8)
	VMOVUPS (SI)(AX*4), Z4
	VSUBPS (R10)(AX*4), Z4, Z4
	VMULPS (R11)(AX*4), Z4, Z4
	VMULPS Z4, Z0, Z4
	VCVTPS2PD Y4, Z2
	VEXTRACTF32X8 $1, Z4, Y3
	VCVTPS2PD Y3, Z3
	VADDPD (R13)(AX*8), Z2, Z2
	VMOVUPD Z2, (R13)(AX*8)
	VADDPD 64(R13)(AX*8), Z3, Z3
	VMOVUPD Z3, 64(R13)(AX*8)
	ADDQ $16, AX
	CMPQ AX, DX
	JLT bsBlk
	LEAQ (SI)(DX*4), SI
	LEAQ (DI)(DX*4), DI
	LEAQ (R8)(DX*4), R8
	DECQ CX
	JNZ bsRow
	VZEROUPPER
	RET

// func bnBackDXAsm(x, dy, mask, dx *float32, rows, c int, mean, inv, k1, k2, k3 *float32, hasMask int)
TEXT ·bnBackDXAsm(SB), NOSPLIT, $0-96
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DI
	MOVQ mask+16(FP), R8
	MOVQ dx+24(FP), R9
	MOVQ rows+32(FP), CX
	MOVQ c+40(FP), DX
	MOVQ mean+48(FP), R10
	MOVQ inv+56(FP), R11
	MOVQ k1+64(FP), R12
	MOVQ k2+72(FP), R13
	MOVQ k3+80(FP), R14
	MOVQ hasMask+88(FP), BX
	VPXORD Z31, Z31, Z31
bdRow:
	XORQ AX, AX
bdBlk:
	VMOVUPS (DI)(AX*4), Z0
	TESTQ BX, BX
	JZ bdNoMask
	VMOVUPS (R8)(AX*4), Z1
	VCMPPS $0x1e, Z31, Z1, K1
	VPXORD Z2, Z2, Z2
	VMOVUPS Z0, K1, Z2
	VMOVAPS Z2, Z0
bdNoMask:
	VSUBPS (R13)(AX*4), Z0, Z0
	VMOVUPS (SI)(AX*4), Z4
	VSUBPS (R10)(AX*4), Z4, Z4
	VMULPS (R11)(AX*4), Z4, Z4
	VMULPS (R14)(AX*4), Z4, Z4
	VSUBPS Z4, Z0, Z0
	VMULPS (R12)(AX*4), Z0, Z0
	VMOVUPS Z0, (R9)(AX*4)
	ADDQ $16, AX
	CMPQ AX, DX
	JLT bdBlk
	LEAQ (SI)(DX*4), SI
	LEAQ (DI)(DX*4), DI
	LEAQ (R8)(DX*4), R8
	LEAQ (R9)(DX*4), R9
	DECQ CX
	JNZ bdRow
	VZEROUPPER
	RET

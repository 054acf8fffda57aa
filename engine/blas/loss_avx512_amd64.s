//go:build amd64 && !purego

#include "textflag.h"

// The Cauchy loss loops behind loss.go. Each vector lane follows one scalar
// sum of the engine's Go loops, in the same order and with the same
// (unfused) operations, so the results are bit-identical.

// func sqDistAsm(zi, zt *float32, n, d int, out *float64)
TEXT ·sqDistAsm(SB), NOSPLIT, $0-40
	MOVQ zi+0(FP), SI
	MOVQ zt+8(FP), DI
	MOVQ n+16(FP), DX
	MOVQ d+24(FP), R8
	MOVQ out+32(FP), R9
	XORQ AX, AX
sdBlk:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	LEAQ (DI)(AX*4), R10
	XORQ CX, CX
sdT:
	VBROADCASTSS (SI)(CX*4), Z2
	VSUBPS (R10), Z2, Z2
	VCVTPS2PD Y2, Z3
	VEXTRACTF32X8 $1, Z2, Y4
	VCVTPS2PD Y4, Z4
	VMULPD Z3, Z3, Z3
	VMULPD Z4, Z4, Z4
	VADDPD Z3, Z0, Z0
	VADDPD Z4, Z1, Z1
	LEAQ (R10)(DX*4), R10
	INCQ CX
	CMPQ CX, R8
	JLT sdT
	VMOVUPD Z0, (R9)(AX*8)
	VMOVUPD Z1, 64(R9)(AX*8)
	ADDQ $16, AX
	CMPQ AX, DX
	JLT sdBlk
	VZEROUPPER
	RET

// func diffAxpyAsm(zr, z *float32, n, d int, coef, acc *float64)
TEXT ·diffAxpyAsm(SB), NOSPLIT, $0-48
	MOVQ zr+0(FP), SI
	MOVQ z+8(FP), DI
	MOVQ n+16(FP), DX
	MOVQ d+24(FP), R8
	MOVQ coef+32(FP), R9
	MOVQ acc+40(FP), R10
	XORQ AX, AX
daK:
	MOVQ (R9)(AX*8), BX
	SHLQ $1, BX
	JZ daSkip
	VBROADCASTSD (R9)(AX*8), Z5
	XORQ CX, CX
daT:
	VMOVUPS (SI)(CX*4), Z2
	VSUBPS (DI)(CX*4), Z2, Z2
	VCVTPS2PD Y2, Z3
	VEXTRACTF32X8 $1, Z2, Y4
	VCVTPS2PD Y4, Z4
	VMULPD Z5, Z3, Z3
	VMULPD Z5, Z4, Z4
	VADDPD (R10)(CX*8), Z3, Z3
	VMOVUPD Z3, (R10)(CX*8)
	VADDPD 64(R10)(CX*8), Z4, Z4
	VMOVUPD Z4, 64(R10)(CX*8)
	ADDQ $16, CX
	CMPQ CX, R8
	JLT daT
daSkip:
	LEAQ (DI)(R8*4), DI
	INCQ AX
	CMPQ AX, DX
	JLT daK
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// The resize kernels of resample.go (vpass, hpass), which has the Go
// versions. Products are rounded before they are added (VMULPS, VADDPS; no
// FMA) and terms are added in tap order, so both versions give the same bits.

// func vpassAVX512(dst *float32, src *uint8, stride, n int, w *float32, taps int)
//
// dst[i] = Σₖ w[k]·src[k·stride+i] for i < n (a multiple of 16): 64 bytes
// (four accumulators) at a time, then 16.
TEXT ·vpassAVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ stride+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ w+32(FP), DX
	MOVQ taps+40(FP), R8

block64:
	CMPQ CX, $64
	JLT  block16
	VBROADCASTSS (DX), Z16
	VPMOVZXBD (SI), Z0
	VPMOVZXBD 16(SI), Z1
	VPMOVZXBD 32(SI), Z2
	VPMOVZXBD 48(SI), Z3
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VCVTDQ2PS Z3, Z3
	VMULPS Z16, Z0, Z0
	VMULPS Z16, Z1, Z1
	VMULPS Z16, Z2, Z2
	VMULPS Z16, Z3, Z3
	MOVQ SI, R9
	MOVQ DX, R10
	MOVQ R8, R11
	DECQ R11
	JZ   store64

tap64:
	ADDQ BX, R9
	ADDQ $4, R10
	VBROADCASTSS (R10), Z16
	VPMOVZXBD (R9), Z4
	VPMOVZXBD 16(R9), Z5
	VPMOVZXBD 32(R9), Z6
	VPMOVZXBD 48(R9), Z7
	VCVTDQ2PS Z4, Z4
	VCVTDQ2PS Z5, Z5
	VCVTDQ2PS Z6, Z6
	VCVTDQ2PS Z7, Z7
	VMULPS Z16, Z4, Z4
	VMULPS Z16, Z5, Z5
	VMULPS Z16, Z6, Z6
	VMULPS Z16, Z7, Z7
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	DECQ R11
	JNZ  tap64

store64:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $64, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  block64

block16:
	CMPQ CX, $16
	JLT  done
	VBROADCASTSS (DX), Z16
	VPMOVZXBD (SI), Z0
	VCVTDQ2PS Z0, Z0
	VMULPS Z16, Z0, Z0
	MOVQ SI, R9
	MOVQ DX, R10
	MOVQ R8, R11
	DECQ R11
	JZ   store16

tap16:
	ADDQ BX, R9
	ADDQ $4, R10
	VBROADCASTSS (R10), Z16
	VPMOVZXBD (R9), Z4
	VCVTDQ2PS Z4, Z4
	VMULPS Z16, Z4, Z4
	VADDPS Z4, Z0, Z0
	DECQ R11
	JNZ  tap16

store16:
	VMOVUPS Z0, (DI)
	ADDQ $16, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  block16

done:
	VZEROUPPER
	RET

// func hpass4AVX(dst *float32, dstStride int, src *float32, srcStride int, xs *int32, w *float32, nout, taps int)
//
// Four rows at once (four independent sums, one weight broadcast): output
// pixel x of each row is Σₖ w[x·taps+k]·row[xs[x]+k] for its 3 channels,
// computed on 4 lanes from 16-byte loads (the fourth lane is the next
// pixel's red and is dropped) and stored as 3 floats.
TEXT ·hpass4AVX(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R12
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), R13
	MOVQ xs+32(FP), R14
	MOVQ w+40(FP), DX
	MOVQ nout+48(FP), CX
	MOVQ taps+56(FP), R8
	LEAQ (R13)(R13*2), AX // 3·srcStride
	LEAQ (R12)(R12*2), BX // 3·dstStride

pixel:
	MOVLQSX (R14), R9
	LEAQ (R9)(R9*2), R9
	LEAQ (SI)(R9*4), R9 // row 0 at pixel xs[x]
	VBROADCASTSS (DX), X4
	VMULPS (R9), X4, X0
	VMULPS (R9)(R13*1), X4, X1
	VMULPS (R9)(R13*2), X4, X2
	VMULPS (R9)(AX*1), X4, X3
	ADDQ $4, DX
	MOVQ R8, R10
	DECQ R10
	JZ   store

tap:
	ADDQ $12, R9
	VBROADCASTSS (DX), X4
	VMULPS (R9), X4, X5
	VMULPS (R9)(R13*1), X4, X6
	VMULPS (R9)(R13*2), X4, X7
	VMULPS (R9)(AX*1), X4, X8
	VADDPS X5, X0, X0
	VADDPS X6, X1, X1
	VADDPS X7, X2, X2
	VADDPS X8, X3, X3
	ADDQ $4, DX
	DECQ R10
	JNZ  tap

store:
	VMOVSD X0, (DI)
	VEXTRACTPS $2, X0, 8(DI)
	VMOVSD X1, (DI)(R12*1)
	VEXTRACTPS $2, X1, 8(DI)(R12*1)
	VMOVSD X2, (DI)(R12*2)
	VEXTRACTPS $2, X2, 8(DI)(R12*2)
	VMOVSD X3, (DI)(BX*1)
	VEXTRACTPS $2, X3, 8(DI)(BX*1)
	ADDQ $12, DI
	ADDQ $4, R14
	DECQ CX
	JNZ  pixel
	RET

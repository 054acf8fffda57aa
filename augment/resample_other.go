//go:build !amd64 || purego

package augment

// useAVX512 is false where the assembly kernels are not built.
const useAVX512 = false

func vpassAVX512(dst *float32, src *uint8, stride, n int, w *float32, taps int) {
	panic("augment: AVX-512 kernels are not built for this platform")
}

func hpass4AVX(dst *float32, dstStride int, src *float32, srcStride int, xs *int32, w *float32, nout, taps int) {
	panic("augment: AVX-512 kernels are not built for this platform")
}

func affineClampAVX512(v *float32, n int, a, b float32) { panic("augment: no AVX-512 kernels") }

func graySumAVX512(v *float32, npx int, part *[16]float32) { panic("augment: no AVX-512 kernels") }

func saturationAVX512(v *float32, npx int, a, b float32) { panic("augment: no AVX-512 kernels") }

func grayAVX512(v *float32, npx int) { panic("augment: no AVX-512 kernels") }

func hueAVX512(v *float32, npx int, s6 float32) { panic("augment: no AVX-512 kernels") }

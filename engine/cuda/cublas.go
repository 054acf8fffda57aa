package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cublasLib holds the cuBLAS entry points used: handle management, the
// stream and math mode, and SGEMM.
type cublasLib struct {
	path                                                                     string
	create, destroy, setStream, setMathMode, sgemm, getVersion, statusString uintptr
}

// cuBLAS constants (cublas_api.h).
const (
	cublasOpN            = 0
	cublasOpT            = 1
	cublasDefaultMath    = 0 // plain FP32 for SGEMM
	cublasPedanticMath   = 2 // FP32 without any reduced-precision shortcut
	cublasTF32TensorMath = 3 // CUBLAS_TF32_TENSOR_OP_MATH
)

var (
	cublasOnce sync.Once
	cublas     *cublasLib
	cublasErr  error
)

func loadCublas() (*cublasLib, error) {
	cublasOnce.Do(func() {
		sonames := CublasSonames
		if d, err := loadDriver(); err == nil {
			var v int32
			if d.call("cuDriverGetVersion", d.cuDriverGetVersion, uintptr(unsafe.Pointer(&v))) == nil {
				sonames = cublasSonamesFor(int(v))
			}
		}
		h, path, err := openLibrary("cuBLAS (libcublas)", sonames, EnvCublasLib)
		if err != nil {
			cublasErr = fmt.Errorf("%w (pip install nvidia-cublas, or install the CUDA toolkit's libcublas)", err)
			return
		}
		l := &cublasLib{path: path}
		for _, s := range []struct {
			p        *uintptr
			name     string
			optional bool
		}{
			{&l.create, "cublasCreate_v2", false}, {&l.destroy, "cublasDestroy_v2", false},
			{&l.setStream, "cublasSetStream_v2", false}, {&l.setMathMode, "cublasSetMathMode", false},
			{&l.sgemm, "cublasSgemm_v2", false}, {&l.getVersion, "cublasGetVersion_v2", true},
			{&l.statusString, "cublasGetStatusString", true},
		} {
			p, err := purego.Dlsym(h, s.name)
			if err != nil {
				if s.optional {
					continue
				}
				cublasErr = fmt.Errorf("cuda: %s has no %s: %v", path, s.name, err)
				return
			}
			*s.p = p
		}
		cublas = l
	})
	return cublas, cublasErr
}

// cublasSonamesFor drops from CublasSonames the cuBLAS major versions the
// driver is too old for: cuBLAS N needs a driver of CUDA N or later
// (cuDriverGetVersion ≥ N·1000), so a machine with cuBLAS 13 installed
// next to 12 and a CUDA 12 driver uses cuBLAS 12 instead of failing at
// the first call.
func cublasSonamesFor(driverVersion int) []string {
	var out []string
	for _, so := range CublasSonames {
		var major int
		if _, err := fmt.Sscanf(so, "libcublas.so.%d", &major); err == nil && driverVersion < major*1000 {
			continue
		}
		out = append(out, so)
	}
	return out
}

// call runs a cuBLAS function and turns a non-zero cublasStatus_t into an *Error.
//
//go:uintptrescapes
func (l *cublasLib) call(name string, fn uintptr, args ...uintptr) error {
	r, _, _ := purego.SyscallN(fn, args...)
	// cublasStatus_t is a 32-bit enum: only the low half of the register
	// is defined.
	r = uintptr(uint32(r))
	if r == 0 {
		return nil
	}
	e := &Error{Call: name, Code: int(r), Name: fmt.Sprintf("CUBLAS_STATUS_%d", r)}
	if l.statusString != 0 {
		p, _, _ := purego.SyscallN(l.statusString, r)
		e.Name = goString(p)
	}
	return e
}

// gemmArgs keeps alpha and beta in heap memory whose address cuBLAS reads
// (host pointer mode) for the duration of the call.
type gemmArgs struct{ alpha, beta float32 }

// sgemmRowMajor computes C = alpha·op(A)·op(B) + beta·C for row-major
// matrices on the device. cuBLAS is column-major, so it computes the
// transpose: Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. it is called with A and B swapped and
// m and n swapped; the leading dimensions stay the same.
func (l *cublasLib) sgemmRowMajor(h uintptr, ga *gemmArgs, transA, transB bool, m, n, k int,
	alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	opA, opB := uintptr(cublasOpN), uintptr(cublasOpN)
	if transA {
		opA = cublasOpT
	}
	if transB {
		opB = cublasOpT
	}
	ga.alpha, ga.beta = alpha, beta
	return l.call("cublasSgemm", l.sgemm, h, opB, opA, uintptr(n), uintptr(m), uintptr(k),
		uintptr(unsafe.Pointer(&ga.alpha)), b, uintptr(ldb), a, uintptr(lda),
		uintptr(unsafe.Pointer(&ga.beta)), c, uintptr(ldc))
}

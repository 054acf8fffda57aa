package blas

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"
)

var (
	obOnce    sync.Once
	obErr     error
	obSgemmF  uintptr // sgemm_, the Fortran interface: every argument by pointer
	obThreads func(n int32)
	obConfig  func() string
)

// libNames are tried in order; Debian's libopenblas0 provides the first.
var libNames = []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0"}

// EnvLib names the OpenBLAS library file(s) to try instead of libNames
// (comma-separated). Pointing it at a missing file simulates a machine
// without OpenBLAS, so the fallback path can be tested anywhere.
const EnvLib = "TSIMCNE_OPENBLAS_LIB"

// EnvCoreType overrides OPENBLAS_CORETYPE for the engine's OpenBLAS, e.g.
// "SkylakeX"; "auto" (or unset) keeps an existing OPENBLAS_CORETYPE and
// otherwise picks SkylakeX on AVX-512 CPUs.
const EnvCoreType = "TSIMCNE_OPENBLAS_CORETYPE"

// preferAVX512 chooses OpenBLAS's kernels before the library is loaded
// (OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded). Debian's
// OpenBLAS 0.3.21 maps AMD Zen 4 to its Haswell (AVX2) kernels, which run
// SGEMM at ~170 GFLOP/s on two Zen 4 cores against ~210–235 with SkylakeX
// (AVX-512), so on AVX-512 CPUs the engine asks for SkylakeX unless the
// user set OPENBLAS_CORETYPE; TSIMCNE_OPENBLAS_CORETYPE overrides both.
func preferAVX512() {
	if v := strings.TrimSpace(os.Getenv(EnvCoreType)); v != "" && !strings.EqualFold(v, "auto") {
		os.Setenv("OPENBLAS_CORETYPE", v)
		obCoreNote = EnvCoreType + "=" + v
		return
	}
	if v, set := os.LookupEnv("OPENBLAS_CORETYPE"); set {
		obCoreNote = "OPENBLAS_CORETYPE=" + v + " from the environment"
		return
	}
	if cpu.X86.HasAVX512F {
		os.Setenv("OPENBLAS_CORETYPE", "SkylakeX")
		obCoreNote = "OPENBLAS_CORETYPE=SkylakeX chosen for this AVX-512 CPU"
	}
}

// obCoreNote says how the kernel type was chosen, for Name.
var obCoreNote string

// quietThreads makes OpenBLAS's idle worker threads sleep right after a
// GEMM instead of spinning on sched_yield for ~2^28 cycles: the engine runs
// its own element-wise kernels on the same cores between GEMMs, and the
// spinning threads halved their speed.
func quietThreads() {
	if _, set := os.LookupEnv("OPENBLAS_THREAD_TIMEOUT"); !set {
		os.Setenv("OPENBLAS_THREAD_TIMEOUT", "4")
	}
}

func loadOpenBLAS() {
	preferAVX512()
	quietThreads()
	var lib uintptr
	var errs []string
	names := libNames
	if v := strings.TrimSpace(os.Getenv(EnvLib)); v != "" {
		names = strings.Split(v, ",")
	}
	for _, name := range names {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			lib = h
			break
		}
		errs = append(errs, err.Error())
	}
	if lib == 0 {
		obErr = fmt.Errorf("blas: OpenBLAS: dlopen: %s", strings.Join(errs, "; "))
		return
	}
	// RegisterLibFunc panics when a symbol is missing; turn that into an
	// error so a broken library only disables OpenBLAS.
	defer func() {
		if r := recover(); r != nil {
			obErr = fmt.Errorf("blas: OpenBLAS symbols: %v", r)
		}
	}()
	// The Fortran sgemm_ takes every argument by pointer, so it can be
	// called with purego.SyscallN, which neither allocates nor uses
	// reflection; cblas_sgemm passes alpha and beta in float registers,
	// which SyscallN cannot do, and RegisterLibFunc's reflective calls
	// allocated on every GEMM.
	sym, err := purego.Dlsym(lib, "sgemm_")
	if err != nil {
		obErr = fmt.Errorf("blas: OpenBLAS: sgemm_: %w", err)
		return
	}
	obSgemmF = sym
	purego.RegisterLibFunc(&obThreads, lib, "openblas_set_num_threads")
	if _, err := purego.Dlsym(lib, "openblas_get_config"); err == nil {
		purego.RegisterLibFunc(&obConfig, lib, "openblas_get_config")
	}
}

type openBLAS struct {
	threads int
	config  string
}

// setMu serialises thread-count changes, which are process-global in OpenBLAS.
var setMu sync.Mutex

// OpenBLAS loads libopenblas at run time and returns its SGEMM running on
// the given number of threads. OpenBLAS's thread count is process-global:
// the last call wins.
func OpenBLAS(threads int) (Gemm, error) {
	obOnce.Do(loadOpenBLAS)
	if obErr != nil {
		return nil, obErr
	}
	if threads <= 0 {
		threads = 1
	}
	setMu.Lock()
	obThreads(int32(threads))
	setMu.Unlock()
	cfg := ""
	if obConfig != nil {
		cfg = strings.TrimSpace(obConfig())
	}
	return &openBLAS{threads: threads, config: cfg}, nil
}

// Name implements Gemm, including how the kernel type was chosen.
func (o *openBLAS) Name() string {
	if o.config != "" && obCoreNote != "" {
		return fmt.Sprintf("OpenBLAS (%s; %s), %d threads", o.config, obCoreNote, o.threads)
	}
	if o.config != "" {
		return fmt.Sprintf("OpenBLAS (%s), %d threads", o.config, o.threads)
	}
	return fmt.Sprintf("OpenBLAS, %d threads", o.threads)
}

// Threads implements Gemm.
func (o *openBLAS) Threads() int { return o.threads }

// gemmArgs holds sgemm_'s by-pointer scalars in heap memory, which Go never
// moves, for the duration of one call.
type gemmArgs struct {
	ta, tb        byte
	m, n, k       int32
	lda, ldb, ldc int32
	alpha, beta   float32
}

var argPool = sync.Pool{New: func() any { return new(gemmArgs) }}

// Sgemm implements Gemm with OpenBLAS's sgemm_. Row-major C = op(A)·op(B)
// is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so A and B swap places.
func (o *openBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if k == 0 {
		// A and B may be empty slices; only the scaling of C remains.
		scaleC(m, n, beta, c, ldc)
		return
	}
	p := argPool.Get().(*gemmArgs)
	p.ta, p.tb = 'N', 'N'
	if transA {
		p.ta = 'T'
	}
	if transB {
		p.tb = 'T'
	}
	p.m, p.n, p.k = int32(m), int32(n), int32(k)
	p.lda, p.ldb, p.ldc = int32(lda), int32(ldb), int32(ldc)
	p.alpha, p.beta = alpha, beta
	purego.SyscallN(obSgemmF,
		uintptr(unsafe.Pointer(&p.tb)), uintptr(unsafe.Pointer(&p.ta)),
		uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.k)),
		uintptr(unsafe.Pointer(&p.alpha)),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&p.ldb)),
		uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&p.lda)),
		uintptr(unsafe.Pointer(&p.beta)),
		uintptr(unsafe.Pointer(&c[0])), uintptr(unsafe.Pointer(&p.ldc)))
	// The slices and p must stay reachable until OpenBLAS returns.
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
	argPool.Put(p)
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			if beta == 0 {
				row[j] = 0
			} else {
				row[j] *= beta
			}
		}
	}
}

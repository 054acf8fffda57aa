/* cudasim's libcublas.so.12: handles, streams, math modes and SGEMM, with
 * cuBLAS's column-major semantics computed by OpenBLAS's cblas_sgemm in
 * column-major mode (libopenblas.so.0, loaded at run time) or, without
 * it, by a plain loop. The GEMM is queued on the handle's stream of the
 * emulated driver (cuda.c) and runs when the stream does. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define API __attribute__((visibility("default")))

typedef uint64_t RET;
static RET R(int r) {
  /* garbage in the upper half, as in cuda.c: cublasStatus_t is 32 bits */
  static int clean = -1;
  if (clean < 0) {
    const char *s = getenv("CUDASIM_CLEAN_RETURN");
    clean = s && *s && atoi(s) != 0;
  }
  return (clean ? 0 : 0xC5B1A500ull << 32) | (uint32_t)r;
}

enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};

#define MAGIC 0x424c4153u

typedef struct {
  uint32_t magic;
  void *ctx;
  void *stream;
  int math;
} handle_t;

API RET cublasCreate_v2(handle_t **h) {
  if (!h) return R(CUBLAS_STATUS_INVALID_VALUE);
  cudasim_lock();
  void *c = cudasim_current_ctx();
  int r = CUBLAS_STATUS_SUCCESS;
  if (!c || cudasim_ctx_error(c)) {
    r = CUBLAS_STATUS_NOT_INITIALIZED;
  } else {
    handle_t *x = calloc(1, sizeof *x);
    if (!x) {
      r = CUBLAS_STATUS_ALLOC_FAILED;
    } else {
      *x = (handle_t){MAGIC, c, NULL, 0};
      *h = x;
    }
  }
  cudasim_unlock();
  return R(r);
}

static int ok(handle_t *h) { return h && h->magic == MAGIC; }

API RET cublasDestroy_v2(handle_t *h) {
  if (!ok(h)) return R(CUBLAS_STATUS_NOT_INITIALIZED);
  h->magic = 0;
  free(h);
  return R(CUBLAS_STATUS_SUCCESS);
}

API RET cublasSetStream_v2(handle_t *h, void *s) {
  if (!ok(h)) return R(CUBLAS_STATUS_NOT_INITIALIZED);
  cudasim_lock();
  int good = cudasim_stream_ok(h->ctx, s);
  cudasim_unlock();
  if (!good) return R(CUBLAS_STATUS_INVALID_VALUE);
  h->stream = s;
  return R(CUBLAS_STATUS_SUCCESS);
}

API RET cublasGetStream_v2(handle_t *h, void **s) {
  if (!ok(h)) return R(CUBLAS_STATUS_NOT_INITIALIZED);
  if (!s) return R(CUBLAS_STATUS_INVALID_VALUE);
  *s = h->stream;
  return R(CUBLAS_STATUS_SUCCESS);
}

/* cublasMath_t: DEFAULT 0, (deprecated) TENSOR_OP 1, PEDANTIC 2,
 * TF32_TENSOR_OP 3, with DISALLOW_REDUCED_PRECISION_REDUCTION (16) or'ed. */
API RET cublasSetMathMode(handle_t *h, int mode) {
  if (!ok(h)) return R(CUBLAS_STATUS_NOT_INITIALIZED);
  int m = mode & ~16;
  if (m < 0 || m > 3) return R(CUBLAS_STATUS_INVALID_VALUE);
  h->math = mode;
  return R(CUBLAS_STATUS_SUCCESS);
}

API RET cublasGetMathMode(handle_t *h, int *mode) {
  if (!ok(h)) return R(CUBLAS_STATUS_NOT_INITIALIZED);
  if (!mode) return R(CUBLAS_STATUS_INVALID_VALUE);
  *mode = h->math;
  return R(CUBLAS_STATUS_SUCCESS);
}

API RET cublasGetVersion_v2(handle_t *h, int *v) {
  (void)h;
  if (!v) return R(CUBLAS_STATUS_INVALID_VALUE);
  *v = 120800;
  return R(CUBLAS_STATUS_SUCCESS);
}

API const char *cublasGetStatusString(int s) {
  switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

/* ---- SGEMM ---- */

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
static sgemm_fn cblas;
static int cblas_tried;

static sgemm_fn load_cblas(void) {
  if (!cblas_tried) {
    cblas_tried = 1;
    const char *off = getenv("CUDASIM_NO_OPENBLAS");
    if (!(off && *off && atoi(off))) {
      void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
      if (lib) cblas = (sgemm_fn)dlsym(lib, "cblas_sgemm");
    }
  }
  return cblas;
}

typedef struct {
  int ta, tb, m, n, k, lda, ldb, ldc, tf32;
  float alpha, beta;
  const float *a, *b;
  float *c;
} gemm_t;

/* tf32 rounds x to TF32 (1 sign, 8 exponent, 10 mantissa bits), to
 * nearest with ties away from zero as cvt.rna.tf32.f32 does. */
static float tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) {
    u += 0x1000u;
    u &= 0xffffe000u;
  }
  memcpy(&x, &u, 4);
  return x;
}

/* at reads element (i, j) of op(X), X column-major with leading dimension ld. */
static inline float at(const float *x, int ld, int trans, int i, int j) {
  return trans ? x[(size_t)i * ld + j] : x[(size_t)j * ld + i];
}

static void run_gemm(void *p) {
  gemm_t *g = p;
  /* beta == 0: C is written, never read (it may hold NaN) */
  if (g->beta == 0.0f)
    for (int j = 0; j < g->n; j++) memset(g->c + (size_t)j * g->ldc, 0, sizeof(float) * (size_t)g->m);
  if (g->k == 0 || g->alpha == 0.0f) {
    if (g->beta != 0.0f && g->beta != 1.0f)
      for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->m; i++) g->c[(size_t)j * g->ldc + i] *= g->beta;
    return;
  }
  const float *a = g->a, *b = g->b;
  int lda = g->lda, ldb = g->ldb, ta = g->ta, tb = g->tb;
  float *ra = NULL, *rb = NULL;
  if (g->tf32) {
    /* op(A) (m×k) and op(B) (k×n) rounded to TF32, packed column-major */
    ra = malloc(sizeof(float) * (size_t)g->m * g->k);
    rb = malloc(sizeof(float) * (size_t)g->k * g->n);
    if (!ra || !rb) abort();
    for (int j = 0; j < g->k; j++)
      for (int i = 0; i < g->m; i++) ra[(size_t)j * g->m + i] = tf32(at(a, lda, ta, i, j));
    for (int j = 0; j < g->n; j++)
      for (int i = 0; i < g->k; i++) rb[(size_t)j * g->k + i] = tf32(at(b, ldb, tb, i, j));
    a = ra, b = rb, lda = g->m, ldb = g->k, ta = 0, tb = 0;
  }
  sgemm_fn f = load_cblas();
  if (f) {
    /* CblasColMajor = 102, CblasNoTrans = 111, CblasTrans = 112 */
    f(102, ta ? 112 : 111, tb ? 112 : 111, g->m, g->n, g->k, g->alpha, a, lda, b, ldb, g->beta == 0.0f ? 0.0f : g->beta,
      g->c, g->ldc);
  } else {
    for (int j = 0; j < g->n; j++)
      for (int i = 0; i < g->m; i++) {
        float s = 0;
        for (int l = 0; l < g->k; l++) s += at(a, lda, ta, i, l) * at(b, ldb, tb, l, j);
        float *cij = g->c + (size_t)j * g->ldc + i;
        *cij = g->alpha * s + (g->beta == 0.0f ? 0.0f : g->beta * *cij);
      }
  }
  free(ra);
  free(rb);
}

/* extent is the bytes spanned by a rows×cols column-major matrix with
 * leading dimension ld. */
static uint64_t extent(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return 4 * ((uint64_t)ld * (uint64_t)(cols - 1) + (uint64_t)rows);
}

API RET cublasSgemm_v2(handle_t *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A, int lda,
                       const float *B, int ldb, const float *beta, float *C, int ldc) {
  if (!ok(h)) return R(CUBLAS_STATUS_NOT_INITIALIZED);
  /* cublasOperation_t: N 0, T 1, C 2 (= T for real matrices) */
  if (ta < 0 || ta > 2 || tb < 0 || tb > 2) return R(CUBLAS_STATUS_INVALID_VALUE);
  ta = ta != 0, tb = tb != 0;
  int rowsA = ta ? k : m, rowsB = tb ? n : k;
  if (m < 0 || n < 0 || k < 0) return R(CUBLAS_STATUS_INVALID_VALUE);
  if (lda < (rowsA > 1 ? rowsA : 1) || ldb < (rowsB > 1 ? rowsB : 1) || ldc < (m > 1 ? m : 1))
    return R(CUBLAS_STATUS_INVALID_VALUE);
  if (!alpha || !beta) return R(CUBLAS_STATUS_INVALID_VALUE);
  if (m == 0 || n == 0) return R(CUBLAS_STATUS_SUCCESS);
  gemm_t *g = malloc(sizeof *g);
  if (!g) return R(CUBLAS_STATUS_ALLOC_FAILED);
  /* host pointer mode: alpha and beta are read now */
  *g = (gemm_t){ta, tb, m, n, k, lda, ldb, ldc, (h->math & ~16) == 3, *alpha, *beta, A, B, C};
  cudasim_range rg[3];
  int nr = 0;
  if (k > 0 && *alpha != 0.0f) {
    rg[nr++] = (cudasim_range){(uint64_t)(uintptr_t)A, extent(rowsA, ta ? m : k, lda), "A"};
    rg[nr++] = (cudasim_range){(uint64_t)(uintptr_t)B, extent(rowsB, tb ? k : n, ldb), "B"};
  }
  rg[nr++] = (cudasim_range){(uint64_t)(uintptr_t)C, extent(m, n, ldc), "C"};
  cudasim_lock();
  void *c = cudasim_current_ctx();
  int r = CUBLAS_STATUS_SUCCESS;
  if (!c || c != h->ctx) {
    r = CUBLAS_STATUS_NOT_INITIALIZED;
    free(g);
  } else if (cudasim_ctx_error(c) || !cudasim_stream_ok(c, h->stream)) {
    r = CUBLAS_STATUS_EXECUTION_FAILED;
    free(g);
  } else if (cudasim_enqueue_host(c, h->stream, "cublasSgemm", run_gemm, g, rg, nr) != 0) {
    r = CUBLAS_STATUS_EXECUTION_FAILED; /* queued (the queue owns g), but the context has failed */
  }
  cudasim_unlock();
  return R(r);
}

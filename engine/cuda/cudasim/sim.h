/* Internal interface of the CUDA emulator (libcuda.so.1 and libcublas.so.12
 * built from this folder). Nothing here is CUDA API: these are the pieces
 * the driver (cuda.c) shares with cuBLAS (cublas.c) and with the generated
 * kernel table (kernels_host.cpp). See README.md. */
#ifndef CUDASIM_SIM_H
#define CUDASIM_SIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One decoded kernel argument (the parameter's bytes, little-endian). */
typedef union {
  void *p;
  int i;
  unsigned u;
  long long l;
  float f;
  double d;
  uint64_t raw;
} cudasim_val;

/* A kernel of kernels.cu, from the table generated at build time
 * (gen/main.go): its name, one letter per parameter (p pointer, i int32,
 * u uint32, l int64, f float, d double), whether it (or a function it
 * calls) uses __syncthreads, and the trampoline that calls the host
 * compilation with decoded arguments. */
typedef struct {
  const char *name;
  const char *sig;
  int barrier;
  void (*call)(const cudasim_val *args);
} cudasim_kernel;

extern const cudasim_kernel cudasim_kernels[];
extern const int cudasim_nkernels;

/* Thread and block coordinates of the running kernel thread (prelude.h). */
typedef struct { unsigned x, y, z; } cudasim_dim3;
extern cudasim_dim3 cudasim_threadIdx, cudasim_blockIdx, cudasim_blockDim, cudasim_gridDim;
/* Called by __syncthreads. */
void cudasim_syncthreads(void);

/* ---- for cublas.c (exported from libcuda.so.1 with these names) ---- */

/* A device range an enqueued host function reads or writes: checked
 * against the live allocations when it runs. */
typedef struct {
  uint64_t addr;
  uint64_t bytes;
  const char *what;
} cudasim_range;

void cudasim_lock(void);
void cudasim_unlock(void);
/* The current context (NULL if none) and its sticky error (0 if none). */
void *cudasim_current_ctx(void);
int cudasim_ctx_error(void *ctx);
/* Whether s is a stream of ctx (0 and the two default-stream handles
 * included). */
int cudasim_stream_ok(void *ctx, void *stream);
/* Queues fn(data) on stream s of ctx, to run (at the latest legal moment)
 * with the device memory accessible; ranges are checked first, free(data)
 * after. Returns a CUresult. */
int cudasim_enqueue_host(void *ctx, void *stream, const char *name, void (*fn)(void *), void *data,
                         const cudasim_range *ranges, int nranges);

#ifdef __cplusplus
}
#endif
#endif

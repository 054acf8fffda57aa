/* Host prelude of kernels.cu for the CUDA emulator: compiled as C++ with
 * `-include prelude.h`, kernels.cu's own device prelude (under
 * #ifdef __CUDA__) is skipped and these definitions take its place.
 *
 * - __global__ / __device__ vanish; kernels become ordinary functions.
 * - __shared__ becomes `static`: one copy per kernel, shared by the threads
 *   of the block being run. The emulator runs one block at a time, on one
 *   OS thread, under its global lock, so this is exactly per-block memory
 *   (its contents survive from block to block, which a GPU does not
 *   promise; a kernel must not rely on either).
 * - The PTX special registers read the emulator's current coordinates.
 * - __syncthreads is a real barrier: in kernels that use it (decided from
 *   the source when the table is generated) every thread is a fiber, and
 *   the barrier switches to the next thread until all have arrived.
 */
#ifndef CUDASIM_PRELUDE_H
#define CUDASIM_PRELUDE_H

#include "sim.h"

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline

static inline int __nvvm_read_ptx_sreg_tid_x() { return (int)cudasim_threadIdx.x; }
static inline int __nvvm_read_ptx_sreg_tid_y() { return (int)cudasim_threadIdx.y; }
static inline int __nvvm_read_ptx_sreg_tid_z() { return (int)cudasim_threadIdx.z; }
static inline int __nvvm_read_ptx_sreg_ctaid_x() { return (int)cudasim_blockIdx.x; }
static inline int __nvvm_read_ptx_sreg_ctaid_y() { return (int)cudasim_blockIdx.y; }
static inline int __nvvm_read_ptx_sreg_ctaid_z() { return (int)cudasim_blockIdx.z; }
static inline int __nvvm_read_ptx_sreg_ntid_x() { return (int)cudasim_blockDim.x; }
static inline int __nvvm_read_ptx_sreg_ntid_y() { return (int)cudasim_blockDim.y; }
static inline int __nvvm_read_ptx_sreg_ntid_z() { return (int)cudasim_blockDim.z; }
static inline int __nvvm_read_ptx_sreg_nctaid_x() { return (int)cudasim_gridDim.x; }
static inline int __nvvm_read_ptx_sreg_nctaid_y() { return (int)cudasim_gridDim.y; }
static inline int __nvvm_read_ptx_sreg_nctaid_z() { return (int)cudasim_gridDim.z; }
static inline int __nvvm_read_ptx_sreg_warpsize() { return 32; }

static inline void __syncthreads() { cudasim_syncthreads(); }

/* Atomics: threads of a block run one at a time and blocks one after
 * another, so a plain read-modify-write is atomic here. */
static inline int __nvvm_atom_add_gen_i(volatile int *p, int v) { int o = *p; *p = o + v; return o; }
static inline long long __nvvm_atom_add_gen_ll(volatile long long *p, long long v) { long long o = *p; *p = o + v; return o; }
static inline float __nvvm_atom_add_gen_f(volatile float *p, float v) { float o = *p; *p = o + v; return o; }
static inline double __nvvm_atom_add_gen_d(volatile double *p, double v) { double o = *p; *p = o + v; return o; }

#endif

/* cudasim's libcuda.so.1: the subset of the CUDA driver API that
 * engine/cuda uses, on the CPU, strict enough that the classic GPU bugs
 * (a missing synchronisation or event, a use after free, an out-of-bounds
 * write, a kernel launch outside CUDA's limits) fail deterministically.
 * README.md describes the model; sim.h the interface shared with cublas.c
 * and the generated kernel table. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "sim.h"

#define API __attribute__((visibility("default")))

/* Every CUresult is returned in a 64-bit register whose upper half holds
 * garbage (CUDASIM_CLEAN_RETURN=1 clears it): the C ABI defines only the
 * low 32 bits of an int return, and a caller that compares all 64 must
 * fail here rather than by luck on a GPU machine. */
typedef uint64_t RET;
static uint64_t dirty = 0xC5D1A500ull << 32;
static RET R(int r) { return dirty | (uint32_t)r; }

typedef uint64_t CUdeviceptr;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_NOT_READY = 600,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_LAUNCH_FAILED = 719,
  CUDA_ERROR_NOT_SUPPORTED = 801,
};

static const struct {
  int code;
  const char *name, *msg;
} errtab[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

/* ---- configuration (environment, read by cuInit) ---- */

static size_t cfg_mem = (size_t)2 << 30; /* CUDASIM_DEVICE_MEM */
static int cfg_devices = 2;              /* CUDASIM_DEVICES */
static int cfg_strict = 1;               /* CUDASIM_STRICT */
static int cfg_protect = 1;              /* CUDASIM_PROTECT */
static int cfg_version = 12080;          /* CUDASIM_DRIVER_VERSION */
static int cfg_sms = 4;                  /* CUDASIM_SMS */
static size_t cfg_quarantine = (size_t)256 << 20;
static int inited;

static size_t parse_size(const char *s, size_t def) {
  if (!s || !*s) return def;
  char *end;
  double v = strtod(s, &end);
  switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024.0 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
  }
  return v > 0 ? (size_t)v : def;
}

static int env_int(const char *name, int def) {
  const char *s = getenv(name);
  return s && *s ? atoi(s) : def;
}

/* ---- the global lock: Go calls from several OS threads ---- */

static pthread_mutex_t mu;
static pthread_once_t mu_once = PTHREAD_ONCE_INIT;
static void mu_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&mu, &a);
}
API void cudasim_lock(void) {
  pthread_once(&mu_once, mu_init);
  pthread_mutex_lock(&mu);
}
API void cudasim_unlock(void) { pthread_mutex_unlock(&mu); }

/* ---- objects ---- */

#define MAGIC_CTX 0x43545831u
#define MAGIC_STREAM 0x53545231u
#define MAGIC_EVENT 0x45565431u
#define MAGIC_MODULE 0x4d4f4431u
#define MAGIC_FUNC 0x46554e31u

#define GUARD 256
#define ALIGN 256
#define FILL_ALLOC 0xFFF7A5A5u /* NaN as float32 and as float64 */
#define FILL_FREED 0xFFF0DEADu /* NaN too, told apart in a debugger */
#define FILL_GUARD 0x7FF4BAD0u

typedef struct {
  uint64_t addr, size; /* what the caller sees */
  uint64_t serial;
} alloc_t;

typedef struct {
  uint64_t start, len;
} span_t;

typedef struct stream stream_t;
typedef struct event event_t;
typedef struct ctx ctx_t;

typedef struct {
  stream_t *s;
  uint64_t seq;
} dep_t;

enum { OP_KERNEL, OP_COPY, OP_MEMSET, OP_EVENT, OP_WAIT, OP_HOST };

typedef struct op {
  struct op *next;
  uint64_t seq;
  int kind;
  const char *name;
  dep_t *deps;
  int ndeps;
  /* OP_KERNEL */
  const cudasim_kernel *k;
  cudasim_val args[32];
  unsigned grid[3], block[3];
  /* OP_COPY / OP_MEMSET: dst and src are device or host addresses; the
   * device ones are checked when the op runs. */
  void *dst;
  const void *src;
  size_t bytes;
  int dst_dev, src_dev;
  void *owned; /* staging copy of a pageable source, freed after */
  uint32_t val;
  int width;
  /* OP_EVENT */
  event_t *ev;
  uint64_t gen;
  /* OP_HOST */
  void (*fn)(void *);
  void *data;
  cudasim_range ranges[4];
  int nranges;
} op_t;

struct stream {
  uint32_t magic;
  ctx_t *c;
  unsigned flags;
  int legacy;
  op_t *head, *tail;
  uint64_t enq, done;
  int destroyed;
};

struct event {
  uint32_t magic;
  ctx_t *c;
  unsigned flags;
  stream_t *s;
  uint64_t seq, gen;
  int recorded, destroyed;
  double t;
};

typedef struct {
  uint32_t magic;
  ctx_t *c;
  const cudasim_kernel *k;
} func_t;

typedef struct {
  uint32_t magic;
  ctx_t *c;
  int nf, unloaded;
  func_t *f;
} module_t;

struct ctx {
  uint32_t magic;
  int dev, refs, sticky, destroyed;
  char *base;
  size_t size, used;
  alloc_t *live;
  int nlive, caplive;
  span_t *freel;
  int nfree, capfree;
  span_t *quar;
  int nquar, capquar;
  size_t quarbytes;
  span_t freed[1024]; /* recently freed, for diagnostics */
  int nfreed;
  stream_t legacy;
  stream_t **streams;
  int nstreams, capstreams;
  int open;
  uint64_t serial;
};

typedef struct {
  ctx_t *primary;
  int refs;
} device_t;

static device_t *devices;
static __thread ctx_t *tls_cur;
static int last_leaks = -1;

/* Pinned host memory (cuMemHostAlloc): process-wide, as CUDA's portable
 * allocations are. */
typedef struct {
  uint64_t start, len;
} pin_t;
static pin_t *pins;
static int npins, cappins;

#define GROW(arr, n, cap)                                   \
  do {                                                      \
    if ((n) == (cap)) {                                     \
      (cap) = (cap) ? 2 * (cap) : 16;                       \
      (arr) = realloc((arr), sizeof(*(arr)) * (size_t)(cap)); \
      if (!(arr)) abort();                                  \
    }                                                       \
  } while (0)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- faults ---- */

static void fault(ctx_t *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "cudasim: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (%s)\n", code == CUDA_ERROR_ILLEGAL_ADDRESS ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "CUDA_ERROR_LAUNCH_FAILED");
  va_end(ap);
  if (c && !c->sticky) c->sticky = code;
}

static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "cudasim: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* ---- the arena: device memory, inaccessible to the host between ops ---- */

static void arena_open(ctx_t *c) {
  if (c->open++ == 0 && cfg_protect) mprotect(c->base, c->size, PROT_READ | PROT_WRITE);
}
static void arena_close(ctx_t *c) {
  if (--c->open == 0 && cfg_protect) mprotect(c->base, c->size, PROT_NONE);
}

static void fill(void *p, size_t n, uint32_t word) {
  uint8_t *b = p;
  size_t i = 0;
  for (; i < n && ((uintptr_t)(b + i) & 3); i++) b[i] = ((uint8_t *)&word)[(uintptr_t)(b + i) & 3];
  for (; i + 4 <= n; i += 4) *(uint32_t *)(b + i) = word;
  for (; i < n; i++) b[i] = ((uint8_t *)&word)[(uintptr_t)(b + i) & 3];
}

static int filled(const void *p, size_t n, uint32_t word) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != ((uint8_t *)&word)[(uintptr_t)(b + i) & 3]) return 0;
  return 1;
}

static uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

static void free_insert(ctx_t *c, uint64_t start, uint64_t len) {
  int i = 0;
  while (i < c->nfree && c->freel[i].start < start) i++;
  GROW(c->freel, c->nfree, c->capfree);
  memmove(&c->freel[i + 1], &c->freel[i], sizeof(span_t) * (size_t)(c->nfree - i));
  c->freel[i] = (span_t){start, len};
  c->nfree++;
  /* coalesce with the neighbours */
  if (i + 1 < c->nfree && c->freel[i].start + c->freel[i].len == c->freel[i + 1].start) {
    c->freel[i].len += c->freel[i + 1].len;
    memmove(&c->freel[i + 1], &c->freel[i + 2], sizeof(span_t) * (size_t)(c->nfree - i - 2));
    c->nfree--;
  }
  if (i > 0 && c->freel[i - 1].start + c->freel[i - 1].len == c->freel[i].start) {
    c->freel[i - 1].len += c->freel[i].len;
    memmove(&c->freel[i], &c->freel[i + 1], sizeof(span_t) * (size_t)(c->nfree - i - 1));
    c->nfree--;
  }
}

static void quarantine_release(ctx_t *c, size_t keep) {
  int k = 0;
  while (k < c->nquar && c->quarbytes > keep) {
    free_insert(c, c->quar[k].start, c->quar[k].len);
    c->quarbytes -= c->quar[k].len;
    k++;
  }
  memmove(c->quar, c->quar + k, sizeof(span_t) * (size_t)(c->nquar - k));
  c->nquar -= k;
}

static int live_index(ctx_t *c, uint64_t addr) {
  /* the last allocation starting at or before addr */
  int lo = 0, hi = c->nlive - 1, ans = -1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (c->live[mid].addr <= addr) {
      ans = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return ans;
}

/* find_alloc returns the live allocation holding [addr, addr+bytes), or
 * NULL; bytes 0 accepts a pointer one past the end. */
static alloc_t *find_alloc(ctx_t *c, uint64_t addr, uint64_t bytes) {
  int i = live_index(c, addr);
  if (i < 0) return NULL;
  alloc_t *a = &c->live[i];
  if (addr + bytes < addr || addr + bytes > a->addr + a->size) return NULL;
  if (bytes == 0 && addr > a->addr + a->size) return NULL;
  return a;
}

static int in_pinned(uint64_t addr, uint64_t bytes) {
  for (int i = 0; i < npins; i++)
    if (addr >= pins[i].start && addr + bytes <= pins[i].start + pins[i].len) return 1;
  return 0;
}

/* describe says what addr is, for a diagnostic. */
static const char *describe(ctx_t *c, uint64_t addr, char *buf, size_t n) {
  for (int i = c->nfreed - 1; i >= 0 && i >= c->nfreed - 1024; i--) {
    span_t f = c->freed[i % 1024];
    if (addr >= f.start && addr < f.start + f.len) {
      snprintf(buf, n, "inside a FREED allocation 0x%llx (%llu bytes)", (unsigned long long)f.start,
               (unsigned long long)f.len);
      return buf;
    }
  }
  int i = live_index(c, addr);
  if (i >= 0) {
    alloc_t *a = &c->live[i];
    snprintf(buf, n, "past the end of allocation 0x%llx (%llu bytes) by %lld bytes", (unsigned long long)a->addr,
             (unsigned long long)a->size, (long long)(addr - (a->addr + a->size)));
    return buf;
  }
  if (addr >= (uint64_t)(uintptr_t)c->base && addr < (uint64_t)(uintptr_t)c->base + c->size)
    snprintf(buf, n, "device memory outside any allocation");
  else
    snprintf(buf, n, "not device memory (a host address?)");
  return buf;
}

static int check_guards(ctx_t *c, alloc_t *a, const char *op) {
  uint64_t data = round_up(a->size, ALIGN);
  const uint8_t *p = (const uint8_t *)(uintptr_t)a->addr;
  if (!filled(p - GUARD, GUARD, FILL_GUARD)) {
    fault(c, CUDA_ERROR_ILLEGAL_ADDRESS, "%s wrote before the start of allocation 0x%llx (%llu bytes): guard zone overwritten",
          op, (unsigned long long)a->addr, (unsigned long long)a->size);
    return 0;
  }
  if (!filled(p + a->size, data - a->size + GUARD, FILL_GUARD)) {
    fault(c, CUDA_ERROR_ILLEGAL_ADDRESS, "%s wrote past the end of allocation 0x%llx (%llu bytes): guard zone overwritten",
          op, (unsigned long long)a->addr, (unsigned long long)a->size);
    return 0;
  }
  return 1;
}

static int check_all_guards(ctx_t *c, const char *when) {
  for (int i = 0; i < c->nlive; i++)
    if (!check_guards(c, &c->live[i], when)) return 0;
  return 1;
}

static int mem_alloc(ctx_t *c, uint64_t *out, size_t size) {
  uint64_t data = round_up(size, ALIGN);
  uint64_t span = data + 2 * GUARD;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < c->nfree; i++) {
      if (c->freel[i].len < span) continue;
      uint64_t start = c->freel[i].start;
      c->freel[i].start += span;
      c->freel[i].len -= span;
      if (c->freel[i].len == 0) {
        memmove(&c->freel[i], &c->freel[i + 1], sizeof(span_t) * (size_t)(c->nfree - i - 1));
        c->nfree--;
      }
      alloc_t a = {start + GUARD, size, ++c->serial};
      arena_open(c);
      fill((void *)(uintptr_t)start, GUARD, FILL_GUARD);
      fill((void *)(uintptr_t)a.addr, size, FILL_ALLOC);
      fill((void *)(uintptr_t)(a.addr + size), data - size + GUARD, FILL_GUARD);
      arena_close(c);
      int j = live_index(c, a.addr) + 1;
      GROW(c->live, c->nlive, c->caplive);
      memmove(&c->live[j + 1], &c->live[j], sizeof(alloc_t) * (size_t)(c->nlive - j));
      c->live[j] = a;
      c->nlive++;
      c->used += span;
      *out = a.addr;
      return CUDA_SUCCESS;
    }
    quarantine_release(c, 0);
  }
  return CUDA_ERROR_OUT_OF_MEMORY;
}

/* ---- streams and the deferred execution ---- */

static void execute(ctx_t *c, op_t *op);

static void run_until(stream_t *s, uint64_t n) {
  while (s->done < n && s->head) {
    op_t *op = s->head;
    for (int i = 0; i < op->ndeps; i++) run_until(op->deps[i].s, op->deps[i].seq);
    s->head = op->next;
    if (!s->head) s->tail = NULL;
    if (!s->c->sticky) execute(s->c, op);
    s->done = op->seq;
    free(op->deps);
    free(op->owned);
    if (op->kind == OP_HOST) free(op->data);
    free(op);
  }
}

/* flush runs stream s up to seq n with the arena open, then sweeps every
 * guard zone. */
static void flush(stream_t *s, uint64_t n) {
  if (s->done >= n) return;
  ctx_t *c = s->c;
  arena_open(c);
  run_until(s, n);
  if (!c->sticky) check_all_guards(c, "a kernel or copy");
  arena_close(c);
}

static void flush_all(ctx_t *c) {
  /* Streams run from the newest to the oldest, the legacy stream last:
   * any order is legal, and one fixed order keeps failures deterministic. */
  for (int i = c->nstreams - 1; i >= 0; i--) flush(c->streams[i], c->streams[i]->enq);
  flush(&c->legacy, c->legacy.enq);
}

static void add_dep(op_t *op, stream_t *s, uint64_t seq) {
  if (s->done >= seq) return;
  op->deps = realloc(op->deps, sizeof(dep_t) * (size_t)(op->ndeps + 1));
  op->deps[op->ndeps++] = (dep_t){s, seq};
}

static op_t *new_op(stream_t *s, int kind, const char *name) {
  op_t *op = calloc(1, sizeof(op_t));
  if (!op) abort();
  op->kind = kind;
  op->name = name;
  ctx_t *c = s->c;
  /* The legacy default stream waits for, and is waited for by, every
   * blocking stream; non-blocking streams are unordered with it. */
  if (s->legacy) {
    for (int i = 0; i < c->nstreams; i++)
      if (!(c->streams[i]->flags & 1)) add_dep(op, c->streams[i], c->streams[i]->enq);
  } else if (!(s->flags & 1)) {
    add_dep(op, &c->legacy, c->legacy.enq);
  }
  return op;
}

static uint64_t push(stream_t *s, op_t *op) {
  op->seq = ++s->enq;
  if (s->tail)
    s->tail->next = op;
  else
    s->head = op;
  s->tail = op;
  if (!cfg_strict) flush(s, op->seq);
  return op->seq;
}

/* ---- kernels ---- */

static unsigned bad_barrier;
static int in_fiber, cur_fiber;
static int fiber_state[FIBER_MAX]; /* 0 runnable, 1 at the barrier, 2 finished */
static const cudasim_kernel *run_k;
static const cudasim_val *run_args;

API cudasim_dim3 cudasim_threadIdx, cudasim_blockIdx, cudasim_blockDim, cudasim_gridDim;

API void cudasim_syncthreads(void) {
  if (!in_fiber) {
    bad_barrier = 1; /* the generator missed a barrier: reported after the launch */
    return;
  }
  fiber_state[cur_fiber] = 1;
  fiber_yield(cur_fiber);
}

static void fiber_body(int t) {
  run_k->call(run_args);
  fiber_state[t] = 2;
  fiber_yield(t);
}

static void set_tid(unsigned t) {
  cudasim_threadIdx.x = t % cudasim_blockDim.x;
  cudasim_threadIdx.y = t / cudasim_blockDim.x % cudasim_blockDim.y;
  cudasim_threadIdx.z = t / (cudasim_blockDim.x * cudasim_blockDim.y);
}

/* run_block runs every thread of the current block; with barriers, as
 * fibers in rounds from one __syncthreads to the next. It returns 0 when
 * the threads disagree on the barriers (some finished while others wait). */
static int run_block(const cudasim_kernel *k, const cudasim_val *args, unsigned n) {
  if (!k->barrier) {
    for (unsigned t = 0; t < n; t++) {
      set_tid(t);
      k->call(args);
    }
    return 1;
  }
  run_k = k;
  run_args = args;
  if (fiber_prepare((int)n, fiber_body) != 0) return 0;
  for (unsigned t = 0; t < n; t++) fiber_state[t] = 0;
  in_fiber = 1;
  int ok = 1;
  for (;;) {
    for (unsigned t = 0; t < n; t++) {
      if (fiber_state[t] == 2) continue;
      set_tid(t);
      cur_fiber = (int)t;
      fiber_state[t] = 0;
      fiber_set_arg((int)t);
      fiber_resume((int)t);
    }
    unsigned done = 0;
    for (unsigned t = 0; t < n; t++) done += fiber_state[t] == 2;
    if (done == n) break;
    if (done > 0) {
      ok = 0; /* abandon the waiting fibers: their stacks are reset next time */
      break;
    }
  }
  in_fiber = 0;
  return ok;
}

static void run_kernel(ctx_t *c, op_t *op) {
  const cudasim_kernel *k = op->k;
  char why[160];
  int np = (int)strlen(k->sig);
  for (int i = 0; i < np; i++) {
    if (k->sig[i] != 'p') continue;
    uint64_t p = (uint64_t)(uintptr_t)op->args[i].p;
    if (p == 0 || find_alloc(c, p, 0) || in_pinned(p, 1)) continue;
    fault(c, CUDA_ERROR_ILLEGAL_ADDRESS, "kernel %s: argument %d (0x%llx) is %s", k->name, i, (unsigned long long)p,
          describe(c, p, why, sizeof why));
    return;
  }
  cudasim_gridDim = (cudasim_dim3){op->grid[0], op->grid[1], op->grid[2]};
  cudasim_blockDim = (cudasim_dim3){op->block[0], op->block[1], op->block[2]};
  unsigned n = op->block[0] * op->block[1] * op->block[2];
  bad_barrier = 0;
  for (unsigned z = 0; z < op->grid[2]; z++)
    for (unsigned y = 0; y < op->grid[1]; y++)
      for (unsigned x = 0; x < op->grid[0]; x++) {
        cudasim_blockIdx = (cudasim_dim3){x, y, z};
        if (!run_block(k, op->args, n)) {
          fault(c, CUDA_ERROR_LAUNCH_FAILED,
                "kernel %s: block (%u,%u,%u): __syncthreads reached by some threads of the block while others had "
                "returned",
                k->name, x, y, z);
          return;
        }
      }
  if (bad_barrier) {
    fault(c, CUDA_ERROR_LAUNCH_FAILED, "kernel %s called __syncthreads but the generated table runs it without fibers",
          k->name);
    return;
  }
  for (int i = 0; i < np; i++) {
    if (k->sig[i] != 'p' || !op->args[i].p) continue;
    alloc_t *a = find_alloc(c, (uint64_t)(uintptr_t)op->args[i].p, 0);
    if (a && !check_guards(c, a, k->name)) return;
  }
}

static int check_range(ctx_t *c, const char *op, uint64_t p, uint64_t bytes, const char *what) {
  char why[160];
  if (find_alloc(c, p, bytes)) return 1;
  fault(c, CUDA_ERROR_ILLEGAL_ADDRESS, "%s: %s [0x%llx, +%llu) is %s", op, what, (unsigned long long)p,
        (unsigned long long)bytes, describe(c, find_alloc(c, p, 0) ? p + bytes : p, why, sizeof why));
  return 0;
}

static void execute(ctx_t *c, op_t *op) {
  switch (op->kind) {
    case OP_KERNEL:
      run_kernel(c, op);
      break;
    case OP_COPY:
      if (op->dst_dev && !check_range(c, op->name, (uint64_t)(uintptr_t)op->dst, op->bytes, "destination")) return;
      if (op->src_dev && !check_range(c, op->name, (uint64_t)(uintptr_t)op->src, op->bytes, "source")) return;
      memmove(op->dst, op->owned ? op->owned : op->src, op->bytes);
      break;
    case OP_MEMSET:
      if (!check_range(c, op->name, (uint64_t)(uintptr_t)op->dst, op->bytes, "destination")) return;
      if (op->width == 4)
        fill(op->dst, op->bytes, op->val);
      else
        memset(op->dst, (int)(op->val & 0xff), op->bytes);
      break;
    case OP_EVENT:
      if (op->ev->gen == op->gen) op->ev->t = now_ms();
      break;
    case OP_WAIT:
      break;
    case OP_HOST:
      for (int i = 0; i < op->nranges; i++)
        if (!check_range(c, op->name, op->ranges[i].addr, op->ranges[i].bytes, op->ranges[i].what)) return;
      op->fn(op->data);
      for (int i = 0; i < op->nranges; i++) {
        alloc_t *a = find_alloc(c, op->ranges[i].addr, 0);
        if (a && !check_guards(c, a, op->name)) return;
      }
      break;
  }
}

/* ---- contexts ---- */

static ctx_t **all_ctx;
static int nall_ctx, capall_ctx;

static ctx_t *ctx_new(int dev) {
  ctx_t *c = calloc(1, sizeof(ctx_t));
  if (!c) return NULL;
  c->magic = MAGIC_CTX;
  c->dev = dev;
  c->size = round_up(cfg_mem, 1 << 20);
  c->base = mmap(NULL, c->size, cfg_protect ? PROT_NONE : PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (c->base == MAP_FAILED) {
    free(c);
    return NULL;
  }
  free_insert(c, (uint64_t)(uintptr_t)c->base, c->size);
  c->legacy = (stream_t){MAGIC_STREAM, c, 0, 1, NULL, NULL, 0, 0, 0};
  GROW(all_ctx, nall_ctx, capall_ctx);
  all_ctx[nall_ctx++] = c;
  return c;
}

static int ctx_known(ctx_t *c) {
  for (int i = 0; i < nall_ctx; i++)
    if (all_ctx[i] == c) return 1;
  return 0;
}

static void ctx_destroy(ctx_t *c) {
  if (!c->sticky) flush_all(c);
  last_leaks = c->nlive;
  if (c->nlive > 0) {
    uint64_t bytes = 0;
    for (int i = 0; i < c->nlive; i++) bytes += c->live[i].size;
    note("context of device %d destroyed with %d allocations (%llu bytes) never freed (a leak)", c->dev, c->nlive,
         (unsigned long long)bytes);
  }
  munmap(c->base, c->size);
  c->base = NULL;
  c->nlive = 0;
  c->destroyed = 1;
}

/* need_ctx returns the current context, or why there is none usable. */
static ctx_t *need_ctx(int *r) {
  if (!inited) {
    *r = CUDA_ERROR_NOT_INITIALIZED;
    return NULL;
  }
  ctx_t *c = tls_cur;
  if (!c || c->destroyed) {
    *r = CUDA_ERROR_INVALID_CONTEXT;
    return NULL;
  }
  if (c->sticky) {
    *r = c->sticky;
    return NULL;
  }
  return c;
}

static stream_t *get_stream(ctx_t *c, void *h, int *r) {
  uintptr_t v = (uintptr_t)h;
  if (v == 0 || v == 1 || v == 2) return &c->legacy; /* NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD */
  for (int i = 0; i < c->nstreams; i++)
    if ((void *)c->streams[i] == h) return c->streams[i];
  *r = CUDA_ERROR_INVALID_HANDLE;
  return NULL;
}

#define BEGIN                 \
  int r = CUDA_SUCCESS;       \
  cudasim_lock();             \
  ctx_t *c = need_ctx(&r);    \
  (void)c;                    \
  if (!c) goto out;
#define END    \
  out:         \
  cudasim_unlock(); \
  return R(r);
#define FAIL(code) \
  do {             \
    r = (code);    \
    goto out;      \
  } while (0)
/* The sticky error of a fault found while running queued work. */
#define STICKY \
  if (c->sticky) FAIL(c->sticky);

/* ---- initialisation and devices ---- */

API RET cuInit(unsigned flags) {
  cudasim_lock();
  if (flags != 0) {
    cudasim_unlock();
    return R(CUDA_ERROR_INVALID_VALUE);
  }
  if (!inited) {
    cfg_mem = parse_size(getenv("CUDASIM_DEVICE_MEM"), cfg_mem);
    cfg_devices = env_int("CUDASIM_DEVICES", cfg_devices);
    cfg_strict = env_int("CUDASIM_STRICT", cfg_strict);
    cfg_protect = env_int("CUDASIM_PROTECT", cfg_protect);
    cfg_version = env_int("CUDASIM_DRIVER_VERSION", cfg_version);
    cfg_sms = env_int("CUDASIM_SMS", cfg_sms);
    cfg_quarantine = parse_size(getenv("CUDASIM_QUARANTINE"), cfg_mem / 8 < cfg_quarantine ? cfg_mem / 8 : cfg_quarantine);
    if (env_int("CUDASIM_CLEAN_RETURN", 0)) dirty = 0;
    if (cfg_devices < 0) cfg_devices = 0;
    devices = calloc((size_t)cfg_devices + 1, sizeof(device_t));
    inited = 1;
  }
  cudasim_unlock();
  return R(cfg_devices == 0 ? CUDA_ERROR_NO_DEVICE : CUDA_SUCCESS);
}

API RET cuDriverGetVersion(int *v) {
  if (!v) return R(CUDA_ERROR_INVALID_VALUE);
  const char *s = getenv("CUDASIM_DRIVER_VERSION");
  *v = s && *s ? atoi(s) : cfg_version;
  return R(CUDA_SUCCESS);
}

API RET cuDeviceGetCount(int *n) {
  if (!inited) return R(CUDA_ERROR_NOT_INITIALIZED);
  if (!n) return R(CUDA_ERROR_INVALID_VALUE);
  *n = cfg_devices;
  return R(CUDA_SUCCESS);
}

API RET cuDeviceGet(int *d, int ordinal) {
  if (!inited) return R(CUDA_ERROR_NOT_INITIALIZED);
  if (!d) return R(CUDA_ERROR_INVALID_VALUE);
  if (ordinal < 0 || ordinal >= cfg_devices) return R(CUDA_ERROR_INVALID_DEVICE);
  *d = ordinal;
  return R(CUDA_SUCCESS);
}

static int dev_ok(int d) { return inited && d >= 0 && d < cfg_devices; }

API RET cuDeviceGetName(char *name, int len, int dev) {
  if (!dev_ok(dev)) return R(inited ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED);
  if (!name || len <= 0) return R(CUDA_ERROR_INVALID_VALUE);
  snprintf(name, (size_t)len, "cudasim %d (CPU emulator)", dev);
  return R(CUDA_SUCCESS);
}

API RET cuDeviceTotalMem_v2(size_t *bytes, int dev) {
  if (!dev_ok(dev)) return R(inited ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED);
  if (!bytes) return R(CUDA_ERROR_INVALID_VALUE);
  *bytes = round_up(cfg_mem, 1 << 20);
  return R(CUDA_SUCCESS);
}

API RET cuDeviceGetAttribute(int *v, int attr, int dev) {
  if (!dev_ok(dev)) return R(inited ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED);
  if (!v) return R(CUDA_ERROR_INVALID_VALUE);
  switch (attr) {
    case 1: *v = 1024; break;        /* MAX_THREADS_PER_BLOCK */
    case 2: case 3: *v = 1024; break; /* MAX_BLOCK_DIM_X, Y */
    case 4: *v = 64; break;          /* MAX_BLOCK_DIM_Z */
    case 5: *v = 0x7fffffff; break;  /* MAX_GRID_DIM_X */
    case 6: case 7: *v = 65535; break;
    case 8: *v = 49152; break;       /* MAX_SHARED_MEMORY_PER_BLOCK */
    case 9: *v = 65536; break;       /* TOTAL_CONSTANT_MEMORY */
    case 10: *v = 32; break;         /* WARP_SIZE */
    case 16: *v = cfg_sms; break;    /* MULTIPROCESSOR_COUNT */
    case 41: *v = 1; break;          /* UNIFIED_ADDRESSING */
    case 75: *v = 8; break;          /* COMPUTE_CAPABILITY_MAJOR */
    case 76: *v = 0; break;          /* COMPUTE_CAPABILITY_MINOR */
    case 97: *v = 49152; break;      /* MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: no opt-in here */
    default: return R(CUDA_ERROR_INVALID_VALUE);
  }
  return R(CUDA_SUCCESS);
}

/* ---- contexts ---- */

API RET cuDevicePrimaryCtxRetain(void **pctx, int dev) {
  cudasim_lock();
  int r = CUDA_SUCCESS;
  if (!inited) r = CUDA_ERROR_NOT_INITIALIZED;
  else if (!dev_ok(dev)) r = CUDA_ERROR_INVALID_DEVICE;
  else if (!pctx) r = CUDA_ERROR_INVALID_VALUE;
  else {
    device_t *d = &devices[dev];
    if (!d->primary || d->primary->destroyed) {
      d->primary = ctx_new(dev);
      d->refs = 0;
      if (!d->primary) r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r == CUDA_SUCCESS) {
      d->refs++;
      *pctx = d->primary;
    }
  }
  cudasim_unlock();
  return R(r);
}

API RET cuDevicePrimaryCtxRelease_v2(int dev) {
  cudasim_lock();
  int r = CUDA_SUCCESS;
  if (!inited) r = CUDA_ERROR_NOT_INITIALIZED;
  else if (!dev_ok(dev)) r = CUDA_ERROR_INVALID_DEVICE;
  else {
    device_t *d = &devices[dev];
    if (!d->primary || d->refs <= 0) r = CUDA_ERROR_INVALID_CONTEXT;
    else if (--d->refs == 0) {
      ctx_destroy(d->primary);
      d->primary = NULL;
    }
  }
  cudasim_unlock();
  return R(r);
}

API RET cuCtxSetCurrent(void *h) {
  cudasim_lock();
  int r = CUDA_SUCCESS;
  if (!inited) r = CUDA_ERROR_NOT_INITIALIZED;
  else if (h && (!ctx_known(h) || ((ctx_t *)h)->destroyed)) r = CUDA_ERROR_INVALID_CONTEXT;
  else tls_cur = h;
  cudasim_unlock();
  return R(r);
}

API RET cuCtxGetCurrent(void **h) {
  if (!inited) return R(CUDA_ERROR_NOT_INITIALIZED);
  if (!h) return R(CUDA_ERROR_INVALID_VALUE);
  *h = tls_cur;
  return R(CUDA_SUCCESS);
}

API RET cuCtxSynchronize(void) {
  BEGIN
  flush_all(c);
  STICKY
  END
}

/* cudasimLastLeaks is not CUDA: the number of allocations the last
 * destroyed context still held (-1 before any), for the emulator's tests. */
API int cudasimLastLeaks(void) { return last_leaks; }

/* ---- memory ---- */

API RET cuMemGetInfo_v2(size_t *fr, size_t *total) {
  BEGIN
  if (!fr || !total) FAIL(CUDA_ERROR_INVALID_VALUE);
  *total = c->size;
  *fr = c->size - c->used;
  END
}

API RET cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
  BEGIN
  if (!p || bytes == 0) FAIL(CUDA_ERROR_INVALID_VALUE);
  r = mem_alloc(c, p, bytes);
  END
}

API RET cuMemFree_v2(CUdeviceptr p) {
  BEGIN
  if (p == 0) goto out;
  int i = live_index(c, p);
  if (i < 0 || c->live[i].addr != p) FAIL(CUDA_ERROR_INVALID_VALUE);
  /* cuMemFree waits for the work queued on the device. */
  flush_all(c);
  STICKY
  alloc_t a = c->live[i];
  uint64_t data = round_up(a.size, ALIGN);
  arena_open(c);
  int ok = check_guards(c, &a, "a kernel or copy");
  fill((void *)(uintptr_t)a.addr, data, FILL_FREED);
  arena_close(c);
  if (!ok) FAIL(c->sticky);
  memmove(&c->live[i], &c->live[i + 1], sizeof(alloc_t) * (size_t)(c->nlive - i - 1));
  c->nlive--;
  c->used -= data + 2 * GUARD;
  c->freed[c->nfreed++ % 1024] = (span_t){a.addr, a.size};
  /* Freed memory waits in quarantine before reuse, so a stale pointer
   * finds poison instead of somebody else's data. */
  GROW(c->quar, c->nquar, c->capquar);
  c->quar[c->nquar++] = (span_t){a.addr - GUARD, data + 2 * GUARD};
  c->quarbytes += data + 2 * GUARD;
  quarantine_release(c, cfg_quarantine);
  END
}

API RET cuMemHostAlloc(void **p, size_t bytes, unsigned flags) {
  BEGIN
  (void)flags;
  if (!p || bytes == 0) FAIL(CUDA_ERROR_INVALID_VALUE);
  size_t len = round_up(bytes, (uint64_t)sysconf(_SC_PAGESIZE));
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) FAIL(CUDA_ERROR_OUT_OF_MEMORY);
  GROW(pins, npins, cappins);
  pins[npins++] = (pin_t){(uint64_t)(uintptr_t)m, len};
  *p = m;
  END
}

API RET cuMemAllocHost_v2(void **p, size_t bytes) { return cuMemHostAlloc(p, bytes, 0); }

API RET cuMemFreeHost(void *p) {
  BEGIN
  int i;
  for (i = 0; i < npins; i++)
    if (pins[i].start == (uint64_t)(uintptr_t)p) break;
  if (i == npins) FAIL(CUDA_ERROR_INVALID_VALUE);
  /* Queued copies may still use it: like cuMemFree, wait for the device. */
  flush_all(c);
  munmap(p, pins[i].len);
  pins[i] = pins[--npins];
  STICKY
  END
}

/* copy_op queues a copy; src/dst host pointers that are not pinned follow
 * CUDA's rules for pageable memory. */
static int copy_async(ctx_t *c, const char *name, void *dst, int dst_dev, const void *src, int src_dev, size_t n,
                      void *hs, int sync) {
  int r = CUDA_SUCCESS;
  stream_t *s = get_stream(c, hs, &r);
  if (!s) return r;
  if (n == 0) return CUDA_SUCCESS;
  if (dst_dev && !find_alloc(c, (uint64_t)(uintptr_t)dst, n)) return CUDA_ERROR_INVALID_VALUE;
  if (src_dev && !find_alloc(c, (uint64_t)(uintptr_t)src, n)) return CUDA_ERROR_INVALID_VALUE;
  if (!dst || !src) return CUDA_ERROR_INVALID_VALUE;
  op_t *op = new_op(s, OP_COPY, name);
  op->dst = dst;
  op->src = src;
  op->bytes = n;
  op->dst_dev = dst_dev;
  op->src_dev = src_dev;
  int run_now = sync;
  if (!src_dev && !in_pinned((uint64_t)(uintptr_t)src, n)) {
    /* From pageable memory the driver stages the source at once: later
     * changes to it do not reach the device. */
    op->owned = malloc(n);
    if (!op->owned) abort();
    memcpy(op->owned, src, n);
  } else if (!src_dev && sync) {
    run_now = 1; /* synchronous from pinned memory */
  }
  if (!dst_dev) {
    if (!in_pinned((uint64_t)(uintptr_t)dst, n)) {
      run_now = 1; /* into pageable memory the copy completes before the call returns */
    } else if (!run_now && cfg_strict) {
      /* Into pinned memory the copy lands whenever the stream gets there:
       * until the host synchronises, it must not read the destination,
       * which holds poison meanwhile. */
      fill(dst, n, FILL_ALLOC);
    }
  }
  uint64_t seq = push(s, op);
  if (run_now) flush(s, seq);
  return c->sticky ? c->sticky : CUDA_SUCCESS;
}

API RET cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *s) {
  BEGIN
  r = copy_async(c, "cuMemcpyHtoDAsync", (void *)(uintptr_t)dst, 1, src, 0, n, s, 0);
  END
}
API RET cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, void *s) {
  BEGIN
  r = copy_async(c, "cuMemcpyDtoHAsync", dst, 0, (const void *)(uintptr_t)src, 1, n, s, 0);
  END
}
API RET cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void *s) {
  BEGIN
  r = copy_async(c, "cuMemcpyDtoDAsync", (void *)(uintptr_t)dst, 1, (const void *)(uintptr_t)src, 1, n, s, 0);
  END
}
/* The synchronous copies run on the legacy stream: ordered after the
 * blocking streams' work, not the non-blocking streams'. */
API RET cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
  BEGIN
  r = copy_async(c, "cuMemcpyHtoD", (void *)(uintptr_t)dst, 1, src, 0, n, NULL, 1);
  END
}
API RET cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
  BEGIN
  r = copy_async(c, "cuMemcpyDtoH", dst, 0, (const void *)(uintptr_t)src, 1, n, NULL, 1);
  END
}
API RET cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  BEGIN
  r = copy_async(c, "cuMemcpyDtoD", (void *)(uintptr_t)dst, 1, (const void *)(uintptr_t)src, 1, n, NULL, 0);
  END
}

static int memset_async(ctx_t *c, const char *name, CUdeviceptr dst, uint32_t v, size_t count, int width, void *hs) {
  int r = CUDA_SUCCESS;
  stream_t *s = get_stream(c, hs, &r);
  if (!s) return r;
  if (count == 0) return CUDA_SUCCESS;
  if ((width == 4 && (dst & 3)) || !find_alloc(c, dst, count * (size_t)width)) return CUDA_ERROR_INVALID_VALUE;
  op_t *op = new_op(s, OP_MEMSET, name);
  op->dst = (void *)(uintptr_t)dst;
  op->bytes = count * (size_t)width;
  op->val = v;
  op->width = width;
  push(s, op);
  return CUDA_SUCCESS;
}

API RET cuMemsetD32Async(CUdeviceptr dst, unsigned v, size_t n, void *s) {
  BEGIN
  r = memset_async(c, "cuMemsetD32Async", dst, v, n, 4, s);
  END
}
API RET cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void *s) {
  BEGIN
  r = memset_async(c, "cuMemsetD8Async", dst, v, n, 1, s);
  END
}
API RET cuMemsetD32_v2(CUdeviceptr dst, unsigned v, size_t n) {
  BEGIN
  r = memset_async(c, "cuMemsetD32", dst, v, n, 4, NULL);
  END
}
API RET cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) {
  BEGIN
  r = memset_async(c, "cuMemsetD8", dst, v, n, 1, NULL);
  END
}

/* ---- streams ---- */

API RET cuStreamCreate(void **ph, unsigned flags) {
  BEGIN
  if (!ph || (flags & ~1u)) FAIL(CUDA_ERROR_INVALID_VALUE);
  stream_t *s = calloc(1, sizeof(stream_t));
  if (!s) FAIL(CUDA_ERROR_OUT_OF_MEMORY);
  *s = (stream_t){MAGIC_STREAM, c, flags, 0, NULL, NULL, 0, 0, 0};
  GROW(c->streams, c->nstreams, c->capstreams);
  c->streams[c->nstreams++] = s;
  *ph = s;
  END
}

API RET cuStreamDestroy_v2(void *h) {
  BEGIN
  if (!h || h == (void *)1 || h == (void *)2) FAIL(CUDA_ERROR_INVALID_HANDLE);
  stream_t *s = get_stream(c, h, &r);
  if (!s) goto out;
  /* Its queued work still completes; here, now. */
  flush(s, s->enq);
  s->destroyed = 1;
  for (int i = 0; i < c->nstreams; i++)
    if (c->streams[i] == s) {
      memmove(&c->streams[i], &c->streams[i + 1], sizeof(stream_t *) * (size_t)(c->nstreams - i - 1));
      c->nstreams--;
      break;
    }
  /* the struct stays allocated: ops of other streams may name it in deps,
   * all of which are satisfied now */
  STICKY
  END
}

API RET cuStreamSynchronize(void *h) {
  BEGIN
  stream_t *s = get_stream(c, h, &r);
  if (!s) goto out;
  flush(s, s->enq);
  STICKY
  END
}

/* cuStreamQuery reports NOT_READY for queued work and runs it, so a
 * polling loop makes progress while code that assumed completion fails. */
API RET cuStreamQuery(void *h) {
  BEGIN
  stream_t *s = get_stream(c, h, &r);
  if (!s) goto out;
  if (s->done < s->enq) {
    flush(s, s->enq);
    r = CUDA_ERROR_NOT_READY;
  }
  STICKY
  END
}

API RET cuStreamWaitEvent(void *h, void *he, unsigned flags) {
  BEGIN
  stream_t *s = get_stream(c, h, &r);
  if (!s) goto out;
  event_t *e = he;
  if (!e || e->magic != MAGIC_EVENT || e->destroyed || e->c != c) FAIL(CUDA_ERROR_INVALID_HANDLE);
  if (flags != 0) FAIL(CUDA_ERROR_INVALID_VALUE);
  if (!e->recorded) goto out; /* waiting on a never-recorded event is a no-op */
  op_t *op = new_op(s, OP_WAIT, "cuStreamWaitEvent");
  add_dep(op, e->s, e->seq);
  push(s, op);
  END
}

/* ---- events ---- */

API RET cuEventCreate(void **ph, unsigned flags) {
  BEGIN
  if (!ph) FAIL(CUDA_ERROR_INVALID_VALUE);
  event_t *e = calloc(1, sizeof(event_t));
  if (!e) FAIL(CUDA_ERROR_OUT_OF_MEMORY);
  e->magic = MAGIC_EVENT;
  e->c = c;
  e->flags = flags;
  *ph = e;
  END
}

static event_t *get_event(ctx_t *c, void *h, int *r) {
  event_t *e = h;
  if (!e || e->magic != MAGIC_EVENT || e->destroyed || e->c != c) {
    *r = CUDA_ERROR_INVALID_HANDLE;
    return NULL;
  }
  return e;
}

API RET cuEventDestroy_v2(void *h) {
  BEGIN
  event_t *e = get_event(c, h, &r);
  if (!e) goto out;
  e->destroyed = 1; /* kept: a queued record may still point at it */
  END
}

API RET cuEventRecord(void *h, void *hs) {
  BEGIN
  event_t *e = get_event(c, h, &r);
  if (!e) goto out;
  stream_t *s = get_stream(c, hs, &r);
  if (!s) goto out;
  op_t *op = new_op(s, OP_EVENT, "cuEventRecord");
  op->ev = e;
  op->gen = ++e->gen;
  e->s = s;
  e->recorded = 1;
  e->seq = push(s, op);
  END
}

API RET cuEventSynchronize(void *h) {
  BEGIN
  event_t *e = get_event(c, h, &r);
  if (!e) goto out;
  if (e->recorded) flush(e->s, e->seq);
  STICKY
  END
}

API RET cuEventQuery(void *h) {
  BEGIN
  event_t *e = get_event(c, h, &r);
  if (!e) goto out;
  if (e->recorded && e->s->done < e->seq) {
    flush(e->s, e->seq);
    r = CUDA_ERROR_NOT_READY;
  }
  STICKY
  END
}

static int elapsed(ctx_t *c, float *ms, void *h0, void *h1) {
  int r = CUDA_SUCCESS;
  event_t *a = get_event(c, h0, &r), *b = get_event(c, h1, &r);
  if (!a || !b) return r;
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  if ((a->flags | b->flags) & 2) return CUDA_ERROR_INVALID_HANDLE; /* CU_EVENT_DISABLE_TIMING */
  if (!a->recorded || !b->recorded) return CUDA_ERROR_INVALID_HANDLE;
  if (a->s->done < a->seq || b->s->done < b->seq) return CUDA_ERROR_NOT_READY;
  *ms = (float)(b->t - a->t);
  return CUDA_SUCCESS;
}

API RET cuEventElapsedTime(float *ms, void *a, void *b) {
  BEGIN
  r = elapsed(c, ms, a, b);
  END
}
API RET cuEventElapsedTime_v2(float *ms, void *a, void *b) {
  BEGIN
  r = elapsed(c, ms, a, b);
  END
}

/* ---- modules and launches ---- */

static const cudasim_kernel *find_kernel(const char *name, size_t len) {
  for (int i = 0; i < cudasim_nkernels; i++)
    if (strlen(cudasim_kernels[i].name) == len && !strncmp(cudasim_kernels[i].name, name, len)) return &cudasim_kernels[i];
  return NULL;
}

static const char *ptx_type(char c) {
  switch (c) {
    case 'p': case 'l': return ".u64";
    case 'i': case 'u': return ".u32";
    case 'f': return ".f32";
    case 'd': return ".f64";
  }
  return "?";
}

/* load_ptx finds every .entry of the image; each must be a kernel of the
 * table with the same parameter types, so a PTX built from a newer
 * kernels.cu than the emulator fails here, naming the entry. */
static int load_ptx(const char *img, module_t *m, char *log, size_t loglen) {
  if (!strstr(img, ".target sm_")) {
    snprintf(log, loglen, "cudasim: the image is not PTX (no .target sm_XX)");
    return CUDA_ERROR_INVALID_PTX;
  }
  const char *p = img;
  while ((p = strstr(p, ".entry")) != NULL) {
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    const char *name = p;
    while (*p && (*p == '_' || *p == '$' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z'))) p++;
    size_t len = (size_t)(p - name);
    const char *open = strchr(p, '('), *close = open ? strchr(open, ')') : NULL;
    if (!len || !open || !close) {
      snprintf(log, loglen, "cudasim: malformed .entry");
      return CUDA_ERROR_INVALID_PTX;
    }
    const cudasim_kernel *k = find_kernel(name, len);
    if (!k) {
      snprintf(log, loglen,
               "cudasim: PTX entry %.*s has no host implementation: the emulator was built from another kernels.cu "
               "(run make cudasim)",
               (int)len, name);
      return CUDA_ERROR_INVALID_PTX;
    }
    /* the parameter types */
    int np = 0;
    const char *q = open;
    while ((q = strstr(q, ".param")) != NULL && q < close) {
      q += 6;
      while (*q == ' ') q++;
      if (!strncmp(q, ".align", 6)) {
        q += 6;
        while (*q == ' ' || (*q >= '0' && *q <= '9')) q++;
      }
      const char *want = np < (int)strlen(k->sig) ? ptx_type(k->sig[np]) : "(none)";
      if (strncmp(q, want, strlen(want)) != 0) {
        snprintf(log, loglen, "cudasim: PTX entry %s parameter %d is %.4s, the emulator's kernel has %s (run make cudasim)",
                 k->name, np, q, want);
        return CUDA_ERROR_INVALID_PTX;
      }
      np++;
    }
    if (np != (int)strlen(k->sig)) {
      snprintf(log, loglen, "cudasim: PTX entry %s has %d parameters, the emulator's kernel %zu (run make cudasim)", k->name,
               np, strlen(k->sig));
      return CUDA_ERROR_INVALID_PTX;
    }
    m->f = realloc(m->f, sizeof(func_t) * (size_t)(m->nf + 1));
    m->f[m->nf++] = (func_t){MAGIC_FUNC, m->c, k};
    p = close;
  }
  if (m->nf == 0) {
    snprintf(log, loglen, "cudasim: the PTX declares no .entry");
    return CUDA_ERROR_INVALID_PTX;
  }
  return CUDA_SUCCESS;
}

static module_t **modules;
static int nmodules, capmodules;

API RET cuModuleLoadDataEx(void **pm, const void *image, unsigned nopt, int *opts, void **vals) {
  BEGIN
  if (!pm || !image) FAIL(CUDA_ERROR_INVALID_VALUE);
  char *errlog = NULL;
  size_t errlen = 0;
  int errsize_at = -1;
  for (unsigned i = 0; i < nopt; i++) {
    if (!opts || !vals) FAIL(CUDA_ERROR_INVALID_VALUE);
    if (opts[i] == 5) errlog = vals[i];
    if (opts[i] == 6) {
      errlen = (size_t)(uintptr_t)vals[i];
      errsize_at = (int)i;
    }
  }
  char log[512] = "";
  module_t *m = calloc(1, sizeof(module_t));
  if (!m) FAIL(CUDA_ERROR_OUT_OF_MEMORY);
  m->magic = MAGIC_MODULE;
  m->c = c;
  r = load_ptx(image, m, log, sizeof log);
  if (r != CUDA_SUCCESS) {
    note("%s", log);
    if (errlog && errlen > 0) {
      snprintf(errlog, errlen, "%s", log);
      if (errsize_at >= 0) vals[errsize_at] = (void *)(uintptr_t)(strlen(errlog) + 1);
    }
    free(m->f);
    free(m);
    goto out;
  }
  GROW(modules, nmodules, capmodules);
  modules[nmodules++] = m;
  *pm = m;
  END
}

static module_t *get_module(void *h) {
  for (int i = 0; i < nmodules; i++)
    if (modules[i] == h && !modules[i]->unloaded) return modules[i];
  return NULL;
}

API RET cuModuleUnload(void *h) {
  BEGIN
  module_t *m = get_module(h);
  if (!m || m->c != c) FAIL(CUDA_ERROR_INVALID_HANDLE);
  flush_all(c); /* queued launches of its kernels run first */
  m->unloaded = 1;
  END
}

API RET cuModuleGetFunction(void **pf, void *h, const char *name) {
  BEGIN
  module_t *m = get_module(h);
  if (!m || m->c != c) FAIL(CUDA_ERROR_INVALID_HANDLE);
  if (!pf || !name) FAIL(CUDA_ERROR_INVALID_VALUE);
  for (int i = 0; i < m->nf; i++)
    if (!strcmp(m->f[i].k->name, name)) {
      *pf = &m->f[i];
      goto out;
    }
  FAIL(CUDA_ERROR_NOT_FOUND);
  END
}

static func_t *get_func(ctx_t *c, void *h) {
  for (int i = 0; i < nmodules; i++) {
    module_t *m = modules[i];
    if (m->unloaded || m->c != c) continue;
    if ((func_t *)h >= m->f && (func_t *)h < m->f + m->nf) return h;
  }
  return NULL;
}

API RET cuLaunchKernel(void *hf, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                       unsigned shared, void *hs, void **params, void **extra) {
  BEGIN
  func_t *f = get_func(c, hf);
  if (!f) FAIL(CUDA_ERROR_INVALID_HANDLE);
  stream_t *s = get_stream(c, hs, &r);
  if (!s) goto out;
  const cudasim_kernel *k = f->k;
  /* CUDA's limits for compute capability 8.0 (cuDeviceGetAttribute). */
  if (!gx || !gy || !gz || !bx || !by || !bz || bx > 1024 || by > 1024 || bz > 64 ||
      (uint64_t)bx * by * bz > 1024 || gx > 0x7fffffffu || gy > 65535 || gz > 65535) {
    note("cuLaunchKernel %s: grid (%u,%u,%u) × block (%u,%u,%u) is outside CUDA's limits", k->name, gx, gy, gz, bx, by, bz);
    FAIL(CUDA_ERROR_INVALID_VALUE);
  }
  if (shared > 49152) {
    note("cuLaunchKernel %s: %u bytes of dynamic shared memory (at most 49152)", k->name, shared);
    FAIL(CUDA_ERROR_INVALID_VALUE);
  }
  int np = (int)strlen(k->sig);
  if (extra) {
    note("cuLaunchKernel %s: the extra argument form is not supported by the emulator", k->name);
    FAIL(CUDA_ERROR_NOT_SUPPORTED);
  }
  if (np > 0 && !params) FAIL(CUDA_ERROR_INVALID_VALUE);
  op_t *op = new_op(s, OP_KERNEL, k->name);
  op->k = k;
  /* The arguments are copied now, as CUDA does: the caller may reuse
   * its parameter buffer as soon as the call returns. */
  for (int i = 0; i < np; i++) {
    size_t sz = (k->sig[i] == 'i' || k->sig[i] == 'u' || k->sig[i] == 'f') ? 4 : 8;
    op->args[i].raw = 0;
    memcpy(&op->args[i], params[i], sz);
  }
  op->grid[0] = gx, op->grid[1] = gy, op->grid[2] = gz;
  op->block[0] = bx, op->block[1] = by, op->block[2] = bz;
  push(s, op);
  STICKY
  END
}

/* ---- errors ---- */

API RET cuGetErrorName(int e, const char **p) {
  if (!p) return R(CUDA_ERROR_INVALID_VALUE);
  for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
    if (errtab[i].code == e) {
      *p = errtab[i].name;
      return R(CUDA_SUCCESS);
    }
  *p = NULL;
  return R(CUDA_ERROR_INVALID_VALUE);
}

API RET cuGetErrorString(int e, const char **p) {
  if (!p) return R(CUDA_ERROR_INVALID_VALUE);
  for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
    if (errtab[i].code == e) {
      *p = errtab[i].msg;
      return R(CUDA_SUCCESS);
    }
  *p = NULL;
  return R(CUDA_ERROR_INVALID_VALUE);
}

/* ---- for cublas.c ---- */

API void *cudasim_current_ctx(void) {
  ctx_t *c = tls_cur;
  return inited && c && !c->destroyed ? c : NULL;
}

API int cudasim_ctx_error(void *h) { return h ? ((ctx_t *)h)->sticky : CUDA_ERROR_INVALID_CONTEXT; }

API int cudasim_stream_ok(void *h, void *s) {
  int r = 0;
  return h && get_stream(h, s, &r) != NULL;
}

API int cudasim_enqueue_host(void *h, void *hs, const char *name, void (*fn)(void *), void *data,
                             const cudasim_range *ranges, int nranges) {
  ctx_t *c = h;
  int r = CUDA_SUCCESS;
  stream_t *s = get_stream(c, hs, &r);
  if (!s) return r;
  if (nranges > 4) return CUDA_ERROR_INVALID_VALUE;
  op_t *op = new_op(s, OP_HOST, name);
  op->fn = fn;
  op->data = data;
  op->nranges = nranges;
  for (int i = 0; i < nranges; i++) op->ranges[i] = ranges[i];
  push(s, op);
  return c->sticky;
}

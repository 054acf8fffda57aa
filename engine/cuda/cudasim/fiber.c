/* Fibers for kernels that use __syncthreads: every thread of a block gets
 * its own stack, and the barrier switches to the next thread. On x86-64 the
 * switch is six register pushes and a stack swap (swapcontext would make a
 * sigprocmask system call per switch); elsewhere it is ucontext. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber.h"

#define FIBER_STACK (64 * 1024)

static char *stacks;
static int nstacks;
static size_t page;

#if defined(__x86_64__)
/* cudasim_swap(save, to): saves the callee-saved registers and the stack
 * pointer into *save, then resumes the context whose stack pointer is to. */
void cudasim_swap(void **save, void *to);
__asm__(".text\n"
        ".globl cudasim_swap\n"
        ".hidden cudasim_swap\n"
        ".type cudasim_swap,@function\n"
        "cudasim_swap:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size cudasim_swap, .-cudasim_swap\n");

static void *sched_sp;
static void *fiber_sp[FIBER_MAX];

static void (*entry_fn)(int);
static int entry_arg;

static void fiber_start(void) {
  entry_fn(entry_arg);
  /* entry_fn returns only after marking the fiber done and switching away
   * for good; it is never resumed. */
  abort();
}

static void init_fiber(int t) {
  uint64_t *sp = (uint64_t *)(stacks + (size_t)(t + 1) * (FIBER_STACK + page));
  *--sp = 0;                       /* fake return address of fiber_start */
  *--sp = (uint64_t)fiber_start;   /* where the first switch returns to */
  for (int i = 0; i < 6; i++) *--sp = 0;
  fiber_sp[t] = sp;
}

void fiber_resume(int t) { cudasim_swap(&sched_sp, fiber_sp[t]); }
void fiber_yield(int t) { cudasim_swap(&fiber_sp[t], sched_sp); }
#else
#include <ucontext.h>
static ucontext_t sched_ctx, fiber_ctx[FIBER_MAX];
static void (*entry_fn)(int);
static void fiber_start(int t) { entry_fn(t); abort(); }
static void init_fiber(int t) {
  getcontext(&fiber_ctx[t]);
  fiber_ctx[t].uc_stack.ss_sp = stacks + (size_t)t * (FIBER_STACK + page) + page;
  fiber_ctx[t].uc_stack.ss_size = FIBER_STACK;
  fiber_ctx[t].uc_link = NULL;
  makecontext(&fiber_ctx[t], (void (*)(void))fiber_start, 1, t);
}
void fiber_resume(int t) { swapcontext(&sched_ctx, &fiber_ctx[t]); }
void fiber_yield(int t) { swapcontext(&fiber_ctx[t], &sched_ctx); }
#endif

/* fiber_prepare gives threads [0, n) fresh stacks that start in fn(t).
 * Each stack sits above a guard page, so a kernel overflowing its 64 KiB
 * faults instead of corrupting its neighbour. */
int fiber_prepare(int n, void (*fn)(int)) {
  if (n > FIBER_MAX) return -1;
  if (!stacks) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = FIBER_STACK + page;
    stacks = mmap(NULL, span * FIBER_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stacks == MAP_FAILED) {
      stacks = NULL;
      return -1;
    }
    for (int i = 0; i < FIBER_MAX; i++) mprotect(stacks + (size_t)i * span, page, PROT_NONE);
    nstacks = FIBER_MAX;
  }
  entry_fn = fn;
  for (int t = 0; t < n; t++) init_fiber(t);
  return 0;
}

#if defined(__x86_64__)
/* x86-64's fiber_start takes no argument: the scheduler sets entry_arg
 * before the first resume of each fiber. */
void fiber_set_arg(int t) { entry_arg = t; }
#else
void fiber_set_arg(int t) { (void)t; }
#endif

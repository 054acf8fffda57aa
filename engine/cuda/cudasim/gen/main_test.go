package main

import (
	"os"
	"strings"
	"testing"
)

// TestParseKernels: signatures come from the declared types, barriers are
// found through helper functions, comments and non-kernels are ignored.
func TestParseKernels(t *testing.T) {
	src := `
#define KERNEL extern "C" __global__
typedef long long i64;
static __device__ inline void reduce(double* s) { __syncthreads(); /* } { */ }
static __device__ inline void wrap(double* s) { reduce(s); }
struct Params { int a; };
// KERNEL void commented_out(int x) {}
KERNEL void plain(const float* x, float* y, int n, i64 total, float a, unsigned u, double d) {
  for (int i = 0; i < n; i++) { y[i] = x[i]; }
}
KERNEL void indirect(const struct Params* p, double* out) {
  __shared__ double s[8];
  wrap(s);
}
static __device__ int helper(int x) { return x; }
`
	ks, err := parse(src)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kernel{}
	for _, k := range ks {
		got[k.name] = k
	}
	if len(ks) != 2 {
		t.Fatalf("kernels %v, want plain and indirect", ks)
	}
	if k := got["plain"]; k.sig != "ppilfud" || k.barrier {
		t.Errorf("plain: %+v", k)
	}
	if k := got["indirect"]; k.sig != "pp" || !k.barrier {
		t.Errorf("indirect: %+v (the barrier is two calls down)", k)
	}
	if c := got["plain"].casts[3]; c != "(i64)a[3].l" {
		t.Errorf("i64 argument: %s", c)
	}
}

// TestParseRejects: a parameter type the emulator cannot decode stops the
// build, naming the kernel and the parameter.
func TestParseRejects(t *testing.T) {
	_, err := parse(`KERNEL void k(float* x, struct Params p) { }`)
	if err == nil || !strings.Contains(err.Error(), "kernel k") || !strings.Contains(err.Error(), "parameter 1") {
		t.Errorf("struct by value: %v", err)
	}
	if _, err := parse(`static int f(int x) { return x; }`); err == nil {
		t.Error("a file without kernels was accepted")
	}
}

// TestRealKernels: every kernel of kernels.cu parses, and the block
// reductions are the ones found to need the barrier.
func TestRealKernels(t *testing.T) {
	src, err := os.ReadFile("../../kernels/kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	barrier := map[string]bool{}
	for _, k := range ks {
		barrier[k.name] = k.barrier
	}
	for name, want := range map[string]bool{"bn_partial": true, "bn_bwd_partial": true, "color_u8": true,
		"im2col": false, "sgd": false, "bn_apply": false} {
		if got, ok := barrier[name]; !ok || got != want {
			t.Errorf("%s: barrier %v (found %v), want %v", name, got, ok, want)
		}
	}
}

// Kernels of the CUDA backend (package engine/cuda). Compiled to PTX on a
// build machine without the CUDA toolkit, by Debian's clang:
//
//   clang -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 \
//         -O3 -ffp-contract=off -S -o kernels.ptx kernels.cu
//
// (scripts/gpu/genptx.sh; TestPTXUpToDate checks the committed PTX when clang
// is installed). There is no CUDA header: the prelude below defines the
// attributes and reads the thread indices with clang's NVVM builtins. The
// emulator (engine/cuda/cudasim) compiles this same file for the host.
//
// Every kernel mirrors the CPU backend's arithmetic (engine/cpu.go, and
// augment/color.go for the colour kernel) operation by operation, in the
// same precision (float64 where the CPU sums in float64), and
// -ffp-contract=off keeps a·b + c from being fused, as Go does on amd64.
// Every kernel is extern "C" (unmangled names) and takes only pointers,
// 32-bit ints, 64-bit ints and floats, in the order the Go launch sites
// pass them (kernels.go lists the signatures; a test checks them against
// this PTX).

#ifdef __CUDA__
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#else
// Host build for the CUDA emulator (engine/cuda/cudasim): its prelude,
// included with -include, defines the attributes, the PTX special
// registers and __syncthreads.
#endif
#define KERNEL extern "C" __global__

typedef long long i64;

static __device__ inline int tidx() { return __nvvm_read_ptx_sreg_tid_x(); }
static __device__ inline int tidy() { return __nvvm_read_ptx_sreg_tid_y(); }
static __device__ inline int bidx() { return __nvvm_read_ptx_sreg_ctaid_x(); }
static __device__ inline int bidy() { return __nvvm_read_ptx_sreg_ctaid_y(); }
static __device__ inline int bdimx() { return __nvvm_read_ptx_sreg_ntid_x(); }
static __device__ inline i64 gtid() { return (i64)bidx() * bdimx() + tidx(); }
static __device__ inline i64 gstride() { return (i64)__nvvm_read_ptx_sreg_nctaid_x() * bdimx(); }

// FOR is a grid-stride loop over [0, n).
#define FOR(i, n) for (i64 i = gtid(); i < (i64)(n); i += gstride())

static __device__ inline float keep(float d, float m) { return m > 0.0f ? d : 0.0f; }
static __device__ inline float relu(float x) { return x > 0.0f ? x : 0.0f; }

// ---- convolution helpers ----

// im2col: one row of K·K·C per output pixel of images [n0, n0+rows/(OH·OW)),
// ordered (kh, kw, c); padding reads as 0.
KERNEL void im2col(const float* x, float* cols, int n0, int rows, int H, int W, int C,
                   int K, int stride, int pad, int OH, int OW) {
  i64 kw = (i64)K * K * C;
  FOR(idx, rows * kw) {
    i64 r = idx / kw;
    int rem = (int)(idx - r * kw);
    int kh = rem / (K * C);
    int kx = (rem / C) % K;
    int c = rem % C;
    int ow = (int)(r % OW);
    int oh = (int)((r / OW) % OH);
    i64 n = n0 + r / ((i64)OW * OH);
    int ih = oh * stride - pad + kh;
    int iw = ow * stride - pad + kx;
    float v = 0.0f;
    if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[((n * H + ih) * W + iw) * C + c];
    cols[idx] = v;
  }
}

// col2im: every input element of images [n0, n0+pix/(H·W)) gathers the
// column entries that read it (kh, then kw, ascending, like the CPU), so
// each is written once.
KERNEL void col2im(const float* cols, float* dx, int n0, int pix, int H, int W, int C, int K,
                   int stride, int pad, int OH, int OW, int accumulate) {
  i64 kw = (i64)K * K * C;
  FOR(idx, (i64)pix * C) {
    int c = (int)(idx % C);
    i64 p = idx / C;
    int iw = (int)(p % W);
    int ih = (int)((p / W) % H);
    i64 nl = p / ((i64)W * H);
    float* d = dx + ((n0 + nl) * H * W + (i64)ih * W + iw) * C + c;
    float acc = accumulate ? *d : 0.0f;
    for (int kh = 0; kh < K; kh++) {
      int t = ih + pad - kh;
      if (t < 0 || t % stride != 0) continue;
      int oh = t / stride;
      if (oh >= OH) continue;
      for (int kx = 0; kx < K; kx++) {
        int u = iw + pad - kx;
        if (u < 0 || u % stride != 0) continue;
        int ow = u / stride;
        if (ow >= OW) continue;
        i64 r = (nl * OH + oh) * OW + ow;
        acc += cols[r * kw + (kh * K + kx) * C + c];
      }
    }
    *d = acc;
  }
}

// flip_conv_weight: out[c][K−1−kh][K−1−kw][oc] = w[oc][kh][kw][c].
KERNEL void flip_conv_weight(const float* w, int oc, int k, int ch, float* out) {
  int kk = k * k;
  FOR(idx, (i64)ch * kk * oc) {
    int o = (int)(idx % oc);
    i64 q = idx / oc;
    int tt = (int)(q % kk);
    int i = (int)(q / kk);
    int t = kk - 1 - tt;
    out[idx] = w[((i64)o * kk + t) * ch + i];
  }
}

// ---- BatchNorm ----
// Statistics are reduced in two deterministic steps: bn_partial sums a
// block of rows per blockIdx.y into part (float64, [nb][2][C]), then a
// per-channel kernel adds the nb partial sums in order.

#define BN_TX 32
#define BN_TY 8

KERNEL void bn_partial(const float* x, int rows, int C, int rpb, double* part) {
  __shared__ double s1[BN_TY][BN_TX];
  __shared__ double s2[BN_TY][BN_TX];
  int c = bidx() * BN_TX + tidx();
  int r0 = bidy() * rpb;
  int r1 = r0 + rpb < rows ? r0 + rpb : rows;
  double s = 0, ss = 0;
  if (c < C) {
    for (int r = r0 + tidy(); r < r1; r += BN_TY) {
      double f = (double)x[(i64)r * C + c];
      s += f;
      ss += f * f;
    }
  }
  s1[tidy()][tidx()] = s;
  s2[tidy()][tidx()] = ss;
  __syncthreads();
  if (tidy() == 0 && c < C) {
    for (int j = 1; j < BN_TY; j++) {
      s += s1[j][tidx()];
      ss += s2[j][tidx()];
    }
    part[(i64)bidy() * 2 * C + c] = s;
    part[(i64)bidy() * 2 * C + C + c] = ss;
  }
}

// bn_train_finalize: batch mean, biased variance → InvStd; running
// statistics with the unbiased variance; scale/shift of the affine pass.
KERNEL void bn_train_finalize(const double* part, int nb, int C, int rows, const float* gamma,
                              const float* beta, float* mean, float* invstd, float* rm, float* rv,
                              float momentum, float eps, float* scale, float* shift) {
  FOR(j, C) {
    double s = 0, ss = 0;
    for (int b = 0; b < nb; b++) {
      s += part[(i64)b * 2 * C + j];
      ss += part[(i64)b * 2 * C + C + j];
    }
    double m = (double)rows;
    double mom = (double)momentum;
    double mu = s / m;
    double v = ss / m - mu * mu;
    if (v < 0) v = 0;
    double is = 1.0 / __builtin_sqrt(v + (double)eps);
    mean[j] = (float)mu;
    invstd[j] = (float)is;
    double unb = v;
    if (rows > 1) unb = v * m / (m - 1);
    rm[j] = (float)((1 - mom) * (double)rm[j] + mom * mu);
    rv[j] = (float)((1 - mom) * (double)rv[j] + mom * unb);
    double sc = (double)gamma[j] * is;
    scale[j] = (float)sc;
    shift[j] = (float)((double)beta[j] - mu * sc);
  }
}

// bn_eval_prep: scale/shift from the running statistics.
KERNEL void bn_eval_prep(const float* gamma, const float* beta, const float* rm, const float* rv,
                         float eps, int C, float* scale, float* shift) {
  FOR(j, C) {
    double is = 1.0 / __builtin_sqrt((double)rv[j] + (double)eps);
    double sc = (double)gamma[j] * is;
    scale[j] = (float)sc;
    shift[j] = (float)((double)beta[j] - (double)rm[j] * sc);
  }
}

// bn_apply: out = x·scale + shift (+ res) (then ReLU); res may be null and
// out may alias res.
KERNEL void bn_apply(const float* x, const float* scale, const float* shift, const float* res,
                     float* out, i64 total, int C, int dorelu) {
  FOR(i, total) {
    int j = (int)(i % C);
    float v = x[i] * scale[j] + shift[j];
    if (res) v = v + res[i];
    out[i] = dorelu ? relu(v) : v;
  }
}

// bn_bwd_partial: per block of rows, Σdy and Σdy·x̂ (float64), dy masked by
// the following ReLU's output when mask is not null.
KERNEL void bn_bwd_partial(const float* x, const float* dy, const float* mask, const float* mean,
                           const float* invstd, int rows, int C, int rpb, double* part) {
  __shared__ double s1[BN_TY][BN_TX];
  __shared__ double s2[BN_TY][BN_TX];
  int c = bidx() * BN_TX + tidx();
  int r0 = bidy() * rpb;
  int r1 = r0 + rpb < rows ? r0 + rpb : rows;
  double s = 0, sx = 0;
  if (c < C) {
    float mn = mean[c], iv = invstd[c];
    for (int r = r0 + tidy(); r < r1; r += BN_TY) {
      i64 i = (i64)r * C + c;
      float d = dy[i];
      if (mask) d = keep(d, mask[i]);
      s += (double)d;
      sx += (double)(d * ((x[i] - mn) * iv));
    }
  }
  s1[tidy()][tidx()] = s;
  s2[tidy()][tidx()] = sx;
  __syncthreads();
  if (tidy() == 0 && c < C) {
    for (int j = 1; j < BN_TY; j++) {
      s += s1[j][tidx()];
      sx += s2[j][tidx()];
    }
    part[(i64)bidy() * 2 * C + c] = s;
    part[(i64)bidy() * 2 * C + C + c] = sx;
  }
}

// bn_bwd_finalize: dβ = Σdy, dγ = Σdy·x̂, and the per-channel constants of
// dx: k = [γσ⁻¹ | Σdy/M | Σdy·x̂/M].
KERNEL void bn_bwd_finalize(const double* part, int nb, int C, int rows, const float* gamma,
                            const float* invstd, float* dgamma, float* dbeta, float* k) {
  FOR(j, C) {
    double s = 0, sx = 0;
    for (int b = 0; b < nb; b++) {
      s += part[(i64)b * 2 * C + j];
      sx += part[(i64)b * 2 * C + C + j];
    }
    double m = (double)rows;
    dbeta[j] = (float)s;
    dgamma[j] = (float)sx;
    k[j] = gamma[j] * invstd[j];
    k[C + j] = (float)(s / m);
    k[2 * C + j] = (float)(sx / m);
  }
}

// bn_bwd_dx: dx = γσ⁻¹·(dy − Σdy/M − x̂·Σdy·x̂/M).
KERNEL void bn_bwd_dx(const float* x, const float* dy, const float* mask, const float* mean,
                      const float* invstd, const float* k, float* dx, i64 total, int C) {
  FOR(i, total) {
    int j = (int)(i % C);
    float d = dy[i];
    if (mask) d = keep(d, mask[i]);
    dx[i] = k[j] * (d - k[C + j] - (x[i] - mean[j]) * invstd[j] * k[2 * C + j]);
  }
}

// ---- element-wise ----

KERNEL void relu_mask(float* d, const float* out, i64 n) {
  FOR(i, n) d[i] = keep(d[i], out[i]);
}

KERNEL void add_masked(float* dst, const float* src, const float* mask, i64 n) {
  FOR(i, n) {
    float v = src[i];
    if (mask) v = keep(v, mask[i]);
    dst[i] = dst[i] + v;
  }
}

// avgpool: one thread per (image, channel), float64 sum over the pixels.
KERNEL void avgpool(const float* x, int n, int hw, int c, float* out) {
  FOR(idx, (i64)n * c) {
    int j = (int)(idx % c);
    i64 i = idx / c;
    double acc = 0;
    for (int p = 0; p < hw; p++) acc += (double)x[(i * hw + p) * c + j];
    out[idx] = (float)(acc / (double)hw);
  }
}

KERNEL void avgpool_bwd(const float* dout, int n, int hw, int c, const float* mask, float* dx) {
  float inv = 1.0f / (float)hw;
  FOR(idx, (i64)n * hw * c) {
    int j = (int)(idx % c);
    i64 i = idx / ((i64)hw * c);
    dx[idx] = keep(dout[i * c + j] * inv, mask[idx]);
  }
}

KERNEL void bias_act(float* y, int rows, int cols, const float* bias, int dorelu) {
  FOR(idx, (i64)rows * cols) {
    int j = (int)(idx % cols);
    float v = y[idx] + bias[j];
    y[idx] = dorelu ? relu(v) : v;
  }
}

// colsum: one thread per column, float64 sum down the rows.
KERNEL void colsum(const float* y, int rows, int cols, float* out) {
  FOR(j, cols) {
    double acc = 0;
    for (int r = 0; r < rows; r++) acc += (double)y[(i64)r * cols + j];
    out[j] = (float)acc;
  }
}

// sgd: PyTorch's SGD with the element-wise clamp before weight decay.
KERNEL void sgd(float* p, const float* g, float* m, i64 n, float lr, float momentum, float wd,
                float clip, int first) {
  FOR(i, n) {
    float gv = g[i];
    gv = gv < -clip ? -clip : gv;
    gv = gv > clip ? clip : gv;
    float d = gv + wd * p[i];
    float mv = first ? d : momentum * m[i] + d;
    m[i] = mv;
    p[i] = p[i] - lr * mv;
  }
}

// ---- augmentation: colour operations on uint8 crops ----

// Params mirrors augment.Params (44 bytes, the offsets TestParamsLayout pins).
struct Params {
  int top, left, croph, cropw;
  unsigned char flip, jitter, gray, order[4];
  float brightness, contrast, saturation, hue;
  float angle;
};

#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f
#define COLOR_THREADS 256

static __device__ inline float clamp01(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

// color_ops applies the colour part of view P (jitter in its order,
// grayscale, the optional normalisation) to the hw pixels of o in place:
// augment.(*Augmenter).Color. The calling block owns the view; each thread
// owns the pixels p ≡ threadIdx (mod blockDim); red is the block's
// COLOR_THREADS-slot reduction scratch (contrast's mean).
static __device__ void color_ops(float* o, const struct Params* P, int hw, double* red, int normalize,
                                 float m0, float m1, float m2, float s0, float s1, float s2) {
  int t = tidx(), nt = bdimx();
  if (P->jitter) {
    for (int k = 0; k < 4; k++) {
      int op = P->order[k];
      if (op == 0 && P->brightness != 1.0f) {
        float f = P->brightness;
        for (int p = t; p < hw; p += nt)
          for (int c = 0; c < 3; c++) o[3 * p + c] = clamp01(f * o[3 * p + c]);
      } else if (op == 1 && P->contrast != 1.0f) {
        double s = 0;
        for (int p = t; p < hw; p += nt)
          s += (double)(LUMA_R * o[3 * p] + LUMA_G * o[3 * p + 1] + LUMA_B * o[3 * p + 2]);
        red[t] = s;
        __syncthreads();
        for (int w = nt / 2; w > 0; w /= 2) {
          if (t < w) red[t] += red[t + w];
          __syncthreads();
        }
        float m = (float)(red[0] / (double)hw);
        __syncthreads();
        float a = P->contrast, b = (float)(1.0 - (double)P->contrast);
        float bm = b * m;
        for (int p = t; p < hw; p += nt)
          for (int c = 0; c < 3; c++) o[3 * p + c] = clamp01(a * o[3 * p + c] + bm);
      } else if (op == 2 && P->saturation != 1.0f) {
        float a = P->saturation, b = (float)(1.0 - (double)P->saturation);
        for (int p = t; p < hw; p += nt) {
          float r = o[3 * p], g = o[3 * p + 1], bl = o[3 * p + 2];
          float l = b * (LUMA_R * r + LUMA_G * g + LUMA_B * bl);
          o[3 * p] = clamp01(a * r + l);
          o[3 * p + 1] = clamp01(a * g + l);
          o[3 * p + 2] = clamp01(a * bl + l);
        }
      } else if (op == 3 && P->hue != 0.0f) {
        float s6 = 6.0f * P->hue;
        for (int p = t; p < hw; p += nt) {
          float r = o[3 * p], g = o[3 * p + 1], b = o[3 * p + 2];
          float maxc = r, minc = r;
          if (g > maxc) maxc = g; else if (g < minc) minc = g;
          if (b > maxc) maxc = b; else if (b < minc) minc = b;
          float c = maxc - minc;
          if (c == 0.0f) continue;
          float h6;
          if (maxc == r) h6 = (g - b) / c;
          else if (maxc == g) h6 = 2.0f + (b - r) / c;
          else h6 = 4.0f + (r - g) / c;
          h6 = h6 + s6;
          if (h6 < 0.0f) h6 = h6 + 6.0f;
          else if (h6 >= 6.0f) h6 = h6 - 6.0f;
          int sector = (int)h6;
          float f = h6 - (float)sector;
          float cf = c * f;
          float q = maxc - cf, tt = minc + cf;
          float R, G, B;
          switch (sector) {
            case 0: R = maxc; G = tt; B = minc; break;
            case 1: R = q; G = maxc; B = minc; break;
            case 2: R = minc; G = maxc; B = tt; break;
            case 3: R = minc; G = q; B = maxc; break;
            case 4: R = tt; G = minc; B = maxc; break;
            default: R = maxc; G = minc; B = q; break;
          }
          o[3 * p] = R;
          o[3 * p + 1] = G;
          o[3 * p + 2] = B;
        }
      }
    }
  }
  if (P->gray) {
    for (int p = t; p < hw; p += nt) {
      float l = LUMA_R * o[3 * p] + LUMA_G * o[3 * p + 1] + LUMA_B * o[3 * p + 2];
      o[3 * p] = l;
      o[3 * p + 1] = l;
      o[3 * p + 2] = l;
    }
  }
  if (normalize) {
    for (int p = t; p < hw; p += nt) {
      o[3 * p] = (o[3 * p] - m0) / s0;
      o[3 * p + 1] = (o[3 * p + 1] - m1) / s1;
      o[3 * p + 2] = (o[3 * p + 2] - m2) / s2;
    }
  }
}

// color_u8: one block of COLOR_THREADS per view. out = x8/255, then
// color_ops: augment.(*Augmenter).Color on float32(x8)/255. Each thread
// owns the pixels p ≡ threadIdx (mod blockDim), so only the contrast
// reduction needs the block to synchronise.
KERNEL void color_u8(const unsigned char* x8, const struct Params* params, float* out, int hw,
                     int normalize, float m0, float m1, float m2, float s0, float s1, float s2) {
  __shared__ double red[COLOR_THREADS];
  int v = bidx();
  const unsigned char* src = x8 + (i64)v * hw * 3;
  float* o = out + (i64)v * hw * 3;
  int t = tidx(), nt = bdimx();
  for (int p = t; p < hw; p += nt) {
    o[3 * p] = (float)src[3 * p] / 255.0f;
    o[3 * p + 1] = (float)src[3 * p + 1] / 255.0f;
    o[3 * p + 2] = (float)src[3 * p + 2] / 255.0f;
  }
  color_ops(o, params + v, hw, red, normalize, m0, m1, m2, s0, s1, s2);
}

// ---- augmentation: geometry on uint8 sources (the pipeline) ----

#define AUG_THREADS 256

// aug_weights writes the resampling weights of output o for a crop of in
// samples resized to out (augment's taps.weights) into wt and returns the
// first source index; *cnt receives the number of weights.
static __device__ int aug_weights(int in, int out, int o, int interp, double* wt, int* cnt) {
  if (interp == 1) {  // Bilinear: torch upsample_bilinear2d, in float32
    float scale = (float)in / (float)out;
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int x0 = (int)src;
    float l1 = src - (float)x0;
    float l0 = 1.0f - l1;
    if (x0 >= in - 1) {
      wt[0] = (double)l0 + (double)l1;
      *cnt = 1;
      return in - 1;
    }
    wt[0] = (double)l0;
    wt[1] = (double)l1;
    *cnt = 2;
    return x0;
  }
  // BilinearAntialias: PIL's triangle filter, support widening with the
  // downscale factor, in float64.
  double scale = (double)in / (double)out;
  double fscale = scale > 1.0 ? scale : 1.0;
  double support = fscale;
  double center = ((double)o + 0.5) * scale;
  double ss = 1.0 / fscale;
  int xmin = (int)(center - support + 0.5);
  if (xmin < 0) xmin = 0;
  int xmax = (int)(center + support + 0.5);
  if (xmax > in) xmax = in;
  double sum = 0;
  int n = xmax - xmin;
  for (int x = 0; x < n; x++) {
    double v = ((double)(x + xmin) - center + 0.5) * ss;
    if (v < 0) v = -v;
    double w = v < 1.0 ? 1.0 - v : 0.0;
    wt[x] = w;
    sum += w;
  }
  if (sum != 0)
    for (int x = 0; x < n; x++) wt[x] /= sum;
  *cnt = n;
  return xmin;
}

// augment_src8: the geometric and colour augmentation of views from uint8
// sources, one block of AUG_THREADS per view: row r = v·N + i of the batch
// reads source image i (N = nimg) of src (slots of sh×sw×3 bytes, row
// stride sw·3; the crop box in Params is relative to the slot's origin) and
// writes an outH×outW×3 float32 view into out. The taps are built as
// augment's taps.build builds them (weights, trimming, the window of n
// samples, the flip) into the view's part of scratch (per view
// (outW+outH)·(12·maxp + 12) bytes rounded up to 16), then every output pixel is the
// horizontal pass (two accumulators beyond two taps, as the CPU) followed
// by the vertical pass, then color_ops. Only the crop box is read, so a
// slot may hold the whole source image or just the box both views need.
KERNEL void augment_src8(const unsigned char* src, int nimg, int sh, int sw, const struct Params* params,
                         float* out, int outH, int outW, int interp, int maxp, unsigned char* scratch,
                         int normalize, float m0, float m1, float m2, float s0, float s1, float s2) {
  __shared__ double red[COLOR_THREADS];
  __shared__ int ns[2];
  int v = bidx();
  int t = tidx(), nt = bdimx();
  const struct Params* P = params + v;
  const unsigned char* img = src + (i64)(v % nimg) * sh * sw * 3;
  int stride = sw * 3;
  int na = outW + outH;  // taps of both axes: x first, then y
  // per view (outW+outH)·(12·maxp + 12) bytes, rounded up to 16 so the
  // doubles at its start stay aligned whatever the view size
  i64 vbytes = ((i64)na * (12 * maxp + 12) + 15) / 16 * 16;
  unsigned char* sc = scratch + (i64)v * vbytes;
  double* wt = (double*)sc;
  float* w = (float*)(sc + (i64)na * maxp * 8);
  int* start = (int*)(sc + (i64)na * maxp * 12);
  int* fc = start + na;  // (first, count) per output
  int* cn = fc + na;
  for (int j = t; j < na; j += nt) {
    int xa = j < outW;
    int in = xa ? P->cropw : P->croph, out = xa ? outW : outH, o = xa ? j : j - outW;
    double* row = wt + (i64)j * maxp;
    int cnt;
    int first = aug_weights(in, out, o, interp, row, &cnt);
    while (cnt > 1 && row[0] == 0) {
      for (int k = 0; k + 1 < cnt; k++) row[k] = row[k + 1];
      first++;
      cnt--;
    }
    while (cnt > 1 && row[cnt - 1] == 0) cnt--;
    fc[j] = first;
    cn[j] = cnt;
  }
  __syncthreads();
  if (t == 0) {
    int nx = 1, ny = 1;
    for (int j = 0; j < outW; j++) nx = cn[j] > nx ? cn[j] : nx;
    for (int j = outW; j < na; j++) ny = cn[j] > ny ? cn[j] : ny;
    ns[0] = nx < P->cropw ? nx : P->cropw;
    ns[1] = ny < P->croph ? ny : P->croph;
  }
  __syncthreads();
  for (int j = t; j < na; j += nt) {
    int xa = j < outW;
    int in = xa ? P->cropw : P->croph, out = xa ? outW : outH, o = xa ? j : j - outW;
    int n = ns[xa ? 0 : 1], base = xa ? 0 : outW;
    int first = fc[j], cnt = cn[j];
    int s = first < in - n ? first : in - n;
    if (s < 0) s = 0;
    int d = (xa && P->flip) ? out - 1 - o : o;
    float* r = w + (i64)(base + d) * maxp;
    for (int k = 0; k < n; k++) r[k] = 0.0f;
    for (int k = 0; k < cnt; k++) r[first + k - s] += (float)wt[(i64)j * maxp + k];
    start[base + d] = s + (xa ? P->left : P->top);
  }
  __syncthreads();
  int nx = ns[0], ny = ns[1];
  const float inv255 = 1.0f / 255.0f;
  float* o = out + (i64)v * outH * outW * 3;
  int hw = outH * outW;
  for (int p = t; p < hw; p += nt) {
    int y = p / outW, x = p % outW;
    const float* wx = w + (i64)x * maxp;
    const float* wy = w + (i64)(outW + y) * maxp;
    int sx = start[x], sy = start[outW + y];
    for (int c = 0; c < 3; c++) {
      float acc = 0.0f;
      for (int ky = 0; ky < ny; ky++) {
        const unsigned char* q = img + (i64)(sy + ky) * stride + sx * 3 + c;
        float h;
        if (nx == 2) {
          h = wx[0] * (float)q[0] + wx[1] * (float)q[3];
        } else {
          float a0 = 0.0f, a1 = 0.0f;
          int k = 0;
          for (; k + 1 < nx; k += 2) {
            a0 += wx[k] * (float)q[3 * k];
            a1 += wx[k + 1] * (float)q[3 * k + 3];
          }
          if (k < nx) a0 += wx[k] * (float)q[3 * k];
          h = a0 + a1;
        }
        float wk = wy[ky] * inv255;  // the CPU scales the weights, not the sum
        acc = ky == 0 ? wk * h : acc + wk * h;
      }
      o[3 * p + c] = acc;
    }
  }
  __syncthreads();
  color_ops(o, P, hw, red, normalize, m0, m1, m2, s0, s1, s2);
}

// ---- the losses (engine/loss.go), in float64 ----

// clang compiles without libdevice (-nocudalib), so exp and log are written
// here: Cody–Waite range reduction and a Taylor/atanh series, accurate to a
// few ulp, which is far below the 1e-4 the losses are checked to.
union dbits {
  double d;
  i64 i;
};

static __device__ double ldexp2(double x, int k) {
  // x·2^k for k in [-2044, 2046], in two exact steps.
  int k1 = k / 2, k2 = k - k / 2;
  union dbits a, b;
  a.i = (i64)(k1 + 1023) << 52;
  b.i = (i64)(k2 + 1023) << 52;
  return x * a.d * b.d;
}

static __device__ double dexp(double x) {
  if (x != x) return x;
  if (x > 709.782712893384) return 1.0 / 0.0;
  if (x < -745.2) return 0.0;
  double kf = x * 1.4426950408889634 + (x < 0 ? -0.5 : 0.5);
  int k = (int)kf;
  double r = x - (double)k * 6.93147180369123816490e-01 - (double)k * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return ldexp2(p, k);
}

static __device__ double dlog(double x) {
  if (x != x || x < 0) return 0.0 / 0.0;
  if (x == 0) return -1.0 / 0.0;
  if (x > 1.7976931348623157e308) return x;
  int e = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: scale up by 2^54
    x *= 18014398509481984.0;
    e = -54;
  }
  union dbits u;
  u.d = x;
  e += (int)((u.i >> 52) & 0x7ff) - 1023;
  u.i = (u.i & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
  double m = u.d;  // [1, 2)
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  double p = 1.0 / 23.0;
  p = p * s2 + 1.0 / 21.0;
  p = p * s2 + 1.0 / 19.0;
  p = p * s2 + 1.0 / 17.0;
  p = p * s2 + 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  p = p * s2 + 1.0;
  double lm = 2.0 * s * p;
  return (double)e * 6.93147180369123816490e-01 + ((double)e * 1.90821492927058770002e-10 + lm);
}

#define LOSS_THREADS 256

// block_sum returns the sum of v over the block (every thread gets it);
// red holds LOSS_THREADS doubles.
static __device__ double block_sum(double v, double* red) {
  int t = tidx();
  red[t] = v;
  __syncthreads();
  for (int w = bdimx() / 2; w > 0; w /= 2) {
    if (t < w) red[t] += red[t + w];
    __syncthreads();
  }
  double s = red[0];
  __syncthreads();
  return s;
}

static __device__ double block_max(double v, double* red) {
  int t = tidx();
  red[t] = v;
  __syncthreads();
  for (int w = bdimx() / 2; w > 0; w /= 2) {
    if (t < w && red[t + w] > red[t]) red[t] = red[t + w];
    __syncthreads();
  }
  double s = red[0];
  __syncthreads();
  return s;
}

// cauchy_fwd: one block per anchor i of the n×d views z (rows i and
// (i+n/2) mod n positives): q_ik = 1/(1+‖z_i−z_k‖²), the anchor's loss
// −log q_ip + log Σ_{k≠i} q_ik into losses[i], and row i of a, the
// coefficients of (z_i − z_k) (engine's cauchyForwardRows).
KERNEL void cauchy_fwd(const float* z, int n, int d, double* a, double* losses) {
  __shared__ double red[LOSS_THREADS];
  __shared__ double qp;
  int i = bidx(), t = tidx(), nt = bdimx();
  int p = (i + n / 2) % n;
  double* row = a + (i64)i * n;
  const float* zi = z + (i64)i * d;
  double s = 0;
  for (int k = t; k < n; k += nt) {
    if (k == i) {
      row[k] = 0;
      continue;
    }
    const float* zk = z + (i64)k * d;
    double d2 = 0;
    for (int c = 0; c < d; c++) {
      double u = (double)(zi[c] - zk[c]);
      d2 += u * u;
    }
    double q = 1.0 / (1.0 + d2);
    row[k] = q;
    s += q;
  }
  s = block_sum(s, red);
  if (t == 0) {
    qp = row[p];
    losses[i] = -dlog(qp) + dlog(s);
  }
  __syncthreads();
  for (int k = t; k < n; k += nt) row[k] = -row[k] * row[k] / s;
  __syncthreads();
  if (t == 0) row[p] += qp;
}

// cauchy_bwd: block r, one thread per column: dL/dz_r =
// (2/n) Σ_k (a_rk + a_kr)(z_r − z_k), summed over k in order as the CPU.
KERNEL void cauchy_bwd(const float* z, int n, int d, const double* a, float* dz) {
  int r = bidx();
  const float* zr = z + (i64)r * d;
  for (int c = tidx(); c < d; c += bdimx()) {
    double g = 0;
    for (int k = 0; k < n; k++) {
      double cf = a[(i64)r * n + k] + a[(i64)k * n + r];
      if (cf == 0) continue;
      g += cf * (double)(zr[c] - z[(i64)k * d + c]);
    }
    dz[(i64)r * d + c] = (float)(2 * g / (double)n);
  }
}

// loss_mean: out[0] = mean of losses[0..n), summed in order (one thread).
KERNEL void loss_mean(const double* losses, int n, double* out) {
  if (gtid() != 0) return;
  double l = 0;
  for (int i = 0; i < n; i++) l += losses[i];
  out[0] = l / (double)n;
}

// cos_norm: zn = z/max(‖z‖, 1e-12) per row, in float64, and the norms.
KERNEL void cos_norm(const float* z, int n, int d, double* zn, double* norms) {
  FOR(i, n) {
    double s = 0;
    for (int c = 0; c < d; c++) s += (double)z[i * d + c] * (double)z[i * d + c];
    double nr = __builtin_sqrt(s);
    if (nr < 1e-12) nr = 1e-12;
    norms[i] = nr;
    for (int c = 0; c < d; c++) zn[i * d + c] = (double)z[i * d + c] / nr;
  }
}

// cos_fwd: block per anchor i: logits ẑ_i·ẑ_k/τ, the anchor's loss
// −l_ip + logsumexp_{k≠i} l_ik, and row i of b = softmax − [k = p]
// (engine's cosineForwardRows).
KERNEL void cos_fwd(const double* zn, int n, int d, float tau, double* b, double* losses) {
  __shared__ double red[LOSS_THREADS];
  __shared__ double lse;
  int i = bidx(), t = tidx(), nt = bdimx();
  int p = (i + n / 2) % n;
  double* row = b + (i64)i * n;
  double ta = (double)tau;
  double mx = -1.0 / 0.0;
  for (int k = t; k < n; k += nt) {
    if (k == i) continue;
    double s = 0;
    for (int c = 0; c < d; c++) s += zn[(i64)i * d + c] * zn[(i64)k * d + c];
    row[k] = s / ta;
    if (row[k] > mx) mx = row[k];
  }
  mx = block_max(mx, red);
  double se = 0;
  for (int k = t; k < n; k += nt)
    if (k != i) se += dexp(row[k] - mx);
  se = block_sum(se, red);
  if (t == 0) {
    lse = mx + dlog(se);
    losses[i] = -row[p] + lse;
  }
  __syncthreads();
  for (int k = t; k < n; k += nt) row[k] = k == i ? 0.0 : dexp(row[k] - lse);
  __syncthreads();
  if (t == 0) row[p] -= 1.0;
}

// cos_bwd: block r: g = Σ_k (b_rk + b_kr) ẑ_k / (τ·n), then through the
// normalisation (g − ẑ_r(ẑ_r·g))/‖z_r‖ (g/‖z_r‖ when the norm was
// clamped). g is the row's part of gs (n×d doubles).
KERNEL void cos_bwd(const double* zn, const double* norms, int n, int d, float tau, const double* b,
                    double* gs, float* dz) {
  __shared__ double red[LOSS_THREADS];
  int r = bidx(), t = tidx(), nt = bdimx();
  double* g = gs + (i64)r * d;
  double ta = (double)tau;
  double dot = 0;
  for (int c = t; c < d; c += nt) {
    double acc = 0;
    for (int k = 0; k < n; k++) acc += (b[(i64)r * n + k] + b[(i64)k * n + r]) * zn[(i64)k * d + c];
    acc /= ta * (double)n;
    g[c] = acc;
    dot += acc * zn[(i64)r * d + c];
  }
  dot = block_sum(dot, red);
  double nr = norms[r];
  int clamped = nr <= 1e-12;
  for (int c = t; c < d; c += nt) {
    if (clamped) dz[(i64)r * d + c] = (float)(g[c] / nr);
    else dz[(i64)r * d + c] = (float)((g[c] - zn[(i64)r * d + c] * dot) / nr);
  }
}

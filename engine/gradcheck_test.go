package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference checks of every layer's backward on tiny shapes. Each
// layer's output y is reduced to f = Σ r⊙y with a fixed random r, so the
// analytic gradients are the backward pass fed with dy = r; central
// differences of f (accumulated in float64) must agree to fdTol.
const (
	fdEps = 1e-2
	fdTol = 2e-3
)

func randBuf(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// fdCheck perturbs every element of v (≤ 60 chosen at random when larger),
// re-evaluates f and compares with the analytic gradient g.
func fdCheck(t *testing.T, name string, v, g []float32, f func() float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, uint64(len(v))))
	idx := make([]int, 0, 60)
	if len(v) <= 60 {
		for i := range v {
			idx = append(idx, i)
		}
	} else {
		for len(idx) < 60 {
			idx = append(idx, rng.IntN(len(v)))
		}
	}
	var num, den float64
	for _, i := range idx {
		old := v[i]
		v[i] = old + fdEps
		fp := f()
		v[i] = old - fdEps
		fm := f()
		v[i] = old
		fd := (fp - fm) / (2 * fdEps)
		num += (fd - float64(g[i])) * (fd - float64(g[i]))
		den += fd * fd
	}
	e := math.Sqrt(num / math.Max(den, 1e-30))
	if e > fdTol {
		t.Errorf("%s: finite-difference relative error %.3g > %g", name, e, fdTol)
	} else {
		t.Logf("%-28s relative error %.2g", name, e)
	}
}

func TestGradCheckConv(t *testing.T) {
	for _, gemm := range []string{"go", "auto"} {
		be := newCPU(t, gemm)
		for _, c := range []struct {
			name                string
			h, c, oc, k, s, pad int
		}{
			{"conv3x3 s1", 5, 3, 4, 3, 1, 1},
			{"conv3x3 s2", 6, 2, 3, 3, 2, 1},
			{"conv3x3 s2 odd", 5, 2, 3, 3, 2, 1},
			{"conv1x1 s1 (direct)", 4, 3, 5, 1, 1, 0},
			{"conv1x1 s2", 6, 3, 2, 1, 2, 0},
		} {
			rng := rand.New(rand.NewPCG(1, 2))
			n := 2
			g := NewConvGeom(c.h, c.h, c.c, c.oc, c.k, c.s, c.pad)
			l := &convLayer{g: g, w: &Param{Shape: []int{c.oc, c.c, c.k, c.k}, conv: true}}
			l.w.Data = HostBuf(randBuf(rng, c.oc*c.k*c.k*c.c, 0.5))
			l.w.Grad = be.Alloc(l.w.Data.Len())
			x := HostBuf(randBuf(rng, n*c.h*c.h*c.c, 1))
			y := be.Alloc(n * g.OH * g.OW * c.oc)
			r := randBuf(rng, y.Len(), 1)
			// A tiny im2col limit forces one image per chunk, covering the
			// chunked accumulation of the weight gradient.
			gt := l.transposeGeom()
			ws := &workspace{limit: 1, cols: be.Alloc(max(g.OH*g.OW*g.ColWidth(), gt.OH*gt.OW*gt.ColWidth())),
				wflip: be.Alloc(l.w.Data.Len())}
			f := func() float64 {
				l.forward(be, x, n, y, ws)
				return dot64(y.host, r)
			}
			dx := be.Alloc(x.Len())
			f()
			l.backward(be, x, HostBuf(r), n, dx, false, ws)
			fdCheck(t, gemm+" "+c.name+" dW", l.w.Data.host, l.w.Grad.host, f)
			fdCheck(t, gemm+" "+c.name+" dx", x.host, dx.host, f)
			// accumulate=true adds to what is there.
			acc := be.Alloc(x.Len())
			for i := range acc.host {
				acc.host[i] = 1
			}
			l.backward(be, x, HostBuf(r), n, acc, true, ws)
			for i := range acc.host {
				if math.Abs(float64(acc.host[i]-1-dx.host[i])) > 1e-5 {
					t.Fatalf("%s: accumulate mismatch at %d", c.name, i)
				}
			}
		}
	}
}

func TestGradCheckBatchNorm(t *testing.T) {
	be := newCPU(t, "go")
	for _, mode := range []string{"", "+residual", "+residual+relu"} {
		withRes, relu := mode != "", mode == "+residual+relu"
		rng := rand.New(rand.NewPCG(3, 4))
		rows, c := 37, 3
		l := &batchNorm{c: c, gamma: &Param{}, beta: &Param{},
			runMean: be.Alloc(c), runVar: be.Alloc(c), mean: be.Alloc(c), invStd: be.Alloc(c)}
		l.gamma.Data, l.beta.Data = HostBuf(randBuf(rng, c, 1)), HostBuf(randBuf(rng, c, 1))
		l.gamma.Grad, l.beta.Grad = be.Alloc(c), be.Alloc(c)
		x := HostBuf(randBuf(rng, rows*c, 2))
		for i := range x.host {
			x.host[i] += 3 // a mean far from zero exercises the centring
		}
		var res Buf
		if withRes {
			res = HostBuf(randBuf(rng, rows*c, 1))
		}
		out := be.Alloc(rows * c)
		r := randBuf(rng, rows*c, 1)
		f := func() float64 {
			l.forward(be, x, rows, res, relu, true, out)
			return dot64(out.host, r)
		}
		f()
		dx := be.Alloc(rows * c)
		var mask Buf
		if relu {
			mask = out // the ReLU backward fused into the BN backward
		}
		l.backward(be, x, rows, HostBuf(r), mask, dx)
		name := "batchnorm" + mode
		fdCheck(t, name+" dx", x.host, dx.host, f)
		fdCheck(t, name+" dγ", l.gamma.Data.host, l.gamma.Grad.host, f)
		fdCheck(t, name+" dβ", l.beta.Data.host, l.beta.Grad.host, f)
	}
}

// TestBatchNormStatistics checks the running update: biased variance for
// normalisation, unbiased for the running variance, momentum 0.1; and eval
// mode using the running statistics.
func TestBatchNormStatistics(t *testing.T) {
	be := newCPU(t, "go")
	x := HostBuf([]float32{1, 10, 2, 20, 3, 30, 6, 40}) // 4 rows × 2 channels
	l := &batchNorm{c: 2, gamma: &Param{Data: HostBuf([]float32{1, 1})}, beta: &Param{Data: HostBuf([]float32{0, 0})},
		runMean: HostBuf([]float32{0, 0}), runVar: HostBuf([]float32{1, 1}), mean: be.Alloc(2), invStd: be.Alloc(2)}
	out := be.Alloc(8)
	l.forward(be, x, 4, Buf{}, false, true, out)
	// channel 0: mean 3, biased var 3.5, unbiased 14/3
	if math.Abs(float64(l.runMean.host[0])-0.3) > 1e-6 || math.Abs(float64(l.runVar.host[0])-(0.9+0.1*14.0/3)) > 1e-6 {
		t.Errorf("running stats %v %v", l.runMean.host, l.runVar.host)
	}
	if want := (1 - 3) / math.Sqrt(3.5+1e-5); math.Abs(float64(out.host[0])-want) > 1e-6 {
		t.Errorf("normalised %g, want %g", out.host[0], want)
	}
	if l.tracked != 1 {
		t.Errorf("num_batches_tracked %d", l.tracked)
	}
	l.forward(be, x, 4, Buf{}, true, false, out)
	want := (1 - 0.3) / math.Sqrt(0.9+0.1*14.0/3+1e-5)
	if math.Abs(float64(out.host[0])-want) > 1e-6 || l.tracked != 1 {
		t.Errorf("eval output %g, want %g", out.host[0], want)
	}
}

func TestGradCheckLinearPoolReLU(t *testing.T) {
	be := newCPU(t, "go")
	rng := rand.New(rand.NewPCG(5, 6))
	n, in, out := 3, 4, 5
	l := &linear{in: in, out: out, w: &Param{}, b: &Param{}}
	l.w.Data, l.b.Data = HostBuf(randBuf(rng, in*out, 1)), HostBuf(randBuf(rng, out, 1))
	l.w.Grad, l.b.Grad = be.Alloc(in*out), be.Alloc(out)
	x := HostBuf(randBuf(rng, n*in, 1))
	y := be.Alloc(n * out)
	r := randBuf(rng, n*out, 1)
	f := func() float64 { l.forward(be, x, n, y, false); return dot64(y.host, r) }
	f()
	dx := be.Alloc(n * in)
	l.backward(be, x, HostBuf(r), n, dx, Buf{})
	fdCheck(t, "linear dW", l.w.Data.host, l.w.Grad.host, f)
	fdCheck(t, "linear db", l.b.Data.host, l.b.Grad.host, f)
	fdCheck(t, "linear dx", x.host, dx.host, f)

	// Global average pool after a ReLU: the mask passed to the backward.
	hw, c := 6, 3
	a := HostBuf(randBuf(rng, n*hw*c, 1))
	relu := be.Alloc(a.Len())
	pooled := be.Alloc(n * c)
	rp := randBuf(rng, n*c, 1)
	fp := func() float64 {
		for i, v := range a.host {
			relu.host[i] = float32(math.Max(float64(v), 0))
		}
		be.AvgPool(relu, n, hw, c, pooled)
		return dot64(pooled.host, rp)
	}
	fp()
	da := be.Alloc(a.Len())
	be.AvgPoolBackward(HostBuf(rp), n, hw, c, relu, da)
	fdCheck(t, "relu+avgpool dx", a.host, da.host, fp)

	// Linear + ReLU (the head's hidden layer) through BiasAct and ReLUMask.
	fr := func() float64 { l.forward(be, x, n, y, true); return dot64(y.host, r) }
	fr()
	dy := append([]float32(nil), r...)
	be.ReLUMask(HostBuf(dy), y, len(dy))
	l.backward(be, x, HostBuf(dy), n, dx, Buf{})
	fdCheck(t, "linear+relu dx", x.host, dx.host, fr)
}

func TestGradCheckLosses(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	n, d := 8, 3
	z := randBuf(rng, n*d, 1)
	dz := make([]float32, n*d)
	CauchyInfoNCE(z, n, d, dz)
	fdCheck(t, "Cauchy InfoNCE dz", z, dz, func() float64 { l, _ := CauchyInfoNCE(z, n, d, nil); return l })
	CosineInfoNCE(z, n, d, 0.5, dz)
	fdCheck(t, "cosine InfoNCE dz", z, dz, func() float64 { l, _ := CosineInfoNCE(z, n, d, 0.5, nil); return l })
}

package engine

import (
	"fmt"
	"math"
	"sync"
)

// checkPairs validates a stacked two-view batch.
func checkPairs(z []float32, n, d int, dz []float32) error {
	if n < 2 || n%2 != 0 {
		return fmt.Errorf("engine: loss needs an even number ≥ 2 of views, got %d", n)
	}
	if d < 1 || len(z) != n*d {
		return fmt.Errorf("engine: loss: %d values for %d×%d", len(z), n, d)
	}
	if dz != nil && len(dz) != n*d {
		return fmt.Errorf("engine: loss: gradient has %d values, want %d", len(dz), n*d)
	}
	return nil
}

// parallelRows runs fn over [0,n) on up to 2 goroutines per available
// core share; loss matrices are small next to the network.
func parallelRows(n int, fn func(lo, hi int)) {
	const workers = 2
	if n < 64 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := step; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	fn(0, step)
	wg.Wait()
}

// CauchyInfoNCE is t-SimCNE's loss: z holds n = 2N views (rows i and i+N are
// positives, d columns); q(x,y) = 1/(1+‖x−y‖²) and
// L = (1/n) Σ_i [−log q(i, i⁺) + log Σ_{k≠i} q(i,k)].
// Squared distances are summed directly (never via sqrt), in float64.
// If dz is non-nil it receives dL/dz.
func CauchyInfoNCE(z []float32, n, d int, dz []float32) (float64, error) {
	return cauchyInfoNCE(z, n, d, dz, nil)
}

// lossScratch holds the n×n coefficient matrix and per-anchor losses so a
// training loop does not allocate them every step.
type lossScratch struct{ a, losses []float64 }

func (s *lossScratch) get(n int) ([]float64, []float64) {
	if s == nil {
		return make([]float64, n*n), make([]float64, n)
	}
	if len(s.a) < n*n {
		s.a = make([]float64, n*n)
		s.losses = make([]float64, n)
	}
	return s.a[:n*n], s.losses[:n]
}

func cauchyInfoNCE(z []float32, n, d int, dz []float32, sc *lossScratch) (float64, error) {
	if err := checkPairs(z, n, d, dz); err != nil {
		return 0, err
	}
	half := n / 2
	// a[i][k] is the coefficient of (z_i − z_k) in ∂L_i/∂z_i / 2:
	// q_ip·[k=p] − P_ik·q_ik with P_ik = q_ik/S_i.
	a, losses := sc.get(n)
	parallelRows(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := (i + half) % n
			row := a[i*n : (i+1)*n]
			zi := z[i*d : (i+1)*d]
			var s float64
			for k := 0; k < n; k++ {
				if k == i {
					row[k] = 0
					continue
				}
				zk := z[k*d : (k+1)*d]
				var d2 float64
				for j, v := range zi {
					t := float64(v - zk[j])
					d2 += t * t
				}
				q := 1 / (1 + d2)
				row[k] = q
				s += q
			}
			qp := row[p]
			losses[i] = -math.Log(qp) + math.Log(s)
			for k := range row {
				row[k] = -row[k] * row[k] / s
			}
			row[p] += qp
		}
	})
	var l float64
	for _, v := range losses {
		l += v
	}
	l /= float64(n)
	if dz != nil {
		// ∂L/∂z_j = (2/n) Σ_k (a_jk + a_kj)(z_j − z_k).
		parallelRows(n, func(lo, hi int) {
			g := make([]float64, d)
			for j := lo; j < hi; j++ {
				clear(g)
				zj := z[j*d : (j+1)*d]
				for k := 0; k < n; k++ {
					c := a[j*n+k] + a[k*n+j]
					if c == 0 {
						continue
					}
					zk := z[k*d : (k+1)*d]
					for t, v := range zj {
						g[t] += c * float64(v-zk[t])
					}
				}
				out := dz[j*d : (j+1)*d]
				for t := range out {
					out[t] = float32(2 * g[t] / float64(n))
				}
			}
		})
	}
	return l, nil
}

// CosineInfoNCE is SimCLR's loss (NT-Xent): z rows are L2-normalised (eps
// 1e-12), logits are cosine/τ, and each anchor's positive is scored against
// the other n−1 views with a log-sum-exp.
func CosineInfoNCE(z []float32, n, d int, tau float64, dz []float32) (float64, error) {
	return cosineInfoNCE(z, n, d, tau, dz, nil)
}

func cosineInfoNCE(z []float32, n, d int, tau float64, dz []float32, sc *lossScratch) (float64, error) {
	if err := checkPairs(z, n, d, dz); err != nil {
		return 0, err
	}
	if !(tau > 0) {
		return 0, fmt.Errorf("engine: cosine loss: temperature %g ≤ 0", tau)
	}
	half := n / 2
	zn := make([]float64, n*d)
	norms := make([]float64, n)
	for i := 0; i < n; i++ {
		var s float64
		for _, v := range z[i*d : (i+1)*d] {
			s += float64(v) * float64(v)
		}
		nr := math.Max(math.Sqrt(s), 1e-12)
		norms[i] = nr
		for j, v := range z[i*d : (i+1)*d] {
			zn[i*d+j] = float64(v) / nr
		}
	}
	// b[i][k] = softmax_ik − [k = p], the gradient of L_i w.r.t. logit l_ik.
	b, losses := sc.get(n)
	parallelRows(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := (i + half) % n
			row := b[i*n : (i+1)*n]
			mx := math.Inf(-1)
			for k := 0; k < n; k++ {
				if k == i {
					continue
				}
				var s float64
				for j := 0; j < d; j++ {
					s += zn[i*d+j] * zn[k*d+j]
				}
				row[k] = s / tau
				mx = math.Max(mx, row[k])
			}
			var se float64
			for k := 0; k < n; k++ {
				if k != i {
					se += math.Exp(row[k] - mx)
				}
			}
			lse := mx + math.Log(se)
			losses[i] = -row[p] + lse
			for k := 0; k < n; k++ {
				if k == i {
					row[k] = 0
				} else {
					row[k] = math.Exp(row[k] - lse)
				}
			}
			row[p]--
		}
	})
	var l float64
	for _, v := range losses {
		l += v
	}
	l /= float64(n)
	if dz != nil {
		parallelRows(n, func(lo, hi int) {
			g := make([]float64, d)
			for j := lo; j < hi; j++ {
				clear(g)
				for k := 0; k < n; k++ {
					c := b[j*n+k] + b[k*n+j]
					for t := 0; t < d; t++ {
						g[t] += c * zn[k*d+t]
					}
				}
				// Through the normalisation: (g − ẑ(ẑ·g))/‖z‖ (g/eps when clamped).
				var dot float64
				for t := 0; t < d; t++ {
					g[t] /= tau * float64(n)
					dot += g[t] * zn[j*d+t]
				}
				nr := norms[j]
				clamped := nr <= 1e-12
				for t := 0; t < d; t++ {
					if clamped {
						dz[j*d+t] = float32(g[t] / nr)
					} else {
						dz[j*d+t] = float32((g[t] - zn[j*d+t]*dot) / nr)
					}
				}
			}
		})
	}
	return l, nil
}

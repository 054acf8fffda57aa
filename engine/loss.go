package engine

import (
	"fmt"
	"math"
	"sync"

	"github.com/tsimcne/tsimcne-go/engine/blas"
	"github.com/tsimcne/tsimcne-go/internal/workpool"
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

// lossJob holds the operands and scratch of one loss evaluation. The row
// loops are top-level functions reading it, so handing half the rows to the
// loss worker allocates nothing (a closure over the operands would escape).
type lossJob struct {
	z, dz     []float32
	n, d      int
	tau       float64
	a, losses []float64    // n×n coefficients, per-anchor losses
	zn, norms []float64    // cosine: normalised rows and their norms
	g         [2][]float64 // per-thread gradient accumulators
	coef      [2][]float64 // per-thread a_rk + a_kr of one row
	zt        []float32    // d×n transpose of z, for blas.SqDist64
}

// lossScratch keeps a lossJob's buffers between steps so a training loop
// does not allocate them every step.
type lossScratch struct{ job lossJob }

// prepare sizes the buffers for n views of d values and sets the operands.
func (s *lossScratch) prepare(z []float32, n, d int, dz []float32) *lossJob {
	j := &s.job
	if len(j.a) < n*n {
		j.a = make([]float64, n*n)
		j.losses = make([]float64, n)
	}
	if len(j.zn) < n*d {
		j.zn = make([]float64, n*d)
	}
	if len(j.norms) < n {
		j.norms = make([]float64, n)
	}
	for w := range j.g {
		if len(j.g[w]) < d {
			j.g[w] = make([]float64, d)
		}
		if len(j.coef[w]) < n {
			j.coef[w] = make([]float64, n)
		}
	}
	if len(j.zt) < n*d {
		j.zt = make([]float32, n*d)
	}
	j.z, j.dz, j.n, j.d = z, dz, n, d
	return j
}

// release drops the caller's slices so the scratch keeps no reference.
func (j *lossJob) release() { j.z, j.dz = nil, nil }

// lossTask is one half of a loss's row loop.
type lossTask struct {
	j      *lossJob
	fn     func(j *lossJob, w, lo, hi int)
	lo, hi int
}

func runLossTask(t lossTask, w int) { t.fn(t.j, w, t.lo, t.hi) }

// lossPool is shared by every loss evaluation in the process: loss matrices
// are small next to the network, so two threads (the caller and one
// worker) are enough.
var lossPool = sync.OnceValue(func() *workpool.Pool[lossTask, int] {
	return workpool.New([]int{0, 1}, runLossTask)
})

// runRows runs fn over rows [0,n), split in two halves; small losses run
// inline.
func runRows(j *lossJob, fn func(j *lossJob, w, lo, hi int)) {
	n := j.n
	if n < 64 {
		fn(j, 0, 0, n)
		return
	}
	step := (n + 1) / 2
	lossPool().Do([]lossTask{{j: j, fn: fn, lo: 0, hi: step}, {j: j, fn: fn, lo: step, hi: n}})
}

// CauchyInfoNCE is t-SimCNE's loss: z holds n = 2N views (rows i and i+N are
// positives, d columns); q(x,y) = 1/(1+‖x−y‖²) and
// L = (1/n) Σ_i [−log q(i, i⁺) + log Σ_{k≠i} q(i,k)].
// Squared distances are summed directly (never via sqrt), in float64.
// If dz is non-nil it receives dL/dz.
func CauchyInfoNCE(z []float32, n, d int, dz []float32) (float64, error) {
	return cauchyInfoNCE(z, n, d, dz, nil)
}

func cauchyInfoNCE(z []float32, n, d int, dz []float32, sc *lossScratch) (float64, error) {
	if err := checkPairs(z, n, d, dz); err != nil {
		return 0, err
	}
	if sc == nil {
		sc = new(lossScratch)
	}
	j := sc.prepare(z, n, d, dz)
	defer j.release()
	for k := 0; k < n; k++ {
		for t, v := range z[k*d : (k+1)*d] {
			j.zt[t*n+k] = v
		}
	}
	runRows(j, cauchyForwardRows)
	var l float64
	for _, v := range j.losses[:n] {
		l += v
	}
	l /= float64(n)
	if dz != nil {
		runRows(j, cauchyBackwardRows)
	}
	return l, nil
}

// cauchyForwardRows computes the per-anchor losses of rows [lo,hi) and
// a[i][k], the coefficient of (z_i − z_k) in ∂L_i/∂z_i / 2:
// q_ip·[k=p] − P_ik·q_ik with P_ik = q_ik/S_i.
func cauchyForwardRows(j *lossJob, _, lo, hi int) {
	z, n, d := j.z, j.n, j.d
	for i := lo; i < hi; i++ {
		row := j.a[i*n : (i+1)*n]
		if blas.SqDist64(z[i*d:(i+1)*d], j.zt[:n*d], n, row) {
			j.losses[i] = cauchyRowD2(n, i, row)
			continue
		}
		j.losses[i] = cauchyRow(z, n, d, i, row)
	}
}

// cauchyRow returns anchor i's loss −log q_ip + log S_i over the n views z
// (d columns; the positive of i is (i + n/2) mod n) and writes row[k] =
// a_ik, the coefficient of (z_i − z_k) in ∂L_i/∂z_i / 2. The one-process
// loss (cauchyForwardRows) and the data-parallel one (cauchyShare) share
// it, so both compute each anchor identically.
func cauchyRow(z []float32, n, d, i int, row []float64) float64 {
	zi := z[i*d : (i+1)*d]
	for k := 0; k < n; k++ {
		zk := z[k*d : (k+1)*d]
		var d2 float64
		for t, v := range zi {
			u := float64(v - zk[t])
			d2 += u * u
		}
		row[k] = d2
	}
	return cauchyRowD2(n, i, row)
}

// cauchyRowD2 is cauchyRow given row[k] = ‖z_i − z_k‖² (row[i] unused).
func cauchyRowD2(n, i int, row []float64) float64 {
	p := (i + n/2) % n
	var s float64
	for k := 0; k < n; k++ {
		if k == i {
			row[k] = 0
			continue
		}
		q := 1 / (1 + row[k])
		row[k] = q
		s += q
	}
	qp := row[p]
	for k := range row {
		row[k] = -row[k] * row[k] / s
	}
	row[p] += qp
	return -math.Log(qp) + math.Log(s)
}

// cauchyBackwardRows writes ∂L/∂z_r = (2/n) Σ_k (a_rk + a_kr)(z_r − z_k)
// for rows [lo,hi).
func cauchyBackwardRows(j *lossJob, w, lo, hi int) {
	z, dz, n, d, a := j.z, j.dz, j.n, j.d, j.a
	g, coef := j.g[w][:d], j.coef[w][:n]
	for r := lo; r < hi; r++ {
		clear(g)
		zr := z[r*d : (r+1)*d]
		for k := range coef {
			coef[k] = a[r*n+k] + a[k*n+r]
		}
		if !blas.DiffAxpy64(zr, z[:n*d], n, coef, g) {
			for k, c := range coef {
				if c == 0 {
					continue
				}
				zk := z[k*d : (k+1)*d]
				for t, v := range zr {
					g[t] += c * float64(v-zk[t])
				}
			}
		}
		out := dz[r*d : (r+1)*d]
		for t := range out {
			out[t] = float32(2 * g[t] / float64(n))
		}
	}
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
	if sc == nil {
		sc = new(lossScratch)
	}
	j := sc.prepare(z, n, d, dz)
	defer j.release()
	j.tau = tau
	zn, norms := j.zn[:n*d], j.norms[:n]
	for i := 0; i < n; i++ {
		var s float64
		for _, v := range z[i*d : (i+1)*d] {
			s += float64(v) * float64(v)
		}
		nr := math.Max(math.Sqrt(s), 1e-12)
		norms[i] = nr
		for t, v := range z[i*d : (i+1)*d] {
			zn[i*d+t] = float64(v) / nr
		}
	}
	runRows(j, cosineForwardRows)
	var l float64
	for _, v := range j.losses[:n] {
		l += v
	}
	l /= float64(n)
	if dz != nil {
		runRows(j, cosineBackwardRows)
	}
	return l, nil
}

// cosineForwardRows computes the per-anchor losses of rows [lo,hi) and
// b[i][k] = softmax_ik − [k = p], the gradient of L_i w.r.t. logit l_ik.
func cosineForwardRows(j *lossJob, _, lo, hi int) {
	n, d, tau, zn := j.n, j.d, j.tau, j.zn
	half := n / 2
	for i := lo; i < hi; i++ {
		p := (i + half) % n
		row := j.a[i*n : (i+1)*n]
		mx := math.Inf(-1)
		for k := 0; k < n; k++ {
			if k == i {
				continue
			}
			var s float64
			for t := 0; t < d; t++ {
				s += zn[i*d+t] * zn[k*d+t]
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
		j.losses[i] = -row[p] + lse
		for k := 0; k < n; k++ {
			if k == i {
				row[k] = 0
			} else {
				row[k] = math.Exp(row[k] - lse)
			}
		}
		row[p]--
	}
}

// cosineBackwardRows writes ∂L/∂z for rows [lo,hi), through the
// normalisation: (g − ẑ(ẑ·g))/‖z‖ (g/eps when the norm was clamped).
func cosineBackwardRows(j *lossJob, w, lo, hi int) {
	dz, n, d, tau, zn, b := j.dz, j.n, j.d, j.tau, j.zn, j.a
	g := j.g[w][:d]
	for r := lo; r < hi; r++ {
		clear(g)
		for k := 0; k < n; k++ {
			c := b[r*n+k] + b[k*n+r]
			for t := 0; t < d; t++ {
				g[t] += c * zn[k*d+t]
			}
		}
		var dot float64
		for t := 0; t < d; t++ {
			g[t] /= tau * float64(n)
			dot += g[t] * zn[r*d+t]
		}
		nr := j.norms[r]
		clamped := nr <= 1e-12
		for t := 0; t < d; t++ {
			if clamped {
				dz[r*d+t] = float32(g[t] / nr)
			} else {
				dz[r*d+t] = float32((g[t] - zn[r*d+t]*dot) / nr)
			}
		}
	}
}

// DeviceLoss is implemented by backends that compute the loss and its
// gradient where z lives (a GPU), so neither z nor dz crosses to the host.
type DeviceLoss interface {
	// QueueLoss queues the loss of the n×d views z (metric euclidean or
	// cosine, never the zero Metric; temperature tau for cosine) and writes
	// dL/dz into dz on the device; the result's Wait waits for the scalar
	// loss.
	QueueLoss(metric Metric, tau float64, z Buf, n, d int, dz Buf) (PendingLoss, error)
}

// PendingLoss is a loss queued on a backend.
type PendingLoss interface {
	// Wait blocks until the loss is computed and returns it.
	Wait() (float64, error)
}

// hostLoss is a loss already known (computed on the host).
type hostLoss struct{ l float64 }

func (h *hostLoss) Wait() (float64, error) { return h.l, nil }

// cosineTau is the temperature of the cosine loss.
const cosineTau = 0.5

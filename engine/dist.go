package engine

import (
	"fmt"
)

// Collective is the communication data-parallel training needs from a
// message-passing library (MPI): every rank calls the same operations in
// the same order. Failures are fatal to the whole job (MPI's default error
// handler aborts every rank), so the methods return nothing.
type Collective interface {
	// Rank is this process's position, 0 ≤ Rank < Size.
	Rank() int
	// Size is the number of ranks.
	Size() int
	// AllreduceSumF32 sums v element-wise across the ranks, in place.
	AllreduceSumF32(v []float32)
	// AllreduceSumF64 sums v element-wise across the ranks, in place.
	AllreduceSumF64(v []float64)
	// AllgatherF32 concatenates every rank's send (all of the same length)
	// into recv, in rank order.
	AllgatherF32(send, recv []float32)
}

// SetCollective makes the model's BatchNorm layers synchronise their batch
// statistics across the ranks of c (syncBN), or keep per-rank statistics
// (c nil or syncBN false), as PyTorch's DistributedDataParallel does by
// default.
func (m *Model) SetCollective(c Collective, syncBN bool) {
	var f func([]float64)
	if c != nil && syncBN && c.Size() > 1 {
		f = c.AllreduceSumF64
	}
	for _, l := range m.bns {
		l.sync = f
	}
}

// gradBucket is the number of float32 gradients all-reduced per MPI call:
// large enough that the per-call latency vanishes, small enough that the
// staging buffer stays in the cache-friendly range for big models.
const gradBucket = 1 << 20

// distState is the data-parallel scratch of a Trainer.
type distState struct {
	counts      []float64
	send, recv  []float32
	zAll, dzAll []float32
	bucket      []float32
	sc          lossScratch
	acc, row    []float64
}

// cauchyShare is the Cauchy InfoNCE of the global batch zAll (N views, d
// columns, rows i and i+N/2 positives) with the work shared by the ranks:
// this rank evaluates the anchors of its own rows (b rows from each of
// starts) and their whole contribution to dL/dz — to its anchor's row,
// Σ_k a_ik (z_i − z_k), and to every other row k, a_ik (z_k − z_i), with
// a_ik the coefficient of cauchyForwardRows —, one all-reduce sums the
// contributions and the anchor losses of all ranks, and dzAll receives the
// one-process gradient (up to the order of the sums). Every rank then holds
// the whole loss and gradient, at 1/ranks of the arithmetic.
func (ds *distState) cauchyShare(zAll []float32, N, d int, starts [2]int, b int, c Collective, dzAll []float32) float64 {
	if cap(ds.acc) < N*d+1 {
		ds.acc = make([]float64, N*d+1)
	}
	acc := ds.acc[:N*d+1]
	clear(acc)
	if cap(ds.row) < N {
		ds.row = make([]float64, N)
	}
	row := ds.row[:N]
	var loss float64
	for _, s := range starts {
		for i := s; i < s+b; i++ {
			loss += cauchyRow(zAll, N, d, i, row)
			zi := zAll[i*d : (i+1)*d]
			gi := acc[i*d : (i+1)*d][:len(zi)]
			for k, a := range row {
				if a == 0 {
					continue
				}
				zk := zAll[k*d : (k+1)*d][:len(zi)]
				gk := acc[k*d : (k+1)*d][:len(zi)]
				for t, v := range zi {
					u := a * float64(v-zk[t])
					gi[t] += u
					gk[t] -= u
				}
			}
		}
	}
	acc[N*d] = loss
	c.AllreduceSumF64(acc)
	for j := range dzAll[:N*d] {
		dzAll[j] = float32(2 * acc[j] / float64(N))
	}
	return acc[N*d] / float64(N)
}

// distLoss is queueLoss across the ranks: the z of every rank is gathered,
// every rank evaluates the loss of the whole global batch (all 2B views as
// negatives, exactly the one-process loss) and keeps its own rows of dL/dz.
// Rank r holds views [0,b_r) (first view) and [b_r,2b_r) (second view) of
// its b_r images; the global batch orders the first views of rank 0, 1, …
// and then the second views in the same order, as one process would.
func (t *Trainer) distLoss(n int) (PendingLoss, error) {
	m, c, ds := t.Model, t.Dist, &t.dist
	if n < 2 || n%2 != 0 || n > m.capacity {
		return nil, fmt.Errorf("engine: loss of %d views (want an even number ≥ 2, at most %d)", n, m.capacity)
	}
	d := m.outDim
	world, rank := c.Size(), c.Rank()
	// Ranks may hold different numbers of images in the last batch of an
	// epoch: gather the counts, then the z rows padded to the largest.
	if len(ds.counts) != world {
		ds.counts = make([]float64, world)
	}
	clear(ds.counts)
	ds.counts[rank] = float64(n / 2)
	c.AllreduceSumF64(ds.counts)
	maxB, total := 0, 0
	for _, v := range ds.counts {
		maxB = max(maxB, int(v))
		total += int(v)
	}
	per := 2 * maxB * d
	ds.send = grow(ds.send, per)
	ds.recv = grow(ds.recv, world*per)
	z := m.Z(m.zHost[:n*d], n)
	copy(ds.send, z)
	c.AllgatherF32(ds.send[:per], ds.recv[:world*per])
	N := 2 * total
	ds.zAll = grow(ds.zAll, N*d)
	ds.dzAll = grow(ds.dzAll, N*d)
	zAll, dzAll := ds.zAll[:N*d], ds.dzAll[:N*d]
	off, myOff := 0, 0
	for r := 0; r < world; r++ {
		b := int(ds.counts[r])
		src := ds.recv[r*per:]
		copy(zAll[off*d:(off+b)*d], src[:b*d])
		copy(zAll[(total+off)*d:(total+off+b)*d], src[b*d:2*b*d])
		if r == rank {
			myOff = off
		}
		off += b
	}
	b := n / 2
	var l float64
	if t.Metric == MetricCosine {
		// Every rank evaluates the whole loss (the Cauchy loss below
		// shares the work instead).
		var err error
		if l, err = cosineInfoNCE(zAll, N, d, cosineTau, dzAll, &ds.sc); err != nil {
			return nil, err
		}
	} else {
		l = ds.cauchyShare(zAll, N, d, [2]int{myOff, total + myOff}, b, c, dzAll)
	}
	dz := m.dzHost[:n*d]
	copy(dz[:b*d], dzAll[myOff*d:(myOff+b)*d])
	copy(dz[b*d:], dzAll[(total+myOff)*d:(total+myOff+b)*d])
	m.be.Upload(m.dz, dz)
	// A fresh value, not m.lastLoss: a device feeder holds step k's result
	// until step k+1 has been queued.
	return &hostLoss{l: l}, nil
}

// allreduceGrads sums the gradients of every trainable parameter across the
// ranks, in buckets of up to gradBucket values (one MPI call each). Each
// rank's gradient is already its share of the global loss's gradient, so
// the sum is the one-process gradient; nothing is averaged.
func (t *Trainer) allreduceGrads() {
	m, c, ds := t.Model, t.Dist, &t.dist
	if ds.bucket == nil && t.HostAlloc != nil {
		ds.bucket = t.HostAlloc(gradBucket)
	}
	ds.bucket = grow(ds.bucket, gradBucket)
	var pending []*Param
	fill := 0
	flush := func() {
		if fill == 0 {
			return
		}
		c.AllreduceSumF32(ds.bucket[:fill])
		o := 0
		for _, p := range pending {
			m.be.Upload(p.Grad, ds.bucket[o:o+p.Size()])
			o += p.Size()
		}
		pending, fill = pending[:0], 0
	}
	for _, p := range m.params {
		if !p.Trainable {
			continue
		}
		sz := p.Size()
		if sz > gradBucket {
			big := make([]float32, sz)
			m.be.Download(big, p.Grad)
			c.AllreduceSumF32(big)
			m.be.Upload(p.Grad, big)
			continue
		}
		if fill+sz > gradBucket {
			flush()
		}
		m.be.Download(ds.bucket[fill:fill+sz], p.Grad)
		pending = append(pending, p)
		fill += sz
	}
	flush()
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

package tsimcne

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/internal/mpi"
	"github.com/tsimcne/tsimcne-go/loader"
)

// Communicator is what data-parallel training needs from MPI (internal/mpi's
// Comm implements it): the engine's collectives, plus byte gathers for the
// start-up checks.
type Communicator interface {
	engine.Collective
	// AllgatherBytes returns every rank's send (all of one length), in rank
	// order.
	AllgatherBytes(send []byte) [][]byte
}

// Distributed makes Fit data-parallel over the ranks of Comm. Config.BatchSize
// stays the global batch: each rank trains on its BatchSize/ranks images of
// every global batch (loader.Options.BatchShards), the loss spans all ranks'
// views and the gradients are summed, so N ranks train the model one process
// would, up to the order of floating-point sums. Every rank must call Fit
// with the same configuration and data; only rank 0 should be given a
// RunDir (it alone writes).
type Distributed struct {
	Comm Communicator
	// LocalBN keeps per-rank BatchNorm statistics (PyTorch DDP's default)
	// instead of synchronising them across the ranks.
	LocalBN bool
}

// ranks returns this process's rank and the number of ranks (0, 1 without
// Distributed).
func (m *Model) ranks() (rank, size int) {
	if m.Dist == nil || m.Dist.Comm == nil {
		return 0, 1
	}
	return m.Dist.Comm.Rank(), m.Dist.Comm.Size()
}

// setupDist checks a data-parallel run (batch divisible by the ranks, every
// rank on the same data, a backend that can synchronise BatchNorm) and
// points the loader, the BatchNorm layers and the trainer at the ranks.
func (m *Model) setupDist(train Dataset, lo *loader.Options) error {
	rank, size := m.ranks()
	if size <= 1 {
		return nil
	}
	if m.cfg.BatchSize%size != 0 {
		return fmt.Errorf("tsimcne: distributed: the global batch %d is not divisible by the %d ranks (choose --batch as a multiple of %d)", m.cfg.BatchSize, size, size)
	}
	if _, cpu := m.be.(*engine.CPU); !cpu && !m.Dist.LocalBN {
		return errors.New("tsimcne: distributed: synchronised BatchNorm runs on the CPU backend only; use --local-bn with --device cuda")
	}
	if pinned, ok := m.be.(engine.PinnedHost); ok {
		// Gradients cross to MPI through pinned host memory.
		alloc := pinned.PinnedAllocator()
		m.tr.HostAlloc = func(n int) []float32 {
			b, err := alloc.Alloc(4 * n)
			if err != nil {
				m.Logf("distributed: %v; staging gradients in pageable memory", err)
				return nil
			}
			return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
		}
	}
	fp, err := fingerprint(train)
	if err != nil {
		return err
	}
	all := m.Dist.Comm.AllgatherBytes(fp)
	for r, f := range all {
		if string(f) != string(all[0]) {
			return fmt.Errorf("tsimcne: distributed: rank %d and rank 0 train on different data (%d and %d samples, or different contents): give every rank the same data file",
				r, binary.LittleEndian.Uint64(f), binary.LittleEndian.Uint64(all[0]))
		}
	}
	lo.BatchSize = m.cfg.BatchSize / size
	lo.Rank, lo.World, lo.BatchShards = rank, size, true
	m.comm = &timedComm{Communicator: m.Dist.Comm}
	m.net.SetCollective(m.comm, !m.Dist.LocalBN)
	m.tr.Dist = m.comm
	return nil
}

// fingerprint identifies the training data: its size and a hash of a few
// samples (first, middle, last), enough to catch ranks given different
// files or subsets without reading the data twice.
func fingerprint(d Dataset) ([]byte, error) {
	n := d.Len()
	h := sha256.New()
	for _, i := range []int{0, n / 2, n - 1} {
		if i < 0 || i >= n {
			continue
		}
		s, err := d.Get(i)
		if err != nil {
			return nil, fmt.Errorf("tsimcne: distributed: fingerprint of the data: %w", err)
		}
		fmt.Fprintf(h, "%d %d %d %d %d|", i, s.Label, s.Height, s.Width, len(s.Data))
		h.Write(s.Data)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(n))
	return h.Sum(out), nil
}

// localPos is this rank's position in its order (loader BatchShards) for
// State.Pos global images into the epoch: k whole global batches, plus this
// rank's share of a last, shorter one when the epoch was stopped after it.
func (m *Model) localPos(pos int) int {
	rank, size := m.ranks()
	if size <= 1 {
		return pos
	}
	B := m.cfg.BatchSize
	k, rem := pos/B, pos%B
	return k*(B/size) + (rank+1)*rem/size - rank*rem/size
}

// stepImages is the number of images (of all ranks) in the step starting
// pos images into an epoch of n, given that this rank's share is local.
func (m *Model) stepImages(local, pos, n int) int {
	if _, size := m.ranks(); size <= 1 {
		return local
	}
	return min(m.cfg.BatchSize, n-pos)
}

// stopAgreed reports whether any rank's ctx is cancelled, so that all ranks
// stop after the same step (a rank leaving early would block the others in
// the next collective).
func (m *Model) stopAgreed(ctx context.Context) bool {
	_, size := m.ranks()
	stop := ctx.Err() != nil
	if size <= 1 {
		return stop
	}
	v := []float64{0}
	if stop {
		v[0] = 1
	}
	m.Dist.Comm.AllreduceSumF64(v)
	return v[0] > 0
}

// gpuOrdinal is the GPU this process uses: under mpirun (or srun), its
// node-local rank, so the ranks of a node take one GPU each (more ranks
// than GPUs on a node is an error from the CUDA backend naming both
// numbers); otherwise the first.
func gpuOrdinal() int {
	if !mpi.Launched() {
		return 0
	}
	return mpi.LocalRank()
}

// timedComm counts the time spent in collectives, for the per-step
// communication figure a data-parallel run reports.
type timedComm struct {
	Communicator
	spent time.Duration
}

func (c *timedComm) AllreduceSumF32(v []float32) {
	t0 := time.Now()
	c.Communicator.AllreduceSumF32(v)
	c.spent += time.Since(t0)
}

func (c *timedComm) AllreduceSumF64(v []float64) {
	t0 := time.Now()
	c.Communicator.AllreduceSumF64(v)
	c.spent += time.Since(t0)
}

func (c *timedComm) AllgatherF32(send, recv []float32) {
	t0 := time.Now()
	c.Communicator.AllgatherF32(send, recv)
	c.spent += time.Since(t0)
}

// reportComm logs the communication time per step of the epoch just
// finished (waiting for slower ranks included) and restarts the count.
func (m *Model) reportComm(steps int) {
	if m.comm == nil || steps == 0 {
		return
	}
	m.Logf("mpi: communication %.2f ms/step over %d steps (z all-gather, gradient all-reduce, BatchNorm sums; waits for other ranks included)",
		m.comm.spent.Seconds()*1000/float64(steps), steps)
	m.comm.spent = 0
}

// gatherEmbedding completes, on every rank, an embedding of which this rank
// filled its own images (the rest zero): every image was embedded by
// exactly one rank, so an element-wise sum across the ranks assembles the
// whole in dataset order exactly (x + 0 = x). It returns the number of
// images embedded by all ranks together.
func (m *Model) gatherEmbedding(e *Embedding, done int) int {
	c := m.Dist.Comm
	c.AllreduceSumF32(e.Y)
	if e.Features != nil {
		c.AllreduceSumF32(e.Features)
	}
	v := make([]float64, len(e.Labels)+1)
	for i, l := range e.Labels {
		v[i] = float64(l)
	}
	v[len(e.Labels)] = float64(done)
	c.AllreduceSumF64(v)
	for i := range e.Labels {
		e.Labels[i] = int32(v[i])
	}
	return int(v[len(e.Labels)])
}

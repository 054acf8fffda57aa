package main

import (
	"runtime"

	"github.com/tsimcne/tsimcne-go/internal/mpi"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// dist is the model's data-parallel setting for job j (nil for one
// process).
func dist(j *mpi.Job, localBN bool) *tsimcne.Distributed {
	if j.Size() <= 1 {
		return nil
	}
	return &tsimcne.Distributed{Comm: j.Comm, LocalBN: localBN}
}

// shareCPUs gives each of the node's ranks its share of the CPUs for GEMM
// threads and loader workers, unless set: the single-process default (all
// CPUs) in every rank would oversubscribe the node. A resumed run keeps its
// saved thread count (the same count reproduces the same bits).
func shareCPUs(f *flags, logf func(string, ...any)) {
	share := max(1, runtime.NumCPU()/mpi.LocalSize())
	if f.threads == 0 && !f.resume {
		f.threads = share
	}
	if f.workers == 0 {
		f.workers = share
	}
	if f.threads > 0 {
		logf("mpi: %d ranks on this node: %d GEMM threads and %d loader workers per rank", mpi.LocalSize(), f.threads, f.workers)
	}
}

package main

import (
	"fmt"
	"os"

	"github.com/tsimcne/tsimcne-go/internal/mpi"
	"github.com/tsimcne/tsimcne-go/tsimcne"
)

// job is the MPI side of a run: nil comm outside mpirun (or srun), where
// nothing about training changes and no MPI library is needed.
type job struct {
	comm *mpi.Comm
}

// startJob initialises MPI when the process is one rank of a parallel job.
func startJob() (*job, error) {
	if !mpi.Launched() {
		return &job{}, nil
	}
	c, err := mpi.Init()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &job{comm: c}, nil
}

// rank is this process's rank (0 outside MPI).
func (j *job) rank() int {
	if j.comm == nil {
		return 0
	}
	return j.comm.Rank()
}

// size is the number of ranks (1 outside MPI).
func (j *job) size() int {
	if j.comm == nil {
		return 1
	}
	return j.comm.Size()
}

// writer reports whether this rank writes the run directory (rank 0).
func (j *job) writer() bool { return j.rank() == 0 }

// dist is the model's data-parallel setting (nil for one process).
func (j *job) dist(localBN bool) *tsimcne.Distributed {
	if j.size() <= 1 {
		return nil
	}
	return &tsimcne.Distributed{Comm: j.comm, LocalBN: localBN}
}

// finish ends the job: a clean MPI shutdown after success; after an error,
// the error (named by rank) and MPI_Abort, because the other ranks may be
// waiting in a collective this rank will never join. Outside MPI it returns
// err unchanged.
func (j *job) finish(err error) error {
	if j.comm == nil {
		return err
	}
	if err != nil && j.size() > 1 {
		fmt.Fprintf(os.Stderr, "train: rank %d: %v\n", j.rank(), err)
		j.comm.Abort(1)
	}
	if ferr := j.comm.Finalize(); err == nil {
		err = ferr
	}
	return err
}

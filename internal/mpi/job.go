package mpi

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Job is a command's view of the parallel job it may be part of: outside
// mpirun (or srun) Comm is nil, there is one rank, and nothing needs MPI.
type Job struct {
	Comm *Comm
}

// StartJob initialises MPI when the process is one rank of a parallel job
// (Launched) and does nothing otherwise.
func StartJob() (*Job, error) {
	if !Launched() {
		return &Job{}, nil
	}
	c, err := Init()
	if err != nil {
		return nil, err
	}
	return &Job{Comm: c}, nil
}

// Rank is this process's rank (0 outside MPI).
func (j *Job) Rank() int {
	if j.Comm == nil {
		return 0
	}
	return j.Comm.Rank()
}

// Size is the number of ranks (1 outside MPI).
func (j *Job) Size() int {
	if j.Comm == nil {
		return 1
	}
	return j.Comm.Size()
}

// Writer reports whether this rank writes the job's files (rank 0).
func (j *Job) Writer() bool { return j.Rank() == 0 }

// Finish ends the job: a clean MPI shutdown after success or an agreed
// interrupt; after any other error on a job of several ranks, the error (named by program and rank) and
// MPI_Abort, because the other ranks may wait in a collective this rank
// will never join. Outside MPI it returns err unchanged.
func (j *Job) Finish(prog string, err error) error {
	if j.Comm == nil {
		return err
	}
	// An interrupt is agreed by all ranks (they stop after the same step,
	// and rank 0 writes a checkpoint): a normal shutdown waits for rank 0
	// to finish writing, where an abort would kill it mid-write.
	if err != nil && j.Size() > 1 && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "%s: rank %d: %v\n", prog, j.Rank(), err)
		j.Comm.Abort(1)
	}
	if ferr := j.Comm.Finalize(); err == nil {
		err = ferr
	}
	return err
}

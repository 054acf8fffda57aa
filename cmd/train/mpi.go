package main

import (
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

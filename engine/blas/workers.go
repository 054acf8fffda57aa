package blas

import "runtime"

// product is the GEMM being computed, C += alpha·op(A)·op(B) after the
// beta scaling, shared by the caller and the workers of one Sgemm call.
type product struct {
	transA, transB bool
	k              int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
}

// workers runs the blocks of one product on threads−1 persistent goroutines
// plus the caller; thread w packs into bufs[w]. A goroutine and a closure per
// product would allocate on every GEMM of a training step.
type workers[J, B any] struct {
	bufs []B
	jobs []chan J
	done chan struct{}
	run  func(J, B)
}

// newWorkers starts len(bufs)−1 workers that apply run (a top-level
// function, so that nothing captures the GEMM) to the jobs they are given.
func newWorkers[J, B any](bufs []B, run func(J, B)) *workers[J, B] {
	w := &workers[J, B]{bufs: bufs, done: make(chan struct{}, len(bufs)), run: run}
	for i := 1; i < len(bufs); i++ {
		ch := make(chan J, 1)
		w.jobs = append(w.jobs, ch)
		go workerLoop(ch, bufs[i], run, w.done)
	}
	// The goroutines hold only their channel, buffers and run, so an
	// unreachable GEMM can be collected; closing the channels ends them.
	runtime.AddCleanup(w, func(jobs []chan J) {
		for _, ch := range jobs {
			close(ch)
		}
	}, w.jobs)
	return w
}

func workerLoop[J, B any](jobs chan J, bufs B, run func(J, B), done chan<- struct{}) {
	for j := range jobs {
		run(j, bufs)
		done <- struct{}{}
	}
}

// do runs parts[0] on the caller and the others on the workers (at most one
// part per thread), and returns when all are done.
func (w *workers[J, B]) do(parts []J) {
	for i := 1; i < len(parts); i++ {
		w.jobs[i-1] <- parts[i]
	}
	w.run(parts[0], w.bufs[0])
	for i := 1; i < len(parts); i++ {
		<-w.done
	}
}

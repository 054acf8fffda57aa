// Package workpool runs the parts of one parallel loop on the caller and a
// fixed set of persistent goroutines. The engine's element-wise kernels, its
// losses and the Go-side GEMMs all use it: a goroutine and a closure per
// call would allocate on every kernel of every training step.
package workpool

import (
	"runtime"
	"sync"
)

// Pool runs jobs of type J. Thread i (the caller is thread 0) is handed
// state[i]: its index, or buffers it owns. Run must be a top-level function
// (or otherwise capture nothing the pool's owner needs collected), and jobs
// should carry their operands, so that no closure is built per call.
type Pool[J, S any] struct {
	mu    sync.Mutex // one Do at a time: the workers share done
	state []S
	jobs  []chan J
	done  chan struct{}
	run   func(J, S)
}

// New starts len(state)−1 goroutines that apply run to the jobs they are
// given. They end when the pool becomes unreachable.
func New[J, S any](state []S, run func(J, S)) *Pool[J, S] {
	p := &Pool[J, S]{state: state, done: make(chan struct{}, len(state)), run: run}
	for i := 1; i < len(state); i++ {
		ch := make(chan J, 1)
		p.jobs = append(p.jobs, ch)
		go loop(ch, state[i], run, p.done)
	}
	// The goroutines hold only their channel, state and run, so the pool
	// can be collected; closing the channels then ends them.
	runtime.AddCleanup(p, func(jobs []chan J) {
		for _, ch := range jobs {
			close(ch)
		}
	}, p.jobs)
	return p
}

func loop[J, S any](jobs chan J, state S, run func(J, S), done chan<- struct{}) {
	for j := range jobs {
		run(j, state)
		done <- struct{}{}
	}
}

// Threads is the number of threads, the caller's included.
func (p *Pool[J, S]) Threads() int { return len(p.state) }

// State returns thread i's state.
func (p *Pool[J, S]) State(i int) S { return p.state[i] }

// Do runs parts[0] on the caller and parts[i] on thread i (so at most
// Threads parts), and returns when all are done. Concurrent calls wait for
// each other.
func (p *Pool[J, S]) Do(parts []J) {
	if len(parts) == 0 {
		return
	}
	if len(parts) > len(p.state) {
		panic("workpool: more parts than threads")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 1; i < len(parts); i++ {
		p.jobs[i-1] <- parts[i]
	}
	p.run(parts[0], p.state[0])
	for i := 1; i < len(parts); i++ {
		<-p.done
	}
}

// Command benchstep times t-SimCNE training steps on random data, alone or
// as one rank of mpirun, for docs/BENCHMARKS.md's data-parallel section:
//
//	benchstep [-batch 256] [-steps 20] [-threads 2] [-arch resnet_tiny] [-size 16] [-local-bn]
//	mpirun -np 2 benchstep -threads 1 ...
//
// -batch is the global batch (images; each gives two views). Rank 0 prints
// seconds per step, images per second and the time spent in MPI per step.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/tsimcne/tsimcne-go/engine"
	"github.com/tsimcne/tsimcne-go/internal/mpi"
)

type timed struct {
	engine.Collective
	spent time.Duration
}

func (c *timed) AllreduceSumF32(v []float32) {
	t := time.Now()
	c.Collective.AllreduceSumF32(v)
	c.spent += time.Since(t)
}

func (c *timed) AllreduceSumF64(v []float64) {
	t := time.Now()
	c.Collective.AllreduceSumF64(v)
	c.spent += time.Since(t)
}

func (c *timed) AllgatherF32(s, r []float32) {
	t := time.Now()
	c.Collective.AllgatherF32(s, r)
	c.spent += time.Since(t)
}

func main() {
	batch := flag.Int("batch", 256, "global batch (images)")
	steps := flag.Int("steps", 20, "timed steps (after 2 warm-up steps)")
	threads := flag.Int("threads", 2, "GEMM threads per process")
	arch := flag.String("arch", "resnet_tiny", "backbone")
	size := flag.Int("size", 16, "image side")
	localBN := flag.Bool("local-bn", false, "per-rank BatchNorm statistics")
	prof := flag.Bool("profile", false, "print rank 0's time per layer kind")
	flag.Parse()
	if err := run(*batch, *steps, *threads, *arch, *size, *localBN, *prof); err != nil {
		fmt.Fprintln(os.Stderr, "benchstep:", err)
		os.Exit(1)
	}
}

func run(batch, steps, threads int, arch string, size int, localBN, prof bool) error {
	rank, world := 0, 1
	var comm *mpi.Comm
	if mpi.Launched() {
		c, err := mpi.Init()
		if err != nil {
			return err
		}
		defer c.Finalize()
		comm, rank, world = c, c.Rank(), c.Size()
	}
	if batch%world != 0 {
		return fmt.Errorf("batch %d not divisible by %d ranks", batch, world)
	}
	b := batch / world
	be, err := engine.NewCPU(engine.CPUOptions{Threads: threads})
	if err != nil {
		return err
	}
	m, err := engine.NewModel(be, engine.Options{Arch: arch, Seed: 1, ImageSize: size})
	if err != nil {
		return err
	}
	tr := engine.NewTrainer(m, "euclidean")
	var tc *timed
	if comm != nil && world > 1 {
		tc = &timed{Collective: comm}
		m.SetCollective(tc, !localBN)
		tr.Dist = tc
	}
	rng := rand.New(rand.NewPCG(uint64(rank), 2))
	x := make([]float32, 2*b*m.InputSize())
	for i := range x {
		x[i] = rng.Float32()
	}
	for i := 0; i < 2; i++ {
		if _, err := tr.Step(x, 2*b, 0.01); err != nil {
			return err
		}
	}
	if tc != nil {
		tc.spent = 0
	}
	if prof {
		m.Prof = engine.NewProfile()
	}
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		if _, err := tr.Step(x, 2*b, 0.01); err != nil {
			return err
		}
	}
	dt := time.Since(t0).Seconds() / float64(steps)
	commMS := 0.0
	if tc != nil {
		commMS = tc.spent.Seconds() * 1000 / float64(steps)
	}
	if rank == 0 {
		fmt.Printf("go %s %dx%d: %d rank(s) x %d thread(s), global batch %d: %.4f s/step, %.0f images/s, MPI %.1f ms/step (%s)\n",
			arch, size, size, world, threads, batch, dt, float64(batch)/dt, commMS, be.Name())
		if prof {
			m.Prof.Write(os.Stdout, steps)
		}
	}
	return nil
}

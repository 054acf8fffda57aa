// Package mpi is a minimal binding to Open MPI's libmpi, loaded at run time
// with purego (binaries stay CGO_ENABLED=0): initialisation, rank and size,
// and the collectives data-parallel training needs. Outside mpirun (or
// srun) nothing is loaded and Launched reports false, so single-process use
// needs no MPI installed.
//
// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are
// global objects in the library (ompi_mpi_comm_world, …): the handle is the
// address of the symbol. That is Open MPI's ABI; MPICH uses integer handles
// and is not supported.
package mpi

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// DefaultLibrary is the Open MPI library Debian's libopenmpi3 installs.
const DefaultLibrary = "libmpi.so.40"

// LibraryEnv overrides the library path (for a non-standard install).
const LibraryEnv = "TSIMCNE_LIBMPI"

// Launched reports whether the process was started by mpirun (Open MPI
// sets OMPI_COMM_WORLD_SIZE) or by a PMIx launcher such as SLURM's srun
// (PMIX_RANK), i.e. whether it is one rank of a parallel job.
func Launched() bool {
	return os.Getenv("OMPI_COMM_WORLD_SIZE") != "" || os.Getenv("PMIX_RANK") != ""
}

// LocalRank is this rank's position among the ranks on its node (Open
// MPI's OMPI_COMM_WORLD_LOCAL_RANK, SLURM's SLURM_LOCALID), 0 when unknown.
func LocalRank() int {
	for _, k := range []string{"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"} {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v >= 0 {
			return v
		}
	}
	return 0
}

// Comm is MPI_COMM_WORLD of an initialised MPI. Its methods may be called
// from any goroutine; calls are serialised (MPI_THREAD_SERIALIZED).
type Comm struct {
	mu         sync.Mutex
	rank, size int
	world      uintptr
	tFloat     uintptr
	tDouble    uintptr
	tByte      uintptr
	opSum      uintptr
	allreduce  func(send uintptr, recv unsafe.Pointer, count int32, dt, op, comm uintptr) int32
	allgather  func(send unsafe.Pointer, scount int32, st uintptr, recv unsafe.Pointer, rcount int32, rt, comm uintptr) int32
	bcast      func(buf unsafe.Pointer, count int32, dt uintptr, root int32, comm uintptr) int32
	barrier    func(comm uintptr) int32
	abort      func(comm uintptr, code int32) int32
	finalize   func() int32
	finalized  bool
}

// mpiInPlace is Open MPI's MPI_IN_PLACE, ((void *) 1): a sentinel, never
// dereferenced, so it is passed as an integer.
const mpiInPlace uintptr = 1

const threadSerialized = 2 // MPI_THREAD_SERIALIZED in Open MPI's mpi.h

// Init loads libmpi and initialises MPI. Call it only when Launched: a
// library that cannot be loaded there is an error naming it.
func Init() (*Comm, error) {
	lib := os.Getenv(LibraryEnv)
	if lib == "" {
		lib = DefaultLibrary
	}
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("mpi: launched by mpirun/srun but the MPI library %s cannot be loaded (install Open MPI: apt-get install libopenmpi3 openmpi-bin, or set %s): %w", lib, LibraryEnv, err)
	}
	sym := func(name string) (uintptr, error) {
		a, err := purego.Dlsym(h, name)
		if err != nil {
			return 0, fmt.Errorf("mpi: %s has no symbol %s (Open MPI is required): %w", lib, name, err)
		}
		return a, nil
	}
	c := &Comm{}
	var initThread func(argc, argv unsafe.Pointer, required int32, provided *int32) int32
	var commRank, commSize func(comm uintptr, out *int32) int32
	for _, f := range []struct {
		name string
		fn   any
	}{
		{"MPI_Init_thread", &initThread}, {"MPI_Comm_rank", &commRank}, {"MPI_Comm_size", &commSize},
		{"MPI_Allreduce", &c.allreduce}, {"MPI_Allgather", &c.allgather}, {"MPI_Bcast", &c.bcast},
		{"MPI_Barrier", &c.barrier}, {"MPI_Abort", &c.abort}, {"MPI_Finalize", &c.finalize},
	} {
		a, err := sym(f.name)
		if err != nil {
			return nil, err
		}
		purego.RegisterFunc(f.fn, a)
	}
	for _, s := range []struct {
		name string
		dst  *uintptr
	}{
		{"ompi_mpi_comm_world", &c.world}, {"ompi_mpi_float", &c.tFloat}, {"ompi_mpi_double", &c.tDouble},
		{"ompi_mpi_byte", &c.tByte}, {"ompi_mpi_op_sum", &c.opSum},
	} {
		if *s.dst, err = sym(s.name); err != nil {
			return nil, err
		}
	}
	var provided int32
	if rc := initThread(nil, nil, threadSerialized, &provided); rc != 0 {
		return nil, fmt.Errorf("mpi: MPI_Init_thread failed (error %d)", rc)
	}
	if provided < threadSerialized {
		return nil, fmt.Errorf("mpi: the MPI library gives thread level %d, MPI_THREAD_SERIALIZED (%d) is needed", provided, threadSerialized)
	}
	var r, s int32
	if commRank(c.world, &r) != 0 || commSize(c.world, &s) != 0 {
		return nil, errors.New("mpi: MPI_Comm_rank/MPI_Comm_size failed")
	}
	c.rank, c.size = int(r), int(s)
	return c, nil
}

// Rank is this process's rank in MPI_COMM_WORLD.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of ranks in MPI_COMM_WORLD.
func (c *Comm) Size() int { return c.size }

// check turns a failed call into a job abort: MPI's default error handler
// already aborts on errors, so a non-zero return means a handler was
// changed, and a half-failed collective cannot be recovered.
func (c *Comm) check(op string, rc int32) {
	if rc != 0 {
		fmt.Fprintf(os.Stderr, "mpi: rank %d: %s failed (error %d); aborting the job\n", c.rank, op, rc)
		c.abort(c.world, 1)
	}
}

// AllreduceSumF32 sums v across the ranks in place.
func (c *Comm) AllreduceSumF32(v []float32) {
	if len(v) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check("MPI_Allreduce", c.allreduce(mpiInPlace, unsafe.Pointer(&v[0]), int32(len(v)), c.tFloat, c.opSum, c.world))
	runtime.KeepAlive(v)
}

// AllreduceSumF64 sums v across the ranks in place.
func (c *Comm) AllreduceSumF64(v []float64) {
	if len(v) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check("MPI_Allreduce", c.allreduce(mpiInPlace, unsafe.Pointer(&v[0]), int32(len(v)), c.tDouble, c.opSum, c.world))
	runtime.KeepAlive(v)
}

// AllgatherF32 concatenates every rank's send into recv (Size·len(send)
// values), in rank order.
func (c *Comm) AllgatherF32(send, recv []float32) {
	if len(recv) != len(send)*c.size {
		panic(fmt.Sprintf("mpi: allgather of %d values into %d", len(send), len(recv)))
	}
	if len(send) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check("MPI_Allgather", c.allgather(unsafe.Pointer(&send[0]), int32(len(send)), c.tFloat,
		unsafe.Pointer(&recv[0]), int32(len(send)), c.tFloat, c.world))
	runtime.KeepAlive(send)
	runtime.KeepAlive(recv)
}

// AllgatherBytes concatenates every rank's send (all of one length) in rank
// order.
func (c *Comm) AllgatherBytes(send []byte) [][]byte {
	recv := make([]byte, len(send)*c.size)
	if len(send) > 0 {
		c.mu.Lock()
		c.check("MPI_Allgather", c.allgather(unsafe.Pointer(&send[0]), int32(len(send)), c.tByte,
			unsafe.Pointer(&recv[0]), int32(len(send)), c.tByte, c.world))
		c.mu.Unlock()
		runtime.KeepAlive(send)
	}
	out := make([][]byte, c.size)
	for r := range out {
		out[r] = recv[r*len(send) : (r+1)*len(send)]
	}
	return out
}

// BcastBytes sends root's buf to every rank (same length everywhere).
func (c *Comm) BcastBytes(buf []byte, root int) {
	if len(buf) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check("MPI_Bcast", c.bcast(unsafe.Pointer(&buf[0]), int32(len(buf)), c.tByte, int32(root), c.world))
	runtime.KeepAlive(buf)
}

// Barrier waits until every rank has called it.
func (c *Comm) Barrier() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check("MPI_Barrier", c.barrier(c.world))
}

// Abort ends every rank of the job with the exit code.
func (c *Comm) Abort(code int) {
	c.abort(c.world, int32(code))
}

// Finalize shuts MPI down; every rank must call it before exiting normally.
func (c *Comm) Finalize() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finalized {
		return nil
	}
	c.finalized = true
	if rc := c.finalize(); rc != 0 {
		return fmt.Errorf("mpi: MPI_Finalize failed (error %d)", rc)
	}
	return nil
}

// LocalSize is the number of ranks on this node (Open MPI's
// OMPI_COMM_WORLD_LOCAL_SIZE, SLURM's SLURM_NTASKS_PER_NODE), 1 when
// unknown.
func LocalSize() int {
	for _, k := range []string{"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"} {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v >= 1 {
			return v
		}
	}
	return 1
}

package mpi

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestMain lets the test binary act as an MPI rank: under mpirun with
// MPI_TEST_RANK set it runs rankMain instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("MPI_TEST_RANK") == "1" {
		if err := rankMain(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func rankMain() error {
	c, err := Init()
	if err != nil {
		return err
	}
	defer c.Finalize()
	r, n := c.Rank(), c.Size()
	v := []float32{float32(r + 1), 1}
	c.AllreduceSumF32(v)
	if v[0] != float32(n*(n+1)/2) || v[1] != float32(n) {
		return fmt.Errorf("rank %d: allreduce f32 gave %v", r, v)
	}
	d := []float64{float64(r) * 0.5}
	c.AllreduceSumF64(d)
	want := 0.0
	for i := 0; i < n; i++ {
		want += float64(i) * 0.5
	}
	if d[0] != want {
		return fmt.Errorf("rank %d: allreduce f64 gave %v, want %v", r, d[0], want)
	}
	recv := make([]float32, 2*n)
	c.AllgatherF32([]float32{float32(r), float32(10 * r)}, recv)
	for q := 0; q < n; q++ {
		if recv[2*q] != float32(q) || recv[2*q+1] != float32(10*q) {
			return fmt.Errorf("rank %d: allgather gave %v", r, recv)
		}
	}
	got := c.AllgatherBytes([]byte{byte(r)})
	for q := range got {
		if got[q][0] != byte(q) {
			return fmt.Errorf("rank %d: allgather bytes gave %v", r, got)
		}
	}
	b := []byte{byte(r), 0}
	if r == 0 {
		b = []byte{42, 43}
	}
	c.BcastBytes(b, 0)
	if b[0] != 42 || b[1] != 43 {
		return fmt.Errorf("rank %d: bcast gave %v", r, b)
	}
	c.Barrier()
	return nil
}

// mpirun returns the mpirun command line prefix for n ranks on this
// machine, failing the test when CI requires MPI and it is missing.
func mpirun(t *testing.T, n int) []string {
	t.Helper()
	p, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mpirun not found (CI=true requires Open MPI: apt-get install openmpi-bin libopenmpi3)")
		}
		t.Skip("mpirun not installed")
	}
	return []string{p, "--oversubscribe", "--allow-run-as-root", "-np", fmt.Sprint(n)}
}

func TestCollectivesUnderMpirun(t *testing.T) {
	args := append(mpirun(t, 3), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MPI_TEST_RANK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
}

func TestLaunchedOutsideMpirun(t *testing.T) {
	if os.Getenv("OMPI_COMM_WORLD_SIZE") != "" {
		t.Skip("running under mpirun")
	}
	if Launched() {
		t.Fatal("Launched outside mpirun")
	}
}

func TestMissingLibraryIsClear(t *testing.T) {
	args := append(mpirun(t, 1), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MPI_TEST_RANK=1", LibraryEnv+"=/nonexistent/libmpi.so.40")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ran without the MPI library:\n%s", out)
	}
	if !contains(string(out), "MPI library /nonexistent/libmpi.so.40 cannot be loaded") {
		t.Fatalf("unclear error:\n%s", out)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

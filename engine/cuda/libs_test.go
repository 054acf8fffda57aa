package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeFS builds a searcher over a temporary tree: files are created under
// root, and absolute patterns are rewritten into it.
type fakeFS struct {
	root  string
	env   map[string]string
	ld    string
	ldErr error
}

func (f *fakeFS) touch(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fakeFS) searcher() searcher {
	in := func(p string) string {
		if strings.HasPrefix(p, f.root) {
			return p
		}
		return filepath.Join(f.root, p)
	}
	return searcher{
		getenv:   func(k string) string { return f.env[k] },
		ldconfig: func() (string, error) { return f.ld, f.ldErr },
		glob: func(p string) ([]string, error) {
			m, err := filepath.Glob(in(p))
			for i := range m {
				m[i] = strings.TrimPrefix(m[i], f.root)
			}
			return m, err
		},
		exists: func(p string) bool { st, err := os.Stat(in(p)); return err == nil && !st.IsDir() },
	}
}

func TestSearchOrder(t *testing.T) {
	f := &fakeFS{root: t.TempDir(), env: map[string]string{
		"LD_LIBRARY_PATH": "/opt/a:/opt/b",
		"CUDA_HOME":       "/opt/cuda-home",
		"HOME":            "/home/u",
	}}
	for _, d := range []string{
		"usr/local/cuda-12.9/lib64/x", "usr/local/cuda-12.10/lib64/x", "usr/local/cuda-13.0/lib64/x",
		"usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/x",
		"usr/local/lib/python3.11/dist-packages/nvidia/cu13/lib/x",
		"home/u/.local/lib/python3.12/site-packages/nvidia/cuda_runtime/lib/x",
	} {
		f.touch(t, d)
	}
	var got []string
	for _, d := range f.searcher().dirs() {
		got = append(got, d.dir)
	}
	idx := func(d string) int {
		for i, g := range got {
			if g == d {
				return i
			}
		}
		t.Fatalf("%s not searched; dirs: %v", d, got)
		return -1
	}
	order := []string{
		"/opt/a", "/opt/b", "/opt/cuda-home/lib64", "/usr/local/cuda/lib64",
		"/usr/local/cuda-13.0/lib64", "/usr/local/cuda-12.10/lib64", "/usr/local/cuda-12.9/lib64",
		"/usr/local/lib/python3.11/dist-packages/nvidia/cu13/lib",
		"/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib",
		"/home/u/.local/lib/python3.12/site-packages/nvidia/cuda_runtime/lib",
		"/usr/lib/" + archTriplet(),
	}
	for i := 1; i < len(order); i++ {
		if idx(order[i-1]) >= idx(order[i]) {
			t.Errorf("%s searched after %s; dirs: %v", order[i-1], order[i], got)
		}
	}
	seen := map[string]bool{}
	for _, g := range got {
		if seen[g] {
			t.Errorf("%s listed twice", g)
		}
		seen[g] = true
	}
}

func TestFindCandidates(t *testing.T) {
	f := &fakeFS{root: t.TempDir(), env: map[string]string{"LD_LIBRARY_PATH": "/opt/x"},
		ld: "1234 libs found in cache `/etc/ld.so.cache'\n" +
			"\tlibcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1\n" +
			"\tlibcublas.so.12 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcublas.so.12\n"}
	pip := "/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.13"
	f.touch(t, pip)
	f.touch(t, "opt/x/libcublas.so.12")
	cands, searched := f.searcher().find(CublasSonames, EnvCublasLib)
	var paths []string
	for _, c := range cands {
		paths = append(paths, c.path)
	}
	// The newest soname first, wherever it is; then .12 in LD_LIBRARY_PATH,
	// then the ldconfig cache, then bare sonames for dlopen's own search.
	want := []string{pip, "/opt/x/libcublas.so.12", "/usr/lib/x86_64-linux-gnu/libcublas.so.12", "libcublas.so.13"}
	for i, w := range want {
		if i >= len(paths) || paths[i] != w {
			t.Fatalf("candidates %v, want prefix %v", paths, want)
		}
	}
	joined := strings.Join(searched, "; ")
	for _, s := range []string{"libcublas.so.13", "libcublas.so.12", "/opt/x (LD_LIBRARY_PATH)", "/usr/local/cuda/lib64", "ldconfig -p", "dlopen"} {
		if !strings.Contains(joined, s) {
			t.Errorf("search description lacks %q: %s", s, joined)
		}
	}
}

func TestFindOverride(t *testing.T) {
	f := &fakeFS{root: t.TempDir(), env: map[string]string{EnvCublasLib: "/x/my-cublas.so"}}
	cands, searched := f.searcher().find(CublasSonames, EnvCublasLib)
	if len(cands) != 1 || cands[0].path != "/x/my-cublas.so" || !strings.Contains(searched[0], EnvCublasLib) {
		t.Fatalf("override: %v %v", cands, searched)
	}
}

// TestMissingLibraryError loads from a tree with no library and a failing
// ldconfig: the error names every place searched and every failed load.
func TestMissingLibraryError(t *testing.T) {
	f := &fakeFS{root: t.TempDir(), env: map[string]string{"CUDA_HOME": "/nowhere/cuda"}, ldErr: errors.New("no ldconfig here")}
	bogus := f.touch(t, "usr/local/cuda/lib64/libcuda.so.1") // exists but is not a library
	cands, searched := f.searcher().find(DriverSonames, EnvDriverLib)
	if len(cands) == 0 || cands[0].path != "/usr/local/cuda/lib64/libcuda.so.1" {
		t.Fatalf("candidates %v", cands)
	}
	cands[0].path = bogus
	// Bare sonames would find a real driver on a GPU machine; keep only
	// the fake file to test the failure path everywhere.
	_, _, err := openFirst("the CUDA driver (libcuda)", cands[:1], searched)
	var le *LibError
	if !errors.As(err, &le) {
		t.Fatalf("want *LibError, got %v", err)
	}
	msg := err.Error()
	for _, s := range []string{"libcuda.so.1", "/nowhere/cuda/lib64 (CUDA_HOME)", "LD_LIBRARY_PATH", "no ldconfig here", bogus, "site-packages"} {
		if s == "LD_LIBRARY_PATH" || s == "site-packages" {
			continue // not set / no pip dirs in this tree
		}
		if !strings.Contains(msg, s) {
			t.Errorf("error lacks %q:\n%s", s, msg)
		}
	}
}

func TestParseLdconfig(t *testing.T) {
	m := parseLdconfig("3 libs found\n\tlibcuda.so.1 (libc6,x86-64) => /a/libcuda.so.1\n\tlibcuda.so.1 (libc6) => /b/libcuda.so.1\n\tjunk\n")
	if got := m["libcuda.so.1"]; len(got) != 2 || got[0] != "/a/libcuda.so.1" || got[1] != "/b/libcuda.so.1" {
		t.Fatalf("%v", m)
	}
}

func TestCompareVersions(t *testing.T) {
	if compareVersions("/usr/local/cuda-12.10", "/usr/local/cuda-12.9") <= 0 {
		t.Error("12.10 should sort after 12.9")
	}
	if compareVersions("/usr/local/cuda-13.0", "/usr/local/cuda-12.9") <= 0 {
		t.Error("13.0 should sort after 12.9")
	}
}

// TestCublasSonamesForDriver: cuBLAS 13 is not taken under a CUDA 12
// driver, nor 12 under 11.
func TestCublasSonamesForDriver(t *testing.T) {
	for _, c := range []struct {
		version int
		want    string
	}{
		{13000, "libcublas.so.13 libcublas.so.12 libcublas.so.11 libcublas.so"},
		{12080, "libcublas.so.12 libcublas.so.11 libcublas.so"},
		{11080, "libcublas.so.11 libcublas.so"},
	} {
		if got := strings.Join(cublasSonamesFor(c.version), " "); got != c.want {
			t.Errorf("driver %d: %s, want %s", c.version, got, c.want)
		}
	}
}

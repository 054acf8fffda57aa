package cuda

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ebitengine/purego"
)

// Library sonames, tried in order. The GPU machines have CUDA 13; older
// toolkits (12, 11) keep the same cuBLAS API for everything used here.
var (
	// DriverSonames are the names of the CUDA driver library.
	DriverSonames = []string{"libcuda.so.1", "libcuda.so"}
	// CublasSonames are the names of cuBLAS, newest first.
	CublasSonames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
	// cublasLtFor maps a cuBLAS soname to the cuBLASLt library it links
	// against; it is loaded first from the same directory, so a cuBLAS found
	// outside the loader's search path still resolves its dependency.
	cublasLtFor = map[string]string{
		"libcublas.so.13": "libcublasLt.so.13", "libcublas.so.12": "libcublasLt.so.12",
		"libcublas.so.11": "libcublasLt.so.11", "libcublas.so": "libcublasLt.so",
	}
)

// Environment variables that name a library file directly, skipping the search.
const (
	EnvDriverLib = "TSIMCNE_CUDA_LIB"
	EnvCublasLib = "TSIMCNE_CUBLAS_LIB"
)

// searcher finds shared libraries. Its functions are replaceable so the
// search order and the error message can be tested without CUDA.
type searcher struct {
	getenv   func(string) string
	ldconfig func() (string, error) // the output of `ldconfig -p`
	glob     func(string) ([]string, error)
	exists   func(string) bool
}

// systemSearcher looks at the real environment and file system.
func systemSearcher() searcher {
	return searcher{getenv: os.Getenv, ldconfig: runLdconfig, glob: filepath.Glob,
		exists: func(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }}
}

// runLdconfig returns `ldconfig -p` (the dynamic loader's cache), trying
// the usual locations of the program.
func runLdconfig() (string, error) {
	var errs []string
	for _, p := range []string{"ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, p, "-p").Output()
		cancel()
		if err == nil {
			return string(out), nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", p, err))
	}
	return "", errors.New(strings.Join(errs, "; "))
}

// searchDir is a directory to look in and why.
type searchDir struct{ dir, from string }

// dirs lists the directories to search, in order, without duplicates:
// LD_LIBRARY_PATH; CUDA_HOME, CUDA_PATH and CUDA_ROOT; /usr/local/cuda and
// /usr/local/cuda-* (newest first); the nvidia/*/lib folders of pip's
// site-packages (system, user, virtualenv, conda); the system library
// folders (and WSL's).
func (s searcher) dirs() []searchDir {
	var out []searchDir
	seen := map[string]bool{}
	add := func(dir, from string) {
		if dir == "" {
			return
		}
		dir = filepath.Clean(dir)
		if !seen[dir] {
			seen[dir] = true
			out = append(out, searchDir{dir, from})
		}
	}
	for _, d := range filepath.SplitList(s.getenv("LD_LIBRARY_PATH")) {
		add(d, "LD_LIBRARY_PATH")
	}
	toolkit := func(root, from string) {
		add(filepath.Join(root, "lib64"), from)
		add(filepath.Join(root, "lib"), from)
		add(filepath.Join(root, "targets", archTarget(), "lib"), from)
	}
	for _, v := range []string{"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"} {
		if r := s.getenv(v); r != "" {
			toolkit(r, v)
		}
	}
	toolkit("/usr/local/cuda", "/usr/local/cuda")
	if m, err := s.glob("/usr/local/cuda-*"); err == nil {
		slices.SortFunc(m, func(a, b string) int { return compareVersions(b, a) })
		for _, r := range m {
			toolkit(r, "/usr/local/cuda-*")
		}
	}
	var sites []string
	pyPatterns := []string{
		"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
		"/opt/conda/lib/python3*/site-packages",
	}
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if r := s.getenv(v); r != "" {
			pyPatterns = append(pyPatterns, filepath.Join(r, "lib", "python3*", "site-packages"))
			add(filepath.Join(r, "lib"), v)
		}
	}
	if h := s.getenv("HOME"); h != "" {
		pyPatterns = append(pyPatterns, filepath.Join(h, ".local", "lib", "python3*", "site-packages"))
	}
	for _, p := range pyPatterns {
		if m, err := s.glob(p); err == nil {
			sites = append(sites, m...)
		}
	}
	for _, site := range sites {
		if m, err := s.glob(filepath.Join(site, "nvidia", "*", "lib")); err == nil {
			slices.Sort(m)
			for _, d := range m {
				add(d, "pip site-packages/nvidia/*/lib")
			}
		}
	}
	for _, d := range []string{"/usr/lib/" + archTriplet(), "/lib/" + archTriplet(), "/usr/lib64", "/usr/lib", "/usr/lib/wsl/lib"} {
		add(d, "system")
	}
	return out
}

// compareVersions orders paths like /usr/local/cuda-12.4 by their numeric
// parts, so cuda-12.10 sorts after cuda-12.9.
func compareVersions(a, b string) int {
	num := func(s string) []int {
		var v []int
		cur, in := 0, false
		for _, r := range s {
			if r >= '0' && r <= '9' {
				cur, in = cur*10+int(r-'0'), true
				continue
			}
			if in {
				v = append(v, cur)
				cur, in = 0, false
			}
		}
		if in {
			v = append(v, cur)
		}
		return v
	}
	if c := slices.Compare(num(a), num(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func archTriplet() string {
	if runtime.GOARCH == "arm64" {
		return "aarch64-linux-gnu"
	}
	return "x86_64-linux-gnu"
}

func archTarget() string {
	if runtime.GOARCH == "arm64" {
		return "sbsa-linux"
	}
	return "x86_64-linux"
}

// parseLdconfig maps sonames to the paths `ldconfig -p` lists for them
// (lines like "	libcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1").
func parseLdconfig(out string) map[string][]string {
	m := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		_, path, ok := strings.Cut(rest, "=> ")
		if !ok {
			continue
		}
		if path = strings.TrimSpace(path); path != "" {
			m[name] = append(m[name], path)
		}
	}
	return m
}

// candidate is a library file to try: a path, or a bare soname for the
// dynamic loader's own search.
type candidate struct {
	path   string
	soname string
	from   string
}

// find lists the files to try for sonames, best first, and a description
// of everything searched for the error message. An override (the value of
// env) replaces the search.
func (s searcher) find(sonames []string, env string) (cands []candidate, searched []string) {
	if p := s.getenv(env); p != "" {
		return []candidate{{path: p, soname: filepath.Base(p), from: env}},
			[]string{fmt.Sprintf("%s=%s", env, p)}
	}
	seen := map[string]bool{}
	push := func(c candidate) {
		if !seen[c.path] {
			seen[c.path] = true
			cands = append(cands, c)
		}
	}
	for _, so := range sonames {
		for _, d := range s.dirs() {
			if p := filepath.Join(d.dir, so); s.exists(p) {
				push(candidate{p, so, d.from})
			}
		}
	}
	var dirs []string
	for _, d := range s.dirs() {
		dirs = append(dirs, d.dir+" ("+d.from+")")
	}
	searched = append(searched, "sonames "+strings.Join(sonames, ", "))
	searched = append(searched, "directories "+strings.Join(dirs, ", "))
	out, err := s.ldconfig()
	if err != nil {
		searched = append(searched, "ldconfig -p (failed: "+err.Error()+")")
	} else {
		cache := parseLdconfig(out)
		for _, so := range sonames {
			for _, p := range cache[so] {
				push(candidate{p, so, "ldconfig -p"})
			}
		}
		searched = append(searched, "ldconfig -p")
	}
	// Last, the dynamic loader's own search (RPATH, /etc/ld.so.cache, ...).
	for _, so := range sonames {
		push(candidate{so, so, "dlopen search"})
	}
	searched = append(searched, "dlopen's default search by soname")
	return cands, searched
}

// openFirst dlopens the first candidate that loads. Before a cuBLAS file,
// the cuBLASLt next to it is loaded globally so that its dependency
// resolves even outside the loader's path.
func openFirst(what string, cands []candidate, searched []string) (uintptr, string, error) {
	var fails []string
	for _, c := range cands {
		if lt, ok := cublasLtFor[c.soname]; ok && c.path != c.soname {
			ltPath := filepath.Join(filepath.Dir(c.path), lt)
			if _, err := os.Stat(ltPath); err == nil {
				if _, err := purego.Dlopen(ltPath, purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
					fails = append(fails, fmt.Sprintf("%s: %v", ltPath, err))
				}
			}
		}
		h, err := purego.Dlopen(c.path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, c.path, nil
		}
		fails = append(fails, fmt.Sprintf("%s (%s): %v", c.path, c.from, err))
	}
	return 0, "", &LibError{What: what, Searched: searched, Failures: fails}
}

// LibError says that a CUDA library could not be loaded, naming every
// place searched and every load that failed.
type LibError struct {
	What     string
	Searched []string
	Failures []string
}

// Error lists the search and the failures.
func (e *LibError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cuda: cannot load %s; searched: %s", e.What, strings.Join(e.Searched, "; "))
	if len(e.Failures) > 0 {
		fmt.Fprintf(&b, "; load errors: %s", strings.Join(e.Failures, "; "))
	}
	return b.String()
}

// openLibrary finds and loads one library with the system searcher.
func openLibrary(what string, sonames []string, env string) (uintptr, string, error) {
	cands, searched := systemSearcher().find(sonames, env)
	return openFirst(what, cands, searched)
}

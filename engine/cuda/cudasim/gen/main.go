// Command gen writes the CUDA emulator's kernel table from kernels.cu: for
// every `KERNEL void name(params)` (or `__global__`) definition, the
// parameter signature (one letter per parameter, from the declared types),
// whether the kernel needs real per-thread contexts (it, or a function it
// calls, uses __syncthreads), and a trampoline that calls the host
// compilation of the kernel with arguments decoded from cuLaunchKernel's
// kernelParams. Generating the table at build time means a kernel added to
// kernels.cu runs on the emulator with no hand-written glue.
//
// Usage: go run ./engine/cuda/cudasim/gen -o OUT.cpp path/to/kernels.cu
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// function is a top-level function definition of the source.
type function struct {
	name   string
	kernel bool
	params string // the text between the parentheses
	body   string
}

// kernel is a kernel's table entry.
type kernel struct {
	name    string
	sig     string
	casts   []string // C++ expression for each argument
	barrier bool
}

func main() {
	out := flag.String("o", "", "output file (C++)")
	flag.Parse()
	if flag.NArg() != 1 || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: gen -o OUT.cpp kernels.cu")
		os.Exit(2)
	}
	src, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cudasim gen:", err)
		os.Exit(1)
	}
	ks, err := parse(string(src))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cudasim gen: %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	abs, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cudasim gen:", err)
		os.Exit(1)
	}
	code := emit(abs, ks)
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, code, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "cudasim gen:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, *out); err != nil {
		fmt.Fprintln(os.Stderr, "cudasim gen:", err)
		os.Exit(1)
	}
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	ident        = regexp.MustCompile(`[A-Za-z_]\w*`)
	lastIdent    = regexp.MustCompile(`([A-Za-z_]\w*)\s*$`)
)

// stripComments blanks comments and string/char literals' effect on brace
// counting is ignored: kernels.cu has no braces inside literals.
func stripComments(s string) string {
	s = blockComment.ReplaceAllStringFunc(s, func(c string) string { return strings.Repeat(" ", len(c)) })
	return lineComment.ReplaceAllString(s, "")
}

// functions lists the top-level function definitions: a '{' at depth 0
// whose declaration ends with a parenthesised parameter list.
func functions(s string) ([]function, error) {
	var out []function
	depth, declStart := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if depth == 0 {
				decl := strings.TrimSpace(s[declStart:i])
				if f, ok := declFunction(decl); ok {
					end, err := matching(s, i)
					if err != nil {
						return nil, err
					}
					f.body = s[i+1 : end]
					out = append(out, f)
					i = end
					declStart = end + 1
					continue
				}
			}
			depth++
		case '}':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced '}' at byte %d", i)
			}
			if depth == 0 {
				declStart = i + 1
			}
		case ';':
			if depth == 0 {
				declStart = i + 1
			}
		case '#':
			// A preprocessor line ends a declaration.
			if depth == 0 && (i == 0 || s[i-1] == '\n') {
				j := strings.IndexByte(s[i:], '\n')
				if j < 0 {
					j = len(s) - i
				}
				i += j
				declStart = i
			}
		}
	}
	return out, nil
}

func matching(s string, open int) (int, error) {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced '{' at byte %d", open)
}

// declFunction recognises "... name(params) [qualifiers]".
func declFunction(decl string) (function, bool) {
	close := strings.LastIndexByte(decl, ')')
	if close < 0 || strings.TrimSpace(strings.Trim(decl[close+1:], " \t\nconst")) != "" {
		return function{}, false
	}
	depth := 0
	open := -1
	for i := close; i >= 0; i-- {
		if decl[i] == ')' {
			depth++
		} else if decl[i] == '(' {
			depth--
			if depth == 0 {
				open = i
				break
			}
		}
	}
	if open < 0 {
		return function{}, false
	}
	m := lastIdent.FindStringSubmatch(decl[:open])
	if m == nil {
		return function{}, false
	}
	head := decl[:open]
	kernel := regexp.MustCompile(`\bKERNEL\b|__global__`).MatchString(head)
	return function{name: m[1], kernel: kernel, params: decl[open+1 : close]}, true
}

// parse finds the kernels and their signatures.
func parse(src string) ([]kernel, error) {
	fns, err := functions(stripComments(src))
	if err != nil {
		return nil, err
	}
	// Which functions reach __syncthreads, directly or through calls.
	sync := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, f := range fns {
			if sync[f.name] {
				continue
			}
			if strings.Contains(f.body, "__syncthreads") {
				sync[f.name], changed = true, true
				continue
			}
			for _, id := range ident.FindAllString(f.body, -1) {
				if sync[id] {
					sync[f.name], changed = true, true
					break
				}
			}
		}
	}
	var ks []kernel
	seen := map[string]bool{}
	for _, f := range fns {
		if !f.kernel {
			continue
		}
		if seen[f.name] {
			return nil, fmt.Errorf("kernel %s defined twice", f.name)
		}
		seen[f.name] = true
		k := kernel{name: f.name, barrier: sync[f.name]}
		params := strings.TrimSpace(f.params)
		if params != "" && params != "void" {
			for i, p := range strings.Split(params, ",") {
				c, cast, err := paramType(p, i)
				if err != nil {
					return nil, fmt.Errorf("kernel %s: %v", f.name, err)
				}
				k.sig += string(c)
				k.casts = append(k.casts, cast)
			}
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("no kernels (KERNEL void name(...) { ... }) found")
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].name < ks[j].name })
	return ks, nil
}

// paramType maps a declared parameter to its signature letter and the
// expression that reads it from a cudasim_val array a.
func paramType(p string, i int) (byte, string, error) {
	p = strings.TrimSpace(p)
	m := lastIdent.FindStringSubmatch(p)
	if m == nil {
		return 0, "", fmt.Errorf("parameter %d %q: no name", i, p)
	}
	typ := strings.TrimSpace(p[:len(p)-len(m[0])])
	if strings.Contains(typ, "*") {
		return 'p', fmt.Sprintf("(%s)a[%d].p", typ, i), nil
	}
	var words []string
	for _, w := range strings.Fields(typ) {
		switch w {
		case "const", "volatile", "__restrict__", "restrict":
			continue
		}
		words = append(words, w)
	}
	base := strings.Join(words, " ")
	switch base {
	case "int", "signed", "signed int", "int32_t", "bool":
		if base == "bool" {
			return 0, "", fmt.Errorf("parameter %d %q: pass an int, not a bool", i, p)
		}
		return 'i', fmt.Sprintf("a[%d].i", i), nil
	case "unsigned", "unsigned int", "uint32_t":
		return 'u', fmt.Sprintf("a[%d].u", i), nil
	case "i64", "long long", "long long int", "int64_t", "long", "long int":
		return 'l', fmt.Sprintf("(%s)a[%d].l", base, i), nil
	case "u64", "unsigned long long", "uint64_t", "size_t", "unsigned long":
		return 'l', fmt.Sprintf("(%s)a[%d].raw", base, i), nil
	case "float":
		return 'f', fmt.Sprintf("a[%d].f", i), nil
	case "double":
		return 'd', fmt.Sprintf("a[%d].d", i), nil
	}
	return 0, "", fmt.Errorf("parameter %d %q: type %q is not supported by the emulator (pointers, int, unsigned, i64, float, double)", i, p, base)
}

func emit(srcPath string, ks []kernel) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Generated by engine/cuda/cudasim/gen from %s; do not edit.\n", filepath.Base(srcPath))
	fmt.Fprintf(&b, "#include %q\n\n", srcPath)
	for _, k := range ks {
		fmt.Fprintf(&b, "static void cudasim_call_%s(const cudasim_val *a) {\n  (void)a;\n  %s(%s);\n}\n", k.name, k.name, strings.Join(k.casts, ", "))
	}
	fmt.Fprintf(&b, "\nextern \"C\" const cudasim_kernel cudasim_kernels[] = {\n")
	for _, k := range ks {
		bar := 0
		if k.barrier {
			bar = 1
		}
		fmt.Fprintf(&b, "  {%q, %q, %d, cudasim_call_%s},\n", k.name, k.sig, bar, k.name)
	}
	fmt.Fprintf(&b, "};\nextern \"C\" const int cudasim_nkernels = %d;\n", len(ks))
	return b.Bytes()
}

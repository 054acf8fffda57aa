package cuda

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"unsafe"
)

// PTX is the kernel module, compiled from kernels/kernels.cu by clang
// (scripts/gpu/genptx.sh) for sm_80; the driver JIT-compiles it for newer
// GPUs when the module is loaded.
//
//go:embed kernels/kernels.ptx
var PTX string

// kernelID indexes kernelSpecs.
type kernelID int

const (
	kIm2col kernelID = iota
	kCol2im
	kFlipConvWeight
	kBNPartial
	kBNTrainFinalize
	kBNEvalPrep
	kBNApply
	kBNBwdPartial
	kBNBwdFinalize
	kBNBwdDX
	kReLUMask
	kAddMasked
	kAvgPool
	kAvgPoolBwd
	kBiasAct
	kColSum
	kSGD
	kColorU8
	kAugmentSrc8
	kCauchyFwd
	kCauchyBwd
	kLossMean
	kCosNorm
	kCosFwd
	kCosBwd
	numKernels
)

// kernelSpec is a kernel's PTX entry name and its parameter signature, one
// letter per parameter: p a device pointer, i an int32, l an int64, f a
// float32. Launches are checked against it, and TestKernelSignatures checks
// it against the .param lists of the embedded PTX.
type kernelSpec struct{ name, sig string }

var kernelSpecs = [numKernels]kernelSpec{
	kIm2col:          {"im2col", "ppiiiiiiiiii"},
	kCol2im:          {"col2im", "ppiiiiiiiiiii"},
	kFlipConvWeight:  {"flip_conv_weight", "piiip"},
	kBNPartial:       {"bn_partial", "piiip"},
	kBNTrainFinalize: {"bn_train_finalize", "piiippppppffpp"},
	kBNEvalPrep:      {"bn_eval_prep", "ppppfipp"},
	kBNApply:         {"bn_apply", "ppppplii"},
	kBNBwdPartial:    {"bn_bwd_partial", "pppppiiip"},
	kBNBwdFinalize:   {"bn_bwd_finalize", "piiippppp"},
	kBNBwdDX:         {"bn_bwd_dx", "pppppppli"},
	kReLUMask:        {"relu_mask", "ppl"},
	kAddMasked:       {"add_masked", "pppl"},
	kAvgPool:         {"avgpool", "piiip"},
	kAvgPoolBwd:      {"avgpool_bwd", "piiipp"},
	kBiasAct:         {"bias_act", "piipi"},
	kColSum:          {"colsum", "piip"},
	kSGD:             {"sgd", "ppplffffi"},
	kColorU8:         {"color_u8", "pppiiffffff"},
	kAugmentSrc8:     {"augment_src8", "piiippiiiipiffffff"},
	kCauchyFwd:       {"cauchy_fwd", "piipp"},
	kCauchyBwd:       {"cauchy_bwd", "piipp"},
	kLossMean:        {"loss_mean", "pip"},
	kCosNorm:         {"cos_norm", "piipp"},
	kCosFwd:          {"cos_fwd", "piifpp"},
	kCosBwd:          {"cos_bwd", "ppiifppp"},
}

// maxKernelArgs bounds a kernel's parameter count (the longest,
// augment_src8, has 18).
const maxKernelArgs = 20

// karg is one kernel argument: its kind (a signature letter) and its bits.
type karg struct {
	kind byte
	v    uint64
}

// argP passes a device pointer (0 for "absent").
func argP(p uintptr) karg { return karg{'p', uint64(p)} }

// argI passes an int32; it panics on overflow, a layer bug.
func argI(v int) karg {
	if v != int(int32(v)) {
		panic(fmt.Sprintf("cuda: kernel argument %d does not fit in int32", v))
	}
	return karg{'i', uint64(uint32(int32(v)))}
}

// argL passes an int64.
func argL(v int) karg { return karg{'l', uint64(int64(v))} }

// argF passes a float32.
func argF(v float32) karg { return karg{'f', uint64(*(*uint32)(unsafe.Pointer(&v)))} }

// argB passes a bool as an int32 0 or 1.
func argB(v bool) karg {
	if v {
		return karg{'i', 1}
	}
	return karg{'i', 0}
}

// argPack is cuLaunchKernel's kernelParams: an array of pointers, one per
// parameter, each to the parameter's value. It lives in the heap, in the
// backend, so the addresses stay valid during the call and nothing is
// allocated per launch. Every value occupies an 8-byte slot; 4-byte values
// sit in the low half (little-endian), where the driver reads them.
type argPack struct {
	vals [maxKernelArgs]uint64
	ptrs [maxKernelArgs]uintptr
}

// pack stores args, checking them against sig, and returns the address of
// the pointer array.
func (a *argPack) pack(name, sig string, args []karg) (uintptr, error) {
	if len(args) != len(sig) {
		return 0, fmt.Errorf("cuda: kernel %s takes %d arguments (%s), got %d", name, len(sig), sig, len(args))
	}
	for i, x := range args {
		if x.kind != sig[i] {
			return 0, fmt.Errorf("cuda: kernel %s argument %d is %c, want %c (signature %s)", name, i, x.kind, sig[i], sig)
		}
		a.vals[i] = x.v
		a.ptrs[i] = uintptr(unsafe.Pointer(&a.vals[i]))
	}
	return uintptr(unsafe.Pointer(&a.ptrs[0])), nil
}

// ptxEntry is one .entry of a PTX module: its name and parameter types.
type ptxEntry struct {
	name   string
	params []string // ".u64", ".u32", ".f32", ...
}

var (
	entryRe = regexp.MustCompile(`(?m)^\s*(?:\.visible\s+)?\.entry\s+([A-Za-z_$][\w$]*)\s*\(([^)]*)\)`)
	paramRe = regexp.MustCompile(`\.param\s+(?:\.align\s+\d+\s+)?(\.[a-z]+\d*)`)
)

// parsePTXEntries lists the kernels a PTX module defines.
func parsePTXEntries(ptx string) []ptxEntry {
	var out []ptxEntry
	for _, m := range entryRe.FindAllStringSubmatch(ptx, -1) {
		e := ptxEntry{name: m[1]}
		for _, p := range paramRe.FindAllStringSubmatch(m[2], -1) {
			e.params = append(e.params, p[1])
		}
		out = append(out, e)
	}
	return out
}

// ptxType is the PTX parameter type of a signature letter.
func ptxType(c byte) string {
	switch c {
	case 'p', 'l':
		return ".u64"
	case 'i':
		return ".u32"
	case 'f':
		return ".f32"
	}
	return "?"
}

// checkSignatures verifies every kernelSpec against a PTX module: the entry
// exists and its parameters have the types of the signature.
func checkSignatures(ptx string) error {
	entries := map[string]ptxEntry{}
	for _, e := range parsePTXEntries(ptx) {
		entries[e.name] = e
	}
	var errs []string
	for _, k := range kernelSpecs {
		e, ok := entries[k.name]
		if !ok {
			errs = append(errs, fmt.Sprintf("no .entry %s", k.name))
			continue
		}
		if len(e.params) != len(k.sig) {
			errs = append(errs, fmt.Sprintf("%s: %d parameters in PTX, signature %q has %d", k.name, len(e.params), k.sig, len(k.sig)))
			continue
		}
		for i := range k.sig {
			if want := ptxType(k.sig[i]); e.params[i] != want {
				errs = append(errs, fmt.Sprintf("%s parameter %d: PTX %s, signature %c (%s)", k.name, i, e.params[i], k.sig[i], want))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cuda: kernel signatures do not match the PTX: %s", strings.Join(errs, "; "))
	}
	return nil
}

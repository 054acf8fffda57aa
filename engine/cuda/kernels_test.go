package cuda

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/tsimcne/tsimcne-go/augment"
)

// TestKernelSignatures: every kernel the Go code launches is an .entry of
// the embedded PTX, with parameters of the types its signature passes.
func TestKernelSignatures(t *testing.T) {
	if err := checkSignatures(PTX); err != nil {
		t.Fatal(err)
	}
	entries := parsePTXEntries(PTX)
	if len(entries) != int(numKernels) {
		var names []string
		for _, e := range entries {
			names = append(names, e.name)
		}
		t.Errorf("PTX has %d entries %v, the backend launches %d", len(entries), names, numKernels)
	}
	for i, k := range kernelSpecs {
		if k.name == "" || len(k.sig) > maxKernelArgs {
			t.Errorf("kernel %d: spec %+v", i, k)
		}
	}
	if !strings.Contains(PTX, ".target sm_80") {
		t.Error("PTX is not built for sm_80")
	}
}

// TestCheckSignaturesCatchesMismatch: the check fails on a missing entry
// and on a parameter of the wrong type.
func TestCheckSignaturesCatchesMismatch(t *testing.T) {
	bad := strings.Replace(PTX, ".entry relu_mask(", ".entry relu_mask_renamed(", 1)
	if err := checkSignatures(bad); err == nil || !strings.Contains(err.Error(), "no .entry relu_mask") {
		t.Errorf("renamed entry: %v", err)
	}
	bad = strings.Replace(PTX, "sgd_param_4", "sgd_param_4_", 1)
	bad = strings.Replace(bad, ".param .f32 sgd_param_4_", ".param .u32 sgd_param_4_", 1)
	if err := checkSignatures(bad); err == nil || !strings.Contains(err.Error(), "sgd parameter 4") {
		t.Errorf("retyped parameter: %v", err)
	}
}

// TestPTXUpToDate recompiles kernels.cu when clang is installed and
// compares with the committed PTX.
func TestPTXUpToDate(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		if os.Getenv("TSIMCNE_REQUIRE_GPU") != "" {
			t.Fatal("clang not installed, and TSIMCNE_REQUIRE_GPU is set (make test): apt-get install -y clang")
		}
		t.Skip("clang not installed (apt-get install -y clang): the committed PTX is not re-checked")
	}
	out := filepath.Join(t.TempDir(), "k.ptx")
	cmd := exec.Command(clang, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib",
		"--cuda-gpu-arch=sm_80", "-O3", "-ffp-contract=off", "-S", "-o", out, "kernels/kernels.cu")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(PTX)) {
		v, _ := exec.Command(clang, "--version").Output()
		t.Fatalf("kernels/kernels.ptx is stale or was built by another clang (here: %s); run scripts/gpu/genptx.sh", strings.SplitN(string(v), "\n", 2)[0])
	}
}

func TestArgPack(t *testing.T) {
	var a argPack
	args := []karg{argP(0xdeadbeef00), argI(-3), argL(1 << 40), argF(1.5), argB(true)}
	kp, err := a.pack("k", "pilfi", args)
	if err != nil {
		t.Fatal(err)
	}
	if kp != uintptr(unsafe.Pointer(&a.ptrs[0])) {
		t.Fatal("kernelParams is not the pointer array")
	}
	for i := range args {
		if a.ptrs[i] != uintptr(unsafe.Pointer(&a.vals[i])) {
			t.Fatalf("pointer %d does not point at its value", i)
		}
	}
	// What the driver reads: 8 bytes for p and l, 4 for i and f.
	if v := *(*uint64)(unsafe.Pointer(&a.vals[0])); v != 0xdeadbeef00 {
		t.Errorf("pointer %x", v)
	}
	if v := *(*int32)(unsafe.Pointer(&a.vals[1])); v != -3 {
		t.Errorf("int32 %d", v)
	}
	if v := *(*int64)(unsafe.Pointer(&a.vals[2])); v != 1<<40 {
		t.Errorf("int64 %d", v)
	}
	if v := *(*float32)(unsafe.Pointer(&a.vals[3])); v != 1.5 {
		t.Errorf("float32 %g", v)
	}
	if v := *(*int32)(unsafe.Pointer(&a.vals[4])); v != 1 {
		t.Errorf("bool %d", v)
	}
	if _, err := a.pack("k", "pi", args); err == nil || !strings.Contains(err.Error(), "takes 2 arguments") {
		t.Errorf("count mismatch: %v", err)
	}
	if _, err := a.pack("k", "pifli", args); err == nil || !strings.Contains(err.Error(), "argument 2") {
		t.Errorf("kind mismatch: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("argI(1<<40) did not panic")
		}
	}()
	argI(1 << 40)
}

// TestParamsStruct pins augment.Params to the C struct the colour kernel reads.
func TestParamsStruct(t *testing.T) {
	var p augment.Params
	if paramsSize != 44 {
		t.Fatalf("augment.Params is %d bytes, the kernel's struct 44", paramsSize)
	}
	off := map[string]uintptr{
		"Top": unsafe.Offsetof(p.Top), "Left": unsafe.Offsetof(p.Left), "CropH": unsafe.Offsetof(p.CropH),
		"CropW": unsafe.Offsetof(p.CropW), "Flip": unsafe.Offsetof(p.Flip), "Jitter": unsafe.Offsetof(p.Jitter),
		"Gray": unsafe.Offsetof(p.Gray), "Order": unsafe.Offsetof(p.Order), "Brightness": unsafe.Offsetof(p.Brightness),
		"Contrast": unsafe.Offsetof(p.Contrast), "Saturation": unsafe.Offsetof(p.Saturation),
		"Hue": unsafe.Offsetof(p.Hue), "Angle": unsafe.Offsetof(p.Angle),
	}
	// The C struct in kernels.cu: natural alignment gives these offsets.
	want := map[string]uintptr{"Top": 0, "Left": 4, "CropH": 8, "CropW": 12, "Flip": 16, "Jitter": 17,
		"Gray": 18, "Order": 19, "Brightness": 24, "Contrast": 28, "Saturation": 32, "Hue": 36, "Angle": 40}
	for k, w := range want {
		if off[k] != w {
			t.Errorf("augment.Params.%s at %d, kernel reads %d", k, off[k], w)
		}
	}
}

func TestGrids(t *testing.T) {
	for _, rows := range []int{1, 63, 64, 1000, 1 << 20, 1<<20 + 7} {
		rpb, nb := bnGrid(rows)
		if nb < 1 || nb > 256 || rpb < 64 || rpb*nb < rows || rpb*(nb-1) >= rows {
			t.Errorf("bnGrid(%d) = %d rows × %d blocks", rows, rpb, nb)
		}
	}
	if grid1(1) != 1 || grid1(256) != 1 || grid1(257) != 2 || grid1(1<<40) != 65535 {
		t.Error("grid1")
	}
	if math.MaxInt32 < 65535*blockSize {
		t.Error("grid too large")
	}
}

package engine

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func newCPU(t testing.TB, gemm string) *CPU {
	t.Helper()
	be, err := NewCPU(CPUOptions{Threads: 2, GEMM: GEMM(gemm)})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func randImages(seed uint64, n, size int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*size*size*3)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func TestSmokeTrainTiny(t *testing.T) {
	be := newCPU(t, "auto")
	m, err := NewModel(be, Options{Arch: "resnet_tiny", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTrainer(m, "euclidean")
	x := randImages(2, 8, 32)
	first := 0.0
	for i := 0; i < 3; i++ {
		l, err := tr.Step(x, 8, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("step %d loss %.5f", i, l)
		if i == 0 {
			first = l
		} else if i == 2 && l >= first {
			t.Errorf("loss did not fall on a fixed batch: %.5f → %.5f", first, l)
		}
	}
	// The cosine (SimCLR) metric trains through the same path.
	tc := NewTrainer(m, "cosine")
	if l, err := tc.Step(x, 8, 0.05); err != nil || !(l > 0) {
		t.Errorf("cosine step: loss %v, %v", l, err)
	}
}

// TestBackendReportsGEMM checks that the program can tell which GEMM runs,
// and that forcing the pure-Go path works (TSIMCNE_GEMM=go or GEMM "go").
func TestBackendReportsGEMM(t *testing.T) {
	t.Setenv("TSIMCNE_GEMM", "go")
	be, err := NewCPU(CPUOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if be.UsingOpenBLAS() || !strings.Contains(be.Describe(), "pure-Go") {
		t.Errorf("TSIMCNE_GEMM=go: %s", be.Describe())
	}
	t.Setenv("TSIMCNE_GEMM", "")
	be, err = NewCPU(CPUOptions{Threads: 2, GEMM: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto: %s", be.Describe())
	if strings.Contains(be.Name(), "pure-Go") && be.Fallback == "" {
		t.Error("pure-Go GEMM in use without a reason")
	}
	if _, err := NewCPU(CPUOptions{GEMM: "cublas"}); err == nil {
		t.Error("unknown GEMM accepted")
	}
}

// TestStepAllocations checks that a steady-state training step reuses its
// buffers: the kernels and the loss hand their operands to the workers
// without closures, so a step allocates nothing, with either loss.
func TestStepAllocations(t *testing.T) {
	for _, gemm := range []string{"auto", "go"} {
		for _, metric := range []Metric{MetricEuclidean, MetricCosine} {
			be := newCPU(t, gemm)
			m, err := NewModel(be, Options{Arch: "resnet_tiny", Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			tr := NewTrainer(m, metric)
			x := randImages(3, 64, 32) // 64 views: the loss runs on both workers
			if _, err := tr.Step(x, 64, 0.01); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(3, func() {
				if _, err := tr.Step(x, 64, 0.01); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s, %s: %.0f allocations per step", be.Name(), metric, allocs)
			if allocs > 0 {
				t.Errorf("%s, %s: %.0f allocations per step, want 0", be.Name(), metric, allocs)
			}
		}
	}
}

// TestProfileRows checks that the layers time themselves into Model.Prof:
// a profiled step has a row per layer of the network and per phase of the
// step, in network order.
func TestProfileRows(t *testing.T) {
	be := newCPU(t, "go")
	m, err := NewModel(be, Options{Arch: "resnet_tiny", Seed: 1, ImageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTrainer(m, "euclidean")
	x := randImages(2, 4, 8)
	if _, err := tr.Step(x, 4, 0.01); err != nil {
		t.Fatal(err)
	}
	m.Prof = NewProfile()
	if _, err := tr.Step(x, 4, 0.01); err != nil {
		t.Fatal(err)
	}
	want := []string{"stem.conv", "stem.bn_relu", "backbone.layer1.0.conv1", "backbone.layer1.0.bn1_relu",
		"backbone.layer1.0.conv2", "backbone.layer1.0.bn2_add_relu", "backbone.layer2.0.downsample",
		"pool", "head", "loss", "sgd"}
	got := strings.Join(m.Prof.order, " ")
	at := 0
	for _, w := range want {
		i := strings.Index(got[at:], w+" ")
		if i < 0 && strings.HasSuffix(got, " "+w) {
			i = len(got[at:]) - len(w)
		}
		if i < 0 {
			t.Fatalf("profile rows %q: %q missing or out of order", got, w)
		}
		at += i + len(w)
	}
	for _, row := range m.Prof.order {
		if m.Prof.t[row] <= 0 && m.Prof.calls[row] == 0 {
			t.Errorf("row %s has no time and no calls", row)
		}
	}
}

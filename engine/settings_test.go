package engine

import (
	"flag"
	"strings"
	"testing"
)

// TestSettingsParse checks the settings types' parsers and their flag.Value
// side: known names (and aliases) parse to the canonical value, anything
// else is an error naming the setting and the choices.
func TestSettingsParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Metric
	}{{"euclidean", MetricEuclidean}, {"Cosine", MetricCosine}, {" cosine ", MetricCosine}} {
		if got, err := ParseMetric(c.in); err != nil || got != c.want {
			t.Errorf("ParseMetric(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := ParseMetric("manhattan"); err == nil || !strings.Contains(err.Error(), "engine: metric \"manhattan\": want euclidean or cosine") {
		t.Errorf("ParseMetric(manhattan): %v", err)
	}
	for _, c := range []struct {
		in   string
		want Device
	}{{"auto", DeviceAuto}, {"CPU", DeviceCPU}, {"cuda", DeviceCUDA}} {
		if got, err := ParseDevice(c.in); err != nil || got != c.want {
			t.Errorf("ParseDevice(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := ParseDevice("tpu"); err == nil || !strings.HasPrefix(err.Error(), "engine: device \"tpu\"") {
		t.Errorf("ParseDevice(tpu): %v", err)
	}
	for in, want := range map[string]GEMM{"": GEMMAuto, "auto": GEMMAuto, "AVX-512": GEMMAVX512, "openblas": GEMMOpenBLAS, "pure-go": GEMMGo, "go": GEMMGo} {
		if got, err := ParseGEMM(in); err != nil || got != want {
			t.Errorf("ParseGEMM(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseGEMM("cublas"); err == nil {
		t.Error("ParseGEMM(cublas) accepted")
	}

	// As flags: Set parses, String gives the canonical name back.
	var (
		m Metric = MetricEuclidean
		d Device = DeviceAuto
		g GEMM   = GEMMAuto
	)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&m, "metric", "")
	fs.Var(&d, "device", "")
	fs.Var(&g, "gemm", "")
	if err := fs.Parse([]string{"--metric", "COSINE", "--device", "cpu", "--gemm", "purego"}); err != nil {
		t.Fatal(err)
	}
	if m.String() != "cosine" || d.String() != "cpu" || g.String() != "go" {
		t.Errorf("flags parsed to %s, %s, %s", m, d, g)
	}
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse([]string{"--device", "tpu"}); err == nil {
		t.Error("--device tpu accepted")
	}
}

// TestOpenBackend checks backend construction by device name in a program
// without the CUDA backend (this package's tests do not import it).
func TestOpenBackend(t *testing.T) {
	be, fallback, err := OpenBackend(DeviceCPU, DeviceOptions{Threads: 1, GEMM: GEMMGo})
	if err != nil || fallback != "" {
		t.Fatalf("cpu: %v, fallback %q", err, fallback)
	}
	if _, ok := be.(*CPU); !ok || !strings.Contains(be.Describe(), "pure-Go") || be.ColsLimit() != DefaultColsLimit {
		t.Errorf("cpu: %T %q, ColsLimit %d", be, be.Describe(), be.ColsLimit())
	}
	be, fallback, err = OpenBackend(DeviceAuto, DeviceOptions{Threads: 1, GEMM: GEMMGo})
	if err != nil || fallback != "no CUDA backend in this program, using the CPU" {
		t.Fatalf("auto: %v, fallback %q", err, fallback)
	}
	if _, ok := be.(*CPU); !ok {
		t.Errorf("auto without CUDA gave %T", be)
	}
	if _, _, err := OpenBackend(DeviceCUDA, DeviceOptions{}); err == nil || !strings.Contains(err.Error(), "engine: device cuda: this program was built without the CUDA backend") {
		t.Errorf("cuda without the backend: %v", err)
	}
	if _, _, err := OpenBackend("tpu", DeviceOptions{}); err == nil || !strings.Contains(err.Error(), "want auto, cpu or cuda") {
		t.Errorf("tpu: %v", err)
	}
	if _, _, err := OpenBackend(DeviceCPU, DeviceOptions{GEMM: "cublas"}); err == nil {
		t.Error("cpu with GEMM cublas accepted")
	}
	// The model's default workspace is the CPU's preference.
	m, err := NewModel(be, Options{Arch: "resnet_tiny", ImageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if m.Options().ColsLimit != be.ColsLimit() {
		t.Errorf("ColsLimit %d, backend prefers %d", m.Options().ColsLimit, be.ColsLimit())
	}
}

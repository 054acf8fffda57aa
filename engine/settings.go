package engine

import (
	"fmt"
	"strings"
)

// The settings a program passes to the engine by name (flags, a run's
// config.json) each have a type with a parser, as format.Codec has: a
// program parses once, where the setting enters (a flag's Set, a
// configuration's Validate), and the engine switches on known values. Each
// type is a string, so it reads and writes as one in JSON, and implements
// flag.Value and pflag.Value (Set, String, Type), so a flag can hold one
// directly.

// Metric is the similarity of the contrastive loss.
type Metric string

// The loss metrics. The zero Metric means MetricEuclidean.
const (
	// MetricEuclidean is t-SimCNE's Cauchy kernel 1/(1+‖zᵢ−zⱼ‖²).
	MetricEuclidean Metric = "euclidean"
	// MetricCosine is SimCLR's cosine similarity at temperature 0.5.
	MetricCosine Metric = "cosine"
)

// ParseMetric turns "euclidean" or "cosine" into a Metric.
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(strings.ToLower(strings.TrimSpace(s))); m {
	case MetricEuclidean, MetricCosine:
		return m, nil
	}
	return "", fmt.Errorf("engine: metric %q: want euclidean or cosine", s)
}

// check accepts the known metrics and the zero Metric (euclidean): the
// engine's entry points take a Metric a program may have built without
// ParseMetric.
func (m Metric) check() error {
	switch m {
	case "", MetricEuclidean, MetricCosine:
		return nil
	}
	return fmt.Errorf("engine: unknown loss metric %q (want euclidean or cosine)", string(m))
}

// orDefault is m, or MetricEuclidean for the zero Metric.
func (m Metric) orDefault() Metric {
	if m == "" {
		return MetricEuclidean
	}
	return m
}

// String is the metric's name.
func (m Metric) String() string { return string(m) }

// Set parses s into m (flag.Value).
func (m *Metric) Set(s string) error {
	v, err := ParseMetric(s)
	if err == nil {
		*m = v
	}
	return err
}

// Type names the flag's value type in a pflag usage line.
func (*Metric) Type() string { return "metric" }

// Device is where a program runs the engine.
type Device string

// The devices. The zero Device means DeviceAuto in a configuration and
// "unchanged" in overrides of a saved one.
const (
	// DeviceAuto is a CUDA GPU when one can be used, else the CPU.
	DeviceAuto Device = "auto"
	// DeviceCPU is the CPU backend (NewCPU).
	DeviceCPU Device = "cpu"
	// DeviceCUDA is a CUDA GPU (the engine/cuda backend), or an error.
	DeviceCUDA Device = "cuda"
)

// ParseDevice turns "auto", "cpu" or "cuda" into a Device.
func ParseDevice(s string) (Device, error) {
	switch d := Device(strings.ToLower(strings.TrimSpace(s))); d {
	case DeviceAuto, DeviceCPU, DeviceCUDA:
		return d, nil
	}
	return "", fmt.Errorf("engine: device %q: want auto, cpu or cuda", s)
}

// String is the device's name.
func (d Device) String() string { return string(d) }

// Set parses s into d (flag.Value).
func (d *Device) Set(s string) error {
	v, err := ParseDevice(s)
	if err == nil {
		*d = v
	}
	return err
}

// Type names the flag's value type in a pflag usage line.
func (*Device) Type() string { return "device" }

// GEMM selects the CPU backend's matrix multiplication (CPUOptions.GEMM).
type GEMM string

// The CPU GEMMs. The zero GEMM means GEMMAuto.
const (
	// GEMMAuto takes the TSIMCNE_GEMM environment variable when set, else
	// the AVX-512 kernels on CPUs with AVX-512F, else OpenBLAS when it
	// loads, else pure Go.
	GEMMAuto GEMM = "auto"
	// GEMMAVX512 is the package's AVX-512 assembly kernels, or an error.
	GEMMAVX512 GEMM = "avx512"
	// GEMMOpenBLAS is OpenBLAS loaded at run time, or an error.
	GEMMOpenBLAS GEMM = "openblas"
	// GEMMGo is the pure-Go GEMM: every CPU, slowest.
	GEMMGo GEMM = "go"
)

// ParseGEMM turns "auto", "avx512", "openblas" or "go" (also "avx-512",
// "pure-go", "purego"; case is ignored) into a GEMM.
func ParseGEMM(s string) (GEMM, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return GEMMAuto, nil
	case "avx512", "avx-512":
		return GEMMAVX512, nil
	case "openblas":
		return GEMMOpenBLAS, nil
	case "go", "pure-go", "purego":
		return GEMMGo, nil
	}
	return "", fmt.Errorf("engine: GEMM %q: want auto, avx512, openblas or go", s)
}

// String is the GEMM's name.
func (g GEMM) String() string { return string(g) }

// Set parses s into g (flag.Value).
func (g *GEMM) Set(s string) error {
	v, err := ParseGEMM(s)
	if err == nil {
		*g = v
	}
	return err
}

// Type names the flag's value type in a pflag usage line.
func (*GEMM) Type() string { return "gemm" }

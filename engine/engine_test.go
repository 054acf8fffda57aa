package engine

import (
	"math"
	"path/filepath"
	"testing"
)

// The loss test vectors of docs/ALGORITHM.md, "Loss".
var specZ = []float32{0, 0, 1, 0, 0, 2, 0.5, 0, 1, 1, 0, 1}

func TestCauchyLossSpecVector(t *testing.T) {
	dz := make([]float32, len(specZ))
	l, err := CauchyInfoNCE(specZ, 6, 2, dz)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l-1.2974539410250014) > 1e-6 {
		t.Errorf("Cauchy loss %.12f, want 1.2974539410250014", l)
	}
	for _, c := range []struct {
		row  int
		want [2]float64
	}{{0, [2]float64{-0.0757789, 0.1363232}}, {3, [2]float64{0.2618647, 0.1356671}}} {
		for j := 0; j < 2; j++ {
			if got := float64(dz[2*c.row+j]); math.Abs(got-c.want[j]) > 1e-6 {
				t.Errorf("dL/dz_%d[%d] = %.7f, want %.7f", c.row, j, got, c.want[j])
			}
		}
	}
}

func TestCosineLossSpecVector(t *testing.T) {
	l, err := CosineInfoNCE(specZ, 6, 2, 0.5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l-1.389625540827232) > 1e-6 {
		t.Errorf("cosine loss %.12f, want 1.389625540827232", l)
	}
}

func TestLossAllEqual(t *testing.T) {
	z := make([]float32, 2048*3)
	l, err := CauchyInfoNCE(z, 2048, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l-math.Log(2047)) > 1e-9 {
		t.Errorf("equal embeddings: %.6f, want log(2N−1) = %.6f", l, math.Log(2047))
	}
}

func TestLossRejectsBadInput(t *testing.T) {
	if _, err := CauchyInfoNCE(make([]float32, 6), 3, 2, nil); err == nil {
		t.Error("odd batch accepted")
	}
	if _, err := CauchyInfoNCE(make([]float32, 5), 2, 2, nil); err == nil {
		t.Error("short z accepted")
	}
	if _, err := CosineInfoNCE(make([]float32, 4), 2, 2, 0, nil); err == nil {
		t.Error("τ = 0 accepted")
	}
}

// TestLossesMatchPyTorch compares both losses and their gradients with
// PyTorch autograd (float64) on random embeddings (fixture).
func TestLossesMatchPyTorch(t *testing.T) {
	fx := readST(t, "testdata/losses.safetensors")
	for _, c := range []struct {
		name string
		n, d int
	}{{"a", 6, 2}, {"b", 16, 5}, {"c", 64, 128}} {
		z := tensorF32(t, fx, "z_"+c.name)
		for _, metric := range []string{"cauchy", "cosine"} {
			dz := make([]float32, len(z))
			var l float64
			var err error
			if metric == "cauchy" {
				l, err = CauchyInfoNCE(z, c.n, c.d, dz)
			} else {
				l, err = CosineInfoNCE(z, c.n, c.d, 0.5, dz)
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := fx[metric+"_"+c.name+"_loss"].Float64s()
			if math.Abs(l-want[0]) > 1e-6*math.Max(1, math.Abs(want[0])) {
				t.Errorf("%s %s: loss %.10f, PyTorch %.10f", metric, c.name, l, want[0])
			}
			expectClose(t, metric+" "+c.name+" gradient", dz, tensorF32(t, fx, metric+"_"+c.name+"_grad"), 1e-5)
		}
	}
}

// TestLRTableSpecValues checks the check values of docs/ALGORITHM.md,
// "Learning-rate schedule", at batch 512.
func TestLRTableSpecValues(t *testing.T) {
	base := BaseLR(512)
	if math.Abs(base-0.06) > 1e-15 {
		t.Fatalf("base LR %g, want 0.06", base)
	}
	s1 := LRTable(1000, 10, base)
	s2 := LRTable(50, 0, base)
	s3 := LRTable(450, 10, base/1000)
	for _, c := range []struct {
		name  string
		got   float64
		want  float64
		digit float64
	}{
		{"stage 1 epoch 0", s1[0], 0, 1e-12},
		{"stage 1 epoch 1", s1[1], 0.0066667, 5e-8},
		{"stage 1 epoch 9", s1[9], 0.06, 1e-12},
		{"stage 1 epoch 10", s1[10], 0.06, 1e-12},
		{"stage 1 epoch 11", s1[11], 0.0599998, 5e-8},
		{"stage 1 epoch 500", s1[500], 0.030523, 5e-7},
		{"stage 1 epoch 999", s1[999], 6.03e-7, 5e-10},
		{"stage 2 epoch 1", s2[1], 0.0599431, 5e-8},
		{"stage 2 epoch 49", s2[49], 2.27e-4, 5e-7},
		{"stage 3 epoch 9", s3[9], 6e-5, 1e-12},
	} {
		if math.Abs(c.got-c.want) > c.digit {
			t.Errorf("%s: %.9g, want %.9g", c.name, c.got, c.want)
		}
	}
	if len(s1) < 1000 || len(s2) < 50 || len(s3) < 450 {
		t.Errorf("table lengths %d %d %d", len(s1), len(s2), len(s3))
	}
	for _, v := range s1[1:] {
		if v <= 0 {
			t.Fatal("LR reaches 0 after epoch 0")
		}
	}
	// Fewer epochs than warm-up: warm-up only, no crash, one entry per epoch.
	if short := LRTable(5, 10, 0.1); len(short) < 5 || short[4] <= short[3] {
		t.Errorf("short table %v", short)
	}
	if one := LRTable(1, 1, 0.1); len(one) < 1 {
		t.Errorf("n = w = 1: %v", one)
	}
}

// TestSGDMatchesPyTorch checks clamping to ±4 before weight decay,
// momentum (buf = d on the first step) against torch.optim.SGD.
func TestSGDMatchesPyTorch(t *testing.T) {
	fx := readST(t, "testdata/sgd.safetensors")
	lrs, _ := fx["lrs"].Float64s()
	be := newCPU(t, "go")
	p := &Param{Name: "p", Shape: []int{50}, Trainable: true}
	p.Data, p.Grad = be.Alloc(50), be.Alloc(50)
	be.Upload(p.Data, tensorF32(t, fx, "p0"))
	frozen := &Param{Name: "f", Shape: []int{3}, Data: HostBuf([]float32{1, 2, 3}), Grad: HostBuf([]float32{9, 9, 9})}
	opt := NewOptimizer(be)
	for i, lr := range lrs {
		be.Upload(p.Grad, tensorF32(t, fx, "g"+strconvF(float64(i))))
		opt.Step([]*Param{p, frozen}, lr)
		got := make([]float32, 50)
		be.Download(got, p.Data)
		expectClose(t, "params after step "+strconvF(float64(i+1)), got, tensorF32(t, fx, "p"+strconvF(float64(i+1))), 1e-6)
		mb, _ := opt.MomentumBuf(p)
		be.Download(got, mb)
		expectClose(t, "momentum after step "+strconvF(float64(i+1)), got, tensorF32(t, fx, "m"+strconvF(float64(i+1))), 1e-6)
	}
	if frozen.Data.host[0] != 1 || frozen.Data.host[2] != 3 {
		t.Error("frozen parameter was updated")
	}
	if _, ok := opt.MomentumBuf(frozen); ok {
		t.Error("frozen parameter got a momentum buffer")
	}
}

func TestArchNames(t *testing.T) {
	for _, c := range []struct {
		name   string
		params int
	}{
		{"", 11168832 + 512*1024 + 1024 + 1024*128 + 128},
		{"resnet18_simclr", 11168832 + 512*1024 + 1024 + 1024*128 + 128},
		{"resnet_tiny", -1},
		{"resnet_w4_b1211_h32", -1},
	} {
		a, err := ParseArch(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if c.params > 0 {
			be := newCPU(t, "go")
			m, err := NewModel(be, Options{Arch: a.Name})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.NumParams(false); got != c.params {
				t.Errorf("%s: %d parameters, want %d", a.Name, got, c.params)
			}
			// docs/ALGORITHM.md's backbone count excludes the head.
			if bb := m.NumParams(false) - (512*1024 + 1024 + 1024*128 + 128); bb != 11168832 {
				t.Errorf("backbone has %d parameters, want 11,168,832", bb)
			}
		}
	}
	for _, bad := range []string{"resnet50", "resnet_w0_b1111", "resnet_w8_b0111", "resnet_w8_b1111_h0"} {
		if _, err := ParseArch(bad); err == nil {
			t.Errorf("ParseArch(%q) accepted", bad)
		}
	}
	if _, err := NewModel(newCPU(t, "go"), Options{Arch: "resnet_tiny", ImageSize: 4}); err == nil {
		t.Error("image size 4 accepted")
	}
}

// TestInitStatistics checks Kaiming fan_out and PyTorch's Linear init, and
// that a seed reproduces the weights exactly while another seed does not.
func TestInitStatistics(t *testing.T) {
	be := newCPU(t, "go")
	m1, _ := NewModel(be, Options{Arch: "resnet_small", Seed: 5})
	m2, _ := NewModel(be, Options{Arch: "resnet_small", Seed: 5})
	m3, _ := NewModel(be, Options{Arch: "resnet_small", Seed: 6})
	for i, p := range m1.Params() {
		v := p.Data.host
		if p.Name == "backbone.layer3.0.conv2.weight" {
			var s float64
			for _, x := range v {
				s += float64(x) * float64(x)
			}
			std := math.Sqrt(s / float64(len(v)))
			want := math.Sqrt(2 / float64(p.Shape[0]*9))
			if math.Abs(std-want)/want > 0.02 {
				t.Errorf("%s std %.5f, want %.5f", p.Name, std, want)
			}
		}
		if p.Name == "head.0.weight" || p.Name == "head.0.bias" {
			bound := 1 / math.Sqrt(float64(m1.FeatureDim()))
			mx := 0.0
			for _, x := range v {
				mx = math.Max(mx, math.Abs(float64(x)))
			}
			if mx > bound || mx < 0.9*bound {
				t.Errorf("%s max |w| %.5f, bound %.5f", p.Name, mx, bound)
			}
		}
		if p.Name == "backbone.bn1.weight" && v[0] != 1 {
			t.Error("BN γ not 1")
		}
		w2 := m2.Params()[i].Data.host
		for j := range v {
			if v[j] != w2[j] {
				t.Fatalf("%s differs between two models of seed 5", p.Name)
			}
		}
	}
	if m1.Params()[0].Data.host[0] == m3.Params()[0].Data.host[0] {
		t.Error("seeds 5 and 6 gave the same first weight")
	}
}

// TestStages checks the stage-2 mutation (new N(0,1) 2-D layer, everything
// else frozen and unchanged by a step, BN statistics still updating) and
// the stage-3 unfreeze.
func TestStages(t *testing.T) {
	be := newCPU(t, "auto")
	m, _ := NewModel(be, Options{Arch: microArch, OutDim: microOutDim, Seed: 1})
	tr := NewTrainer(m, "euclidean")
	x := randImages(1, 8, 32)
	if _, err := tr.Step(x, 8, 0.01); err != nil {
		t.Fatal(err)
	}
	if err := tr.StartStage(2, 2); err != nil {
		t.Fatal(err)
	}
	if m.OutDim() != 2 || m.NumParams(true) != 64*2+2 {
		t.Fatalf("stage 2: out %d, %d trainable", m.OutDim(), m.NumParams(true))
	}
	var w []float32
	for _, p := range m.Params() {
		if p.Name == "head.2.weight" {
			w = p.Data.host
		}
	}
	var s, ss float64
	for _, v := range w {
		s += float64(v)
		ss += float64(v) * float64(v)
	}
	if std := math.Sqrt(ss/float64(len(w)) - (s/float64(len(w)))*(s/float64(len(w)))); std < 0.8 || std > 1.2 {
		t.Errorf("stage-2 weights std %.3f, want ≈ 1 (N(0,1))", std)
	}
	before := m.StateDict()
	if _, err := tr.Step(x, 8, 0.01); err != nil {
		t.Fatal(err)
	}
	after := m.StateDict()
	for k, v := range before {
		changed := string(v.Data) != string(after[k].Data)
		switch {
		case k == "head.2.weight" || k == "head.2.bias":
			if !changed {
				t.Errorf("%s not trained in stage 2", k)
			}
		case filepath.Ext(k) == ".running_mean" || filepath.Ext(k) == ".num_batches_tracked":
			if !changed {
				t.Errorf("%s not updated in stage 2 (BN stays in training mode)", k)
			}
		case filepath.Ext(k) == ".running_var":
		default:
			if changed {
				t.Errorf("frozen %s changed in stage 2", k)
			}
		}
	}
	if err := tr.StartStage(3, 0); err != nil {
		t.Fatal(err)
	}
	if m.NumParams(true) != m.NumParams(false) || tr.Opt.Steps() != 0 {
		t.Error("stage 3 did not unfreeze everything with a fresh optimiser")
	}
	if _, err := tr.Step(x, 8, 0.01); err != nil {
		t.Fatal(err)
	}
	if err := tr.StartStage(4, 0); err == nil {
		t.Error("stage 4 accepted")
	}
}

// TestCheckpointResume saves mid-training (weights, BN statistics,
// momentum), reloads, and checks that the next step is bit-identical.
func TestCheckpointResume(t *testing.T) {
	for _, stage := range []int{1, 2} {
		be := newCPU(t, "auto")
		m, _ := NewModel(be, Options{Arch: microArch, OutDim: microOutDim, Seed: 9})
		tr := NewTrainer(m, "euclidean")
		x := randImages(4, 6, 32)
		if stage == 2 {
			tr.StartStage(2, 2)
		}
		for i := 0; i < 2; i++ {
			if _, err := tr.Step(x, 6, 0.05); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "ck.safetensors")
		if err := SaveCheckpoint(path, m, tr.Opt, CheckpointMeta{Epoch: 12, Config: []byte(`{"batch_size":3}`)}); err != nil {
			t.Fatal(err)
		}
		m2, opt2, meta, err := LoadCheckpoint(path, be, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if meta.Epoch != 12 || meta.Stage != stage || meta.Arch != microArch || string(meta.Config) != `{"batch_size":3}` || opt2.Steps() != 2 {
			t.Errorf("metadata %+v, optimiser steps %d", meta, opt2.Steps())
		}
		tr2 := &Trainer{Model: m2, Opt: opt2, Metric: "euclidean"}
		l1, _ := tr.Step(x, 6, 0.05)
		l2, _ := tr2.Step(x, 6, 0.05)
		if l1 != l2 {
			t.Errorf("stage %d: loss after resume %.9g, uninterrupted %.9g", stage, l2, l1)
		}
		a, b := m.StateDict(), m2.StateDict()
		for k, v := range a {
			if string(v.Data) != string(b[k].Data) {
				t.Errorf("stage %d: %s differs after resumed step", stage, k)
			}
		}
	}
	if _, _, _, err := LoadCheckpoint(filepath.Join(t.TempDir(), "missing"), newCPU(t, "go"), Options{}); err == nil {
		t.Error("missing checkpoint loaded")
	}
}

func TestForwardRejectsBadInput(t *testing.T) {
	m, _ := NewModel(newCPU(t, "go"), Options{Arch: microArch})
	if err := m.Forward(make([]float32, 10), 1, false); err == nil {
		t.Error("wrong input size accepted")
	}
	if err := m.Forward(make([]float32, m.InputSize()), 1, true); err == nil {
		t.Error("training batch of 1 accepted")
	}
	if err := m.Forward(nil, 0, false); err == nil {
		t.Error("empty batch accepted")
	}
	if _, _, err := m.Loss("manhattan", 2); err == nil {
		t.Error("unknown metric accepted")
	}
}

// TestPartialBatchReusesBuffers runs a smaller batch after a larger one (the
// last partial batch of an epoch) without reallocating.
func TestPartialBatchReusesBuffers(t *testing.T) {
	m, _ := NewModel(newCPU(t, "go"), Options{Arch: microArch})
	tr := NewTrainer(m, "euclidean")
	if _, err := tr.Step(randImages(1, 8, 32), 8, 0.01); err != nil {
		t.Fatal(err)
	}
	x := m.x
	if _, err := tr.Step(randImages(2, 4, 32), 4, 0.01); err != nil {
		t.Fatal(err)
	}
	if &x.host[0] != &m.x.host[0] || m.Capacity() != 8 {
		t.Error("buffers reallocated for a smaller batch")
	}
}

// TestMaskContract: the masked operations keep a value exactly where the
// mask is > 0, as the Backend interface documents: negative masks, −0 and
// +0 drop it (the CUDA kernels' keep does the same).
func TestMaskContract(t *testing.T) {
	for _, c := range []struct {
		m    float32
		keep bool
	}{{1, true}, {1e-40, true}, {float32(math.Inf(1)), true}, {0, false},
		{float32(math.Copysign(0, -1)), false}, {-1e-40, false}, {-2, false}, {float32(math.Inf(-1)), false}} {
		got := masked(3, c.m)
		if (got == 3) != c.keep || (got != 3 && got != 0) {
			t.Errorf("masked(3, %g) = %g, want keep=%v", c.m, got, c.keep)
		}
	}
}

package engine

import (
	"fmt"
	"math/rand/v2"
)

// Options configure a Model.
type Options struct {
	// Arch is the backbone name (see ParseArch); empty means resnet18_simclr.
	Arch string
	// Seed makes initialisation (and the stage-2 layer) reproducible.
	Seed uint64
	// ImageSize is the side of the square input images (default 32).
	ImageSize int
	// OutDim is the output size of the projection head (default 128, the
	// stage-1 dimension).
	OutDim int
	// ColsLimit caps the im2col workspace in float32 elements;
	// convolutions are computed over chunks of images that fit. ≤ 0 means
	// DefaultColsLimit, the CPU's preference; programs pass the backend's
	// (Backend.ColsLimit). The default stays fixed rather than following the
	// backend because the chunking decides the order of the weight
	// gradients' sums: a model built without ColsLimit chunks its
	// convolutions the same way on every backend.
	ColsLimit int
}

// InChannels is the number of input channels; grayscale data is replicated
// to three channels by the loaders.
const InChannels = 3

// block is a BasicBlock and its saved activations. Shapes are for N =
// Capacity() views of the block's input H×W×C and output OH×OW×OC.
type block struct {
	name         string
	conv1, conv2 *convLayer
	bn1, bn2     *batchNorm
	// convS and bnS are the downsampling shortcut, nil when the block keeps
	// its input's shape (the shortcut is then the identity).
	convS *convLayer
	bnS   *batchNorm

	y1  Buf // N×OH×OW×OC, conv1 output
	a1  Buf // N×OH×OW×OC, ReLU(bn1(y1))
	y2  Buf // N×OH×OW×OC, conv2 output
	ys  Buf // N×OH×OW×OC, convS output (downsampling blocks only)
	out Buf // N×OH×OW×OC, ReLU(bn2(y2) + shortcut): the block output

	inSize, outSize int // H·W·C and OH·OW·OC, activation elements per image
	// add times the identity shortcut's gradient add in the backward pass.
	add timer
}

// Model is the backbone + projection head on one backend, with buffers for
// up to Capacity() views per batch. Shapes below: N = Capacity(), S the
// image side, C0 the stem width, F = FeatureDim(), Hd the head's hidden
// width, D = OutDim(), A the largest activation of one image.
type Model struct {
	be     Backend
	arch   Arch
	opts   Options
	outDim int
	stage  int

	params  []*Param
	bns     []*batchNorm
	stem    *convLayer
	stemBN  *batchNorm
	blocks  []*block
	pool    *avgPool
	fc1     *linear
	fc2     *linear
	featDim int

	capacity int
	x        Buf // N×S×S×3, Forward's input, uploaded from the host
	// in is the last forward's input: x, or the device buffer given to
	// ForwardBuf (N×S×S×3); the stem's backward reads it.
	in Buf
	y0 Buf // N×S×S×C0, stem conv output
	a0 Buf // N×S×S×C0, stem ReLU output
	h  Buf // N×F, pooled features (the embedding of Transform)
	u  Buf // N×Hd, head hidden layer, ReLU output
	z  Buf // N×D, model output

	dz Buf // N×D, dL/dz
	du Buf // N×Hd, dL/du
	dh Buf // N×F, dL/dh
	// scratch are three N×A gradient buffers the backward pass rotates
	// through the blocks: the gradient at a block's output, its input and
	// the BatchNorm-backward temporary.
	scratch [3]Buf
	ws      workspace

	lastLoss hostLoss
	zHost    []float32 // N×D, z on the host for Loss
	dzHost   []float32 // N×D, dL/dz on the host
	lossSc   lossScratch
	maxAct   int // A

	// Prof, when non-nil, accumulates per-layer wall time.
	Prof *Profile
}

// NewModel builds and initialises a model: Kaiming-normal (fan_out, ReLU)
// convolutions, BN γ=1 β=0, PyTorch-default Linear init, all from opts.Seed.
func NewModel(be Backend, opts Options) (*Model, error) {
	arch, err := ParseArch(opts.Arch)
	if err != nil {
		return nil, err
	}
	if opts.ImageSize == 0 {
		opts.ImageSize = 32
	}
	if opts.ImageSize < 8 || opts.ImageSize > 1024 {
		return nil, fmt.Errorf("engine: image size %d out of range 8..1024", opts.ImageSize)
	}
	if opts.OutDim == 0 {
		opts.OutDim = 128
	}
	if opts.OutDim < 1 {
		return nil, fmt.Errorf("engine: output dimension %d < 1", opts.OutDim)
	}
	if opts.ColsLimit <= 0 {
		opts.ColsLimit = DefaultColsLimit
	}
	m := &Model{be: be, arch: arch, opts: opts, outDim: opts.OutDim, stage: 1}
	m.build()
	m.init(opts.Seed)
	return m, nil
}

func (m *Model) conv(name string, h, w, c, oc, k, stride, pad int) *convLayer {
	g := NewConvGeom(h, w, c, oc, k, stride, pad)
	p := newParam(m.be, name+".weight", []int{oc, c, k, k}, true)
	m.params = append(m.params, p)
	return &convLayer{name: name, g: g, w: p}
}

// timer returns a timer for Profile row name of this model.
func (m *Model) timer(row string) timer { return timer{row: row, prof: &m.Prof} }

func (m *Model) bn(name string, c int) *batchNorm {
	l := &batchNorm{name: name, c: c,
		gamma:   newParam(m.be, name+".weight", []int{c}, false),
		beta:    newParam(m.be, name+".bias", []int{c}, false),
		runMean: m.be.Alloc(c), runVar: m.be.Alloc(c), mean: m.be.Alloc(c), invStd: m.be.Alloc(c)}
	m.params = append(m.params, l.gamma, l.beta)
	m.bns = append(m.bns, l)
	return l
}

func (m *Model) lin(name string, in, out int) *linear {
	l := &linear{name: name, in: in, out: out,
		w: newParam(m.be, name+".weight", []int{out, in}, false),
		b: newParam(m.be, name+".bias", []int{out}, false), t: m.timer("head")}
	m.params = append(m.params, l.w, l.b)
	return l
}

func (m *Model) build() {
	a := m.arch
	s := m.opts.ImageSize
	w0 := a.Widths[0]
	m.stem = m.conv("backbone.conv1", s, s, InChannels, w0, 3, 1, 1)
	m.stem.t = m.timer("stem.conv")
	m.stemBN = m.bn("backbone.bn1", w0)
	m.stemBN.t = m.timer("stem.bn_relu")
	m.maxAct = s * s * w0
	h, c := s, w0
	for st := 0; st < 4; st++ {
		for i := 0; i < a.Blocks[st]; i++ {
			stride := 1
			if st > 0 && i == 0 {
				stride = 2
			}
			oc := a.Widths[st]
			name := fmt.Sprintf("backbone.layer%d.%d", st+1, i)
			b := &block{name: name, add: m.timer(name + ".bn2_add_relu")}
			b.conv1 = m.conv(name+".conv1", h, h, c, oc, 3, stride, 1)
			b.conv1.t = m.timer(name + ".conv1")
			b.bn1 = m.bn(name+".bn1", oc)
			b.bn1.t = m.timer(name + ".bn1_relu")
			oh := b.conv1.g.OH
			b.conv2 = m.conv(name+".conv2", oh, oh, oc, oc, 3, 1, 1)
			b.conv2.t = m.timer(name + ".conv2")
			b.bn2 = m.bn(name+".bn2", oc)
			b.bn2.t = b.add
			if stride != 1 || c != oc {
				b.convS = m.conv(name+".downsample.0", h, h, c, oc, 1, stride, 0)
				b.bnS = m.bn(name+".downsample.1", oc)
				b.convS.t = m.timer(name + ".downsample")
				b.bnS.t = b.convS.t
			}
			b.inSize, b.outSize = h*h*c, oh*oh*oc
			m.maxAct = max(m.maxAct, b.inSize, b.outSize)
			m.blocks = append(m.blocks, b)
			h, c = oh, oc
		}
	}
	m.featDim = c
	m.pool = &avgPool{hw: h * h, c: c, t: m.timer("pool")}
	m.fc1 = m.lin("head.0", c, a.HeadHidden)
	m.fc2 = m.lin("head.2", a.HeadHidden, m.outDim)
}

func (m *Model) convs() []*convLayer {
	cs := []*convLayer{m.stem}
	for _, b := range m.blocks {
		cs = append(cs, b.conv1, b.conv2)
		if b.convS != nil {
			cs = append(cs, b.convS)
		}
	}
	return cs
}

func (m *Model) init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x7453696d434e45)) // "tSimCNE"
	host := func(p *Param) []float32 { return make([]float32, p.Size()) }
	// Parameters are initialised in state_dict order so the draw sequence
	// is fixed by the architecture alone.
	for _, p := range m.params {
		v := host(p)
		switch {
		case p.conv:
			kaimingConv(rng, p.Shape[0], p.Shape[2], v)
		case len(p.Shape) == 2: // linear weight
			uniformInit(rng, 1/sqrtf(p.Shape[1]), v)
		default:
			continue // BN and linear biases below
		}
		m.be.Upload(p.Data, v)
	}
	for _, l := range m.bns {
		m.be.Upload(l.gamma.Data, ones(l.c))
		m.be.Upload(l.runVar, ones(l.c))
	}
	for _, l := range []*linear{m.fc1, m.fc2} {
		v := host(l.b)
		uniformInit(rng, 1/sqrtf(l.in), v)
		m.be.Upload(l.b.Data, v)
	}
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// Backend is the backend the model runs on.
func (m *Model) Backend() Backend { return m.be }

// Arch is the model's architecture.
func (m *Model) Arch() Arch { return m.arch }

// Options returns the options the model was built with.
func (m *Model) Options() Options { return m.opts }

// OutDim is the current output size (128 in stage 1, 2 after stage 2 starts).
func (m *Model) OutDim() int { return m.outDim }

// FeatureDim is the size of h.
func (m *Model) FeatureDim() int { return m.featDim }

// Stage is the training stage the model is configured for (1, 2 or 3).
func (m *Model) Stage() int { return m.stage }

// Params lists every parameter in state_dict order.
func (m *Model) Params() []*Param { return m.params }

// NumParams counts all parameter elements, or only trainable ones.
func (m *Model) NumParams(trainableOnly bool) int {
	n := 0
	for _, p := range m.params {
		if !trainableOnly || p.Trainable {
			n += p.Size()
		}
	}
	return n
}

// Capacity is the number of views the buffers are sized for.
func (m *Model) Capacity() int { return m.capacity }

// Reserve sizes every activation buffer for batches of up to n views
// (all views of a step, i.e. 2N). It is called by Forward as needed; calling
// it up front with the largest batch avoids any later allocation.
func (m *Model) Reserve(n int) {
	if n <= m.capacity {
		return
	}
	be := m.be
	s := m.opts.ImageSize
	m.capacity = n
	m.x = be.Alloc(n * s * s * InChannels)
	m.y0 = be.Alloc(n * s * s * m.arch.Widths[0])
	m.a0 = be.Alloc(n * s * s * m.arch.Widths[0])
	for _, b := range m.blocks {
		b.y1 = be.Alloc(n * b.outSize)
		b.a1 = be.Alloc(n * b.outSize)
		b.y2 = be.Alloc(n * b.outSize)
		b.out = be.Alloc(n * b.outSize)
		if b.convS != nil {
			b.ys = be.Alloc(n * b.outSize)
		}
	}
	m.h = be.Alloc(n * m.featDim)
	m.dh = be.Alloc(n * m.featDim)
	m.u = be.Alloc(n * m.arch.HeadHidden)
	m.du = be.Alloc(n * m.arch.HeadHidden)
	m.allocOut()
	for i := range m.scratch {
		m.scratch[i] = be.Alloc(n * m.maxAct)
	}
	cols := 0
	ws := workspace{limit: m.opts.ColsLimit, minRows: minChunkRows}
	wflip := 0
	for _, c := range m.convs() {
		if !c.g.Direct() {
			cols = max(cols, min(ws.chunk(c.g), n)*c.g.OH*c.g.OW*c.g.ColWidth())
		}
		if c.flipped() {
			gt := c.transposeGeom()
			cols = max(cols, min(ws.chunk(gt), n)*gt.OH*gt.OW*gt.ColWidth())
			wflip = max(wflip, c.w.Size())
		}
	}
	ws.cols = be.Alloc(cols)
	ws.wflip = be.Alloc(wflip)
	m.ws = ws
}

func (m *Model) allocOut() {
	n := m.capacity
	m.z = m.be.Alloc(n * m.outDim)
	m.dz = m.be.Alloc(n * m.outDim)
	m.zHost = make([]float32, n*m.outDim)
	m.dzHost = make([]float32, n*m.outDim)
}

// InputSize is the number of float32 per input image (NHWC, 3 channels).
func (m *Model) InputSize() int { return m.opts.ImageSize * m.opts.ImageSize * InChannels }

// Forward runs n images (NHWC, values as given) through the model. With
// train, BatchNorm uses batch statistics and updates its running statistics;
// otherwise it uses the running statistics. The outputs stay on the backend:
// read them with Z and H.
func (m *Model) Forward(x []float32, n int, train bool) error {
	if err := m.checkForward(len(x), n, train); err != nil {
		return err
	}
	m.Reserve(n)
	m.be.Upload(m.x, x)
	m.in = m.x
	m.forward(n, train)
	return nil
}

// ForwardBuf is Forward on input that already lives on the backend (a
// device buffer of at least n·InputSize() values, e.g. views a GPU
// augmented), so it never visits the host. x must stay unchanged until the
// step's Backward has been queued.
func (m *Model) ForwardBuf(x Buf, n int, train bool) error {
	if x.Len() < n*m.InputSize() {
		return fmt.Errorf("engine: forward: buffer of %d floats for %d images of %d", x.Len(), n, m.InputSize())
	}
	if err := m.checkForward(n*m.InputSize(), n, train); err != nil {
		return err
	}
	m.Reserve(n)
	m.in = x
	m.forward(n, train)
	return nil
}

func (m *Model) checkForward(values, n int, train bool) error {
	if n < 1 {
		return fmt.Errorf("engine: forward: batch of %d images", n)
	}
	if values != n*m.InputSize() {
		return fmt.Errorf("engine: forward: %d floats for %d images of %d", values, n, m.InputSize())
	}
	if train && n < 2 {
		// BatchNorm with batch statistics of one image of 1×1 pixels is
		// undefined; PyTorch refuses it too.
		return fmt.Errorf("engine: forward: training needs at least 2 images")
	}
	return nil
}

// forward runs the network on m.in.
func (m *Model) forward(n int, train bool) {
	be, ws := m.be, &m.ws
	s := m.opts.ImageSize
	m.stem.forward(be, m.in, n, m.y0, ws)
	m.stemBN.forward(be, m.y0, n*s*s, Buf{}, true, train, m.a0)
	cur := m.a0
	for _, b := range m.blocks {
		b.forward(be, cur, n, train, ws)
		cur = b.out
	}
	m.pool.forward(be, cur, n, m.h)
	m.fc1.forward(be, m.h, n, m.u, true)
	m.fc2.forward(be, m.u, n, m.z, false)
}

// forward runs the block on x (N×H×W×C) into b.out.
func (b *block) forward(be Backend, x Buf, n int, train bool, ws *workspace) {
	rows := n * b.outSize / b.conv1.g.OC
	b.conv1.forward(be, x, n, b.y1, ws)
	b.bn1.forward(be, b.y1, rows, Buf{}, true, train, b.a1)
	b.conv2.forward(be, b.a1, n, b.y2, ws)
	res := x
	if b.convS != nil {
		b.convS.forward(be, x, n, b.ys, ws)
		b.bnS.forward(be, b.ys, rows, Buf{}, false, train, b.out)
		res = b.out
	}
	b.bn2.forward(be, b.y2, rows, res, true, train, b.out)
}

// Z copies the n×OutDim output of the last Forward into dst (allocated if nil).
func (m *Model) Z(dst []float32, n int) []float32 {
	if dst == nil {
		dst = make([]float32, n*m.outDim)
	}
	m.be.Download(dst[:n*m.outDim], m.z)
	return dst
}

// H copies the n×FeatureDim backbone features of the last Forward into dst.
func (m *Model) H(dst []float32, n int) []float32 {
	if dst == nil {
		dst = make([]float32, n*m.featDim)
	}
	m.be.Download(dst[:n*m.featDim], m.h)
	return dst
}

// backboneTrainable reports whether anything below the last Linear learns;
// in stage 2 nothing does and the backward pass stops at the head.
func (m *Model) backboneTrainable() bool {
	for _, p := range m.params {
		if p.Trainable && p != m.fc2.w && p != m.fc2.b {
			return true
		}
	}
	return false
}

// Backward back-propagates dz (n×OutDim, host) through the last training
// Forward, writing the gradient of every trainable parameter.
func (m *Model) Backward(dz []float32, n int) error {
	if len(dz) != n*m.outDim {
		return fmt.Errorf("engine: backward: %d floats for %d×%d", len(dz), n, m.outDim)
	}
	if n > m.capacity {
		return fmt.Errorf("engine: backward: batch %d larger than the forward's", n)
	}
	m.be.Upload(m.dz, dz)
	m.backward(n)
	return nil
}

// backward back-propagates m.dz, already on the backend.
func (m *Model) backward(n int) {
	be, ws := m.be, &m.ws
	if !m.backboneTrainable() {
		m.fc2.backward(be, m.u, m.dz, n, Buf{}, Buf{})
		return
	}
	m.fc2.backward(be, m.u, m.dz, n, m.du, Buf{})
	m.fc1.backward(be, m.h, m.du, n, m.dh, m.u)
	dOut, tmp, dIn := m.scratch[0], m.scratch[1], m.scratch[2]
	last := m.blocks[len(m.blocks)-1]
	m.pool.backward(be, m.dh, n, last.out, dOut)
	// outMask is the ReLU output whose mask dOut still needs; the ReLU
	// backward is fused into the consumers (BN backward, shortcut add).
	// The pool's backward already applied the last block's.
	outMask := Buf{}
	for i := len(m.blocks) - 1; i >= 0; i-- {
		b := m.blocks[i]
		in := m.a0
		if i > 0 {
			in = m.blocks[i-1].out
		}
		b.backward(be, in, n, dOut, outMask, tmp, dIn, ws)
		// The block input is a ReLU output: its mask is applied by the
		// consumers of dIn below.
		outMask = in
		dOut, dIn = dIn, dOut
	}
	s := m.opts.ImageSize
	m.stemBN.backward(be, m.y0, n*s*s, dOut, outMask, tmp)
	m.stem.backward(be, m.in, tmp, n, Buf{}, false, ws)
}

// backward back-propagates dOut, the gradient at the block's output (to be
// masked by outMask, its ReLU output, when valid), through the block whose
// forward read in, writing the gradient at in to dIn. tmp is scratch of the
// output's size.
func (b *block) backward(be Backend, in Buf, n int, dOut, outMask, tmp, dIn Buf, ws *workspace) {
	rows := n * b.outSize / b.conv1.g.OC
	b.bn2.backward(be, b.y2, rows, dOut, outMask, tmp)
	b.conv2.backward(be, b.a1, tmp, n, dIn, false, ws)
	b.bn1.backward(be, b.y1, rows, dIn, b.a1, tmp)
	b.conv1.backward(be, in, tmp, n, dIn, false, ws)
	if b.convS != nil {
		b.bnS.backward(be, b.ys, rows, dOut, outMask, tmp)
		b.convS.backward(be, in, tmp, n, dIn, true, ws)
		return
	}
	b.addShortcut(be, dIn, dOut, outMask, n)
}

// addShortcut adds the identity shortcut's gradient, dOut through the
// output ReLU's mask, to dIn.
func (b *block) addShortcut(be Backend, dIn, dOut, outMask Buf, n int) {
	defer b.add.stop(b.add.start())
	be.AddMasked(dIn, dOut, outMask, n*b.inSize)
}

// Loss computes the loss of the last Forward's output z for a batch of n
// views (rows i and i+n/2 positive pairs) and leaves dL/dz on the host for
// Backward. The zero Metric is euclidean.
func (m *Model) Loss(kind Metric, n int) (float64, []float32, error) {
	if err := kind.check(); err != nil {
		return 0, nil, err
	}
	if n < 2 || n > m.capacity {
		return 0, nil, fmt.Errorf("engine: loss of %d views, but the last forward had capacity %d", n, m.capacity)
	}
	z := m.Z(m.zHost[:n*m.outDim], n)
	dz := m.dzHost[:n*m.outDim]
	var l float64
	var err error
	if kind.orDefault() == MetricCosine {
		l, err = cosineInfoNCE(z, n, m.outDim, cosineTau, dz, &m.lossSc)
	} else {
		l, err = cauchyInfoNCE(z, n, m.outDim, dz, &m.lossSc)
	}
	return l, dz, err
}

// queueLoss leaves dL/dz of the last Forward in m.dz, on the device when
// the backend computes losses itself, else on the host (Loss) and
// uploaded; the result gives the loss. The caller has checked kind.
func (m *Model) queueLoss(kind Metric, n int) (PendingLoss, error) {
	if dl, ok := m.be.(DeviceLoss); ok {
		if n < 2 || n%2 != 0 || n > m.capacity {
			return nil, fmt.Errorf("engine: loss of %d views (want an even number ≥ 2, at most %d)", n, m.capacity)
		}
		return dl.QueueLoss(kind.orDefault(), cosineTau, m.z, n, m.outDim, m.dz)
	}
	l, dz, err := m.Loss(kind, n)
	if err != nil {
		return nil, err
	}
	m.be.Upload(m.dz, dz)
	m.lastLoss.l = l
	return &m.lastLoss, nil
}

// SetStage2 replaces the last Linear by a new Linear(hidden→outDim) with
// N(0, 1) weights and PyTorch-default bias, and freezes every other
// parameter. BatchNorm keeps training-mode statistics.
func (m *Model) SetStage2(outDim int) error {
	if outDim < 1 {
		return fmt.Errorf("engine: stage 2 output dimension %d < 1", outDim)
	}
	rng := rand.New(rand.NewPCG(m.opts.Seed, 0x7374616765320a)) // "stage2"
	old := m.fc2
	nl := &linear{name: "head.2", in: old.in, out: outDim,
		w: newParam(m.be, "head.2.weight", []int{outDim, old.in}, false),
		b: newParam(m.be, "head.2.bias", []int{outDim}, false), t: old.t}
	w := make([]float32, nl.w.Size())
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	m.be.Upload(nl.w.Data, w)
	bias := make([]float32, outDim)
	uniformInit(rng, 1/sqrtf(old.in), bias)
	m.be.Upload(nl.b.Data, bias)
	for i, p := range m.params {
		switch p {
		case old.w:
			m.params[i] = nl.w
		case old.b:
			m.params[i] = nl.b
		default:
			p.Trainable = false
		}
	}
	m.fc2 = nl
	m.outDim = outDim
	if m.capacity > 0 {
		m.allocOut()
	}
	m.stage = 2
	return nil
}

// SetStage3 makes every parameter trainable again.
func (m *Model) SetStage3() {
	for _, p := range m.params {
		p.Trainable = true
	}
	m.stage = 3
}

// ReLUMasks returns, for the last Forward of n images, one 0/1 mask per
// ReLU application in PyTorch's call order (stem; per block after bn1 and
// after the residual add; the head), with its NHWC (or rows×features)
// shape. The PyTorch oracle replays them.
func (m *Model) ReLUMasks(n int) ([][]uint8, [][]int) {
	var masks [][]uint8
	var shapes [][]int
	add := func(b Buf, shape ...int) {
		size := 1
		for _, s := range shape {
			size *= s
		}
		v := m.host(b, size)
		mk := make([]uint8, size)
		for i, x := range v {
			if x > 0 {
				mk[i] = 1
			}
		}
		masks = append(masks, mk)
		shapes = append(shapes, shape)
	}
	s := m.opts.ImageSize
	add(m.a0, n, s, s, m.arch.Widths[0])
	for _, b := range m.blocks {
		g := b.conv1.g
		add(b.a1, n, g.OH, g.OW, g.OC)
		add(b.out, n, g.OH, g.OW, g.OC)
	}
	add(m.u, n, m.arch.HeadHidden)
	return masks, shapes
}

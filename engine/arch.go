package engine

import (
	"fmt"
	"regexp"
	"strconv"
)

// Arch is a ResNet backbone of the SimCLR/CIFAR kind (3×3 stride-1 stem, no
// max-pool, four stages of BasicBlocks, stride 2 at the start of stages 2–4)
// followed by the `mlp` projection head Linear(h→HeadHidden) → ReLU →
// Linear(HeadHidden→out).
type Arch struct {
	// Name is the name the architecture was selected by.
	Name string
	// Widths are the channel counts of the four stages; the stem has Widths[0].
	Widths [4]int
	// Blocks is the number of BasicBlocks per stage.
	Blocks [4]int
	// HeadHidden is the hidden width of the projection head.
	HeadHidden int
}

// DefaultArch is t-SimCNE's backbone (docs/ALGORITHM.md, "Model").
const DefaultArch = "resnet18_simclr"

// named architectures. resnet18_simclr is t-SimCNE's model; the others are
// for CPU users (resnet_tiny trains MNIST on two cores in minutes).
var namedArchs = map[string]Arch{
	"resnet18_simclr": {Widths: [4]int{64, 128, 256, 512}, Blocks: [4]int{2, 2, 2, 2}, HeadHidden: 1024},
	"resnet10_simclr": {Widths: [4]int{64, 128, 256, 512}, Blocks: [4]int{1, 1, 1, 1}, HeadHidden: 1024},
	"resnet_small":    {Widths: [4]int{32, 64, 128, 256}, Blocks: [4]int{1, 1, 1, 1}, HeadHidden: 1024},
	"resnet_tiny":     {Widths: [4]int{16, 32, 64, 128}, Blocks: [4]int{1, 1, 1, 1}, HeadHidden: 1024},
}

var archPattern = regexp.MustCompile(`^resnet_w(\d+)_b([1-9])([1-9])([1-9])([1-9])(?:_h(\d+))?$`)

// ArchNames lists the named architectures (the pattern form is always
// accepted too).
func ArchNames() []string {
	return []string{"resnet18_simclr", "resnet10_simclr", "resnet_small", "resnet_tiny", "resnet_w<W>_b<b1b2b3b4>[_h<H>]"}
}

// ParseArch resolves an architecture name: one of the named ones, or the
// pattern resnet_w<W>_b<b1><b2><b3><b4>[_h<H>] — stage widths W, 2W, 4W, 8W,
// the given block counts, head hidden width H (default 1024).
func ParseArch(name string) (Arch, error) {
	if name == "" {
		name = DefaultArch
	}
	if a, ok := namedArchs[name]; ok {
		a.Name = name
		return a, nil
	}
	m := archPattern.FindStringSubmatch(name)
	if m == nil {
		return Arch{}, fmt.Errorf("engine: unknown backbone %q (known: %v)", name, ArchNames())
	}
	w, _ := strconv.Atoi(m[1])
	if w < 1 || w > 1024 {
		return Arch{}, fmt.Errorf("engine: backbone %q: width %d out of range 1..1024", name, w)
	}
	a := Arch{Name: name, Widths: [4]int{w, 2 * w, 4 * w, 8 * w}, HeadHidden: 1024}
	for i := 0; i < 4; i++ {
		a.Blocks[i], _ = strconv.Atoi(m[2+i])
	}
	if m[6] != "" {
		h, _ := strconv.Atoi(m[6])
		if h < 1 || h > 1<<16 {
			return Arch{}, fmt.Errorf("engine: backbone %q: head width %d out of range", name, h)
		}
		a.HeadHidden = h
	}
	return a, nil
}

// FeatureDim is the size of h, the pooled backbone output.
func (a Arch) FeatureDim() int { return a.Widths[3] }

package plot

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// mnistLike is a t-SimCNE-like map of n points: ten elongated clusters of
// unequal size on a ring a few hundred units across, a few points strewn
// between them and a handful of far outliers.
func mnistLike(n int, seed uint64) ([]float32, []int32) {
	r := rand.New(rand.NewPCG(seed, 9))
	xy := make([]float32, 2*n)
	labels := make([]int32, n)
	for i := range n {
		c := r.IntN(10)
		labels[i] = int32(c)
		a := 2 * math.Pi * float64(c) / 10
		cx, cy := 160*math.Cos(a), 130*math.Sin(a)
		u, v := r.NormFloat64()*(14+3*float64(c%4)), r.NormFloat64()*7
		rot := a * 1.7
		x := cx + u*math.Cos(rot) - v*math.Sin(rot)
		y := cy + u*math.Sin(rot) + v*math.Cos(rot)
		switch {
		case r.IntN(200) == 0: // between clusters
			x, y = r.NormFloat64()*90, r.NormFloat64()*70
		case r.IntN(20000) == 0: // far outlier
			x, y = 5000*r.NormFloat64(), 5000*r.NormFloat64()
		}
		xy[2*i], xy[2*i+1] = float32(x), float32(y)
	}
	return xy, labels
}

var fashion = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// TestDemoPictures writes the pictures to $PLOT_DEMO_DIR for a person to
// look at; without the variable it renders them without writing.
func TestDemoPictures(t *testing.T) {
	dir := os.Getenv("PLOT_DEMO_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	xy, labels := mnistLike(70000, 1)
	xy[0] = float32(math.NaN())
	if err := Scatter(filepath.Join(dir, "scatter.png"), xy, labels, fashion, ScatterOptions{Title: "Fashion-MNIST, t-SimCNE", Note: "kNN accuracy 0.853"}); err != nil {
		t.Fatal(err)
	}
}

// tsimcneLoss is a loss and learning-rate history shaped like docs/ALGORITHM.md's healthy run:
// falling to about 2.5 in stage 1, a jump at the switch to 2-D, settling
// near 2.8.
func tsimcneLoss() []Series {
	r := rand.New(rand.NewPCG(4, 4))
	var ex, loss, lr []float64
	for e := 0; e < 1500; e++ {
		x := float64(e + 1)
		var l, rate float64
		switch {
		case e < 1000:
			l = 2.5 + 4.4*math.Exp(-float64(e)/60) + 0.4*math.Exp(-float64(e)/400)
			rate = 0.06 * min(1, float64(e+1)/10) * 0.5 * (1 + math.Cos(math.Pi*float64(e)/1000))
		case e < 1050:
			l = 3.0 + 1.6*math.Exp(-float64(e-1000)/8)
			rate = 0.0012 * min(1, float64(e-999)/10)
		default:
			l = 2.8 + 0.2*math.Exp(-float64(e-1050)/80)
			rate = 0.0012 * 0.5 * (1 + math.Cos(math.Pi*float64(e-1050)/450))
		}
		ex = append(ex, x)
		loss = append(loss, l+0.03*r.NormFloat64())
		lr = append(lr, rate)
	}
	return []Series{
		{Name: "training loss", X: ex, Y: loss},
		{Name: "learning rate", X: ex, Y: lr, Panel: 1},
	}
}

func TestDemoLoss(t *testing.T) {
	dir := os.Getenv("PLOT_DEMO_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	opt := LossOptions{Title: "t-SimCNE training", StageEnds: []float64{1000, 1050}, StageNames: []string{"stage 1: 128-D", "stage 2", "stage 3: 2-D"}}
	if err := LossCurve(filepath.Join(dir, "loss.png"), tsimcneLoss(), opt); err != nil {
		t.Fatal(err)
	}
}

// Many classes (palette fallback, legend columns) and a small image.
func TestDemoManyClasses(t *testing.T) {
	dir := os.Getenv("PLOT_DEMO_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	r := rand.New(rand.NewPCG(5, 5))
	const n, k = 20000, 60
	xy := make([]float32, 2*n)
	labels := make([]int32, n)
	names := make([]string, k)
	for c := range names {
		names[c] = "class number " + string(rune('A'+c%26)) + string(rune('a'+c/26))
	}
	names[3] = "a very long class name that cannot possibly fit in the legend column"
	for i := range n {
		c := r.IntN(k)
		labels[i] = int32(c)
		if i%997 == 0 {
			labels[i] = -1
		}
		a := float64(c) * 2.39996
		rad := 8 * math.Sqrt(float64(c)+1)
		xy[2*i] = float32(rad*math.Cos(a) + r.NormFloat64())
		xy[2*i+1] = float32(rad*math.Sin(a) + r.NormFloat64())
	}
	if err := Scatter(filepath.Join(dir, "many.png"), xy, labels, names, ScatterOptions{Width: 1200, Height: 800, Title: "60 classes"}); err != nil {
		t.Fatal(err)
	}
	if err := Scatter(filepath.Join(dir, "small.png"), xy[:2000], labels[:1000], nil, ScatterOptions{Width: 480, Height: 360}); err != nil {
		t.Fatal(err)
	}
}

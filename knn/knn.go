// Package knn measures an embedding the way the t-SimCNE paper does
// (docs/ALGORITHM.md, "kNN protocol"): pool all points, draw a stratified
// random test split of 10,000 (a seventh of the data when that is smaller),
// fit a k = 15 Euclidean nearest-neighbour classifier on the other points'
// coordinates and report its accuracy on the test split.
//
// The classifier reproduces scikit-learn's KNeighborsClassifier(15) with its
// defaults (uniform weights, Euclidean distance): the k nearest training
// points vote and a tie between classes goes to the smallest label, as
// scikit-learn's mode does. Matching scikit-learn rather than inventing a
// "better" tie rule keeps the numbers comparable with the paper and with
// the pixel-space baselines that scripts/baseline computes. Where two
// training points are exactly equally far, the one earlier in the training
// list counts as nearer; scikit-learn leaves that order unspecified. That,
// and above 15 dimensions, where scikit-learn's default switches to a
// brute-force search computing distances through dot products (rounding
// differently), are the only ways the two can disagree.
//
// Low-dimensional embeddings (dim ≤ 8, in particular the 2-D map) are
// searched with a k-d tree: 10,000 queries against 60,000 points take tens
// of milliseconds. Higher dimensions use a parallel brute-force scan, where
// a tree would not prune.
package knn

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// K is the number of neighbours of the protocol.
const K = 15

// DefaultSplitSeed is the seed of the test split that the embed command and
// the baselines (scripts/baseline) use. It is fixed, not the training seed,
// so that maps from different runs and methods are scored on the same
// 10,000 points.
const DefaultSplitSeed uint64 = 0

// MaxTestSize is the size of the test split for datasets of 70,000 or more.
const MaxTestSize = 10000

// DefaultTestSize is the test-split size of the protocol for n points:
// 10,000, or a seventh of the data when that is smaller (min(10000, n/7)).
func DefaultTestSize(n int) int {
	return max(0, min(MaxTestSize, n/7))
}

// StratifiedSplit draws testSize of the n = len(labels) points as a test
// split in which every class is represented in proportion to its size, and
// returns the rest as the training split. Both lists are ascending point
// indices. The same labels, size and seed always give the same split.
//
// Class quotas are testSize·count/n rounded down, with the points left over
// going to the classes with the largest remainders (ties to the larger class,
// then the smaller label), so no class ever gets more than its size or
// differs from its exact share by one or more. testSize is clamped to
// [0, n].
func StratifiedSplit(labels []int32, testSize int, seed uint64) (train, test []int) {
	n := len(labels)
	testSize = max(0, min(testSize, n))
	byClass := map[int32][]int{}
	for i, l := range labels {
		byClass[l] = append(byClass[l], i)
	}
	classes := make([]int32, 0, len(byClass))
	for l := range byClass {
		classes = append(classes, l)
	}
	slices.Sort(classes) // map order is random; the split must not be

	type quota struct {
		label     int32
		take, rem int64
		count     int
	}
	qs := make([]quota, len(classes))
	left := int64(testSize)
	for i, l := range classes {
		c := int64(len(byClass[l]))
		qs[i] = quota{label: l, take: int64(testSize) * c / int64(max(n, 1)), rem: int64(testSize) * c % int64(max(n, 1)), count: int(c)}
		left -= qs[i].take
	}
	order := make([]int, len(qs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(qs[b].rem, qs[a].rem), cmp.Compare(qs[b].count, qs[a].count))
	})
	for _, i := range order[:left] {
		qs[i].take++
	}

	rng := rand.New(rand.NewPCG(seed, 0x6b6e6e5f73706c74)) // "knn_splt": a stream of our own
	isTest := make([]bool, n)
	for _, q := range qs {
		idx := byClass[q.label]
		// A partial Fisher–Yates shuffle: the first take positions are
		// a uniform random sample of the class.
		for j := range int(q.take) {
			r := j + rng.IntN(len(idx)-j)
			idx[j], idx[r] = idx[r], idx[j]
			isTest[idx[j]] = true
		}
	}
	train = make([]int, 0, n-testSize)
	test = make([]int, 0, testSize)
	for i, t := range isTest {
		if t {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test
}

// Score runs the whole protocol on an n×dim embedding: the default test
// size, a stratified split drawn with seed, and k = K. It returns the
// accuracy and the split's test size.
func Score(xy []float32, dim int, labels []int32, seed uint64) (acc float64, testSize int, err error) {
	if dim <= 0 || len(xy) != len(labels)*dim {
		return 0, 0, fmt.Errorf("knn: %d coordinates for %d labels of dimension %d", len(xy), len(labels), dim)
	}
	testSize = DefaultTestSize(len(labels))
	if testSize == 0 {
		return 0, 0, fmt.Errorf("knn: %d points are too few for a test split", len(labels))
	}
	train, test := StratifiedSplit(labels, testSize, seed)
	acc, err = Accuracy(xy, dim, labels, train, test, K)
	return acc, testSize, err
}

// Accuracy is the fraction of the test points whose k-nearest-neighbour
// vote among the training points (see the package comment for the rules)
// equals their label. xy holds n points of dimension dim, row-major;
// train and test index into them. Training points with a NaN or infinite
// coordinate are left out; a test point with one counts as misclassified,
// so a broken map cannot score well.
func Accuracy(xy []float32, dim int, labels []int32, train, test []int, k int) (float64, error) {
	pred, err := Predict(xy, dim, labels, train, test, k)
	if err != nil {
		return 0, err
	}
	if len(test) == 0 {
		return 0, errors.New("knn: empty test split")
	}
	right := 0
	for i, t := range test {
		if pred[i] == labels[t] && pred[i] != NoPrediction {
			right++
		}
	}
	return float64(right) / float64(len(test)), nil
}

// NoPrediction is Predict's answer for a test point with a non-finite
// coordinate.
const NoPrediction = math.MinInt32

// Predict returns the k-nearest-neighbour vote for each test point, in the
// order of test.
func Predict(xy []float32, dim int, labels []int32, train, test []int, k int) ([]int32, error) {
	if dim <= 0 {
		return nil, fmt.Errorf("knn: dimension %d", dim)
	}
	if len(xy)%dim != 0 || len(xy)/dim != len(labels) {
		return nil, fmt.Errorf("knn: %d coordinates for %d labels of dimension %d", len(xy), len(labels), dim)
	}
	n := len(labels)
	for _, s := range [][]int{train, test} {
		for _, i := range s {
			if i < 0 || i >= n {
				return nil, fmt.Errorf("knn: point index %d outside 0..%d", i, n-1)
			}
		}
	}
	if k < 1 {
		return nil, fmt.Errorf("knn: k = %d", k)
	}
	// Training points in float64, as scikit-learn's trees compute, and
	// without the non-finite ones, which have no meaningful distance.
	ts := &trainSet{dim: dim}
	for _, i := range train {
		p := xy[i*dim : (i+1)*dim]
		if !finite(p) {
			continue
		}
		for _, v := range p {
			ts.pts = append(ts.pts, float64(v))
		}
		ts.labels = append(ts.labels, labels[i])
	}
	if len(ts.labels) < k {
		return nil, fmt.Errorf("knn: %d usable training points, need at least k = %d", len(ts.labels), k)
	}
	var s searcher = ts
	if dim <= maxTreeDim {
		s = newTree(ts)
	}

	pred := make([]int32, len(test))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(test)/256))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			nb := make([]neighbour, 0, k)
			q := make([]float64, dim)
			for j := w; j < len(test); j += workers {
				p := xy[test[j]*dim : (test[j]+1)*dim]
				if !finite(p) {
					pred[j] = NoPrediction
					continue
				}
				for d, v := range p {
					q[d] = float64(v)
				}
				nb = s.nearest(q, k, nb[:0])
				pred[j] = vote(nb, ts.labels)
			}
		})
	}
	wg.Wait()
	return pred, nil
}

func finite(p []float32) bool {
	for _, v := range p {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// vote is the most frequent label among the neighbours, the smallest label
// on a tie (scikit-learn's rule).
func vote(nb []neighbour, labels []int32) int32 {
	best, bestN := int32(0), 0
	for i, a := range nb {
		la := labels[a.idx]
		seen := false
		for _, b := range nb[:i] {
			if labels[b.idx] == la {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		c := 0
		for _, b := range nb[i:] {
			if labels[b.idx] == la {
				c++
			}
		}
		if c > bestN || (c == bestN && la < best) {
			best, bestN = la, c
		}
	}
	return best
}

// neighbour is a training point (its position in trainSet) and its squared
// distance to the query.
type neighbour struct {
	d   float64
	idx int32
}

// closer orders neighbours by distance, then by training position, so that
// the k nearest are one well-defined set whatever the search order.
func closer(a, b neighbour) bool {
	return a.d < b.d || (a.d == b.d && a.idx < b.idx)
}

// insert adds c to nb, kept sorted and at most k long.
func insert(nb []neighbour, c neighbour, k int) []neighbour {
	if len(nb) == k {
		if !closer(c, nb[k-1]) {
			return nb
		}
		nb = nb[:k-1]
	}
	i := len(nb)
	nb = append(nb, c)
	for i > 0 && closer(c, nb[i-1]) {
		nb[i] = nb[i-1]
		i--
	}
	nb[i] = c
	return nb
}

type searcher interface {
	// nearest appends the k nearest training points to q to nb[:0],
	// sorted by closer.
	nearest(q []float64, k int, nb []neighbour) []neighbour
}

// trainSet is the training points, row-major, and their labels; as a
// searcher it scans all of them.
type trainSet struct {
	dim    int
	pts    []float64
	labels []int32
}

func (t *trainSet) nearest(q []float64, k int, nb []neighbour) []neighbour {
	dim := t.dim
	for i := range t.labels {
		p := t.pts[i*dim : (i+1)*dim]
		d := 0.0
		for j, v := range p {
			e := v - q[j]
			d += e * e
		}
		if len(nb) < k || d <= nb[len(nb)-1].d {
			nb = insert(nb, neighbour{d, int32(i)}, k)
		}
	}
	return nb
}

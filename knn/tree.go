package knn

import "math"

// maxTreeDim is the largest dimension searched with the k-d tree. Beyond a
// handful of dimensions a k-d tree visits most leaves anyway and the scan
// is as fast without the bookkeeping.
const maxTreeDim = 8

// leafSize bounds the points per leaf: small enough to prune well, large
// enough that the per-node overhead does not dominate in 2-D.
const leafSize = 12

// tree is a k-d tree over a trainSet stored implicitly: node i has children
// 2i+1 and 2i+2 and covers the points perm[lo:hi) that follow from halving
// [0, n) at each level, so only the split of each inner node is stored.
// Points are copied in tree order so that a leaf's points are contiguous.
type tree struct {
	dim    int
	pts    []float64 // points in tree order
	idx    []int32   // trainSet position of each point in tree order
	axis   []int8    // split axis of each inner node, -1 for a leaf
	split  []float64 // split value: left points ≤ split ≤ right points
	labels []int32
}

func newTree(ts *trainSet) *tree {
	n := len(ts.labels)
	dim := ts.dim
	depth := 0
	for (n+(1<<depth)-1)>>depth > leafSize { // ceil(n / 2^depth)
		depth++
	}
	nodes := 1<<(depth+1) - 1
	t := &tree{
		dim:    dim,
		axis:   make([]int8, nodes),
		split:  make([]float64, nodes),
		labels: ts.labels,
	}
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	t.build(ts, perm, 0, 0, n)
	t.pts = make([]float64, 0, n*dim)
	for _, i := range perm {
		t.pts = append(t.pts, ts.pts[int(i)*dim:(int(i)+1)*dim]...)
	}
	t.idx = perm
	return t
}

func (t *tree) build(ts *trainSet, perm []int32, node, lo, hi int) {
	if hi-lo <= leafSize {
		t.axis[node] = -1
		return
	}
	dim := t.dim
	// Split the widest side of the bounding box at the median, which
	// keeps cells square-ish in dense clusters and sparse gaps alike.
	ax, wide := 0, -1.0
	for a := range dim {
		lo64, hi64 := math.Inf(1), math.Inf(-1)
		for _, i := range perm[lo:hi] {
			v := ts.pts[int(i)*dim+a]
			lo64, hi64 = min(lo64, v), max(hi64, v)
		}
		if hi64-lo64 > wide {
			ax, wide = a, hi64-lo64
		}
	}
	mid := (lo + hi) / 2
	coord := func(i int32) float64 { return ts.pts[int(i)*dim+ax] }
	selectNth(perm[lo:hi], mid-lo, coord)
	t.axis[node] = int8(ax)
	t.split[node] = coord(perm[mid])
	t.build(ts, perm, 2*node+1, lo, mid)
	t.build(ts, perm, 2*node+2, mid, hi)
}

// selectNth reorders s so that s[n] holds the element of rank n by key,
// everything before it has a key ≤ and everything after a key ≥ (Hoare's
// quickselect with a median-of-three pivot; expected linear time).
func selectNth(s []int32, n int, key func(int32) float64) {
	lo, hi := 0, len(s)-1
	for hi > lo {
		m := lo + (hi-lo)/2
		// Median of three as the pivot, so sorted input is not quadratic.
		if key(s[m]) < key(s[lo]) {
			s[m], s[lo] = s[lo], s[m]
		}
		if key(s[hi]) < key(s[lo]) {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if key(s[hi]) < key(s[m]) {
			s[hi], s[m] = s[m], s[hi]
		}
		p := key(s[m])
		i, j := lo, hi
		for i <= j {
			for key(s[i]) < p {
				i++
			}
			for key(s[j]) > p {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return // j < n < i: s[n] equals the pivot and is in place
		}
	}
}

func (t *tree) nearest(q []float64, k int, nb []neighbour) []neighbour {
	return t.search(q, k, nb, 0, 0, len(t.idx))
}

func (t *tree) search(q []float64, k int, nb []neighbour, node, lo, hi int) []neighbour {
	ax := t.axis[node]
	if ax < 0 {
		dim := t.dim
		for i := lo; i < hi; i++ {
			p := t.pts[i*dim : (i+1)*dim]
			d := 0.0
			for j, v := range p {
				e := v - q[j]
				d += e * e
			}
			if len(nb) < k || d <= nb[len(nb)-1].d {
				nb = insert(nb, neighbour{d, t.idx[i]}, k)
			}
		}
		return nb
	}
	mid := (lo + hi) / 2
	diff := q[ax] - t.split[node]
	if diff < 0 {
		nb = t.search(q, k, nb, 2*node+1, lo, mid)
		// ≤, not <: a point at exactly the k-th distance beyond the
		// split may still win on the index tie-break.
		if len(nb) < k || diff*diff <= nb[len(nb)-1].d {
			nb = t.search(q, k, nb, 2*node+2, mid, hi)
		}
	} else {
		nb = t.search(q, k, nb, 2*node+2, mid, hi)
		if len(nb) < k || diff*diff <= nb[len(nb)-1].d {
			nb = t.search(q, k, nb, 2*node+1, lo, mid)
		}
	}
	return nb
}

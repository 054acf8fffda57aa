package augment

import "math/bits"

// The augmentation randomness is counter-based: every random number is a pure
// function of (seed, epoch, sample index, view, counter). Nothing is carried
// from one sample to the next, so the parameters of a view never depend on
// which goroutine handled it, on batch boundaries or on the number of workers,
// and a GPU kernel can reproduce them with a dozen integer instructions.
//
// The generator is SplitMix64 (Steele, Lea & Flood 2014) used in counter mode:
// the k-th output of a stream with key K is mix64(K + (k+1)·γ), with γ the
// golden-ratio constant and mix64 the Stafford "variant 13" finaliser. A view's
// key is derived by chaining mix64 over its coordinates (see ViewKey).

const golden = 0x9E3779B97F4A7C15

// mix64 is the SplitMix64 output finaliser, a bijection on uint64 with good
// avalanche: flipping one input bit flips each output bit with probability ~½.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Key chains mix64 over a list of 64-bit coordinates, starting from seed.
// Each coordinate is offset by one so that a zero coordinate still moves the
// state. Exported for the loader, which keys its own shuffles the same way.
func Key(seed uint64, coords ...uint64) uint64 {
	k := mix64(seed + golden)
	for _, c := range coords {
		k = mix64(k + (c+1)*golden)
	}
	return k
}

// ViewKey is the stream key of one augmented view: view is 0 or 1 for the two
// views of a t-SimCNE pair. The 0xA5 domain tag keeps these streams apart from
// the loader's shuffle streams derived from the same seed.
func ViewKey(seed uint64, epoch, index, view int) uint64 {
	k := mix64(seed + golden)
	k = mix64(k ^ 0xA5A5A5A5A5A5A5A5)
	k = mix64(k + (uint64(epoch)+1)*golden)
	k = mix64(k + (uint64(index)+1)*golden)
	return mix64(k + (uint64(view)+1)*golden)
}

// U64 returns the ctr-th 64-bit output of the stream with the given key.
func U64(key, ctr uint64) uint64 { return mix64(key + (ctr+1)*golden) }

// Float64 returns the ctr-th output of the stream as a float64 uniform on [0, 1),
// using the top 53 bits.
func Float64(key, ctr uint64) float64 {
	return float64(U64(key, ctr)>>11) * 0x1p-53
}

// Uniform returns the ctr-th output mapped to [lo, hi).
func Uniform(key, ctr uint64, lo, hi float64) float64 {
	return lo + (hi-lo)*Float64(key, ctr)
}

// IntN returns the ctr-th output mapped to [0, n) by a 64×64→128-bit multiply
// (Lemire's method without the rejection step; the bias is below n/2⁶⁴, i.e.
// below 2⁻³² for any n < 2³²). n must be > 0.
func IntN(key, ctr uint64, n int) int {
	hi, _ := bits.Mul64(U64(key, ctr), uint64(n))
	return int(hi)
}

package engine

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// Profile accumulates wall time per layer (forward and backward summed per
// name). Enable it by setting Model.Prof = NewProfile().
type Profile struct {
	order []string
	t     map[string]time.Duration
	calls map[string]int
}

// NewProfile returns an empty profile.
func NewProfile() *Profile {
	return &Profile{t: map[string]time.Duration{}, calls: map[string]int{}}
}

func (p *Profile) add(name string, d time.Duration) {
	if _, ok := p.t[name]; !ok {
		p.order = append(p.order, name)
	}
	p.t[name] += d
	p.calls[name]++
}

// Add records time for a named phase outside the model (loss, optimiser).
func (p *Profile) Add(name string, d time.Duration) { p.add(name, d) }

// Write prints the per-layer table, in network order, with shares of the total.
func (p *Profile) Write(w io.Writer, steps int) {
	if steps < 1 {
		steps = 1
	}
	var total time.Duration
	for _, d := range p.t {
		total += d
	}
	fmt.Fprintf(w, "%-34s %12s %7s\n", "layer (forward+backward)", "ms/step", "share")
	for _, n := range p.order {
		d := p.t[n]
		fmt.Fprintf(w, "%-34s %12.2f %6.1f%%\n", n, float64(d.Microseconds())/1e3/float64(steps), 100*float64(d)/float64(total))
	}
	fmt.Fprintf(w, "%-34s %12.2f\n", "total", float64(total.Microseconds())/1e3/float64(steps))
	kinds := map[string]time.Duration{}
	for n, d := range p.t {
		kinds[kindOf(n)] += d
	}
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return kinds[ks[i]] > kinds[ks[j]] })
	for _, k := range ks {
		fmt.Fprintf(w, "  by kind: %-22s %10.2f ms/step %6.1f%%\n", k, float64(kinds[k].Microseconds())/1e3/float64(steps), 100*float64(kinds[k])/float64(total))
	}
}

func kindOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[i+1:]
		}
	}
	return name
}

// timer attributes a layer's wall time to one row of the model's Profile.
// Layers time themselves (defer l.t.stop(l.t.start())), so that
// Model.forward and backward read as the list of layer calls they are; a
// model without a Profile pays a nil check per layer and allocates nothing.
type timer struct {
	// row is the Profile row, e.g. "backbone.layer1.0.bn1_relu"; layers
	// that together make one step of the network (the head's two Linears,
	// a shortcut's convolution and BatchNorm) share a row.
	row string
	// prof points at Model.Prof, which callers set after NewModel.
	prof **Profile
}

// start returns the current time when profiling, else the zero time.
func (t timer) start() time.Time {
	if t.prof == nil || *t.prof == nil {
		return time.Time{}
	}
	return time.Now()
}

// stop adds the time since t0 to the timer's row when profiling.
func (t timer) stop(t0 time.Time) {
	if t.prof != nil && *t.prof != nil {
		(*t.prof).add(t.row, time.Since(t0))
	}
}

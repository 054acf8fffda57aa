// Package progress reports the progress of long work: a bar redrawn in
// place on a terminal, plain lines at a steady pace otherwise (logs, CI).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar reports progress towards a known total. It is safe for concurrent use.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	label    string
	unit     string
	total    int64
	done     int64
	extra    string
	start    time.Time
	last     time.Time
	interval time.Duration
	finished bool
}

// IsTerminal reports whether w is a character device (a terminal), where a
// bar can be redrawn in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New starts a bar writing to w (nil discards). unit names what is counted
// ("images", "chunks").
func New(w io.Writer, label string, total int64, unit string) *Bar {
	if w == nil {
		w = io.Discard
	}
	b := &Bar{w: w, tty: IsTerminal(w), label: label, unit: unit, total: total, start: time.Now()}
	// Plain lines go to logs: one every few seconds, the first only after
	// that much work, so a short job prints just its final line.
	b.interval, b.last = 5*time.Second, b.start
	if b.tty {
		b.interval, b.last = 100*time.Millisecond, time.Time{}
	}
	return b
}

// Add counts n more units done.
func (b *Bar) Add(n int64) { b.Set(-1, n) }

// Set sets the count done (done < 0 adds delta instead) and redraws when due.
func (b *Bar) Set(done, delta int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if done >= 0 {
		b.done = done
	} else {
		b.done += delta
	}
	now := time.Now()
	if now.Sub(b.last) >= b.interval {
		b.last = now
		b.draw(now)
	}
}

// SetExtra sets a short text shown after the counts (a loss, a rate).
func (b *Bar) SetExtra(s string) {
	b.mu.Lock()
	b.extra = s
	b.mu.Unlock()
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.draw(time.Now())
	if b.tty {
		fmt.Fprintln(b.w)
	}
}

func (b *Bar) draw(now time.Time) {
	el := now.Sub(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done) / el
	}
	eta := ""
	if rate > 0 && b.total > b.done {
		eta = " ETA " + (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if b.total > 0 {
		pct = 100 * float64(b.done) / float64(b.total)
	}
	extra := ""
	if b.extra != "" {
		extra = " " + b.extra
	}
	if !b.tty {
		fmt.Fprintf(b.w, "%s: %d/%d %s (%.1f%%) %.0f %s/s%s%s\n", b.label, b.done, b.total, b.unit, pct, rate, b.unit, eta, extra)
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	fill = max(0, min(width, fill))
	fmt.Fprintf(b.w, "\r%s [%s%s] %5.1f%% %d/%d %.0f %s/s%s%s\x1b[K", b.label,
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, b.done, b.total, rate, b.unit, eta, extra)
}

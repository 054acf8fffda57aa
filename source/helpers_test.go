package source_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tsimcne/tsimcne-go/source"
)

// open opens paths with opt and closes the dataset when the test ends.
func open(t testing.TB, paths []string, opt source.Options) source.Dataset {
	t.Helper()
	ds, err := source.Open(paths, opt)
	if err != nil {
		t.Fatalf("Open(%v, %+v): %v", paths, opt, err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

// openErr expects Open to fail with an error containing every want.
func openErr(t *testing.T, paths []string, opt source.Options, want ...string) {
	t.Helper()
	ds, err := source.Open(paths, opt)
	if err == nil {
		ds.Close()
		t.Fatalf("Open(%v) succeeded, want an error containing %q", paths, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Open(%v) error %q does not contain %q", paths, err, w)
		}
	}
}

// checkRaw loads every sample of ds, reusing one Sample as a packer would,
// and compares it with the expected pixels and labels. coarse is nil when
// the source has no secondary label.
func checkRaw(t *testing.T, ds source.Dataset, h, w, c int, pixels [][]byte, labels, coarse []int32) {
	t.Helper()
	if ds.Len() != len(pixels) {
		t.Fatalf("Len = %d, want %d", ds.Len(), len(pixels))
	}
	var s source.Sample
	for i := range pixels {
		if err := ds.Load(i, &s); err != nil {
			t.Fatalf("Load(%d): %v", i, err)
		}
		if s.Height != h || s.Width != w || s.Channels != c || len(s.Pixels) != h*w*c {
			t.Fatalf("sample %d: %dx%dx%d with %d bytes, want %dx%dx%d", i, s.Height, s.Width, s.Channels, len(s.Pixels), h, w, c)
		}
		if !bytes.Equal(s.Pixels, pixels[i]) {
			t.Fatalf("sample %d (%s): pixels differ", i, s.Name)
		}
		if s.Label != labels[i] {
			t.Fatalf("sample %d (%s): label %d, want %d", i, s.Name, s.Label, labels[i])
		}
		want2 := int32(-1)
		if coarse != nil {
			want2 = coarse[i]
		}
		if s.Label2 != want2 {
			t.Fatalf("sample %d: label2 %d, want %d", i, s.Label2, want2)
		}
		if s.Encoded != nil || s.Format != "" {
			t.Fatalf("sample %d: Encoded/Format set for a raw source", i)
		}
	}
}

// loadConcurrently loads every sample from several goroutines, each
// several times in a different order, and checks each result against a
// sequential load: Load must be safe for concurrent use (run with -race).
func loadConcurrently(t *testing.T, ds source.Dataset) {
	t.Helper()
	n := ds.Len()
	want := make([]string, n)
	var s source.Sample
	for i := 0; i < n; i++ {
		if err := ds.Load(i, &s); err != nil {
			want[i] = "error: " + err.Error()
			continue
		}
		want[i] = digest(&s)
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var s source.Sample
			for k := 0; k < 2*n; k++ {
				i := (k*(2*g+1) + g) % n
				got := ""
				if err := ds.Load(i, &s); err != nil {
					got = "error: " + err.Error()
				} else {
					got = digest(&s)
				}
				if got != want[i] {
					errs <- fmt.Errorf("goroutine %d, sample %d: got %.80s, want %.80s", g, i, got, want[i])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func digest(s *source.Sample) string {
	return fmt.Sprintf("%d/%d/%s/%dx%dx%d/%s/%x/%x", s.Label, s.Label2, s.Name, s.Height, s.Width, s.Channels, s.Format, s.Pixels, s.Encoded)
}

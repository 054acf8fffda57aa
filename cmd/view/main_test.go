package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "0.0.0.0:80": false, "[::]:80": false, "192.168.1.5:80": false} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if isLoopback(a) != want {
			t.Errorf("isLoopback(%s) = %v", addr, !want)
		}
	}
}

// run serves until its context ends, warns about a non-loopback address
// and the missing pack, and exits cleanly; --export and --figure write
// their files instead of serving.
func TestRun(t *testing.T) {
	f := newFixture(t, 200, 8, 1, false)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, &errb, f.emb, "", &flags{addr: "0.0.0.0:0"}) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "serving") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	url := strings.Fields(out.String()[strings.Index(out.String(), "http://"):])[0]
	r, err := http.Get(strings.Replace(url, "[::]", "127.0.0.1", 1) + "api/meta")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("GET meta: %v", err)
	}
	r.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopped server: %v", err)
	}
	if s := errb.String(); !strings.Contains(s, "not loopback") || !strings.Contains(s, "without thumbnails") {
		t.Fatalf("stderr %q", s)
	}
	rep, fig := filepath.Join(f.dir, "r.html"), filepath.Join(f.dir, "f.png")
	out.Reset()
	if err := run(context.Background(), &out, &errb, f.emb, f.pack, &flags{export: rep, exportThumbs: 50, figure: fig, figureWidth: 800, figureCells: 10}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "50 thumbnails") || !strings.Contains(out.String(), "thumbnail figure") {
		t.Fatalf("stdout %q", out.String())
	}
	if err := run(context.Background(), &out, &errb, f.emb, "", &flags{figure: fig, figureWidth: 800}); err == nil || !strings.Contains(err.Error(), "needs DATA") {
		t.Fatalf("figure without pack: %v", err)
	}
}

// syncBuffer is a bytes.Buffer that the server goroutine writes while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "pack", 10, "images")
	b.interval = 0 // draw on every call
	b.Add(4)
	b.Add(6)
	b.Finish()
	out := buf.String()
	if !strings.Contains(out, "pack: 4/10 images") || !strings.Contains(out, "pack: 10/10 images (100.0%)") {
		t.Fatalf("output %q", out)
	}
	if strings.Contains(out, "\r") {
		t.Fatal("a non-terminal got carriage returns")
	}
}

func TestShortJobPrintsOnlyItsEnd(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "verify", 3, "chunks")
	b.Add(1)
	b.Add(2)
	b.Finish()
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Fatalf("%d lines for a short job, want 1: %q", got, buf.String())
	}
}

package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "pack", 10, "images")
	b.Add(4) // first call draws
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

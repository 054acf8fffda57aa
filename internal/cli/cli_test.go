package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{errors.New("bad flag"), 1},
		{ExitError(2), 2},
		{fmt.Errorf("verify: %w", ExitError(2)), 2},
		{fmt.Errorf("train: %w", context.Canceled), 130},
	} {
		if got := Status(c.err); got != c.want {
			t.Errorf("Status(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestMessage(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"train", errors.New("format: x.tscn: not a packed dataset file"), "train: format: x.tscn: not a packed dataset file"},
		{"pack", errors.New("pack: sample 3: source: a.png: truncated"), "pack: sample 3: source: a.png: truncated"},
		{"pack", errors.New("packing: x"), "pack: packing: x"},
	} {
		if got := Message(c.name, c.err); got != c.want {
			t.Errorf("Message(%q, %q) = %q, want %q", c.name, c.err, got, c.want)
		}
	}
}

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

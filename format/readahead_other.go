//go:build !(linux || freebsd || netbsd)

package format

import (
	"errors"
	"os"
)

// willNeed has no system call here; Prefetch falls back to pread.
func willNeed(f *os.File, off, n int64) error { return errors.New("no posix_fadvise") }

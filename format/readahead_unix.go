//go:build linux || freebsd || netbsd

package format

import (
	"os"

	"golang.org/x/sys/unix"
)

// willNeed starts the kernel's read of [off, off+n) into the page cache.
func willNeed(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}

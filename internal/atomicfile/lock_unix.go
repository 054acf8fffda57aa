//go:build unix

package atomicfile

import (
	"os"
	"syscall"
)

// lock takes f's exclusive advisory lock, waiting for it (a new file: no
// one else holds it, except a RemoveStale that is about to give it up).
func lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

// tryLock takes f's exclusive advisory lock if nobody holds it.
func tryLock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

//go:build !unix

package atomicfile

import (
	"errors"
	"os"
)

// lock does nothing where flock is missing.
func lock(*os.File) error { return nil }

// tryLock never succeeds where flock is missing, so RemoveStale removes
// nothing (it cannot tell a dead writer's file from a live one's).
func tryLock(*os.File) error { return errors.New("atomicfile: no file locks") }

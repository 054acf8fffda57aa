// Package atomicfile writes files so that readers see either the old
// content or the complete new content, never a torn write: the data goes to
// a temporary file in the same directory, is synced, and is renamed into
// place.
//
// Temporary files are named .BASE.RANDOM.tmp and held under an exclusive
// advisory lock (flock) while they are written. A process killed with
// SIGKILL cannot remove its temporary file, but the kernel releases its
// lock, so the next write to the same path finds the file unlocked and
// removes it: leftovers never accumulate.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Write creates path with the bytes that fill writes. If fill fails, or
// any step of the commit does, the temporary file is removed and path is
// left as it was.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	f, err := CreateTemp(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			Discard(f)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod %s: %w", path, err)
	}
	return Commit(f, path)
}

// tempPattern is the os.CreateTemp pattern of path's temporary files.
func tempPattern(base string) string { return "." + base + ".*.tmp" }

// CreateTemp creates and locks a temporary file next to path, after
// removing the temporary files of earlier writers to path that died
// without cleaning up (those whose lock nobody holds). The caller writes
// it and then calls Commit, or Discard on failure.
func CreateTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return nil, fmt.Errorf("atomicfile: create %s: not a file name", path)
	}
	RemoveStale(path)
	for attempt := 0; ; attempt++ {
		f, err := os.CreateTemp(dir, tempPattern(base))
		if err != nil {
			return nil, fmt.Errorf("atomicfile: create %s: %w", path, err)
		}
		if err := lock(f); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("atomicfile: create %s: lock %s: %w", path, f.Name(), err)
		}
		// Another writer's RemoveStale may have seen the file between its
		// creation and the lock and removed it; then start again.
		fst, err1 := f.Stat()
		pst, err2 := os.Stat(f.Name())
		if err1 == nil && err2 == nil && os.SameFile(fst, pst) {
			return f, nil
		}
		f.Close()
		if attempt == 3 {
			return nil, fmt.Errorf("atomicfile: create %s: the temporary file keeps disappearing", path)
		}
	}
}

// RemoveStale removes the temporary files left next to path by writers
// that died (unlocked ones) and returns how many it removed. Files that a
// live writer holds are left alone.
func RemoveStale(path string) int {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	matches, _ := filepath.Glob(filepath.Join(dir, globEscape(tempPattern(base))))
	removed := 0
	for _, m := range matches {
		f, err := os.OpenFile(m, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if tryLock(f) == nil {
			if os.Remove(m) == nil {
				removed++
			}
		}
		f.Close()
	}
	return removed
}

// RemoveStaleDir removes every unlocked temporary file (.NAME.*.tmp) in
// dir, for directories a process owns (a training run's, under its lock),
// where a killed writer may have left the temporary file of a name that is
// never written again.
func RemoveStaleDir(dir string) int {
	matches, _ := filepath.Glob(filepath.Join(globEscape(dir), ".*.tmp"))
	removed := 0
	for _, m := range matches {
		f, err := os.OpenFile(m, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if tryLock(f) == nil && os.Remove(m) == nil {
			removed++
		}
		f.Close()
	}
	return removed
}

// globEscape escapes the glob metacharacters of a file name but keeps the
// one '*' of the pattern.
func globEscape(p string) string {
	var b strings.Builder
	last := strings.LastIndex(p, "*")
	if !strings.HasSuffix(p, ".*.tmp") {
		last = -1
	}
	for i, r := range p {
		if strings.ContainsRune(`[]?\`, r) || (r == '*' && i != last) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Commit syncs and closes f (from CreateTemp) and renames it over path. On
// failure the temporary file is removed and path is left as it was.
func Commit(f *os.File, path string) error {
	tmp := f.Name()
	if err := f.Sync(); err != nil {
		Discard(f)
		return fmt.Errorf("atomicfile: sync %s: %w", path, err)
	}
	// Rename while the lock is still held, so that no RemoveStale can take
	// the finished file for a leftover.
	if err := os.Rename(tmp, path); err != nil {
		Discard(f)
		return fmt.Errorf("atomicfile: rename %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// Discard closes and removes a temporary file from CreateTemp.
func Discard(f *os.File) {
	name := f.Name()
	os.Remove(name) // while still locked
	f.Close()
}

// syncDir makes a rename durable; failure only weakens durability, so it is
// not an error.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// SameFile reports whether a and b name the same existing file (by device
// and inode, so hard links, symbolic links and different spellings of one
// path all count).
func SameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(sa, sb)
}

// ErrIsInput is wrapped by CheckNotInput's error.
var ErrIsInput = errors.New("an output would replace an input")

// CheckNotInput returns an error when the output path already exists and is
// the same file as one of inputs, so that an argument mix-up never destroys
// an input. what names the output for the message (a flag such as "-o").
func CheckNotInput(what, out string, inputs ...string) error {
	so, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet: nothing to destroy
	}
	for _, in := range inputs {
		si, err := os.Stat(in)
		if err == nil && os.SameFile(so, si) {
			return fmt.Errorf("atomicfile: %s %s is the input %s: refusing to overwrite an input (%w); choose another output", what, out, in, ErrIsInput)
		}
	}
	return nil
}

// ErrBusy is wrapped by Lock's error when another process holds the lock.
var ErrBusy = errors.New("in use by another process")

// Lock takes an exclusive advisory lock on the file path (created if
// missing) without waiting, and returns a function that releases it. The
// kernel releases it too when the process dies, so a killed process never
// leaves a stale lock. It keeps two processes from working in the same
// place (two trainings writing one run directory).
func Lock(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("atomicfile: lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("atomicfile: %s: %w", filepath.Dir(path), ErrBusy)
	}
	return func() { f.Close() }, nil
}

// LockExisting takes an exclusive advisory lock on the existing file at
// path itself, without waiting, and returns a function that releases it.
// It serialises read-modify-replace updates of one file (pack --append):
// two of them at once would each copy the old version and the second
// rename would drop the first one's additions. A writer that replaces path
// (CreateTemp, Commit) holds the new file's lock until the rename is done,
// so the lock taken here is always on the version that path names.
func LockExisting(path string) (release func(), err error) {
	for attempt := 0; ; attempt++ {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("atomicfile: lock %s: %w", path, err)
		}
		if err := tryLock(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("atomicfile: %s: %w", path, ErrBusy)
		}
		// Another writer may have replaced path between the open and the
		// lock: the lock must be on the file path names now.
		fst, err1 := f.Stat()
		pst, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fst, pst) {
			return func() { f.Close() }, nil
		}
		f.Close()
		if attempt == 3 {
			return nil, fmt.Errorf("atomicfile: %s: replaced again and again while being locked: %w", path, ErrBusy)
		}
	}
}

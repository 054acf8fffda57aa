//go:build !linux

package main

// physicalMemory returns 0 (unknown) where no system call gives it cheaply:
// --order auto then weighs a pack against the chunk cache only.
func physicalMemory() int64 { return 0 }

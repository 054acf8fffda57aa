// Package hostile holds the hostile-input suite of issue 16: the real
// pack, train and embed binaries run against mistaken and adversarial
// situations (paths, sizes, counts, headers, labels, flags, signals at
// random moments, full disks, concurrent writers). Each test asserts what a
// careful tool owes its user: no input ever overwritten, a clear error that
// names the file, flag or sample with a non-zero exit status, no panic, no
// hang, no leftovers. docs/RELIABILITY.md lists the promises and the tests
// that show them. The package has no code of its own; it is all tests.
package hostile

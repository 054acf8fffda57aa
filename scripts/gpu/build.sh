#!/usr/bin/env bash
# Builds, on a machine with Go (no GPU needed), everything
# scripts/gpu/check.sh runs on the GPU machine (which has no Go):
# CGO-free binaries in bin/ — pack, train, embed, gencifar, and the
# engine/cuda test executable bin/cuda.test. Carry bin/ to the GPU machine
# and run `bash scripts/gpu/check.sh` from the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CGO_ENABLED=0
mkdir -p bin
go build -o bin/pack ./cmd/pack
go build -o bin/train ./cmd/train
go build -o bin/embed ./cmd/embed
go build -o bin/gencifar ./scripts/gpu/gencifar
go test -c -o bin/cuda.test ./engine/cuda
ls -l bin/pack bin/train bin/embed bin/gencifar bin/cuda.test

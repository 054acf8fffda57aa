#!/usr/bin/env bash
# One process (2 threads) against 2 MPI ranks (1 thread each) on the same
# short run: the maps' kNN accuracies should agree within 0.02.
#   scripts/mpi/knn.sh DATA [WORKDIR]    (e.g. the MNIST test set packed)
set -euo pipefail
data=$(realpath "$1")
work=${2:-$(mktemp -d)}
cd "$(dirname "$0")/../.."
CGO_ENABLED=0 go build -o bin/ ./cmd/train ./cmd/embed
bin=$PWD/bin
mkdir -p "$work" && cd "$work" && rm -rf one two
A="$data -q --backbone resnet_tiny --image-size 16 --epochs 4,1,2 --batch 256 --train-subset 4000 --seed 1 --flip-p 0 --workers 1"
time "$bin/train" $A -o one --threads 2
time mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/train" $A -o two --threads 1
"$bin/embed" one "$data" -o one.arrow -q
"$bin/embed" two "$data" -o two.arrow -q
cat one/metrics.csv two/metrics.csv

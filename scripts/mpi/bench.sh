#!/usr/bin/env bash
# Data-parallel step benchmark for docs/BENCHMARKS.md: Go (engine + MPI) and
# PyTorch (Debian's torch, DistributedDataParallel over gloo), same model,
# image size and global batch, random data (no loader), rounds interleaved.
#   scripts/mpi/bench.sh [rounds=3] [steps=20] [batch=256] [arch=resnet_tiny] [size=16]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} steps=${2:-20} batch=${3:-256} arch=${4:-resnet_tiny} size=${5:-16}
mkdir -p bin
CGO_ENABLED=0 go build -o bin/ ./scripts/mpi/benchstep
M="mpirun --oversubscribe --allow-run-as-root -np 2"
B="bin/benchstep -steps $steps -batch $batch -arch $arch -size $size"
lscpu | grep -m1 "Model name" || true
for r in $(seq "$rounds"); do
	echo "--- round $r"
	$B -threads 2
	$M $B -threads 1
	$M $B -threads 1 -local-bn
	/usr/bin/python3 scripts/mpi/ddp_bench.py 1 "$batch" "$steps" 2 "$arch" "$size"
	/usr/bin/python3 scripts/mpi/ddp_bench.py 2 "$batch" "$steps" 1 "$arch" "$size"
done

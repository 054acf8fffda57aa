#!/usr/bin/env bash
# Regenerates engine/cuda/kernels/kernels.ptx from kernels.cu with Debian's
# clang (apt-get install -y clang); no CUDA toolkit is needed. The PTX is
# committed, so builds and CI need no clang; TestPTXUpToDate compares the
# committed file with a fresh compile whenever clang is installed.
set -euo pipefail
cd "$(dirname "$0")/../../engine/cuda/kernels"
CLANG=${CLANG:-clang}
"$CLANG" -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 \
	-O3 -ffp-contract=off -S -o kernels.ptx kernels.cu
echo "wrote engine/cuda/kernels/kernels.ptx ($("$CLANG" --version | head -1))"

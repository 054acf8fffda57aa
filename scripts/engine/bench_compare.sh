#!/bin/sh
# Runs BenchmarkTrainStep and its PyTorch twin back to back, ROUNDS times
# per batch size, so both see the same machine load. Usage (repository root):
#   scripts/engine/bench_compare.sh [sizes] [rounds] [steps]
#   e.g. scripts/engine/bench_compare.sh "64 256" 3 3
# Environment: PYTHON (default /usr/bin/python3); GO_ENV, extra environment
# for the Go run (e.g. GO_ENV="TSIMCNE_OPENBLAS_CORETYPE=SkylakeX").
set -e
SIZES=${1:-"64 256"}
ROUNDS=${2:-3}
STEPS=${3:-3}
PY=${PYTHON:-/usr/bin/python3}
BIN=$(mktemp -d)/engine.test
go test -c -o "$BIN" ./engine
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $SIZES; do
  r=1
  while [ "$r" -le "$ROUNDS" ]; do
    env $GO_ENV TSIMCNE_BENCH_SIZES="$n" "$BIN" -test.run '^$' -test.bench 'TrainStep' \
      -test.benchtime "${STEPS}x" 2>&1 | grep -E '^BenchmarkTrainStep'
    "$PY" scripts/engine/bench_torch.py "$n" "$STEPS"
    r=$((r + 1))
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

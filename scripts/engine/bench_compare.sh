#!/bin/sh
# Runs BenchmarkTrainStep and its PyTorch twin (bench_torch.py) back to back,
# ROUNDS times per batch size, so both see the same machine load, then prints
# the median step time of each and the median of the per-round ratios.
# Usage (from the repository root):
#   scripts/engine/bench_compare.sh [sizes] [rounds] [steps]
#   e.g. scripts/engine/bench_compare.sh "64 256" 5 3
# Environment: PYTHON (default /usr/bin/python3); GO_ENV, extra environment
# for the Go runs (e.g. GO_ENV="TSIMCNE_OPENBLAS_CORETYPE=SkylakeX").
set -e
SIZES=${1:-"64 256"}
ROUNDS=${2:-5}
STEPS=${3:-3}
PY=${PYTHON:-/usr/bin/python3}
DIR=$(mktemp -d)
BIN=$DIR/engine.test
LOG=$DIR/log
go test -c -o "$BIN" ./engine
echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); GO_ENV=$GO_ENV"
for n in $SIZES; do
  r=1
  while [ "$r" -le "$ROUNDS" ]; do
    env $GO_ENV TSIMCNE_BENCH_SIZES="$n" "$BIN" -test.run '^$' -test.bench 'TrainStep' \
      -test.benchtime "${STEPS}x" 2>&1 | grep -E '^BenchmarkTrainStep' | tee -a "$LOG"
    "$PY" scripts/engine/bench_torch.py "$n" "$STEPS" | tee -a "$LOG"
    r=$((r + 1))
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$LOG" <<'PYEOF'
import re, statistics, sys
go, torch = {}, {}
order = []
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkTrainStep/2x(\d+)\S*\s+\d+\s+(\d+) ns/op(.*)", line)
    if m:
        n = int(m.group(1)); order.append(("go", n))
        mem = re.search(r"([\d.]+) peak-MB", m.group(3))
        go.setdefault(n, []).append((int(m.group(2)) / 1e9, float(mem.group(1)) if mem else 0))
        continue
    m = re.match(r"torch \S+ 2x(\d+): ([\d.]+) s/step, [\d.]+ images/s, peak (\d+) MB", line)
    if m:
        n = int(m.group(1))
        torch.setdefault(n, []).append((float(m.group(2)), float(m.group(3))))
for n in sorted(go):
    g, t = go[n], torch.get(n, [])
    ratios = [tt[0] / gg[0] for gg, tt in zip(g, t)]
    gs, ts = statistics.median(x[0] for x in g), statistics.median(x[0] for x in t)
    print("2x%d: Go median %.2f s/step (%.1f images/s, peak %.0f MB); PyTorch median %.2f s/step (%.1f images/s, peak %.0f MB)"
          % (n, gs, 2 * n / gs, max(x[1] for x in g), ts, 2 * n / ts, max(x[1] for x in t)))
    print("      Go/PyTorch speed: median of per-round ratios %.2f (rounds: %s); memory ratio %.2f"
          % (statistics.median(ratios), " ".join("%.2f" % r for r in ratios),
             max(x[1] for x in g) / max(x[1] for x in t)))
PYEOF

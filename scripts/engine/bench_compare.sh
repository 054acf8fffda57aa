#!/bin/sh
# Runs BenchmarkTrainStep and its PyTorch twin (bench_torch.py) back to back,
# ROUNDS times per batch size, so both see the same machine load, then prints
# the median step time of each and the median of the per-round ratios.
# Usage (from the repository root):
#   scripts/engine/bench_compare.sh [sizes] [rounds] [steps] [arch] [side]
#   e.g. scripts/engine/bench_compare.sh "64 256" 5 3
#   the demo's network: scripts/engine/bench_compare.sh 128 7 20 resnet_tiny 16
# (Both sides feed 3-channel views: the engine replicates grayscale data to
# three channels, so this is exactly the demo's step, MNIST included.)
# Environment: PYTHON (default /usr/bin/python3); GO_ENV, extra environment
# for the Go runs (e.g. GO_ENV="TSIMCNE_OPENBLAS_CORETYPE=SkylakeX");
# BASE_REV, a git revision (e.g. a commit before a speed-up) whose engine is
# built from `git archive` and run in every round too, so the speed-up is
# measured against it in the same run.
set -e
SIZES=${1:-"64 256"}
ROUNDS=${2:-5}
STEPS=${3:-3}
ARCH=${4:-resnet18_simclr}
SIDE=${5:-32}
PY=${PYTHON:-/usr/bin/python3}
DIR=$(mktemp -d)
BIN=$DIR/engine.test
LOG=$DIR/log
go test -c -o "$BIN" ./engine
if [ -n "$BASE_REV" ]; then
  mkdir "$DIR/base"
  git archive "$BASE_REV" | tar -x -C "$DIR/base"
  (cd "$DIR/base" && go test -c -o "$DIR/base.test" ./engine)
fi
echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $ARCH at ${SIDE}x${SIDE}; GO_ENV=$GO_ENV${BASE_REV:+; base $BASE_REV}"
for n in $SIZES; do
  r=1
  while [ "$r" -le "$ROUNDS" ]; do
    if [ -n "$BASE_REV" ]; then
      env $GO_ENV TSIMCNE_BENCH_SIZES="$n" TSIMCNE_BENCH_ARCH="$ARCH" TSIMCNE_BENCH_IMAGE="$SIDE" "$DIR/base.test" \
        -test.run '^$' -test.bench 'TrainStep' -test.benchtime "${STEPS}x" 2>&1 | grep -E '^BenchmarkTrainStep' |
        sed 's/^/base /' | tee -a "$LOG"
    fi
    env $GO_ENV TSIMCNE_BENCH_SIZES="$n" TSIMCNE_BENCH_ARCH="$ARCH" TSIMCNE_BENCH_IMAGE="$SIDE" "$BIN" \
      -test.run '^$' -test.bench 'TrainStep' -test.benchtime "${STEPS}x" 2>&1 | grep -E '^BenchmarkTrainStep' | tee -a "$LOG"
    "$PY" scripts/engine/bench_torch.py "$n" "$STEPS" "$ARCH" "$SIDE" | tee -a "$LOG"
    r=$((r + 1))
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$LOG" <<'PYEOF'
import re, statistics, sys
go, torch, base = {}, {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"(base )?BenchmarkTrainStep/2x(\d+)\S*\s+\d+\s+(\d+) ns/op(.*)", line)
    if m:
        n = int(m.group(2))
        mem = re.search(r"([\d.]+) peak-MB", m.group(4))
        (base if m.group(1) else go).setdefault(n, []).append((int(m.group(3)) / 1e9, float(mem.group(1)) if mem else 0))
        continue
    m = re.match(r"torch \S+ 2x(\d+): ([\d.]+) s/step, [\d.]+ images/s, peak (\d+) MB", line)
    if m:
        n = int(m.group(1))
        torch.setdefault(n, []).append((float(m.group(2)), float(m.group(3))))
for n in sorted(go):
    g, t = go[n], torch.get(n, [])
    ratios = [tt[0] / gg[0] for gg, tt in zip(g, t)]
    gs, ts = statistics.median(x[0] for x in g), statistics.median(x[0] for x in t)
    print("2x%d: Go median %.4f s/step (%.1f images/s, peak %.0f MB); PyTorch median %.4f s/step (%.1f images/s, peak %.0f MB)"
          % (n, gs, 2 * n / gs, max(x[1] for x in g), ts, 2 * n / ts, max(x[1] for x in t)))
    print("      Go/PyTorch speed: median of per-round ratios %.2f (rounds: %s); memory ratio %.2f"
          % (statistics.median(ratios), " ".join("%.2f" % r for r in ratios),
             max(x[1] for x in g) / max(x[1] for x in t)))
    if n in base:
        b = base[n]
        br = [bb[0] / gg[0] for gg, bb in zip(g, b)]
        bs = statistics.median(x[0] for x in b)
        print("      base median %.4f s/step (%.1f images/s); Go/base speed: median of per-round ratios %.2f (rounds: %s)"
              % (bs, 2 * n / bs, statistics.median(br), " ".join("%.2f" % r for r in br)))
PYEOF

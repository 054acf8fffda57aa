#!/usr/bin/env bash
# GPU check of the CUDA backend, run from the repository root on the GPU
# machine (no Go there: bin/ is built beforehand by scripts/gpu/build.sh and
# carried). The whole check has one time budget, CHECK_BUDGET seconds
# (default 420, leaving a 10-minute device call room for the machine's
# start and the transfers): every stage runs under `timeout` with the
# smaller of its own limit and what is left of the budget, so a hanging
# stage is killed (SIGKILL 5 s after SIGTERM) and the table is printed
# after at most CHECK_BUDGET + 6·5 s whatever happens. Stages:
#   1. bin/cuda.test: every op against the CPU, the PyTorch micro fixture
#      (FP32 ≤ 1e-4, TF32 ≤ 5e-3), training steps against the CPU (host
#      input, and the whole device pipeline: Source8 batch → augmentation
#      kernels → ForwardBuf → device loss), the augmentation and loss
#      kernels against the CPU, buffer life cycle;
#   2. BenchmarkTrainStep, resnet18_simclr, 2×256 and 2×512 views of 32×32
#      (TF32; and 2×512 in FP32);
#   3. a 60,000-image CIFAR-format file (bin/gencifar, bin/pack), one epoch
#      through the GPU pipeline (TestGPUEpoch: time and the share of it
#      the GPU waits for data), and one epoch of bin/train --device cuda;
#   4. the same step in PyTorch eager with TF32 (scripts/gpu/bench_torch.py).
# Logs go to $CHECK_OUT (default $OUT if set, else /tmp/gpu-check).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOG=${CHECK_OUT:-${OUT:-/tmp/gpu-check}}
mkdir -p "$LOG"
WORK=$(mktemp -d /tmp/gpu-check-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
BUDGET=${CHECK_BUDGET:-420}
stamp() { echo "[$(( $(date +%s) - START ))s] $*"; }
# lim N: the timeout for a stage that may take N seconds, clamped to what is
# left of the budget (at least 1 s, so a spent budget skips stages quickly).
lim() {
	local left=$(( BUDGET - ($(date +%s) - START) ))
	local t=$1
	(( left < t )) && t=$left
	(( t < 1 )) && t=1
	echo "$t"
}
run_lim() { local t; t=$(lim "$1"); shift; timeout -k 5 "$t" "$@"; }

for f in bin/cuda.test bin/pack bin/train bin/gencifar; do
	[ -x "$f" ] || { echo "missing $f: run scripts/gpu/build.sh on a machine with Go and carry bin/"; exit 2; }
done
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
PY=${TSIMCNE_PYTHON:-python3}

stamp "1. correctness tests"
T=$(lim 120)
(cd engine/cuda && timeout -k 5 "$T" "$ROOT/bin/cuda.test" -test.v -test.run 'Test' -test.skip 'TestGPUEpoch|TestPTXUpToDate' -test.timeout "$(( T > 5 ? T - 3 : T ))s") >"$LOG/tests.txt" 2>&1
TESTS_RC=$?
grep -E '^(--- |ok|FAIL|PASS)|backend:|worst relative|largest difference|relative error|absolute error|panic' "$LOG/tests.txt" | head -60

stamp "2. train-step benchmark"
(cd engine/cuda && TSIMCNE_BENCH_SIZES=256,512 run_lim 70 "$ROOT/bin/cuda.test" -test.run '^$' -test.bench 'BenchmarkTrainStep' -test.benchtime 10x) >"$LOG/bench_tf32.txt" 2>&1
(cd engine/cuda && TSIMCNE_CUDA_MATH=fp32 TSIMCNE_BENCH_SIZES=512 run_lim 35 "$ROOT/bin/cuda.test" -test.run '^$' -test.bench 'BenchmarkTrainStep' -test.benchtime 5x) >"$LOG/bench_fp32.txt" 2>&1
grep -E 'Benchmark|FAIL|panic' "$LOG/bench_tf32.txt" "$LOG/bench_fp32.txt"

stamp "3. epoch over 60,000 images"
run_lim 30 bin/gencifar "$WORK/cifar" "${CHECK_PER_BATCH:-10000}" >"$LOG/data.txt" 2>&1 &&
	run_lim 40 bin/pack "$WORK/cifar" -o "$WORK/cifar.tscn" --shuffle >>"$LOG/data.txt" 2>&1
cat "$LOG/data.txt"
(cd engine/cuda && TSIMCNE_GPU_EPOCH_FILE="$WORK/cifar.tscn" run_lim 60 "$ROOT/bin/cuda.test" -test.v -test.run 'TestGPUEpoch') >"$LOG/epoch.txt" 2>&1
grep -E 'EPOCH|FAIL|panic|Error|error' "$LOG/epoch.txt" | head -5
T0=$(date +%s.%N)
run_lim 75 bin/train "$WORK/cifar.tscn" -o "$WORK/run" --epochs 1 --device cuda >"$LOG/train.txt" 2>&1
TRAIN_RC=$?
TRAIN_S=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
tail -5 "$LOG/train.txt"

stamp "4. PyTorch eager, TF32"
run_lim 60 "$PY" scripts/gpu/bench_torch.py 256 512 --steps 10 >"$LOG/torch.txt" 2>&1
cat "$LOG/torch.txt" | tail -5

num() { grep -oE "$2" "$1" 2>/dev/null | head -1 | grep -oE '[0-9.]+$' || echo "-"; }
go_ips() { grep -E "BenchmarkTrainStep/2x$2-?[0-9]* " "$1" 2>/dev/null | grep -oE '[0-9.]+ images/s' | grep -oE '^[0-9.]+' || echo "-"; }
echo
echo "| measurement | value |"
echo "|---|---|"
TESTS="FAIL (rc $TESTS_RC, $LOG/tests.txt)"
if [ $TESTS_RC = 0 ]; then
	TESTS=PASS
	grep -q -- '--- SKIP: TestOpsMatchCPU' "$LOG/tests.txt" && TESTS="SKIPPED: no CUDA device (see $LOG/tests.txt)"
fi
echo "| correctness tests (bin/cuda.test) | $TESTS |"
echo "| Go train step 2x256, TF32, images/s | $(go_ips "$LOG/bench_tf32.txt" 256) |"
echo "| Go train step 2x512, TF32, images/s | $(go_ips "$LOG/bench_tf32.txt" 512) |"
echo "| Go train step 2x512, FP32, images/s | $(go_ips "$LOG/bench_fp32.txt" 512) |"
echo "| PyTorch eager TF32 2x256, images/s | $(num "$LOG/torch.txt" 'n=256 images_per_s=[0-9.]+') |"
echo "| PyTorch eager TF32 2x512, images/s | $(num "$LOG/torch.txt" 'n=512 images_per_s=[0-9.]+') |"
echo "| epoch, 60k images, GPU pipeline (s) | $(num "$LOG/epoch.txt" 'seconds=[0-9.]+') |"
echo "| share of that epoch the GPU waits for data | $(num "$LOG/epoch.txt" 'wait_frac=[0-9.]+') |"
echo "| bin/train --device cuda --epochs 1 (s, wall incl. start) | $([ $TRAIN_RC = 0 ] && echo "$TRAIN_S" || echo "failed rc $TRAIN_RC ($LOG/train.txt)") |"
stamp "done (logs in $LOG)"

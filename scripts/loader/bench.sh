#!/bin/sh
# Loader throughput against torchvision's DataLoader, measured in the same run.
#
#   scripts/loader/bench.sh [cifar|96|jpeg|all]   (default: cifar)
#
# For each case: the torchvision baseline (2 workers, the reference's PIL
# transforms), the Go benchmark with 1 and 2 cores, the baseline again; the
# ratio uses the mean of the two baseline runs, so drift on a shared machine
# shows up as a difference between them rather than in the ratio.
set -eu
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
which="${1:-cifar}"

run() { # name go-bench-regex benchtime python-args...
	name=$1 bench=$2 bt=$3
	shift 3
	b1=$($PY scripts/loader/bench_torchvision.py "$@" | sed -n 's/.*: \([0-9]*\) images\/s.*/\1/p')
	go test ./loader -run '^$' -bench "^Benchmark$bench\$" -cpu 1,2 -benchtime "$bt" -count 1 >/tmp/loaderbench.$$ 2>&1 || { cat /tmp/loaderbench.$$; exit 1; }
	b2=$($PY scripts/loader/bench_torchvision.py "$@" | sed -n 's/.*: \([0-9]*\) images\/s.*/\1/p')
	grep '^Benchmark' /tmp/loaderbench.$$
	base=$(( (b1 + b2) / 2 ))
	for cpu in 1 2; do
		suffix=""
		[ "$cpu" = 2 ] && suffix="-2"
		go=$(awk -v n="Benchmark$bench$suffix" '$1 == n { for (i = 1; i <= NF; i++) if ($(i+1) == "images/s") print int($i) }' /tmp/loaderbench.$$)
		echo "$name: Go $cpu core(s) $go images/s; torchvision 2 workers $b1 / $b2 images/s; ratio $(awk -v a="$go" -v b="$base" 'BEGIN { printf "%.1f", a / b }')x"
	done
	rm -f /tmp/loaderbench.$$
}

case "$which" in cifar | all) run "32x32 raw -> 32x32" TwoViewCIFAR 40x --size 32 ;; esac
case "$which" in 96 | all) run "96x96 raw -> 96x96" TwoView96 6x --size 96 --n 3072 --batches 6 ;; esac
case "$which" in jpeg | all) run "256 px JPEG -> 64x64" TwoViewJPEG 4x --jpeg 256 --out 64 --n 1536 --batches 4 ;; esac

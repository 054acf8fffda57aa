#!/bin/sh
# pack of a folder of ImageNet-sized JPEG photographs with --resize 64x64:
# libjpeg-turbo (DCT-scaled decoding) against Go's image/jpeg, in the same
# run (turbo, Go, turbo again; the ratio uses the mean of the two turbo runs).
#
#   scripts/photos/bench_pack.sh [N]    (default 5000 photographs, 333–500 px a side)
set -eu
cd "$(dirname "$0")/../.."
n="${1:-5000}"
dir=/tmp/tsimcne-photos-$n
[ -d "$dir" ] || go run ./scripts/photos -n "$n" -min 333 -max 500 -o "$dir"
go build -o /tmp/tsimcne-bench-pack ./cmd/pack
rate() { sed -n 's/.*in \([0-9.]*\)s .*/\1/p'; }
out=/tmp/tsimcne-bench-pack.tscn
echo "$(du -sh "$dir" | cut -f1) of JPEGs in $dir; load: $(cut -d' ' -f1-3 /proc/loadavg)"
t1=$(/tmp/tsimcne-bench-pack "$dir" --resize 64x64 -o $out 2>/tmp/tsimcne-bench-pack.err | rate)
head -c 300 /tmp/tsimcne-bench-pack.err | tr '\r' '\n' | head -3
g=$(/tmp/tsimcne-bench-pack "$dir" --resize 64x64 --go-jpeg -q -o $out | rate)
t2=$(/tmp/tsimcne-bench-pack "$dir" --resize 64x64 -q -o $out | rate)
awk -v n="$n" -v a="$t1" -v b="$t2" -v g="$g" 'BEGIN {
	t = (a + b) / 2
	printf "libjpeg-turbo: %.2fs / %.2fs (%.0f images/s); image/jpeg: %.2fs (%.0f images/s); ratio %.1fx\n", a, b, n / t, g, n / g, g / t }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f $out

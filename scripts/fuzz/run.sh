#!/usr/bin/env bash
# Fuzz every parser in turn and report the executions each target reached.
#
#   scripts/fuzz/run.sh [TARGET...]     (make fuzz runs all of them)
#
# FUZZTIME      per target: a duration (20s) or an execution count (10000000x)
# FUZZPARALLEL  fuzzing workers per target (default 1: a shared machine)
# FUZZMINIMIZE  -fuzzminimizetime: the budget for minimising each new
#               interesting input. Go's default of 60s per input stalled
#               FuzzOpen (a few thousand executions in 3 minutes: every new
#               input of a packed file is minimised for a minute); 100
#               executions per input keep the corpus small enough and the
#               target busy fuzzing.
# FUZZLOG       directory of the per-target logs (default fuzz-logs)
#
# Exit status 1 when a target fails (a crasher is in its testdata/fuzz).
set -uo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}
FUZZPARALLEL=${FUZZPARALLEL:-1}
FUZZMINIMIZE=${FUZZMINIMIZE:-100x}
FUZZLOG=${FUZZLOG:-fuzz-logs}
mkdir -p "$FUZZLOG"

ALL="./format/:FuzzOpen ./source/:FuzzCIFAR ./source/:FuzzCIFARTar ./source/:FuzzIDX ./source/:FuzzDecodeImage ./engine/safetensors/:FuzzParse ./engine/:FuzzLoadCheckpoint ./source/:FuzzParquet ./source/:FuzzArrowIPC ./source/:FuzzWebDataset ./internal/turbojpeg/:FuzzTurboJPEG"
targets=${*:-$ALL}

fail=0
summary=()
for t in $targets; do
	pkg=${t%%:*}
	name=${t##*:}
	log="$FUZZLOG/$name.log"
	start=$(date +%s)
	$GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZE" \
		-parallel "$FUZZPARALLEL" "$pkg" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	# The last progress line: "fuzz: elapsed: 20s, execs: 123456 (6172/sec), new interesting: 3 (total: 40)"
	last=$(grep 'fuzz: elapsed:.*execs:' "$log" | tail -1)
	execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
	execs=${execs:-0}
	# The fuzzer's own elapsed time (h, m, s), without building the binary.
	el=$(sed -n 's/.*elapsed: \([0-9hms]*\),.*/\1/p' <<<"$last")
	fsecs=0
	[[ $el =~ ([0-9]+)h ]] && fsecs=$(( fsecs + 3600 * BASH_REMATCH[1] ))
	[[ $el =~ ([0-9]+)m ]] && fsecs=$(( fsecs + 60 * BASH_REMATCH[1] ))
	[[ $el =~ ([0-9]+)s ]] && fsecs=$(( fsecs + BASH_REMATCH[1] ))
	status=ok
	if [ $rc -ne 0 ]; then
		status=FAIL
		fail=1
		tail -30 "$log"
	fi
	rate=$(( fsecs > 0 ? execs / fsecs : execs ))
	summary+=("$(printf '%-20s %-22s %11s execs in %6ss fuzzing (%5ss with the build) %8s execs/s  %s' "$name" "$pkg" "$execs" "$fsecs" "$secs" "$rate" "$status")")
done
echo "fuzz summary (FUZZTIME=$FUZZTIME, -parallel=$FUZZPARALLEL, -fuzzminimizetime=$FUZZMINIMIZE):"
printf '%s\n' "${summary[@]}"
exit $fail

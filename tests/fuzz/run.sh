#!/bin/bash
# run.sh - runs the host fuzzers (`make fuzz`, docs/testing.md).
#   tests/fuzz/run.sh BUILD JOBS EXECS TIME FUZZER...
# Each FUZZER (a libFuzzer binary, BUILD/fuzz/fuzz_NAME) runs EXECS
# executions (or TIME seconds when TIME is not empty), up to JOBS at once,
# starting from the committed corpus tests/fuzz/corpus/NAME and its own
# working corpus BUILD/fuzz/corpus/NAME (kept between runs).  Crash inputs
# go to BUILD/fuzz/crashes/; logs to BUILD/fuzz/logs/NAME.log.  Prints, for
# each fuzzer in order, exactly the two lines
#   fuzz NAME_EXECS N
#   fuzz NAME_CRASHES N
# (NAME in upper case), and the wall time; fails if any fuzzer crashed or
# did not report its executions.
set -u
build=$1 jobs=$2 execs=$3 time=$4
shift 4
mkdir -p "$build/fuzz/crashes" "$build/fuzz/logs"

run_one() {
	bin=$1
	name=${bin##*/fuzz_}
	max_len=$(sed -n 's|^// max_len: ||p' "tests/fuzz/fuzz_$name.c")
	mkdir -p "$build/fuzz/corpus/$name"
	rm -f "$build/fuzz/crashes/$name"-*
	if [ -n "$time" ]; then limit="-max_total_time=$time"; else limit="-runs=$execs"; fi
	# Leaks are not what these look for, and LeakSanitizer is slow at exit.
	ASAN_OPTIONS=detect_leaks=0 "$bin" $limit -max_len="${max_len:-4096}" -print_final_stats=1 \
		-artifact_prefix="$build/fuzz/crashes/$name-" \
		"$build/fuzz/corpus/$name" "tests/fuzz/corpus/$name" >"$build/fuzz/logs/$name.log" 2>&1
	echo "$?" >"$build/fuzz/logs/$name.rc"
}

start=$(date +%s)
if [ "$jobs" -gt 1 ]; then
	# Up to JOBS at once; each job writes only its own files.
	running=0
	for bin in "$@"; do
		run_one "$bin" &
		running=$((running + 1))
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
	done
	wait
else
	for bin in "$@"; do run_one "$bin"; done
fi

status=0
for bin in "$@"; do
	name=${bin##*/fuzz_}
	upper=$(echo "$name" | tr 'a-z' 'A-Z')
	log="$build/fuzz/logs/$name.log"
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	crashes=$(find "$build/fuzz/crashes" -name "$name-*" -type f | wc -l)
	# A fuzzer that stopped without an artifact (e.g. out of memory in
	# libFuzzer itself) is a failure too.
	if [ "$crashes" -eq 0 ] && [ "$(cat "$build/fuzz/logs/$name.rc")" != 0 ]; then
		crashes=1
	fi
	echo "fuzz ${upper}_EXECS ${n:-0}"
	echo "fuzz ${upper}_CRASHES $crashes"
	if [ -z "$n" ] || [ "$crashes" -ne 0 ]; then
		status=1
		echo "  (see $log)" >&2
	fi
done
echo "host fuzzers: $# in $(($(date +%s) - start)) s wall time (JOBS=$jobs)" >&2
exit $status

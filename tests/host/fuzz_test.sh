#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A short libFuzzer run of the wire reader (tests/fuzz/wire_fuzz.c) for
# make test, TAP. FUZZ_TEST_SECONDS (default 20) sets the length. The
# committed seeds are copied to out/fuzz/test-corpus, which gets the new
# inputs; crash inputs land in out/fuzz/test-crash-*, the run's output in
# out/fuzz/fuzz_test.log.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_TEST_SECONDS:-20}
out=out/fuzz
log=$out/fuzz_test.log
. tests/host/tap.sh
# result DESC STATUS: one TAP line; on failure the log's tail as diagnostics
result() { tap_result "$1" "$2" "$log" 30; }

echo "TAP version 13"
echo "1..2"
mkdir -p "$out"
if ! make -s out/fuzz/wire_fuzz out/fuzz/gen_corpus >"$log" 2>&1; then
	result "build the fuzzer" 1
	result "the committed corpus is what gen_corpus writes # SKIP no build" 0
	exit 1
fi

rm -rf "$out/test-corpus" "$out"/test-crash-* "$out/gen-corpus"
mkdir -p "$out/test-corpus" "$out/gen-corpus"
cp tests/fuzz/corpus/* "$out/test-corpus/"
out/fuzz/wire_fuzz -max_total_time="$secs" -print_final_stats=1 \
	-artifact_prefix="$out/test-crash-" "$out/test-corpus" >"$log" 2>&1
rc=$?
crashes=$(find "$out" -maxdepth 1 -name 'test-crash-*' | wc -l)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
echo "# ${execs:-?} runs in ${secs} s, ${rate:-?} execs/s"
[ $rc = 0 ] && [ "$crashes" = 0 ] && [ -n "$execs" ]
result "libFuzzer: no crash in ${secs} s on the wire reader" $?

log=$out/gen_corpus.log
out/fuzz/gen_corpus "$out/gen-corpus" >"$log" 2>&1 &&
	diff -r tests/fuzz/corpus "$out/gen-corpus" >>"$log" 2>&1
result "the committed corpus is what gen_corpus writes" $?
[ $fail = 0 ]

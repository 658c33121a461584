#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# In the guest, with dirtytrack.ko loaded: dt-stat's eBPF counters must
# match a workload with a known number of write faults and harvests. TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
stat=$top/out/tools/dt-stat
work=$top/out/tests/dt_workload
n=0 fail=0
check() {	# check DESCRIPTION COMMAND...: ok if COMMAND succeeds
	local d=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fail=$((fail + 1)); fi
}
has() { grep -q -- "$1" <<<"$out" || { echo "# missing '$1' in: $out"; return 1; }; }

echo "TAP version 13"
echo "1..6"
out=$("$stat" -- "$work" 64 10 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
check "dt-stat runs the workload and returns its status" test $rc = 0
check "counts 640 write faults, 10 harvests, 640 pages reported and protected" \
	eval 'has " write_faults=640 " && has " harvests=10 " && has " pages_reported=640 " && has " pages_protected=640 "'
check "prints a harvest latency histogram of 10 harvests" \
	eval '[ "$(grep -E "^ +\[" <<<"$out" | awk "{s += \$4} END {print s}")" = 10 ]'
out=$("$stat" -r 1 -- "$work" 16 2 2>&1)
check "-r filters by region inode" has " write_faults=0 "
"$stat" -- /nonexistent/cmd >/dev/null 2>&1; rc=$?
check "a command that cannot run gives 127" test $rc = 127
"$stat" --bogus >/dev/null 2>&1; rc=$?
check "a bad option gives 1" test $rc = 1
echo "# $((n - fail)) passed, $fail failed"
[ $fail = 0 ]

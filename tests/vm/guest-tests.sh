#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the test VM (tests/vm/run.sh) with dirtytrack.ko loaded: every
# kselftest under out/tests (or those named), each writing TAP to
# $DT_OUT/NAME.tap, then the module load/unload checks.
# Exit status: 0 if everything passed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${DT_OUT:?DT_OUT must be set by tests/vm/run.sh}
status=0

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=("$top"/out/tests/*_test)
fi
for t in "${tests[@]}"; do
	name=$(basename "$t")
	echo "=== $name"
	"$t" 2>&1 | tee "$out/$name.tap"
	[ "${PIPESTATUS[0]}" = 0 ] || status=1
done
if [ $# = 0 ]; then
	echo "=== load_cycles"
	bash "$top/tests/vm/load_cycles.sh" "$top/kmod/dirtytrack.ko" 2>&1 | tee "$out/load_cycles.tap"
	[ "${PIPESTATUS[0]}" = 0 ] || status=1
fi
exit $status

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the test VM (tests/vm/run.sh) with dirtytrack.ko ($DT_KO if set, as
# by tests/run.sh: the module built for the kernel booted) loaded. Each
# argument is a kselftest binary, run with its TAP written to
# $DT_OUT/NAME.tap, or one of the scripted checks:
#   load_cycles   unload/load the module 100 times, unload while in use
#   bpf           dt-stat's eBPF counters against a known workload
#   blackout      dt-blackout against pauses the test times itself
#   bench_smoke   dt-bench --smoke and its report (make bench on tiny sizes)
#   migrate       dt-migrate between two network namespaces (migrate_test.sh)
#   qemu          dt-migrate moving a QEMU guest between two QEMUs (qemu_test.sh)
#   dkms          make dkms-install / dkms-uninstall for the running kernel (dkms_test.sh)
# Exit status: 0 if everything passed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${DT_OUT:?DT_OUT must be set by tests/vm/run.sh}
status=0

[ $# -gt 0 ] || { echo "usage: guest-tests.sh TEST..." >&2; exit 2; }
for t in "$@"; do
	case $t in
	load_cycles) name=load_cycles cmd=(bash "$top/tests/vm/load_cycles.sh" "${DT_KO:-$top/dirtytrack.ko}") ;;
	bpf) name=bpf_test cmd=(bash "$top/tests/vm/bpf_test.sh") ;;
	blackout) name=blackout_test cmd=(bash "$top/tests/vm/blackout_test.sh") ;;
	bench_smoke) name=bench_smoke cmd=(bash "$top/tests/vm/bench_smoke.sh") ;;
	migrate) name=migrate_test cmd=(bash "$top/tests/vm/migrate_test.sh") ;;
	qemu) name=qemu_test cmd=(bash "$top/tests/vm/qemu_test.sh") ;;
	dkms) name=dkms_test cmd=(bash "$top/tests/vm/dkms_test.sh") ;;
	*) name=$(basename "$t") cmd=("$t") ;;
	esac
	echo "=== $name"
	"${cmd[@]}" 2>&1 | tee "$out/$name.tap"
	[ "${PIPESTATUS[0]}" = 0 ] || status=1
done
exit $status

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make test: host unit tests, then the VM tests on Debian's 6.12 kernel, and
# the core suites on Debian's 6.1. With DT_TEST_FULL set (make test-full),
# also what does not fit make test's 30 minutes: the load cycles and
# bench_smoke, the QEMU suite, the harness self-test, more stream cuts in the
# migrate suite; on 6.1 the load cycles, the eBPF tools and DKMS.
# Usage: tests/run.sh [all|host|vm]
# With DT_KERNEL=debug (make test KERNEL=debug), the VM tests boot the debug
# kernel of 'make debug-kernel' with the module of 'make debug-module'
# (out/debug/mod/dirtytrack.ko); bench_smoke (make test-full) is skipped there
# (timings under KASAN and lockdep mean nothing).
# Counts every TAP result line ("ok N", "not ok N") in what the tests wrote,
# plus one result per VM boot (the boot's dmesg must be clean), and ends with
# the line "N passed, N failed". Exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
res=out/test-results
rm -rf "$res"
mkdir -p "$res"
pass=0 fail=0 skip=0
start=$SECONDS

# tally FILE: add a TAP file's results to the totals
tally() {
	local p f s
	p=$(grep -cE '^ok [0-9]+' "$1" | head -n1)
	s=$(grep -cE '^ok [0-9]+.*# SKIP' "$1" | head -n1)
	f=$(grep -cE '^not ok [0-9]+' "$1" | head -n1)
	pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
	printf '%-28s %3d passed, %d failed, %d skipped\n' "$(basename "$1")" $((p - s)) "$f" "$s"
	[ "$f" = 0 ] || grep -E '^not ok [0-9]+' "$1" | sed 's/^/    /'
}

# result NAME STATUS: one result line of our own
result() {
	if [ "$2" = 0 ]; then
		pass=$((pass + 1))
		printf '%-28s ok\n' "$1"
	else
		fail=$((fail + 1))
		printf '%-28s FAILED (exit %s)\n' "$1" "$2"
	fi
}

if [ "$what" = all ] || [ "$what" = host ]; then
	echo "== host tests"
	for t in out/host/*_test tests/host/*_test.sh; do
		tap=$res/host-$(basename "$t").tap
		"$t" > "$tap" 2>&1
		rc=$?
		tally "$tap"
		# A test that could not run, or died, says nothing in TAP: count it.
		if [ $rc != 0 ] && ! grep -qE '^not ok [0-9]+' "$tap"; then
			result "host-$(basename "$t")" $rc
			tail -n 3 "$tap" | sed 's/^/    /'
		fi
	done
fi

# vmrun NAME CPUS CMD...: one boot; its TAP files land in $res/NAME/. The
# boot is killed after $VM_TIMEOUT s (a hung task panics it long before).
vmrun() {
	local name=$1 cpus=$2 rc
	shift 2
	mkdir -p "$res/$name"
	DT_VM_QUIET=1 bash tests/vm/run.sh -c "$cpus" -o "$PWD/$res/$name" -t "$VM_TIMEOUT" \
		-m "$DT_KO" -- "$@" > "$res/$name.log" 2>&1
	rc=$?
	for f in "$res/$name"/*.tap; do
		[ -e "$f" ] && tally "$f"
	done
	# The boot itself: the harness fails it on a splat, a hang or a bad exit.
	result "vm:$name" $rc
	[ $rc = 0 ] || tail -n 25 "$res/$name.log" | sed 's/^/    /'
}

# The module the VM tests load (guest-tests.sh's load_cycles reloads it).
kernel=${DT_KERNEL:-stock}
case $kernel in
stock) DT_KO=$PWD/dirtytrack.ko smoke=${DT_TEST_FULL:+bench_smoke}
	kname=$(basename "$(readlink -f "${DT_CACHE:-$HOME/.cache/dirtytrack}/current")") ;;
debug) DT_KO=$PWD/out/debug/mod/dirtytrack.ko smoke=''
	kname="debug kernel $(cat "${DT_CACHE:-$HOME/.cache/dirtytrack}/debug/krel" 2>/dev/null)" ;;
*) echo "tests/run.sh: DT_KERNEL must be stock or debug, not '$kernel'" >&2; exit 2 ;;
esac
export DT_KERNEL=$kernel DT_KO
# Generous: under TCG a busy host slows the guest several times over.
VM_TIMEOUT=$([ "$kernel" = debug ] && echo 3600 || echo 1500)

if [ "$what" = all ] || [ "$what" = vm ]; then
	echo "== VM tests ($kname)"
	[ -z "${DT_TEST_FULL:-}" ] || [ -n "$smoke" ] ||
		echo "bench_smoke                  skipped on the debug kernel"
	# Tests that flip static keys (enabling the memory controller, tracepoints,
	# attaching eBPF) run on one vCPU: under multi-threaded TCG, code patching
	# races with the other vCPU and crashes the guest with a stray int3.
	vmrun smp2 2 bash tests/vm/guest-tests.sh \
		out/tests/api_test out/tests/region_test out/tests/race_test out/tests/stream_test \
		out/tests/tracker_test out/tests/dio_test out/tests/torture_test out/tests/throttle_test \
		out/tests/ioctl_fuzz_test out/tests/recv_fuzz_test
	vmrun migrate 2 bash tests/vm/guest-tests.sh migrate
	vmrun smp1 1 bash tests/vm/guest-tests.sh out/tests/race_test out/tests/env_test bpf blackout
	# Debian 12's own kernel, 6.1 (stock, whatever DT_KERNEL is): the core
	# suites, with the module of 'make module-6.1'.
	krel61=$(basename "$(readlink -f "${DT_CACHE:-$HOME/.cache/dirtytrack}/current-6.1")")
	echo "== VM tests (Debian $krel61)"
	KREL=$krel61 DT_KERNEL=stock DT_KO=$PWD/out/6.1/mod/dirtytrack.ko \
		vmrun linux-6.1 2 bash tests/vm/guest-tests.sh \
		out/tests/api_test out/tests/region_test out/tests/race_test out/tests/stream_test
	# Two VMs (DT_KERNEL's kernel and $DT_KO in both) joined by a virtio-net
	# link, dt-migrate from one to the other; results in $res/two-hosts/.
	echo "== two hosts: dt-migrate between two VMs over a virtio-net link"
	bash tests/vm/two_hosts.sh -o "$PWD/$res/two-hosts" -t "$VM_TIMEOUT" -m "$DT_KO" \
		> "$res/two-hosts.tap" 2>&1
	rc=$?
	tally "$res/two-hosts.tap"
	grep -qE '^not ok [0-9]+' "$res/two-hosts.tap" || [ $rc = 0 ] || result two-hosts $rc
fi

# make test-full: what does not fit make test's 30 minutes. The migrate
# suite above also cuts its stream at 8 random bytes instead of 3.
if [ -n "${DT_TEST_FULL:-}" ] && { [ "$what" = all ] || [ "$what" = vm ]; }; then
	echo "== make test-full: load cycles${smoke:+, bench_smoke} ($kname)"
	vmrun smp2-full 2 bash tests/vm/guest-tests.sh load_cycles $smoke
	echo "== make test-full: QEMU as a client ($kname)"
	vmrun qemu 2 bash tests/vm/guest-tests.sh qemu
	echo "== make test-full: VM harness self-test (splats must fail a run)"
	bash tests/vm/selftest.sh > "$res/vm-selftest.tap" 2>&1
	tally "$res/vm-selftest.tap"
	# On 6.1, the load cycles and the eBPF tools, whose programs fall back to
	# raw_tp there (the module has no BTF), one vCPU as above; DKMS building
	# the module in the guest (gcc under TCG: over ten minutes) and loading it.
	echo "== make test-full: load cycles, eBPF tools and DKMS on Debian $krel61"
	KREL=$krel61 DT_KERNEL=stock DT_KO=$PWD/out/6.1/mod/dirtytrack.ko \
		vmrun smp1-6.1 1 bash tests/vm/guest-tests.sh load_cycles bpf blackout
	KREL=$krel61 DT_KERNEL=stock DT_KO=$PWD/out/6.1/mod/dirtytrack.ko \
		vmrun dkms-6.1 2 bash tests/vm/guest-tests.sh dkms
fi

echo "== $((SECONDS - start)) s; results in $res/"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail = 0 ]

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of tests/vm/run.sh: a clean run passes, the command's exit status
# comes back, and kernel splats (WARN, slab redzone corruption, a splat line
# in dmesg, a bad taint, a hung task; lockdep on the debug kernel), a failing
# insmod and a hung guest all fail the run. Builds the test-only module
# tests/splat (dt_splat.ko) against the cached headers (DT_KERNEL=debug: the
# debug kernel's tree), in a temporary copy so the work tree stays clean.
#
# Usage: tests/vm/selftest.sh        (environment as for tests/vm/run.sh)
# Prints TAP and a closing "# N passed, N failed"; exits 1 if any test failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$repo" || exit 1
run=tests/vm/run.sh
cache=${DT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtytrack}
krel=${KREL:-$(readlink "$cache/current" 2>/dev/null)}
krel=${krel##*/}

bail() { echo "Bail out! $*"; exit 1; }

if [ "${DT_KERNEL:-stock}" = debug ]; then
	kdir=$cache/debug/linux
	[ -f "$kdir/vmlinux" ] || bail "no debug kernel in $kdir: run 'make debug-kernel'"
else
	[ -n "$krel" ] || bail "no kernel in $cache: run 'make deps'"
	kdir=$cache/$krel/headers/usr/src/linux-headers-$krel
	[ -f "$kdir/Makefile" ] || kdir=/usr/src/linux-headers-$krel
	[ -f "$kdir/Makefile" ] || bail "headers for $krel missing: run 'make deps'"
fi

tmp=$(mktemp -d /tmp/vm-selftest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/splat"
cp tests/splat/splat.c tests/splat/Kbuild "$tmp/splat/"
make -s -C "$kdir" M="$tmp/splat" modules >"$tmp/build.log" 2>&1 ||
	{ sed 's/^/# /' "$tmp/build.log"; bail "cannot build tests/splat"; }
splat=$tmp/splat/dt_splat.ko

n=0 passed=0 failed=0

# check DESCRIPTION EXPECTED_STATUS OUTPUT_REGEX RUN_ARGS...
# Runs tests/vm/run.sh RUN_ARGS quietly, and passes if it exits with
# EXPECTED_STATUS (a number, or "nonzero") and its output matches OUTPUT_REGEX
# (an extended regex; empty: anything).
check() {
	local desc=$1 want=$2 re=$3 status ok=1
	shift 3
	n=$((n + 1))
	DT_VM_QUIET=1 "$run" -o "$tmp/out$n" "$@" >"$tmp/log$n" 2>&1
	status=$?
	case $want in
	nonzero) [ "$status" -ne 0 ] || ok='' ;;
	*) [ "$status" -eq "$want" ] || ok='' ;;
	esac
	if [ -n "$re" ] && ! grep -qaE -- "$re" "$tmp/log$n"; then
		ok=''
	fi
	if [ -n "$ok" ]; then
		passed=$((passed + 1))
		echo "ok $n - $desc"
	else
		failed=$((failed + 1))
		echo "not ok $n - $desc"
		echo "# expected exit $want${re:+ and output matching /$re/}, got exit $status; output:"
		tail -n 60 "$tmp/log$n" | sed 's/^/#   /'
	fi
}

# Checks inside the guest for the environment run.sh promises.
# shellcheck disable=SC2016 # expanded by the guest's bash
probe='set -e
[ "$(pwd -P)" = "$0" ]
[ -d "$DT_OUT" ] && echo probe >"$DT_OUT/probe"
case :$PATH: in *:/usr/sbin:*) ;; *) exit 11 ;; esac
case :$PATH: in *:/sbin:*) ;; *) exit 12 ;; esac
touch /tmp/w /var/tmp/w /run/w /dev/shm/w
grep -q " /sys/fs/bpf bpf " /proc/mounts
grep -q " /sys/kernel/tracing tracefs " /proc/mounts
ip -o link show lo | grep -q "UP"
[ "$(cat /proc/sys/kernel/hung_task_timeout_secs)" = "$DT_VM_HUNG_TASK_SECS" ]
[ "$(cat /proc/sys/kernel/hung_task_panic)" = 1 ]
[ "$DT_VM" = 1 ]'

echo "1..13"
check "a clean run of 'true' exits 0" 0 'command exit 0, dmesg clean' -- true
check "the exit status of 'false' comes back" 1 'command exit 1' -- false
# One vCPU: under multi-threaded TCG, the code patching a WARN's panic path
# does can hit a stray int3 on the other vCPU and hide the WARNING line.
check "WARN_ON at module load fails the run" nonzero \
	'WARNING: .*splat\.c' -c 1 -m "$splat mode=warn" -- true
check "a slab redzone overwrite fails the run" nonzero \
	'Right Redzone overwritten|KFENCE: memory corruption|BUG: KASAN: slab-out-of-bounds' \
	-c 1 -m "$splat mode=redzone" -- true
check "the guest has the promised environment" 0 'dmesg clean' \
	-- bash -c "$probe" "$repo"
check "a splat line in dmesg fails a passing command" 126 'BUG: dt-selftest' \
	-- sh -c 'echo "BUG: dt-selftest fake splat" >/dev/kmsg'
check "a bad taint fails a passing command" 126 'tainted 64 \(U\)' \
	-- sh -c 'echo 64 >/proc/sys/kernel/tainted'
check "a failing insmod fails the run" 125 'insmod dt_splat .*failed' \
	-m "$splat" -m "$splat" -- true
check "a hung guest is killed at the timeout" 124 'timed out after 20 s' \
	-t 20 -- sleep 1000
# A task in D state beyond hung_task_timeout_secs (5 s here) panics the guest.
DT_VM_HUNG_TASK_SECS=5 check "a hung task fails the run" 125 \
	'INFO: task insmod:[0-9]+ blocked for more than 5 seconds' \
	-c 1 -t 300 -m "$splat mode=hang" -- true
if [ "${DT_KERNEL:-stock}" = debug ]; then
	check "a lockdep report fails a passing command" 126 \
		'possible circular locking dependency detected' -c 1 -m "$splat mode=lockdep" -- true
else
	n=$((n + 1))
	echo "ok $n - a lockdep report fails a passing command # SKIP no lockdep in Debian's kernel"
fi
# A crash whose first splat is an int3 Oops is booted again (run.sh -h, NOTES).
DT_VM_RETRIES=1 check "an int3 crash on 2 vCPUs is booted again, then fails" 125 \
	'Oops: int3.*boot 2 of 2' -c 2 -- sh -c \
	'echo "<0>Oops: int3: 0000 [#1] dt-selftest" >/dev/kmsg; echo c >/proc/sysrq-trigger'
check "bad usage exits 2 without booting" 2 'no command given' -c 1

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]

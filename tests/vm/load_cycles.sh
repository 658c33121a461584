#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# In the guest, with dirtytrack.ko loaded by the harness: unload and load it
# 100 times, then prove an open fd, a region fd and a mapping each hold the
# module (rmmod fails with EBUSY, nothing crashes). Prints TAP.
set -u
src=${1:?usage: load_cycles.sh path/to/dirtytrack.ko}
# Load a copy without DWARF from tmpfs: a tenth of the size, far quicker under
# TCG. BTF (.BTF) stays, for the eBPF tools.
ko=$(mktemp /tmp/dirtytrack.XXXXXX.ko)
cp "$src" "$ko" && strip --strip-debug "$ko"
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
loaded() { grep -q '^dirtytrack ' /proc/modules; }

echo "TAP version 13"
echo "1..5"
bad=0
for i in $(seq 100); do
	rmmod dirtytrack || { bad=$i; break; }
	loaded && { bad=$i; break; }
	insmod "$ko" || { bad=$i; break; }
	[ -c /dev/dirtytrack ] || { bad=$i; break; }
done
[ $bad = 0 ] && ok "100 unload/load cycles" || notok "unload/load cycle $bad failed"

busy() {	# busy DESCRIPTION: rmmod must fail with EBUSY while held
	if out=$(rmmod dirtytrack 2>&1); then
		notok "rmmod succeeded while $1"
		insmod "$ko"
	elif loaded && grep -q "in use" <<<"$out"; then
		ok "rmmod refused while $1 ($out)"
	else
		notok "rmmod while $1: $out"
	fi
}

exec 9<>/dev/dirtytrack
busy "/dev/dirtytrack is open"
exec 9>&-

# A region (fd closed, mapping kept) and a region fd (no mapping).
hold=$(dirname "$0")/../../out/tests/hold_region
"$hold" map & pid=$!
sleep 2
busy "a region is mapped"
kill $pid; wait $pid 2>/dev/null
"$hold" fd & pid=$!
sleep 2
busy "a region fd is open"
kill $pid; wait $pid 2>/dev/null

if rmmod dirtytrack && insmod "$ko"; then
	ok "unload works again once everything is released"
else
	notok "unload after release"
fi
echo "# $((n - fail)) passed, $fail failed"
[ $fail = 0 ]

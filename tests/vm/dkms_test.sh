#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# In the test VM: install dirtytrack with DKMS for the running kernel as an
# operator would ('make dkms-install'), load what DKMS built, use it, then
# 'make dkms-uninstall'. The guest's root is the host's, read-only: tmpfs
# goes over /usr/src and /var/lib/dkms, and an overlay with a tmpfs upper
# layer over /usr/lib (/lib/modules, which the host may not even have); the
# kernel's headers, unpacked by 'make deps' into the cache, become
# /lib/modules/$(uname -r)/build, as linux-headers-$(uname -r) makes them.
# The harness's module ($DT_KO) is unloaded first and loaded again at the
# end. TAP on stdout.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${DT_OUT:?not in a tests/vm/run.sh guest}
krel=$(uname -r)
cache=${DT_CACHE:-$HOME/.cache/dirtytrack}
headers=$cache/$krel/headers/usr/src/linux-headers-$krel
n=0 status=0

check() {	# check DESCRIPTION COMMAND...
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		status=1
	fi
}
# Each writes its own log: check's TAP line goes to stdout.
dkms_install() { make -C "$top" --no-print-directory dkms-install > "$out/dkms-install.log" 2>&1; }
installed() { dkms status -m dirtytrack -k "$krel" | grep -q ': installed'; }
from_dkms() { modinfo -n dirtytrack | grep -q "^/lib/modules/$krel/updates/dkms/dirtytrack.ko"; }
loaded() { modprobe dirtytrack && grep -q '^dirtytrack ' /proc/modules; }
api_passes() { "$top/out/tests/api_test" > "$out/dkms_api_test.tap" 2>&1; }
uninstalled() {
	make -C "$top" --no-print-directory dkms-uninstall > "$out/dkms-uninstall.log" 2>&1 &&
		[ -z "$(dkms status -m dirtytrack)" ] &&
		! ls /lib/modules/"$krel"/updates/dkms/dirtytrack.ko* > /dev/null 2>&1 &&
		! ls -d /usr/src/dirtytrack-* > /dev/null 2>&1
}

echo "1..6"
[ -f "$headers/Makefile" ] || { echo "Bail out! no headers for $krel in $headers: run 'make deps'"; exit 1; }
command -v dkms > /dev/null || { echo "Bail out! dkms is not installed: run 'make deps'"; exit 1; }
for d in /usr/src /var/lib/dkms; do
	mount -t tmpfs -o mode=755 tmpfs "$d" || { echo "Bail out! cannot mount tmpfs on $d"; exit 1; }
done
mkdir -p /tmp/dkms-lib/upper /tmp/dkms-lib/work
mount -t overlay overlay -o lowerdir=/usr/lib,upperdir=/tmp/dkms-lib/upper,workdir=/tmp/dkms-lib/work \
	/usr/lib || { echo "Bail out! cannot mount an overlay on /usr/lib"; exit 1; }
mkdir -p "/lib/modules/$krel" && ln -s "$headers" "/lib/modules/$krel/build"
rmmod dirtytrack 2> /dev/null

echo "# make dkms-install on $krel (log: dkms-install.log)"
check "make dkms-install exits 0" dkms_install
check "dkms status: installed for $krel" installed
check "modinfo finds DKMS's build in updates/dkms" from_dkms
check "modprobe dirtytrack loads it" loaded
check "api_test passes on it (dkms_api_test.tap)" api_passes
rmmod dirtytrack
check "make dkms-uninstall removes the module, its DKMS tree and its sources" uninstalled

[ -z "${DT_KO:-}" ] || insmod "$DT_KO" || status=1
[ $status = 0 ] || tail -n 30 "$out/dkms-install.log" | sed 's/^/# /'
exit $status

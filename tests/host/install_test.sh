#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make install into a staging root follows the kernel's conventions. TAP.
set -u
cd "$(dirname "$0")/../.."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
n=0 fail=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=$((fail + 1)); fi; }
echo "TAP version 13"
echo "1..4"
krel=$(make -s --no-print-directory -f Makefile print-krel)
make -s modules_install INSTALL_MOD_PATH="$root" >"$root.log" 2>&1
check "modules_install puts the module in extra/" \
	'ls "$root/lib/modules/$krel/extra/"dirtytrack.ko* >/dev/null 2>&1'
check "depmod ran: modules.dep lists it" \
	'grep -q "^extra/dirtytrack.ko" "$root/lib/modules/$krel/modules.dep"'
make -s headers_install DESTDIR="$root" >>"$root.log" 2>&1
check "the uapi header is installed as <linux/dirtytrack.h>" \
	'cmp -s include/uapi/linux/dirtytrack.h "$root/usr/include/linux/dirtytrack.h"'
check "the installed header compiles on its own" \
	'echo "#include <linux/dirtytrack.h>
int main(void) { return sizeof(struct dirtytrack_harvest) != 80; }" |
	 cc -x c -std=c11 -I"$root/usr/include" -o "$root/t" - && "$root/t"'
rm -f "$root.log"
[ $fail = 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kmod/configure against the headers of Debian's 6.12 and 6.1: each probe
# answers as the kernel is known to be (6.12 has every interface it probes,
# 6.1 none), a second run keeps the header, and the module builds for both
# (W=1, warnings are errors) with only exported symbols. TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$top/tests/host/tap.sh"
check() {	# check DESCRIPTION COMMAND...
	local what=$1
	shift
	"$@"
	tap_result "$what" $?
}
probes=$(sed -n 's/^probe \([A-Z_]*\) .*/\1/p' "$top/kmod/configure")
answers() {	# answers HEADER DEFINED|UNDEFINED: every probe answered that way
	local p want=$2
	for p in $probes; do
		if [ "$want" = DEFINED ]; then
			grep -qx "#define DT_HAVE_$p 1" "$1" || { echo "# DT_HAVE_$p not defined"; return 1; }
		else
			grep -qx "/\\* #undef DT_HAVE_$p \\*/" "$1" || { echo "# DT_HAVE_$p defined"; return 1; }
		fi
	done
}
builds() {	# builds KDIR: the module from a copy of the sources, no modpost warning
	local d=$tmp/mod-$(basename "$1")
	mkdir -p "$d/kmod" "$d/include"
	cp "$top/Kbuild" "$d/"
	cp "$top"/kmod/*.c "$top"/kmod/compat.h "$top"/kmod/dirtytrack.h "$top"/kmod/trace.h \
		"$top/kmod/configure" "$d/kmod/"
	cp -R "$top/include/." "$d/include/"
	bash "$d/kmod/configure" "$1" "$d/kmod/dt_config.h" &&
		make -C "$1" M="$d" W=1 modules > "$d/log" 2>&1 &&
		! grep -E 'WARNING|warning:' "$d/log" && [ -f "$d/dirtytrack.ko" ] ||
		{ tail -n 20 "$d/log" | sed 's/^/# /'; return 1; }
}
unchanged() {	# a second run against the same headers leaves the header alone
	local before
	before=$(stat -c %Y "$2")
	sleep 1
	bash "$top/kmod/configure" "$1" "$2" && [ "$(stat -c %Y "$2")" = "$before" ]
}

k612=$(KREL= sh "$top/scripts/kdir.sh" 6.12)
k61=$(KREL= sh "$top/scripts/kdir.sh" 6.1)
echo "1..9"
[ -n "$k612" ] && [ -n "$k61" ] || { echo "Bail out! no 6.12 or 6.1 headers: run 'make deps'"; exit 1; }
echo "# $(echo "$probes" | wc -w) probes; 6.12: $k612; 6.1: $k61"
check "configure runs against 6.12" bash "$top/kmod/configure" "$k612" "$tmp/612.h"
check "6.12 has every interface probed" answers "$tmp/612.h" DEFINED
check "configure runs against 6.1" bash "$top/kmod/configure" "$k61" "$tmp/61.h"
check "6.1 has none of them" answers "$tmp/61.h" UNDEFINED
check "a second run against the same headers keeps the header" unchanged "$k61" "$tmp/61.h"
# Under 'make -s' the probes' Kbuild run prints nothing: still answered.
silent() { MAKEFLAGS=s bash "$top/kmod/configure" "$k612" "$tmp/s.h" && answers "$tmp/s.h" DEFINED; }
check "the answers hold when the caller runs make -s" silent
broken() {	# headers that cannot compile anything: an error, no header
	mkdir -p "$tmp/broken" && echo 'all: ; false' > "$tmp/broken/Makefile" &&
		! bash "$top/kmod/configure" "$tmp/broken" "$tmp/b.h" 2> /dev/null && [ ! -e "$tmp/b.h" ]
}
check "a tree that compiles nothing is an error, not a header of no" broken
check "the module builds for 6.12, W=1 clean" builds "$k612"
check "the module builds for 6.1, W=1 clean" builds "$k61"
[ "$fail" = 0 ]

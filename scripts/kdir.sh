#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scripts/kdir.sh [SERIES]: print the kernel headers directory to build
# against. With $KREL set: that release's, installed under /usr/src or
# /lib/modules/$KREL/build, or unpacked by scripts/deps.sh into the cache.
# Else the newest Debian SERIES headers (6.12, the default, or 6.1) found
# there. Prints nothing if there are none.
cache=${DT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtytrack}
if [ -n "${KREL:-}" ]; then
	for d in "/usr/src/linux-headers-$KREL" "$cache/$KREL/headers/usr/src/linux-headers-$KREL" \
		"/lib/modules/$KREL/build"; do
		[ -f "$d/Module.symvers" ] && { echo "$d"; exit 0; }
	done
	exit 0
fi
case ${1:-6.12} in
6.12) glob='6.12.*-amd64' ;;
6.1) glob='6.1.0-*-amd64' ;;
*) echo "kdir.sh: unknown series '$1' (6.12 or 6.1)" >&2; exit 2 ;;
esac
for d in /usr/src/linux-headers-$glob "$cache"/*/headers/usr/src/linux-headers-$glob; do
	[ -f "$d/Module.symvers" ] && echo "${d##*/linux-headers-} $d"
done | sort -V | tail -n 1 | cut -d' ' -f2

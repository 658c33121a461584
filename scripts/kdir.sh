#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Print the newest Debian 6.12 kernel headers directory: installed under
# /usr/src, or unpacked by scripts/deps.sh into the cache.
cache=${DT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtytrack}
for d in /usr/src/linux-headers-6.12.*-amd64 "$cache"/*/headers/usr/src/linux-headers-6.12.*-amd64; do
	[ -f "$d/Module.symvers" ] && echo "${d##*/linux-headers-} $d"
done | sort -V | tail -n 1 | cut -d' ' -f2

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make debug-kernel: build the debug kernel of the VM tests (KASAN, lockdep,
# DEBUG_ATOMIC_SLEEP, DEBUG_OBJECTS, DEBUG_VM, hung-task detection, BTF, ...)
# from Debian's linux-source-6.12, configured as `make defconfig
# kvm_guest.config` merged with tests/vm/debug.config. Everything the test VM
# needs is built in: the kernel has no modules of its own.
#
# Output, in $DT_CACHE/debug (DT_CACHE default ~/.cache/dirtytrack):
#   linux/      the source and build tree (KDIR for modules: make -C linux M=...)
#   bzImage     the kernel             krel    its release (6.12.N-dtdebug)
#   stamp       what bzImage (and linux/Module.symvers) was built from (source version, fragment, this
#               script): when it matches, nothing is rebuilt
#   build.log   the last build's output
#
# Takes about 20 minutes on 2 cores (JOBS, default: the number of CPUs).
# Usage: scripts/debug-kernel.sh [--force]
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${DT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtytrack}
DBG=$CACHE/debug
TREE=$DBG/linux
FRAGMENT=$top/tests/vm/debug.config
JOBS=${JOBS:-$(nproc)}
export DEBIAN_FRONTEND=noninteractive

say() { printf 'debug-kernel: %s\n' "$*"; }
die() { printf 'debug-kernel: error: %s\n' "$*" >&2; exit 1; }

force=0
case ${1:-} in
--force) force=1 ;;
'') ;;
*) die "usage: scripts/debug-kernel.sh [--force]" ;;
esac

# Build dependencies: only what is missing (no upgrades of what is there).
PKGS=(make gcc libc6-dev flex bison dwarves bc libelf-dev libssl-dev
      linux-source-6.12 xz-utils cpio perl python3)
missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "${missing[*]} missing: run as root"
	say "installing ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
		die "apt-get install ${missing[*]} failed"
fi

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "$tarball missing (package linux-source-6.12)"
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
stamp="linux-source-6.12 $srcver
fragment $(sha256sum <"$FRAGMENT" | cut -d' ' -f1)
script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"

if [ $force = 0 ] && [ -f "$DBG/bzImage" ] && [ -f "$DBG/stamp" ] &&
	[ "$(cat "$DBG/stamp")" = "$stamp" ]; then
	say "up to date: $DBG/bzImage ($(cat "$DBG/krel"))"
	exit 0
fi

mkdir -p "$DBG"
if [ "$(cat "$TREE/.dt-source" 2>/dev/null)" != "$srcver" ]; then
	say "unpacking linux-source-6.12 $srcver into $TREE"
	rm -rf "$TREE" "$TREE.part"
	mkdir -p "$TREE.part"
	tar -xJf "$tarball" -C "$TREE.part" --strip-components=1
	echo "$srcver" >"$TREE.part/.dt-source"
	mv "$TREE.part" "$TREE"
fi

rm -f "$DBG/stamp"
cd "$TREE"
say "configuring: defconfig kvm_guest.config + tests/vm/debug.config"
make -s defconfig kvm_guest.config >/dev/null
scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >/dev/null
make -s olddefconfig >/dev/null
# defconfig's few modules (netfilter logging and NAT, EFI variables) are of no
# use to the VM: turn them off, so that the kernel has no modules to build.
for _ in 1 2 3; do
	mods=$(sed -n 's/^CONFIG_\(.*\)=m$/\1/p' .config)
	[ -n "$mods" ] || break
	for m in $mods; do scripts/config --file .config -d "$m"; done
	make -s olddefconfig >/dev/null
done
# Every line of the fragment must have survived (a dependency missing, a
# symbol renamed: fail here, not 20 minutes later in a test).
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*) sym=${line%%=*} ;;
	'# CONFIG_'*' is not set') sym=${line#\# }; sym=${sym%% *} ;;
	*) continue ;;
	esac
	got=$(grep -E "^$sym=|^# $sym is not set" .config || echo "$sym undefined")
	if [ "$got" != "$line" ]; then
		printf 'debug-kernel: wanted "%s", got "%s"\n' "$line" "$got" >&2
		bad=1
	fi
done <"$FRAGMENT"
[ $bad = 0 ] || die "tests/vm/debug.config does not apply (see above)"

# `modules` builds no module of the kernel's own, but writes Module.symvers,
# which out-of-tree modules (M=) need.
targets=(bzImage modules)
say "building ${targets[*]} with -j$JOBS (over an hour and a half on 2 cores); log: $DBG/build.log"
start=$SECONDS
if ! make -j"$JOBS" "${targets[@]}" >"$DBG/build.log" 2>&1; then
	grep -E 'error|Error' "$DBG/build.log" | tail -n 20 >&2
	die "build failed: see $DBG/build.log"
fi
[ -f Module.symvers ] || die "no Module.symvers after the build"
make -s kernelrelease >"$DBG/krel"
cp arch/x86/boot/bzImage "$DBG/bzImage"
echo "$stamp" >"$DBG/stamp"
say "built $(cat "$DBG/krel") in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s: $DBG/bzImage"

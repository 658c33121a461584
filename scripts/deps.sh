#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what dirtytrack needs to build and test, from Debian packages only.
# Idempotent: installs only what is missing.
#
#  - host packages (qemu, busybox, clang, libbpf, sparse, ...) with apt-get;
#  - Debian's 6.12 kernel headers and image for one ABI, fetched with
#    `apt-get download` and unpacked into $DT_CACHE (never installed into the
#    host's /boot: the headers package depends on an image package);
#  - from linux-source-6.12, only kselftest_harness.h and its include, and
#    checkpatch.pl with its data files.
#
# Environment: DT_CACHE (default ~/.cache/dirtytrack), KREL to pin a kernel
# release such as 6.12.117+deb12-amd64 (default: the newest 6.12 the archive has).
set -euo pipefail

CACHE=${DT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtytrack}
export DEBIAN_FRONTEND=noninteractive

quiet=0
[ "${1:-}" = --quiet ] && quiet=1
say() { [ $quiet = 1 ] || printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "$1 is missing: run 'make deps' as root"; }

PKGS=(make gcc gcc-12 libc6-dev qemu-system-x86 busybox-static cpio xz-utils
      clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev sparse pahole
      libssl3 linux-source-6.12 python3 kmod iproute2 gnuplot-nox perl
      libisal-dev libclang-rt-14-dev ethtool libjson-c-dev libssl-dev jq)

updated=0
apt_update() {
	if [ $updated = 0 ]; then
		say "apt-get update"
		apt-get update -q >/dev/null || die "apt-get update failed"
		updated=1
	fi
}

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	need_root "${missing[*]}"
	quiet=0
	apt_update
	say "installing ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
else
	say "host packages present"
fi

# Resolve one ABI for headers and image.
if [ -z "${KREL:-}" ]; then
	dep=$(apt-cache depends linux-headers-6.12-amd64 2>/dev/null |
	      sed -n 's/^ *Depends: \(linux-headers-6\.12\.[^ ]*-amd64\)$/\1/p' | head -n1)
	if [ -z "$dep" ]; then
		apt_update
		dep=$(apt-cache depends linux-headers-6.12-amd64 2>/dev/null |
		      sed -n 's/^ *Depends: \(linux-headers-6\.12\.[^ ]*-amd64\)$/\1/p' | head -n1)
	fi
	[ -n "$dep" ] || die "no linux-headers-6.12-amd64 in the configured archive"
	KREL=${dep#linux-headers-}
fi
ABI=${KREL%-amd64}                       # 6.12.117+deb12
KDIR_CACHED="$CACHE/$KREL/headers/usr/src/linux-headers-$KREL"
IMG_DIR="$CACHE/$KREL/image"

fetch() {	# fetch DEST PKG...: download .debs and unpack them into DEST
	local dest=$1 tmp
	shift
	need_root "$*"
	quiet=0
	tmp=$(mktemp -d)
	chown _apt: "$tmp" 2>/dev/null || true
	apt_update
	(cd "$tmp" && apt-get download -q "$@" >/dev/null) || { rm -rf "$tmp"; die "apt-get download $* failed"; }
	mkdir -p "$dest.part"
	for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dest.part"; done
	rm -rf "$tmp"
}

if [ -d "/usr/src/linux-headers-$KREL" ]; then
	say "headers $KREL installed in /usr/src"
elif [ -f "$KDIR_CACHED/Module.symvers" ]; then
	say "headers $KREL cached"
else
	say "fetching headers $KREL"
	rm -rf "$CACHE/$KREL/headers" "$CACHE/$KREL/headers.part"
	fetch "$CACHE/$KREL/headers" "linux-headers-$KREL" "linux-headers-$ABI-common" "linux-kbuild-$ABI"
	# The arch Makefile includes the common one by absolute path.
	sed -i "s|^include /usr/src/|include $CACHE/$KREL/headers.part/usr/src/|" \
		"$CACHE/$KREL/headers.part/usr/src/linux-headers-$KREL/Makefile"
	mv "$CACHE/$KREL/headers.part" "$CACHE/$KREL/headers"
	sed -i "s|headers.part/usr/src/|headers/usr/src/|" "$KDIR_CACHED/Makefile"
fi

if [ -f "$IMG_DIR/boot/vmlinuz-$KREL" ]; then
	say "image $KREL cached"
else
	say "fetching image $KREL"
	rm -rf "$IMG_DIR" "$IMG_DIR.part"
	fetch "$IMG_DIR" "linux-image-$KREL-unsigned"
	mv "$IMG_DIR.part" "$IMG_DIR"
fi

SRC="$CACHE/src-$ABI"
if [ -f "$SRC/tools/testing/selftests/kselftest_harness.h" ] && [ -f "$SRC/scripts/checkpatch.pl" ]; then
	say "kselftest harness and checkpatch cached"
else
	tarball=/usr/src/linux-source-6.12.tar.xz
	[ -f "$tarball" ] || die "$tarball missing"
	quiet=0
	srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
	say "extracting kselftest_harness.h and checkpatch.pl from linux-source-6.12 $srcver"
	rm -rf "$SRC.part" && mkdir -p "$SRC.part"
	tar -xJf "$tarball" -C "$SRC.part" --strip-components=1 \
		linux-source-6.12/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.12/tools/testing/selftests/kselftest.h \
		linux-source-6.12/scripts/checkpatch.pl \
		linux-source-6.12/scripts/spelling.txt \
		linux-source-6.12/scripts/const_structs.checkpatch
	rm -rf "$SRC" && mv "$SRC.part" "$SRC"
fi
ln -sfn "$SRC" "$CACHE/src"
ln -sfn "$KREL" "$CACHE/current"
say "ready: KREL=$KREL cache=$CACHE"

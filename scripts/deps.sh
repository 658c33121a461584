#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what dirtytrack needs to build and test, from Debian packages only.
# Idempotent: installs only what is missing.
#
#  - host packages (qemu, busybox, clang, libbpf, sparse, ...) with apt-get;
#  - the kernel headers and image of Debian's newest 6.12 and 6.1 (bookworm's
#    own kernel), fetched with `apt-get download` and unpacked into $DT_CACHE
#    (never installed into the host's /boot: the headers package depends on
#    an image package);
#  - from linux-source-6.12, only kselftest_harness.h and its include, and
#    checkpatch.pl with its data files.
#
# Environment: DT_CACHE (default ~/.cache/dirtytrack), KREL to pin the release
# of one series, such as 6.12.117+deb12-amd64 or 6.1.0-57-amd64 (default: the
# newest of each the archive has).
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
      libisal-dev libclang-rt-14-dev ethtool libjson-c-dev libssl-dev jq dkms)

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

newest() {	# newest META: the linux-headers-RELEASE a meta package depends on
	apt-cache depends "$1" 2>/dev/null |
		sed -n 's/^ *Depends: linux-headers-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1
}

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

kernel() {	# kernel RELEASE: headers and image of Debian's RELEASE into $CACHE/RELEASE
	local krel=$1 kdir img pkgs
	kdir="$CACHE/$krel/headers/usr/src/linux-headers-$krel"
	img="$CACHE/$krel/image"
	if [ -d "/usr/src/linux-headers-$krel" ]; then
		say "headers $krel installed in /usr/src"
	elif [ -f "$kdir/Module.symvers" ]; then
		say "headers $krel cached"
	else
		say "fetching headers $krel"
		apt-cache show "linux-headers-$krel" >/dev/null 2>&1 || apt_update
		# The headers' own -common and kbuild packages (6.1: linux-kbuild-6.1).
		pkgs=$(apt-cache depends "linux-headers-$krel" 2>/dev/null |
		       sed -n 's/^ *Depends: \(linux-\(headers-[^ ]*-common\|kbuild-[^ ]*\)\)$/\1/p')
		[ -n "$pkgs" ] || die "no package linux-headers-$krel in the configured archive"
		rm -rf "$CACHE/$krel/headers" "$CACHE/$krel/headers.part"
		# shellcheck disable=SC2086
		fetch "$CACHE/$krel/headers" "linux-headers-$krel" $pkgs
		# The arch Makefile includes the common one by absolute path.
		sed -i "s|^include /usr/src/|include $CACHE/$krel/headers.part/usr/src/|" \
			"$CACHE/$krel/headers.part/usr/src/linux-headers-$krel/Makefile"
		mv "$CACHE/$krel/headers.part" "$CACHE/$krel/headers"
		sed -i "s|headers.part/usr/src/|headers/usr/src/|" "$kdir/Makefile"
	fi
	if [ -f "$img/boot/vmlinuz-$krel" ]; then
		say "image $krel cached"
	else
		say "fetching image $krel"
		rm -rf "$img" "$img.part"
		fetch "$img" "linux-image-$krel-unsigned"
		mv "$img.part" "$img"
	fi
}

# Resolve the releases: the newest 6.12 (the default kernel, $CACHE/current)
# and the newest 6.1 (Debian 12's own, $CACHE/current-6.1), unless KREL pins
# the one of its series.
k612='' k61=''
case ${KREL:-} in
6.12.*) k612=$KREL ;;
6.1.*) k61=$KREL ;;
'') ;;
*) die "KREL=$KREL: not a Debian 6.12 or 6.1 release (e.g. 6.12.117+deb12-amd64, 6.1.0-57-amd64)" ;;
esac
for meta in linux-headers-6.12-amd64 linux-headers-amd64; do
	if [ "$meta" = linux-headers-amd64 ]; then [ -n "$k61" ] && continue; else [ -n "$k612" ] && continue; fi
	dep=$(newest "$meta")
	if [ -z "$dep" ]; then
		apt_update
		dep=$(newest "$meta")
	fi
	[ -n "$dep" ] || die "no $meta in the configured archive"
	if [ "$meta" = linux-headers-amd64 ]; then k61=$dep; else k612=$dep; fi
done
kernel "$k612"
kernel "$k61"
ABI=${k612%-amd64}                       # 6.12.117+deb12

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
ln -sfn "$k612" "$CACHE/current"
ln -sfn "$k61" "$CACHE/current-6.1"
say "ready: kernels $k612 and $k61, cache $CACHE"

#!/bin/sh
# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the initramfs that tests/vm/run.sh builds. Runs as PID 1 under
# busybox sh (every busybox applet is linked in /bin), and:
#
#  1. loads the modules shipped in /modules (9p, veth, crc32c), in file-name
#     order (run.sh numbers them in dependency order); there are none when
#     the kernel has them built in (the debug kernel);
#  2. mounts the host's root (9p tag "hostroot", read-only) on /mnt and the
#     host's OUTDIR (tag "dtout", read-write) on /dtout, and reads the job's
#     parameters from /dtout/.vm/env (OUTDIR=..., CWD=... lines);
#  3. mounts the usual pseudo file systems and tmpfs on /tmp, /var/tmp and /run
#     inside /mnt, keeping the job's working directory visible if a tmpfs would
#     hide it, and moves the dtout share to /mnt$OUTDIR (the host's path);
#  4. runs OUTDIR/.vm/job.sh (written by run.sh: insmod, the command, rmmod,
#     OUTDIR/rc) with the host's bash, chrooted into /mnt, with an empty
#     environment (job.sh sets its own);
#  5. writes OUTDIR/dmesg and OUTDIR/tainted, syncs and powers off.
#
# Any failure before the job runs powers off without OUTDIR/rc, which run.sh
# reports together with the tail of the console (where these messages go).

export PATH=/bin

say() { echo "vm-init: $*"; }
die() {
	echo "vm-init: error: $*"
	sync
	poweroff -f
	exit 1		# not reached; should it be, the kernel panics and qemu exits
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

for m in /modules/*.ko; do
	[ -e "$m" ] || continue		# no modules: all built in
	insmod "$m" || die "insmod $m failed"
done
grep -qw 9p /proc/filesystems || die "no 9p file system: neither built in nor in /modules"

opt9p=trans=virtio,version=9p2000.L,msize=512000
# The host root does not change under a run: cache it (cache=loose), so that
# exiting processes do not evict and free the page cache of every binary
# they ran, which under TCG with page_poison can stall a vCPU for minutes.
mount -t 9p -o "$opt9p,ro,cache=loose" hostroot /mnt || die "cannot mount the host root (9p tag hostroot)"
mount -t 9p -o "$opt9p" dtout /dtout || die "cannot mount OUTDIR (9p tag dtout)"

OUTDIR='' CWD=''
while IFS= read -r line; do
	case $line in
	OUTDIR=*) OUTDIR=${line#OUTDIR=} ;;
	CWD=*) CWD=${line#CWD=} ;;
	esac
done </dtout/.vm/env
{ [ -n "$OUTDIR" ] && [ -n "$CWD" ]; } || die "no OUTDIR= or CWD= in OUTDIR/.vm/env"

# tmpfs over these hides the host's files; keep the working directory visible
# by binding it aside first, and moving it back on top of the tmpfs later.
cwd_kept=''
for d in /tmp /var/tmp /run; do
	case $CWD in
	"$d"/*)
		mkdir -p /cwd
		mount --bind "/mnt$CWD" /cwd || die "cannot bind $CWD"
		cwd_kept=1
		;;
	esac
done
for d in /tmp /var/tmp; do
	[ -d "/mnt$d" ] && mount -t tmpfs -o mode=1777 tmpfs "/mnt$d"
done
mount -t tmpfs -o mode=755 tmpfs /mnt/run

mount -t proc proc /mnt/proc
mount -t sysfs sysfs /mnt/sys
mount -t devtmpfs devtmpfs /mnt/dev
# What udev would add: bash's <(...) needs /dev/fd (DKMS uses it).
[ -e /mnt/dev/fd ] || ln -s /proc/self/fd /mnt/dev/fd
for i in 0:stdin 1:stdout 2:stderr; do
	[ -e "/mnt/dev/${i#*:}" ] || ln -s "/proc/self/fd/${i%%:*}" "/mnt/dev/${i#*:}"
done
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /mnt/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /mnt/dev/shm
[ -d /mnt/sys/fs/bpf ] && mount -t bpf bpf /mnt/sys/fs/bpf
[ -d /mnt/sys/kernel/debug ] && mount -t debugfs debugfs /mnt/sys/kernel/debug
[ -d /mnt/sys/kernel/tracing ] && mount -t tracefs tracefs /mnt/sys/kernel/tracing

if [ -n "$cwd_kept" ]; then
	mkdir -p "/mnt$CWD"
	mount --move /cwd "/mnt$CWD" || die "cannot keep $CWD visible"
fi
# The directory exists on the host; under a tmpfs it must be made.
mkdir -p "/mnt$OUTDIR" 2>/dev/null
mount --move /dtout "/mnt$OUTDIR" || die "cannot mount OUTDIR on $OUTDIR"

ip link set lo up || say "cannot bring lo up"
hostname dt-vm

env -i /bin/chroot /mnt /bin/bash "$OUTDIR/.vm/job.sh"
status=$?
[ $status -eq 0 ] || [ -f "/mnt$OUTDIR/rc" ] || say "job.sh exited $status"

dmesg >"/mnt$OUTDIR/dmesg"
cat /proc/sys/kernel/tainted >"/mnt$OUTDIR/tainted"
sync
poweroff -f

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot Debian's 6.12 kernel in QEMU and run one command in it, on the host's
# root file system (read-only over 9p). Run with --help for the manual.
set -euo pipefail

prog=vm-run
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
self=$here/run.sh
init_script=$here/init.sh

usage() {
	cat <<'EOF'
NAME
    tests/vm/run.sh - run one command in a QEMU guest booted with Debian's 6.12 kernel
    (or the debug kernel of 'make debug-kernel')

SYNOPSIS
    tests/vm/run.sh [-m 'MODULE.ko [PARAM=VALUE]...']... [-o OUTDIR] [-t TIMEOUT_SECONDS]
                    [-c CPUS] [-M MEM_MB] [-k BZIMAGE [-K MODDIR]]
                    [-n server:PORT|client:PORT] [--] CMD [ARGS...]
    tests/vm/run.sh -h|--help

DESCRIPTION
    Boots $DT_CACHE/$KREL/image/boot/vmlinuz-$KREL (fetched by 'make deps', i.e.
    scripts/deps.sh) in qemu-system-x86_64 under TCG with a small busybox
    initramfs, which it builds and caches as $DT_CACHE/$KREL/vm-initramfs.cpio.gz
    (rebuilt when run.sh, init.sh or modules.dep is newer). With DT_KERNEL=debug
    or -k, it boots another kernel instead (see KERNELS). The guest mounts the
    host's / read-only over 9p and chroots into it, so host programs (bash,
    python3, bpftool, the project's build output) run unchanged. Writable there:
    tmpfs on /tmp, /var/tmp, /run and /dev/shm, and OUTDIR, which is shared
    read-write at the same absolute path as on the host.

    In the guest, each -m module is loaded with insmod in the order given, then
    CMD runs in the caller's working directory (kept visible even when it lies
    under /tmp) with stdin from /dev/null and its output on the serial console.
    Then the modules are unloaded in reverse order with rmmod, and the guest
    writes OUTDIR/rc, OUTDIR/dmesg and OUTDIR/tainted and powers off.

    The kernel command line is
        console=ttyS0 quiet panic=-1 kfence.sample_interval=100 slub_debug=FZPU
        page_poison=1 panic_on_warn=1 init_on_alloc=0 panic_print=0x20
        sysctl.kernel.hung_task_timeout_secs=N sysctl.kernel.hung_task_panic=1
        no_timer_check
    (plus no5lvl on the debug kernel) so KFENCE samples allocations, slub
    checks red zones and poison, pages are not zeroed at allocation (as on
    many VMM hosts: a page exposed before it is zeroed shows page_poison's
    0xaa bytes), and a
    WARN panics the guest (in 6.12 slub, KFENCE, KASAN and ODEBUG reports WARN
    or panic on panic_on_warn too), as does a task blocked in D state for N
    seconds (DT_VM_HUNG_TASK_SECS), which ends qemu at once (-no-reboot) after
    replaying the whole kernel log on the console (panic_print=0x20), where
    run.sh finds the splat. Lockdep and "sleeping function called from invalid
    context" reports do not panic; run.sh finds them in dmesg. no_timer_check
    skips the boot-time check of the 8254 timer, which a loaded host can fail
    under TCG.

    The run fails if the guest hangs, crashes or panics, if an insmod or rmmod
    fails, if dmesg or the console shows a kernel splat (WARNING:, BUG:, Oops,
    KFENCE, slub "BUG kmalloc-..." reports, list corruption, UBSAN, Call Trace,
    refcount_t:, hung tasks, soft lockups, RCU stalls, KASAN, lockdep ("possible
    circular locking dependency", "possible recursive locking", "inconsistent
    lock state", ...), "BUG: sleeping function called from invalid context",
    ODEBUG object reports, ...), or if the kernel
    carries any taint other than O (out-of-tree module) and E (unsigned
    module). Offending lines are printed. A one-line summary ends the output.

OPTIONS
    -m 'MODULE.ko [ARGS...]'
           Load MODULE.ko (uncompressed, built for the kernel booted: its
           vermagic must name that kernel's release) before running CMD,
           with insmod ARGS (module parameters). The argument is split on
           white space. Repeatable; modules load in order and unload in
           reverse. The file is copied into OUTDIR/.vm/modules first, so it
           may live anywhere on the host.
    -o OUTDIR
           Directory for the results (created if missing; results of an
           earlier run in it are removed). Default: a new mktemp -d directory
           under /tmp, whose path is printed.
    -t TIMEOUT_SECONDS
           Kill qemu after this many seconds (default $DT_VM_TIMEOUT, or 600;
           1800 with DT_KERNEL=debug).
    -c CPUS
           Guest CPUs (default $DT_VM_SMP or 2).
    -M MEM_MB
           Guest memory in MiB (default $DT_VM_MEM or 2048).
    -k BZIMAGE
           Boot this x86 kernel image instead of Debian's (default
           $DT_VM_KERNEL; with DT_KERNEL=debug, $DT_CACHE/debug/bzImage).
           Its release, read from the image, replaces $KREL: modules must be
           built for it. What the initramfs loads (9p, veth, crc32c,
           virtio-net: see VM_KMODS in run.sh) must be built into it, or come
           from -K.
    -K MODDIR
           With -k: a lib/modules/RELEASE directory (with modules.dep) to take
           the initramfs modules from (default $DT_VM_MODDIR; none: they are
           built in). Modules listed in its modules.builtin are skipped.
    -n server:PORT | -n client:PORT
           Give the guest a virtio-net interface (virtio-net-pci) joined to
           another guest's by QEMU's stream netdev over TCP on the host's
           127.0.0.1:PORT: -netdev stream,server=on (this qemu listens on
           PORT as it starts, before the guest boots) or server=off (this
           qemu connects to PORT as it starts). QEMU 7.2 connects once and
           does not retry: start the server first and the client once the
           host shows PORT listening (tests/vm/two_hosts.sh does). The
           frames are the guests' Ethernet frames; nothing else is on the
           link (no DHCP, no host). In the guest it is the one interface
           whose driver is virtio_net (eth0: the initramfs has no udev),
           down and without an address: CMD configures it.
    -h, --help
           Print this text.
    --     End of options; CMD follows (needed if CMD starts with '-').

GUEST ENVIRONMENT
    CMD gets a clean environment: PATH (the caller's, then /usr/local/sbin,
    /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin), HOME (the caller's, read-
    only in the guest), TERM=dumb, DT_OUT=OUTDIR (absolute), DT_CACHE, KREL (the
    booted kernel's release), DT_KERNEL (stock or debug), DT_VM_HUNG_TASK_SECS,
    DT_VM=1, and the caller's DT_*, CI, LANG, LC_ALL and TZ variables.
    Paths under /tmp, /var/tmp and /run are hidden by the guest's tmpfs,
    except the working directory and OUTDIR: pass files through OUTDIR.

KERNELS
    Debian's 6.12 (the default): $DT_CACHE/$KREL/image/boot/vmlinuz-$KREL, the
    initramfs modules from its lib/modules. DT_KERNEL=debug: the debug kernel
    of 'make debug-kernel' (scripts/debug-kernel.sh: KASAN, lockdep, ODEBUG,
    DEBUG_VM, ... with everything the VM needs built in); it runs several
    times slower under TCG, hence the longer default timeout. Modules for it
    are built against its tree ('make debug-module': out/debug/mod/).

ENVIRONMENT
    DT_CACHE       cache of scripts/deps.sh (default ~/.cache/dirtytrack)
    KREL           kernel release (default: the target of $DT_CACHE/current;
                   ignored with -k)
    DT_KERNEL      stock (default) or debug (see KERNELS)
    DT_VM_KERNEL   default for -k        DT_VM_MODDIR   default for -K
    DT_VM_HUNG_TASK_SECS
                   hung-task timeout: a task blocked this long panics the
                   guest (default 30; 60 with DT_KERNEL=debug)
    DT_ACCEL       tcg (default) or kvm (which does not boot stock kernels on
                   every machine)
    DT_VM_SMP      default for -c        DT_VM_MEM      default for -M
    DT_VM_PERF     if non-empty, boot without allocator debugging (KFENCE
                   sampling, slub_debug, page_poison), as a production host:
                   for benchmarks (make bench). Splats still fail the run.
    DT_VM_TIMEOUT  default for -t        DT_VM_QUIET    if non-empty, do not
                   echo the guest console to stdout (it is always saved)
    DT_VM_RETRIES  boots to retry after a TCG code-patching artefact (default
                   2, see NOTES)

FILES (in OUTDIR)
    console.log    the serial console: kernel messages of level error and
                   worse ('quiet'), the whole kernel log after a panic, and
                   CMD's output
    rc             CMD's exit status       dmesg    the kernel log at the end
    tainted        /proc/sys/kernel/tainted at the end
    .vm/           what run.sh passed to the guest (env, job.sh, modules)

EXIT STATUS
    CMD's exit status if the run was clean; otherwise
    2      bad usage or missing prerequisites (nothing was booted)
    124    the guest did not finish within the timeout (qemu was killed)
    125    the guest did not complete: crash or panic (no OUTDIR/rc), qemu
           failure, or an insmod, rmmod or chdir failure in the guest
    126    a kernel splat or a bad taint (even if CMD succeeded)
    The summary line tells these apart from a CMD that exits 124 to 126.

NOTES
    With more than one vCPU, multi-threaded TCG sometimes lets a vCPU run a
    stale translation of code the kernel has just patched (jump labels,
    alternatives, static calls), and the guest dies of "Oops: int3" at a
    patch site, at boot or when a static key flips. This is an emulator
    artefact, not a guest bug: when a run ends in a crash whose first Oops is
    an int3, run.sh says so and boots again, up to DT_VM_RETRIES times. Run
    tests that flip static keys on one vCPU (-c 1), where it cannot happen.

EXAMPLES
    tests/vm/run.sh -- uname -r
    tests/vm/run.sh -m 'dirtytrack.ko max_region_mb=1024' -o out -- python3 tests/foo.py
    DT_VM_QUIET=1 tests/vm/run.sh -t 120 -c 4 -- sh -c 'cat /proc/cpuinfo > "$DT_OUT/cpuinfo"'
    DT_KERNEL=debug tests/vm/run.sh -m out/debug/mod/dirtytrack.ko -- uname -r
EOF
}

tmp_root=''
trap 'rm -rf "$tmp_root"' EXIT

say() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 2; }
usage_error() {
	printf '%s: %s\n' "$prog" "$*" >&2
	printf "Usage: tests/vm/run.sh [-m 'MODULE.ko [ARGS]']... [-o OUTDIR] [-t SECONDS] [-c CPUS] [-M MEM_MB] [-k BZIMAGE [-K MODDIR]] [-n server:PORT|client:PORT] -- CMD [ARGS...]\n" >&2
	printf "Try 'tests/vm/run.sh --help' for more information.\n" >&2
	exit 2
}
positive() {	# positive NAME VALUE
	[[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 must be a positive integer, not '$2'"
}

# ---------------------------------------------------------------- arguments

modules=()
outdir=''
timeout_s=${DT_VM_TIMEOUT:-}
cpus=${DT_VM_SMP:-2}
mem=${DT_VM_MEM:-2048}
accel=${DT_ACCEL:-tcg}
image=${DT_VM_KERNEL:-}
image_moddir=${DT_VM_MODDIR:-}
kernel_kind=${DT_KERNEL:-stock}
hung_s=${DT_VM_HUNG_TASK_SECS:-}
net=''

while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	-m | -o | -t | -c | -M | -k | -K | -n)
		[ $# -ge 2 ] || usage_error "option $1 needs an argument"
		case $1 in
		-m) modules+=("$2") ;;
		-k) image=$2 ;;
		-K) image_moddir=$2 ;;
		-o) outdir=$2 ;;
		-t) timeout_s=$2 ;;
		-c) cpus=$2 ;;
		-M) mem=$2 ;;
		-n) net=$2 ;;
		esac
		shift 2
		;;
	--) shift; break ;;
	-*) usage_error "unknown option '$1'" ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || usage_error "no command given"
case $kernel_kind in
stock) : "${timeout_s:=600}" "${hung_s:=30}" ;;
debug) : "${timeout_s:=1800}" "${hung_s:=60}" ;;
*) usage_error "DT_KERNEL must be stock or debug, not '$kernel_kind'" ;;
esac
[ -z "$image_moddir" ] || [ -n "$image" ] || [ "$kernel_kind" = debug ] ||
	usage_error "-K (DT_VM_MODDIR) needs -k (DT_VM_KERNEL)"
positive "timeout (-t, DT_VM_TIMEOUT)" "$timeout_s"
positive "hung-task timeout (DT_VM_HUNG_TASK_SECS)" "$hung_s"
positive "CPUs (-c, DT_VM_SMP)" "$cpus"
positive "memory (-M, DT_VM_MEM)" "$mem"
if [ -n "$net" ]; then
	[[ $net =~ ^(server|client):([1-9][0-9]*)$ ]] && [ "${BASH_REMATCH[2]}" -le 65535 ] ||
		usage_error "-n takes server:PORT or client:PORT (PORT 1 to 65535), not '$net'"
fi
case $accel in
tcg) accel_args=(-accel "tcg,thread=multi" -cpu max); accel_name=TCG ;;
kvm) accel_args=(-accel kvm -cpu host); accel_name=KVM ;;
*) usage_error "DT_ACCEL must be tcg or kvm, not '$accel'" ;;
esac

# ------------------------------------------------------------ prerequisites

cache=${DT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtytrack}

# image_release BZIMAGE: the release an x86 boot image names in its setup
# header (kernel_version, at 0x20e, points to "RELEASE (builder) #1 ...").
image_release() {
	local off
	[ "$(dd if="$1" bs=1 skip=$((0x202)) count=4 status=none)" = HdrS ] || return 1
	off=$(od -An -tu2 -j $((0x20e)) -N2 "$1" | tr -d ' ')
	[ -n "$off" ] && [ "$off" -gt 0 ] || return 1
	dd if="$1" bs=1 skip=$((off + 0x200)) count=200 status=none | tr '\0' '\n' |
		sed -n '1s/ .*//p'
}

if [ "$kernel_kind" = debug ] && [ -z "$image" ]; then
	image=$cache/debug/bzImage
	[ -f "$image" ] || die "debug kernel missing: $image: run 'make debug-kernel'"
fi
if [ -n "$image" ]; then
	[ -f "$image" ] || die "kernel image not found: $image"
	KREL=$(image_release "$image") && [ -n "$KREL" ] ||
		die "cannot read the release of $image: not an x86 bzImage?"
	vmlinuz=$image
	moddir=$image_moddir
	[ -z "$moddir" ] || [ -f "$moddir/modules.dep" ] ||
		die "no modules.dep in $moddir (-K, DT_VM_MODDIR)"
	kdir=$cache/$KREL		# for the initramfs only
else
	if [ -z "${KREL:-}" ]; then
		KREL=$(readlink "$cache/current" 2>/dev/null) ||
			die "no kernel in $cache ($cache/current missing): run 'make deps'"
		KREL=${KREL##*/}
	fi
	kdir=$cache/$KREL
	vmlinuz=$kdir/image/boot/vmlinuz-$KREL
	moddir=$kdir/image/lib/modules/$KREL
	[ -f "$vmlinuz" ] || die "vmlinuz missing: $vmlinuz: run 'make deps'"
	[ -d "$moddir/kernel" ] || die "kernel modules missing: $moddir: run 'make deps'"
fi
[ -f "$init_script" ] || die "$init_script missing"
for tool in qemu-system-x86_64 busybox cpio gzip xz timeout modinfo; do
	command -v "$tool" >/dev/null || die "$tool not found: run 'make deps'"
done
busybox=$(command -v busybox)
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; the initramfs needs busybox-static"
fi

# ---------------------------------------------------------------- initramfs

# Set closure to the modules.dep paths of the named modules and of all they
# depend on, dependencies first. Modules built into the kernel (listed in
# modules.builtin) are skipped; without a module directory, all are.
module_closure() {
	local -A deps_of=() path_of=() seen=() builtin=()
	local line path name
	closure=()
	[ -n "$moddir" ] || return 0
	if [ -f "$moddir/modules.builtin" ]; then
		while IFS= read -r line; do
			name=${line##*/}
			name=${name%%.ko*}
			builtin[${name//-/_}]=1
		done <"$moddir/modules.builtin"
	fi
	while IFS= read -r line; do
		path=${line%%:*}
		name=${path##*/}
		name=${name%%.ko*}
		path_of[${name//-/_}]=$path
		deps_of[$path]=${line#*:}
	done <"$moddir/modules.dep"

	visit() {
		local p=$1 d
		[ -z "${seen[$p]:-}" ] || return 0
		seen[$p]=1
		for d in ${deps_of[$p]}; do visit "$d"; done
		closure+=("$p")
	}
	for name; do
		[ -z "${builtin[${name//-/_}]:-}" ] || continue
		path=${path_of[${name//-/_}]:-}
		[ -n "$path" ] || die "module $name not found in $moddir/modules.dep"
		visit "$path"
	done
}

# Image modules loaded at boot, in this order (with their dependencies):
# virtio_pci (built into 6.12, a module in Debian's 6.1) and the 9p host root;
# overlay, to make parts of it writable (dkms_test.sh); crc32c (the accelerated provider first) for dirtytrack.ko's
# wire checksums; veth for tests between network namespaces; null_blk for
# slow O_DIRECT reads (configured through configfs by the test); virtio_net
# (with net_failover and failover) for the link of -n; sch_netem for slow
# links (tc qdisc ... netem rate); tls with AES-GCM (gcm, ghash-generic,
# ctr: crypto asks modprobe for them, and the guest has no module tree) for
# RECEIVE on a kernel TLS socket.
VM_KMODS=(virtio_pci netfs 9pnet 9pnet_virtio 9p overlay crc32c-intel libcrc32c veth null_blk virtio_net
	  sch_netem tls ctr ghash-generic gcm)

build_initramfs() {	# build_initramfs OUTPUT
	local root i=0 path base
	module_closure "${VM_KMODS[@]}"
	root=$(mktemp -d)
	tmp_root=$root		# removed on exit
	mkdir -p "$root"/{bin,dev,proc,sys,mnt,dtout,cwd,modules}
	cp "$busybox" "$root/bin/busybox"
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
	done
	for path in "${closure[@]}"; do
		i=$((i + 1))
		base=${path##*/}
		base=${base%%.ko*}
		case $path in
		*.ko.xz) xz -dc "$moddir/$path" ;;
		*.ko.zst) zstd -qdc "$moddir/$path" ;;
		*.ko.gz) gzip -dc "$moddir/$path" ;;
		*) cat "$moddir/$path" ;;
		esac >"$root/modules/$(printf '%02d' $i)-$base.ko"
	done
	install -m 755 "$init_script" "$root/init"
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --quiet -o -H newc -R 0:0 | gzip -9n) >"$1.tmp.$$"
	mv -f "$1.tmp.$$" "$1"
	rm -rf "$root"
}

if [ -z "$image" ] && [ ! -f "$moddir/modules.dep" ]; then
	command -v depmod >/dev/null || die "depmod not found (kmod): run 'make deps'"
	say "generating $moddir/modules.dep (once)"
	depmod -b "$kdir/image" "$KREL" || die "depmod failed"
fi
# One initramfs per kernel release and module directory (none: built in).
mkdir -p "$kdir" || die "cannot create $kdir"
initramfs=$kdir/vm-initramfs.cpio.gz
[ -n "$moddir" ] || initramfs=$kdir/vm-initramfs-builtin.cpio.gz
if [ ! -f "$initramfs" ] || [ "$self" -nt "$initramfs" ] ||
	[ "$init_script" -nt "$initramfs" ] ||
	{ [ -n "$moddir" ] && [ "$moddir/modules.dep" -nt "$initramfs" ]; } ||
	[ "$(cat "$initramfs.moddir" 2>/dev/null)" != "$moddir" ]; then
	say "building $initramfs"
	build_initramfs "$initramfs"
	printf '%s\n' "$moddir" >"$initramfs.moddir"
fi

# ------------------------------------------------------------------- OUTDIR

if [ -n "$outdir" ]; then
	mkdir -p -- "$outdir" || die "cannot create $outdir"
else
	outdir=$(mktemp -d /tmp/vm-run.XXXXXX)
	say "output in $outdir"
fi
outdir=$(cd -- "$outdir" && pwd -P)
cwd=$(pwd -P)
case $outdir$cwd in
*$'\n'*) die "OUTDIR and the working directory must not contain newlines" ;;
esac
rm -rf -- "$outdir/.vm" "$outdir/rc" "$outdir/dmesg" "$outdir/tainted" "$outdir/console.log"
mkdir -p "$outdir/.vm/modules"
printf 'OUTDIR=%s\nCWD=%s\n' "$outdir" "$cwd" >"$outdir/.vm/env"

# Stage the modules: check them on the host, where errors are cheap.
mod_files=() mod_names=() mod_args=()
for spec in "${modules[@]}"; do
	read -ra words <<<"$spec"
	[ ${#words[@]} -gt 0 ] || usage_error "-m needs a module file"
	file=${words[0]}
	[ -f "$file" ] || die "module not found: $file"
	vermagic=$(modinfo -F vermagic "$file" 2>/dev/null) || die "not a kernel module: $file"
	[ "${vermagic%% *}" = "$KREL" ] ||
		die "$file is built for '${vermagic%% *}', not $KREL"
	name=$(modinfo -F name "$file" 2>/dev/null) || true
	if [ -z "$name" ]; then name=${file##*/}; name=${name%%.ko*}; fi
	staged=$outdir/.vm/modules/$((${#mod_files[@]} + 1))-${file##*/}
	cp -- "$file" "$staged"
	mod_files+=("$staged")
	mod_names+=("$name")
	mod_args+=("${words[*]:1}")
done

print_array() {	# print_array NAME VALUE...: a bash array assignment
	printf '%s=(' "$1"
	shift
	[ $# -eq 0 ] || printf ' %q' "$@"
	printf ' )\n'
}

# The job the guest runs, chrooted into the host root, with the host's bash.
guest_path=$PATH
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
	case :$guest_path: in *:"$d":*) ;; *) guest_path=$guest_path:$d ;; esac
done
{
	echo '#!/bin/bash'
	echo "# Written by tests/vm/run.sh; run by the guest's /init, chrooted into the host's root."
	printf 'export %s=%q\n' DT_OUT "$outdir" DT_CACHE "$cache" KREL "$KREL" \
		PATH "$guest_path" HOME "$HOME" TERM dumb DT_VM 1 \
		DT_KERNEL "$kernel_kind" DT_VM_HUNG_TASK_SECS "$hung_s"
	while IFS= read -r var; do
		case $var in
		DT_OUT | DT_CACHE | DT_VM | DT_KERNEL | DT_VM_HUNG_TASK_SECS) ;;
		DT_* | CI | LANG | LC_ALL | TZ) printf 'export %s=%q\n' "$var" "${!var}" ;;
		esac
	done < <(compgen -e)
	printf 'cwd=%q\n' "$cwd"
	print_array cmd "$@"
	print_array mod_files "${mod_files[@]}"
	print_array mod_names "${mod_names[@]}"
	print_array mod_args "${mod_args[@]}"
	cat <<'EOF'

error() {
	echo "vm-run: guest: $*" | tee -a "$DT_OUT/.vm/errors" >&2
}

loaded=()
for i in "${!mod_files[@]}"; do
	read -ra args <<<"${mod_args[i]}"
	if out=$(insmod "${mod_files[i]}" "${args[@]}" 2>&1); then
		loaded+=("${mod_names[i]}")
	else
		error "insmod ${mod_names[i]}${args[*]:+ ${args[*]}} failed: $out"
		break
	fi
done

if [ ${#loaded[@]} -eq ${#mod_files[@]} ]; then
	if cd "$cwd"; then
		"${cmd[@]}" </dev/null
		rc=$?
	else
		error "cannot cd to $cwd"
	fi
fi

for ((i = ${#loaded[@]} - 1; i >= 0; i--)); do
	out=$(rmmod "${loaded[i]}" 2>&1) || error "rmmod ${loaded[i]} failed: $out"
done

if [ -n "${rc:-}" ]; then
	echo "$rc" >"$DT_OUT/rc"
	exit "$rc"
fi
exit 125
EOF
} >"$outdir/.vm/job.sh"

# --------------------------------------------------------------------- boot

cmdline="console=ttyS0 quiet panic=-1 panic_on_warn=1"
# Allocator debugging, except for benchmarks (DT_VM_PERF): slab red zones,
# poisoning and owner tracking unwind the stack on every slab allocation, and
# page poisoning writes and checks every page freed and allocated.
[ -n "${DT_VM_PERF:-}" ] ||
	cmdline+=" kfence.sample_interval=100 slub_debug=FZPU page_poison=1"
# Pages are not zeroed at allocation, as on many VMM hosts: a page the module
# exposes before zeroing it shows page_poison's 0xaa bytes.
cmdline+=" init_on_alloc=0"
cmdline+=" panic_print=0x20"	# on panic, replay the whole kernel log on the console
# A task in D state for hung_s seconds is a bug (the default, 120 s, exceeds
# what a test waits for): panic, so the run fails at once with the report.
cmdline+=" sysctl.kernel.hung_task_timeout_secs=$hung_s sysctl.kernel.hung_task_panic=1"
# The debug kernel under -cpu max once took a KASAN wild-memory-access at a
# 5-level-paging address while identifying the CPU, before any module was
# loaded; the tests need no 5-level paging.
[ "$kernel_kind" != debug ] || cmdline+=" no5lvl"
# At boot the kernel checks that the 8254 timer ticks through the IO-APIC
# within a few host-time milliseconds; under TCG on a loaded host it once did
# not ("IO-APIC + timer doesn't work!", a panic before any test ran). KVM
# guests skip the check (no_timer_check) for the same reason.
cmdline+=" no_timer_check"
qemu=(qemu-system-x86_64 "${accel_args[@]}" -smp "$cpus" -m "$mem"
	-nographic -no-reboot -nic none
	-kernel "$vmlinuz" -initrd "$initramfs" -append "$cmdline"
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=${outdir//,/,,},mount_tag=dtout,security_model=none")
if [ -n "$net" ]; then
	server=off
	[ "${net%%:*}" = client ] || server=on
	netdev=stream,id=n0,server=$server,addr.type=inet,addr.host=127.0.0.1,addr.port=${net#*:}
	qemu+=(-netdev "$netdev" -device "virtio-net-pci,netdev=n0")
fi

# What a kernel splat looks like on the console and in dmesg.
splat_re='WARNING:|BUG:|BUG |kernel BUG|Oops|KFENCE|general protection fault'
splat_re+='|Kernel panic|list_add corruption|list_del corruption|UBSAN|Call Trace'
splat_re+='|^(\[ *[0-9]+\.[0-9]+\] )?={5,}$|Poison overwritten|Redzone|Object padding'
splat_re+='|refcount_t:|hung_task: |INFO: task .* blocked for more than|soft lockup'
splat_re+='|hard LOCKUP|self-detected stall|INFO: rcu|detected stalls on CPUs'
# Debug kernels (DT_KERNEL=debug): most of these follow a WARNING: or BUG: line,
# but name them, so that no reworded header slips through.
splat_re+='|KASAN:|ODEBUG: .*object type|ODEBUG: object .* on stack|possible circular locking dependency|possible recursive locking'
splat_re+='|inconsistent lock state|lock inversion dependency|suspicious RCU usage'
splat_re+='|DEBUG_LOCKS_WARN_ON|turning off the locking correctness validator'
splat_re+='|sleeping function called from invalid context|scheduling while atomic'
splat_re+='|bad unlock balance|held lock freed|lock held when returning to user space'
kmsg_re='\[ *[0-9]+\.[0-9]+\] '	# a kernel message on the console

console=$outdir/console.log
retries=${DT_VM_RETRIES:-2}
[[ $retries =~ ^[0-9]+$ ]] || usage_error "DT_VM_RETRIES must be a number, not '$retries'"
for ((attempt = 0; ; attempt++)); do
	rm -f "$outdir/rc" "$outdir/dmesg" "$outdir/tainted" "$outdir/.vm/errors"
	start=${EPOCHREALTIME/[.,]/}
	set +e
	# No stdin (CI has none, and qemu must not grab a terminal). The console is
	# saved without the CRs of the serial line and the escapes of the firmware.
	timeout --foreground -k 10 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 |
		sed -u -e 's/\r$//' -e 's/\x1bc/\n/g' -e 's/\x1b\([[(][0-9;?]*\)\?[a-zA-Z]//g' |
		if [ -n "${DT_VM_QUIET:-}" ]; then cat >"$console"; else tee "$console"; fi
	qemu_status=${PIPESTATUS[0]}
	set -e
	# See NOTES: a crash whose first splat is an int3 Oops is the emulator's.
	first=$(grep -aE -- "$kmsg_re" "$console" | grep -aE -- "$splat_re" | sed -n 1p || true)
	[ "$cpus" -gt 1 ] && [ ! -f "$outdir/rc" ] && [ "$attempt" -lt "$retries" ] &&
		[[ $first == *'Oops: int3'* ]] || break
	cp "$console" "$outdir/console.int3-$attempt.log"
	say "TCG code-patching artefact (Oops: int3, see -h), boot $((attempt + 2)) of $((retries + 1));" \
		"console kept in $outdir/console.int3-$attempt.log"
done
elapsed_us=$((${EPOCHREALTIME/[.,]/} - start))
elapsed=$((elapsed_us / 1000000)).$((elapsed_us / 100000 % 10))

# ------------------------------------------------------------------ verdict


# Print the splat lines of OUTDIR/dmesg, then those of the console (kernel
# messages only, not CMD's output) that dmesg lacks, each once: after a panic
# the console has the live messages and the replay of the whole log.
find_splats() {
	{
		[ ! -f "$outdir/dmesg" ] || grep -aE -- "$splat_re" "$outdir/dmesg"
		grep -aE -- "$kmsg_re" "$console" | grep -aE -- "$splat_re"
	} | awk '!seen[$0]++' || true
}

taint_letters() {	# taint_letters MASK
	local flags=PFSRMBUDAWCIOELKXTN i out=''
	for ((i = 0; i < ${#flags}; i++)); do
		(($1 >> i & 1)) && out+=${flags:i:1}
	done
	printf '%s' "${out:-?}"
}

console_tail() {
	echo "--- last 40 lines of $console ---"
	tail -n 40 "$console"
	echo "---"
}

finish() {	# finish STATUS MESSAGE
	local cpu_s=CPUs
	[ "$cpus" -ne 1 ] || cpu_s=CPU
	say "$2 ($cpus $cpu_s, $accel_name, $elapsed s)"
	[ "$1" -eq 0 ] || say "results in $outdir"
	exit "$1"
}

if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
	console_tail
	finish 124 "FAIL: guest timed out after $timeout_s s, qemu killed"
fi
splats=$(find_splats | head -n 60)
if [ ! -f "$outdir/rc" ] && [ ! -s "$outdir/.vm/errors" ]; then
	[ -z "$splats" ] || printf '%s\n' "kernel splat on the console:" "$splats"
	console_tail
	if [ "$qemu_status" -ne 0 ]; then
		finish 125 "FAIL: qemu exited with status $qemu_status"
	fi
	panic=$(grep -aoE -m1 'Kernel panic - not syncing: .*' "$console" || true)
	[ -z "$panic" ] || finish 125 "FAIL: kernel panic (${panic#Kernel panic - not syncing: })"
	finish 125 "FAIL: guest did not finish (no rc: kernel crash or panic?)"
fi

rc=$(cat "$outdir/rc" 2>/dev/null || echo none)
what="command exit $rc"
[ -f "$outdir/rc" ] || what="command not run"
if [ -n "$splats" ]; then
	printf '%s\n' "kernel splat (see $outdir/dmesg):" "$splats"
	finish 126 "FAIL: $what, but kernel splat in dmesg"
fi
tainted=$(cat "$outdir/tainted" 2>/dev/null || echo missing)
[[ $tainted =~ ^[0-9]+$ ]] || finish 125 "FAIL: $what, no taint value ($tainted)"
if ((tainted & ~(1 << 12 | 1 << 13))); then
	finish 126 "FAIL: $what, but kernel tainted $tainted ($(taint_letters "$tainted"))"
fi
if [ -s "$outdir/.vm/errors" ]; then
	cat "$outdir/.vm/errors"
	finish 125 "FAIL: $what; insmod, rmmod or cd failed in the guest (see above)"
fi
clean="dmesg clean"
[ "$tainted" -eq 0 ] || clean+=", taint $(taint_letters "$tainted")"
finish "$rc" "$what, $clean"

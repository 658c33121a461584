#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Two VMs joined by a virtio-net link (tests/vm/run.sh -n: QEMU's stream
# netdev over the host's 127.0.0.1), for the scripts that need two hosts:
# tests/vm/two_hosts.sh (a migration) and tests/vm/bench_link.sh (the link
# figures of dt-bench). Sourced.
#
# On the host:
#   link_boot OUT TIMEOUT KO SCRIPT
#       boots VM "dst" (the stream server, 1 vCPU, 1024 MiB) and, once its
#       qemu listens, VM "src" (the client, $LINK_SRC_CPUS vCPUs, default 1),
#       each running
#       "bash SCRIPT ROLE" with KO loaded and OUT/ROLE as its OUTDIR (run.sh's
#       output in OUT/ROLE.vm.log); waits for both. Sets LINK_PORT,
#       LINK_LISTENING (1 if dst's qemu listened), RC_SRC_VM and RC_DST_VM
#       (run.sh's exit statuses, "none" if src never booted). An interrupt
#       ends both qemus.
#   check NAME COND [FILE...]
#       one TAP line, numbered by the caller's $n (which it bumps): ok if
#       COND evals true; else not ok, status=1, and the FILEs' tails (named
#       below the caller's $out).
# In a guest:
#   net_up ADDR
#       gives the virtio_net interface ADDR/24 and brings it up; sets IFC.
#       Logs through the caller's log function.

# vm_bg ROLE NET OUT TIMEOUT KO SCRIPT: one VM, in the background, in a
# process group of its own (so that an interrupt ends its qemu too).
vm_bg() {
	local cpus=1

	[ "$1" = src ] && cpus=${LINK_SRC_CPUS:-1}
	DT_VM_QUIET=1 setsid bash "$top/tests/vm/run.sh" -c "$cpus" -M 1024 -n "$2" -o "$3/$1" \
		-t "$4" -m "$5" -- bash "$6" "$1" > "$3/$1.vm.log" 2>&1 &
	LINK_PID=$!
}

link_kill() {
	local p
	for p in "${LINK_PIDS[@]}"; do kill -- -"$p" 2> /dev/null; done
}

link_boot() {
	local out=$1 timeout_s=$2 ko=$3 script=$4 p pid_src pid_dst

	LINK_PIDS=()
	LINK_PORT='' LINK_LISTENING='' RC_SRC_VM=none RC_DST_VM=none
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -Htan "( sport = :$p or dport = :$p )" | grep -q . || { LINK_PORT=$p; break; }
	done
	[ -n "$LINK_PORT" ] || return 1
	trap 'link_kill; exit 130' INT TERM
	vm_bg dst "server:$LINK_PORT" "$out" "$timeout_s" "$ko" "$script"
	pid_dst=$LINK_PID
	LINK_PIDS+=("$pid_dst")
	# qemu listens as it starts (after run.sh has built the initramfs, if needed).
	for _ in $(seq 1200); do
		ss -Hltn "sport = :$LINK_PORT" | grep -q LISTEN && { LINK_LISTENING=1; break; }
		kill -0 "$pid_dst" 2> /dev/null || break
		sleep 0.25
	done
	if [ -n "$LINK_LISTENING" ]; then
		vm_bg src "client:$LINK_PORT" "$out" "$timeout_s" "$ko" "$script"
		pid_src=$LINK_PID
		LINK_PIDS+=("$pid_src")
		wait "$pid_src"
		RC_SRC_VM=$?
	fi
	wait "$pid_dst"
	RC_DST_VM=$?
	trap - INT TERM
}

net_up() {
	local d drv
	IFC=''
	for d in /sys/class/net/*; do
		drv=$(readlink "$d/device/driver" 2>/dev/null) || continue
		[ "${drv##*/}" = virtio_net ] && IFC=${d##*/}
	done
	if [ -z "$IFC" ]; then
		log "no virtio_net interface in /sys/class/net: $(ls /sys/class/net)"
		return 1
	fi
	ip addr add "$1/24" dev "$IFC" && ip link set "$IFC" up || return 1
	for _ in $(seq 50); do
		[ "$(cat "/sys/class/net/$IFC/operstate")" = up ] && break
		sleep 0.1
	done
	log "$IFC ($(cat "/sys/class/net/$IFC/address")) $1/24, $(cat "/sys/class/net/$IFC/operstate")"
}

check() {
	local name=$1 cond=$2 f
	shift 2
	n=$((n + 1))
	if eval "$cond"; then
		echo "ok $n - $name"
		return
	fi
	status=1
	echo "not ok $n - $name"
	for f in "$@"; do
		[ -s "$f" ] && tail -n 15 "$f" | sed "s|^|#   ${f#"$out"/}: |"
	done
}

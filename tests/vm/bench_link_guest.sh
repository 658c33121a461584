#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One of the two VMs of tests/vm/bench_link.sh (booted by link_lib.sh's
# link_boot, joined by a virtio-net link), with its OUTDIR in $DT_OUT:
#   bench_link_guest.sh dst   dt-bench --serve 10.214.0.2:7071
#   bench_link_guest.sh src   dt-bench --peer 10.214.0.2:7071 --link virtio-net,
#                             with the options in $DT_OUT/args (one a line),
#                             results in $DT_OUT/link; with two CPUs or
#                             more, it and the NIC's interrupts run on
#                             CPU 0 (writer_stall's writer takes the last)
# Writes ROLE.rc (dt-bench's exit status, or 1 if the setup failed),
# ROLE.log (its stderr) and, on src, src.tx_bytes (what the virtio-net
# interface sent); exits 0 once it has: the verdicts are bench_link.sh's.
set -u
role=${1:-}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=${DT_OUT:?not in a tests/vm/run.sh guest}
. "$top/tests/vm/link_lib.sh"	# net_up
BENCH=$top/out/tools/dt-bench
SRC_IP=10.214.0.1 DST_IP=10.214.0.2 PORT=7071

log() { echo "bench-link $role: $(date +%T) $*"; }

dst() {
	net_up $DST_IP || return 1
	log "dt-bench --serve $DST_IP:$PORT"
	"$BENCH" --serve "$DST_IP:$PORT" 2> "$work/dst.log"
}

src() {
	local rc tx0 tx1 irq args=() pin=()
	net_up $SRC_IP || return 1
	if [ "$(nproc)" -gt 1 ]; then
		# As on a host that keeps a VMM's vCPU threads off the NIC's CPU.
		for irq in /proc/irq/[0-9]*; do
			echo 1 > "$irq/smp_affinity" 2> /dev/null
		done
		pin=(taskset -c 0)
		log "$(nproc) CPUs: dt-bench and the interrupts on CPU 0"
	fi
	[ -f "$work/args" ] && mapfile -t args < "$work/args"
	sysctl -qw vm.max_map_count=4194304
	log "dt-bench --peer $DST_IP:$PORT --link virtio-net ${args[*]}"
	tx0=$(cat "/sys/class/net/$IFC/statistics/tx_bytes")
	"${pin[@]}" "$BENCH" -o "$work/link" --peer "$DST_IP:$PORT" --link virtio-net --accel TCG \
		"${args[@]}" 2> "$work/src.log"
	rc=$?
	cat /proc/interrupts > "$work/interrupts"
	tx1=$(cat "/sys/class/net/$IFC/statistics/tx_bytes")
	echo $((tx1 - tx0)) > "$work/src.tx_bytes"
	return $rc
}

case $role in
dst) dst ;;
src) src ;;
*) echo "usage: $0 src|dst" >&2; exit 2 ;;
esac
rc=$?
echo $rc > "$work/$role.rc"
log "dt-bench exit $rc"
[ -f "$work/$role.log" ] && tail -n 40 "$work/$role.log"
exit 0

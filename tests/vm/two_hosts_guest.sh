#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One of the two VMs of tests/vm/two_hosts.sh, which boots each with
# tests/vm/run.sh -n (a virtio-net link between them) and reads the results
# from this VM's OUTDIR ($DT_OUT):
#   two_hosts_guest.sh dst   the destination (10.213.0.2): dt-migrate receive
#                            on 10.213.0.2:7070, then dt-guest --resume
#                            --verify-only on the region received
#   two_hosts_guest.sh src   the source (10.213.0.1): dt-guest in a cgroup v2
#                            of its own, then dt-migrate send to the
#                            destination once it answers a ping, with
#                            --on-timeout force: 1000 pages/s is about what
#                            the link carries under TCG (4 MB/s), so
#                            pre-copy converges only some of the time (the
#                            convergence rule is migrate_test.sh's to test)
# The token is $DT_OUT/token (the host writes it before the boots). Writes
# ROLE.rc (dt-migrate's exit status, or 1 if the setup failed), ROLE.log and
# ROLE.json (dt-migrate's output and --json), src.tx_bytes (what the
# virtio-net interface sent during the send), and exits 0 once it has: the
# verdicts are two_hosts.sh's. Environment: DT_TWO_HOSTS_SIZE (dt-guest
# --size, default 32M), DT_TWO_HOSTS_RATE (--rate, default 1000),
# DT_TWO_HOSTS_WAIT_S (how long the destination waits for the source to
# connect and the source for the destination to answer, default 600).
set -u
role=${1:-}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=${DT_OUT:?not in a tests/vm/run.sh guest}
. "$top/tests/vm/migrate_lib.sh"	# MIG, GUEST, CG, start_guest (not mig_setup)
. "$top/tests/vm/link_lib.sh"		# net_up
SRC_IP=10.213.0.1 DST_IP=10.213.0.2 PORT=7070
TOKEN=$work/token
SIZE=${DT_TWO_HOSTS_SIZE:-32M} RATE=${DT_TWO_HOSTS_RATE:-1000}
WAIT_S=${DT_TWO_HOSTS_WAIT_S:-600}

log() { echo "two-hosts $role: $(date +%T.%N | cut -c1-12) $*"; }

dst() {
	net_up $DST_IP || return 1
	log "dt-migrate receive --listen $DST_IP:$PORT"
	"$MIG" receive --listen "$DST_IP:$PORT" --token-file "$TOKEN" --io-timeout 60 \
		--timeout "$WAIT_S" --json "$work/dst.json" \
		--wait --exec "$GUEST" --resume --verify-only > "$work/dst.log" 2>&1
}

src() {
	local i rc tx0 tx1
	net_up $SRC_IP || return 1
	mkdir -p $CG
	mountpoint -q $CG || mount -t cgroup2 none $CG || return 1
	log "dt-guest --size $SIZE --rate $RATE in cgroup $CG/src"
	start_guest src --size "$SIZE" --rate "$RATE" || { cat "$work/src.guest.log"; return 1; }
	cat "$work/src.guest.log"
	# The destination boots at the same time: wait until it answers (send
	# then retries the connection for --io-timeout seconds until it listens).
	i=$SECONDS
	until busybox ping -c 1 -W 1 $DST_IP > /dev/null 2>&1; do
		[ $((SECONDS - i)) -lt "$WAIT_S" ] || { log "no answer from $DST_IP"; break; }
		sleep 0.5
	done
	log "destination $DST_IP answered after $((SECONDS - i)) s; dt-migrate send --to $DST_IP:$PORT"
	tx0=$(cat "/sys/class/net/$IFC/statistics/tx_bytes")
	"$MIG" send --to "$DST_IP:$PORT" --token-file "$TOKEN" --io-timeout 60 \
		--region "$GUEST_REGION" --on-timeout force --json "$work/src.json" \
		> "$work/src.log" 2>&1
	rc=$?
	tx1=$(cat "/sys/class/net/$IFC/statistics/tx_bytes")
	echo $((tx1 - tx0)) > "$work/src.tx_bytes"
	# dt-migrate killed the workload after activation; after an abort it
	# runs on: stop it, so that the module can be unloaded.
	kill "$GUEST_PID" 2> /dev/null
	wait "$GUEST_PID" 2> /dev/null
	rmdir "$CG/src" 2> /dev/null
	umount $CG
	return $rc
}

case $role in
dst) dst ;;
src) src ;;
*) echo "usage: $0 src|dst" >&2; exit 2 ;;
esac
rc=$?
echo $rc > "$work/$role.rc"
log "dt-migrate exit $rc"
for f in "$work/$role.log" "$work/src.guest.log"; do
	[ -f "$f" ] && sed "s|^|${f##*/}: |" "$f"
done
[ -n "${IFC:-}" ] && ip -s link show dev "$IFC"
exit 0

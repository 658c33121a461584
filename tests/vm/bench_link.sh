#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The link figures of dt-bench (send_link, receive_link, writer_stall)
# between two VMs joined by a virtio-net link, as issue 14 asks: a NIC path,
# where MSG_ZEROCOPY is not a deferred copy as it is on loopback and veth.
# link_lib.sh's link_boot boots the pair (1024 MiB each, the same harness as
# tests/vm/two_hosts.sh; the destination has 1 vCPU, the source -c's);
# tests/vm/bench_link_guest.sh is what
# each runs: dt-bench --serve on the destination (10.214.0.2), dt-bench
# --peer on the source (10.214.0.1). TAP on stdout.
#
# Usage: tests/vm/bench_link.sh [-o DIR] [-c CPUS] [-t TIMEOUT_SECONDS] [-m MODULE.ko]
#                               [-- DT-BENCH-ARGS...]
#   -o DIR   results: DIR/src/link/raw.jsonl and meta.json (dt-bench's -o),
#            DIR/src and DIR/dst the VMs' OUTDIRs, DIR/ROLE.vm.log run.sh's
#            output (default: a new directory under /tmp, printed)
#   -c N     the source VM's vCPUs (default 2): dt-bench and the NIC's
#            interrupts on CPU 0, writer_stall's writer on the last CPU
#   -t S     each VM's run.sh timeout (default 3600)
#   -m KO    the module (default ./dirtytrack.ko)
#   DT-BENCH-ARGS  more options for the peer's dt-bench (--smoke, -r N, -f ...)
# Exits 0 if every check passed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
. "$top/tests/vm/link_lib.sh"	# link_boot, check

out='' timeout_s=3600 ko=$top/dirtytrack.ko
LINK_SRC_CPUS=2
while getopts o:c:t:m:h opt; do
	case $opt in
	o) out=$OPTARG ;;
	c) LINK_SRC_CPUS=$OPTARG ;;
	t) timeout_s=$OPTARG ;;
	m) ko=$OPTARG ;;
	*) sed -n '/^# Usage/,/^# Exits/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || { echo "bench_link.sh: bad -t '$timeout_s'" >&2; exit 2; }
[[ $LINK_SRC_CPUS =~ ^[1-9]$ ]] || { echo "bench_link.sh: bad -c '$LINK_SRC_CPUS'" >&2; exit 2; }
if [ -z "$out" ]; then
	out=$(mktemp -d /tmp/bench-link.XXXXXX)
	echo "# results in $out"
fi
mkdir -p "$out" && out=$(cd "$out" && pwd -P) || exit 2
rm -rf "$out/src" "$out/dst" "$out"/*.vm.log
mkdir -p "$out/src" "$out/dst"
: > "$out/src/args"
[ $# = 0 ] || printf '%s\n' "$@" > "$out/src/args"

start=$SECONDS
link_boot "$out" "$timeout_s" "$ko" "$top/tests/vm/bench_link_guest.sh" ||
	{ echo "Bail out! no free TCP port on 127.0.0.1"; exit 1; }

n=0 status=0
echo "1..5"
rc_of() { cat "$out/$1/$1.rc" 2> /dev/null || echo none; }
crossed() {	# the source's interface sent at least the figures' payload
	local tx
	tx=$(cat "$out/src/src.tx_bytes" 2> /dev/null) || return 1
	echo "# source virtio-net tx: $tx bytes"
	[ "$tx" -gt $((8 << 20)) ]
}

[ -n "$LINK_LISTENING" ] || echo "# the destination's qemu never listened on 127.0.0.1:$LINK_PORT"
check "source VM boot clean (run.sh exit $RC_SRC_VM)" '[ "$RC_SRC_VM" = 0 ]' \
	"$out/src.vm.log" "$out/src/console.log"
check "destination VM boot clean (run.sh exit $RC_DST_VM)" '[ "$RC_DST_VM" = 0 ]' \
	"$out/dst.vm.log" "$out/dst/console.log"
check "dt-bench --peer exits 0 (exit $(rc_of src))" '[ "$(rc_of src)" = 0 ]' "$out/src/src.log"
check "dt-bench --serve exits 0 (exit $(rc_of dst))" '[ "$(rc_of dst)" = 0 ]' "$out/dst/dst.log"
check "the figures crossed the virtio-net link" 'crossed'
echo "# two VMs (source $LINK_SRC_CPUS vCPUs, destination 1; 1024 MiB each), link 127.0.0.1:$LINK_PORT: $((SECONDS - start)) s"
exit $status

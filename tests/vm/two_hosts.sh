#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Two hosts for real: boots two VMs with tests/vm/run.sh, each with 1 vCPU,
# 1024 MiB and dirtytrack.ko, joined by a virtio-net link (link_lib.sh's
# link_boot: QEMU's stream netdev over the host's 127.0.0.1), and live-migrates a 32 MiB
# dt-guest from one (the source, 10.213.0.1) to the other (the destination,
# 10.213.0.2) with dt-migrate; tests/vm/two_hosts_guest.sh is what each VM
# runs. TAP on stdout, with the blackout and the link rate as comments.
#
# Usage: tests/vm/two_hosts.sh [-o DIR] [-t TIMEOUT_SECONDS] [-m MODULE.ko]
#   -o DIR   results: DIR/src and DIR/dst are the VMs' OUTDIRs (console.log,
#            dmesg, ROLE.log, ROLE.json, ...), DIR/ROLE.vm.log run.sh's
#            output (default: a new directory under /tmp, printed)
#   -t S     each VM's run.sh timeout (default $DT_VM_TIMEOUT, or 900; 2400
#            with DT_KERNEL=debug)
#   -m KO    the module (default $DT_KO, or ./dirtytrack.ko;
#            out/debug/mod/dirtytrack.ko with DT_KERNEL=debug)
# DT_KERNEL=debug boots the debug kernel in both VMs (run.sh does). The
# destination's qemu is the stream server: it is started first and the
# source's once its port listens. Exits 0 if every test passed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
. "$top/tests/vm/migrate_lib.sh"	# parts_add_up, ebpf_consistent (and $PY)
. "$top/tests/vm/link_lib.sh"		# link_boot, check

kernel=${DT_KERNEL:-stock}
case $kernel in
stock) ko=${DT_KO:-$top/dirtytrack.ko} def_t=900 ;;
debug) ko=${DT_KO:-$top/out/debug/mod/dirtytrack.ko} def_t=2400 ;;
*) echo "two_hosts.sh: DT_KERNEL must be stock or debug, not '$kernel'" >&2; exit 2 ;;
esac
out='' timeout_s=${DT_VM_TIMEOUT:-$def_t}
while getopts o:t:m:h opt; do
	case $opt in
	o) out=$OPTARG ;;
	t) timeout_s=$OPTARG ;;
	m) ko=$OPTARG ;;
	*) sed -n '/^# Usage/,/^# DT_KERNEL/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || { echo "two_hosts.sh: bad -t '$timeout_s'" >&2; exit 2; }
if [ -z "$out" ]; then
	out=$(mktemp -d /tmp/two-hosts.XXXXXX)
	echo "# results in $out"
fi
mkdir -p "$out" && out=$(cd "$out" && pwd -P) || exit 2
rm -rf "$out/src" "$out/dst" "$out"/*.vm.log
mkdir -p "$out/src" "$out/dst"

# The shared secret, in each VM's OUTDIR (shared read-write; the project is
# read-only in the guests and /tmp hidden).
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$out/dst/token"
cp "$out/dst/token" "$out/src/token"
# The destination waits this long for the source (and the source for it),
# well within the VM timeout.
export DT_TWO_HOSTS_WAIT_S=$((timeout_s * 2 / 3))

start=$SECONDS
link_boot "$out" "$timeout_s" "$ko" "$top/tests/vm/two_hosts_guest.sh" ||
	{ echo "Bail out! no free TCP port on 127.0.0.1"; exit 1; }
port=$LINK_PORT listening=$LINK_LISTENING rc_src_vm=$RC_SRC_VM rc_dst_vm=$RC_DST_VM
elapsed=$((SECONDS - start))

n=0 status=0
echo "1..7"
rc_of() { cat "$out/$1/$1.rc" 2> /dev/null || echo none; }
json_status() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$1" 2> /dev/null
}
sent_over_link() {	# the virtio-net interface sent at least the stream's bytes
	local tx total
	tx=$(cat "$out/src/src.tx_bytes" 2> /dev/null) || return 1
	total=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_bytes"])' \
		"$out/src/src.json" 2> /dev/null) || return 1
	echo "# source virtio-net tx during send: $tx bytes; stream payload $total bytes"
	[ "$total" -gt 0 ] && [ "$tx" -ge "$total" ]
}

[ -n "$listening" ] || echo "# the destination's qemu never listened on 127.0.0.1:$port"
check "source VM boot clean (run.sh exit $rc_src_vm)" '[ "$rc_src_vm" = 0 ]' \
	"$out/src.vm.log" "$out/src/console.log"
check "destination VM boot clean (run.sh exit $rc_dst_vm)" '[ "$rc_dst_vm" = 0 ]' \
	"$out/dst.vm.log" "$out/dst/console.log"
check "source: dt-migrate send exits 0 (exit $(rc_of src))" '[ "$(rc_of src)" = 0 ]' \
	"$out/src/src.log" "$out/src/src.guest.log"
check "destination: dt-migrate receive exits 0 (exit $(rc_of dst)), dt-guest verify OK" \
	'[ "$(rc_of dst)" = 0 ] && grep -q "verify OK" "$out/dst/dst.log"' "$out/dst/dst.log"
check "source JSON status completed, blackout parts add up" \
	'[ "$(json_status "$out/src/src.json")" = completed ] && parts_add_up "$out/src/src.json"' \
	"$out/src/src.json"
check "the stream crossed the virtio-net link" 'sent_over_link' "$out/src/console.log"
check "the eBPF blackout across the two hosts adds up and agrees with dt-migrate's timing" \
	'ebpf_consistent "$out/src/src.json"' "$out/src/src.json"

# The figures, from the source's --json.
/usr/bin/python3 - "$out/src/src.json" <<'EOF' 2> /dev/null
import json, sys
j = json.load(open(sys.argv[1]))
b = j["blackout"]
print("# blackout %.1f ms (predicted %.1f): freeze %.1f, final round %.1f, commitment %.1f, "
      "activation %.1f" % (b["total_ms"], b["predicted_ms"], b["freeze_ms"],
                           b["final_round_ms"], b["commitment_ms"], b["activation_ms"]))
r = j["rounds"]
by = sum(x["bytes"] for x in r)
ms = sum(x["duration_ms"] for x in r)
print("# link rate over virtio-net: round 0 %.1f MB/s (%d bytes in %.1f ms); all %d rounds "
      "%.1f MB/s; rtt %.2f ms" % (r[0]["link_rate_Bps"] / 1e6, r[0]["bytes"], r[0]["duration_ms"],
                                   len(r), by / ms / 1e3 if ms else 0, j["rtt_ms"]))
print("# migration %.1f ms in all, %d rounds, %d bytes" % (j["total_ms"], j["total_rounds"],
                                                        j["total_bytes"]))
EOF
if grep -q 'forcing stop-and-copy' "$out/src/src.log" 2> /dev/null; then
	echo "# pre-copy did not converge: stop-and-copy forced (--on-timeout force)"
fi
echo "# two VMs (1 vCPU, 1024 MiB, $kernel kernel), link 127.0.0.1:$port: $elapsed s"
exit $status

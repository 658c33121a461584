#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make demo, in the test VM: live-migrate a 256 MiB dt-guest, which keeps
# writing while it moves, from a "source host" to a "destination host" (two
# network namespaces joined by veth), printing each stage as it happens and
# the blackout. dt-guest --resume checks every page on the destination; the
# demo exits 0 only if it verified.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
. "$top/tests/vm/migrate_lib.sh"

SIZE=${DT_DEMO_SIZE:-256M} RATE=${DT_DEMO_RATE:-2000}
mig_setup || { echo "demo: cannot set up the namespaces or cgroup2" >&2; exit 1; }
pin_probes
echo "== source: dt-guest, $SIZE, writing $RATE pages/s (cgroup $CG/demo)"
start_guest demo --size "$SIZE" --rate "$RATE" || { cat "$work/demo.guest.log"; exit 1; }
cat "$work/demo.guest.log"
sleep 2
echo "== destination ($DST_IP): dt-migrate receive, then dt-guest --resume"
start_receiver demo --wait --exec "$GUEST" --resume --duration 2 || exit 1
echo "== source ($SRC_IP): dt-migrate send"
send demo
rc_send=$?
wait $RECV_PID
rc_recv=$?
echo "== destination's output"
cat "$work/demo.dst.log"
echo "== blackout and rounds (dt-migrate --json)"
$PY - "$work/demo.src.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for r in j.get("rounds", []):
    print("round %(round)d: %(pages)d pages (%(zero_pages)d zero), %(bytes)d bytes, "
          "%(duration_ms).1f ms" % r)
b = j.get("blackout")
if b:
    print("blackout %.1f ms (predicted %.1f): freeze %.1f, final round %.1f, commitment %.1f, "
          "activation %.1f" % (b["total_ms"], b["predicted_ms"], b["freeze_ms"],
                               b["final_round_ms"], b["commitment_ms"], b["activation_ms"]))
PY
if [ $rc_send = 0 ] && [ $rc_recv = 0 ] && grep -q "verify OK" "$work/demo.dst.log"; then
	echo "demo: live migration verified on the destination"
	exit 0
fi
echo "demo: FAILED (send exit $rc_send, receive exit $rc_recv)" >&2
exit 1

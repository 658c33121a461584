#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench-migrate's QEMU part, in the test VM: the ledger guest
# (tests/qemu/) in Debian's QEMU, migrated between the two network
# namespaces by QEMU alone (its RAM in QEMU's own stream: migrate tcp:, no
# bandwidth cap, the same 300 ms downtime limit as dt-migrate's) and by
# dt-migrate --qemu (RAM in a region, through the module; QEMU carries the
# device state only). The blackout the guest saw is measured the same way
# for both movers: the guest beats every 4 ms of its time on an
# isa-debugcon port, and one reader (tests/tools/heartbeat.c) times the
# source's last beat and the destination's first. Both QEMUs of a run also
# sit in one cgroup, where dt-blackout --gap watches their vCPU threads
# (the longest stretch in which none ran; a stopped QEMU's vCPU threads
# can wake without running the guest, which splits that gap). Each run
# must leave the destination guest going on with its ledger intact. One
# JSON line per run in $DT_OUT/qemu.jsonl.
# Usage: bench_qemu.sh   (DT_BENCH_QEMU_REPS runs each, default 2;
#                         DT_BENCH_QEMU_SIZE guest RAM, default 64M)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
. "$top/tests/vm/migrate_lib.sh"
QEMU_SZ=${DT_BENCH_QEMU_SIZE:-64M}
. "$top/tests/vm/qemu_lib.sh"
REPS=${DT_BENCH_QEMU_REPS:-2}
GAP=50	# ms: longer than the guest (1 ms ticks) idles under TCG
out=${DT_OUT:?}/qemu.jsonl
: > "$out"
[ -n "${NO_SETUP:-}" ] || mig_setup || exit 1
[ -n "${NO_SETUP:-}" ] || pin_probes
QEMU_CG=$CG/qemu-bench
mkdir -p "$QEMU_CG"
status=0 BO_PID=

# blackout_start NAME: dt-blackout on the cgroup's vCPU threads
blackout_start() {
	rm -f "$work/ready"
	"$top/out/tools/dt-blackout" --cgroup "$QEMU_CG" --comm 'CPU ' --gap $GAP --quiet \
		--json "$work/$1.bo.json" --ready-file "$work/ready" > "$work/$1.bo.log" 2>&1 &
	BO_PID=$!
	wait_for "$work/ready" ready 60
}
blackout_stop() {
	[ -n "$BO_PID" ] || return 0
	kill -INT $BO_PID 2>/dev/null
	wait $BO_PID 2>/dev/null
	BO_PID=
}

# record NAME MOVER OK [KEY=JSON...]: one line of $out
record() {
	$PY - "$work/$1.bo.json" "$work/$1.hb.json" "$2" "$3" "${@:5}" >> "$out" <<'PY'
import json, sys
def load(f):
    try:
        return json.load(open(f))
    except (OSError, ValueError):
        return {}
p = load(sys.argv[1]).get("pauses", [])
j = dict(mover=sys.argv[3], verified=sys.argv[4] == "true",
         guest_gap_ms=load(sys.argv[2]).get("gap_ms"),
         gap_ms=max((x["blackout_ms"] for x in p), default=None), gaps=len(p))
for kv in sys.argv[5:]:
    k, v = kv.split("=", 1)
    j[k] = json.loads(v)
print(json.dumps(j))
PY
}

for rep in $(seq "$REPS"); do
	# ---- QEMU alone ----
	T=alone-$rep
	hb_start $T
	in_cg nsenter --net=/run/netns/$NS_SRC "${QEMU[@]/,memory-backend=ram0/}" $(hb_args $T 1) \
		-serial file:"$work/$T.ser1" -qmp unix:"$work/$T.q1",server=on,wait=off \
		> "$work/$T.qemu1.log" 2>&1 &
	disown
	in_cg nsenter --net=/run/netns/$NS_DST "${QEMU[@]/,memory-backend=ram0/}" $(hb_args $T 2) \
		-serial file:"$work/$T.ser2" -qmp unix:"$work/$T.q2",server=on,wait=off \
		-incoming defer > "$work/$T.qemu2.log" 2>&1 &
	disown
	wait_for "$work/$T.ser1" 'gen 1 ok' 120 && blackout_start $T
	PORT=$((PORT + 1))
	$QMP "$work/$T.q2" migrate-incoming "{\"uri\": \"tcp:$DST_IP:$PORT\"}" > /dev/null &&
	$QMP "$work/$T.q1" migrate-set-parameters \
		'{"max-bandwidth": 100000000000, "downtime-limit": 300}' > /dev/null &&
	$QMP "$work/$T.q1" migrate "{\"uri\": \"tcp:$DST_IP:$PORT\"}" > /dev/null
	end=$((SECONDS + 600))
	while [ $SECONDS -lt $end ]; do
		st=$($QMP "$work/$T.q1" query-migrate | jq -r .status)
		[ "$st" = completed ] || [ "$st" = failed ] && break
		sleep 0.2
	done
	$QMP "$work/$T.q1" query-migrate > "$work/$T.qm.json"
	# QEMU alone starts the destination guest itself once it has everything.
	g=$(last_gen "$work/$T.ser1")
	ok=false
	wait_for "$work/$T.ser2" "gen $((g + 2)) ok\|BAD" 120 && ! grep -q BAD "$work/$T.ser2" &&
		grep -q "gen $((g + 2)) ok" "$work/$T.ser2" && ok=true
	blackout_stop
	hb_stop
	$ok || status=1
	record $T qemu $ok "qemu_downtime_ms=$(jq .downtime "$work/$T.qm.json")" \
		"total_ms=$(jq '."total-time"' "$work/$T.qm.json")" \
		"bytes=$(jq .ram.transferred "$work/$T.qm.json")"
	echo "$T: verified=$ok $(tail -n 1 "$out")"
	stop_all

	# ---- dt-migrate --qemu ----
	T=dt-$rep
	if hb_start $T && start_source $T && blackout_start $T && start_dest $T; then
		qsend $T
		rs=$?
		wait $RECV_PID
		rr=$?
		g=$(last_gen "$work/$T.ser1")
		ok=false
		[ $rs = 0 ] && [ $rr = 0 ] &&
			wait_for "$work/$T.ser2" "gen $((g + 2)) ok\|BAD" 120 && ! grep -q BAD "$work/$T.ser2" &&
			grep -q "gen $((g + 2)) ok" "$work/$T.ser2" && ok=true
		blackout_stop
		hb_stop
		record $T dt-migrate $ok "dt_blackout_ms=$(jq .blackout.total_ms "$work/$T.src.json")" \
			"ebpf_blackout_ms=$(jq '.blackout.ebpf.total_ms // null' "$work/$T.src.json")" \
			"total_ms=$(jq .total_ms "$work/$T.src.json")" \
			"bytes=$(jq .total_bytes "$work/$T.src.json")"
	else
		ok=false
	fi
	$ok || { status=1; tail -n 5 "$work/$T".*.log; }
	echo "$T: verified=$ok $(tail -n 1 "$out")"
	stop_all
done
rmdir "$QEMU_CG" 2>/dev/null
# The runs' logs, for a failure.
mkdir -p "$DT_OUT/qemu-bench"
cp "$work"/*.log "$work"/*.ser* "$work"/*.json "$DT_OUT/qemu-bench/" 2>/dev/null
rm -rf "$work"
exit $status

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dt-migrate with QEMU as its client, in the test VM (guest-tests.sh "qemu"):
# Debian's QEMU runs inside the VM (TCG in TCG, so the guest is tiny: the
# ledger guest, tests/qemu/ledger-guest.c, 32 MiB) with its RAM in a region
# held by dt-migrate hold, in the source network namespace; dt-migrate
# receive starts the incoming QEMU in the destination one. The guest checks
# its own RAM (every page, every generation) and reports on its serial
# port, so a migration is proven by the destination guest going on from
# where the source stopped without a "LEDGER BAD" line; an abort by the
# source guest going on. TAP on stdout.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)	# QMP sockets: not on the 9p share
. "$top/tests/vm/migrate_lib.sh"
# Which parts (all by default): live abort-precopy stopcopy abort-commit usage
parts=" ${DT_QEMU_TESTS:-live abort-precopy stopcopy abort-commit usage} "
want() { [[ $parts == *" $1 "* ]]; }
# Keep the logs where run.sh collects results.
keep_logs() {
	[ -n "${DT_OUT:-}" ] || return 0
	mkdir -p "$DT_OUT/qemu_test"
	cp "$work"/*.log "$work"/*.ser[12] "$work"/*.json "$DT_OUT/qemu_test/" 2>/dev/null
	{ cat /sys/module/dirtytrack/refcnt; ps axo pid,ppid,stat,cmd; ls -l /proc/[0-9]*/fd 2>/dev/null | grep -i dirty; } > "$DT_OUT/qemu_test/procs.txt" 2>&1
	return 0
}


. "$top/tests/vm/qemu_lib.sh"

# The source guest must go on by itself: two more generations, no error.
# (Its serial log alone while dt-migrate runs: QEMU's QMP socket serves one
# client at a time, and dt-migrate holds it.)
guest_goes_on() {
	local g
	g=$(last_gen "$work/$T.ser1")
	wait_for "$work/$T.ser1" "gen $((g + 2)) ok\|BAD" 60 && ! grep -q BAD "$work/$T.ser1"
}
source_goes_on() {
	[ "$(qstatus "$work/$T.q1")" = running ] && guest_goes_on
}

mig_setup || { echo "not ok 1 - setup"; exit 1; }
pin_probes
echo "TAP version 13"

# ---- a live migration ---------------------------------------------------
T=live
if ! want $T; then :
elif hb_start $T && start_source $T; then
	start_dest $T || notok "$T: the receiver did not listen" "$work/$T".*log
	qsend $T
	rc_send=$?
	wait $RECV_PID
	rc_recv=$?
	src_gen=$(last_gen "$work/$T.ser1")
	check "$T: dt-migrate send and receive exit 0" '[ $rc_send = 0 ] && [ $rc_recv = 0 ]'
	check "$T: the region was found from QEMU's memory-backend-file" \
		'grep -q "migrating $REGION " "$work/$T.src.log"'
	check "$T: pre-copy ran rounds while the guest wrote" \
		'[ "$(jq ".rounds | length" "$work/$T.src.json")" -ge 2 ]'
	check "$T: device state went as META" \
		'[ "$(jq .status "$work/$T.src.json")" = "\"completed\"" ]'
	check "$T: the source QEMU ends stopped (postmigrate)" \
		'[ "$(qstatus "$work/$T.q1")" = postmigrate ]'
	check "$T: the destination QEMU runs the guest" \
		'[ "$(qstatus "$work/$T.q2")" = running ]'
	check "$T: the destination guest goes on from where the source stopped" \
		'wait_for "$work/$T.ser2" "gen $((src_gen + 2)) ok\|BAD" 120 &&
		 grep -q "gen $((src_gen + 2)) ok" "$work/$T.ser2" &&
		 [ "$(grep -o "gen [0-9]* ok" "$work/$T.ser2" | head -n 1 | cut -d" " -f2)" -le $((src_gen + 1)) ]'
	check "$T: its ledger checks out (no LEDGER BAD on either side)" \
		'! grep -q BAD "$work/$T.ser1" "$work/$T.ser2"'
	check "$T: the source guest did not run after the stop" \
		'g=$(last_gen "$work/$T.ser1"); sleep 2; [ "$(last_gen "$work/$T.ser1")" = "$g" ]'
	hb_stop
	check "$T: its heartbeat: the destination's first beat after the source's last" \
		'[ "$(jq ".gap_ms > 0 and .src.beats > 0 and .dst.beats > 0" "$work/$T.hb.json")" = true ]'
	echo "# $T: blackout the guest saw (heartbeat) $(jq .gap_ms "$work/$T.hb.json") ms;" \
		"dt-migrate's eBPF $(jq .blackout.ebpf.total_ms "$work/$T.src.json") ms"
else
	notok "$T: the source guest did not start" "$work/$T".*log
fi
stop_all

# ---- abort in pre-copy: it cannot converge under a 0 ms limit -----------
T=abort-precopy
if ! want $T; then :
elif start_source $T; then
	start_dest $T || notok "$T: the receiver did not listen" "$work/$T".*log
	qsend $T --downtime-limit 0 --max-rounds 1 --on-timeout cancel
	rc_send=$?
	wait $RECV_PID
	rc_recv=$?
	check "$T: both sides exit 1 (aborted)" '[ $rc_send = 1 ] && [ $rc_recv = 1 ]'
	check "$T: in stage 2" '[ "$(jq -r .failed_stage "$work/$T.src.json")" = "iterative pre-copy" ]'
	check "$T: the source guest goes on, its ledger intact" source_goes_on
	check "$T: the incoming QEMU is gone" '! pgrep -f "$work/$T.q2" > /dev/null'
else
	notok "$T: the source guest did not start" "$work/$T".*log
fi
stop_all

# pause_at_stage SOCKET STAGE: dt-migrate ctl pause, then step from pause
# point to pause point (round 0 alone has 128) until one in STAGE; print
# the last answer. One process: a dt-migrate ctl each step takes a second.
pause_at_stage() {
	$PY - "$@" <<'EOF'
import json, socket, sys
def ask(cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(sys.argv[1])
    s.sendall(cmd.encode() + b"\n")
    r = json.loads(s.makefile().readline())
    s.close()
    return r
r = ask("pause")
for i in range(1000):
    if not r.get("ok") or r.get("stage") == int(sys.argv[2]):
        break
    r = ask("step")
print(json.dumps(r))
EOF
}

# ---- paused in stop-and-copy, then resumed; then cancelled there --------
# dt-migrate ctl steps to the pause point after the last round: QEMU had
# stopped the guest for its switchover, and cancelling QEMU's migration
# must let it run. Resumed, a new QEMU migration stops it again and the
# guest moves; cancelled there, it stays and goes on.
for how in resume cancel; do
	T=stopcopy-$how
	want stopcopy || continue
	if ! start_source $T; then
		notok "$T: the source guest did not start" "$work/$T".*log
		stop_all
		continue
	fi
	start_dest $T || notok "$T: the receiver did not listen" "$work/$T".*log
	# Forced into stop-and-copy after round 2: a bounded walk (pauses
	# within rounds let the guest dirty more, so they would not converge).
	qsend $T --control "$work/$T.sock" --downtime-limit 0 --max-rounds 2 --on-timeout force &
	sp=$!
	for i in $(seq 100); do [ -S "$work/$T.sock" ] && break; sleep 0.1; done
	pause_at_stage "$work/$T.sock" 3 > "$work/$T.c.log"
	check "$T: paused in stop-and-copy, after the last round" 		'[ "$(fields "$work/$T.c.log" state stage)" = "paused 3" ]'
	check "$T: QEMU's migration cancelled, the source guest goes on" guest_goes_on
	"$MIG" ctl "$work/$T.sock" $how > /dev/null 2>&1
	wait $sp
	rc_send=$?
	wait $RECV_PID
	rc_recv=$?
	if [ $how = resume ]; then
		src_gen=$(last_gen "$work/$T.ser1")
		check "$T: resumed, the guest moves: both exit 0, it goes on there" 			'[ $rc_send = 0 ] && [ $rc_recv = 0 ] &&
			 [ "$(qstatus "$work/$T.q1")" = postmigrate ] &&
			 wait_for "$work/$T.ser2" "gen $((src_gen + 2)) ok\|BAD" 120 &&
			 ! grep -q BAD "$work/$T.ser1" "$work/$T.ser2"'
	else
		check "$T: cancelled: both exit 1, the source guest goes on" 			'[ $rc_send = 1 ] && [ $rc_recv = 1 ] && source_goes_on &&
			 ! pgrep -f "$work/$T.q2" > /dev/null'
	fi
	stop_all
done

# ---- abort in commitment: the destination cannot load the device state ---
# The source has a device (a watchdog) the destination lacks: QEMU refuses
# its state after the source QEMU saved it and stopped for good; the
# source must cancel and continue the guest.
T=abort-commit
if ! want $T; then :
elif start_source $T -device i6300esb; then
	start_dest $T || notok "$T: the receiver did not listen" "$work/$T".*log
	qsend $T
	rc_send=$?
	wait $RECV_PID
	rc_recv=$?
	check "$T: both sides exit 1 (aborted)" '[ $rc_send = 1 ] && [ $rc_recv = 1 ]'
	check "$T: in stage 4, with QEMU's reason" \
		'[ "$(jq -r .failed_stage "$work/$T.src.json")" = commitment ] &&
		 grep -q "Unknown savevm section" "$work/$T.dst.log" &&
		 grep -q "refused: QEMU.s incoming migration failed" "$work/$T.src.log"'
	check "$T: the source guest goes on, its ledger intact" source_goes_on
	check "$T: the incoming QEMU is gone" '! pgrep -f "$work/$T.q2" > /dev/null'
else
	notok "$T: the source guest did not start" "$work/$T".*log
fi
stop_all

# ---- what the tools refuse ------------------------------------------------
T=usage
want $T && {
in_src "$MIG" hold --size 12345 > "$work/$T.hold.log" 2>&1
rc=$?
check "$T: hold --size that is no multiple of 4096: exit 2" '[ $rc = 2 ]'
"$MIG" receive --listen 127.0.0.1:1 --qemu "$work/x" > "$work/$T.recv.log" 2>&1
rc=$?
check "$T: receive --qemu without --exec: exit 2" '[ $rc = 2 ] && grep -q "needs --exec" "$work/$T.recv.log"'
"$MIG" send --to 127.0.0.1:1 --qemu "$work/x" --pid 1 > "$work/$T.send.log" 2>&1
rc=$?
check "$T: send --qemu with --pid: exit 2" '[ $rc = 2 ]'
"$MIG" send --to 127.0.0.1:1 --token-file "$work/token" --qemu "$work/none" --io-timeout 1 \
	> "$work/$T.send2.log" 2>&1
rc=$?
check "$T: send --qemu with no QEMU there: exit 1, says so" \
	'[ $rc = 1 ] && grep -q "QMP $work/none" "$work/$T.send2.log"'
}

echo "1..$n"
keep_logs
rm -rf "$work"
exit $status

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dt-migrate on the host, without the module: a cold migration of a memfd
# dt-guest over loopback (userspace sender and receiver) and a live one
# tracked with pagemap-scan (where the kernel has it), checked by dt-guest
# --resume, and the errors that need no kernel side: an unregistered
# mapping, a wrong token, a garbage destination, usage. TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
M=$top/out/tools/dt-migrate G=$top/out/tools/dt-guest PY=/usr/bin/python3
PW=$top/out/tests/punch_workload
make -s -C "$top" out/tools/dt-migrate out/tools/dt-guest out/tests/punch_workload >/dev/null || exit 1
w=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$w"' EXIT
n=0 st=0
check() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; st=1
		for f in "$w"/*.log; do sed "s|^|#   $(basename "$f"): |" "$f" | tail -n 8; done
	fi
}
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$w/token"
work=$w
. "$top/tests/vm/migrate_lib.sh"	# fields
# Soft-dirty exists (CONFIG_MEM_SOFT_DIRTY) if a page written in a new
# mapping reads as soft-dirty (bit 55) in /proc/self/pagemap.
sd_ok=$($PY -c '
import ctypes, mmap, struct
m = mmap.mmap(-1, 4096); m[0] = 1
a = ctypes.addressof(ctypes.c_char.from_buffer(m))
with open("/proc/self/pagemap", "rb") as f:
    f.seek(a // 4096 * 8); e = struct.unpack("<Q", f.read(8))[0]
print(1 if e >> 55 & 1 else "")')
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$w/bad"

# guest [DT-GUEST OPTIONS...]: a memfd dt-guest; sets gpid
guest() {
	rm -f "$w/reg"
	setsid "$G" --memfd --size 4M --rate 2000 --region-out "$w/reg" "$@" > "$w/guest.log" 2>&1 &
	gpid=$!
	disown $gpid
	for i in $(seq 100); do [ -s "$w/reg" ] && return 0; sleep 0.1; done
	return 1
}

# migrate NAME [SEND ARGS...]: migrate the guest to a receiver that checks
# every page, then check both sides, the guest and the JSON's status.
migrate() {
	local name=$1 p rp rs rr
	shift
	p=$(port)
	"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user --wait \
		--exec "$G" --resume --verify-only > "$w/dst.log" 2>&1 &
	rp=$!
	"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$(cat "$w/reg")" \
		--freeze sigstop --io-timeout 10 --json "$w/src.json" "$@" > "$w/src.log" 2>&1
	rs=$?
	wait $rp
	rr=$?
	check "$name: both sides exit 0" '[ $rs = 0 ] && [ $rr = 0 ]'
	check "$name: dt-guest verified on the destination" 'grep -q "verify OK" "$w/dst.log"'
	check "$name: the source guest was killed" '! kill -0 $gpid 2>/dev/null'
	check "$name: JSON completed" \
		'$PY -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))[\"status\"] != \"completed\")" "$w/src.json"'
}

guest
migrate "cold migration" --cold --no-blackout-probe
check "cold migration: --no-blackout-probe: no eBPF blackout, no probe error" \
	'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(j[\"blackout\"][\"ebpf\"] is not None or \"blackout_probe_error\" in j)" "$w/src.json"'

# A live migration tracked by PAGEMAP_SCAN on the guest's uffd-wp
# registration (Linux 6.7+), chosen by auto.
scan_ok=
if guest --uffd-wp; then
	scan_ok=1
	migrate pagemap-scan
	check "pagemap-scan: the eBPF blackout adds up, or the JSON says why there is none" \
		'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); e=j[\"blackout\"][\"ebpf\"]; print(\"# eBPF:\", e and e[\"total_ms\"], j.get(\"blackout_probe_error\", \"\")); sys.exit(not (\"blackout_probe_error\" in j or abs(sum(e[k] for k in (\"freeze_detection_ms\",\"final_round_ms\",\"final_transfer_ms\",\"commitment_ms\",\"activation_ms\")) - e[\"total_ms\"]) < 0.01))" "$w/src.json"'
	check "pagemap-scan: auto chose it and ran harvest rounds" \
		'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(j[\"tracker\"] != \"pagemap-scan\" or len(j[\"rounds\"]) < 2)" "$w/src.json"'
	via() {	# NAME CUTS -- SEND ARGS: migrate through the proxy
		local name=$1 cuts=$2 p q rp pp
		shift 3
		p=$(port) q=$(port)
		"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user --wait \
			--exec "$G" --resume --verify-only > "$w/dst.log" 2>&1 &
		rp=$!
		$PY "$top/tests/tools/cutproxy.py" $q 127.0.0.1:$p $cuts > "$w/proxy.log" 2>&1 &
		pp=$!
		for i in $(seq 50); do grep -q listening "$w/proxy.log" && break; sleep 0.1; done
		"$M" send --to 127.0.0.1:$q --token-file "$w/token" --region "$(cat "$w/reg")" \
			--freeze sigstop --io-timeout 5 --json "$w/src.json" "$@" > "$w/src.log" 2>&1
		rs=$?
		wait $rp
		rr=$?
		kill $pp 2>/dev/null
		wait $pp 2>/dev/null
	}
	# Settling (src_settle()), through the proxy paced at 20 MB/s (about
	# 5000 pages/s) so that the run does not depend on how fast this
	# machine's loopback is: a guest dirtying 2000 pages/s of 16 MiB fits
	# the 300 ms limit with tens of ms of data left, so pre-copy goes on
	# while each round cuts that to 3/4 or less, and stops at the first
	# fitting round that does not (or leaves under 1 ms). --no-settle
	# stops at the first round that fits. The check replays the rule on
	# the JSON's predictions.
	for mode in settle no-settle; do
		guest --uffd-wp --size 16M --rate 2000 || break
		sleep 1
		via "$mode" rate:20000000 -- $([ $mode = no-settle ] && echo --no-settle)
		check "$mode: both sides exit 0, dt-guest verified" \
			'[ $rs = 0 ] && [ $rr = 0 ] && grep -q "verify OK" "$w/dst.log"'
		check "$mode: the source guest was killed, JSON completed" \
			'! kill -0 $gpid 2>/dev/null && [ "$(jq -r .status "$w/src.json")" = completed ]'
		check "$mode: pre-copy stopped where the rule says" '$PY - "$w/src.json" $mode <<"EOF"
import json, sys
inf = float("inf")
r = json.load(open(sys.argv[1]))["rounds"][:-1]	# the last is stop-and-copy
pred = [inf if x["predicted_blackout_ms"] is None else x["predicted_blackout_ms"] for x in r]
data = [inf if x["predicted_data_ms"] is None else x["predicted_data_ms"] for x in r]
print("# data ms after each round:", ["%.1f" % x for x in data])
settled, prev = 0, inf
for i in range(len(r)):
    go = sys.argv[2] == "settle" and 1 <= data[i] <= 0.75 * prev and i + 1 <= 30	# --max-rounds
    if pred[i] <= 300:
        if go != (i < len(r) - 1):
            sys.exit("round %d: went on %s, the rule says %s" % (i, i < len(r) - 1, go))
        settled += go
    elif i == len(r) - 1:
        sys.exit("pre-copy stopped before it fit")
    prev = data[i]
print("# rounds settled:", settled)
sys.exit(sys.argv[2] == "settle" and settled == 0)
EOF'
	done
	# Cuts (--reconnect-timeout): through tests/tools/cutproxy.py, which
	# resets a connection once the source has sent it a given number of
	# bytes. A clean run through it measures the streams; then cuts of the
	# data connection at seeded random bytes (inside records, mostly) and
	# of the control connection inside COMMIT_REQ (stop-and-copy: the
	# workload is thawed and frozen again later) must each be survived,
	# and a destination that cannot be reached again ends the migration
	# at --reconnect-timeout with the workload running.
	cut_ok() {	# NAME: survived, verified; what went again is what did not arrive
		check "$1: both sides exit 0, dt-guest verified, one rejoin in the JSON" \
			'[ $rs = 0 ] && [ $rr = 0 ] && grep -q "verify OK" "$w/dst.log" && grep -q "cut at" "$w/proxy.log" && [ "$(jq ".rejoins | length" "$w/src.json")" = 1 ]'
		check "$1: sent again first: the cut round's pages less those that arrived" \
			'jq -e ".rejoins[0] | .resent_first == (if .cut_round_pages > 0 then .cut_round_pages - .cut_records else 0 end)" "$w/src.json" > /dev/null'
	}
	seed=${DT_CUT_SEED:-$$}
	echo "# cut offsets from seed $seed (DT_CUT_SEED)"
	guest --uffd-wp --size 16M --rate 2000 && sleep 1 && via clean "" --
	check "clean run through the proxy" '[ $rs = 0 ] && [ $rr = 0 ] && grep -q "verify OK" "$w/dst.log"'
	ctl=$(sed -n "s/conn 0 closed after //p" "$w/proxy.log")
	data=$(sed -n "s/conn 1 closed after //p" "$w/proxy.log")
	echo "# control $ctl bytes, data $data bytes"
	for off in $($PY -c "import random, sys; random.seed(int(sys.argv[1]))
print(*sorted(random.randrange(1, int(sys.argv[2]) * 9 // 10) for _ in range(3)))" \
			$seed ${data:-1000000}); do
		guest --uffd-wp --size 16M --rate 2000 && sleep 1 && via "data cut at $off" "1:$off" --
		cut_ok "data cut at byte $off"
	done
	# COMMIT_REQ (48 bytes) and COMMIT (16) end the control stream.
	off=$(( ${ctl:-400} - 64 + 1 + seed % 47 ))
	guest --uffd-wp --size 16M --rate 2000 && sleep 1 && via "ctl cut at $off" "0:$off" --
	cut_ok "control cut at byte $off (inside COMMIT_REQ)"
	check "control cut in stop-and-copy: the source went back to pre-copy" \
		'[ "$(jq -r ".rejoins[0].stage" "$w/src.json")" = stop-and-copy ] || [ "$(jq -r ".rejoins[0].stage" "$w/src.json")" = commitment ]'
	# CHALLENGE, WELCOME, 3 PONGs and RESERVED come first (264 bytes),
	# then round 0's ROUND_ACK (48): the round arrived, its ack did not.
	off=$(( 264 + 1 + seed % 47 ))
	guest --uffd-wp --size 16M --rate 2000 && sleep 1 && via "ack cut" "0:dn:$off" --
	cut_ok "control cut at byte $off to the source (inside round 0's ROUND_ACK)"
	check "ack cut: the source counted round 0 as arrived" \
		'[ "$(jq -r ".rejoins[0].rounds_whole" "$w/src.json")" = 1 ] && [ "$(jq -r ".rejoins[0].resent_first" "$w/src.json")" = 0 ]'
	guest --uffd-wp --size 16M --rate 2000 && sleep 1 &&
		via timeout "1:1000000 refuse" -- --reconnect-timeout 2
	check "no reconnection within --reconnect-timeout: both sides exit 1, the guest runs" \
		'[ $rs = 1 ] && [ $rr = 1 ] && grep -q "no reconnection within --reconnect-timeout 2 s" "$w/src.log" && kill -0 $gpid && [ "$(ps -o stat= -p $gpid | cut -c1)" != T ]'
	kill $gpid 2>/dev/null
	wait $gpid 2>/dev/null
else
	n=$((n + 1)); echo "ok $n - pagemap-scan # SKIP $(tail -n 1 "$w/guest.log")"
fi

# punched NAME TRACKER [--uffd-wp]: a memfd workload of 1024 pages punches
# pages 100-149 1.5 s into a pre-copy held open for 4 s; the destination
# (holding the region) must read them as zeros and every other page intact.
punched() {
	local name=$1 tracker=$2 p rp rs reg held
	shift 2
	setsid "$PW" "$@" 1024 1500 100 50 > "$w/pw.log" 2>&1 &
	local pw=$!
	for i in $(seq 50); do [ -s "$w/pw.log" ] && break; sleep 0.1; done
	reg=$(head -n 1 "$w/pw.log")
	p=$(port)
	"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user \
		> "$w/dst.log" 2>&1 &
	rp=$!
	"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$reg" --tracker "$tracker" \
		--freeze sigstop --io-timeout 10 --downtime-limit 0 --max-rounds 1000000 --timeout 4 \
		--on-timeout force > "$w/src.log" 2>&1
	rs=$?
	for i in $(seq 50); do grep -q "holding the region" "$w/dst.log" && break; sleep 0.1; done
	held=$(sed -n 's/.*holding the region: \(\/proc\/[0-9]*\/fd\/[0-9]*\).*/\1/p' "$w/dst.log")
	check "$name: the migration completes after the punch" \
		'[ $rs = 0 ] && grep -q punched "$w/pw.log" && [ -n "$held" ]'
	check "$name: the punched pages arrive as zeros, the others intact" \
		'$PY - "$held" <<"EOF"
import sys
d = open(sys.argv[1], "rb").read()
bad = [p for p in range(1024) if d[p * 4096:(p + 1) * 4096] !=
       (bytes(4096) if 100 <= p < 150 else bytes([(p + 1) & 255]) * 4096)]
print("# pages not as expected:", bad[:8], len(bad))
sys.exit(bool(bad))
EOF'
	kill $rp $pw 2>/dev/null
	wait $rp $pw 2>/dev/null
}
if [ -n "$sd_ok" ]; then
	punched "soft-dirty, a hole punched" soft-dirty
else
	# Without it clear_refs succeeds and no page ever reads dirty: refuse.
	guest
	"$M" send --to 127.0.0.1:$(port) --token-file "$w/token" --region "$(cat "$w/reg")" \
		--freeze sigstop --io-timeout 10 > "$w/src.log" 2>&1
	rs=$?
	check "soft-dirty on a kernel without it: refused, naming CONFIG_MEM_SOFT_DIRTY" \
		'[ $rs = 1 ] && grep -q "CONFIG_MEM_SOFT_DIRTY" "$w/src.log"'
	check "soft-dirty on a kernel without it: the guest runs" \
		'kill -0 $gpid && [ "$(ps -o stat= -p $gpid | cut -c1)" != T ]'
	kill $gpid; wait $gpid 2>/dev/null
fi
if [ -n "$scan_ok" ]; then
	punched "pagemap-scan, a hole punched" pagemap-scan --uffd-wp
else
	n=$((n + 1)); echo "ok $n - pagemap-scan, a hole punched # SKIP no uffd-wp async here"
fi

# The --exec child is forked at reservation and waits; an abort ends it, with
# its fd of the region, and removes its DT_META file. dropped NAME SIGNAL
dropped() {
	local name=$1 sig=$2 p rp sp child
	if [ -n "$scan_ok" ]; then guest --uffd-wp
	elif [ -n "$sd_ok" ]; then guest
	else n=$((n + 1)); echo "ok $n - $name # SKIP no tracker for a memfd here"; return; fi
	mkdir -p "$w/tmp" && rm -f "$w/tmp"/* "$w/src.log" "$w/dst.log"
	p=$(port)
	TMPDIR=$w/tmp "$M" receive --listen 127.0.0.1:$p --token-file "$w/token" \
		--receiver user --exec "$G" --resume > "$w/dst.log" 2>&1 &
	rp=$!
	"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$(cat "$w/reg")" \
		--freeze sigstop --io-timeout 10 --downtime-limit 0 --max-rounds 1000000 \
		> "$w/src.log" 2>&1 &
	sp=$!
	for i in $(seq 100); do grep -q "round 1:" "$w/src.log" && break; sleep 0.1; done
	child=$(pgrep -P $rp)
	check "$name: the --exec child waits during pre-copy, with the new region as fd 3" \
		'[ -n "$child" ] && readlink /proc/$child/fd/3 | grep -q "^/memfd:dt-migrate" && ls "$w/tmp"/dt-migrate-meta.* > /dev/null'
	kill -$sig $rp
	wait $sp $rp 2>/dev/null
	for i in $(seq 50); do kill -0 $child 2>/dev/null || break; sleep 0.1; done
	check "$name: the waiting child is gone, without running the workload" \
		'! kill -0 $child 2>/dev/null && ! grep -q verif "$w/dst.log"'
	[ $sig = KILL ] ||
		check "$name: no DT_META file left" '! ls "$w/tmp"/dt-migrate-meta.* > /dev/null 2>&1'
	check "$name: the source guest runs" 'kill -0 $gpid && [ "$(ps -o stat= -p $gpid | cut -c1)" != T ]'
	kill $gpid; wait $gpid 2>/dev/null
}
dropped "receiver SIGTERM in pre-copy" TERM
dropped "receiver kill -9 in pre-copy" KILL

# dt-migrate ctl: a pause asked before the handshake lands after it; step
# walks every later pause point (after the reservation, within a round,
# between rounds, after the last round); resume; the guest verifies.
if [ -n "$scan_ok" ]; then
	guest --uffd-wp
	p=$(port) S=$w/ctl
	rm -f "$w/src.json"
	"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$(cat "$w/reg")" \
		--freeze sigstop --io-timeout 10 --control "$S" --downtime-limit 0 --max-rounds 2 \
		--on-timeout force --json "$w/src.json" > "$w/src.log" 2>&1 &
	sp=$!
	for i in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
	"$M" ctl "$S" pause --json > "$w/p.c0.log" 2>&1 &
	cp=$!
	sleep 0.5
	"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user --wait \
		--exec "$G" --resume --verify-only > "$w/dst.log" 2>&1 &
	rp=$!
	wait $cp
	walk_pauses ctl "$S" "$w/p" '[ "$(ps -o stat= -p $gpid | cut -c1)" != T ]'
	"$M" ctl "$S" resume > "$w/c5.log" 2>&1
	rc=$?
	wait $sp; rs=$?
	wait $rp; rr=$?
	check "ctl resume: both sides exit 0, dt-guest verified on the destination" \
		'[ $rc = 0 ] && [ $rs = 0 ] && [ $rr = 0 ] && grep -q "verify OK" "$w/dst.log"'
	check "the JSON lists the pauses (stages 0, 1, 2 within and between rounds, 3)" \
		'$PY -c "import json,sys; p=json.load(open(sys.argv[1]))[\"pauses\"]; st=[(x[\"stage\"], x[\"mid_round\"]) for x in p]; print(\"#\", st); sys.exit(not ({(0, False), (1, False), (2, True), (2, False), (3, False)} <= set(st) and st[-1] == (3, False)))" "$w/src.json"'
	check "round 0 sent every page once, though paused within it" \
		'[ "$(fields "$w/src.json" "rounds[0].pages")" = 1024 ]'

	# cancel, resume when not paused, a pause timeout, no socket.
	guest --uffd-wp
	p=$(port)
	"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user \
		> "$w/dst.log" 2>&1 &
	rp=$!
	"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$(cat "$w/reg")" \
		--freeze sigstop --io-timeout 10 --control "$S" --downtime-limit 0 \
		--max-rounds 1000000 > "$w/src.log" 2>&1 &
	sp=$!
	for i in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
	"$M" ctl "$S" resume > "$w/c6.log" 2>&1
	rc=$?
	check "ctl resume when not paused: exit 1, says so" '[ $rc = 1 ] && grep -q "not paused" "$w/c6.log"'
	"$M" ctl "$S" pause > /dev/null 2>&1 && "$M" ctl "$S" cancel > "$w/c7.log" 2>&1
	rc=$?
	wait $sp; rs=$?
	wait $rp; rr=$?
	check "ctl cancel while paused: send exits 1 naming it, the receiver gives up" \
		'[ $rc = 0 ] && [ $rs = 1 ] && grep -q "cancelled by dt-migrate ctl" "$w/src.log" && [ $rr != 0 ]'
	check "ctl cancel: the guest runs, the socket is gone" \
		'kill -0 $gpid && [ "$(ps -o stat= -p $gpid | cut -c1)" != T ] && [ ! -e "$S" ]'
	"$M" ctl "$S" status > "$w/c8.log" 2>&1
	rc=$?
	check "ctl with nothing serving the socket: exit 1, says so" \
		'[ $rc = 1 ] && grep -q "no dt-migrate send --control there" "$w/c8.log"'
	p=$(port)
	"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user \
		> "$w/dst.log" 2>&1 &
	rp=$!
	"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$(cat "$w/reg")" \
		--freeze sigstop --io-timeout 10 --control "$S" --pause-timeout 1 \
		--downtime-limit 0 --max-rounds 1000000 > "$w/src.log" 2>&1 &
	sp=$!
	for i in $(seq 50); do [ -S "$S" ] && break; sleep 0.1; done
	"$M" ctl "$S" pause > /dev/null 2>&1
	wait $sp; rs=$?
	wait $rp
	check "--pause-timeout 1: a longer pause aborts, the guest runs" \
		'[ $rs = 1 ] && grep -q "paused for more than --pause-timeout 1 s" "$w/src.log" && kill -0 $gpid'
	kill $gpid; wait $gpid 2>/dev/null
fi

# pagemap-scan asked for on a mapping that is not registered: refused, says why.
guest
"$M" send --to 127.0.0.1:$(port) --token-file "$w/token" --region "$(cat "$w/reg")" \
	--tracker pagemap-scan --freeze sigstop --io-timeout 10 > "$w/src.log" 2>&1
rs=$?
check "pagemap-scan without registration: exits 1 naming dt-guest --uffd-wp" \
	'[ $rs = 1 ] && grep -q "uffd-wp" "$w/src.log"'
check "pagemap-scan without registration: the guest runs" 'kill -0 $gpid'
kill $gpid; wait $gpid 2>/dev/null

# A wrong token: refused, the source guest goes on.
guest
p=$(port)
"$M" receive --listen 127.0.0.1:$p --token-file "$w/token" --receiver user > "$w/dst.log" 2>&1 &
rp=$!
"$M" send --to 127.0.0.1:$p --token-file "$w/bad" --region "$(cat "$w/reg")" --cold \
	--freeze sigstop --io-timeout 10 > "$w/src.log" 2>&1
rs=$?
check "wrong token: send exits 1 naming it" '[ $rs = 1 ] && grep -q "wrong token" "$w/src.log"'
check "wrong token: the guest was never stopped and runs" \
	'kill -0 $gpid && [ "$(ps -o stat= -p $gpid | cut -c1)" != T ]'
check "wrong token: the receiver still waits" 'kill -0 $rp'
kill $rp $gpid; wait $rp $gpid 2>/dev/null

# A destination that speaks garbage.
guest
p=$(port)
$PY -c '
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.settimeout(30); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept(); c.sendall(os.urandom(4096)); c.settimeout(30); c.recv(4096)' $p &
gp=$!
"$M" send --to 127.0.0.1:$p --token-file "$w/token" --region "$(cat "$w/reg")" --cold \
	--freeze sigstop --io-timeout 10 > "$w/src.log" 2>&1
rs=$?
wait $gp
check "garbage destination: send exits 1 with a protocol error" \
	'[ $rs = 1 ] && grep -q "Protocol error" "$w/src.log"'
check "garbage destination: the guest runs" 'kill -0 $gpid && [ "$(ps -o stat= -p $gpid | cut -c1)" != T ]'
kill $gpid; wait $gpid 2>/dev/null

# Usage.
"$M" send --listen x > /dev/null 2>&1
rc=$?
check "send --listen is a usage error (2)" '[ $rc = 2 ]'
"$M" send --to h:1 --region /proc/1/fd/0 --tracker pages > "$w/use.log" 2>&1
rc=$?
check "--tracker pages is a usage error (2) listing the trackers" \
	'[ $rc = 2 ] && grep -q "pagemap-scan or soft-dirty" "$w/use.log"'
env -u DT_MIGRATE_TOKEN "$M" send --to h:1 --region /x > "$w/use.log" 2>&1 < /dev/null
rc=$?
check "send without a token says so (2)" '[ $rc = 2 ] && grep -q "no token" "$w/use.log"'
echo "1..$n"
exit $st

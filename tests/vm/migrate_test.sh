#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dt-migrate end to end, in the test VM (guest-tests.sh "migrate"): a source
# and a destination network namespace joined by veth, dt-guest as the
# workload. Every migration is checked by dt-guest --resume on the
# destination; every abort by the source dt-guest verifying itself and
# going on, and by the module's reference count (the destination must keep
# no region). TAP on stdout.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
. "$top/tests/vm/migrate_lib.sh"


refcnt() { cat /sys/module/dirtytrack/refcnt; }
json_status() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$1"; }

# A migration that must succeed and verify: migrate NAME GUEST_ARGS -- RECV_ARGS -- SEND_ARGS
migrate_ok() {
	T=$1
	local g=() r=() s=() which=g
	shift
	for a in "$@"; do
		if [ "$a" = -- ]; then [ $which = g ] && which=r || which=s; continue; fi
		case $which in g) g+=("$a") ;; r) r+=("$a") ;; s) s+=("$a") ;; esac
	done
	start_guest "$T" "${g[@]}" || { notok "$T: dt-guest did not start" "$work/$T".*log; return; }
	sleep 1
	start_receiver "$T" --io-timeout 20 "${r[@]}" --wait --exec "$GUEST" --resume --verify-only ||
		{ notok "$T: receiver did not listen" "$work/$T".*log; return; }
	send "$T" --io-timeout 20 "${s[@]}" > "$work/$T.src.log" 2>&1
	rc_send=$?
	wait $RECV_PID
	rc_recv=$?
	sleep 0.5
	check "$T: send exits 0" '[ $rc_send = 0 ]'
	check "$T: dt-guest verified on the destination" \
		'[ $rc_recv = 0 ] && grep -q "verify OK" "$work/$T.dst.log"'
	check "$T: the source workload is gone, its cgroup not left frozen" \
		'gone $GUEST_PID && [ "$(cat "$CG/$T/cgroup.freeze")" = 0 ]'
	check "$T: JSON completed, blackout parts add up" \
		'[ "$(json_status "$work/$T.src.json")" = completed ] && parts_add_up "$work/$T.src.json"'
	check "$T: eBPF blackout adds up and agrees with dt-migrate's timing" \
		'ebpf_consistent "$work/$T.src.json"'
}

# After an abort: both sides exited 1, the source workload runs and
# verifies, the destination holds no region.
aborted() {
	local what=$1
	sleep 0.5
	check "$T: send exits 1 ($what)" '[ $rc_send = 1 ]'
	check "$T: receive exits non-zero" '[ $rc_recv != 0 ]'
	# A frozen or stopped dt-guest cannot answer SIGUSR1: verifying proves it runs.
	check "$T: source workload runs and verifies" 'kill -0 $GUEST_PID && guest_verifies $T'
	check "$T: no region left on the destination" '[ "$(refcnt)" = "$base" ]'
	check "$T: the source's JSON says aborted" \
		'[ ! -f "$work/$T.src.json" ] || [ "$(json_status "$work/$T.src.json")" = aborted ]'
	kill "$GUEST_PID" 2>/dev/null
	wait "$GUEST_PID" 2>/dev/null
}

# An abort scenario: abort_run NAME GUEST_ARGS... ; sets up guest + receiver
abort_setup() {
	T=$1
	shift
	start_guest "$T" "$@" || { notok "$T: dt-guest did not start"; return 1; }
	sleep 1
	base=$(($(refcnt)))
	start_receiver "$T" --io-timeout 5 --timeout 300 --reconnect-timeout 3 ||
		{ notok "$T: receiver did not listen"; return 1; }
}

mig_setup || { echo "Bail out! network namespaces or cgroup2"; exit 1; }
pin_probes

# The converging runs write well under the link rate: about 10-30 MB/s over
# veth on Debian's kernel under TCG, 4 MB/s on the debug kernel (KASAN).
R=2000
[ "${DT_KERNEL:-stock}" = debug ] && R=200
migrate_ok live --size 32M --rate $R -- -- --downtime-limit 300
check "live: at least two rounds" \
	'$PY -c "import json,sys; sys.exit(len(json.load(open(sys.argv[1]))[\"rounds\"]) < 2)" "$work/live.src.json"'
migrate_ok cold_sigstop --size 16M --rate $R -- -- --cold --freeze sigstop
migrate_ok kernel_to_user --size 16M --rate $R -- --receiver user --
migrate_ok user_to_kernel --size 16M --rate $R -- --receiver kernel -- --sender user
# The userspace tracker family: a memfd workload, soft-dirty, no module on
# the source side of the stream (userspace sender into RECEIVE).
migrate_ok softdirty --memfd --size 16M --rate $((R / 2)) -- -- --tracker soft-dirty
check "softdirty: the JSON names the tracker and harvest rounds ran" \
	'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(j[\"tracker\"] != \"soft-dirty\" or len(j[\"rounds\"]) < 3)" "$work/softdirty.src.json"'
# pagemap-scan: the guest registers its memfd mapping for async uffd-wp;
# auto picks PAGEMAP_SCAN on /proc/PID/pagemap, no freeze around harvests.
migrate_ok pagemap_scan --memfd --uffd-wp --size 16M --rate $((R / 2)) -- --
check "pagemap_scan: auto chose it and harvest rounds ran" \
	'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(j[\"tracker\"] != \"pagemap-scan\" or len(j[\"rounds\"]) < 3)" "$work/pagemap_scan.src.json"'
migrate_ok forced --size 16M --wss 2048 --rate 0 -- -- --downtime-limit 0 --max-rounds 2 --on-timeout force
# A writer faster than the link (netem: 2 Mbit/s, about 60 pages/s)
# converges only by auto-converge: with the module, a write-fault budget
# stepped down round by round. For a memfd (pagemap-scan) the workload
# cgroup's cpu.max is the lever, put back as it was afterwards; under TCG
# even 1 % of a CPU dirties about as fast as this link carries, so that run
# is forced after 5 rounds.
check "autoconverge: the link slowed to 2 Mbit/s (netem)" \
	'in_src tc qdisc add dev dtm0 root netem rate 2mbit'
migrate_ok autoconverge --size 2M --rate 0 -- -- --max-rounds 25
check "autoconverge: converged with the write-fault budget on" \
	'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); t=[(r[\"throttle_level\"], r[\"throttle_pps\"]) for r in j[\"rounds\"]]; print(\"# levels, budgets:\", t); sys.exit(not (j[\"converged\"] and any(l > 0 and p > 0 for l, p in t)))" "$work/autoconverge.src.json"'
check "autoconverge: said so" 'grep -q "workload slowed .*write-fault budget" "$work/autoconverge.src.log"'
echo +cpu > $CG/cgroup.subtree_control
# cpu.max needs CONFIG_CFS_BANDWIDTH; without it dt-migrate must say why it
# cannot slow the workload and go on.
mkdir -p $CG/cpuprobe
cpu_max=$([ -e $CG/cpuprobe/cpu.max ] && echo 1)
rmdir $CG/cpuprobe
migrate_ok autoconverge_cpu --memfd --uffd-wp --size 2M --rate 0 -- -- --max-rounds 5 \
	--on-timeout force
if [ -n "$cpu_max" ]; then
	check "autoconverge_cpu: slowed by cpu.max, and said so" \
		'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); t=[r[\"throttle_level\"] for r in j[\"rounds\"]]; print(\"# levels:\", t); sys.exit(not max(t) > 0)" "$work/autoconverge_cpu.src.json" && grep -q "workload slowed .*cpu.max" "$work/autoconverge_cpu.src.log"'
	check "autoconverge_cpu: cpu.max put back as it was" '[ "$(cat $CG/autoconverge_cpu/cpu.max)" = "max 100000" ]'
else
	check "autoconverge_cpu: no cpu.max in this kernel: said why, went on unthrottled" \
		'grep -q "cannot throttle the workload: .*cpu.max" "$work/autoconverge_cpu.src.log" && $PY -c "import json,sys; sys.exit(any(r[\"throttle_level\"] for r in json.load(open(sys.argv[1]))[\"rounds\"]))" "$work/autoconverge_cpu.src.json"'
fi
in_src tc qdisc del dev dtm0 root

# Paused and resumed with dt-migrate ctl, the module's STREAM sending: a
# pause asked before the destination listens lands after the handshake
# (stage 0); step walks the rest: after the reservation (1), within round 0
# and between rounds (2), after the last round (3), where the workload is
# thawed. Then resume: dt-guest verifies, and no page went twice except
# those written since (at --rate 20, at most 20 per second of the run).
T=paused
if start_guest $T --size 1M --rate 20; then	# 1 MiB: round 0 is 16 STREAM calls
	PORT=$((PORT + 1))	# the receiver's, started after the pause below
	send_bg $T --io-timeout 20 --control "$work/$T.sock" --downtime-limit 0 --max-rounds 2 \
		--on-timeout force
	sp=$SEND_PID
	PORT=$((PORT - 1))
	for i in $(seq 100); do [ -S "$work/$T.sock" ] && break; sleep 0.1; done
	"$MIG" ctl "$work/$T.sock" pause --json > "$work/$T.c0.log" 2>&1 &
	cp=$!
	sleep 1
	start_receiver $T --io-timeout 20 --wait --exec "$GUEST" --resume --verify-only
	wait $cp
	walk_pauses $T "$work/$T.sock" "$work/$T" 'grep -q "frozen 0" "$CG/$T/cgroup.events"'
	sleep 2
	check "$T: paused, the workload runs on the source" 'guest_verifies $T'
	"$MIG" ctl "$work/$T.sock" resume > /dev/null
	wait $sp; rc_send=$?
	wait $RECV_PID; rc_recv=$?
	check "$T: resumed: send exits 0, dt-guest verified on the destination" \
		'[ $rc_send = 0 ] && [ $rc_recv = 0 ] && grep -q "verify OK" "$work/$T.dst.log"'
	check "$T: round 0 sent each page once; later rounds only pages written since" \
		'$PY -c "import json,sys; j=json.load(open(sys.argv[1])); r=j[\"rounds\"]; later=sum(x[\"pages\"] for x in r[1:]); print(\"# round 0:\", r[0][\"pages\"], \"later:\", later, \"in\", j[\"total_ms\"], \"ms\"); sys.exit(r[0][\"pages\"] != 256 or later > 20 * (j[\"total_ms\"] / 1000 + 1) + 64)" "$work/$T.src.json"'
fi

# Non-converging, cancelled: the workload stays on the source.
abort_setup cancel --size 16M --wss 2048 --rate 0 && {
	send cancel --io-timeout 5 --downtime-limit 0 --max-rounds 2 > "$work/cancel.src.log" 2>&1
	rc_send=$?; wait $RECV_PID; rc_recv=$?
	check "cancel: says it did not converge" 'grep -q "did not converge" "$work/cancel.src.log"'
	aborted "did not converge"
}

# kill -9 the receiver during pre-copy.
abort_setup kill9 --size 16M --wss 2048 --rate 0 && {
	send_bg kill9 --io-timeout 5 --downtime-limit 0 --max-rounds 100000 --reconnect-timeout 3
	sp=$SEND_PID
	wait_for "$work/kill9.src.log" "round 1:" 120
	kill -9 $RECV_PID
	wait $sp; rc_send=$?; wait $RECV_PID; rc_recv=$?
	check "kill9: tried to reconnect for --reconnect-timeout, then gave up" \
		'grep -q "no reconnection within --reconnect-timeout 3 s" "$work/kill9.src.log"'
	aborted "receiver killed"
}

# The link goes down during pre-copy: both sides give up after --io-timeout.
abort_setup linkdown --size 16M --wss 2048 --rate 0 && {
	send_bg linkdown --io-timeout 5 --downtime-limit 0 --max-rounds 100000 \
		--reconnect-timeout 3
	sp=$SEND_PID
	wait_for "$work/linkdown.src.log" "round 1:" 120
	ip -n $NS_DST link set dtm1 down
	wait $sp; rc_send=$?; wait $RECV_PID; rc_recv=$?
	ip -n $NS_DST link set dtm1 up
	aborted "link down"
}

# The link goes down for 2 s during pre-copy and comes back: both sides
# notice (--io-timeout 2), the source reconnects, the migration completes.
T=linkflap
start_guest $T --size 16M --wss 2048 --rate 1000 && sleep 1 &&
	start_receiver $T --io-timeout 2 --wait --exec "$GUEST" --resume --verify-only && {
	send_bg $T --io-timeout 2 --max-rounds 100000 --downtime-limit 0 --timeout 20 \
		--on-timeout force
	sp=$SEND_PID
	wait_for "$work/$T.src.log" "round 1:" 120
	ip -n $NS_DST link set dtm1 down
	wait_for "$work/$T.src.log" "connection lost" 60
	sleep 2
	ip -n $NS_DST link set dtm1 up
	wait $sp; rc_send=$?; wait $RECV_PID; rc_recv=$?
	check "$T: the source lost the link, reconnected, and completed" \
		'[ $rc_send = 0 ] && grep -q "connection lost" "$work/$T.src.log" && grep -q "reconnected after" "$work/$T.src.log"'
	check "$T: dt-guest verified on the destination" \
		'[ $rc_recv = 0 ] && grep -q "verify OK" "$work/$T.dst.log"'
}
ip -n $NS_DST link set dtm1 up

# Cuts at chosen bytes, with the module's sender and receiver: through
# tests/tools/cutproxy.py in the source namespace. A clean run measures the
# streams; then the data connection is cut at 3 seeded random bytes (make
# test-full, DT_TEST_FULL: 8), inside
# page records mostly (any round, any record); the control connection
# inside COMMIT_REQ (stop-and-copy) and inside round 0's ROUND_ACK (the
# round arrived, its ack did not). Each must be survived, and dt-guest must
# verify; what goes again first must be the cut round's pages less those
# that arrived. A destination that stays away ends the migration at
# --reconnect-timeout, the workload running.
via() {	# NAME CUTS [SEND ARGS...]
	T=$1
	local cuts=$2 q
	shift 2
	start_guest "$T" --size 16M --rate 1000 || { notok "$T: dt-guest did not start"; return 1; }
	sleep 1
	start_receiver "$T" --io-timeout 10 --reconnect-timeout "${RECTO:-60}" --wait \
		--exec "$GUEST" --resume --verify-only ||
		{ notok "$T: receiver did not listen"; return 1; }
	q=$((PORT + 500))
	in_src $PY "$top/tests/tools/cutproxy.py" $q $DST_IP:$PORT $cuts > "$work/$T.proxy.log" 2>&1 &
	local pp=$!
	wait_for "$work/$T.proxy.log" listening 30
	nsenter --net=/run/netns/$NS_SRC "$MIG" send --to 127.0.0.1:$q --token-file "$work/token" \
		--region "$GUEST_REGION" --json "$work/$T.src.json" --io-timeout 10 "$@" \
		> "$work/$T.src.log" 2>&1
	rc_send=$?
	wait $RECV_PID
	rc_recv=$?
	kill $pp 2>/dev/null
	wait $pp 2>/dev/null
	return 0
}
cut_ok() {
	check "$T: survived, dt-guest verified, one rejoin in the JSON" \
		'[ $rc_send = 0 ] && [ $rc_recv = 0 ] && grep -q "verify OK" "$work/$T.dst.log" && grep -q "cut at" "$work/$T.proxy.log" && [ "$(jq ".rejoins | length" "$work/$T.src.json")" = 1 ]'
	check "$T: sent again first: the cut round's pages less those that arrived" \
		'jq -e ".rejoins[0] | .resent_first == (if .cut_round_pages > 0 then .cut_round_pages - .cut_records else 0 end)" "$work/$T.src.json" > /dev/null'
	kill "$GUEST_PID" 2>/dev/null
	wait "$GUEST_PID" 2>/dev/null
}
seed=${DT_CUT_SEED:-$$}
echo "# cut offsets from seed $seed (DT_CUT_SEED)"
via cutclean "" && {
	check "cutclean: a clean run through the proxy" \
		'[ $rc_send = 0 ] && [ $rc_recv = 0 ] && grep -q "verify OK" "$work/$T.dst.log"'
	ctl=$(sed -n "s/conn 0 closed after //p" "$work/$T.proxy.log")
	data=$(sed -n "s/conn 1 closed after //p" "$work/$T.proxy.log")
	echo "# control $ctl bytes, data $data bytes"
}
i=0
for off in $($PY -c "import random, sys; random.seed(int(sys.argv[1]))
print(*sorted(random.randrange(1, int(sys.argv[2]) * 9 // 10) for _ in range(int(sys.argv[3]))))" \
	$seed ${data:-1000000} "$([ -n "${DT_TEST_FULL:-}" ] && echo 8 || echo 3)"); do
	i=$((i + 1))
	via cut$i "1:$off" || continue
	len=$(sed -n "s/conn 1 closed after //p" "$work/$T.proxy.log")
	if ! grep -q "cut at" "$work/$T.proxy.log" && [ "${len:-0}" -gt 10 ]; then
		# This run sent less than the clean one, all of it before $off:
		# cut it again within what such a run sends.
		echo "# $T: the stream ended at $len bytes, before $off: cut at $((off % (len * 9 / 10)))"
		kill "$GUEST_PID" 2>/dev/null
		wait "$GUEST_PID" 2>/dev/null
		via cut$i "1:$((off % (len * 9 / 10)))" || continue
	fi
	cut_ok
done
via cutcommit "0:$(( ${ctl:-400} - 64 + 1 + seed % 47 ))" && cut_ok
via cutack "0:dn:$(( 264 + 1 + seed % 47 ))" && {
	cut_ok
	check "cutack: round 0 counted as arrived, nothing sent again" \
		'[ "$(jq -r ".rejoins[0].rounds_whole" "$work/$T.src.json")" = 1 ] && [ "$(jq -r ".rejoins[0].resent_first" "$work/$T.src.json")" = 0 ]'
}
RECTO=3 via cutaway "1:1000000 refuse" --reconnect-timeout 3 && {
	check "cutaway: no reconnection within --reconnect-timeout: both exit 1" \
		'[ $rc_send = 1 ] && [ $rc_recv = 1 ] && grep -q "no reconnection within --reconnect-timeout 3 s" "$work/$T.src.log"'
	check "cutaway: the source workload runs and verifies" 'kill -0 $GUEST_PID && guest_verifies $T'
	kill "$GUEST_PID" 2>/dev/null
	wait "$GUEST_PID" 2>/dev/null
}

# SIGINT to the sender during pre-copy.
abort_setup sigint --size 16M --wss 2048 --rate 0 && {
	send_bg sigint --io-timeout 5 --downtime-limit 0 --max-rounds 100000
	sp=$SEND_PID
	wait_for "$work/sigint.src.log" "round 1:" 120
	kill -INT $sp
	wait $sp; rc_send=$?; wait $RECV_PID; rc_recv=$?
	check "sigint: the destination names the cause" 'grep -q "source aborted" "$work/sigint.dst.log"'
	aborted "SIGINT"
}

# The destination refuses the reservation (max_region_mb too small).
abort_setup refused --size 16M --rate 100 && {
	old=$(cat /sys/module/dirtytrack/parameters/max_region_mb)
	echo 8 > /sys/module/dirtytrack/parameters/max_region_mb
	send refused --io-timeout 5 > "$work/refused.src.log" 2>&1
	rc_send=$?; wait $RECV_PID; rc_recv=$?
	echo "$old" > /sys/module/dirtytrack/parameters/max_region_mb
	check "refused: the source shows the destination's reason" \
		'grep -q "stage 1 reservation: the destination refused: .*max_region_mb" "$work/refused.src.log"'
	aborted "reservation refused"
}

# A failure after the freeze (stage 3: --meta over 1 MiB): the workload is
# thawed and runs on.
abort_setup frozen --size 16M --rate 1000 && {
	head -c 1100000 /dev/zero > "$work/bigmeta"
	send frozen --io-timeout 5 --meta "$work/bigmeta" > "$work/frozen.src.log" 2>&1
	rc_send=$?; wait $RECV_PID; rc_recv=$?
	check "frozen: fails in stop-and-copy" \
		'grep -q "stage 3 stop-and-copy: --meta .*over 1 MiB" "$work/frozen.src.log"'
	aborted "failure after the freeze"
}

# A source with the wrong token is turned away; the receiver keeps waiting.
abort_setup token --size 16M --rate 100 && {
	od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$work/badtoken"
	in_src "$MIG" send --to "$DST_IP:$PORT" --token-file "$work/badtoken" --io-timeout 5 \
		--region "$GUEST_REGION" --json "$work/token.src.json" > "$work/token.src.log" 2>&1
	rc_send=$?
	check "token: refused for its token" 'grep -q "wrong token" "$work/token.src.log"'
	check "token: the receiver is still listening" 'kill -0 $RECV_PID'
	kill -TERM $RECV_PID; wait $RECV_PID; rc_recv=$?
	aborted "wrong token"
}

# A destination that speaks garbage.
abort_setup garbage --size 16M --rate 100 && {
	kill -TERM $RECV_PID; wait $RECV_PID
	PORT=$((PORT + 1))
	in_dst $PY -c '
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.settimeout(60); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept(); c.settimeout(60); c.sendall(os.urandom(4096)); c.recv(4096); c.close()' \
		"$DST_IP" $PORT &
	gp=$!
	# send retries a refused connection for --io-timeout s while python starts
	send garbage --io-timeout 30 > "$work/garbage.src.log" 2>&1
	rc_send=$?; rc_recv=1
	wait $gp
	check "garbage: the source rejects the message" \
		'grep -q "stage 0 pre-migration: waiting for CHALLENGE: Protocol error" "$work/garbage.src.log"'
	aborted "garbage destination"
}

# A garbage source is turned away and the receiver then takes a real one.
T=garbage_src
start_guest $T --size 16M --rate 1000 && start_receiver $T --io-timeout 10 --wait --exec "$GUEST" \
	--resume --verify-only && {
	in_src $PY -c '
import os, socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
c.recv(4096); c.sendall(os.urandom(300)); c.close()' "$DST_IP" $PORT
	sleep 0.5
	check "garbage_src: rejected, receiver still listening" \
		'kill -0 $RECV_PID && grep -q "rejected" "$work/$T.dst.log"'
	send $T --io-timeout 10 > "$work/$T.src.log" 2>&1
	rc_send=$?; wait $RECV_PID; rc_recv=$?
	check "garbage_src: then a real source migrates" \
		'[ $rc_send = 0 ] && [ $rc_recv = 0 ] && grep -q "verify OK" "$work/$T.dst.log"'
}

# Usage errors exit 2 and say why; --help is a manual.
check "usage: no subcommand exits 2" '"$MIG" >/dev/null 2>&1; [ $? = 2 ]'
check "usage: send without --to exits 2" '"$MIG" send --region /x >/dev/null 2>&1; [ $? = 2 ]'
check "usage: --help names every option and the exit statuses" \
	'"$MIG" --help | grep -q "EXIT STATUS" && for o in listen to token-file exec wait receiver \
	region pid freeze cgroup meta downtime-limit max-rounds timeout on-timeout cold keep-source \
	tracker sender io-timeout freeze-timeout json quiet control pause-timeout no-auto-converge \
	throttle-initial throttle-increment throttle-rounds no-settle throttle-with; do "$MIG" --help | grep -q -- "--$o" || exit 1; done'

for f in "$work"/*.log; do echo "# ---- $(basename "$f")"; tail -n 5 "$f" | sed 's/^/# /'; done > "$work/all.txt"
[ $status = 0 ] || cat "$work/all.txt"
echo "1..$n"
exit $status

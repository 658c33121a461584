# SPDX-License-Identifier: GPL-2.0
# Sourced by tests/vm/migrate_test.sh and tests/vm/demo.sh, in the test VM
# (and by tests/vm/two_hosts.sh on the host, for the JSON checks at the end):
# two network namespaces joined by veth stand for the source and the
# destination host; dt-guest runs in a cgroup v2 of its own (mounted on
# /run/dtcg: `ip netns exec` would remount /sys, so nsenter is used).
# Needs $top (the project root) and $work (a scratch directory).

MIG=$top/out/tools/dt-migrate
GUEST=$top/out/tools/dt-guest
NS_SRC=dtsrc NS_DST=dtdst
SRC_IP=10.212.0.1 DST_IP=10.212.0.2
CG=/run/dtcg
PORT=7070
# Debian's python3, not a shim that PATH may put first (pyenv's are shell
# scripts that take seconds under TCG).
PY=/usr/bin/python3

mig_setup() {
	ip netns add $NS_SRC && ip netns add $NS_DST &&
	ip link add dtm0 netns $NS_SRC type veth peer name dtm1 netns $NS_DST &&
	ip -n $NS_SRC addr add $SRC_IP/24 dev dtm0 && ip -n $NS_SRC link set dtm0 up &&
	ip -n $NS_DST addr add $DST_IP/24 dev dtm1 && ip -n $NS_DST link set dtm1 up &&
	ip -n $NS_SRC link set lo up && ip -n $NS_DST link set lo up || return 1
	mkdir -p $CG
	mountpoint -q $CG || mount -t cgroup2 none $CG || return 1
	od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$work/token"
}

# pin_probes: keep two blackout probes attached until the calling shell
# exits (unpin_probes, on EXIT, ends them), so that each migration's
# probes join tracepoints that have two already. The kernel patches code
# (static keys, static calls) only when a tracepoint goes from 0 to 1 or 1
# to 2 probes and back, and multi-threaded TCG may then run a stale
# translation and die of "Oops: int3" (tests/vm/run.sh -h, NOTES): dozens of
# migrations in a 2-vCPU boot would each risk it; this risks it once.
pin_probes() {
	local i j
	for i in 1 2; do
		"$top/out/tools/dt-blackout" --pid $$ --quiet --ready-file "$work/pin$i" \
			> "$work/pin$i.log" 2>&1 &
		PIN_PIDS="${PIN_PIDS:-} $!"
		for j in $(seq 300); do [ -s "$work/pin$i" ] && break; sleep 0.1; done
	done
	# They hold the module (its tracepoints): gone before the shell is, so
	# that the module can be unloaded right after.
	trap unpin_probes EXIT
}

unpin_probes() {
	[ -n "${PIN_PIDS:-}" ] || return 0
	kill $PIN_PIDS 2>/dev/null
	wait $PIN_PIDS 2>/dev/null
	PIN_PIDS=
}

# fields FILE PATH...: the JSON file's values at jq PATHs (state,
# rounds[0].pages), space-separated.
fields() {
	local f=$1
	shift
	jq -r "[$(printf '.%s,' "$@" | sed 's/,$//')] | map(tostring) | join(\" \")" "$f"
}

# walk_pauses NAME SOCKET OUT THAWED: a pause asked before the handshake
# has landed after it (its answer in OUT.c0.log); step through the later
# pause points of dt-migrate ctl: after the reservation, within round 0,
# between rounds, after the last round, where THAWED (an expression) must
# hold. check NAME: ... for each.
walk_pauses() {
	local name=$1 sock=$2 out=$3 thawed=$4 i
	check "$name: a pause asked before the handshake lands after it (stage 0)" \
		'[ "$(fields "$out.c0.log" state stage)" = "paused 0" ]'
	"$MIG" ctl "$sock" step --json > "$out.c1.log" 2>&1
	check "$name: step: paused after the reservation (stage 1)" \
		'[ "$(fields "$out.c1.log" state stage)" = "paused 1" ]'
	"$MIG" ctl "$sock" step --json > "$out.c2.log" 2>&1
	check "$name: step: paused within round 0 (stage 2)" \
		'[ "$(fields "$out.c2.log" stage paused_within_round rounds)" = "2 true 0" ]'
	for i in $(seq 100); do
		"$MIG" ctl "$sock" step --json > "$out.c3.log" 2>&1 || break
		[ "$(fields "$out.c3.log" paused_within_round)" = false ] && break
	done
	check "$name: step: paused between rounds (stage 2)" \
		'[ "$(fields "$out.c3.log" state stage paused_within_round)" = "paused 2 false" ]'
	for i in $(seq 100); do
		"$MIG" ctl "$sock" step --json > "$out.c4.log" 2>&1 || break
		[ "$(fields "$out.c4.log" stage)" = 3 ] && break
	done
	check "$name: step: paused after the last round (stage 3), the workload thawed" \
		'[ "$(fields "$out.c4.log" state stage)" = "paused 3" ] && eval "$thawed"'
}

in_src() { nsenter --net=/run/netns/$NS_SRC "$@"; }
in_dst() { nsenter --net=/run/netns/$NS_DST "$@"; }

# start_guest NAME [DT-GUEST ARGS...]: dt-guest in cgroup $CG/NAME, in a
# session of its own. Sets GUEST_PID and GUEST_REGION (/proc/PID/fd/N).
start_guest() {
	local name=$1 i
	shift
	mkdir -p "$CG/$name"
	rm -f "$work/$name.region" "$work/$name.status"
	bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec setsid "$@"' _ "$CG/$name" \
		"$GUEST" "$@" --region-out "$work/$name.region" \
		--status-file "$work/$name.status" > "$work/$name.guest.log" 2>&1 &
	GUEST_PID=$!
	for i in $(seq 300); do
		[ -s "$work/$name.region" ] && break
		sleep 0.1
	done
	GUEST_REGION=$(cat "$work/$name.region" 2>/dev/null)
	[ -n "$GUEST_REGION" ]
}

# guest_verifies NAME: the running dt-guest checks its own region (SIGUSR1).
guest_verifies() {
	local i
	rm -f "$work/$1.status"
	kill -USR1 "$GUEST_PID" || return 1
	for i in $(seq 300); do
		[ -s "$work/$1.status" ] && break
		sleep 0.1
	done
	grep -q 'verify OK' "$work/$1.status"
}

# start_receiver NAME [RECEIVE ARGS...]: dt-migrate receive in the
# destination namespace on a fresh port; sets RECV_PID and PORT.
start_receiver() {
	local name=$1 i
	shift
	PORT=$((PORT + 1))
	# A simple command, not a function, so that $! is dt-migrate itself
	# (nsenter execs it) and signals reach it.
	nsenter --net=/run/netns/$NS_DST "$MIG" receive --listen "$DST_IP:$PORT" \
		--token-file "$work/token" --json "$work/$name.dst.json" "$@" \
		> "$work/$name.dst.log" 2>&1 &
	RECV_PID=$!
	# It loads its blackout probe first: seconds on the debug kernel.
	for i in $(seq 1200); do
		in_dst ss -Hltn "sport = :$PORT" | grep -q LISTEN && return 0
		sleep 0.1
	done
	return 1
}

# send NAME [SEND ARGS...]: dt-migrate send from the source namespace.
send() {
	local name=$1
	shift
	nsenter --net=/run/netns/$NS_SRC "$MIG" send --to "$DST_IP:$PORT" \
		--token-file "$work/token" --region "$GUEST_REGION" \
		--json "$work/$name.src.json" "$@"
}

# send_bg NAME [SEND ARGS...]: the same in the background, output in
# $work/NAME.src.log; SEND_PID is dt-migrate's pid.
send_bg() {
	local name=$1
	shift
	nsenter --net=/run/netns/$NS_SRC "$MIG" send --to "$DST_IP:$PORT" \
		--token-file "$work/token" --region "$GUEST_REGION" \
		--json "$work/$name.src.json" "$@" > "$work/$name.src.log" 2>&1 &
	SEND_PID=$!
}

# The json FILE's blackout parts add up to its total.
parts_add_up() {
	$PY - "$1" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))["blackout"]
s = b["freeze_ms"] + b["final_round_ms"] + b["commitment_ms"] + b["activation_ms"]
sys.exit(0 if abs(s - b["total_ms"]) < 0.01 and b["total_ms"] > 0 else 1)
EOF
}
# The json FILE's eBPF blackout (the probes on both sides): its parts add
# up, and it lies within what dt-migrate timed on its own clock: it begins
# at the workload's last run (between the freeze request and dt-migrate
# seeing it frozen) and ends at the exec (after VERIFIED reached the source,
# before ACTIVATED did), give or take the clock offset's uncertainty and a
# scheduler tick (4 ms at HZ 250).
ebpf_consistent() {
	$PY - "$1" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))["blackout"]
e = b.get("ebpf")
if not e:
    print("# no eBPF blackout in the JSON"); sys.exit(1)
parts = ("freeze_detection_ms", "final_round_ms", "final_transfer_ms", "commitment_ms",
         "activation_ms")
slack = e["uncertainty_ms"] + 4.0
lo = b["final_round_ms"] + b["commitment_ms"] - slack
hi = b["total_ms"] + slack
print(f"# eBPF blackout {e['total_ms']:.3f} ms; dt-migrate's own: {b['total_ms']:.3f} ms; "
      f"bounds [{lo:.3f}, {hi:.3f}]")
ok = abs(sum(e[p] for p in parts) - e["total_ms"]) < 0.01 and lo <= e["total_ms"] <= hi
sys.exit(0 if ok else 1)
EOF
}

# wait_for FILE PATTERN SECONDS (of the clock: a loaded TCG guest forks slowly)
wait_for() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	grep -q "$2" "$1" 2>/dev/null
}
# gone PID: exited (or a zombie)
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1")" = Z ]; }

# TAP for the suites (migrate_test.sh, qemu_test.sh): ok NAME, notok NAME
# FILE... (with the FILEs' tails), check NAME COND... (on failure, the
# logs and serial consoles of the run $T).
n=0 status=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1)) status=1
	echo "not ok $n - $1"
	shift
	for f in "$@"; do
		[ -f "$f" ] && sed "s|^|#   $(basename "$f"): |" "$f" | tail -n 15
	done
}
check() {
	local name=$1
	shift
	if eval "$*"; then
		ok "$name"
	elif [ -n "${T:-}" ]; then	# a VM test's: the logs of test $T
		notok "$name: $*" "$work/$T".*log "$work/$T".ser*
	else				# the host test's: every log
		notok "$name: $*" "$work"/*.log
	fi
}

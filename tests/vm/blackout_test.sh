#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dt-blackout in the test VM (guest-tests.sh "blackout"): a workload that is
# always runnable is paused by the test, which times the pause itself on
# the same clock (CLOCK_TAI); dt-blackout's figure must fall within what the
# test saw, give or take a scheduler tick. Then the bad uses: no such
# process, a process that exits while watched, no permission; none may
# leave BPF programs behind. TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BO=$top/out/tools/dt-blackout SPIN=$top/out/tests/spinner PY=/usr/bin/python3
work=$(mktemp -d)
# cgroup v2, mounted where `ip netns` and others leave it alone (as migrate_lib.sh does).
# The spinner sits in a child of the cgroup watched and frozen: freezing a
# cgroup freezes those below it, and the probe must see them.
CGROOT=/run/dtcg CG=/run/dtcg/dtbo
trap 'kill $(jobs -p) 2>/dev/null; sleep 0.2; rmdir $CG/leaf $CG 2>/dev/null; rm -rf "$work"' EXIT
n=0 fail=0
check() {	# check DESCRIPTION COND: eval COND; on failure show the logs
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=$((fail + 1))
		for f in "$work"/*.log; do [ -f "$f" ] && sed "s|^|#   $(basename "$f"): |" "$f" | tail -n 6; done
	fi
}
# The tick: CONFIG_HZ of the booted kernel, if its config is at hand.
hz=$(sed -n 's/^CONFIG_HZ=//p' "/boot/config-$(uname -r)" 2>/dev/null)
tick_ns=$((1000000000 / ${hz:-250}))
echo "# tick ${tick_ns} ns (HZ ${hz:-250, assumed})"
leftover() { bpftool prog show 2>/dev/null | grep -cE 'btf_sched_switch|raw_sched_switch'; }

# pause KIND TARGET...: start dt-blackout on TARGET, pause the spinner
# (freeze: its cgroup; stop: SIGSTOP) for 0.5 s, timing it; then check.
pause() {
	local kind=$1
	shift
	rm -f "$work/ready"
	"$BO" "$@" --count 1 --duration 120 --json "$work/$kind.json" --ready-file "$work/ready" \
		> "$work/$kind.log" 2>&1 &
	local bp=$!
	for i in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
	$PY - "$kind" "$SPID" "$work/count" $CG > "$work/$kind.own" <<'PY'
import mmap, os, signal, struct, sys, time
kind, pid, count, cg = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
now = lambda: time.clock_gettime_ns(time.CLOCK_TAI)
f = open(count, "r+b"); m = mmap.mmap(f.fileno(), 4096)
val = lambda: struct.unpack_from("Q", m)[0]
def parked():
    if kind == "freeze":
        return "frozen 1" in open(f"{cg}/cgroup.events").read()
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T"
req = now()
if kind == "freeze": open(f"{cg}/cgroup.freeze", "w").write("1")
else: os.kill(pid, signal.SIGSTOP)
while not parked(): pass
seen_parked = now()
time.sleep(0.5)
v = val()
thaw = now()
if kind == "freeze": open(f"{cg}/cgroup.freeze", "w").write("0")
else: os.kill(pid, signal.SIGCONT)
while val() == v: pass
seen_running = now()
print(req, seen_parked, thaw, seen_running)
PY
	wait $bp
	rc=$?
	read -r req seen_parked thaw seen_running < "$work/$kind.own"
	check "$kind: dt-blackout exits 0 after one pause" '[ $rc = 0 ]'
	check "$kind: one pause, $( [ $kind = freeze ] && echo frozen || echo stopped )" \
		'$PY -c "import json,sys; p=json.load(open(sys.argv[1]))[\"pauses\"]; sys.exit(len(p) != 1 or p[0][\"how\"] != sys.argv[2])" "$work/$kind.json" $( [ $kind = freeze ] && echo frozen || echo stopped )'
	# Last run: after the request, before the test saw it parked (+ a tick).
	# Ran again: after the thaw, before the test saw it count (+ a tick).
	check "$kind: last run and first run again fall within the test's own timing" \
		'$PY - "$work/$kind.json" $req $seen_parked $thaw $seen_running $tick_ns <<"PY"
import json, sys
p = json.load(open(sys.argv[1]))["pauses"][0]
req, parked, thaw, running, tick = map(int, sys.argv[2:])
ok = req - tick <= p["last_run_ns"] <= parked + tick and thaw <= p["ran_again_ns"] <= running + tick
b = p["blackout_ms"] * 1e6
print(f"# blackout {b/1e6:.3f} ms; the test: parked {(thaw-parked)/1e6:.3f} ms, "
      f"request to running {(running-req)/1e6:.3f} ms")
ok = ok and (thaw - parked) - tick <= b <= (running - req) + tick
sys.exit(not ok)
PY'
}

# Two more threads that sleep and wake every millisecond: stopping and
# freezing wake them to park them, which must not count as pauses.
"$SPIN" "$work/count" 2 &
SPID=$!
sleep 0.5
pause stop --pid $SPID
mkdir -p $CGROOT
if { mountpoint -q $CGROOT || mount -t cgroup2 none $CGROOT; } && mkdir -p $CG/leaf &&
	echo $SPID > $CG/leaf/cgroup.procs; then
	pause freeze --cgroup $CG
else
	n=$((n + 1)); echo "not ok $n - freeze: no cgroup v2 at $CGROOT"; fail=$((fail + 1))
fi
kill $SPID
wait $SPID 2>/dev/null

# --gap: a workload that sleeps 0.8 s of its own accord (as a stopped QEMU's
# vCPU threads wait on a condition variable) is no pause without --gap,
# and an "idle" one with --gap 300, within the sleep as the test timed it.
gap() {	# gap NAME [DT-BLACKOUT ARGS...]
	local name=$1
	shift
	rm -f "$work/ready" "$work/go"
	$PY - "$work/go" "$work/$name.own" <<'PY' &
import os, sys, time
now = lambda: time.clock_gettime_ns(time.CLOCK_TAI)
while not os.path.exists(sys.argv[1]): pass
end = time.time() + 0.2
while time.time() < end: pass
t1 = now(); time.sleep(0.8); t2 = now()
end = time.time() + 0.2
while time.time() < end: pass
open(sys.argv[2], "w").write(f"{t1} {t2}\n")
PY
	local wp=$!
	"$BO" --pid $wp "$@" --json "$work/$name.json" --ready-file "$work/ready" \
		> "$work/$name.log" 2>&1 &
	local bp=$!
	for i in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
	touch "$work/go"
	wait $wp
	kill -INT $bp 2>/dev/null
	wait $bp
}
gap nogap
check "no --gap: a sleep of its own is no pause" \
	'[ "$(jq ".pauses | length" "$work/nogap.json")" = 0 ]'
gap gap --gap 300
read -r t1 t2 < "$work/gap.own"
check "--gap 300: the 0.8 s sleep is one idle pause, within the test's timing" \
	'$PY - "$work/gap.json" $t1 $t2 $tick_ns <<"PY"
import json, sys
p = [x for x in json.load(open(sys.argv[1]))["pauses"] if x["blackout_ms"] >= 700]
t1, t2, tick = map(int, sys.argv[2:])
ok = len(p) == 1 and p[0]["how"] == "idle"
# The workload runs from t1 until it sleeps (and a busy host can preempt
# the VM meanwhile), so its last run may come well after t1: the pause
# must lie within [t1, t2], give or take a tick.
ok = ok and t1 - tick <= p[0]["last_run_ns"] and p[0]["ran_again_ns"] <= t2 + tick
b = p[0]["blackout_ms"] if p else 0
print(f"# idle pause {b:.3f} ms; the test slept {(t2-t1)/1e6:.3f} ms")
sys.exit(not ok)
PY'
check "no BPF programs left after the runs" '[ "$(leftover)" = 0 ]'

# Bad use.
"$BO" --pid 4000000 > "$work/bad.log" 2>&1
rc=$?
check "no such process: exit 1, says so" '[ $rc = 1 ] && grep -q "no process 4000000" "$work/bad.log"'
sleep 300 &
sp=$!
rm -f "$work/ready"
"$BO" --pid $sp --ready-file "$work/ready" > "$work/bad.log" 2>&1 &
bp=$!
for i in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
kill $sp
wait $bp
rc=$?
check "the process exits while watched: exit 1, says so" \
	'[ $rc = 1 ] && grep -q "exited while watched" "$work/bad.log"'
setpriv --reuid=65534 --regid=65534 --clear-groups "$BO" --pid 1 > "$work/bad.log" 2>&1
rc=$?
check "not root: exit 1, says root is needed" '[ $rc = 1 ] && grep -q "needs root" "$work/bad.log"'
"$BO" > "$work/bad.log" 2>&1
rc=$?
check "no workload: usage error 2" '[ $rc = 2 ] && grep -q "no workload" "$work/bad.log"'
"$BO" --help > "$work/help.log" 2>&1
check "--help is a manual" 'grep -q "^EXIT STATUS" "$work/help.log" && grep -q -- "--comm PREFIX" "$work/help.log"'
check "no BPF programs left after the bad uses" '[ "$(leftover)" = 0 ]'
echo "1..$n"
echo "# $((n - fail)) passed, $fail failed"
[ $fail = 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench-migrate, in the test VM: dt-guest of each size at one dirty
# rate, migrated between two network namespaces with each tracker, all in
# one boot. One JSON line per run in $DT_OUT/migrate.jsonl (dt-migrate's
# own --json plus size, tracker and verdict); scripts/bench-migrate-report.py
# makes the summary. Every run must verify on the destination. Then
# auto-converge's two levers, compared (below; DT_BENCH_THROTTLE_REPS=0
# skips it), and a QEMU guest moved by QEMU alone and by dt-migrate
# (tests/vm/bench_qemu.sh; DT_BENCH_QEMU_REPS=0 skips it).
# Usage: bench_migrate.sh SIZES TRACKERS   (e.g. "256M 1G 4G" "dirtytrack pagemap-scan soft-dirty")
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
. "$top/tests/vm/migrate_lib.sh"
sizes=${1-256M 1G 4G} trackers=${2-dirtytrack pagemap-scan soft-dirty}
RATE=${DT_BENCH_RATE:-2000} WSS=${DT_BENCH_WSS:-8192} REPS=${DT_BENCH_REPS:-2}
out=${DT_OUT:?}/migrate.jsonl
: > "$out"
mig_setup || exit 1
pin_probes
status=0
for size in $sizes; do
	for tracker in $trackers; do
		for rep in $(seq "$REPS"); do
			T=$tracker-$size-$rep
			case $tracker in
			dirtytrack) mem=() ;;
			pagemap-scan) mem=(--memfd --uffd-wp) ;;
			*) mem=(--memfd) ;;
			esac
			start_guest "$T" "${mem[@]}" --size "$size" --wss "$WSS" --rate "$RATE" ||
				{ echo "$T: dt-guest did not start"; status=1; continue; }
			# Let the guest touch its whole working set first.
			sleep $((WSS / RATE + 2))
			start_receiver "$T" --io-timeout 60 --wait --exec "$GUEST" --resume --verify-only ||
				{ echo "$T: no receiver"; status=1; continue; }
			# Forced after --max-rounds: every run ends in a blackout to compare,
			# converged or not (the JSON says which). Trackers alone: no
			# auto-converge, which slows the workload differently for each.
			send "$T" --io-timeout 60 --tracker "$tracker" --quiet --max-rounds 15 \
				--on-timeout force --no-auto-converge > "$work/$T.src.log" 2>&1
			rs=$?
			wait "$RECV_PID"
			rr=$?
			ok=false
			[ $rs = 0 ] && [ $rr = 0 ] && grep -q "verify OK" "$work/$T.dst.log" && ok=true
			$ok || { status=1; tail -n 5 "$work/$T".*.log; }
			$PY - "$work/$T.src.json" "$size" "$tracker" "$ok" >> "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j.update(size=sys.argv[2], tracker=sys.argv[3], verified=sys.argv[4] == "true")
print(json.dumps(j))
PY
			echo "$T: verified=$ok $(tail -n 1 "$work/$T.src.log")"
			kill "$GUEST_PID" 2>/dev/null
			wait "$GUEST_PID" 2>/dev/null
		done
	done
done
# Auto-converge: the module's write-fault budget against the cgroup's
# cpu.max. A dt-guest writing 2000 pages/s over 1024 pages, and a reader
# thread checksumming pages as fast as it can, behind a link of 8 Mbit/s
# (about 240 pages/s): pre-copy converges only once the workload is slowed.
# The userspace sender copies: the module's zero-copy one would make a
# writer wait for its page in flight, which slows writers on its own.
# Each run samples the guest's --progress-out counters for 3 s before the
# migration (the baseline) and over the migration; one JSON line per run
# in $DT_OUT/throttle.jsonl.
TREPS=${DT_BENCH_THROTTLE_REPS:-2}
tout=$DT_OUT/throttle.jsonl
: > "$tout"
# progress NAME: "steps reads" from the guest's --progress-out file
progress() {
	$PY -c 'import struct,sys; print(*struct.unpack("<QQ", open(sys.argv[1], "rb").read(16)))' \
		"$work/$1.progress"
}
[ "$TREPS" = 0 ] || {
	echo +cpu > $CG/cgroup.subtree_control
	in_src tc qdisc add dev dtm0 root netem rate 8mbit
}
for rep in $(seq "$TREPS"); do
	for with in module cpu-max; do
		T=throttle-$with-$rep
		start_guest "$T" --size 8M --wss 1024 --rate 2000 --readers 1 \
			--progress-out "$work/$T.progress" ||
			{ echo "$T: dt-guest did not start"; status=1; continue; }
		sleep 1
		p0=$(progress "$T") t0=$(date +%s.%N)
		sleep 3
		p1=$(progress "$T") t1=$(date +%s.%N)
		start_receiver "$T" --io-timeout 60 --wait --exec "$GUEST" --resume --verify-only ||
			{ echo "$T: no receiver"; status=1; continue; }
		pm=$(progress "$T")
		send "$T" --io-timeout 60 --quiet --max-rounds 30 --on-timeout force \
			--throttle-with "$with" --sender user > "$work/$T.src.log" 2>&1
		rs=$?
		# The source guest is gone (killed at activation): its counters
		# stopped at the freeze.
		p2=$(progress "$T")
		wait "$RECV_PID"
		rr=$?
		ok=false
		[ $rs = 0 ] && [ $rr = 0 ] && grep -q "verify OK" "$work/$T.dst.log" && ok=true
		$ok || { status=1; tail -n 5 "$work/$T".*.log; }
		$PY - "$work/$T.src.json" "$with" "$ok" "$p0" "$p1" "$t0" "$t1" "$pm" "$p2" \
			>> "$tout" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
p0, p1, pm, p2 = (list(map(int, a.split())) for a in sys.argv[4:6] + sys.argv[8:10])
base_s = float(sys.argv[7]) - float(sys.argv[6])
# Over the migration up to the freeze: its total less the blackout.
mig_s = (j["total_ms"] - j["blackout"]["total_ms"]) / 1e3
print(json.dumps(dict(throttle_with=sys.argv[2], verified=sys.argv[3] == "true",
      converged=j.get("converged"), total_ms=j["total_ms"], rounds=j["total_rounds"],
      blackout_ms=j["blackout"]["total_ms"],
      max_level=max(r["throttle_level"] for r in j["rounds"]),
      levels=[r["throttle_level"] for r in j["rounds"]],
      round_pages=[r["pages"] for r in j["rounds"]],
      base_writes_per_s=(p1[0] - p0[0]) / base_s, base_reads_per_s=(p1[1] - p0[1]) / base_s,
      writes_per_s=(p2[0] - pm[0]) / mig_s, reads_per_s=(p2[1] - pm[1]) / mig_s,
      migration_s=mig_s)))
PY
		echo "$T: verified=$ok $(tail -n 1 "$tout")"
		kill "$GUEST_PID" 2>/dev/null
		wait "$GUEST_PID" 2>/dev/null
	done
done
[ "$TREPS" = 0 ] || in_src tc qdisc del dev dtm0 root
# A QEMU guest, QEMU alone against dt-migrate (DT_BENCH_QEMU_REPS=0 skips it).
if [ "${DT_BENCH_QEMU_REPS:-2}" != 0 ]; then
	NO_SETUP=1 bash "$top/tests/vm/bench_qemu.sh" || status=1
fi
exit $status

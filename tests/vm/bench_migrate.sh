#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench-migrate, in the test VM: dt-guest of each size at one dirty
# rate, migrated between two network namespaces with each tracker, all in
# one boot. One JSON line per run in $DT_OUT/migrate.jsonl (dt-migrate's
# own --json plus size, tracker and verdict); scripts/bench-migrate-report.py
# makes the summary. Every run must verify on the destination.
# Usage: bench_migrate.sh SIZES TRACKERS   (e.g. "256M 1G 4G" "dirtytrack pagemap-scan soft-dirty")
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
. "$top/tests/vm/migrate_lib.sh"
sizes=${1:-256M 1G 4G} trackers=${2:-dirtytrack pagemap-scan soft-dirty}
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
exit $status

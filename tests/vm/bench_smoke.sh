#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# In the test VM: dt-bench --smoke and the report on its output, so that the
# benchmark and its report never rot. TAP on stdout.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${DT_OUT:?}/bench-smoke
rm -rf "$out"
echo "1..6"
sysctl -qw vm.max_map_count=4194304
"$top/out/tools/dt-bench" -o "$out" --smoke --accel TCG 2>"$out.log"
rc=$?
if [ $rc = 0 ]; then echo "ok 1 - dt-bench --smoke exits 0"; else
	echo "not ok 1 - dt-bench --smoke exits $rc"; sed 's/^/# /' "$out.log" | tail -n 30; fi
# Every figure, and every tracker backend in each tracker figure.
missing=$(python3 - "$out/raw.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = {(f, b) for f in ("fault", "clean_read", "harvest", "harvest_flat", "precopy")
        for b in ("dirtytrack", "uffd-wp", "soft-dirty", "mprotect")}
want |= {("send", b) for b in ("module-stream", "copy-send", "writev", "vmsplice-splice")}
want |= {("receive", b) for b in ("module-receive", "recv-into-mapping")}
want |= {("precopy:round_us_per_page", b) for b in ("dirtytrack", "uffd-wp", "soft-dirty", "mprotect")}
have = {(r["figure"], r["backend"]) for r in rows if "samples" in r}
have |= {(r["figure"] + ":" + r["metric"], r["backend"]) for r in rows if "samples" in r}
print(" ".join(f"{f}/{b}" for f, b in sorted(want - have)))
PY
)
if [ -z "$missing" ]; then echo "ok 2 - every figure has a number for every backend"; else
	echo "not ok 2 - no number for: $missing"; fi
# The link figures, over loopback here (tests/vm/bench_link.sh runs them
# between two VMs): a server, and a peer run whose rows join the report's.
"$top/out/tools/dt-bench" --serve 127.0.0.1:7071 2>"$out.serve.log" &
serve=$!
for _ in $(seq 50); do ss -Hltn "sport = :7071" | grep -q LISTEN && break; sleep 0.1; done
"$top/out/tools/dt-bench" -o "$out/link" --smoke --peer 127.0.0.1:7071 --accel TCG 2>"$out.link.log"
rc=$?
[ $rc = 0 ] || kill $serve 2>/dev/null	# the peer's quit never came
wait $serve
src=$?
if [ $rc = 0 ] && [ $src = 0 ]; then echo "ok 3 - dt-bench --peer and --serve exit 0"; else
	echo "not ok 3 - dt-bench --peer exits $rc, --serve $src"
	sed 's/^/# /' "$out.link.log" "$out.serve.log" | tail -n 30; fi
missing=$(python3 - "$out/link/raw.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = {("send_link", b) for b in ("module-stream", "copy-send", "writev", "vmsplice-splice")}
want |= {("receive_link", b) for b in ("module-receive", "recv-into-mapping")}
want |= {("writer_stall", b) for b in ("in-flight", "protected")}
have = {(r["figure"], r["backend"]) for r in rows if "samples" in r and min(r["samples"]) > 0}
print(" ".join(f"{f}/{b}" for f, b in sorted(want - have)))
PY
)
if [ -z "$missing" ]; then echo "ok 4 - every link figure has a positive number for every backend"; else
	echo "not ok 4 - no number for: $missing"; fi
cat "$out/link/raw.jsonl" >>"$out/raw.jsonl" 2>/dev/null
python3 "$top/scripts/bench-report.py" "$out" >"$out.report" 2>&1
rc=$?
if [ $rc = 0 ]; then echo "ok 5 - bench-report.py exits 0"; else
	echo "not ok 5 - bench-report.py exits $rc"; sed 's/^/# /' "$out.report"; fi
if grep -q '^## Targets' "$out/summary.md" 2>/dev/null && [ -s "$out/results.json" ]; then
	echo "ok 6 - summary.md has the targets, results.json is written"
else
	echo "not ok 6 - summary.md or results.json missing"
fi

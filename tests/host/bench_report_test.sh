#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/bench-report.py on a hand-written run covering every figure. TAP.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 fail=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=$((fail + 1)); fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
report=scripts/bench-report.py
py=$(python3 -c 'import sys; print(sys.executable)')
run=$tmp/run
mkdir "$run"

cat >"$run/meta.json" <<'EOF'
{"kernel": "6.12.117+deb12-amd64", "machine": "Test CPU (host)", "cpus": 2, "mem_mb": 8192, "accel": "TCG", "date": "2026-11-22T20:00:00Z", "smoke": true, "seed": 1, "git": "abc1234"}
EOF
# Hand-computed expectations:
#  fault threads=1: dirtytrack 2, uffd-wp 4, mprotect 5 -> ratio 0.5 (uffd-wp),
#    mprotect 5/2 = 2.5 (dirtytrack); target (a) 0.5 <= 1.2: met
#  fault threads=2: dirtytrack 10 / uffd-wp 5 = 2 > 1.2: (b) not met
#  clean_read: dirtytrack 30 / uffd-wp 3 = 10 > 1.0: issue 14 not met
#  harvest 1024 MB, 0.01, uniform: 1 / 4 = 0.25 <= 0.5: (c) met
#  harvest_flat: dirtytrack 1.2 / 1.0 = 1.2 <= 1.5: (d) met
#  send: 8 / 2 = 4 >= 2: (e) met; vmsplice-splice failed: (f) not measured;
#    cpu 0.1 / 0.5 = 0.2 <= 0.5: (g) met
#  receive: 6 / 5 = 1.2 < 1.5: (h) not met
#  send_link: 3 / 2 = 1.5 >= 1.3: met; cpu 0.5 / 1.0 = 0.5 <= 0.6: met
#  receive_link cpu: 0.8 / 1.0 = 0.8 > 0.7: not met
#  writer_stall: in-flight 15 / protected 10 = 1.5 <= 1.5: met
cat >"$run/raw.jsonl" <<'EOF'
{"figure": "fault", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "dirtytrack", "params": {"threads": 1, "region_mb": 1024}, "samples": [2, 3, 2]}
{"figure": "fault", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "uffd-wp", "params": {"threads": 1, "region_mb": 1024}, "samples": [4, 5, 4]}
{"figure": "fault", "metric": "write_fault_ns", "backend": "soft-dirty", "params": {"threads": 1, "region_mb": 1024}, "unavailable": "CONFIG_MEM_SOFT_DIRTY is not set"}
{"figure": "fault", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "mprotect", "params": {"threads": 1, "region_mb": 1024}, "samples": [5, 6, 5]}
{"figure": "fault", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "dirtytrack", "params": {"threads": 2, "region_mb": 1024}, "samples": [10, 11, 9]}
{"figure": "fault", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "uffd-wp", "params": {"threads": 2, "region_mb": 1024}, "samples": [5, 5, 6]}
{"figure": "clean_read", "metric": "clean_read_ns", "unit": "ns", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 64}, "samples": [30, 31, 29]}
{"figure": "clean_read", "metric": "clean_read_ns", "unit": "ns", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 64}, "samples": [3, 3, 4]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 256, "fraction": 0.01, "pattern": "uniform"}, "samples": [0.5, 0.6, 0.55]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 256, "fraction": 0.01, "pattern": "uniform"}, "samples": [1.0, 1.1]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 1024, "fraction": 0.01, "pattern": "uniform"}, "samples": [1.0, 1.0, 1.2]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 1024, "fraction": 0.01, "pattern": "uniform"}, "samples": [4.0, 3.9, 4.5]}
{"figure": "harvest", "metric": "harvest_ms", "backend": "mprotect", "params": {"region_mb": 1024, "fraction": 0.01, "pattern": "uniform"}, "failed": "reported 0 dirty pages, expected 2621"}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 1024, "fraction": 0.1, "pattern": "uniform"}, "samples": [9.0, 9.5, 8.8]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 1024, "fraction": 0.1, "pattern": "uniform"}, "samples": [30.0, 31.0, 29.0]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 1024, "fraction": 1.0, "pattern": "all"}, "samples": [80.0, 82.0, 81.0]}
{"figure": "harvest", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 1024, "fraction": 1.0, "pattern": "all"}, "samples": [250.0, 260.0, 255.0]}
{"figure": "harvest_flat", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 256, "dirty_pages": 256}, "samples": [1.0, 1.1, 0.9]}
{"figure": "harvest_flat", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 4096, "dirty_pages": 256}, "samples": [1.2, 1.3, 1.1]}
{"figure": "harvest_flat", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 256, "dirty_pages": 256}, "samples": [1.0]}
{"figure": "harvest_flat", "metric": "harvest_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 4096, "dirty_pages": 256}, "samples": [16.0]}
{"figure": "send", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "module-stream", "params": {"region_mb": 1024}, "samples": [8.0, 7.5, 8.5]}
{"figure": "send", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "copy-send", "params": {"region_mb": 1024}, "samples": [2.0, 2.1, 1.9]}
{"figure": "send", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "writev", "params": {"region_mb": 1024}, "samples": [3.0]}
{"figure": "send", "metric": "throughput_gibps", "backend": "vmsplice-splice", "params": {"region_mb": 1024}, "failed": "short splice count"}
{"figure": "send", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "module-stream", "params": {"region_mb": 1024}, "samples": [0.1, 0.1, 0.2]}
{"figure": "send", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "copy-send", "params": {"region_mb": 1024}, "samples": [0.5, 0.6, 0.4]}
{"figure": "receive", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "module-receive", "params": {"region_mb": 1024}, "samples": [6.0, 6.0, 5.0]}
{"figure": "receive", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "recv-into-mapping", "params": {"region_mb": 1024}, "samples": [5.0, 5.0, 4.0]}
{"figure": "receive", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "module-receive", "params": {"region_mb": 1024}, "samples": [0.2]}
{"figure": "receive", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "recv-into-mapping", "params": {"region_mb": 1024}, "samples": [0.3]}
{"figure": "precopy", "metric": "cycle_ms", "unit": "ms", "better": "lower", "backend": "dirtytrack", "params": {"region_mb": 1024, "rate_pps": 10000}, "samples": [3.0, 3.1]}
{"figure": "send_link", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "module-stream", "params": {"region_mb": 256, "link": "virtio-net"}, "samples": [3.0, 3.0]}
{"figure": "send_link", "metric": "throughput_gibps", "unit": "GiB/s", "better": "higher", "backend": "copy-send", "params": {"region_mb": 256, "link": "virtio-net"}, "samples": [2.0, 2.0]}
{"figure": "send_link", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "module-stream", "params": {"region_mb": 256, "link": "virtio-net"}, "samples": [0.5, 0.5]}
{"figure": "send_link", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "copy-send", "params": {"region_mb": 256, "link": "virtio-net"}, "samples": [1.0, 1.0]}
{"figure": "receive_link", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "module-receive", "params": {"region_mb": 256, "link": "virtio-net"}, "samples": [0.8]}
{"figure": "receive_link", "metric": "cpu_s_per_gib", "unit": "s/GiB", "better": "lower", "backend": "recv-into-mapping", "params": {"region_mb": 256, "link": "virtio-net"}, "samples": [1.0]}
{"figure": "writer_stall", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "in-flight", "params": {"region_mb": 64, "link": "virtio-net"}, "samples": [15, 15, 16]}
{"figure": "writer_stall", "metric": "write_fault_ns", "unit": "ns", "better": "lower", "backend": "protected", "params": {"region_mb": 64, "link": "virtio-net"}, "samples": [10, 9, 10]}
{"figure": "precopy", "metric": "cycle_ms", "unit": "ms", "better": "lower", "backend": "uffd-wp", "params": {"region_mb": 1024, "rate_pps": 10000}, "samples": [6.0, 6.2]}
{"figure": "precopy", "metric": "cycle_ms", "backend": "soft-dirty", "params": {"region_mb": 1024, "rate_pps": 10000}, "unavailable": "CONFIG_MEM_SOFT_DIRTY is not set"}
EOF
lines=$(grep -c . "$run/raw.jsonl")

# Asserts on results.json; $1 is a Python expression over r (the results list).
result() { "$py" -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"]; sys.exit(not eval(sys.argv[2]))' "$run/results.json" "$1"; }
fault() { echo "next(x for x in r if x['figure'] == 'fault' and x['params']['threads'] == 1 and x['backend'] == '$1')"; }

echo "TAP version 13"
echo "1..20"
"$report" "$run" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a full run exits 0" '[ $rc = 0 ]'
check "stdout names summary.md and counts the verdicts" \
	'grep -qx "$run/summary.md" "$tmp/out" &&
	 grep -qx "targets: 8 met, 4 not met, 1 not measured" "$tmp/out"'
check "results.json parses and has one object per line ($lines)" "result 'len(r) == $lines'"
check "module row: median 2 over peers 4 and 5 gives ratio 0.5 to uffd-wp" \
	"result \"($(fault dirtytrack))['peer'] == 'uffd-wp' and ($(fault dirtytrack))['ratio_to_peer'] == 0.5\""
check "other row: mprotect 5 over module 2 gives 2.5 to dirtytrack" \
	"result \"($(fault mprotect))['peer'] == 'dirtytrack' and ($(fault mprotect))['ratio_to_peer'] == 2.5\""
check "unavailable and failed rows are kept without numbers" \
	"result \"($(fault soft-dirty)).get('unavailable') and 'median' not in $(fault soft-dirty) and sum('failed' in x for x in r) == 2\""
check "summary.md has the header and a Targets section" \
	'grep -q "Accelerator: TCG" "$run/summary.md" && grep -q "smoke run" "$run/summary.md" &&
	 grep -q "^## Targets" "$run/summary.md"'
check "target (a) is met" 'grep "Issue 3 (a)" "$run/summary.md" | grep -q "| met |$"'
check "target (b) is not met" 'grep "Issue 3 (b)" "$run/summary.md" | grep -q "| not met |$"'
check "the clean-read target is not met, at ratio 10" \
	'grep "Issue 14: clean-page read" "$run/summary.md" | grep -q "10.*| not met |$"'
check "the link's writer-stall target is met at 1.5, its receive CPU target is not" \
	'grep "Issue 14: write to a page in flight" "$run/summary.md" | grep -q "1.5.*| met |$" &&
	 grep "Issue 14: receive CPU per GiB over the link" "$run/summary.md" | grep -q "0.8.*| not met |$"'
check "the link's send targets are met" \
	'[ $(grep -c "Issue 14: send.*over the link.*| met |$" "$run/summary.md") = 2 ]'
check "target (f) is not measured, with the failure" \
	'grep "Issue 4 (f)" "$run/summary.md" | grep -q "vmsplice-splice failed: short splice count.*| not measured |$"'
check "tables show n/a, FAILED, median (min) and the module ratio" \
	'grep -q "| 1 | 1024 | 2.00 (2.00) | 4.00 (4.00) | n/a | 5.00 (5.00) | 0.500 (uffd-wp) |" "$run/summary.md" &&
	 grep -q "| FAILED |" "$run/summary.md"'
if command -v gnuplot >/dev/null; then
	check "the three PNGs are drawn" \
		'(for p in harvest_vs_size harvest_vs_fraction transfer; do [ -s "$run/$p.png" ] || exit 1; done)'
else
	skip "the three PNGs are drawn" "gnuplot not installed"
fi
mkdir "$tmp/nogp" "$tmp/emptybin" && cp "$run/meta.json" "$run/raw.jsonl" "$tmp/nogp/"
PATH="$tmp/emptybin" "$py" "$report" "$tmp/nogp" >/dev/null 2>"$tmp/err"; rc=$?
check "without gnuplot: exit 0, a warning, and the summary says plots were skipped" \
	'[ $rc = 0 ] && grep -q "gnuplot not found" "$tmp/err" &&
	 grep -q "Plots skipped" "$tmp/nogp/summary.md" && ! ls "$tmp/nogp/"*.png 2>/dev/null'
mkdir "$tmp/bad" && cp "$run/meta.json" "$tmp/bad/" && head -2 "$run/raw.jsonl" >"$tmp/bad/raw.jsonl"
echo '{"figure": "fault", "metric": ' >>"$tmp/bad/raw.jsonl"
"$report" "$tmp/bad" >/dev/null 2>"$tmp/err"; rc=$?
check "a malformed raw.jsonl line exits 1 and names line 3" '[ $rc = 1 ] && grep -q "raw.jsonl: line 3:" "$tmp/err"'
rm "$tmp/bad/meta.json"
"$report" "$tmp/bad" >/dev/null 2>"$tmp/err"; rc=$?
check "a missing meta.json exits 1" '[ $rc = 1 ] && grep -q "meta.json" "$tmp/err"'
"$report" >/dev/null 2>"$tmp/err"; rc=$?
check "no argument exits 2 with a usage message" '[ $rc = 2 ] && grep -q "^usage:" "$tmp/err"'
"$report" --help >"$tmp/out"; rc=$?
check "--help exits 0 with the man page sections" \
	'[ $rc = 0 ] && (for s in NAME SYNOPSIS DESCRIPTION FILES "EXIT STATUS"; do grep -qx "$s" "$tmp/out" || exit 1; done)'
[ $fail = 0 ]

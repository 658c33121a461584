#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench / make bench-smoke: run dt-bench in the test VM (every backend in
# one boot), then its link figures between two VMs (tests/vm/bench_link.sh),
# then scripts/bench-report.py on the host: OUTDIR/results.json, summary.md
# and the plots.
#
# Usage: scripts/bench.sh [--smoke] [DT-BENCH OPTION]...
#   full:  out/bench/        6 GiB guest, up to 60 minutes, then the link
#   smoke: out/bench-smoke/  tiny sizes, a few minutes
# With DT-BENCH OPTIONs (say -f harvest), the link figures are left out.
# KREL (make bench KREL=6.1.0-57-amd64) boots that kernel instead of the
# default (6.12), with ./dirtytrack.ko built for it; the results then go to
# out/bench-KREL/ (out/bench-smoke-KREL/). On 6.1, uffd-wp's async mode and
# PAGEMAP_SCAN do not exist: dt-bench reports them unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=''
[ "${1:-}" != --smoke ] || { smoke=1; shift; }
if [ -n "$smoke" ]; then
	out=out/bench-smoke mem=2048 timeout=900 args=(--smoke)
else
	out=out/bench mem=6144 timeout=3600 args=()
fi
# Benchmarks measure a production kernel: no allocator debugging in the VMs.
export DT_VM_PERF=1
default=$(basename "$(readlink -f "${DT_CACHE:-$HOME/.cache/dirtytrack}/current")")
[ -z "${KREL:-}" ] || [ "$KREL" = "$default" ] || out=$out-$KREL
machine=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
git=$(git describe --always --dirty 2>/dev/null || echo unknown)
accel=$(echo "${DT_ACCEL:-tcg}" | tr '[:lower:]' '[:upper:]')
rm -rf "$out"
mkdir -p "$out"
# The mprotect backend needs a VMA per written page at worst.
DT_VM_QUIET=${DT_VM_QUIET-} bash tests/vm/run.sh -c 2 -M "$mem" -t "$timeout" -o "$PWD/$out" \
	-m dirtytrack.ko -- sh -c 'sysctl -qw vm.max_map_count=4194304 && exec "$@"' sh \
	out/tools/dt-bench -o "$PWD/$out" --accel "$accel" --machine "$machine (host)" --git "$git" \
	"${args[@]}" "$@"
if [ $# = 0 ]; then
	if DT_VM_QUIET=1 bash tests/vm/bench_link.sh -o "$PWD/$out/link" -t "$timeout" \
		-m "$PWD/dirtytrack.ko" -- "${args[@]}"; then
		cat "$out/link/src/link/raw.jsonl" >> "$out/raw.jsonl"
	else
		echo "bench.sh: the two-VM link figures failed (see $out/link): left out" >&2
	fi
fi
python3 scripts/bench-report.py "$out"

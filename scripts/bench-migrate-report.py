#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench-migrate's report: OUTDIR/migrate.jsonl (tests/vm/bench_migrate.sh)
into OUTDIR/results.json, OUTDIR/summary.md and OUTDIR/blackout.png (gnuplot)."""
import json, statistics, subprocess, sys

out = sys.argv[1]
runs = [json.loads(l) for l in open(f"{out}/migrate.jsonl") if l.strip()]
units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
def nbytes(s):
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)

groups = {}
for r in runs:
    groups.setdefault((r["tracker"], r["size"]), []).append(r)
rows = []
for (tracker, size), rs in sorted(groups.items(), key=lambda k: (k[0][0], nbytes(k[0][1]))):
    good = [r for r in rs if r.get("verified") and r.get("status") == "completed"]
    med = lambda f: statistics.median(f(r) for r in good) if good else None
    rows.append(dict(tracker=tracker, size=size, bytes=nbytes(size), runs=len(rs),
                     verified=len(good),
                     converged=sum(1 for x in good if x.get("converged", True)),
                     blackout_ms=med(lambda r: r["blackout"]["total_ms"]),
                     ebpf_ms=med(lambda r: (r["blackout"].get("ebpf") or {}).get("total_ms"))
                     if all((r["blackout"].get("ebpf") or {}).get("total_ms") is not None
                            for r in good) else None,
                     final_round_ms=med(lambda r: r["blackout"]["final_round_ms"]),
                     total_ms=med(lambda r: r["total_ms"]),
                     rounds=med(lambda r: r["total_rounds"]),
                     mib_sent=med(lambda r: r["total_bytes"] / 2**20)))

def get(tracker, size, key="blackout_ms"):
    for r in rows:
        if r["tracker"] == tracker and r["size"] == size and r[key] is not None:
            return r[key]
sizes = sorted({r["size"] for r in rows}, key=nbytes)
lines = ["# make bench-migrate", "",
         "dt-guest migrated between two network namespaces in one VM boot (TCG: compare",
         "the ratios, not the milliseconds). Medians over the verified runs.", "",
         "Blackout: dt-migrate's own (freeze request to ACTIVATED on the source); eBPF: what",
         "the workload saw (its last run on the source to its exec on the destination).", "",
         "Runs that did not converge within 15 rounds were forced into stop-and-copy:",
         "their blackout carries what was left.", "",
         "| tracker | size | runs (verified, converged) | blackout ms | eBPF blackout ms | final round ms | total ms | rounds | MiB sent |",
         "|---|---|---|---|---|---|---|---|---|"]
f = lambda v, fmt="%.1f": "-" if v is None else fmt % v
for r in rows:
    lines.append(f"| {r['tracker']} | {r['size']} | {r['runs']} ({r['verified']}, {r['converged']}) | "
                 f"{f(r['blackout_ms'])} | {f(r['ebpf_ms'])} | {f(r['final_round_ms'])} | {f(r['total_ms'])} | "
                 f"{f(r['rounds'], '%.0f')} | {f(r['mib_sent'])} |")
lines += ["", "## Targets", ""]
if sizes:
    small, big = sizes[0], sizes[-1]
    others = [t for t in {r["tracker"] for r in rows} if t != "dirtytrack"]
    for key, what in (("blackout_ms", "blackout"), ("ebpf_ms", "eBPF blackout")):
        d_small, d_big = get("dirtytrack", small, key), get("dirtytrack", big, key)
        if d_small and d_big:
            ratio = d_big / d_small
            lines.append(f"- dirtytrack {what} {big} / {small}: {ratio:.2f}x "
                         f"(target at most 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
        best = min((get(t, big, key) for t in others if get(t, big, key)), default=None)
        if d_big and best:
            ratio = d_big / best
            lines.append(f"- dirtytrack {what} at {big} / best userspace tracker's: {ratio:.2f}x "
                         f"(target at most 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})")

# Auto-converge's levers (bench_migrate.sh's second part), if it ran.
try:
    truns = [json.loads(l) for l in open(f"{out}/throttle.jsonl") if l.strip()]
except FileNotFoundError:
    truns = []
cost = {}
if truns:
    lines += ["", "## Auto-converge: the module's write-fault budget vs cpu.max", "",
              "dt-guest (8 MiB, 2000 pages/s over 1024 pages, one reader thread checksumming",
              "pages) behind an 8 Mbit/s link; its progress over the migration (to the freeze)",
              "against 3 s just before it. Cost: the share of the reader's progress lost.",
              "Medians over the verified runs.", "",
              "| throttle | runs (verified, converged) | migration s | rounds | top level % | "
              "blackout ms | writes/s (of before) | reads/s (of before) | reader's cost |",
              "|---|---|---|---|---|---|---|---|---|"]
    for w in ("module", "cpu-max"):
        rs = [r for r in truns if r["throttle_with"] == w]
        good = [r for r in rs if r["verified"]]
        if not good:
            lines.append(f"| {w} | {len(rs)} (0, 0) | - | - | - | - | - | - | - |")
            continue
        med = lambda k: statistics.median(k(r) for r in good)
        wr, rd = med(lambda r: r["writes_per_s"] / r["base_writes_per_s"]), \
            med(lambda r: r["reads_per_s"] / r["base_reads_per_s"])
        cost[w] = 1 - rd
        lines.append(f"| {w} | {len(rs)} ({len(good)}, {sum(1 for r in good if r['converged'])}) | "
                     f"{med(lambda r: r['migration_s']):.1f} | {med(lambda r: r['rounds']):.0f} | "
                     f"{med(lambda r: r['max_level']):.0f} | {med(lambda r: r['blackout_ms']):.1f} | "
                     f"{med(lambda r: r['writes_per_s']):.0f} ({wr:.0%}) | "
                     f"{med(lambda r: r['reads_per_s']):.0f} ({rd:.0%}) | {cost[w]:.0%} |")
    if "module" in cost and "cpu-max" in cost:
        ok = cost["module"] <= 0.5 * cost["cpu-max"]
        lines += ["", f"- reader's progress lost, module budget / cpu.max: {cost['module']:.0%} / "
                  f"{cost['cpu-max']:.0%} (target: at most half: {'met' if ok else 'NOT met'})"]
# A QEMU guest moved by QEMU alone and by dt-migrate --qemu (bench_qemu.sh), if it ran.
try:
    qruns = [json.loads(l) for l in open(f"{out}/qemu.jsonl") if l.strip()]
except FileNotFoundError:
    qruns = []
qgap = {}
if qruns:
    lines += ["", "## A QEMU guest: QEMU alone vs dt-migrate", "",
              "The ledger guest (tests/qemu/) in Debian's QEMU inside the VM, between the two",
              "namespaces. QEMU alone: RAM in QEMU's stream, no bandwidth cap, 300 ms downtime",
              "limit. dt-migrate --qemu: RAM in a region through the module, QEMU's stream",
              "carries the device state only. Blackout: the guest beats every 4 ms of its",
              "time on a debug port, and one reader times the source's last beat and the",
              "destination's first (guest gap), the same measure for both movers. Also the",
              "longest gap in the runs of both QEMUs' vCPU threads (dt-blackout --gap: a",
              "stopped QEMU's vCPU threads can wake without running the guest, which splits",
              "a gap, so it can be short) and each mover's own figure. Medians over the",
              "verified runs.", "",
              "| mover | runs (verified) | guest gap ms | vCPU gap ms | own figure ms | "
              "migration ms | MiB sent |",
              "|---|---|---|---|---|---|---|"]
    for m, own in (("qemu", "qemu_downtime_ms"), ("dt-migrate", "dt_blackout_ms")):
        rs = [r for r in qruns if r["mover"] == m]
        good = [r for r in rs if r["verified"] and r.get("guest_gap_ms") is not None]
        if not good:
            lines.append(f"| {m} | {len(rs)} (0) | - | - | - | - | - |")
            continue
        med = lambda k: statistics.median(r[k] for r in good)
        vgap = [r["gap_ms"] for r in good if r["gap_ms"] is not None]
        qgap[m] = med("guest_gap_ms")
        lines.append(f"| {m} | {len(rs)} ({len(good)}) | {qgap[m]:.1f} | "
                     f"{statistics.median(vgap) if vgap else float('nan'):.1f} | "
                     f"{med(own):.1f} | {med('total_ms'):.0f} | {med('bytes') / 2**20:.1f} |")
    if len(qgap) == 2:
        lines += ["", f"- blackout the guest saw, dt-migrate / QEMU alone: "
                  f"{qgap['dt-migrate'] / qgap['qemu']:.2f}x"]
json.dump({"runs": runs, "summary": rows, "throttle": truns, "qemu": qruns},
          open(f"{out}/results.json", "w"), indent=1)
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

dat = f"{out}/blackout.dat"
series = []
with open(dat, "w") as fh:
    for key, label in (("blackout_ms", ""), ("ebpf_ms", " (eBPF)")):
        for t in sorted({r["tracker"] for r in rows}):
            pts = [r for r in rows if r["tracker"] == t and r[key] is not None]
            if not pts:
                continue
            for r in pts:
                fh.write(f"{r['bytes'] / 2**20} {r[key]}\n")
            fh.write("\n\n")
            series.append(t + label)
plot = ", ".join(f"'{dat}' index {i} with linespoints title '{t}'" for i, t in enumerate(series))
if series:
    subprocess.run(["gnuplot", "-e",
                    f"set terminal png size 800,500; set output '{out}/blackout.png'; "
                    "set logscale x 2; set xlabel 'region size (MiB)'; "
                    "set ylabel 'blackout (ms)'; set key top left; plot " + plot], check=False)

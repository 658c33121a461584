#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""NAME
    bench-report.py - summarise a dirtytrack benchmark run

SYNOPSIS
    scripts/bench-report.py DIR
    scripts/bench-report.py --help

DESCRIPTION
    Reads the measurements a benchmark run left in DIR, computes the minimum
    and median of each one, compares the module's backend with the other
    backends measured under the same figure, metric and parameters, checks
    the targets of issue 3 (dirty tracking), issue 4 (streaming) and issue
    14 (clean reads, and the two-VM link figures), and
    writes a JSON report, a Markdown summary and gnuplot plots.

    The module's backend is dirtytrack (figures fault, clean_read, harvest,
    harvest_flat, precopy), module-stream (send, send_link), module-receive
    (receive, receive_link) or in-flight (writer_stall). For a module
    row the peer is the best other available backend by median and
    ratio_to_peer is module median / peer median; for any other row the peer
    is the module and the ratio is this median / module median.

    Targets are taken at the region_mb closest to 1024. Plots need gnuplot;
    without it they are skipped with a warning and the exit status stays 0.
    The summary's path and a count of target verdicts go to stdout.

FILES
    DIR/meta.json       run metadata: kernel, machine, cpus, mem_mb, accel,
                        date, smoke, seed, git (read)
    DIR/raw.jsonl       one JSON object per line: a measurement with
                        "samples", or a backend that was "unavailable" or
                        "failed", with the reason (read)
    DIR/results.json    statistics and peer ratios per line (written)
    DIR/summary.md      tables, targets, unavailable and failed backends
                        (written)
    DIR/harvest_vs_size.png, DIR/harvest_vs_fraction.png, DIR/transfer.png
                        plots (written when gnuplot is installed)
    DIR/plots/          the plots' data files and gnuplot scripts (written)

EXIT STATUS
    0   success, also when the plots were skipped
    1   meta.json or raw.jsonl missing or malformed (the message names the
        bad line), or an output file could not be written
    2   bad usage
"""
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

PROG = "bench-report.py"
TRACKERS = ["dirtytrack", "uffd-wp", "soft-dirty", "mprotect"]
BACKENDS = {  # per figure; the module's own backend comes first
    "fault": TRACKERS, "clean_read": TRACKERS, "harvest": TRACKERS, "harvest_flat": TRACKERS,
    "send": ["module-stream", "copy-send", "writev", "vmsplice-splice"],
    "receive": ["module-receive", "recv-into-mapping"], "precopy": TRACKERS,
    "send_link": ["module-stream", "copy-send", "writev", "vmsplice-splice"],
    "receive_link": ["module-receive", "recv-into-mapping"],
    "writer_stall": ["in-flight", "protected", "streamed"],
}
MODULE = {figure: backends[0] for figure, backends in BACKENDS.items()}
METRICS = {  # defaults when a line leaves out unit or better
    "write_fault_ns": ("ns", "lower"), "clean_read_ns": ("ns", "lower"), "harvest_ms": ("ms", "lower"),
    "throughput_gibps": ("GiB/s", "higher"), "cpu_s_per_gib": ("s/GiB", "lower"),
    "cycle_ms": ("ms", "lower"), "round_us_per_page": ("us", "lower"),
}
NEAR_MB = 1024  # targets and bar charts use the region_mb closest to this
PLOTS = ["harvest_vs_size", "harvest_vs_fraction", "transfer"]


class ReportError(Exception):
    """A problem with an input or output file: exit status 1."""


def status(row):
    return "unavailable" if "unavailable" in row else "failed" if "failed" in row else "ok"


def pkey(params):
    return json.dumps(params, sort_keys=True)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def region(params):
    v = params.get("region_mb")
    return v if is_num(v) else None


def fmt(x):
    """x to 3 significant digits, in plain notation unless tiny or huge."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    r = float(f"{x:.3g}")
    mag = math.floor(math.log10(abs(r)))
    return f"{r:.3g}" if mag < -3 or mag >= 6 else f"{r:.{max(0, 2 - mag)}f}"


def fmt_params(params):
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "no params"


# ---------------------------------------------------------------- input


def check_row(obj):
    """Why obj is not a valid raw.jsonl line, or None; fills unit/better in."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key in ("figure", "metric", "backend"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            return f'"{key}" is missing or not a string'
    if not isinstance(obj.get("params"), dict):
        return '"params" is missing or not an object'
    if not all(isinstance(v, (str, int, float)) for v in obj["params"].values()):
        return '"params" values are not all numbers or strings'
    kinds = [k for k in ("samples", "unavailable", "failed") if k in obj]
    if len(kinds) != 1:
        return 'needs exactly one of "samples", "unavailable" and "failed"'
    if kinds[0] != "samples":
        return None if isinstance(obj[kinds[0]], str) else f'"{kinds[0]}" is not a string'
    samples = obj["samples"]
    if not isinstance(samples, list) or not samples or \
            not all(is_num(v) and math.isfinite(v) for v in samples):
        return '"samples" is not a non-empty list of finite numbers'
    unit, better = METRICS.get(obj["metric"], (None, None))
    obj.setdefault("unit", unit)
    obj.setdefault("better", better)
    if obj["better"] not in ("lower", "higher"):
        return '"better" is not "lower" or "higher"'
    return None if isinstance(obj["unit"], str) else '"unit" is missing'


def load(d):
    meta_path, raw_path = os.path.join(d, "meta.json"), os.path.join(d, "raw.jsonl")
    try:
        with open(meta_path, "rb") as f:
            meta = json.load(f)
    except OSError as e:
        raise ReportError(f"cannot read {meta_path}: {e.strerror}")
    except ValueError as e:
        raise ReportError(f"{meta_path}: not valid JSON: {e}")
    if not isinstance(meta, dict):
        raise ReportError(f"{meta_path}: not a JSON object")
    rows = []
    try:
        with open(raw_path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line.decode("utf-8"))
                except ValueError as e:
                    raise ReportError(f"{raw_path}: line {n}: not valid JSON: {e}")
                problem = check_row(obj)
                if problem:
                    raise ReportError(f"{raw_path}: line {n}: {problem}")
                rows.append(obj)
    except OSError as e:
        raise ReportError(f"cannot read {raw_path}: {e.strerror}")
    return meta, rows


# ---------------------------------------------------------------- analysis


def analyse(rows):
    """Index rows by (figure, metric, params) and compute results.json's list."""
    index = {}
    for r in rows:
        if status(r) == "ok":
            r["median"], r["min"] = statistics.median(r["samples"]), min(r["samples"])
        index.setdefault((r["figure"], r["metric"], pkey(r["params"])), {})[r["backend"]] = r
    results = []
    for r in rows:
        out = {k: r[k] for k in ("figure", "metric", "backend", "params")}
        if status(r) != "ok":
            out[status(r)] = r[status(r)]
            results.append(out)
            continue
        group = index[(r["figure"], r["metric"], pkey(r["params"]))]
        module = MODULE.get(r["figure"])
        if r["backend"] == module:
            sign = 1 if r["better"] == "lower" else -1
            others = [o for b, o in group.items() if b != module and status(o) == "ok"]
            peer = min(others, key=lambda o: sign * o["median"], default=None)
        else:
            peer = group.get(module)
            peer = peer if peer and status(peer) == "ok" else None
        r["peer"] = peer["backend"] if peer else None
        r["ratio"] = r["median"] / peer["median"] if peer and peer["median"] else None
        out.update(repetitions=len(r["samples"]), min=r["min"], median=r["median"],
                   unit=r["unit"], better=r["better"], peer=r["peer"], ratio_to_peer=r["ratio"])
        results.append(out)
    return index, results


def lookup(index, figure, metric, params, backend):
    """(row, None) for a measured backend, else (None, the reason)."""
    r = index.get((figure, metric, pkey(params)), {}).get(backend)
    if r is None:
        return None, f"no {backend} row"
    if status(r) != "ok":
        return None, f"{backend} {status(r)}: {r[status(r)]}"
    return r, None


def pick_params(rows, figure, metric, fixed):
    """The params matching fixed whose region_mb is closest to NEAR_MB."""
    cands = [r["params"] for r in rows if r["figure"] == figure and r["metric"] == metric
             and all(r["params"].get(k) == v for k, v in fixed.items())]
    near = lambda p: (abs((region(p) or NEAR_MB) - NEAR_MB), -(region(p) or 0))
    return min(cands, key=near, default=None)


def ratio_target(index, rows, label, figure, metric, fixed, num, den, op, goal):
    params = pick_params(rows, figure, metric, fixed)
    if params is None:
        return label, f"no {figure} {metric} rows with {fmt_params(fixed)}", "not measured"
    a, why_a = lookup(index, figure, metric, params, num)
    b, why_b = lookup(index, figure, metric, params, den)
    why = why_a or why_b or (f"{den} median is 0" if b["median"] == 0 else None)
    if why:
        return label, f"{why} ({fmt_params(params)})", "not measured"
    ratio = a["median"] / b["median"]
    met = ratio <= goal if op == "≤" else ratio >= goal
    return label, (f"{fmt(ratio)} = {num} {fmt(a['median'])} / {den} {fmt(b['median'])} "
                   f"{a['unit']} ({fmt_params(params)})"), "met" if met else "not met"


def size_ratio(index, rest, lo, hi, backend):
    """backend's harvest_flat median at region hi / at lo, and a description."""
    small, why = lookup(index, "harvest_flat", "harvest_ms", {**rest, "region_mb": lo}, backend)
    big, why2 = lookup(index, "harvest_flat", "harvest_ms", {**rest, "region_mb": hi}, backend)
    where = f"{lo} → {hi} MB, {fmt_params(rest)}"
    if why or why2 or small["median"] == 0:
        return None, f"{backend}: {why or why2 or 'median is 0'} ({where})"
    ratio = big["median"] / small["median"]
    return ratio, (f"{backend} {fmt(ratio)} = {fmt(big['median'])} / "
                   f"{fmt(small['median'])} ms ({where})")


def flatness_target(index, rows):
    """Issue 3 (d): the worst dirtytrack ratio over the harvest_flat groups."""
    label = "Issue 3 (d): harvest flatness, dirtytrack at largest / smallest region_mb ≤ 1.5"
    groups = {}
    for r in rows:
        if r["figure"] == "harvest_flat" and r["metric"] == "harvest_ms" and region(r["params"]):
            rest = {k: v for k, v in r["params"].items() if k != "region_mb"}
            groups.setdefault(pkey(rest), (rest, set()))[1].add(region(r["params"]))
    worst, reasons = None, []
    for rest, sizes in groups.values():
        if len(sizes) < 2:
            reasons.append(f"only one region_mb with {fmt_params(rest)}")
            continue
        ratio, text = size_ratio(index, rest, min(sizes), max(sizes), "dirtytrack")
        if ratio is None:
            reasons.append(text)
        elif worst is None or ratio > worst[0]:
            worst = (ratio, text, rest, min(sizes), max(sizes))
    if worst is None:
        return label, reasons[0] if reasons else "no harvest_flat rows", "not measured"
    ratio, text, rest, lo, hi = worst
    context = size_ratio(index, rest, lo, hi, "uffd-wp")[1]
    return label, f"{text}; for context {context}", "met" if ratio <= 1.5 else "not met"


def targets(index, rows):
    t = lambda *a: ratio_target(index, rows, *a)
    return [
        t("Issue 3 (a): write-fault cost, 1 thread, dirtytrack / uffd-wp ≤ 1.2",
          "fault", "write_fault_ns", {"threads": 1}, "dirtytrack", "uffd-wp", "≤", 1.2),
        t("Issue 3 (b): write-fault cost, 2 threads, dirtytrack / uffd-wp ≤ 1.2",
          "fault", "write_fault_ns", {"threads": 2}, "dirtytrack", "uffd-wp", "≤", 1.2),
        t("Issue 3 (c): harvest, 1% dirty, uniform, dirtytrack / uffd-wp ≤ 0.5",
          "harvest", "harvest_ms", {"fraction": 0.01, "pattern": "uniform"},
          "dirtytrack", "uffd-wp", "≤", 0.5),
        flatness_target(index, rows),
        t("Issue 14: clean-page read after a harvest, dirtytrack / uffd-wp ≤ 1.0",
          "clean_read", "clean_read_ns", {}, "dirtytrack", "uffd-wp", "≤", 1.0),
        t("Issue 4 (e): send throughput, module-stream / copy-send ≥ 2",
          "send", "throughput_gibps", {}, "module-stream", "copy-send", "≥", 2),
        t("Issue 4 (f): send throughput, module-stream / vmsplice-splice ≥ 1.3",
          "send", "throughput_gibps", {}, "module-stream", "vmsplice-splice", "≥", 1.3),
        t("Issue 4 (g): send CPU per GiB, module-stream / copy-send ≤ 0.5",
          "send", "cpu_s_per_gib", {}, "module-stream", "copy-send", "≤", 0.5),
        t("Issue 4 (h): receive throughput, module-receive / recv-into-mapping ≥ 1.5",
          "receive", "throughput_gibps", {}, "module-receive", "recv-into-mapping", "≥", 1.5),
        t("Issue 14: send over the link, module-stream / copy-send ≥ 1.3",
          "send_link", "throughput_gibps", {}, "module-stream", "copy-send", "≥", 1.3),
        t("Issue 14: send CPU per GiB over the link, module-stream / copy-send ≤ 0.6",
          "send_link", "cpu_s_per_gib", {}, "module-stream", "copy-send", "≤", 0.6),
        t("Issue 14: receive CPU per GiB over the link, module-receive / recv-into-mapping ≤ 0.7",
          "receive_link", "cpu_s_per_gib", {}, "module-receive", "recv-into-mapping", "≤", 0.7),
        t("Issue 14: write to a page in flight over the link / write fault without a stream ≤ 1.5",
          "writer_stall", "write_fault_ns", {}, "in-flight", "protected", "≤", 1.5),
    ]


# ---------------------------------------------------------------- plots


def gp_str(s):
    return "'" + s.replace("'", "''") + "'"


def gnuplot_terminal():
    try:
        out = subprocess.run(["gnuplot"], input="set terminal\n", capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "png"
    return "pngcairo" if "pngcairo" in out.stdout + out.stderr else "png"


def draw(pdir, name, terminal, settings, series):
    """Plot series [(title, points, using, style)]; return None or why not."""
    series = [s for s in series if s[1]]
    if not series:
        return "no data"
    with open(os.path.join(pdir, name + ".dat"), "w") as f:
        for title, points, _, _ in series:
            f.write(f"# {title}\n")
            for p in sorted(points):
                f.write(" ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in p) + "\n")
            f.write("\n\n")
    plots = [f"{gp_str(name + '.dat')} index {i} using {using} {style} "
             + (f"title {gp_str(title)}" if title else "notitle")
             for i, (title, _, using, style) in enumerate(series)]
    script = "\n".join([f"set terminal {terminal} noenhanced size 900,600",
                        f"set output {gp_str('../' + name + '.png')}",
                        "set grid", "set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.05",
                        *settings, "plot " + ", \\\n     ".join(plots), ""])
    with open(os.path.join(pdir, name + ".gp"), "w") as f:
        f.write(script)
    try:
        run = subprocess.run(["gnuplot", name + ".gp"], cwd=pdir, capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return f"gnuplot did not run: {e}"
    if run.returncode != 0:
        return "gnuplot failed: " + (run.stderr.strip().splitlines() or ["?"])[-1]
    return None


def plots(d, rows):
    """Draw the PNGs; return {name: None or the reason it was not drawn}."""
    if not shutil.which("gnuplot"):
        print(f"{PROG}: warning: gnuplot not found (apt-get install gnuplot-nox); "
              "skipping plots", file=sys.stderr)
        return {name: "gnuplot not installed" for name in PLOTS}
    pdir = os.path.join(d, "plots")
    os.makedirs(pdir, exist_ok=True)
    terminal = gnuplot_terminal()
    ok = [r for r in rows if status(r) == "ok"]
    harvest = [r for r in ok if r["figure"] == "harvest" and r["metric"] == "harvest_ms"
               and region(r["params"]) and r["median"] > 0]
    uniform = [r for r in harvest if r["params"].get("pattern") == "uniform"]
    order = [b for b in TRACKERS if any(r["backend"] == b for r in harvest)]
    order += list(dict.fromkeys(r["backend"] for r in harvest if r["backend"] not in order))
    done = {}

    fractions = {r["params"].get("fraction") for r in uniform} - {None}
    frac = 0.01 if 0.01 in fractions else min(fractions, default=None)
    series = [(b, [(region(r["params"]), r["median"]) for r in uniform
                   if r["backend"] == b and r["params"].get("fraction") == frac],
               "1:2", f"with linespoints lw 2 lc {i + 1}") for i, b in enumerate(order)]
    done["harvest_vs_size"] = draw(pdir, "harvest_vs_size", terminal, [
        "set logscale x 2", "set key top left", "set xlabel 'region (MB)'",
        "set ylabel 'harvest (ms, median)'",
        f"set title 'Harvest time vs region size (fraction {frac}, pattern uniform)'"], series)

    big = max((region(r["params"]) for r in uniform), default=None)
    series = []
    for i, b in enumerate(order):
        at = [r for r in harvest if r["backend"] == b and region(r["params"]) == big]
        series.append((b, [(r["params"]["fraction"], r["median"]) for r in at
                           if r["params"].get("pattern") == "uniform"
                           and is_num(r["params"].get("fraction"))],
                       "1:2", f"with linespoints lw 2 lc {i + 1}"))
        series.append(("", [(1.0, r["median"]) for r in at if r["params"].get("pattern") == "all"],
                       "1:2", f"with points pt 7 ps 2 lc {i + 1}"))
    done["harvest_vs_fraction"] = draw(pdir, "harvest_vs_fraction", terminal, [
        "set logscale xy", "set key top left", "set xlabel 'dirty fraction'",
        "set ylabel 'harvest (ms, median)'",
        f"set title 'Harvest time vs dirty fraction ({big} MB; filled dot: pattern all)'"], series)

    series, x = [], 0
    for figure in ("send", "receive"):
        params = pick_params(ok, figure, "throughput_gibps", {})
        bars = [r for r in ok if r["figure"] == figure and r["metric"] == "throughput_gibps"
                and r["params"] == params]
        names = [b for b in BACKENDS[figure] if any(r["backend"] == b for r in bars)]
        names += [r["backend"] for r in bars if r["backend"] not in names]
        median = {r["backend"]: r["median"] for r in bars}
        series.append((f"{figure} ({fmt_params(params or {})})",
                       [(x + i, median[b], b) for i, b in enumerate(names)],
                       "1:2:xtic(3)", f"with boxes lc {len(series) + 1}"))
        x += len(names) + 1
    done["transfer"] = draw(pdir, "transfer", terminal, [
        "set style fill solid 0.7 border -1", "set boxwidth 0.8", "set yrange [0:*]",
        "set offsets 0.5, 0.5, graph 0.1, 0",
        "set xtics rotate by -30", "set key top right", "set ylabel 'throughput (GiB/s, median)'",
        "set title 'Transfer throughput: send and receive methods'"], series)
    for name, why in done.items():
        if why:
            print(f"{PROG}: warning: {name}.png not drawn: {why}", file=sys.stderr)
    return done


# ---------------------------------------------------------------- summary


def md_row(cells):
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def cell(r):
    if r is None:
        return ""
    if status(r) != "ok":
        return "n/a" if status(r) == "unavailable" else "FAILED"
    return f"{fmt(r['median'])} ({fmt(r['min'])})"


def param_order(names, params):
    return tuple((0, params[n], "") if is_num(params.get(n)) else (1, 0, str(params.get(n, "")))
                 for n in names)


def tables(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["figure"], r["metric"]), []).append(r)
    known = list(BACKENDS)
    out = ["## Results", ""]
    for figure, metric in sorted(groups, key=lambda k: known.index(k[0]) if k[0] in known else 99):
        rs = groups[(figure, metric)]
        ok = [r for r in rs if status(r) == "ok"]
        unit, better = ((ok[0]["unit"], ok[0]["better"]) if ok
                        else METRICS.get(metric, ("?", "lower")))
        module = MODULE.get(figure, "the module")
        names = list(dict.fromkeys(n for r in rs for n in r["params"]))
        present = list(dict.fromkeys(r["backend"] for r in rs))
        backends = [b for b in BACKENDS.get(figure, []) if b in present]
        backends += [b for b in present if b not in backends]
        reps = sorted({len(r["samples"]) for r in ok})
        reps = "-".join(str(n) for n in dict.fromkeys([reps[0], reps[-1]])) if reps else "0"
        out += [f"### {figure}: {metric} ({unit})", "",
                f"{better.capitalize()} is better. Cells: median (min) of {reps} "
                f"repetition{'' if reps == '1' else 's'} "
                f"in {unit}; n/a: backend unavailable; FAILED: backend misreported. "
                f"Last column: {module}'s median / the best other backend's median, "
                f"so {'below' if better == 'lower' else 'above'} 1 means {module} wins.", "",
                md_row(names + backends + ["module / best peer"]),
                md_row(["---"] * (len(names) + len(backends) + 1))]
        combos = {}
        for r in rs:
            combos.setdefault(pkey(r["params"]), (r["params"], {}))[1][r["backend"]] = r
        for params, by in sorted(combos.values(), key=lambda pb: param_order(names, pb[0])):
            m = by.get(module)
            ratio = f"{fmt(m['ratio'])} ({m['peer']})" if m and m.get("ratio") is not None else "-"
            out.append(md_row([params.get(n, "") for n in names]
                              + [cell(by.get(b)) for b in backends] + [ratio]))
        out.append("")
    return out


def summary(meta, rows, verdicts, drawn):
    g = lambda k: meta.get(k, "unknown")
    out = ["# dirtytrack benchmark report", "",
           f"- Machine: {g('machine')}",
           f"- Accelerator: {g('accel')}, {g('cpus')} CPUs, {g('mem_mb')} MB memory",
           f"- Kernel: {g('kernel')}", f"- Date: {g('date')}",
           f"- Git commit: {g('git')}, seed {g('seed')}"]
    if meta.get("smoke"):
        out.append("- **smoke run**: shortened measurements, not representative")
    out += ["", *tables(rows), "## Targets", "", md_row(["target", "measured", "verdict"]),
            md_row(["---"] * 3), *(md_row(v) for v in verdicts), "", "## Unavailable backends", ""]
    unavailable = {}
    for r in rows:
        if status(r) == "unavailable":
            unavailable.setdefault((r["backend"], r["unavailable"]), []).append(r["figure"])
    out += [f"- {b}: {why} (in {', '.join(dict.fromkeys(figs))})"
            for (b, why), figs in unavailable.items()] or ["None."]
    out += ["", "## Failures", ""]
    out += [f"- {r['figure']} / {r['metric']} / {r['backend']} ({fmt_params(r['params'])}): "
            f"{r['failed']}" for r in rows if status(r) == "failed"] or ["None."]
    out += ["", "## Plots", ""]
    if all(why == "gnuplot not installed" for why in drawn.values()):
        out.append("Plots skipped: gnuplot is not installed.")
    for name, why in drawn.items():
        out.append(f"- {name}.png: not drawn ({why})" if why else f"![{name}]({name}.png)")
    return "\n".join(out) + "\n"


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.rstrip())
        return 0
    if argv[:1] == ["--"]:
        argv = argv[1:]
    elif argv and argv[0].startswith("-"):
        argv = []
    if len(argv) != 1:
        print(f"usage: {PROG} DIR\nTry '{PROG} --help' for more information.", file=sys.stderr)
        return 2
    d = argv[0]
    try:
        meta, rows = load(d)
        index, results = analyse(rows)
        verdicts = targets(index, rows)
        try:
            with open(os.path.join(d, "results.json"), "w") as f:
                json.dump({"meta": meta, "results": results}, f, indent=2)
                f.write("\n")
            drawn = plots(d, rows)
            path = os.path.join(d, "summary.md")
            with open(path, "w") as f:
                f.write(summary(meta, rows, verdicts, drawn))
        except OSError as e:
            raise ReportError(f"cannot write {e.filename or d}: {e.strerror}")
    except ReportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    count = lambda v: sum(1 for t in verdicts if t[2] == v)
    print(path)
    print(f"targets: {count('met')} met, {count('not met')} not met, "
          f"{count('not measured')} not measured")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # e.g. --help | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

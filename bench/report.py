# SPDX-License-Identifier: Apache-2.0
"""Turns the raw measurements into the markdown table, the target check and the JSON."""
from __future__ import annotations

import statistics

from util import summary

# test -> (unit, higher is better, baseline variant for the ratio column)
TESTS = {
    "sequential read 1 MiB": ("GB/s", True, "plain FUSE (same daemon)"),
    "mmap touch every page": ("GB/s", True, "plain FUSE (same daemon)"),
    "fio randread 4k, 4 jobs": (None, True, "plain FUSE (same daemon)"),
    "fio randread 64k, 4 jobs": (None, True, "plain FUSE (same daemon)"),
    "daemon CPU: sequential read 1 MiB": ("s", False, "plain FUSE (same daemon)"),
    "daemon CPU: mmap touch every page": ("s", False, "plain FUSE (same daemon)"),
    "page faults: mmap touch every page": ("faults", False, "disk (no FUSE)"),
    "safetensors load (np)": ("s", False, "disk (no FUSE)"),
    "page faults: safetensors load (np)": ("faults", False, "disk (no FUSE)"),
    "loader peak RSS": ("MiB", False, "disk (no FUSE)"),
    "safetensors load (pt)": ("s", False, "disk (no FUSE)"),
    "loader peak RSS (pt)": ("MiB", False, "disk (no FUSE)"),
    "transformers from_pretrained": ("s", False, "disk (no FUSE)"),
    "transformers peak RSS": ("MiB", False, "disk (no FUSE)"),
    "write copy (warm src, incl. sync)": ("GB/s", True, "cp -r"),
    "mount time": ("s", False, None),
}
CTFS_V, PLAINFUSE_V, DISK_V, GOCRYPT_V, REF_V = ("ctfs (encrypted)", "plain FUSE (same daemon)",
                                                 "disk (no FUSE)", "gocryptfs",
                                                 "reference cryptotensors")


def _fmt(x, unit=None):
    if x is None:
        return "–"
    if unit == "IOPS" or (isinstance(x, float) and abs(x) >= 1000):
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.2f}"


def _passes(n):
    return f"{n} pass" + ("" if n == 1 else "es")


def _med(S, test, variant, phase):
    try:
        return S[test][variant][phase]["median"]
    except KeyError:
        return None


def _ratio(a, b):
    return a / b if (a is not None and b) else None


def _paired_ratios(results, test, variant, base, phase):
    """Per repeat: this repeat's median of the row ÷ the baseline's in the same repeat. Variants
    run next to each other in each repeat, so slow drifts of this VM's disk and CPU cancel out
    of each pair."""
    def by_repeat(v):
        try:
            vals = results["tests"][test][v][phase]
            reps = results["repeat_of"][test][v][phase]
        except KeyError:
            return {}
        if len(vals) != len(reps):
            return {}
        out = {}
        for x, r in zip(vals, reps):
            if x is not None:
                out.setdefault(r, []).append(x)
        return {r: statistics.median(xs) for r, xs in out.items()}
    a, b = by_repeat(variant), by_repeat(base)
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r]]


def _paired(results, test, variant, base, phase):
    """The median of _paired_ratios, or None."""
    ratios = _paired_ratios(results, test, variant, base, phase)
    return statistics.median(ratios) if ratios else None


def _paired_text(ratios):
    """Per-repeat ratios as their median and range: "0.78 (0.43–1.09)"."""
    if not ratios:
        return "–"
    med = f"{statistics.median(ratios):.2f}"
    return med if len(ratios) < 2 else f"{med} ({min(ratios):.2f}–{max(ratios):.2f})"


def build(results: dict, hwm: dict, args) -> tuple[str, dict]:
    raw = results["tests"]
    S = {t: {v: {p: summary(vals) for p, vals in phases.items()} for v, phases in vs.items()}
         for t, vs in raw.items()}
    m = results.get("machine", {})
    fx = results.get("fixture", {})
    L = []
    L.append(f"# ctfs benchmark results{' (SMOKE: timings not meaningful)' if args.smoke else ''}")
    L.append("")
    L.append(f"* date: {results.get('date')}")
    L.append(f"* machine: {m.get('nproc')} CPUs, {m.get('cpu')}, {m.get('mem_gib')} GiB RAM, "
             f"kernel {m.get('kernel')}; {m.get('gocryptfs') or 'no gocryptfs'}; "
             f"{m.get('fio') or 'no fio'}")
    L.append(f"* command: `{results.get('command')}` (wall {results.get('wall_seconds', 0):.0f} s)")
    if fx:
        L.append(f"* fixture: {fx.get('bytes', 0) / 2**30:.3f} GiB in {fx.get('files')} files "
                 f"({fx.get('shards')} shards, {fx.get('tensors')} tensors, F16 weights + F32 "
                 f"norms, random data); encrypted by `ctfs encrypt` defaults (v2, "
                 f"{(fx.get('chunk_size') or 0) >> 10} KiB chunks, AES-256-GCM)")
        if fx.get("llama_bytes"):
            L.append(f"* transformers fixture: Llama, bf16, {fx['llama_bytes'] / 2**30:.3f} GiB")
    L.append(f"* repeats: {args.repeats}, each starting with the next variant; cold = fresh mount "
             f"+ `echo 3 > drop_caches` (daemon cache empty); warm = same mount right after the "
             f"cold pass ({_passes(getattr(args, 'warm_passes', 1))})")
    L.append("")
    L.append("Ratio column: median of the row ÷ median of the baseline row (same test, same phase); "
             "paired: the median over repeats of the same ratio within each repeat. For GB/s and "
             "IOPS higher is better, for s, MiB and faults lower is better. Page faults: the minor "
             "faults the reading process took (getrusage), i.e. how many pieces the kernel mapped "
             "the model's pages in.")
    L.append("")
    L.append("| test | phase | variant | median | min – max | spread | unit | ratio vs baseline "
             "| paired |")
    L.append("|---|---|---|---:|---:|---:|---|---:|---:|")
    for test, (unit, _hib, base) in TESTS.items():
        if test not in S:
            continue
        for variant, phases in S[test].items():
            for phase, s in phases.items():
                u = unit or phase
                ph = phase if unit else "cold start"
                if test == "mount time":
                    ph = "–"
                b = _med(S, test, base, phase) if base else None
                r = _ratio(s["median"], b) if variant != base else None
                pr = _paired(results, test, variant, base, phase) if r else None
                L.append(f"| {test} | {ph} | {variant} | {_fmt(s['median'], u)} | "
                         f"{_fmt(s['min'], u)} – {_fmt(s['max'], u)} | "
                         f"{_fmt(s['spread_pct'])} % | {u} | "
                         f"{(_fmt(r) + '× ' + base.split(' (')[0]) if r else ''} | "
                         f"{(_fmt(pr) + '×') if pr else ''} |")
    L.append("")

    # Daemon peak RSS
    cache_mb = 256
    for x in getattr(args, "ctfs_arg", []) or []:
        if x.startswith("--cache-mb"):
            cache_mb = int(x.split("=", 1)[1])
    L.append("## Daemon peak RSS (VmHWM of the ctfs daemon, MiB; max over repeats)")
    L.append("")
    L.append("| model | test | variant | peak RSS MiB |")
    L.append("|---|---|---|---:|")
    hw_js = []
    for (size, test, variant), vals in sorted(hwm.items()):
        L.append(f"| {size} | {test} | {variant} | {max(vals) / 1024:.1f} |")
        hw_js.append({"model": size, "test": test, "variant": variant, "hwm_kib": vals})
    L.append("")
    same_tests = {"sequential read 1 MiB", "mmap touch every page", "safetensors load"}

    def peak(size, only=None, variant=CTFS_V):
        v = [max(x) for (s, t, vv), x in hwm.items()
             if s == size and vv == variant and (only is None or t in only)]
        return max(v) / 1024 if v else None

    main_all, main_same, second_same = peak("main"), peak("main", same_tests), \
        peak("second", same_tests)

    # Targets
    T = []

    def target(name, value, ok, how, paired=None):
        T.append((name, value, ok, how, paired))

    def ge(x, t):
        return None if x is None else x >= t

    def le(x, t):
        return None if x is None else x <= t

    sq = "sequential read 1 MiB"
    r = _ratio(_med(S, sq, CTFS_V, "cold"), _med(S, sq, PLAINFUSE_V, "cold"))
    pr = _paired_ratios(results, sq, CTFS_V, PLAINFUSE_V, "cold")
    target("cold sequential ≥ 0.90× plain FUSE", r, ge(r, 0.90), "GB/s ratio", pr)
    r = _ratio(_med(S, sq, CTFS_V, "cold"), _med(S, sq, GOCRYPT_V, "cold"))
    pr = _paired_ratios(results, sq, CTFS_V, GOCRYPT_V, "cold")
    target("cold sequential ≥ 2.5× gocryptfs", r, ge(r, 2.5), "GB/s ratio", pr)
    r = _ratio(_med(S, sq, CTFS_V, "warm"), _med(S, sq, PLAINFUSE_V, "warm"))
    pr = _paired_ratios(results, sq, CTFS_V, PLAINFUSE_V, "warm")
    target("warm re-read ≥ 0.90× plain FUSE", r, ge(r, 0.90), "GB/s ratio", pr)
    ld = "safetensors load (np)"
    r = _ratio(_med(S, ld, CTFS_V, "cold"), _med(S, ld, DISK_V, "cold"))
    pr = _paired_ratios(results, ld, CTFS_V, DISK_V, "cold")
    target("safetensors load from mount ≤ 1.15× plaintext dir (cold)", r, le(r, 1.15),
           "time ratio", pr)
    r = _ratio(_med(S, ld, CTFS_V, "warm"), _med(S, ld, DISK_V, "warm"))
    pr = _paired_ratios(results, ld, CTFS_V, DISK_V, "warm")
    target("safetensors load from mount ≤ 1.05× plaintext dir (warm)", r, le(r, 1.05),
           "time ratio", pr)
    for ph in ("cold", "warm"):
        r = _ratio(_med(S, ld, REF_V, ph), _med(S, ld, CTFS_V, ph))
        pr = _paired_ratios(results, ld, REF_V, CTFS_V, ph)
        target(f"load from mount ≥ 3× faster than reference cryptotensors ({ph})", r, ge(r, 3.0),
               "reference time ÷ mount time", pr)
    ldp = "safetensors load (pt)"
    for ph in ("cold", "warm"):
        r = _ratio(_med(S, ldp, REF_V, ph), _med(S, ldp, CTFS_V, ph))
        pr = _paired_ratios(results, ldp, REF_V, CTFS_V, ph)
        if r is not None:
            target(f"pt load from mount ≥ 3× faster than reference cryptotensors ({ph})", r,
                   ge(r, 3.0), "reference time ÷ mount time", pr)
    rs = "loader peak RSS"
    for ph in ("cold", "warm"):
        r = _ratio(_med(S, rs, CTFS_V, ph), _med(S, rs, DISK_V, ph))
        pr = _paired_ratios(results, rs, CTFS_V, DISK_V, ph)
        target(f"loader peak RSS ≤ 1.05× plain ({ph})", r, le(r, 1.05), "RSS ratio", pr)
    lim = 64 + cache_mb
    target(f"daemon peak RSS ≤ 64 MiB + cache ({lim} MiB), all tests", main_all,
           le(main_all, lim), "MiB")
    flat = None
    if main_same is not None and second_same is not None:
        flat = abs(main_same - second_same) <= max(16.0, 0.10 * second_same)
    fl_r = f"{second_same and round(second_same, 1)} → {main_same and round(main_same, 1)} MiB" \
        if main_same and second_same else None
    target(f"daemon RSS flat in model size ({args.second_size_gib:g} → {args.size_gib:g} GiB; "
           "±10 % or ±16 MiB)", fl_r, flat, "seq + mmap + load")
    wc = "write copy (warm src, incl. sync)"
    r = _ratio(_med(S, wc, "ctfs encrypt", "GB/s"), _med(S, wc, "cp -r", "GB/s"))
    pr = _paired_ratios(results, wc, "ctfs encrypt", "cp -r", "GB/s")
    target("ctfs encrypt ≥ 0.8× cp -r", r, ge(r, 0.8), "GB/s ratio", pr)

    L.append("## Targets (reported, not asserted)" + (" — smoke run: meaningless" if args.smoke else ""))
    L.append("")
    L.append("| target | measured | paired (range over repeats) | result |")
    L.append("|---|---:|---:|---|")
    for name, value, ok, how, paired in T:
        val = value if isinstance(value, str) else (f"{value:.2f} ({how})" if value is not None else "–")
        pv = _paired_text(paired)
        L.append(f"| {name} | {val} | {pv} | {'–' if ok is None else ('PASS' if ok else 'MISS')} |")
    L.append("")
    if results.get("skipped"):
        L.append("Skipped: " + "; ".join(results["skipped"]))
        L.append("")
    if results.get("hf_checksums"):
        cs = results["hf_checksums"]
        same = len({round(x, 3) for v in cs.values() for x in v}) == 1
        L.append(f"transformers weights checksum identical across variants: {'yes' if same else 'NO'}")
        L.append("")
    if results.get("failures"):
        L.append("**Failures:** " + "; ".join(results["failures"]))
        L.append("")
    js = {k: v for k, v in results.items() if k != "tests"}
    js["tests"] = S
    js["daemon_hwm"] = hw_js
    js["targets"] = [{"target": n, "value": v, "pass": ok, "measure": h,
                      "paired": statistics.median(pr) if pr else None, "paired_per_repeat": pr}
                     for n, v, ok, h, pr in T]
    return "\n".join(L), js


def rerender(json_path: str) -> str:
    """The markdown of a saved results.json, in this version's format (no re-run)."""
    import argparse
    import json
    with open(json_path) as f:
        js = json.load(f)
    results = {k: v for k, v in js.items() if k not in ("tests", "daemon_hwm", "targets")}
    results["tests"] = {t: {v: {p: s["values"] for p, s in ps.items()} for v, ps in vs.items()}
                        for t, vs in js["tests"].items()}
    hwm = {(h["model"], h["test"], h["variant"]): h["hwm_kib"] for h in js.get("daemon_hwm", [])}
    return build(results, hwm, argparse.Namespace(**js["args"]))[0]


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS_JSON   (prints its markdown, re-rendered)")
    print(rerender(sys.argv[1]))

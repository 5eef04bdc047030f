# SPDX-License-Identifier: Apache-2.0
"""Chooses the default chunk size of `ctfs encrypt` (issue 4): one command, side by side.

The synthetic model of bench/run (same fixture, same keys) is encrypted once per chunk size;
then, repeated in a rotating order, each copy is mounted and measured against the same daemon
serving the plaintext (plain FUSE):
  * cold sequential read, 1 MiB reads (GB/s) and the daemon's CPU seconds for it;
  * fio randread 4 KiB and 64 KiB, 4 jobs, cold start (IOPS);
  * daemon peak RSS (VmHWM) over both;
  * `ctfs encrypt` time of the plain model (warm source, without the final sync).
Prints a markdown table (median, min-max, ratio vs plain FUSE) and writes chunk_sizes.json.
Usage: .venv/bin/python bench/chunk_sizes.py [--work DIR] [--size-gib 2] [--repeats 3]
       [--chunk-kib 256,1024,2048] [--fio-runtime 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixture  # noqa: E402
from main import seq_read  # noqa: E402
from util import (CTFS, cleanup_all, ctfs_mount, drop_caches, log, run, summary,  # noqa: E402
                  tree_files)

PLAIN = "plain FUSE (same daemon)"


def fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def fio_iops(root: Path, rel: list[str], bs: str, runtime: int) -> float:
    files = ":".join(str(root / r) for r in rel)
    out = run(["fio", "--name=randread", "--rw=randread", f"--bs={bs}", "--numjobs=4",
               "--ioengine=psync", f"--filename={files}", "--readonly", "--time_based",
               f"--runtime={runtime}", "--group_reporting", "--invalidate=1",
               "--output-format=json", "--randrepeat=0"], timeout=runtime + 120)
    return json.loads(out.stdout[out.stdout.index("{"):])["jobs"][0]["read"]["iops"]


def measure(variant: str, src: Path, rel: list[str], key: Path, work: Path, a, res: dict) -> None:
    r = res.setdefault(variant, {})
    m = ctfs_mount(src, work / "mnt" / "chunk-sizes", key, work / "logs")
    try:
        drop_caches()
        cpu0 = cpu_seconds(m.pid)
        n, secs = seq_read(m.mnt, rel)
        r.setdefault("cold sequential read (GB/s)", []).append(n / secs / 1e9)
        r.setdefault("daemon CPU for it (s)", []).append(cpu_seconds(m.pid) - cpu0)
        for bs in ("4k", "64k"):
            drop_caches()
            r.setdefault(f"fio randread {bs}, 4 jobs (IOPS)", []).append(
                fio_iops(m.mnt, rel, bs, a.fio_runtime))
        r.setdefault("daemon peak RSS (MiB)", []).append((m.hwm_kib() or 0) / 1024)
    finally:
        m.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/var/tmp/ctfs-bench")
    p.add_argument("--size-gib", type=float, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk-kib", default="256,1024,2048")
    p.add_argument("--fio-runtime", type=int, default=5)
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("chunk_sizes.py: needs root (mounts, drop_caches)", file=sys.stderr)
        return 2
    work = Path(a.work)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    full, reader = fixture.ensure_keys(work)
    model = fixture.ensure_model(work, a.size_gib, full, gocryptfs=False, logdir=work / "logs")
    plain = model["plain"]
    rel = [str(f.relative_to(plain)) for f in tree_files(plain) if f.suffix == ".safetensors"]
    sizes = [int(s) * 1024 for s in a.chunk_kib.split(",")]
    scratch = work / "chunk-sizes"
    scratch.mkdir(exist_ok=True)
    res: dict = {}
    encs = {}
    try:
        for cs in sizes:
            dst = scratch / f"enc-{cs}"
            shutil.rmtree(dst, ignore_errors=True)
            log(f"encrypting with --chunk-size {cs}")
            t0 = time.perf_counter()
            run([CTFS, "encrypt", plain, dst, "--key", full, "-q", "--chunk-size", cs],
                timeout=3600)
            res.setdefault(f"{cs >> 10} KiB chunks", {})["ctfs encrypt (GB/s)"] = [
                model["bytes"] / (time.perf_counter() - t0) / 1e9]
            encs[f"{cs >> 10} KiB chunks"] = dst
        variants = [PLAIN, *encs]
        for rep in range(a.repeats):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for v in order:
                log(f"repeat {rep + 1}/{a.repeats}: {v}")
                measure(v, plain if v == PLAIN else encs[v], rel, reader, work, a, res)
    finally:
        cleanup_all(work / "mnt")
        for d in encs.values():
            shutil.rmtree(d, ignore_errors=True)

    stats = {v: {k: summary(x) for k, x in m.items()} for v, m in res.items()}
    metrics = sorted({k for m in stats.values() for k in m})
    lines = [f"model {model['bytes'] / 2**30:.2f} GiB, {a.repeats} repeats, fio {a.fio_runtime} s",
             "", "| metric | variant | median | min – max | ratio vs plain FUSE |",
             "|---|---|---:|---:|---:|"]
    for k in metrics:
        base = stats.get(PLAIN, {}).get(k, {}).get("median")
        for v in [PLAIN, *encs]:
            s = stats.get(v, {}).get(k)
            if not s or s["median"] is None:
                continue
            ratio = f"{s['median'] / base:.3g}×" if base and v != PLAIN else ""
            lines.append(f"| {k} | {v} | {fmt(s['median'])} | {fmt(s['min'])} – {fmt(s['max'])} "
                         f"| {ratio} |")
    print("\n".join(lines))
    out = work / "results"
    out.mkdir(exist_ok=True)
    (out / "chunk_sizes.json").write_text(json.dumps(stats, indent=1))
    (out / "chunk_sizes.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

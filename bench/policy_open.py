# SPDX-License-Identifier: Apache-2.0
"""Cost of the access policy (issue 17): open latency and a cold model load through the mount,
with no config, and with a 100-rule policy whose LAST rule is the one that allows (every open
tries all 100 rules), measured in the same run. Prints a markdown table with ratios to the
no-policy baseline; targets are reported, never asserted.

    .venv/bin/python bench/policy_open.py [--work DIR] [--opens N] [--size-mib N] [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from util import CTFS, cleanup_all, ctfs_mount, drop_caches, log, run  # noqa: E402

MiB = 1 << 20


def make_model(work: Path, size_mib: int) -> tuple[Path, Path]:
    from safetensors.numpy import save_file
    plain, enc, keys = work / "plain", work / "enc", work / "keys"
    if (enc / "model-00004-of-00004.safetensors").exists():
        return enc, keys / "r.jwk"
    for d in (plain, keys):
        d.mkdir(parents=True, exist_ok=True)
    run([CTFS, "keygen", "--out", keys / "k.jwk", "--reader-out", keys / "r.jwk", "--force"])
    rng = np.random.default_rng(7)
    per_shard = max(1, size_mib // 4) * MiB // 4  # float32 elements
    for i in range(4):
        tensors = {f"model.layers.{i}.w{j}": rng.standard_normal(per_shard // 8, dtype=np.float32)
                   for j in range(8)}
        save_file(tensors, str(plain / f"model-0000{i + 1}-of-00004.safetensors"))
    (plain / "config.json").write_text('{"model_type": "bench"}')
    run([CTFS, "encrypt", plain, enc, "--key", keys / "k.jwk", "-q", "--force"], timeout=600)
    return enc, keys / "r.jwk"


def policy_config(path: Path, key: Path, rules: int) -> Path:
    lines = [f"keys: [{{file: {key}}}]", "policy:", "  rules:"]
    for i in range(rules - 1):  # none of these match root: every open tries them all
        lines += [f"    - name: r{i}", "      decision: allow",
                  f"      subject: {{uid: [{100000 + i}], exe: \"/opt/app{i}/bin/*\"}}",
                  f"      object: {{path: [\"shard{i}/*.safetensors\", \"*.bin\"]}}"]
    lines += ["    - name: everyone", "      decision: allow"]
    path.write_text("\n".join(lines) + "\n")
    return path


def open_latency_us(mnt: Path, n: int) -> float:
    p = str(mnt / "config.json")
    os.close(os.open(p, os.O_RDONLY))  # warm the subject cache and the dentry
    t0 = time.perf_counter()
    for _ in range(n):
        os.close(os.open(p, os.O_RDONLY))
    return (time.perf_counter() - t0) / n * 1e6


def cold_load_s(mnt: Path) -> float:
    from safetensors.numpy import load_file
    drop_caches()
    t0 = time.perf_counter()
    for f in sorted(mnt.glob("*.safetensors")):
        load_file(str(f))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ctfs-bench-policy")
    ap.add_argument("--opens", type=int, default=5000)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    enc, key = make_model(args.work, args.size_mib)
    cfg = policy_config(args.work / "policy.yaml", key, 100)
    variants = {"no policy": [], "100-rule policy": ["--config", cfg]}
    res: dict[str, dict[str, list[float]]] = {v: {"open": [], "load": []} for v in variants}
    try:
        for r in range(args.rounds):  # alternate the variants: drift hits both alike
            for name, extra in variants.items():
                m = ctfs_mount(enc, args.work / "mnt", key, args.work, extra=extra)
                try:
                    res[name]["open"].append(open_latency_us(m.mnt, args.opens))
                    res[name]["load"].append(cold_load_s(m.mnt))
                finally:
                    m.close()
                log(f"round {r + 1}: {name}: open {res[name]['open'][-1]:.1f} us, "
                    f"cold load {res[name]['load'][-1]:.3f} s")
    finally:
        cleanup_all(args.work)
    base = {k: statistics.median(v) for k, v in res["no policy"].items()}
    print(f"| variant | open+close, cached subject (median of {args.rounds}) | ratio | "
          f"cold load of {args.size_mib} MiB with safetensors | ratio |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        o, lo = statistics.median(r["open"]), statistics.median(r["load"])
        print(f"| {name} | {o:.1f} us | {o / base['open']:.2f} | {lo:.3f} s "
              f"(min {min(r['load']):.3f}, max {max(r['load']):.3f}) | {lo / base['load']:.2f} |")
    extra_us = statistics.median(res["100-rule policy"]["open"]) - base["open"]
    print(f"\npolicy decision cost per open: {extra_us:+.1f} us (target: under 50 us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

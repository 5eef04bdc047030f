# SPDX-License-Identifier: Apache-2.0
"""Kernel copy speed by how far the destination lies past the source within a page (issue 4).

Reads a file that is in the page cache (it is read once first) with 1 MiB preadv() calls into
one buffer that starts `offset` bytes past a page boundary, for each offset, in a new random
order each repeat. The page cache is page-aligned, so `offset` is the distance of every copy's
destination past its source modulo 4 KiB. The daemon's chunk buffers are placed by this
(fs/copy_alignment.h): on the project's VM, offsets 1-31 ran about 4x slower than the others.
Prints median and range per offset and the paired ratio to offset 0.
Usage: .venv/bin/python bench/copy_offsets.py FILE [--offsets 0,1,16,31,32,64,2048,4080]
       [--repeats 5]
"""
from __future__ import annotations

import argparse
import mmap
import os
import random
import statistics
import sys
import time

MiB = 1 << 20
PAGE = mmap.PAGESIZE


def read_all(fd: int, size: int, view: memoryview) -> float:
    """Reads the whole file into `view` block by block; returns GB/s."""
    t0 = time.perf_counter()
    off = 0
    while off < size:
        n = os.preadv(fd, [view], off)
        if n <= 0:
            raise SystemExit(f"short read at {off}")
        off += n
    return size / (time.perf_counter() - t0) / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--offsets", default="0,1,16,31,32,64,2048,4080",
                    help="destination offsets past a page boundary, comma-separated (< 4096)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if not os.path.isfile(a.file):
        ap.error(f"{a.file}: not a regular file")
    try:
        offsets = sorted({int(x) for x in a.offsets.split(",")} | {0})
    except ValueError:
        ap.error("--offsets: integers separated by commas")
    if any(o < 0 or o >= PAGE for o in offsets):
        ap.error(f"--offsets must lie in [0, {PAGE})")
    if a.repeats < 1:
        ap.error("--repeats must be at least 1")
    size = os.path.getsize(a.file)
    buf = mmap.mmap(-1, MiB + PAGE)  # page-aligned
    fd = os.open(a.file, os.O_RDONLY)
    try:
        read_all(fd, size, memoryview(buf)[:MiB])  # into the page cache, and fault the buffer
        speeds: dict[int, list[float]] = {o: [] for o in offsets}
        ratios: dict[int, list[float]] = {o: [] for o in offsets}
        rng = random.Random(4)
        for r in range(a.repeats):
            order = offsets[:]
            rng.shuffle(order)
            got = {}
            for o in order:
                view = memoryview(buf)[o:o + MiB]
                got[o] = read_all(fd, size, view)
                view.release()
            for o in offsets:
                speeds[o].append(got[o])
                ratios[o].append(got[o] / got[0])
            print(f"repeat {r + 1}: " + ", ".join(f"{o}: {got[o]:.2f}" for o in offsets) + " GB/s",
                  flush=True)
    finally:
        os.close(fd)
    print(f"\n{size / 1e6:.0f} MB from the page cache, 1 MiB preadv, {a.repeats} repeats\n")
    print("| destination offset | median GB/s | min – max | vs offset 0 (paired median) |")
    print("|---:|---:|---:|---:|")
    for o in offsets:
        v = speeds[o]
        print(f"| {o} | {statistics.median(v):.2f} | {min(v):.2f} – {max(v):.2f} | "
              f"{statistics.median(ratios[o]):.2f}× |")
    buf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

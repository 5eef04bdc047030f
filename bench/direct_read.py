# SPDX-License-Identifier: Apache-2.0
"""O_DIRECT read speed into small pages vs transparent huge pages (issue 4), side by side.

The mount reads ciphertext ahead with O_DIRECT in runs of 4 MiB (base/direct_reader.cc). This
measures what the memory those reads land in costs: the same file is read cold (page cache
dropped) with O_DIRECT in `--block-mib` blocks by `--threads` threads, into buffers on 4 KiB
pages (MADV_NOHUGEPAGE) and into 2 MiB-aligned buffers marked MADV_HUGEPAGE, alternating,
repeated. Prints median and range per variant and the paired ratio huge / small.
Usage: .venv/bin/python bench/direct_read.py FILE [--block-mib 4] [--threads 1] [--repeats 5]
"""
from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from util import drop_caches  # noqa: E402

HUGE = 2 << 20


def aligned_buffer(block_len: int, huge: bool) -> tuple[mmap.mmap, memoryview]:
    """A block_len buffer starting on a 2 MiB boundary, advised for (or against) huge pages."""
    # Private: an anonymous MAP_SHARED mapping is shmem, where MADV_HUGEPAGE does not apply.
    m = mmap.mmap(-1, block_len + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    start = (-addr) % HUGE
    m.madvise(mmap.MADV_HUGEPAGE if huge else mmap.MADV_NOHUGEPAGE, start, block_len)
    view = memoryview(m)[start:start + block_len]
    view[::4096] = b"\1" * len(range(0, block_len, 4096))  # fault it in before timing
    return m, view


def read_all(path: str, block_len: int, threads: int, huge: bool) -> float:
    """Reads the file once with O_DIRECT; returns GB/s."""
    size = os.path.getsize(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        raise SystemExit(f"{path}: cannot open with O_DIRECT ({e.strerror})") from e
    buffers = [aligned_buffer(block_len, huge) for _ in range(threads)]
    next_off = [0]
    lock = threading.Lock()

    def worker(view: memoryview) -> None:
        while True:
            with lock:
                off = next_off[0]
                next_off[0] += block_len
            if off >= size:
                return
            os.preadv(fd, [view], off)  # the last block may be short: fine for O_DIRECT at EOF

    drop_caches()
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(b[1],)) for b in buffers]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    os.close(fd)
    for m, view in buffers:
        view.release()
        m.close()
    return size / dt / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--block-mib", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if not os.path.isfile(a.file):
        ap.error(f"{a.file}: not a regular file")
    if a.block_mib < 1 or a.threads < 1 or a.repeats < 1:
        ap.error("--block-mib, --threads and --repeats must be at least 1")
    block_len = a.block_mib << 20
    small, huge, ratios = [], [], []
    for r in range(a.repeats):
        order = [False, True] if r % 2 == 0 else [True, False]
        got = {h: read_all(a.file, block_len, a.threads, h) for h in order}
        small.append(got[False])
        huge.append(got[True])
        ratios.append(got[True] / got[False])
        print(f"repeat {r + 1}: small pages {got[False]:.2f} GB/s, huge pages {got[True]:.2f} GB/s",
              flush=True)
    print(f"\n{os.path.getsize(a.file) / 1e6:.0f} MB, O_DIRECT {a.block_mib} MiB blocks, "
          f"{a.threads} thread(s), cold, {a.repeats} repeats\n")
    print("| buffer memory | median GB/s | min – max |")
    print("|---|---:|---:|")
    for name, v in (("4 KiB pages", small), ("2 MiB huge pages", huge)):
        print(f"| {name} | {statistics.median(v):.2f} | {min(v):.2f} – {max(v):.2f} |")
    print(f"\nhuge / small, paired: median {statistics.median(ratios):.2f}× "
          f"(range {min(ratios):.2f}–{max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

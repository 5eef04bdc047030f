# SPDX-License-Identifier: Apache-2.0
"""The mount's readahead window and the daemon's decrypt-ahead (prefetch): the bdi readahead of
a new mount is what --read-ahead-kb asks for (the kernel resets it from the FUSE INIT reply, so
it must be raised after INIT), and sequential reads return the plaintext with prefetch off, on,
and on with a cache smaller than the prefetch window (eviction)."""
from __future__ import annotations

import hashlib
import os
import re

import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS


def bdi_read_ahead_kb(mnt):
    st = os.stat(mnt)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    path = f"/sys/class/bdi/{dev}/read_ahead_kb"
    assert os.path.exists(path), f"no bdi for the mount's device {dev} ({path})"
    with open(path) as f:
        return int(f.read().strip())


def extra_sets(option):
    return any(a == option or a.startswith(option + "=") for a in EXTRA_MOUNT_ARGS)


@pytest.mark.parametrize("args,want_kb", [((), 4096), (("--read-ahead-kb", "1024"), 1024),
                                          (("--read-ahead-kb", "8192"), 8192)],
                         ids=["default", "1024", "8192"])
def test_mount_readahead_is_raised_after_init(mounter, small_model, args, want_kb):
    """Regression: the window used to be written before the FUSE INIT reply, which silently
    reset it to the kernel's 128 KiB."""
    if extra_sets("--read-ahead-kb"):
        pytest.skip("$CTFS_MOUNT_ARGS sets --read-ahead-kb")
    m = mounter.mount(small_model.enc, args=args)
    # `ctfs mount` returns only once the mount is ready: the window must already be in place.
    got = bdi_read_ahead_kb(m.mnt)
    assert got == want_kb, f"read_ahead_kb of the mount is {got}, want {want_kb}\n{m.log_tail()}"
    # Serving requests does not change it.
    rel = small_model.encrypted[0]
    assert M.sha256(m.mnt / rel) == M.sha256(small_model.plain / rel)
    assert bdi_read_ahead_kb(m.mnt) == want_kb


def read_direct_sequential(path, piece):
    """Reads the whole file with O_DIRECT in `piece`-byte preads: every read reaches the daemon
    as it is, in order (no page cache, no kernel readahead in between)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        out, off = bytearray(), 0
        while True:
            b = os.pread(fd, piece, off)
            if not b:
                return bytes(out)
            out += b
            off += len(b)
    finally:
        os.close(fd)


def daemon_stats(log_path):
    """The chunk-cache line the daemon logs when it unmounts."""
    text = open(log_path, errors="replace").read()
    found = re.findall(r"chunk cache: (\d+) hits, (\d+) misses, (\d+) prefetch jobs, "
                       r"peak (\d+) MiB cached", text)
    assert found, f"no chunk cache summary in the daemon log:\n{text[-3000:]}"
    hits, misses, jobs, peak = map(int, found[-1])
    return {"hits": hits, "misses": misses, "jobs": jobs, "peak_mib": peak}


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("opts,prefetching", [
    (["--prefetch-mb", "0"], False),
    ([], True),
    (["--cache-mb", "1"], True),  # 8 MiB of prefetch into a 1 MiB cache: evicted before use
    (["--cache-mb", "1", "--prefetch-mb", "2", "--decrypt-threads", "0"], True),
    (["--cache-mb", "0"], False),  # nothing to prefetch into
], ids=["prefetch0", "default", "cache1M", "cache1M-prefetch2M-nodecryptthreads", "cache0"])
def test_sequential_reads_under_prefetch_options(ctfs, mounter, model, opts, prefetching):
    m = mounter.mount(model.enc, args=opts)
    assert len(model.encrypted) == 4
    for rel in model.encrypted:
        want = model.plain_bytes(rel)
        assert M.sha256(m.mnt / rel) == hashlib.sha256(want).hexdigest(), \
            f"{rel}: buffered sequential read differs ({opts})\n{m.log_tail()}"
    for rel in model.encrypted:
        want = model.plain_bytes(rel)
        for piece in (4096, 65536 + 7):
            got = read_direct_sequential(m.mnt / rel, piece)
            assert got == want, (f"{rel}: O_DIRECT sequential read in {piece}-byte pieces differs "
                                 f"at {M.first_diff(got, want)} ({opts})\n{m.log_tail()}")
    r = ctfs.run("umount", m.mnt, timeout=30)
    assert r.rc == 0, r.describe() + "\n" + m.log_tail()
    assert M.wait_until(lambda: not M.alive(m.pid), 10), m.log_tail()
    if extra_sets("--prefetch-mb") or extra_sets("--cache-mb") or extra_sets("--log-level"):
        return  # the counts below depend on options $CTFS_MOUNT_ARGS overrides
    stats = daemon_stats(m.log)
    if prefetching:
        assert stats["jobs"] > 0, f"sequential reads queued no prefetch ({opts}): {stats}"
    else:
        assert stats["jobs"] == 0, f"prefetch ran although it is off ({opts}): {stats}"
    if "--cache-mb" in opts:
        cap = int(opts[opts.index("--cache-mb") + 1])
        assert stats["peak_mib"] <= cap, f"cache above its cap ({opts}): {stats}"

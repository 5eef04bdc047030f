# SPDX-License-Identifier: Apache-2.0
"""The mount's readahead window and the daemon's decrypt-ahead (prefetch): the bdi readahead of
a new mount is what --read-ahead-kb asks for (the kernel resets it from the FUSE INIT reply, so
it must be raised after INIT), and sequential reads return the plaintext with prefetch off, on,
and on with a cache smaller than the prefetch window (eviction), with and without direct I/O;
with direct I/O (the default) the ciphertext read for the mount stays out of the page cache."""
from __future__ import annotations

import ctypes
import hashlib
import mmap
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
    found = re.findall(r"chunk cache: (\d+) hits \((\d+) waited for a load in flight, \d+ ms "
                       r"in all\), (\d+) misses, (\d+) prefetch jobs, peak (\d+) MiB cached", text)
    assert found, f"no chunk cache summary in the daemon log:\n{text[-3000:]}"
    hits, waits, misses, jobs, peak = map(int, found[-1])
    assert waits <= hits, found[-1]
    return {"hits": hits, "waits": waits, "misses": misses, "jobs": jobs, "peak_mib": peak}


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("opts,prefetching", [
    (["--prefetch-mb", "0"], False),
    ([], True),
    (["--cache-mb", "1"], True),  # 16 MiB of prefetch into a 1 MiB cache: evicted before use
    (["--cache-mb", "1", "--prefetch-mb", "2", "--decrypt-threads", "0"], True),
    (["--cache-mb", "0"], False),  # nothing to prefetch into
    (["--no-direct-io"], True),
    (["--prefetch-threads", "1"], True),
], ids=["prefetch0", "default", "cache1M", "cache1M-prefetch2M-nodecryptthreads", "cache0",
        "no-direct-io", "one-prefetch-thread"])
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


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident_fraction(path):
    """Share of the file's pages in the page cache (mincore of a mapping; nothing is read)."""
    size = os.path.getsize(path)
    pages = (size + M.PAGE - 1) // M.PAGE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vec = (ctypes.c_ubyte * pages)()
            assert _libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
            return sum(b & 1 for b in vec) / pages
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def evict_from_page_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def supports_direct_io(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def big_model(ctfs, keys, tmp_path_factory):
    """One 48 MiB encrypted file (default chunk size): big next to the mount's 4 MiB readahead
    burst, whose first requests the daemon serves before it knows the reader is sequential."""
    from safetensors.numpy import save_file
    import numpy as np
    root = tmp_path_factory.mktemp("big")
    plain, enc = root / "plain", root / "enc"
    plain.mkdir()
    rng = np.random.default_rng(11)
    save_file({"w": rng.integers(0, 255, 48 << 20, dtype=np.uint8)},
              str(plain / "big.safetensors"), metadata={"format": "pt"})
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "-q", timeout=120)
    return plain / "big.safetensors", enc / "big.safetensors"


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("opts,direct", [([], True), (["--no-direct-io"], False)],
                         ids=["direct-io", "no-direct-io"])
def test_direct_io_keeps_the_ciphertext_out_of_the_page_cache(mounter, big_model, opts, direct):
    """Reading a file through the mount with direct I/O leaves little of its backing file in
    the page cache (the kernel caches the plaintext the mount serves, not the ciphertext as
    well): only what the daemon read for the reader itself, the start of the scan and a few
    random reads. Without it the whole backing file ends up cached."""
    if extra_sets("--direct-io") or extra_sets("--no-direct-io"):
        pytest.skip("$CTFS_MOUNT_ARGS chooses the I/O mode")
    plain, backing = big_model
    if not supports_direct_io(backing):
        pytest.skip(f"the file system of {backing} does not do O_DIRECT")
    want = plain.read_bytes()
    m = mounter.mount(backing.parent, args=opts)
    evict_from_page_cache(backing)  # after the mount: opening read the header
    before = resident_fraction(backing)
    if before > 0.05:
        pytest.skip(f"the page cache kept {before:.0%} of {backing} after POSIX_FADV_DONTNEED")
    assert M.sha256(m.mnt / backing.name) == hashlib.sha256(want).hexdigest()
    # Random reads too (a reader's own misses are read through the page cache).
    fd = os.open(m.mnt / backing.name, os.O_RDONLY | os.O_DIRECT)
    try:
        for off in (len(want) // 2, len(want) // 7, len(want) - 5000):
            assert os.pread(fd, 4096, off) == want[off:off + 4096], f"random read at {off}"
    finally:
        os.close(fd)
    after = resident_fraction(backing)
    if direct:
        assert after < 0.2, (f"{after:.0%} of the ciphertext is in the page cache after a "
                             f"read through the mount with direct I/O\n{m.log_tail()}")
    else:
        assert after > 0.9, (f"only {after:.0%} of the ciphertext is in the page cache after "
                             f"a buffered read through the mount (the test cannot fail)")


@pytest.mark.timeout_s(120)
def test_a_header_probe_decrypts_little_ahead(ctfs, mounter, big_model):
    """A reader of the safetensors header only (as tools listing tensors are) starts a small
    read-ahead window that grows only as the reader goes on: a probe of the 48 MiB file
    decrypts about one 4 MiB run ahead (16 chunks of 256 KiB), not the 16 MiB window (64)."""
    if extra_sets("--prefetch-mb") or extra_sets("--cache-mb") or extra_sets("--log-level"):
        pytest.skip("$CTFS_MOUNT_ARGS overrides the options the counts below depend on")
    plain, backing = big_model
    want = plain.read_bytes()
    m = mounter.mount(backing.parent)
    with open(m.mnt / backing.name, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        assert f.read(n) == want[8:8 + n]
    r = ctfs.run("umount", m.mnt, timeout=30)
    assert r.rc == 0, r.describe() + "\n" + m.log_tail()
    assert M.wait_until(lambda: not M.alive(m.pid), 10), m.log_tail()
    stats = daemon_stats(m.log)
    assert 0 < stats["misses"] <= 24, f"a header probe decrypted too much: {stats}"
